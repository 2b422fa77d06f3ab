"""The deployed contenders of :mod:`ssd_plugin.benchmarks.inference`.

Each contender is ``(name, fn)`` with ``fn(images) -> detections``:
mmdet's ``inference_detector`` on the same BGR arrays as the torch models,
so the timing is end to end (test pipeline, data preprocessor, network and
post-processing, boxes in the original image). From our torch model:

- ``torch BF16``: :func:`ssd_plugin.deploy.bf16_network`;
- ``ORT FP32`` / ``ORT INT8``: ONNX Runtime on the end2end export and on
  its INT8 QDQ version (calibrated on the benchmark's images);
- ``OV FP32`` / ``OV BF16``: OpenVINO with the ``f32`` / ``bf16``
  precision hint; ``OV INT8``: the INT8 file, its FP32 parts in bf16 where
  the CPU has native bf16 (``avx512_bf16`` or AMX), else in f32: without
  them OpenVINO emulates bf16 on AVX-512, slower than f32
  (docs/quantization.md).
"""
import os.path as osp
import time
from functools import partial
from typing import Callable, List, Sequence, Tuple

import numpy as np
from mmdet.apis import inference_detector
from mmdet.structures import DetDataSample
from torch import nn

from ssd_plugin.deploy import DeployedDetector, bf16_network, export_onnx
from ssd_plugin.deploy.quantize import quantize_int8
from ssd_plugin.utils.network_input import config_input_size, network_inputs
from ssd_runtime.machine import visible_flags

Detector = Callable[[Sequence[np.ndarray]], List[DetDataSample]]
Contender = Tuple[str, Detector]


def torch_bf16(model: nn.Module) -> Detector:
    """``inference_detector`` with the network in bf16 autocast."""

    def run(images: Sequence[np.ndarray]) -> List[DetDataSample]:
        with bf16_network(model):
            return inference_detector(model, list(images))

    return run


def deployment_contenders(model: nn.Module, images: Sequence[np.ndarray],
                          work_dir: str, threads: int) -> List[Contender]:
    """Export ``model`` (and quantize it) in ``work_dir``; the contenders.

    Args:
        model (nn.Module): Our torch detector (``init_detector``).
        images (Sequence[np.ndarray]): BGR arrays; also INT8 calibration.
        work_dir (str): Where the ONNX files go.
        threads (int): CPU threads for every backend.

    Returns:
        list[tuple[str, Callable]]: Name and ``fn(images)`` per path.
    """
    fp32 = osp.join(work_dir, 'ssd_fp32.onnx')
    int8 = osp.join(work_dir, 'ssd_int8.onnx')
    start = time.perf_counter()
    export_onnx(model, fp32, config_input_size(model.cfg))
    quantize_int8(fp32, int8,
                  [x.numpy() for x in network_inputs(model.cfg, images)])
    print(f'[deploy] exported and quantized in '
          f'{time.perf_counter() - start:.0f} s')
    contenders = [('torch BF16', torch_bf16(model))]
    native_bf16 = {'avx512_bf16', 'amx_bf16'} & set(visible_flags() or ())
    print(f'[deploy] OV INT8: FP32 parts in '
          f'{"bf16" if native_bf16 else "f32 (no native bf16)"}')
    for name, path, backend, precision in (
            ('ORT FP32', fp32, 'onnxruntime', 'f32'),
            ('ORT INT8', int8, 'onnxruntime', 'f32'),
            ('OV FP32', fp32, 'openvino', 'f32'),
            ('OV BF16', fp32, 'openvino', 'bf16'),
            ('OV INT8', int8, 'openvino', 'bf16' if native_bf16 else 'f32')):
        deployed = DeployedDetector(path, model.cfg, backend, precision,
                                    threads)
        contenders.append((name, partial(inference_detector, deployed)))
    return contenders
