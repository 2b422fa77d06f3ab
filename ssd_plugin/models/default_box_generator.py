"""SSD's default boxes (Liu et al., ECCV 2016, section 2.2).

Follows the original Caffe release (``PriorBox`` layer, ``ssd_pascal.py`` and
``ssd_coco.py``): per level a min size and a max size in pixels, aspect ratios
with their flips, the extra square of side ``sqrt(min * max)``, a step per
level and a centre offset of 0.5.

Shape shorthand: ``L`` levels; ``H, W`` a feature map's size; ``A`` default
boxes per location of a level (``num_base_priors``); ``K`` any number of boxes.
Boxes are ``(x1, y1, x2, y2)`` in input pixels.

Box order, identical to Caffe, torchvision and mmdet's ``SSDAnchorGenerator``
(``scale_major=False``) so that their weights convert: locations row-major
(y then x); at each location the ``min`` square, the ``sqrt(min * max)``
square, then for each ratio ``r`` the box ``(w, h) = (min * sqrt(r),
min / sqrt(r))`` followed by its flip ``(min / sqrt(r), min * sqrt(r))``.
"""
import math
from numbers import Real
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmdet.structures.bbox import HorizontalBoxes
from torch import Tensor

from ssd_plugin.registry import TASK_UTILS

DeviceType = Union[str, torch.device]
Pair = Tuple[float, float]

# Float noise guard for Caffe's ``int(s * 100)``: int(0.29 * 100) == 28.
_PERCENT_EPS = 1e-6


def _percent(fraction: float) -> int:
    """Caffe's integer percent ``int(fraction * 100)``, minus float noise."""
    return math.floor(fraction * 100 + _PERCENT_EPS)


def caffe_scale_sizes(
        min_dim: float,
        scale_range: Pair,
        num_levels: int,
        first_level: Optional[Pair] = None) -> Tuple[List[float], List[float]]:
    """Min and max box sizes per level from the paper's ``(s_min, s_max)``.

    Section 2.2 spaces the scales ``s_k`` evenly in ``[s_min, s_max]``; the
    Caffe release does it in integer percent and gives the first level
    (conv4_3) its own smaller scale (section 3.1, "scale 0.1 on conv4_3"):

    - ``min_ratio, max_ratio = int(100 * s_min), int(100 * s_max)``;
    - ``step = floor((max_ratio - min_ratio) / (num_levels - 2))``;
    - level ``k >= 1`` (0-based) has ratios ``r_k = min_ratio + (k-1) * step``
      and ``r_k + step``;
    - level 0 has ``first_level`` in percent, by default
      ``(min_ratio // 2, min_ratio)``: Caffe's SSD300 VOC (10, 20),
      SSD300 COCO (7, 15) and SSD512 VOC (7, 15). SSD512 COCO used (4, 10):
      pass ``first_level=(0.04, 0.1)``.

    Sizes are ``min_dim * ratio / 100`` in pixels, as floats (Caffe).

    Args:
        min_dim (float): The shorter input side in pixels (Caffe's min_dim).
        scale_range (tuple[float, float]): ``(s_min, s_max)``, fractions of
            ``min_dim`` with ``0 < s_min < s_max``.
        num_levels (int): Number of feature levels, at least 3.
        first_level (tuple[float, float], optional): ``(min, max)`` fractions
            for level 0. Defaults to ``(s_min / 2, s_min)`` in integer percent.

    Returns:
        tuple[list[float], list[float]]: Min sizes and max sizes, one per
        level.

    Raises:
        ValueError: If the range is not increasing, there are fewer than 3
            levels, or the range is too narrow for one percent per level.
    """
    min_ratio, max_ratio = (_percent(s) for s in scale_range)
    if not 0 < min_ratio < max_ratio:
        raise ValueError(
            f'scale_range={tuple(scale_range)} must satisfy 0 < s_min < s_max '
            '(in whole percent); e.g. (0.2, 0.9) as in the paper')
    if num_levels < 3:
        raise ValueError(
            f'scale_range needs at least 3 levels, got {num_levels}; pass '
            'min_sizes and max_sizes explicitly instead')
    step = (max_ratio - min_ratio) // (num_levels - 2)
    if step < 1:
        raise ValueError(
            f'scale_range={tuple(scale_range)} is narrower than 1% per level '
            f'for {num_levels} levels; widen it or pass min_sizes/max_sizes')
    if first_level is None:
        first = (min_ratio // 2, min_ratio)
    else:
        first = tuple(_percent(s) for s in first_level)
    if not 0 < first[0] < first[1]:
        raise ValueError(
            f'first_level={first_level} must satisfy 0 < min < max (whole '
            'percent); e.g. (0.1, 0.2) for SSD300 VOC')
    lows = [first[0]] + [min_ratio + k * step for k in range(num_levels - 1)]
    highs = [first[1]] + [r + step for r in lows[1:]]
    return ([min_dim * r / 100 for r in lows],
            [min_dim * r / 100 for r in highs])


def default_box_shapes(min_size: float, max_size: float,
                       ratios: Sequence[float]) -> Tensor:
    """Widths and heights of the default boxes at one location (section 2.2).

    Args:
        min_size (float): Side of the first square, pixels.
        max_size (float): The extra square has side ``sqrt(min * max)``.
        ratios (Sequence[float]): Aspect ratios ``r = w / h`` other than 1;
            each adds ``r`` and its flip ``1 / r``.

    Returns:
        Tensor: ``(A, 2)`` float64 ``(w, h)`` with ``A = 2 + 2 * len(ratios)``
        in Caffe's order.
    """
    shapes = [(min_size, min_size)]
    extra = math.sqrt(min_size * max_size)
    shapes.append((extra, extra))
    for ratio in ratios:
        root = math.sqrt(ratio)
        shapes.append((min_size * root, min_size / root))
        shapes.append((min_size / root, min_size * root))
    return torch.tensor(shapes, dtype=torch.float64)


def _as_pair(value: Union[Real, Sequence[Real]], name: str) -> Pair:
    """``(h, w)`` from a positive number or a pair of positive numbers."""
    pair = (value, value) if isinstance(value, Real) else tuple(value)
    if len(pair) != 2 or not all(
            isinstance(v, Real) and not isinstance(v, bool) and v > 0
            for v in pair):
        raise ValueError(
            f'{name}={value!r} must be a positive number or a pair (h, w) of '
            'positive numbers')
    return float(pair[0]), float(pair[1])


def _parse_ratios(
        ratios: Sequence[Sequence[float]]) -> List[Tuple[float, ...]]:
    """Per-level float ratios; ValueError unless all positive and not 1."""
    if len(ratios) == 0:
        raise ValueError('ratios is empty; give one list of ratios per '
                         'feature level, e.g. [[2], [2, 3]]')
    parsed = []
    for level, level_ratios in enumerate(ratios):
        if isinstance(level_ratios, (Real, str)):
            raise ValueError(
                f'ratios[{level}]={level_ratios!r} must be a list of ratios '
                'for that level, e.g. ratios=[[2], [2, 3]]')
        for ratio in level_ratios:
            if (not isinstance(ratio, Real) or isinstance(ratio, bool)
                    or not ratio > 0):
                raise ValueError(
                    f'ratios[{level}] holds {ratio!r}; aspect ratios must be '
                    'positive numbers such as 2 or 3')
            if math.isclose(ratio, 1.0):
                raise ValueError(
                    f'ratios[{level}] holds 1; the squares (min and '
                    'sqrt(min*max)) are always generated, remove the 1')
        parsed.append(tuple(float(r) for r in level_ratios))
    return parsed


@TASK_UTILS.register_module()
class DefaultBoxGenerator:
    """SSD default boxes with mmdet's prior-generator interface.

    Unlike mmdet's ``SSDAnchorGenerator`` (300 and 512 only), any input size,
    square or not, works: boxes come from the feature-map sizes actually
    given, so their number is always the sum over those maps (mmdet issues
    #902, #7264).

    Args:
        input_size (int | tuple[int, int]): Network input, ``(h, w)`` if a
            tuple. Sets ``min_dim = min(h, w)`` for ``scale_range`` and the
            steps when ``strides`` is None. Defaults to 300.
        ratios (Sequence[Sequence[float]]): Aspect ratios per level, without
            1; each ratio adds two boxes (``r`` and ``1 / r``). Defaults to
            SSD300's ``((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))``.
        min_sizes (Sequence[float], optional): Min box size per level, pixels.
        max_sizes (Sequence[float], optional): Max box size per level, pixels;
            give both lists or neither; they win over ``scale_range``.
        scale_range (tuple[float, float], optional): The paper's
            ``(s_min, s_max)``, turned into sizes by :func:`caffe_scale_sizes`.
            With neither sizes nor range, the paper's ``(0.2, 0.9)`` is used.
        first_level (tuple[float, float], optional): Level 0's ``(min, max)``
            fractions for ``scale_range``; see :func:`caffe_scale_sizes`.
        strides (Sequence[float | tuple[float, float]], optional): Caffe's
            step per level, a number or ``(step_h, step_w)``; e.g. SSD300's
            ``(8, 16, 32, 64, 100, 300)``. None: ``input / feature-map size``
            per axis at each call (Caffe's rule without ``step``).
        offset (float): Centre of cell ``(i, j)`` is ``((j + offset) * step_w,
            (i + offset) * step_h)``. Defaults to 0.5.
        clip (bool): Clip boxes to the input. Defaults to False (Caffe).
        use_box_type (bool): Wrap boxes in ``HorizontalBoxes``. Defaults to
            False.

    Raises:
        ValueError: On inconsistent or out-of-range arguments, naming them.
    """

    def __init__(self,
                 input_size: Union[int, Tuple[int, int]] = 300,
                 ratios: Sequence[Sequence[float]] = (
                     (2, ), (2, 3), (2, 3), (2, 3), (2, ), (2, )),
                 min_sizes: Optional[Sequence[float]] = None,
                 max_sizes: Optional[Sequence[float]] = None,
                 scale_range: Optional[Pair] = None,
                 strides: Optional[Sequence[Union[float, Pair]]] = None,
                 offset: float = 0.5,
                 clip: bool = False,
                 first_level: Optional[Pair] = None,
                 use_box_type: bool = False) -> None:
        self.input_size = _as_pair(input_size, 'input_size')
        self.ratios = _parse_ratios(ratios)
        if not 0 <= offset <= 1:
            raise ValueError(f'offset={offset} must lie in [0, 1]; Caffe '
                             'uses 0.5 (the cell centre)')
        self.offset = float(offset)
        self.clip = clip
        self.use_box_type = use_box_type
        self.min_sizes, self.max_sizes = self._resolve_sizes(
            min_sizes, max_sizes, scale_range, first_level)
        self.steps = None if strides is None else [
            _as_pair(s, f'strides[{k}]') for k, s in enumerate(strides)]
        self._check_lengths()
        # Boxes centred on (0, 0): (A, 4) float64 per level, computed once
        # and cast to the requested dtype at use.
        self.base_boxes = [
            torch.cat([-0.5 * wh, 0.5 * wh], dim=1)
            for wh in (default_box_shapes(lo, hi, r) for lo, hi, r in zip(
                self.min_sizes, self.max_sizes, self.ratios))]

    def _resolve_sizes(self, min_sizes: Optional[Sequence[float]],
                       max_sizes: Optional[Sequence[float]],
                       scale_range: Optional[Pair],
                       first_level: Optional[Pair]
                       ) -> Tuple[List[float], List[float]]:
        """Explicit size lists, or sizes from ``scale_range``.

        Explicit lists win over ``scale_range``/``first_level`` (as in
        torchvision), so a config can set them over a base's range.
        """
        if (min_sizes is None) != (max_sizes is None):
            raise ValueError(
                f'min_sizes={min_sizes} and max_sizes={max_sizes}: give both '
                'lists or neither')
        if min_sizes is not None:
            return [float(s) for s in min_sizes], [float(s) for s in max_sizes]
        if scale_range is None:
            scale_range = (0.2, 0.9)  # Section 2.2's s_min and s_max.
        return caffe_scale_sizes(min(self.input_size), scale_range,
                                 len(self.ratios), first_level)

    def _check_lengths(self) -> None:
        """Raise ValueError unless per-level arguments agree."""
        lengths = dict(ratios=len(self.ratios),
                       min_sizes=len(self.min_sizes),
                       max_sizes=len(self.max_sizes))
        if self.steps is not None:
            lengths['strides'] = len(self.steps)
        if len(set(lengths.values())) != 1:
            raise ValueError(
                f'per-level arguments disagree in length: {lengths}; give one '
                'entry per feature level to each')
        for level, (lo, hi) in enumerate(zip(self.min_sizes, self.max_sizes)):
            if not 0 < lo < hi:
                raise ValueError(
                    f'level {level}: min_size={lo}, max_size={hi}; need '
                    '0 < min_size < max_size')

    @property
    def num_levels(self) -> int:
        """int: Number of feature levels."""
        return len(self.ratios)

    @property
    def num_base_priors(self) -> List[int]:
        """list[int]: Default boxes per location on each level (``A``)."""
        return [boxes.size(0) for boxes in self.base_boxes]

    def _input_shape(self, input_shape: Optional[Sequence[int]]) -> Pair:
        """``(h, w)`` of the batch input, defaulting to ``input_size``."""
        if input_shape is None:
            return self.input_size
        return _as_pair(tuple(input_shape[:2]), 'input_shape')

    def level_step(self, level_idx: int, featmap_size: Tuple[int, int],
                   input_shape: Optional[Sequence[int]] = None) -> Pair:
        """``(step_h, step_w)`` of a level in pixels.

        Args:
            level_idx (int): Level index.
            featmap_size (tuple[int, int]): ``(H, W)`` of that level.
            input_shape (tuple[int, int], optional): Batch input ``(h, w)``;
                used only when ``strides`` is None. Defaults to
                ``input_size``.

        Returns:
            tuple[float, float]: The step, explicit or ``input / featmap``.
        """
        if self.steps is not None:
            return self.steps[level_idx]
        in_h, in_w = self._input_shape(input_shape)
        # An empty map has no cells; any step does.
        return in_h / max(featmap_size[0], 1), in_w / max(featmap_size[1], 1)

    def _check_featmaps(self,
                        featmap_sizes: Sequence[Tuple[int, int]]) -> None:
        """Raise ValueError unless there is one feature map per level."""
        if len(featmap_sizes) != self.num_levels:
            raise ValueError(
                f'got {len(featmap_sizes)} feature maps but the generator has '
                f'{self.num_levels} levels; pass one (H, W) per level')

    def grid_priors(self,
                    featmap_sizes: Sequence[Tuple[int, int]],
                    dtype: torch.dtype = torch.float32,
                    device: DeviceType = 'cuda',
                    input_shape: Optional[Tuple[int, int]] = None
                    ) -> List[Union[Tensor, HorizontalBoxes]]:
        """Default boxes of every level.

        Args:
            featmap_sizes (Sequence[tuple[int, int]]): ``(H, W)`` per level.
            dtype (torch.dtype): Box dtype. Defaults to float32.
            device (str | torch.device): Box device. Defaults to 'cuda'.
            input_shape (tuple[int, int], optional): The batch's input
                ``(h, w)``; overrides ``input_size`` for the steps when
                ``strides`` is None and for clipping.

        Returns:
            list[Tensor]: ``(H * W * A, 4)`` boxes per level.
        """
        self._check_featmaps(featmap_sizes)
        return [
            self.single_level_grid_priors(size, k, dtype, device, input_shape)
            for k, size in enumerate(featmap_sizes)]

    def single_level_grid_priors(
            self,
            featmap_size: Tuple[int, int],
            level_idx: int,
            dtype: torch.dtype = torch.float32,
            device: DeviceType = 'cuda',
            input_shape: Optional[Tuple[int, int]] = None
    ) -> Union[Tensor, HorizontalBoxes]:
        """Default boxes of one level (see :meth:`grid_priors`).

        Returns:
            Tensor: ``(H * W * A, 4)``; the first ``A`` rows belong to cell
            (0, 0), the next to cell (0, 1), ...
        """
        feat_h, feat_w = featmap_size
        step_h, step_w = self.level_step(level_idx, featmap_size, input_shape)
        # Arange in the default dtype, then cast (as mmdet, for ONNX export).
        xs = (torch.arange(feat_w, device=device).to(dtype) + self.offset)
        ys = (torch.arange(feat_h, device=device).to(dtype) + self.offset)
        cy, cx = torch.meshgrid(ys * step_h, xs * step_w, indexing='ij')
        centres = torch.stack([cx, cy, cx, cy], dim=-1).reshape(-1, 1, 4)
        base = self.base_boxes[level_idx].to(device=device, dtype=dtype)
        boxes = (centres + base[None]).reshape(-1, 4)  # (H*W, A, 4) flat
        return self._finish(boxes, input_shape)

    def _finish(self, boxes: Tensor, input_shape: Optional[Tuple[int, int]]
                ) -> Union[Tensor, HorizontalBoxes]:
        """Optional clipping to the input and box-type wrapping."""
        if self.clip:
            in_h, in_w = self._input_shape(input_shape)
            boxes = torch.stack([
                boxes[:, 0].clamp(0, in_w), boxes[:, 1].clamp(0, in_h),
                boxes[:, 2].clamp(0, in_w), boxes[:, 3].clamp(0, in_h)], 1)
        return HorizontalBoxes(boxes) if self.use_box_type else boxes

    def sparse_priors(self,
                      prior_idxs: Tensor,
                      featmap_size: Tuple[int, int],
                      level_idx: int,
                      dtype: torch.dtype = torch.float32,
                      device: DeviceType = 'cuda',
                      input_shape: Optional[Tuple[int, int]] = None) -> Tensor:
        """Default boxes of one level at the given flat indices.

        Args:
            prior_idxs (Tensor): ``(K,)`` indices into the level's
                ``(H * W * A)`` boxes.
            featmap_size (tuple[int, int]): ``(H, W)`` of the level.
            level_idx (int): Level index.
            dtype, device, input_shape: As for :meth:`grid_priors`.

        Returns:
            Tensor: ``(K, 4)``, equal to ``grid_priors``' rows ``prior_idxs``.
        """
        num_base = self.num_base_priors[level_idx]
        step_h, step_w = self.level_step(level_idx, featmap_size, input_shape)
        prior_idxs = prior_idxs.to(device)
        cell = prior_idxs // num_base
        cx = ((cell % featmap_size[1]).to(dtype) + self.offset) * step_w
        cy = ((cell // featmap_size[1]).to(dtype) + self.offset) * step_h
        base = self.base_boxes[level_idx].to(device=device, dtype=dtype)
        boxes = torch.stack([cx, cy, cx, cy], 1) + base[prior_idxs % num_base]
        finished = self._finish(boxes, input_shape)
        return finished.tensor if self.use_box_type else finished

    def valid_flags(self,
                    featmap_sizes: Sequence[Tuple[int, int]],
                    pad_shape: Sequence[int],
                    device: DeviceType = 'cuda',
                    input_shape: Optional[Tuple[int, int]] = None
                    ) -> List[Tensor]:
        """Flags of boxes whose cell starts inside the padded image.

        As mmdet's generators: cell ``(i, j)`` is valid when ``i * step_h <
        pad_h`` and ``j * step_w < pad_w``. SSD resizes every image to the
        input size, so normally every box is valid.

        Args:
            featmap_sizes (Sequence[tuple[int, int]]): ``(H, W)`` per level.
            pad_shape (Sequence[int]): ``(h, w, ...)`` of the padded image.
            device (str | torch.device): Flag device. Defaults to 'cuda'.
            input_shape (tuple[int, int], optional): As for
                :meth:`grid_priors`.

        Returns:
            list[Tensor]: ``(H * W * A,)`` bool per level.
        """
        self._check_featmaps(featmap_sizes)
        pad_h, pad_w = pad_shape[:2]
        flags = []
        for level, (feat_h, feat_w) in enumerate(featmap_sizes):
            step_h, step_w = self.level_step(level, (feat_h, feat_w),
                                             input_shape)
            # Tolerance: pad / (pad / H) may exceed H by float noise.
            valid_h = math.ceil(pad_h / step_h - _PERCENT_EPS)
            valid_w = math.ceil(pad_w / step_w - _PERCENT_EPS)
            rows = torch.arange(feat_h, device=device) < valid_h
            cols = torch.arange(feat_w, device=device) < valid_w
            cells = rows[:, None] & cols[None, :]
            flags.append(cells[..., None].expand(
                feat_h, feat_w, self.num_base_priors[level]).reshape(-1))
        return flags

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(input_size={self.input_size}, '
                f'ratios={self.ratios}, min_sizes={self.min_sizes}, '
                f'max_sizes={self.max_sizes}, strides={self.steps}, '
                f'offset={self.offset}, clip={self.clip})')
