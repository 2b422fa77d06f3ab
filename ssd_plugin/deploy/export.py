"""SSD as an ONNX graph: the whole detector (end2end) or the network (raw).

``end2end`` puts section 3's inference into the graph with standard ONNX ops
only (no custom-op library): backbone, neck, head, softmax, decoding against
the default boxes, the score threshold, the ``nms_pre`` best (box, class)
pairs, per-class ``NonMaxSuppression`` and the ``max_per_img`` best per image.
Outputs follow mmdeploy's end2end detectors: ``dets`` ``(N, K, 5)`` (x1, y1,
x2, y2 in input pixels, score) and ``labels`` ``(N, K)`` int64, ``K =
max_per_img``, best first, rows past an image's detections all zero.

``raw`` stops before post-processing: ``cls_logits`` ``(N, P, C + 1)``,
``bbox_deltas`` ``(N, P, 4)`` and ``priors`` ``(P, 4)``.

The input is one of two formats (:mod:`ssd_runtime.metadata`): ``float32
(N, 3, H, W)``, the data preprocessor's output (the default: mmdeploy's
convention, what programs written for float exports feed, and what the
``raw`` graph's users compare with the torch network), or ``uint8 (N, H,
W, 3)`` BGR, the resized image as OpenCV gives it, with the channel swap,
``(x - mean) / std`` and NHWC -> NCHW inside the graph, in the data
preprocessor's order and precision: a deployed program then only resizes
(``ssd_runtime``), and no float copy of the image crosses into the backend.
Every fact a program needs to prepare the input is in ``metadata_props``.

The batch is dynamic, the input ``H x W`` static: the default boxes are
constants of that size, and torch's exporter gets ceil-mode pooling wrong
with dynamic sizes (pytorch #113155). Both backends reject another size;
the size is also stored in the model's ``metadata_props`` (:data:`META`) for
:class:`ssd_plugin.deploy.DeployedDetector` and ``ssd_runtime`` to check and
to say why.

The selection is in :mod:`ssd_plugin.deploy.selection`; the uint8 input and
the checks of the config's test pipeline in
:mod:`ssd_plugin.deploy.graph_input`.

Shape shorthand: ``N`` images, ``P`` default boxes, ``C`` object classes
(background is index ``C`` of the logits, mmdet's convention), ``K``
detections per image.
"""
import copy
import warnings
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from torch import Tensor, nn

from ssd_plugin.deploy.graph_input import (Uint8Input,
                                           check_runtime_preprocessing,
                                           normalisation, resize_interpolation)
from ssd_plugin.deploy.selection import (NonMaxSuppression, deploy_test_cfg,
                                         select_detections)
from ssd_plugin.models.ssd_head import flatten_levels
from ssd_plugin.utils.network_input import default_boxes
from ssd_plugin.version import __version__
# META (the metadata_props keys) is re-exported: importable from here too.
from ssd_runtime.metadata import (FLOAT_NCHW, INPUT_FORMATS, META, UINT8_BGR,
                                  ModelInfo)

__all__ = ['End2EndSSD', 'META', 'NonMaxSuppression', 'OPSET', 'RawSSD',
           'Uint8Input', 'deploy_test_cfg', 'export_onnx',
           'select_detections']

OPSET = 17


class RawSSD(nn.Module):
    """A detector's network as one graph: ``cls_logits``, ``bbox_deltas``
    and ``priors`` (the ``raw`` mode, see the module).

    Args:
        detector (nn.Module): mmdet ``SingleStageDetector`` with an
            ``SSDHead``, in eval mode, on any device (the default boxes are
            made there).
        input_size (tuple[int, int]): ``(H, W)`` of the network input.
        input_format (str): ``FLOAT_NCHW`` (default) or ``UINT8_BGR``
            (:class:`Uint8Input` first, from the detector's data
            preprocessor).

    Raises:
        ValueError: On another ``input_format``.
    """

    output_names = ('cls_logits', 'bbox_deltas', 'priors')
    # The test_cfg baked into the graph: none without post-processing.
    cfg: Optional[dict] = None

    def __init__(self, detector: nn.Module, input_size: Tuple[int, int],
                 input_format: str = FLOAT_NCHW) -> None:
        super().__init__()
        if input_format not in INPUT_FORMATS:
            raise ValueError(f'input_format={input_format!r}; use one of '
                             f'{INPUT_FORMATS}')
        self.detector = detector
        self.input_format = input_format
        self.input_size = tuple(int(s) for s in input_size)
        self.normalise = Uint8Input(input_size, **normalisation(detector)) \
            if input_format == UINT8_BGR else None
        # A persistent buffer: the tracer sees those, and raw mode outputs it.
        self.register_buffer('priors', torch.cat(
            default_boxes(detector, self.input_size)[1]))

    def example_input(self) -> Tensor:
        """A zero input of ``input_format`` at batch 1, for tracing."""
        if self.input_format == UINT8_BGR:
            return torch.zeros(1, *self.input_size, 3, dtype=torch.uint8)
        return torch.zeros(1, 3, *self.input_size)

    def network(self, inputs: Tensor) -> Tuple[Tensor, Tensor]:
        """``(N, P, C + 1)`` class logits and ``(N, P, 4)`` box deltas of an
        input of ``input_format``."""
        if self.normalise is not None:
            inputs = self.normalise(inputs)
        head = self.detector.bbox_head
        cls_scores, bbox_preds = head(self.detector.extract_feat(inputs))
        return (flatten_levels(cls_scores, head.cls_out_channels),
                flatten_levels(bbox_preds, 4))

    def forward(self, inputs: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """``cls_logits``, ``bbox_deltas`` and ``priors`` ``(P, 4)``."""
        return (*self.network(inputs), self.priors)


class End2EndSSD(RawSSD):
    """:class:`RawSSD` and the head's inference as one graph (the
    ``end2end`` mode, see the module).

    Args:
        detector, input_size, input_format: As :class:`RawSSD`.

    Raises:
        ValueError: On another ``input_format``, or a ``test_cfg`` the
            graph cannot hold (:func:`deploy_test_cfg`).
    """

    output_names = ('dets', 'labels')

    def __init__(self, detector: nn.Module, input_size: Tuple[int, int],
                 input_format: str = FLOAT_NCHW) -> None:
        super().__init__(detector, input_size, input_format)
        self.cfg = deploy_test_cfg(detector.bbox_head.test_cfg)

    def forward(self, inputs: Tensor) -> Tuple[Tensor, Tensor]:
        """``dets`` ``(N, K, 5)`` and ``labels`` ``(N, K)``."""
        logits, deltas = self.network(inputs)
        scores = logits.softmax(-1)[..., :-1]  # background dropped
        boxes = self.detector.bbox_head.bbox_coder.decode(
            self.priors.expand_as(deltas).reshape(-1, 4),
            deltas.reshape(-1, 4)).view_as(deltas)
        # Clip to the input as the head clips to img_shape (SSD resizes to
        # the input, so they agree).
        height, width = self.input_size
        limit = boxes.new_tensor([width, height, width, height])
        boxes = torch.min(boxes.clamp(min=0), limit)
        return select_detections(boxes, scores, self.cfg)


# The graph of each export mode.
WRAPPERS = dict(end2end=End2EndSSD, raw=RawSSD)


def export_onnx(detector: nn.Module, path: str,
                input_size: Tuple[int, int], mode: str = 'end2end',
                classes: Optional[Sequence[str]] = None,
                input_format: str = FLOAT_NCHW,
                cfg: Optional[Config] = None) -> Dict[str, str]:
    """Export ``detector`` to ``path``, check it, record its metadata.

    The graph is traced from an eval-mode CPU copy of ``detector``: the
    file holds no device, so it is the same whichever device the model
    lives on, the caller's model keeps its device and mode, and tracing
    needs no CUDA build of mmcv's NMS.

    Args:
        detector (nn.Module): mmdet detector with an ``SSDHead``, on any
            device; left as it is.
        path (str): Output ``.onnx`` file.
        input_size (tuple[int, int]): ``(H, W)`` of the network input.
        mode (str): ``'end2end'`` (default) or ``'raw'``.
        classes (Sequence[str], optional): Class names to store.
        input_format (str): ``FLOAT_NCHW`` (default) or ``UINT8_BGR``
            (module docstring).
        cfg (Config, optional): The detector's config, for the resize's
            interpolation and :func:`check_runtime_preprocessing`; None:
            ``detector.cfg`` (``init_detector`` sets it), else bilinear,
            unchecked.

    Returns:
        dict[str, str]: The ``metadata_props`` written (:data:`META`).

    Raises:
        ValueError: On another ``mode``; see :class:`End2EndSSD` and
            :func:`check_runtime_preprocessing`.
    """
    import onnx  # the deploy extra; checked by the caller's import
    cfg = cfg if cfg is not None else getattr(detector, 'cfg', None)
    if mode not in WRAPPERS:
        raise ValueError(f'mode={mode!r}; use one of {sorted(WRAPPERS)}')
    cpu_copy = copy.deepcopy(detector).cpu().eval()
    wrapper = WRAPPERS[mode](cpu_copy, input_size, input_format).eval()
    info = ModelInfo(
        mode=mode, input_size=wrapper.input_size,
        num_classes=detector.bbox_head.num_classes, test_cfg=wrapper.cfg,
        classes=list(classes or []), version=__version__,
        input_format=input_format,
        interpolation=resize_interpolation(cfg) if cfg else 'bilinear',
        **normalisation(detector))
    if cfg is not None:
        check_runtime_preprocessing(cfg, info)
    names = wrapper.output_names
    dynamic = {'input': {0: 'batch'}}
    dynamic.update({n: {0: 'batch'} for n in names if n != 'priors'})
    # Tracing warns of every Python int and assert on the way (mmdet's,
    # mmcv's); the static sizes they fix are intended (module docstring).
    # The TorchScript exporter is chosen on purpose (dynamo=False: the
    # torch.export-based one needs the onnxscript package, and the
    # quantizer selects the network's nodes by the module-path names this
    # one gives), so its deprecation notices are not the user's to act on.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', 'You are using the legacy',
                                DeprecationWarning)
        warnings.filterwarnings('ignore', 'The feature will be removed',
                                DeprecationWarning)
        torch.onnx.export(
            wrapper, (wrapper.example_input(), ), path,
            dynamo=False, opset_version=OPSET, input_names=['input'],
            output_names=list(names), dynamic_axes=dynamic)
    meta = info.props()
    model = onnx.load(path)
    onnx.helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return meta
