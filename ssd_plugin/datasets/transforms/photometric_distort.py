"""SSD's photometric distortion (section 2.2; Caffe's ``ApplyDistort``) as
uint8 lookup tables: Caffe's saturating ``convertTo`` steps compose exactly.
Differences from Caffe: see docs/design.md."""
from typing import NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from ssd_plugin.registry import TRANSFORMS

_LEVELS = np.arange(256, dtype=np.float64)
_IDENTITY_LUT = np.arange(256, dtype=np.uint8)
# OpenCV's 8-bit HSV stores hue in [0, 180): 2 degrees per unit.
_HUE_PERIOD = 180


class DistortParams(NamedTuple):
    """One draw (None: the step does not fire); hue in OpenCV units."""
    brightness: Optional[float] = None
    contrast: Optional[float] = None
    contrast_first: bool = True
    saturation: Optional[float] = None
    hue: Optional[float] = None
    channel_order: Optional[Tuple[int, int, int]] = None


def affine_lut(alpha: float, beta: float) -> np.ndarray:
    """``(256,)`` uint8 table of OpenCV's ``convertTo(alpha, beta)``:
    ``clip(rint(alpha * x + beta), 0, 255)``."""
    return np.clip(np.rint(_LEVELS * alpha + beta), 0, 255).astype(np.uint8)


def hue_lut(delta: float) -> np.ndarray:
    """``(256,)`` uint8 table rotating OpenCV's hue by ``delta`` units,
    modulo 180 (Caffe saturates: a deliberate fix, see docs/design.md)."""
    return (np.rint(_LEVELS + delta) % _HUE_PERIOD).astype(np.uint8)


def _pre_hsv_lut(params: DistortParams,
                 hsv_step: bool) -> Optional[np.ndarray]:
    """Brightness, then contrast unless it belongs after the HSV step."""
    lut = None if params.brightness is None else affine_lut(
        1.0, params.brightness)
    if params.contrast is not None and (params.contrast_first
                                        or not hsv_step):
        contrast = affine_lut(params.contrast, 0.0)
        # Composing two saturating uint8 maps is exact: lut2[lut1[x]].
        lut = contrast if lut is None else contrast[lut]
    return lut


def _hsv_lut(params: DistortParams) -> np.ndarray:
    """(256, 1, 3) cv2.LUT table for an HSV image: hue, saturation, value."""
    hue = _IDENTITY_LUT if params.hue is None else hue_lut(params.hue)
    sat = _IDENTITY_LUT if params.saturation is None else affine_lut(
        params.saturation, 0.0)
    return np.stack([hue, sat, _IDENTITY_LUT], axis=-1)[:, None, :]


def distort_image(img: np.ndarray, params: DistortParams) -> np.ndarray:
    """Apply one draw to a uint8 ``(H, W, 3)`` BGR image, or a grey ``(H,
    W[, 1])`` one with saturation, hue and channel order None; same shape and
    dtype, a new array unless no step fired (``img`` is not modified)."""
    hsv_step = params.saturation is not None or params.hue is not None
    lut = _pre_hsv_lut(params, hsv_step)
    # reshape: OpenCV returns (H, W) for an (H, W, 1) image.
    out = img if lut is None else cv2.LUT(img, lut).reshape(img.shape)
    if hsv_step:
        hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)
        cv2.LUT(hsv, _hsv_lut(params), dst=hsv)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        if params.contrast is not None and not params.contrast_first:
            out = cv2.LUT(out, affine_lut(params.contrast, 0.0))
    if params.channel_order is not None:
        out = np.ascontiguousarray(out[..., list(params.channel_order)])
    return out


def _check_range(name: str, value: Sequence[float],
                 low: float) -> Tuple[float, float]:
    """Check a (lower, upper) factor range: ``low <= lower <= upper``."""
    if len(value) != 2 or not low <= value[0] <= value[1]:
        raise ValueError(
            f'{name} must be (lower, upper) with {low} <= lower <= upper, '
            f'got {value}; the Caffe value is (0.5, 1.5)')
    return float(value[0]), float(value[1])


def check_prob(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(
            f'{name} must be a probability in [0, 1], got {value}')
    return float(value)


@TRANSFORMS.register_module()
class RandomPhotometricDistort(BaseTransform):
    """Caffe SSD's random brightness, contrast, saturation and hue on uint8.

    Each step fires with probability ``prob``; contrast before or after the
    HSV step with probability 1/2 each (Caffe's two orders); channels
    shuffled with ``channel_swap_prob``. Brightness in levels, hue in OpenCV's
    units (2 degrees, as Caffe). A grey image gets brightness and contrast
    only (it has no saturation or hue).

    Required Keys: ``img`` uint8, (H, W, 3) BGR or (H, W[, 1]) grey.

    Modified Keys: ``img`` (same shape and dtype).
    """

    def __init__(self,
                 brightness_delta: float = 32,
                 contrast_range: Sequence[float] = (0.5, 1.5),
                 saturation_range: Sequence[float] = (0.5, 1.5),
                 hue_delta: float = 18,
                 prob: float = 0.5,
                 channel_swap_prob: float = 0.0) -> None:
        super().__init__()
        if not 0 <= brightness_delta <= 255:
            raise ValueError(
                f'brightness_delta must lie in [0, 255] levels, got '
                f'{brightness_delta}; the Caffe value is 32')
        if not 0 <= hue_delta < _HUE_PERIOD:
            raise ValueError(
                f'hue_delta must lie in [0, 180) OpenCV hue units (2 degrees '
                f'each), got {hue_delta}; the Caffe value is 18')
        self.brightness_delta = float(brightness_delta)
        self.contrast_range = _check_range('contrast_range', contrast_range,
                                           0.0)
        self.saturation_range = _check_range('saturation_range',
                                             saturation_range, 0.0)
        self.hue_delta = float(hue_delta)
        self.prob = check_prob('prob', prob)
        self.channel_swap_prob = check_prob('channel_swap_prob',
                                             channel_swap_prob)

    @cache_randomness
    def _draw_params(self) -> DistortParams:
        """Draw one sample's distortion from ``np.random`` (seedable)."""
        fire = np.random.rand(4) < self.prob
        contrast_first = bool(np.random.rand() < 0.5)
        draws = (np.random.uniform(-self.brightness_delta,
                                   self.brightness_delta),
                 np.random.uniform(*self.contrast_range),
                 np.random.uniform(*self.saturation_range),
                 np.random.uniform(-self.hue_delta, self.hue_delta))
        brightness, contrast, saturation, hue = (
            float(value) if fired else None
            for value, fired in zip(draws, fire))
        order = None
        if np.random.rand() < self.channel_swap_prob:
            order = tuple(int(c) for c in np.random.permutation(3))
        return DistortParams(brightness, contrast, contrast_first,
                             saturation, hue, order)

    def transform(self, results: dict) -> dict:
        """Distort ``results['img']``."""
        img = results['img']
        channels = 1 if img.ndim == 2 else img.shape[-1]
        if img.dtype != np.uint8 or img.ndim not in (2, 3) or channels not in (
                1, 3):
            raise TypeError(
                f'RandomPhotometricDistort needs a uint8 BGR (H, W, 3) or '
                f'grey (H, W[, 1]) image, got {img.dtype} of shape '
                f'{img.shape}; place it right after LoadImageFromFile '
                f"(color_type='color', the default, or 'grayscale')")
        if any(stride < 0 for stride in img.strides):
            img = np.ascontiguousarray(img)  # older OpenCV rejects them
        params = self._draw_params()
        if channels == 1:  # a grey image has no saturation or hue
            params = params._replace(saturation=None, hue=None,
                                     channel_order=None)
        results['img'] = distort_image(img, params)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'brightness_delta={self.brightness_delta}, '
                f'contrast_range={self.contrast_range}, '
                f'saturation_range={self.saturation_range}, '
                f'hue_delta={self.hue_delta}, prob={self.prob}, '
                f'channel_swap_prob={self.channel_swap_prob})')
