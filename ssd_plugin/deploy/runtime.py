"""An exported SSD as an mmdet detector: pipeline in, DetDataSample out.

:class:`DeployedDetector` is an mmengine ``BaseModel`` whose network is an
ONNX Runtime or OpenVINO session over an ``end2end`` export
(:mod:`ssd_plugin.deploy.export`). Its data preprocessor is built from the
config, so ``inference_detector(deployed, image)``, ``test_step`` on a
test-loader batch, mmdet's evaluators and ``DetLocalVisualizer`` work on it
as on the torch model: the config's test pipeline resizes the image, the
graph detects in input pixels, and the boxes are clipped to ``img_shape``
and mapped back to the original image with ``scale_factor``, as
``SSDHead.predict_by_feat(rescale=True)`` does.

The session, the metadata and the mapping back are ``ssd_runtime``'s (the
torch-free runtime): the same code as its ``Detector``, so both give the
same detections.
"""
from dataclasses import asdict
from typing import Dict, List, Optional, Union

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from torch import Tensor

from ssd_plugin.registry import MODELS
from ssd_plugin.utils.config import load_config, use_default_scope
from ssd_runtime.backends import build_session
from ssd_runtime.detections import to_original
from ssd_runtime.metadata import (UINT8_BGR, ModelInfo, parse_metadata,
                                  read_model_info)
from ssd_runtime.preprocess import to_uint8


def _as_dict(info: ModelInfo) -> Dict[str, object]:
    return dict(asdict(info), classes=list(info.classes))


def read_metadata(path: str) -> Dict[str, object]:
    """What :func:`~ssd_plugin.deploy.export.export_onnx` stored in ``path``.

    Args:
        path (str): ``.onnx`` file.

    Returns:
        dict: The fields of :class:`ssd_runtime.metadata.ModelInfo`:
        ``mode`` (str), ``input_size`` ``(H, W)``, ``num_classes``,
        ``test_cfg`` (dict or None), ``classes`` (list), ``version``,
        ``input_format``, ``interpolation``, ``channel_order``, ``mean``,
        ``std``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If it is no ONNX file or was not exported by us.
    """
    return _as_dict(read_model_info(path))


def network_to_graph_input(inputs: np.ndarray,
                           info: ModelInfo) -> np.ndarray:
    """The data preprocessor's output as the graph's input format.

    A float graph takes it as is. For a uint8 graph the normalisation is
    undone: ``x * std + mean`` (``x`` came from integer pixels, so the
    rounding recovers them exactly), channels back to BGR, NCHW -> NHWC.

    Args:
        inputs (np.ndarray): ``(N, 3, H, W)`` float32 network input.
        info (ModelInfo): The export's facts.

    Returns:
        np.ndarray: ``(N, 3, H, W)`` float32 or ``(N, H, W, 3)`` uint8 BGR.
    """
    if info.input_format != UINT8_BGR:
        return inputs
    mean = np.asarray(info.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(info.std, np.float32).reshape(1, 3, 1, 1)
    pixels = inputs * std + mean
    if info.channel_order == 'rgb':
        pixels = pixels[:, ::-1]
    return np.ascontiguousarray(to_uint8(pixels).transpose(0, 2, 3, 1))


def to_instances(dets: np.ndarray, labels: np.ndarray,
                 meta: dict) -> InstanceData:
    """One image's graph outputs as mmdet's ``pred_instances``.

    Args:
        dets (np.ndarray): ``(K, 5)`` x1, y1, x2, y2 (input pixels), score;
            all-zero rows are padding.
        labels (np.ndarray): ``(K,)`` int64.
        meta (dict): ``img_shape`` ``(h, w)`` and ``scale_factor``
            ``(w_scale, h_scale)`` of the test pipeline.

    Returns:
        InstanceData: ``bboxes`` ``(D, 4)`` in the original image,
        ``scores`` ``(D,)``, ``labels`` ``(D,)``, best first
        (:func:`ssd_runtime.detections.to_original`).
    """
    boxes, scores, labels = to_original(dets, labels, meta['img_shape'],
                                        meta['scale_factor'])
    return InstanceData(bboxes=torch.from_numpy(boxes),
                        scores=torch.from_numpy(scores),
                        labels=torch.from_numpy(labels))


class DeployedDetector(BaseModel):
    """An ``end2end`` ONNX export run by ONNX Runtime or OpenVINO.

    Args:
        model_path (str): The ``.onnx`` file (FP32 or quantized).
        config (str | Config): The model's config (test pipeline, data
            preprocessor).
        backend (str): ``'onnxruntime'`` (default) or ``'openvino'``.
        precision (str): ``'f32'`` (default) or, on OpenVINO, ``'bf16'``.
        num_threads (int, optional): CPU threads; None: the backend's
            default.

    Raises:
        FileNotFoundError, ValueError: See :func:`read_metadata`; also a
            ``raw`` export (no detections to return).
        ImportError: If the backend is not installed (names the extra).

    An export with a uint8 input (``export_onnx.py --input uint8``) runs
    too: the normalised batch is turned back into the resized BGR pixels
    (:func:`network_to_graph_input`).
    """

    def __init__(self, model_path: str, config: Union[str, Config],
                 backend: str = 'onnxruntime', precision: str = 'f32',
                 num_threads: Optional[int] = None) -> None:
        cfg = config if isinstance(config, Config) else load_config(
            config, set_scope=False)
        # As mmdet's init_detector: inference_detector builds the test
        # pipeline's unscoped names (PackDetInputs) in the default scope.
        use_default_scope(cfg)
        super().__init__(
            data_preprocessor=MODELS.build(cfg.model.data_preprocessor))
        self.session = build_session(model_path, backend, precision,
                                     num_threads)
        self.info = parse_metadata(self.session.props, model_path)
        self.meta = _as_dict(self.info)
        if self.meta['mode'] != 'end2end':
            raise ValueError(
                f'{model_path!r} is a {self.meta["mode"]!r} export (network '
                'outputs without post-processing); DeployedDetector runs '
                'end2end exports: export_onnx.py ... --mode end2end')
        self.cfg = cfg  # read by mmdet's inference_detector
        self.dataset_meta = dict(classes=tuple(self.meta['classes']))

    def forward(self, inputs: Tensor,
                data_samples: Optional[List[DetDataSample]] = None,
                mode: str = 'predict') -> List[DetDataSample]:
        """Detections for a preprocessed batch (mmengine's ``predict``).

        Args:
            inputs (Tensor): ``(N, 3, H, W)`` from the data preprocessor.
            data_samples (list[DetDataSample]): With ``img_shape`` and
                ``scale_factor`` in their metainfo.
            mode (str): Only ``'predict'``.

        Returns:
            list[DetDataSample]: ``data_samples`` with ``pred_instances``
            on the device of ``inputs``, as a torch detector returns them
            (the session itself runs on the CPU).

        Raises:
            ValueError: On another mode, or an input of another size than
                the export's.
        """
        if mode != 'predict':
            raise ValueError(f"mode={mode!r}: a deployed model only "
                             "predicts; use mode='predict'")
        size = tuple(inputs.shape[-2:])
        if size != self.meta['input_size']:
            raise ValueError(
                f'the config gives {size[0]}x{size[1]} network inputs but '
                f'the model was exported at {self.meta["input_size"][0]}x'
                f'{self.meta["input_size"][1]}; use the config it was '
                'exported with, or export it again from this config')
        # A Runner may have moved the model (and so the preprocessor's
        # output) to CUDA; the backends read host memory.
        array = network_to_graph_input(
            inputs.detach().cpu().float().contiguous().numpy(), self.info)
        dets, labels = self.session(array)[:2]
        for index, sample in enumerate(data_samples):
            sample.pred_instances = to_instances(
                dets[index], labels[index], sample.metainfo).to(inputs.device)
        return data_samples
