"""SSD's zoom-out ("expansion", section 3.6; Caffe's ``ExpandImage``): the
canvas is made in the image's dtype in one ``cv2.copyMakeBorder`` pass.
"""
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmdet.structures.bbox import autocast_box_type
from mmdet.structures.mask import BitmapMasks, PolygonMasks

from ssd_plugin.datasets.transforms.photometric_distort import check_prob
from ssd_plugin.registry import TRANSFORMS


class ZoomOutParams(NamedTuple):
    """One sample's canvas size and where the image's top-left lands."""
    canvas_h: int
    canvas_w: int
    top: int
    left: int


def zoom_out_params(img_hw: Tuple[int, int], ratio: float, u_top: float,
                    u_left: float) -> ZoomOutParams:
    """Canvas ``int(H * ratio)`` by ``int(W * ratio)`` for ``img_hw`` ``(H,
    W)``, offsets ``floor(u * (canvas - image))`` from uniform draws ``u_top``,
    ``u_left`` in [0, 1) (Caffe's ``ExpandImage``)."""
    h, w = img_hw
    canvas_h, canvas_w = max(int(h * ratio), h), max(int(w * ratio), w)
    top = min(int(np.floor(u_top * (canvas_h - h))), canvas_h - h)
    left = min(int(np.floor(u_left * (canvas_w - w))), canvas_w - w)
    return ZoomOutParams(canvas_h, canvas_w, top, left)


def paste_on_canvas(img: np.ndarray, params: ZoomOutParams,
                    fill: Sequence[float]) -> np.ndarray:
    """``img`` ``(H, W[, C])`` of any dtype on a ``fill`` canvas (one value
    per channel) of shape ``(canvas_h, canvas_w[, C])``, same dtype."""
    h, w = img.shape[:2]
    if any(stride < 0 for stride in img.strides):
        img = np.ascontiguousarray(img)  # older OpenCV rejects them
    pads = (params.top, params.canvas_h - h - params.top, params.left,
            params.canvas_w - w - params.left)
    channels = 1 if img.ndim == 2 else img.shape[2]
    if channels <= 4:  # cv2's Scalar holds at most four channels
        canvas = cv2.copyMakeBorder(
            img, *pads, cv2.BORDER_CONSTANT,
            value=tuple(fill) + (0, ) * (4 - len(fill)))
        # OpenCV returns (h, w) for an (H, W, 1) image: restore the axis.
        return canvas.reshape(canvas.shape[:2] + img.shape[2:])
    canvas = np.empty((params.canvas_h, params.canvas_w) + img.shape[2:],
                      img.dtype)
    canvas[...] = np.asarray(fill, dtype=img.dtype)
    canvas[params.top:params.top + h, params.left:params.left + w] = img
    return canvas


def expand_masks(masks: Union[BitmapMasks, PolygonMasks],
                 params: ZoomOutParams) -> Union[BitmapMasks, PolygonMasks]:
    """The masks, of the same class, moved onto the canvas."""
    if isinstance(masks, PolygonMasks):
        # mmdet's PolygonMasks.expand raises NotImplementedError.
        shape = (params.canvas_h, params.canvas_w)
        return masks.translate(shape, params.left, 'horizontal').translate(
            shape, params.top, 'vertical')
    return masks.expand(params.canvas_h, params.canvas_w, params.top,
                        params.left)


@TRANSFORMS.register_module()
class RandomZoomOut(BaseTransform):
    """Place the image on a larger mean-filled canvas; boxes move with it.

    With probability ``prob``, a ratio uniform in ``ratio_range`` (min >= 1)
    and a uniform position. Boxes are translated, never dropped; masks
    expanded; ``gt_seg_map`` padded with ``seg_ignore_label``. Any channel
    count and dtype; ``mean`` holds one fill per channel in the image's order
    (BGR from ``LoadImageFromFile``), rounded for integer images.

    Required Keys: ``img``; optional ``gt_bboxes`` (HorizontalBoxes),
    ``gt_masks``, ``gt_seg_map``.

    Modified Keys: ``img``, ``img_shape``, the optional keys given.
    """

    def __init__(self,
                 mean: Sequence[float] = (103.53, 116.28, 123.675),
                 ratio_range: Sequence[float] = (1, 4),
                 prob: float = 0.5,
                 seg_ignore_label: int = 255) -> None:
        super().__init__()
        if len(ratio_range) != 2 or not 1 <= ratio_range[0] <= ratio_range[1]:
            raise ValueError(
                f'ratio_range must be (min, max) with 1 <= min <= max, got '
                f'{ratio_range}; the paper uses (1, 4)')
        if len(mean) == 0:
            raise ValueError(
                'mean must give one fill value per channel, got ()')
        self.mean = tuple(float(m) for m in mean)
        # Integer images get the mean rounded once, as cv::Scalar into 8U does.
        self._int_fill = tuple(float(np.rint(m)) for m in self.mean)
        self.ratio_range = (float(ratio_range[0]), float(ratio_range[1]))
        self.prob = check_prob('prob', prob)
        self.seg_ignore_label = seg_ignore_label

    @cache_randomness
    def _draw(self) -> Optional[Tuple[float, float, float]]:
        """(ratio, u_top, u_left) from ``np.random``, or None: no zoom-out."""
        if np.random.rand() >= self.prob:
            return None
        ratio = np.random.uniform(*self.ratio_range)
        u_top, u_left = np.random.rand(2)
        return float(ratio), float(u_top), float(u_left)

    def _fill_for(self, img: np.ndarray) -> Tuple[float, ...]:
        channels = 1 if img.ndim == 2 else img.shape[2]
        if channels != len(self.mean):
            raise ValueError(
                f'RandomZoomOut got {len(self.mean)} mean values for an image '
                f'with {channels} channels (shape {img.shape}); give one mean '
                f'value per channel')
        return self._int_fill if img.dtype.kind in 'iu' else self.mean

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        """Zoom out ``results`` with probability ``prob``."""
        draw = self._draw()
        if draw is None:
            return results
        img = results['img']
        params = zoom_out_params(img.shape[:2], *draw)
        results['img'] = paste_on_canvas(img, params, self._fill_for(img))
        results['img_shape'] = (params.canvas_h, params.canvas_w)
        if results.get('gt_bboxes', None) is not None:
            results['gt_bboxes'].translate_([params.left, params.top])
        if results.get('gt_masks', None) is not None:
            results['gt_masks'] = expand_masks(results['gt_masks'], params)
        if results.get('gt_seg_map', None) is not None:
            results['gt_seg_map'] = paste_on_canvas(
                results['gt_seg_map'], params, (self.seg_ignore_label, ))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(mean={self.mean}, '
                f'ratio_range={self.ratio_range}, prob={self.prob}, '
                f'seg_ignore_label={self.seg_ignore_label})')
