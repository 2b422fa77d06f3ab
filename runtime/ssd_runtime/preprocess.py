"""An image as the graph takes it: SSD's test pipeline in numpy and OpenCV.

SSD's test pipeline is ``ToBGRImage`` (any array to 3-channel BGR),
``Resize(scale=(W, H), keep_ratio=False)`` -- mmcv's ``imresize``, which is
``cv2.resize`` -- and the data preprocessor: BGR to RGB, ``float32``,
``(x - mean) / std``, ``(N, 3, H, W)``. The functions below are those steps
with the same operations in the same order, so a deployed model sees the
numbers the torch model sees; ``ssd_plugin``'s exporter checks that on the
config it exports. A :data:`~ssd_runtime.metadata.UINT8_BGR` graph does the
normalisation itself and takes the resized image as it is.

Shorthand: ``h, w`` an image's size, ``H, W`` the network input's.
"""
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from ssd_runtime.metadata import UINT8_BGR, ModelInfo

# mmcv's cv2_interp_codes: the same names, the same OpenCV flags.
CV2_INTERPOLATION = dict(nearest=cv2.INTER_NEAREST, bilinear=cv2.INTER_LINEAR,
                         bicubic=cv2.INTER_CUBIC, area=cv2.INTER_AREA,
                         lanczos=cv2.INTER_LANCZOS4)


def to_bgr_image(img: np.ndarray) -> np.ndarray:
    """Convert an image array to (h, w, 3) BGR, uint8 or float32.

    Args:
        img: (h, w) or (h, w, 1) gray, (h, w, 3) BGR or (h, w, 4) BGRA
            (OpenCV's orders; mmdet reads arrays as BGR); uint8, uint16 or
            float (0-255 values).

    Returns:
        np.ndarray: Gray repeated to 3 channels, alpha dropped, uint16
        scaled by 255 / 65535 to uint8, float as float32; a uint8 BGR
        image is returned as is (no copy).

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


def resize_image(img: np.ndarray, input_size: Tuple[int, int],
                 interpolation: str = 'bilinear'
                 ) -> Tuple[np.ndarray, Tuple[float, float]]:
    """``Resize(scale=(W, H), keep_ratio=False)``: mmcv's ``imresize``.

    Args:
        img (np.ndarray): (h, w, 3) BGR from :func:`to_bgr_image`.
        input_size (tuple[int, int]): ``(H, W)``.
        interpolation (str): A key of :data:`CV2_INTERPOLATION`.

    Returns:
        tuple: (H, W, 3) image of ``img``'s dtype; ``scale_factor``
        ``(W / w, H / h)``, mmdet's ``(w_scale, h_scale)``.
    """
    height, width = input_size
    resized = cv2.resize(img, (width, height),
                         interpolation=CV2_INTERPOLATION[interpolation])
    return resized, (width / img.shape[1], height / img.shape[0])


def to_uint8(batch: np.ndarray) -> np.ndarray:
    """Pixels as uint8: a float image's values rounded and clipped to
    0-255 (a uint8 graph's input); a uint8 array as is."""
    if batch.dtype == np.uint8:
        return batch
    return np.clip(np.rint(batch), 0, 255).astype(np.uint8)


def check_normalisation(info: ModelInfo) -> None:
    """Raise unless the runtime can prepare ``info``'s input: a uint8 graph,
    or a float graph that records its normalisation.

    Raises:
        ValueError: Naming the fix (export the model again).
    """
    if info.input_format != UINT8_BGR and (info.mean is None or
                                           info.std is None):
        raise ValueError(
            'the model does not record its normalisation (ssd_plugin.mean, '
            'ssd_plugin.std, ssd_plugin.channel_order): export it again with '
            'tools/deployment/export_onnx.py (add --input uint8 to feed it '
            'OpenCV images directly)')


def graph_input(resized: Sequence[np.ndarray], info: ModelInfo) -> np.ndarray:
    """The graph's input array for resized (H, W, 3) BGR images.

    Args:
        resized (Sequence[np.ndarray]): From :func:`resize_image`.
        info (ModelInfo): The model's facts (input format, normalisation).

    Returns:
        np.ndarray: ``uint8 (N, H, W, 3)`` BGR, or ``float32 (N, 3, H, W)``
        with the data preprocessor's channel order and ``(x - mean) /
        std``.

    Raises:
        ValueError: For a float graph without its normalisation recorded.
    """
    check_normalisation(info)
    # One image: a view with a batch axis, no copy.
    batch = resized[0][None] if len(resized) == 1 else np.stack(resized)
    if info.input_format == UINT8_BGR:
        return to_uint8(batch)
    # The data preprocessor's order: channel swap, float, (x - mean) / std.
    if info.channel_order == 'rgb':
        batch = batch[..., ::-1]
    mean = np.asarray(info.mean, np.float32)
    std = np.asarray(info.std, np.float32)
    normalised = (batch.astype(np.float32) - mean) / std
    return np.ascontiguousarray(normalised.transpose(0, 3, 1, 2))


def preprocess(images: Sequence[np.ndarray], info: ModelInfo
               ) -> Tuple[np.ndarray, List[dict]]:
    """The graph input for ``images`` and what maps detections back.

    Args:
        images (Sequence[np.ndarray]): Arrays :func:`to_bgr_image` takes.
        info (ModelInfo): The model's facts.

    Returns:
        tuple: The input array (:func:`graph_input`); per image a dict of
        ``ori_shape`` ``(h, w)``, ``img_shape`` ``(H, W)`` and
        ``scale_factor`` ``(W / w, H / h)``, as mmdet's metainfo.
    """
    resized, metas = [], []
    for image in images:
        image = to_bgr_image(image)
        out, scale = resize_image(image, info.input_size, info.interpolation)
        resized.append(out)
        metas.append(dict(ori_shape=image.shape[:2], img_shape=out.shape[:2],
                          scale_factor=scale))
    return graph_input(resized, info), metas
