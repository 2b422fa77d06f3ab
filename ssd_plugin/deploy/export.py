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
convention, what any program written for our earlier exports feeds, and what
the ``raw`` graph's users compare with the torch network), or ``uint8 (N, H,
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

Shape shorthand: ``N`` images, ``P`` default boxes, ``C`` object classes
(background is index ``C`` of the logits, mmdet's convention), ``M`` boxes
kept by NMS, ``K`` detections per image.
"""
import copy
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmcv.ops import batched_nms
from mmcv.transforms import Compose
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import get_test_pipeline_cfg
from mmengine.config import Config, ConfigDict
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from torch import Tensor, nn

from ssd_plugin.models.ssd_head import flatten_levels
from ssd_plugin.registry import MODELS
from ssd_plugin.version import __version__
# META (the metadata_props keys) is re-exported: importable from here too.
from ssd_runtime.metadata import (FLOAT_NCHW, INPUT_FORMATS, INTERPOLATIONS,
                                  META, UINT8_BGR, ModelInfo)
from ssd_runtime.preprocess import preprocess

OPSET = 17
OUTPUT_NAMES = dict(end2end=('dets', 'labels'),
                    raw=('cls_logits', 'bbox_deltas', 'priors'))


class NonMaxSuppression(torch.autograd.Function):
    """ONNX's ``NonMaxSuppression`` (opset 11): per (image, class), greedy.

    Eager, mmcv's ``batched_nms`` with a group per (image, class), which
    suppresses at IoU above ``iou_threshold`` as ONNX does; the per-class
    cap is not applied there (our caller's ``max_per_img`` makes it moot).
    """

    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor, max_per_class: int,
                iou_threshold: float, score_threshold: float) -> Tensor:
        """``(M, 3)`` int64 ``(image, class, box)`` of the kept boxes.

        Args:
            boxes (Tensor): ``(N, P, 4)`` x1, y1, x2, y2.
            scores (Tensor): ``(N, C, P)``.
            max_per_class (int): ONNX's ``max_output_boxes_per_class``.
            iou_threshold (float): Suppress above this IoU.
            score_threshold (float): Only boxes scoring above it compete.
        """
        img, cls, box = torch.nonzero(scores > score_threshold,
                                      as_tuple=True)
        if img.numel() == 0:
            return scores.new_zeros((0, 3), dtype=torch.long)
        _, keep = batched_nms(boxes[img, box], scores[img, cls, box],
                              img * scores.size(1) + cls,
                              dict(iou_threshold=iou_threshold))
        return torch.stack([img[keep], cls[keep], box[keep]], 1)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class: int, iou_threshold: float,
                 score_threshold: float):
        """The standard op; corner boxes (``center_point_box=0``)."""
        return g.op(
            'NonMaxSuppression', boxes, scores,
            g.op('Constant', value_t=torch.tensor([max_per_class])),
            g.op('Constant', value_t=torch.tensor([iou_threshold])),
            g.op('Constant', value_t=torch.tensor([score_threshold])),
            center_point_box_i=0)


def deploy_test_cfg(test_cfg: Optional[dict]) -> Dict[str, float]:
    """The head's ``test_cfg`` as the graph bakes it in.

    Args:
        test_cfg (dict): ``score_thr``, ``nms_pre``, ``nms.iou_threshold``,
            ``max_per_img`` and ``min_bbox_size`` as in ``SSDHead``.

    Returns:
        dict: ``score_thr``, ``nms_pre`` (<= 0: all), ``iou_threshold``,
        ``max_per_img``, ``min_bbox_size``.

    Raises:
        ValueError: Without a ``test_cfg``, NMS or ``max_per_img``, for
            another NMS than plain ``nms``, or a positive
            ``min_bbox_size`` (original-image pixels, unknown to the graph).
    """
    if not test_cfg or 'nms' not in test_cfg or test_cfg.get(
            'max_per_img', -1) <= 0:
        raise ValueError(
            f'test_cfg={test_cfg!r}: end2end export needs nms=dict(type='
            "'nms', iou_threshold=...) and max_per_img > 0 in "
            'model.test_cfg; use --mode raw to post-process yourself')
    cfg = ConfigDict(test_cfg)
    if cfg.nms.get('type', 'nms') != 'nms':
        raise ValueError(f'test_cfg.nms.type={cfg.nms.type!r}: ONNX has '
                         "plain NMS only; set nms=dict(type='nms', ...)")
    if cfg.get('min_bbox_size', -1) > 0:
        raise ValueError(
            f'test_cfg.min_bbox_size={cfg.min_bbox_size} is in original-'
            'image pixels, which the graph does not know; set it to 0 (drop '
            'empty boxes) or -1 (keep all) before exporting')
    return dict(score_thr=float(cfg.get('score_thr', 0.)),
                nms_pre=int(cfg.get('nms_pre', -1)),
                iou_threshold=float(cfg.nms.iou_threshold),
                max_per_img=int(cfg.max_per_img),
                min_bbox_size=float(cfg.get('min_bbox_size', -1)))


def _take(values: Tensor, inds: Tensor) -> Tensor:
    """``(N, k, D)`` rows ``inds`` ``(N, k)`` of each image's ``(N, P, D)``
    ``values``: one ONNX ``Gather`` on the flattened rows (a ``GatherElements``
    with expanded indices is refused by OpenVINO when ``values`` is a slice
    of a wider tensor)."""
    # Static row count and width (ints): the backends need NMS's box width.
    num_rows, width = int(values.shape[1]), int(values.shape[2])
    offsets = torch.arange(inds.shape[0], device=inds.device)[:, None]
    return values.reshape(-1, width)[inds + offsets * num_rows]


def _candidates(boxes: Tensor, scores: Tensor,
                nms_pre: int) -> Tuple[Tensor, Tensor]:
    """The (box, class) pairs that compete in NMS, as NMS takes them.

    With ``0 < nms_pre < P * C``: the ``nms_pre`` best pairs (``k =
    nms_pre``), each pair's box and, per class, its score where the pair is
    of that class, else 0; otherwise every box with its scores (``k = P``).
    Per-class NMS on the first form decides as on the second restricted to
    the chosen pairs, over ``C * k`` instead of ``C * P`` scores.

    The best pairs are found among the boxes of the ``nms_pre`` highest
    class scores: a box holding one of the ``nms_pre`` best pairs has a
    higher best score than all but at most ``nms_pre - 1`` boxes, so the
    ``TopK`` over pairs scans ``nms_pre * C`` scores, not ``P * C``
    (SSDLite-320 on COCO: 80 000 instead of 258 720).

    Returns:
        tuple[Tensor, Tensor]: ``(N, k, 4)`` boxes and ``(N, C, k)``
        scores.
    """
    num_boxes, num_classes = scores.shape[1:]
    if not 0 < nms_pre < num_boxes * num_classes:
        return boxes, scores.transpose(1, 2)
    if nms_pre < num_boxes:
        _, box_inds = scores.max(-1)[0].topk(nms_pre, dim=1)  # (N, k)
        scores, boxes = _take(scores, box_inds), _take(boxes, box_inds)
    top, pairs = scores.flatten(1).topk(nms_pre, dim=1)  # box * C + label
    cand_boxes = _take(boxes, torch.div(pairs, num_classes,
                                        rounding_mode='floor'))
    classes = torch.arange(num_classes, device=scores.device)[:, None]
    of_class = (pairs % num_classes)[:, None, :] == classes  # (N, C, k)
    return cand_boxes, torch.where(of_class, top[:, None, :],
                                   top.new_zeros(()))


def select_detections(boxes: Tensor, scores: Tensor,
                      cfg: Dict[str, float]) -> Tuple[Tensor, Tensor]:
    """``SSDHead.predict_by_feat``'s selection as fixed-shape tensor ops.

    The ``nms_pre`` best (box, class) pairs per image (:func:`_candidates`),
    of which those above ``score_thr`` and (``min_bbox_size >= 0``) not
    empty compete in per-class NMS, then the ``max_per_img`` best: the same
    order of steps as the head.

    Args:
        boxes (Tensor): ``(N, P, 4)`` decoded, clipped to the input.
        scores (Tensor): ``(N, P, C)`` class probabilities.
        cfg (dict): From :func:`deploy_test_cfg`.

    Returns:
        tuple[Tensor, Tensor]: ``dets`` ``(N, K, 5)`` and ``labels``
        ``(N, K)``; rows past an image's detections are zeros.
    """
    num_imgs, _, num_classes = scores.shape
    cand_boxes, cand = _candidates(boxes, scores, cfg['nms_pre'])
    num_cands = cand.size(2)
    if cfg['min_bbox_size'] >= 0:
        wh = cand_boxes[..., 2:] - cand_boxes[..., :2]
        big = (wh > cfg['min_bbox_size']).all(-1)[:, None, :]
        cand = torch.where(big, cand, cand.new_zeros(()))
    # NMS drops what scores at most score_thr (and 0: the out-of-race).
    kept = NonMaxSuppression.apply(cand_boxes, cand, cfg['max_per_img'],
                                   cfg['iou_threshold'],
                                   max(cfg['score_thr'], 0.))
    index = (kept[:, 0] * num_classes + kept[:, 1]) * num_cands + kept[:, 2]
    keep = torch.zeros_like(cand).flatten().scatter(0, index, 1.)
    final = torch.where(keep.view_as(cand) > 0, cand, cand.new_zeros(()))
    k = min(cfg['max_per_img'], num_classes * num_cands)
    top_scores, top = final.flatten(1).topk(k, dim=1)  # c * k' + candidate
    cand_inds = top % num_cands
    found = top_scores > 0  # (N, K); explicit casts: ONNX has no bool Mul
    dets = torch.gather(cand_boxes, 1,
                        cand_inds[..., None].expand(-1, -1, 4))
    dets = torch.cat([dets, top_scores[..., None]], -1) * found[
        ..., None].to(dets.dtype)
    labels = torch.div(top, num_cands, rounding_mode='floor') * found.long()
    return dets, labels


def normalisation(detector: nn.Module) -> Dict[str, object]:
    """The data preprocessor's pixel normalisation, as numbers.

    Returns:
        dict: ``channel_order`` (``'rgb'`` if it swaps OpenCV's BGR, else
        ``'bgr'``), ``mean`` and ``std`` (lists of 3 floats, in that order;
        0 and 1 when it does not normalise).
    """
    preprocessor = detector.data_preprocessor
    swap = bool(getattr(preprocessor, '_channel_conversion', False))
    if getattr(preprocessor, '_enable_normalize', False):
        mean = preprocessor.mean.flatten().tolist()
        std = preprocessor.std.flatten().tolist()
    else:
        mean, std = [0.] * 3, [1.] * 3
    return dict(channel_order='rgb' if swap else 'bgr', mean=mean, std=std)


class Uint8Input(nn.Module):
    """``uint8 (N, H, W, 3)`` BGR to the network's float input.

    NHWC -> NCHW, then the data preprocessor's steps in its order and
    precision: the channel swap (if it makes RGB), ``float32``, ``(x -
    mean) / std``. The mean and std are expanded to the whole ``(1, 3, H,
    W)`` plane (a constant the backends fold at load): ONNX Runtime runs an
    INT8 model's first convolution NHWC and moves these steps there, where
    broadcasting 3 values along the last axis took it 6x longer than
    same-shape arithmetic.

    Args:
        input_size (tuple[int, int]): ``(H, W)``.
        channel_order (str): ``'rgb'`` or ``'bgr'``, what the network takes.
        mean, std (Sequence[float]): Per channel in ``channel_order``.
    """

    def __init__(self, input_size: Tuple[int, int], channel_order: str,
                 mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.swap = channel_order == 'rgb'
        self.plane = (1, 3, int(input_size[0]), int(input_size[1]))
        self.register_buffer('mean', torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, images: Tensor) -> Tensor:
        """``(N, H, W, 3)`` uint8 to ``(N, 3, H, W)`` float32."""
        images = images.permute(0, 3, 1, 2)
        if self.swap:  # a Gather, as the preprocessor's [[2, 1, 0], ...]:
            images = images[:, [2, 1, 0]]  # ORT kept a flip's Slice NHWC
        return (images.float() - self.mean.expand(self.plane)) / \
            self.std.expand(self.plane)


class End2EndSSD(nn.Module):
    """A detector and its head's inference as one graph (see the module).

    Args:
        detector (nn.Module): mmdet ``SingleStageDetector`` with an
            ``SSDHead``, in eval mode.
        input_size (tuple[int, int]): ``(H, W)`` of the network input.
        mode (str): ``'end2end'`` or ``'raw'``.
        input_format (str): ``FLOAT_NCHW`` (default) or ``UINT8_BGR``
            (:class:`Uint8Input` first, from the detector's data
            preprocessor).

    Raises:
        ValueError: On another ``mode`` or ``input_format``, or a
            ``test_cfg`` the graph cannot hold (:func:`deploy_test_cfg`,
            end2end only).
    """

    def __init__(self, detector: nn.Module, input_size: Tuple[int, int],
                 mode: str = 'end2end', input_format: str = FLOAT_NCHW
                 ) -> None:
        super().__init__()
        if mode not in OUTPUT_NAMES:
            raise ValueError(f'mode={mode!r}; use one of '
                             f'{sorted(OUTPUT_NAMES)}')
        if input_format not in INPUT_FORMATS:
            raise ValueError(f'input_format={input_format!r}; use one of '
                             f'{INPUT_FORMATS}')
        self.detector = detector
        self.mode, self.input_format = mode, input_format
        self.input_size = tuple(int(s) for s in input_size)
        self.normalise = Uint8Input(input_size, **normalisation(detector)) \
            if input_format == UINT8_BGR else None
        head = detector.bbox_head
        self.cfg = deploy_test_cfg(head.test_cfg) if mode == 'end2end' \
            else None
        # A persistent buffer: the tracer sees those, and raw mode outputs it.
        self.register_buffer('priors', self._priors())

    def example_input(self) -> Tensor:
        """A zero input of ``input_format`` at batch 1, for tracing."""
        if self.input_format == UINT8_BGR:
            return torch.zeros(1, *self.input_size, 3, dtype=torch.uint8)
        return torch.zeros(1, 3, *self.input_size)

    def _priors(self) -> Tensor:
        """``(P, 4)`` default boxes of the maps at ``input_size``."""
        head = self.detector.bbox_head
        probe = torch.zeros(1, 3, *self.input_size)
        with torch.no_grad():
            cls_scores, _ = head(self.detector.extract_feat(probe))
        priors = head.prior_generator.grid_priors(
            [tuple(s.shape[-2:]) for s in cls_scores], dtype=torch.float32,
            device='cpu', input_shape=self.input_size)
        return torch.cat([get_box_tensor(p) for p in priors])

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """An input of ``input_format`` to the outputs of ``mode``."""
        if self.normalise is not None:
            inputs = self.normalise(inputs)
        head = self.detector.bbox_head
        cls_scores, bbox_preds = head(self.detector.extract_feat(inputs))
        logits = flatten_levels(cls_scores, head.cls_out_channels)
        deltas = flatten_levels(bbox_preds, 4)
        if self.mode == 'raw':
            return logits, deltas, self.priors
        scores = logits.softmax(-1)[..., :-1]  # background dropped
        boxes = head.bbox_coder.decode(
            self.priors.expand_as(deltas).reshape(-1, 4),
            deltas.reshape(-1, 4)).view_as(deltas)
        # Clip to the input as the head clips to img_shape (SSD resizes to
        # the input, so they agree).
        height, width = self.input_size
        limit = boxes.new_tensor([width, height, width, height])
        boxes = torch.min(boxes.clamp(min=0), limit)
        return select_detections(boxes, scores, self.cfg)


def _test_inputs(cfg: Config, images: Sequence[np.ndarray]) -> List[Tensor]:
    """The config's test pipeline and data preprocessor on BGR arrays: one
    ``(1, 3, H, W)`` network input per image."""
    init_default_scope(cfg.get('default_scope', 'ssd_plugin'))
    pipeline = copy.deepcopy(get_test_pipeline_cfg(cfg))
    pipeline[0].type = 'mmdet.LoadImageFromNDArray'
    transform = Compose(pipeline)
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    inputs = []
    for image in images:
        sample = transform(dict(img=image, img_id=0))
        with torch.no_grad():
            inputs.append(preprocessor(pseudo_collate([sample]),
                                       False)['inputs'])
    return inputs


def config_input_size(cfg: Config) -> Tuple[int, int]:
    """``(H, W)`` the config's test pipeline and preprocessor feed the net.

    Two images of different shapes go through both; SSD's pipeline resizes
    every image to the same input (``Resize(keep_ratio=False)``).

    Raises:
        ValueError: If the two inputs differ in size.
    """
    sizes = [tuple(x.shape[-2:]) for x in _test_inputs(
        cfg, [np.zeros(shape, np.uint8)
              for shape in ((480, 640, 3), (500, 333, 3))])]
    if sizes[0] != sizes[1]:
        raise ValueError(
            f'the test pipeline turns 480x640 and 500x333 images into '
            f'{sizes[0]} and {sizes[1]} inputs; ONNX export needs one fixed '
            "size: Resize(scale=..., keep_ratio=False) as SSD's configs")
    return sizes[0]


def resize_interpolation(cfg: Config) -> str:
    """The interpolation of the test pipeline's ``Resize`` (mmcv's name;
    ``'bilinear'``, its default, without one)."""
    for step in get_test_pipeline_cfg(cfg):
        if str(step.get('type', '')).split('.')[-1] == 'Resize':
            interpolation = step.get('interpolation', 'bilinear')
            if interpolation not in INTERPOLATIONS:
                raise ValueError(
                    f'the test Resize has interpolation={interpolation!r}; '
                    f'a deployed model resizes with one of {INTERPOLATIONS}')
            return interpolation
    return 'bilinear'


def check_runtime_preprocessing(cfg: Config, info: ModelInfo,
                                seed: int = 0) -> None:
    """Check that ``ssd_runtime``'s preprocessing gives the config's inputs.

    A random non-square image goes through the config's test pipeline and
    data preprocessor, and through :func:`ssd_runtime.preprocess.preprocess`
    with ``info``'s facts (as a float graph): the numbers must agree, or a
    deployed model would see other inputs than the torch model.

    Raises:
        ValueError: If they differ (a test pipeline that does more than
            SSD's: to BGR, ``Resize(keep_ratio=False)``, normalise).
    """
    image = np.random.default_rng(seed).integers(0, 256, (97, 131, 3),
                                                 np.uint8)
    expected = _test_inputs(cfg, [image])[0].numpy()
    as_float = ModelInfo(**dict(vars(info), input_format=FLOAT_NCHW))
    got = preprocess([image], as_float)[0]
    if got.shape != expected.shape or not np.allclose(got, expected,
                                                      rtol=0, atol=1e-4):
        diff = np.abs(got - expected).max() if got.shape == expected.shape \
            else f'shapes {got.shape} and {expected.shape}'
        raise ValueError(
            'the config\'s test pipeline does more than to-BGR, Resize('
            "keep_ratio=False) with a cv2 interpolation and the data "
            f'preprocessor\'s normalisation (differs by {diff}): a deployed '
            'model would see other inputs; use SSD\'s test pipeline')


def export_onnx(detector: nn.Module, path: str,
                input_size: Tuple[int, int], mode: str = 'end2end',
                classes: Optional[Sequence[str]] = None,
                input_format: str = FLOAT_NCHW,
                cfg: Optional[Config] = None) -> Dict[str, str]:
    """Export ``detector`` to ``path``, check it, record its metadata.

    Args:
        detector (nn.Module): mmdet detector with an ``SSDHead``; put in
            eval mode.
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
        ValueError: See :class:`End2EndSSD` and
            :func:`check_runtime_preprocessing`.
    """
    import onnx  # the deploy extra; checked by the caller's import
    cfg = cfg if cfg is not None else getattr(detector, 'cfg', None)
    wrapper = End2EndSSD(detector.eval(), input_size, mode,
                         input_format).eval()
    info = ModelInfo(
        mode=mode, input_size=wrapper.input_size,
        num_classes=detector.bbox_head.num_classes, test_cfg=wrapper.cfg,
        classes=list(classes or []), version=__version__,
        input_format=input_format,
        interpolation=resize_interpolation(cfg) if cfg else 'bilinear',
        **normalisation(detector))
    if cfg is not None:
        check_runtime_preprocessing(cfg, info)
    names = OUTPUT_NAMES[mode]
    dynamic = {'input': {0: 'batch'}}
    dynamic.update({n: {0: 'batch'} for n in names if n != 'priors'})
    # Tracing warns of every Python int and assert on the way (mmdet's,
    # mmcv's); the static sizes they fix are intended (module docstring).
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
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
