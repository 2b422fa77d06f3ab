"""Every SSD transform on 1-, 3- and 4-channel images (issue 9, item 5).

Expected outputs are written by hand: the zoom-out canvas is the fill
around the image, the crop a slice of the input, grey photometric
distortion Caffe's ``convertTo`` (``clip(rint(a * x + b))``) per pixel.
"""
import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes

from ssd_plugin.datasets.transforms import (RandomIoUCrop,
                                            RandomPhotometricDistort,
                                            RandomZoomOut)

SHAPES = {1: (17, 11, 1), 3: (17, 11, 3), 4: (17, 11, 4)}


def sample(channels, seed=0):
    img = np.random.default_rng(seed).integers(
        1, 200, SHAPES[channels], dtype=np.uint8)
    return dict(img=img, img_shape=img.shape[:2],
                gt_bboxes=HorizontalBoxes(np.array([[2., 3., 9., 14.]],
                                                   np.float32)),
                gt_bboxes_labels=np.array([0]))


def test_zoom_out_one_channel_keeps_its_axis_issue_example():
    out = RandomZoomOut(mean=(0, ), prob=1.0).transform(
        dict(img=np.ones((17, 11, 1), np.uint8), img_shape=(17, 11)))
    assert out['img'].ndim == 3 and out['img'].shape[2] == 1
    assert out['img'].shape[:2] == out['img_shape']


@pytest.mark.parametrize('channels', [1, 3, 4])
def test_zoom_out_canvas_by_hand(channels):
    fill = tuple(float(10 + c) for c in range(channels))
    results = sample(channels)
    img = results['img'].copy()
    np.random.seed(0)
    out = RandomZoomOut(mean=fill, ratio_range=(3, 3), prob=1.0)(results)
    canvas = out['img']
    assert canvas.shape == (51, 33, channels) and canvas.dtype == np.uint8
    x1, y1 = (int(v) for v in out['gt_bboxes'].numpy()[0, :2] - (2, 3))
    np.testing.assert_array_equal(canvas[y1:y1 + 17, x1:x1 + 11], img)
    outside = np.ones((51, 33), bool)
    outside[y1:y1 + 17, x1:x1 + 11] = False
    np.testing.assert_array_equal(canvas[outside],
                                  np.broadcast_to(fill, (outside.sum(),
                                                         channels)))


@pytest.mark.parametrize('channels', [1, 3, 4])
def test_iou_crop_slices_every_channel(channels):
    results = sample(channels)
    # Pixel (y, x) holds y * 11 + x (< 256) in every channel: the output's
    # first pixel gives the crop's origin.
    position = np.arange(17 * 11, dtype=np.uint8).reshape(17, 11, 1)
    img = np.repeat(position, channels, axis=2)
    results['img'] = img.copy()
    for seed in range(5):
        np.random.seed(seed)
        out = RandomIoUCrop()(dict(results))
        h, w = out['img_shape']
        assert out['img'].shape == (h, w, channels)
        y0, x0 = divmod(int(out['img'][0, 0, 0]), 11)
        np.testing.assert_array_equal(out['img'], img[y0:y0 + h, x0:x0 + w])


@pytest.mark.parametrize('shape', [(17, 11), (17, 11, 1)])
def test_photometric_grey_gets_brightness_and_contrast_only(shape):
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    transform = RandomPhotometricDistort(prob=1.0)
    np.random.seed(3)
    params = transform._draw_params()
    np.random.seed(3)
    out = transform(dict(img=img.copy()))['img']
    assert out.shape == shape and out.dtype == np.uint8
    # Brightness, then contrast (its order relative to HSV is moot here).
    x = img.astype(np.float64)
    x = np.clip(np.rint(x + params.brightness), 0, 255)
    x = np.clip(np.rint(x * params.contrast), 0, 255)
    np.testing.assert_array_equal(out, x.astype(np.uint8))


def test_photometric_three_channels_unchanged_and_four_rejected():
    img = np.random.default_rng(0).integers(0, 256, (9, 7, 3), np.uint8)
    np.random.seed(5)
    out = RandomPhotometricDistort(prob=1.0)(dict(img=img))['img']
    assert out.shape == (9, 7, 3) and not np.array_equal(out, img)
    with pytest.raises(TypeError, match=r'\(H, W, 3\).*LoadImageFromFile'):
        RandomPhotometricDistort()(dict(img=np.zeros((9, 7, 4), np.uint8)))
