"""Any image array a user hands to inference, as the 3-channel BGR SSD takes.

``inference_detector`` and ``DetInferencer`` put an array straight into
``results['img']`` (mmdet's ``LoadImageFromNDArray``), so what a file
loader would have normalised reaches the model as is. Shorthand: H, W
image height and width.
"""
import numpy as np
from mmcv.transforms import BaseTransform

from ssd_plugin.registry import TRANSFORMS


def to_bgr_image(img: np.ndarray) -> np.ndarray:
    """Convert an image array to (H, W, 3) BGR, uint8 or float32.

    Args:
        img: (H, W) or (H, W, 1) gray, (H, W, 3) BGR or (H, W, 4) BGRA
            (OpenCV's orders; mmdet reads arrays as BGR); uint8, uint16 or
            float (0-255 values).

    Returns:
        np.ndarray: Gray repeated to 3 channels, alpha dropped, uint16
        scaled by 255 / 65535 to uint8, float as float32.

    Raises:
        TypeError: If ``img`` is not an array of a supported dtype.
        ValueError: If it is empty, has another shape or a non-finite value.
    """
    if not isinstance(img, np.ndarray):
        raise TypeError(f'image of type {type(img).__name__}: give a numpy '
                        'array (H, W, 3) BGR or an image path')
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ValueError(f'image of shape {img.shape}: give (H, W), (H, W, 1)'
                         ', (H, W, 3) BGR or (H, W, 4) BGRA')
    if img.size == 0:
        raise ValueError(f'image of shape {img.shape} is empty: give an image'
                         ' at least 1x1')
    if img.dtype == np.uint16:
        img = np.round(img / 257.).astype(np.uint8)  # 65535 -> 255
    elif np.issubdtype(img.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(img)))
        if bad:
            raise ValueError(f'image of shape {img.shape} has {bad} NaN or '
                             'infinite values: replace them (e.g. np.nan_'
                             'to_num) before inference')
        img = img.astype(np.float32, copy=False)
    elif img.dtype != np.uint8:
        raise TypeError(f'image dtype {img.dtype}: give uint8, uint16 or '
                        'float (0-255) pixels')
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    return img[..., :3]  # BGRA: alpha dropped


@TRANSFORMS.register_module()
class ToBGRImage(BaseTransform):
    """Make ``results['img']`` a (H, W, 3) BGR image (:func:`to_bgr_image`).

    Required keys: ``img``. Modified keys: ``img``. A no-op on what
    ``LoadImageFromFile`` loads (it always decodes to 8-bit BGR); placed
    after the load step of the test pipeline, which mmdet's inference APIs
    replace by their array loader.
    """

    def transform(self, results: dict) -> dict:
        """Convert ``results['img']`` in place of the dict; return it."""
        results['img'] = to_bgr_image(results['img'])
        return results
