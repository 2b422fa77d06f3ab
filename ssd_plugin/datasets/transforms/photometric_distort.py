"""SSD's photometric distortion on uint8 images (section 2.2, Caffe release).

The Caffe release (``ApplyDistort`` in ``src/caffe/util/im_transforms.cpp``)
works on the decoded 8-bit BGR image: every step is OpenCV's ``convertTo``,
i.e. ``saturate_cast<uchar>(round(a * x + b))``, and saturation and hue are
changed on OpenCV's 8-bit HSV (hue in 0..179, 2 degrees per unit). A chain
of such saturating uint8 maps is itself a uint8 map, so brightness and
contrast compose into one 256-entry lookup table and saturation and hue into
one per-channel table on the HSV image: the image is read at most five
times (LUT, to HSV, LUT, to BGR, and one LUT when contrast comes last) and
never converted to float.

Differences from Caffe, on purpose: saturation and hue share one HSV round
trip (Caffe converts twice, rounding twice); hue wraps around the colour
wheel (see :func:`hue_lut`); the image is not re-encoded as JPEG afterwards
(Caffe's ``DistortImage`` stores the result with ``EncodeCVMatToDatum``).
Shorthand: H, W image height and width.
"""
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
    """One sample's draw; ``None`` means the step does not fire.

    Attributes:
        brightness: Added to every channel, in intensity levels.
        contrast: Multiplies every channel.
        contrast_first: Contrast before (True) or after (False) the HSV step.
        saturation: Multiplies the HSV saturation.
        hue: Added to the HSV hue, in OpenCV's 8-bit units (2 degrees).
        channel_order: Permutation of the three channels.
    """
    brightness: Optional[float] = None
    contrast: Optional[float] = None
    contrast_first: bool = True
    saturation: Optional[float] = None
    hue: Optional[float] = None
    channel_order: Optional[Tuple[int, int, int]] = None


def affine_lut(alpha: float, beta: float) -> np.ndarray:
    """Lookup table of OpenCV's ``convertTo(alpha, beta)`` on uint8.

    Args:
        alpha: Gain.
        beta: Offset, in intensity levels.

    Returns:
        np.ndarray: (256,) uint8, ``clip(rint(alpha * x + beta), 0, 255)``.
    """
    return np.clip(np.rint(_LEVELS * alpha + beta), 0, 255).astype(np.uint8)


def hue_lut(delta: float) -> np.ndarray:
    """Lookup table that rotates OpenCV's 8-bit hue by ``delta`` units.

    Hue is an angle, so it wraps modulo 180. Caffe's ``convertTo`` saturates
    instead: a negative shift clamps hues near 0 (reds) at 0, while OpenCV's
    HSV-to-BGR wraps the positive overflow; the symmetric wrap is the
    deliberate fix.

    Args:
        delta: Shift in OpenCV hue units (2 degrees each).

    Returns:
        np.ndarray: (256,) uint8; entries >= 180 never occur in HSV images.
    """
    return (np.rint(_LEVELS + delta) % _HUE_PERIOD).astype(np.uint8)


def _pre_hsv_lut(params: DistortParams,
                 hsv_step: bool) -> Optional[np.ndarray]:
    """Brightness, then contrast unless it belongs after the HSV step."""
    lut = None
    if params.brightness is not None:
        lut = affine_lut(1.0, params.brightness)
    contrast_now = params.contrast is not None and (params.contrast_first
                                                    or not hsv_step)
    if contrast_now:
        contrast = affine_lut(params.contrast, 0.0)
        # Composing two saturating uint8 maps is exact: lut2[lut1[x]].
        lut = contrast if lut is None else contrast[lut]
    return lut


def _hsv_lut(params: DistortParams) -> np.ndarray:
    """(256, 1, 3) cv2.LUT table for an HSV image: hue, saturation, value."""
    hue = _IDENTITY_LUT if params.hue is None else hue_lut(params.hue)
    sat = (
        _IDENTITY_LUT if params.saturation is None else affine_lut(
            params.saturation, 0.0))
    return np.stack([hue, sat, _IDENTITY_LUT], axis=-1)[:, None, :]


def distort_image(img: np.ndarray, params: DistortParams) -> np.ndarray:
    """Apply one drawn distortion to a BGR uint8 image.

    Args:
        img: (H, W, 3) uint8 BGR image. Not modified.
        params: The draw; steps set to ``None`` are skipped.

    Returns:
        np.ndarray: (H, W, 3) uint8, a new array unless no step fired.
    """
    hsv_step = params.saturation is not None or params.hue is not None
    lut = _pre_hsv_lut(params, hsv_step)
    out = img if lut is None else cv2.LUT(img, lut)
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


def _check_prob(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(
            f'{name} must be a probability in [0, 1], got {value}')
    return float(value)


@TRANSFORMS.register_module()
class RandomPhotometricDistort(BaseTransform):
    """Caffe SSD's random brightness, contrast, saturation and hue on uint8.

    Each step fires independently with probability ``prob``; contrast comes
    before or after the saturation/hue step with probability 1/2 each (Caffe's
    two orders); the channels are shuffled with ``channel_swap_prob`` (Caffe's
    ``random_order_prob``, 0 in ``ssd_pascal.py``). Values are drawn uniformly:
    brightness in [-delta, delta], contrast and saturation factors in their
    ranges, hue in [-hue_delta, hue_delta]. The image stays uint8 (unlike
    mmdet's ``PhotoMetricDistortion``, which returns float32).

    Required Keys:

    - img (np.uint8, (H, W, 3) BGR)

    Modified Keys:

    - img (np.uint8, same shape)

    Args:
        brightness_delta: Largest brightness shift in intensity levels.
            Defaults to 32.
        contrast_range: Contrast factor range. Defaults to (0.5, 1.5).
        saturation_range: Saturation factor range. Defaults to (0.5, 1.5).
        hue_delta: Largest hue shift in OpenCV's 8-bit hue units (2 degrees
            each, as in Caffe, so 18 is +-36 degrees). Defaults to 18.
        prob: Probability of each of the four steps. Defaults to 0.5.
        channel_swap_prob: Probability of a random channel permutation.
            Defaults to 0.0.
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
        self.prob = _check_prob('prob', prob)
        self.channel_swap_prob = _check_prob('channel_swap_prob',
                                             channel_swap_prob)

    @cache_randomness
    def _draw_params(self) -> DistortParams:
        """Draw one sample's distortion from ``np.random`` (seedable)."""
        fire = np.random.rand(4) < self.prob
        contrast_first = bool(np.random.rand() < 0.5)
        brightness = np.random.uniform(-self.brightness_delta,
                                       self.brightness_delta)
        contrast = np.random.uniform(*self.contrast_range)
        saturation = np.random.uniform(*self.saturation_range)
        hue = np.random.uniform(-self.hue_delta, self.hue_delta)
        order = None
        if np.random.rand() < self.channel_swap_prob:
            order = tuple(int(c) for c in np.random.permutation(3))
        return DistortParams(
            brightness=float(brightness) if fire[0] else None,
            contrast=float(contrast) if fire[1] else None,
            contrast_first=contrast_first,
            saturation=float(saturation) if fire[2] else None,
            hue=float(hue) if fire[3] else None,
            channel_order=order)

    def transform(self, results: dict) -> dict:
        """Distort ``results['img']``.

        Args:
            results: Result dict with a (H, W, 3) uint8 ``img``.

        Returns:
            dict: ``results`` with the distorted image.
        """
        img = results['img']
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise TypeError(
                f'RandomPhotometricDistort needs a (H, W, 3) uint8 BGR image, '
                f'got {img.dtype} of shape {img.shape}; place it right after '
                f"LoadImageFromFile (color_type='color', the default)")
        if any(stride < 0 for stride in img.strides):
            img = np.ascontiguousarray(img)  # older OpenCV rejects them
        results['img'] = distort_image(img, self._draw_params())
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'brightness_delta={self.brightness_delta}, '
                f'contrast_range={self.contrast_range}, '
                f'saturation_range={self.saturation_range}, '
                f'hue_delta={self.hue_delta}, prob={self.prob}, '
                f'channel_swap_prob={self.channel_swap_prob})')
