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
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Union

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from torch import Tensor

from ssd_plugin.deploy.backends import build_session, import_backend
from ssd_plugin.deploy.export import META
from ssd_plugin.registry import MODELS


def read_metadata(path: str) -> Dict[str, object]:
    """What :func:`~ssd_plugin.deploy.export.export_onnx` stored in ``path``.

    Args:
        path (str): ``.onnx`` file.

    Returns:
        dict: ``mode`` (str), ``input_size`` ``(H, W)``, ``num_classes``,
        ``test_cfg`` (dict or None), ``classes`` (list), ``version``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If it is no ONNX file or was not exported by us.
    """
    onnx = import_backend('onnx')
    if not osp.isfile(path):
        raise FileNotFoundError(f'no ONNX model at {path!r}; export one '
                                'with tools/deployment/export_onnx.py')
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as error:  # onnx raises DecodeError and others
        raise ValueError(f'{path!r} is not an ONNX model ({error})') from error
    props = {p.key: p.value for p in model.metadata_props}
    if META['mode'] not in props:
        raise ValueError(
            f'{path!r} was not exported by ssd_plugin (no '
            f'{META["mode"]!r} in its metadata_props, which hold '
            f'{sorted(props)}); export the model with '
            'tools/deployment/export_onnx.py CONFIG CHECKPOINT OUT.onnx')
    return dict(
        mode=props[META['mode']],
        input_size=tuple(int(s) for s in props[META['input_size']].split(',')),
        num_classes=int(props[META['num_classes']]),
        test_cfg=json.loads(props[META['test_cfg']]),
        classes=json.loads(props[META['classes']]),
        version=props[META['version']])


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
        ``scores`` ``(D,)``, ``labels`` ``(D,)``, best first.
    """
    found = dets[:, 4] > 0
    boxes = torch.from_numpy(np.ascontiguousarray(dets[found, :4]))
    height, width = meta['img_shape'][:2]
    boxes = torch.min(boxes.clamp(min=0),
                      boxes.new_tensor([width, height, width, height]))
    inverse = [1 / s for s in meta['scale_factor']]
    boxes = boxes * boxes.new_tensor(inverse * 2)
    return InstanceData(bboxes=boxes,
                        scores=torch.from_numpy(dets[found, 4].copy()),
                        labels=torch.from_numpy(labels[found].copy()))


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
    """

    def __init__(self, model_path: str, config: Union[str, Config],
                 backend: str = 'onnxruntime', precision: str = 'f32',
                 num_threads: Optional[int] = None) -> None:
        cfg = config if isinstance(config, Config) else Config.fromfile(
            config)
        super().__init__(
            data_preprocessor=MODELS.build(cfg.model.data_preprocessor))
        self.meta = read_metadata(model_path)
        if self.meta['mode'] != 'end2end':
            raise ValueError(
                f'{model_path!r} is a {self.meta["mode"]!r} export (network '
                'outputs without post-processing); DeployedDetector runs '
                'end2end exports: export_onnx.py ... --mode end2end')
        self.cfg = cfg  # read by mmdet's inference_detector
        self.dataset_meta = dict(classes=tuple(self.meta['classes']))
        self.backend, self.precision = backend, precision
        self.session = build_session(model_path, backend, precision,
                                     num_threads)

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
        array = inputs.detach().cpu().float().contiguous().numpy()
        dets, labels = self.session(array)[:2]
        for index, sample in enumerate(data_samples):
            sample.pred_instances = to_instances(
                dets[index], labels[index], sample.metainfo).to(inputs.device)
        return data_samples
