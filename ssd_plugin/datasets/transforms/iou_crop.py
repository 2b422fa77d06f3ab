"""SSD's patch sampling with a minimum IoU (section 2.2; Caffe's
``batch_sampler``). Shapes: ``S`` samplers, ``T`` trials, ``N`` boxes,
``H, W`` the image; boxes and crops ``(x1, y1, x2, y2)`` pixels. The
constraint is Caffe's ``'any'`` (one kept box has the IoU) or mmdet's
``'all'`` (every proper box has it); differences from Caffe and which
constraint to choose: see docs/design.md.
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmdet.structures.bbox import HorizontalBoxes, autocast_box_type

from ssd_plugin.registry import TRANSFORMS

# Which boxes must have a sampler's IoU: Caffe's and mmdet's rules.
CONSTRAINTS = ('any', 'all')


class CropChoice(NamedTuple):
    """The chosen ``(4,)`` int64 crop and its sampler's ``min_iou`` (None:
    whole image, 0.0: the unconstrained sampler)."""
    crop: np.ndarray
    min_iou: Optional[float]


def trials_from_uniforms(
        uniforms: np.ndarray, scale_range: Tuple[float, float],
        aspect_ratio_range: Tuple[float, float]) -> np.ndarray:
    """Caffe's ``SampleBBox`` on ``(..., 4)`` uniforms (scale, ratio, x, y
    offsets): ``(..., 4)`` float64 patches in the unit square, of side scale in
    ``scale_range`` (area ``scale ** 2``) and image-relative width / height in
    ``aspect_ratio_range``, clamped to fit (as Caffe)."""
    scale = scale_range[0] + uniforms[..., 0] * (
        scale_range[1] - scale_range[0])
    ratio = aspect_ratio_range[0] + uniforms[..., 1] * (
        aspect_ratio_range[1] - aspect_ratio_range[0])
    # Clamp so that neither side exceeds the image (Caffe does the same).
    ratio = np.clip(ratio, scale**2, 1.0 / scale**2)
    # min(): the clamp is exact in reals, 1 + 1e-16 in floats.
    width = np.minimum(scale * np.sqrt(ratio), 1.0)
    height = np.minimum(scale / np.sqrt(ratio), 1.0)
    x1 = uniforms[..., 2] * (1.0 - width)
    y1 = uniforms[..., 3] * (1.0 - height)
    return np.stack([x1, y1, x1 + width, y1 + height], axis=-1)


def to_pixel_crops(patches: np.ndarray, img_hw: Tuple[int, int]) -> np.ndarray:
    """``(..., 4)`` normalised patches to int64 crops of at least one pixel,
    ``0 <= x1 < x2 <= W``, ``0 <= y1 < y2 <= H``; ``img_hw`` is ``(H, W)``."""
    h, w = img_hw
    size = np.array([w, h, w, h], dtype=np.float64)
    pix = patches * size
    x1y1 = np.floor(pix[..., :2]).astype(np.int64)
    wh = np.maximum(np.rint(pix[..., 2:] - pix[..., :2]).astype(np.int64), 1)
    x1y1 = np.clip(x1y1, 0, size[:2].astype(np.int64) - 1)
    x2y2 = np.minimum(x1y1 + wh, size[:2].astype(np.int64))
    return np.concatenate([x1y1, x2y2], axis=-1)


def box_iou(crops: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``(K, N)`` float64 IoU of ``(K, 4)`` crops (positive area) with
    ``(N, 4)`` boxes (degenerate ones get 0)."""
    crops = crops.astype(np.float64)[:, None, :]
    boxes = boxes.astype(np.float64)[None, :, :]
    inter_w = np.minimum(crops[..., 2], boxes[..., 2]) - np.maximum(
        crops[..., 0], boxes[..., 0])
    inter_h = np.minimum(crops[..., 3], boxes[..., 3]) - np.maximum(
        crops[..., 1], boxes[..., 1])
    inter = np.clip(inter_w, 0, None) * np.clip(inter_h, 0, None)
    area_c = (crops[..., 2] - crops[..., 0]) * (crops[..., 3] - crops[..., 1])
    area_b = (
        np.clip(boxes[..., 2] - boxes[..., 0], 0, None) *
        np.clip(boxes[..., 3] - boxes[..., 1], 0, None))
    return inter / (area_c + area_b - inter)


def kept_boxes(crops: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``(K, N)`` bool: box centre in the crop, borders included (Caffe's
    ``emit_type: CENTER``), and positive width and height (Caffe's
    ``ProjectBBox`` drops empty boxes), for ``(K, 4)`` crops, ``(N, 4)``
    boxes."""
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2
    proper = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return ((centre_x >= crops[:, None, 0]) & (centre_x <= crops[:, None, 2]) &
            (centre_y >= crops[:, None, 1]) & (centre_y <= crops[:, None, 3])
            & proper[None, :])


def first_valid_trials(crops: np.ndarray,
                       boxes: np.ndarray,
                       min_ious: np.ndarray,
                       constraint: str = 'any') -> np.ndarray:
    """``(S,)`` int64 index of each sampler's first successful trial, or -1.

    A successful trial keeps some box (:func:`kept_boxes`). With ``'any'``
    (Caffe's ``SatisfySampleConstraint``) some kept box has IoU >= the
    sampler's threshold; with ``'all'`` (mmdet's ``MinIoURandomCrop``) every
    proper box, kept or not, has it (degenerate boxes: every crop drops them).

    Args:
        crops: ``(S, T, 4)`` integer crops.
        boxes: ``(N, 4)`` boxes.
        min_ious: ``(S,)`` thresholds.
        constraint: One of :data:`CONSTRAINTS`. Defaults to 'any'.
    """
    num_samplers, num_trials = crops.shape[:2]
    if len(boxes) == 0 or num_samplers == 0:
        return np.full(num_samplers, -1, dtype=np.int64)
    flat = crops.reshape(-1, 4)
    iou = box_iou(flat, boxes).reshape(num_samplers, num_trials, -1)
    kept = kept_boxes(flat, boxes).reshape(iou.shape)
    enough = iou >= min_ious[:, None, None]
    if constraint == 'any':
        success = (enough & kept).any(axis=-1)
    else:
        proper = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        success = (enough | ~proper).all(axis=-1) & kept.any(axis=-1)
    return np.where(success.any(axis=1), success.argmax(axis=1), -1)


def boxes_as_array(gt_bboxes: Optional[HorizontalBoxes]) -> np.ndarray:
    """(N, 4) float32 view of ``gt_bboxes``; (0, 4) when there are none."""
    if gt_bboxes is None:
        return np.zeros((0, 4), np.float32)
    if not isinstance(gt_bboxes, HorizontalBoxes):
        raise TypeError(
            f'RandomIoUCrop crops HorizontalBoxes, got '
            f'{type(gt_bboxes).__name__}; '
            f"load boxes with LoadAnnotations (box_type='hbox', the default)")
    return gt_bboxes.numpy()


def apply_crop(results: dict, crop: np.ndarray, keep: np.ndarray) -> dict:
    """Crop ``img`` (to a view) and every per-box annotation of ``results`` in
    place to the ``(4,)`` integer ``crop``, keeping the ``(N,)`` bool ``keep``
    boxes, shifted and clipped to the crop."""
    x1, y1, x2, y2 = (int(v) for v in crop)
    results['img'] = results['img'][y1:y2, x1:x2]
    results['img_shape'] = (y2 - y1, x2 - x1)
    if results.get('gt_bboxes', None) is not None:
        boxes = results['gt_bboxes'].numpy()[keep] - np.array([x1, y1, x1, y1],
                                                              dtype=np.float32)
        np.clip(boxes, 0, [x2 - x1, y2 - y1, x2 - x1, y2 - y1], out=boxes)
        results['gt_bboxes'] = HorizontalBoxes(boxes)
    for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
        if results.get(key, None) is not None:
            results[key] = results[key][keep]
    if results.get('gt_masks', None) is not None:
        results['gt_masks'] = results['gt_masks'][np.flatnonzero(keep)].crop(
            crop)
    if results.get('gt_seg_map', None) is not None:
        results['gt_seg_map'] = results['gt_seg_map'][y1:y2, x1:x2]
    return results


def _check_pair(name: str, value: Sequence[float], low: float, high: float,
                paper: str) -> Tuple[float, float]:
    if len(value) != 2 or not low < value[0] <= value[1] <= high:
        raise ValueError(
            f'{name} must be (min, max) with {low} < min <= max <= {high}, '
            f'got {value}; the paper uses {paper}')
    return float(value[0]), float(value[1])


@TRANSFORMS.register_module()
class RandomIoUCrop(BaseTransform):
    """Crop a patch that overlaps the objects by a random minimum IoU.

    Candidates: the whole image, and per threshold in ``min_ious`` plus one
    unconstrained sampler the first of ``max_trials`` patches (side
    ``scale_range``, width / height ``aspect_ratio_range``, image-relative)
    that meets the threshold under ``constraint`` (:func:`first_valid_trials`);
    one is chosen uniformly (Caffe). Kept boxes (:func:`kept_boxes`) are
    shifted and clipped; labels, ignore flags and masks follow. Any channel
    count and dtype.

    Required Keys: ``img``; optional ``gt_bboxes`` (HorizontalBoxes),
    ``gt_bboxes_labels``, ``gt_ignore_flags``, ``gt_masks``, ``gt_seg_map``.

    Modified Keys: ``img`` (a view), ``img_shape``, the optional keys given.

    Args:
        constraint: Which boxes must have the IoU: ``'any'`` (Caffe's, the
            paper recipes) or ``'all'`` (mmdet's; fewer and shallower crops,
            better on short schedules and small sets). Defaults to 'any'.
    """

    def __init__(self,
                 min_ious: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9),
                 scale_range: Sequence[float] = (0.3, 1.0),
                 aspect_ratio_range: Sequence[float] = (0.5, 2.0),
                 max_trials: int = 50,
                 constraint: str = 'any') -> None:
        super().__init__()
        if constraint not in CONSTRAINTS:
            raise ValueError(
                f'constraint must be one of {CONSTRAINTS}, got '
                f"{constraint!r}; 'any' is the paper's (Caffe), 'all' "
                f"mmdet's MinIoURandomCrop")
        if any(not 0.0 <= t <= 1.0 for t in min_ious):
            raise ValueError(
                f'min_ious must lie in [0, 1], got {tuple(min_ious)}; the '
                f'paper uses (0.1, 0.3, 0.5, 0.7, 0.9)')
        if not isinstance(max_trials, int) or max_trials < 1:
            raise ValueError(
                f'max_trials must be an int >= 1, got {max_trials}')
        self.min_ious = tuple(float(t) for t in min_ious)
        self.scale_range = _check_pair('scale_range', scale_range, 0.0, 1.0,
                                       '(0.3, 1.0)')
        self.aspect_ratio_range = _check_pair('aspect_ratio_range',
                                              aspect_ratio_range, 0.0, np.inf,
                                              '(0.5, 2.0)')
        self.max_trials = max_trials
        self.constraint = constraint
        # The unconstrained sampler is a threshold of 0: any kept box will do.
        self._thresholds = np.array(self.min_ious + (0.0, ), dtype=np.float64)

    @cache_randomness
    def _draw_uniforms(self) -> np.ndarray:
        """(S, T, 4) uniforms for every trial of every sampler."""
        return np.random.rand(len(self._thresholds), self.max_trials, 4)

    @cache_randomness
    def _draw_candidate(self, num_candidates: int) -> int:
        return int(np.random.randint(num_candidates))

    def _sample_crop(self, img_hw: Tuple[int, int],
                     boxes: np.ndarray) -> CropChoice:
        """One :class:`CropChoice` for ``(H, W)`` and ``(N, 4)`` boxes."""
        h, w = img_hw
        patches = trials_from_uniforms(self._draw_uniforms(), self.scale_range,
                                       self.aspect_ratio_range)
        crops = to_pixel_crops(patches, img_hw)
        first = first_valid_trials(crops, boxes, self._thresholds,
                                   self.constraint)
        candidates: List[CropChoice] = [
            CropChoice(np.array([0, 0, w, h], dtype=np.int64), None)
        ]
        for sampler in np.flatnonzero(first >= 0):
            candidates.append(
                CropChoice(crops[sampler, first[sampler]],
                           float(self._thresholds[sampler])))
        return candidates[self._draw_candidate(len(candidates))]

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        """Crop ``results`` to one sampled patch."""
        boxes = boxes_as_array(results.get('gt_bboxes', None))
        crop = self._sample_crop(results['img'].shape[:2], boxes).crop
        return apply_crop(results, crop, kept_boxes(crop[None], boxes)[0])

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(min_ious={self.min_ious}, '
                f'scale_range={self.scale_range}, '
                f'aspect_ratio_range={self.aspect_ratio_range}, '
                f'max_trials={self.max_trials}, '
                f'constraint={self.constraint!r})')
