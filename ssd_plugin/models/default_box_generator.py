"""SSD's default boxes (section 2.2; Caffe's ``PriorBox``).

Shapes: ``H, W`` a feature map, ``A`` boxes per location. Boxes are ``(x1,
y1, x2, y2)`` pixels in Caffe's, torchvision's and mmdet's order (see
:func:`default_box_shapes`), location-major. ``input_size`` and ``strides``
are ``(w, h)`` as in mmdet; feature-map sizes and ``input_shape`` ``(h, w)``.
"""
import math
from numbers import Real
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmdet.structures.bbox import HorizontalBoxes, get_box_tensor
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
    """``L`` min and max sizes from ``(s_min, s_max)`` (section 2.2) in Caffe's
    whole percent: ``step = (int(100 s_max) - int(100 s_min)) // (L - 2)``;
    level ``k >= 1`` spans ``[r_k, r_k + step]``, ``r_k = int(100 s_min) + (k -
    1) step``; level 0 (section 3.1) ``first_level``, by default ``(int(100
    s_min) // 2, int(100 s_min))``; pixels ``min_dim * percent / 100``."""
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
    """``(A, 2)`` float64 ``(w, h)`` at one location, Caffe's order, ``A = 2 +
    2 len(ratios)`` (section 2.2): the ``min_size`` square, the ``sqrt(min_size
    * max_size)`` square, then per ratio ``r = w / h`` and its flip."""
    shapes = [(min_size, min_size)]
    extra = math.sqrt(min_size * max_size)
    shapes.append((extra, extra))
    for ratio in ratios:
        root = math.sqrt(ratio)
        shapes.append((min_size * root, min_size / root))
        shapes.append((min_size / root, min_size * root))
    return torch.tensor(shapes, dtype=torch.float64)


def _as_pair(value: Union[Real, Sequence[Real]], name: str) -> Pair:
    """A positive number or pair of positive numbers as a float pair."""
    pair = (value, value) if isinstance(value, Real) else tuple(value)
    if len(pair) != 2 or not all(
            isinstance(v, Real) and not isinstance(v, bool) and v > 0
            for v in pair):
        raise ValueError(
            f'{name}={value!r} must be a positive number or a pair (w, h) of '
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


# mmdet's SSDAnchorGenerator puts SSD512 COCO's conv4_3 (s_min 0.1) at
# (4, 10) percent, where our default rule gives (5, 10).
_MMDET_FIRST_LEVEL = {0.1: (0.04, 0.1)}


@TASK_UTILS.register_module()
class DefaultBoxGenerator:
    """SSD default boxes with mmdet's prior-generator interface.

    Any input size works (mmdet's ``SSDAnchorGenerator``: 300 or 512). mmdet's
    arguments are accepted, so its SSD configs migrate by changing the type
    (mmdet truncates derived sizes to integers, we keep Caffe's floats).

    Args:
        input_size (int | tuple[int, int]): ``(w, h)`` if a pair (as mmdet's
            ``Resize`` scale).
        ratios (Sequence[Sequence[float]]): Per level, 1 excluded.
        min_sizes, max_sizes (Sequence[float], optional): Pixels per level;
            they take precedence over the ranges.
        scale_range (tuple[float, float], optional): See
            :func:`caffe_scale_sizes`; None: the paper's (0.2, 0.9).
        strides (Sequence[float | tuple[float, float]], optional): Per level,
            ``(w, h)`` if a pair. None: input / map size per axis.
        basesize_ratio_range (tuple[float, float], optional): mmdet's name for
            ``scale_range``; ``scale_major`` mmdet's, False only.
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
                 use_box_type: bool = False,
                 basesize_ratio_range: Optional[Pair] = None,
                 scale_major: bool = False) -> None:
        self.input_size = _as_pair(input_size, 'input_size')  # (w, h)
        self.ratios = _parse_ratios(ratios)
        if not 0 <= offset <= 1:
            raise ValueError(f'offset={offset} must lie in [0, 1]; Caffe '
                             'uses 0.5 (the cell centre)')
        if scale_major:
            raise ValueError(
                "scale_major=True: mmdet's SSD boxes need scale_major=False "
                '(its SSD configs set it), the only order here; drop it')
        self.offset = float(offset)
        self.clip = clip
        self.use_box_type = use_box_type
        if basesize_ratio_range is not None:
            if scale_range is not None:
                raise ValueError(
                    f'scale_range={scale_range} and basesize_ratio_range='
                    f'{basesize_ratio_range} name the same thing; pass one')
            scale_range = tuple(basesize_ratio_range)
            if first_level is None:
                first_level = _MMDET_FIRST_LEVEL.get(scale_range[0])
        self.min_sizes, self.max_sizes = self._resolve_sizes(
            min_sizes, max_sizes, scale_range, first_level)
        # (w, h) per level, as mmdet's AnchorGenerator.strides.
        self.strides = None if strides is None else [
            _as_pair(s, f'strides[{k}]') for k, s in enumerate(strides)]
        self._check_lengths()
        # (A, 4) float64 boxes centred on (0, 0) per level, cast at use.
        self.base_boxes = [
            torch.cat([-0.5 * wh, 0.5 * wh], dim=1)
            for wh in (default_box_shapes(lo, hi, r) for lo, hi, r in zip(
                self.min_sizes, self.max_sizes, self.ratios))]

    def _resolve_sizes(self, min_sizes: Optional[Sequence[float]],
                       max_sizes: Optional[Sequence[float]],
                       scale_range: Optional[Pair],
                       first_level: Optional[Pair]
                       ) -> Tuple[List[float], List[float]]:
        """Explicit size lists (which win), or sizes from ``scale_range``."""
        if (min_sizes is None) != (max_sizes is None):
            raise ValueError(
                f'min_sizes={min_sizes} and max_sizes={max_sizes}: give both '
                'lists or neither (every level has the sqrt(min*max) square; '
                "mmdet's max_sizes=None has no equivalent here)")
        for name, sizes in (('min_sizes', min_sizes),
                            ('max_sizes', max_sizes)):
            if sizes is not None and any(not isinstance(v, Real)
                                         for v in sizes):
                raise ValueError(
                    f'{name}={list(sizes)} must hold one number per level; '
                    "several sizes per level (mmdet's nested lists) are not "
                    "supported: use mmdet's SSDAnchorGenerator for those")
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
        if self.strides is not None:
            lengths['strides'] = len(self.strides)
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

    def _input_hw(self, input_shape: Optional[Sequence[int]]) -> Pair:
        """``(h, w)`` of the batch input, defaulting to ``input_size``."""
        if input_shape is None:
            return self.input_size[1], self.input_size[0]
        return _as_pair(tuple(input_shape[:2]), 'input_shape')

    def level_step(self, level_idx: int, featmap_size: Tuple[int, int],
                   input_shape: Optional[Sequence[int]] = None) -> Pair:
        """``(step_w, step_h)`` of a level: the stride, or with strides None
        the input (``input_shape`` ``(h, w)`` or ``input_size``) over the map's
        ``(H, W)`` per axis."""
        if self.strides is not None:
            return self.strides[level_idx]
        in_h, in_w = self._input_hw(input_shape)
        # An empty map has no cells; any step does.
        return in_w / max(featmap_size[1], 1), in_h / max(featmap_size[0], 1)

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
        """``(H * W * A, 4)`` boxes per level for ``featmap_sizes`` ``(H, W)``;
        ``input_shape`` (the batch's ``(h, w)``) replaces ``input_size`` for
        strides None and clipping."""
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
        """``(H * W * A, 4)`` boxes of one level (see :meth:`grid_priors`)."""
        feat_h, feat_w = featmap_size
        step_w, step_h = self.level_step(level_idx, featmap_size, input_shape)
        # Arange in the default dtype, then cast (as mmdet, for ONNX export).
        xs = (torch.arange(feat_w, device=device).to(dtype) + self.offset)
        ys = (torch.arange(feat_h, device=device).to(dtype) + self.offset)
        cy, cx = torch.meshgrid(ys * step_h, xs * step_w, indexing='ij')
        centres = torch.stack([cx, cy, cx, cy], dim=-1).reshape(-1, 1, 4)
        base = self.base_boxes[level_idx].to(device=device, dtype=dtype)
        boxes = (centres + base[None]).reshape(-1, 4)  # (H*W, A, 4) flat
        if self.clip:
            in_h, in_w = self._input_hw(input_shape)
            boxes = torch.min(boxes.clamp(min=0),
                              boxes.new_tensor([in_w, in_h, in_w, in_h]))
        return HorizontalBoxes(boxes) if self.use_box_type else boxes

    def sparse_priors(self,
                      prior_idxs: Tensor,
                      featmap_size: Tuple[int, int],
                      level_idx: int,
                      dtype: torch.dtype = torch.float32,
                      device: DeviceType = 'cuda',
                      input_shape: Optional[Tuple[int, int]] = None) -> Tensor:
        """``(K, 4)`` rows ``prior_idxs`` ``(K,)`` of a level's grid."""
        grid = self.single_level_grid_priors(featmap_size, level_idx, dtype,
                                             device, input_shape)
        return get_box_tensor(grid)[prior_idxs.to(device)]

    def valid_flags(self,
                    featmap_sizes: Sequence[Tuple[int, int]],
                    pad_shape: Sequence[int],
                    device: DeviceType = 'cuda',
                    input_shape: Optional[Tuple[int, int]] = None
                    ) -> List[Tensor]:
        """``(H * W * A,)`` bool per level: as mmdet, cell ``(i, j)`` is valid
        when ``i * step_h < pad_h`` and ``j * step_w < pad_w`` for ``pad_shape``
        ``(h, w, ...)`` (all are, as SSD resizes to the input)."""
        self._check_featmaps(featmap_sizes)
        pad_h, pad_w = pad_shape[:2]
        flags = []
        for level, (feat_h, feat_w) in enumerate(featmap_sizes):
            step_w, step_h = self.level_step(level, (feat_h, feat_w),
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
                f'max_sizes={self.max_sizes}, strides={self.strides}, '
                f'offset={self.offset}, clip={self.clip})')
