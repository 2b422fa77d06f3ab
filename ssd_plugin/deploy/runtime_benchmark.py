"""End-to-end speed of a deployed SSD through ``ssd_runtime`` (the logic of
``tools/deployment/benchmark_runtime.py``).

A model of the config with random weights and a calibrated head
(:func:`ssd_plugin.utils.benchmark.calibrate_head`: a realistic number of
boxes pass the score threshold) is exported with the uint8 input and
quantized to INT8 on the benchmark's images. Each contender is an
``ssd_runtime.Detector`` (backend, precision, file) called on a BGR image:
resize, inference with the graph's post-processing, boxes mapped back --
BGR image in, detections out. They run interleaved in one process
(``time_interleaved``), so a shared machine's load hits all alike.
:func:`detect_vs_runtime` compares ``ssd-detect`` on a video (decoding,
drawing and encoding included) with the runtime alone on the same frames.
"""
import logging
import os.path as osp
import statistics
import time
from typing import Dict, List, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from mmdet.apis import init_detector
from mmengine.logging import MMLogger

from ssd_plugin.deploy.export import config_input_size, export_onnx
from ssd_plugin.deploy.quantize import array_inputs, quantize_int8
from ssd_plugin.deploy.runtime import network_to_graph_input
from ssd_plugin.models.ssd_head import flatten_levels
from ssd_plugin.utils.benchmark import calibrate_head, time_interleaved
from ssd_runtime import Detector
from ssd_runtime.detect import parse_args, run
from ssd_runtime.metadata import UINT8_BGR, read_model_info

# (name, file, backend, precision). INT8 is the file; OpenVINO runs its
# FP32 parts at the f32 hint.
CONTENDERS = (('ORT FP32', 'fp32', 'onnxruntime', 'f32'),
              ('ORT INT8', 'int8', 'onnxruntime', 'f32'),
              ('OV FP32', 'fp32', 'openvino', 'f32'),
              ('OV BF16', 'fp32', 'openvino', 'bf16'),
              ('OV INT8', 'int8', 'openvino', 'f32'))
BASELINE = 'ORT FP32'


def export_benchmark_model(config: str, images: Sequence[np.ndarray],
                           work_dir: str, seed: int = 0,
                           logit_std: float = 1.0,
                           background_bias: float = 7.0
                           ) -> Dict[str, Union[str, List[int]]]:
    """Export the config's model (random, head calibrated on ``images[0]``)
    with the uint8 input, and its INT8 version calibrated on ``images``.

    Returns:
        dict: ``fp32`` and ``int8`` ``.onnx`` paths; ``candidates``: per
        image the (box, class) pairs scoring above the head's
        ``score_thr``, what NMS sees before ``nms_pre``.
    """
    torch.manual_seed(seed)
    model = init_detector(config, None, device='cpu')
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # init's log
    model.init_weights()
    model.eval()
    inputs = array_inputs(model.cfg, images)
    calibrate_head(model, torch.from_numpy(inputs[0]), logit_std,
                   background_bias)
    paths = dict(fp32=osp.join(work_dir, 'fp32.onnx'),
                 int8=osp.join(work_dir, 'int8.onnx'))
    export_onnx(model, paths['fp32'], config_input_size(model.cfg),
                classes=model.dataset_meta.get('classes'),
                input_format=UINT8_BGR)
    info = read_model_info(paths['fp32'])
    quantize_int8(paths['fp32'], paths['int8'],
                  [network_to_graph_input(x, info) for x in inputs])
    head = model.bbox_head
    with torch.no_grad():
        for x in inputs:
            logits = flatten_levels(head(model.extract_feat(
                torch.from_numpy(x)))[0], head.cls_out_channels)
            paths.setdefault('candidates', []).append(int((logits.softmax(
                -1)[..., :-1] > head.test_cfg['score_thr']).sum()))
    return paths


def build_contenders(paths: Dict[str, str],
                     threads: int) -> Dict[str, Detector]:
    """A :class:`~ssd_runtime.Detector` per :data:`CONTENDERS` entry."""
    return {name: Detector(paths[kind], backend, precision, threads)
            for name, kind, backend, precision in CONTENDERS}


def time_contenders(detectors: Dict[str, Detector],
                    images: Sequence[np.ndarray], rounds: int,
                    warmup: int = 3) -> Dict[str, List[float]]:
    """Per contender, the mean seconds per image of each round (a round:
    every image once), interleaved."""
    seconds = time_interleaved(detectors, list(images), rounds,
                               warmup=warmup * len(images))
    return {name: [statistics.fmean(part) for part in np.array_split(
        np.asarray(times), rounds)] for name, times in seconds.items()}


def report_fps(means: Dict[str, List[float]], baseline: str = BASELINE
               ) -> Dict[str, float]:
    """Print per contender its median FPS over the rounds, their range and
    the ratio to ``baseline``; return the median FPS."""
    fps = {name: [1 / s for s in values] for name, values in means.items()}
    medians = {name: statistics.median(v) for name, v in fps.items()}
    width = max(map(len, fps))
    for name, values in fps.items():
        print(f'{name:>{width}}: {medians[name]:7.1f} FPS '
              f'({1e3 / medians[name]:.2f} ms; rounds {min(values):.1f}-'
              f'{max(values):.1f}), {medians[name] / medians[baseline]:.2f}x '
              f'{baseline}')
    return medians


def detect_vs_runtime(model: str, backend: str, precision: str,
                      threads: int, video: str, work_dir: str,
                      rounds: int) -> Tuple[float, float]:
    """``ssd-detect`` on ``video`` (``--out`` video and ``--json``) against
    the runtime alone on its decoded frames, alternating, ``rounds`` each.

    Returns:
        tuple[float, float]: Median FPS of ``ssd-detect`` and of the
        runtime.
    """
    capture = cv2.VideoCapture(video)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    detector = Detector(model, backend, precision, threads)
    argv = [model, video, '--out', osp.join(work_dir, 'drawn.mp4'), '--json',
            osp.join(work_dir, 'detections.json'), '--backend', backend,
            '--precision', precision, '--threads', str(threads),
            '--no-progress']
    detect_fps, runtime_fps = [], []
    for frame in frames[:10]:  # warm-up
        detector(frame)
    for _ in range(rounds):
        summary = run(parse_args(argv))
        detect_fps.append(summary['fps'])
        start = time.perf_counter()
        for frame in frames:
            detector(frame)
        runtime_fps.append(len(frames) / (time.perf_counter() - start))
    return statistics.median(detect_fps), statistics.median(runtime_fps)
