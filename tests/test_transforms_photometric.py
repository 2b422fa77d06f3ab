"""RandomPhotometricDistort against the Caffe release's uint8 semantics.

References written here: Caffe's ``convertTo(alpha, beta)`` on uint8 is
``saturate_cast<uchar>(alpha * x + beta)``, i.e. round half to even and clip
to [0, 255] after every step; saturation and hue are changed on OpenCV's
8-bit HSV (hue 0..179, 2 degrees per unit). Expected colours on the hue
wheel are derived by hand. Statistical tests use fixed seeds and tolerances
of 4 binomial (or uniform) standard deviations.
"""
import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssd_plugin.datasets.transforms.photometric_distort import (
    DistortParams, RandomPhotometricDistort, affine_lut, distort_image,
    hue_lut)
from ssd_plugin.registry import TRANSFORMS


def caffe_convert(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """Reference for OpenCV's uint8 convertTo, one element at a time."""
    flat = [
        min(255, max(0, round(alpha * float(v) + beta))) for v in x.ravel()
    ]
    return np.array(flat, dtype=np.uint8).reshape(x.shape)


def caffe_hsv_step(img, saturation=None, hue=None):
    """Caffe's AdjustSaturation then AdjustHue, hue wrapped (our fix)."""
    out = img
    if saturation is not None:
        hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)
        hsv[..., 1] = caffe_convert(hsv[..., 1], saturation, 0.0)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    if hue is not None:
        hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)
        shifted = hsv[..., 0].astype(np.int64) + round(hue)
        hsv[..., 0] = (shifted % 180).astype(np.uint8)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    return out


def random_image(seed: int, shape=(17, 23, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize('alpha,beta', [(1.0, 31.7), (1.0, -32.0), (0.5, 0.0),
                                        (1.5, 0.0), (1.0, 0.5), (1.37, 0.0)])
def test_affine_lut_is_caffe_convert(alpha, beta):
    levels = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(
        affine_lut(alpha, beta), caffe_convert(levels, alpha, beta))


def test_hue_lut_wraps_both_ways():
    assert hue_lut(18)[170] == (170 + 18) - 180
    assert hue_lut(-18)[5] == 180 + 5 - 18
    assert hue_lut(0.4)[100] == 100


@pytest.mark.parametrize('contrast_first', [True, False])
def test_brightness_and_contrast_compose_like_sequential_caffe(contrast_first):
    img = random_image(0)
    params = DistortParams(
        brightness=-20.6, contrast=1.4, contrast_first=contrast_first)
    expected = caffe_convert(caffe_convert(img, 1.0, -20.6), 1.4, 0.0)
    np.testing.assert_array_equal(distort_image(img, params), expected)


@pytest.mark.parametrize('contrast_first', [True, False])
def test_full_chain_matches_caffe_order(contrast_first):
    img = random_image(1)
    params = DistortParams(
        brightness=12.2,
        contrast=0.7,
        contrast_first=contrast_first,
        saturation=1.3,
        hue=-7.4)
    out = caffe_convert(img, 1.0, 12.2)
    if contrast_first:
        out = caffe_convert(out, 0.7, 0.0)
    # One HSV round trip instead of Caffe's two: compare with a single one.
    hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)
    hsv[..., 1] = caffe_convert(hsv[..., 1], 1.3, 0.0)
    hsv[..., 0] = (hsv[..., 0].astype(np.int64) - 7) % 180
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    if not contrast_first:
        out = caffe_convert(out, 0.7, 0.0)
    np.testing.assert_array_equal(distort_image(img, params), out)


def test_single_hsv_round_trip_stays_close_to_caffe_two():
    img = random_image(2, (40, 40, 3))
    ours = distort_image(img, DistortParams(saturation=1.2, hue=9.0))
    caffe = caffe_hsv_step(img, saturation=1.2, hue=9.0)
    # uint8 HSV quantisation: a few levels, never a different colour.
    diff = np.abs(ours.astype(int) - caffe.astype(int))
    assert np.median(diff) <= 2 and diff.max() <= 40


@pytest.mark.parametrize(
    'hue,expected_bgr',
    [
        (60.0, (0, 255, 0)),  # red + 120 degrees = green
        (-60.0, (255, 0, 0)),  # red - 120 degrees wraps to blue
        (30.0, (0, 255, 255)),  # red + 60 degrees = yellow
    ])
def test_hue_rotates_pure_red_around_the_wheel(hue, expected_bgr):
    red = np.zeros((2, 3, 3), np.uint8)
    red[..., 2] = 255
    out = distort_image(red, DistortParams(hue=hue))
    np.testing.assert_array_equal(out, np.broadcast_to(expected_bgr,
                                                       red.shape))


def test_zero_saturation_gives_grey_at_the_value():
    img = np.array([[[50, 100, 200]]], np.uint8)
    out = distort_image(img, DistortParams(saturation=0.0))
    np.testing.assert_array_equal(out, [[[200, 200, 200]]])


def test_grey_image_loaded_as_colour_stays_grey_under_any_draw():
    grey = np.repeat(random_image(3, (9, 11, 1)), 3, axis=2)
    transform = RandomPhotometricDistort(prob=1.0)
    np.random.seed(0)
    for _ in range(20):
        out = transform(dict(img=grey.copy()))['img']
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1]
                                                       == out[..., 2]).all()


def test_channel_order_permutes_channels():
    img = random_image(4)
    out = distort_image(img, DistortParams(channel_order=(2, 0, 1)))
    np.testing.assert_array_equal(out, img[..., [2, 0, 1]])
    assert out.flags.c_contiguous


def test_no_step_returns_input_unchanged_and_never_modifies_input():
    img = random_image(5)
    before = img.copy()
    assert distort_image(img, DistortParams()) is img
    distort_image(
        img,
        DistortParams(
            brightness=30,
            contrast=1.5,
            saturation=0.5,
            hue=10,
            contrast_first=False))
    np.testing.assert_array_equal(img, before)


def test_step_frequencies_are_half_and_values_in_range():
    transform = RandomPhotometricDistort()
    np.random.seed(1234)
    n = 4000
    draws = [transform._draw_params() for _ in range(n)]
    tol = 4 * math.sqrt(0.25 / n)
    for name in ('brightness', 'contrast', 'saturation', 'hue'):
        values = [
            getattr(d, name) for d in draws if getattr(d, name) is not None
        ]
        assert abs(len(values) / n - 0.5) < tol, name
    assert abs(np.mean([d.contrast_first for d in draws]) - 0.5) < tol
    assert all(d.channel_order is None for d in draws)
    fired = lambda name: np.array([
        getattr(d, name) for d in draws  # noqa: E731
        if getattr(d, name) is not None
    ])
    assert np.abs(fired('brightness')).max() <= 32
    assert fired('contrast').min() >= 0.5 and fired('contrast').max() <= 1.5
    assert fired('saturation').min() >= 0.5 and fired(
        'saturation').max() <= 1.5
    assert np.abs(fired('hue')).max() <= 18


def test_channel_swap_probability():
    transform = RandomPhotometricDistort(channel_swap_prob=0.3)
    np.random.seed(7)
    n = 3000
    swaps = [transform._draw_params().channel_order for _ in range(n)]
    rate = np.mean([s is not None for s in swaps])
    assert abs(rate - 0.3) < 4 * math.sqrt(0.3 * 0.7 / n)
    assert all(sorted(s) == [0, 1, 2] for s in swaps if s is not None)


def test_brightness_shift_of_outputs_is_centred():
    # Brightness alone on mid-grey: the output shift is the rounded delta,
    # uniform on [-32, 32] when fired, 0 otherwise: mean 0, variance
    # 0.5 * 32 ** 2 / 3.
    transform = RandomPhotometricDistort(
        contrast_range=(1, 1), saturation_range=(1, 1), hue_delta=0)
    grey = np.full((2, 2, 3), 128, np.uint8)
    np.random.seed(99)
    n = 3000
    shifts = np.array([
        transform(dict(img=grey.copy()))['img'][0, 0, 0] - 128.0
        for _ in range(n)
    ])
    std = math.sqrt(0.5 * 32**2 / 3)
    assert abs(shifts.mean()) < 4 * std / math.sqrt(n)
    assert abs(shifts.std() - std) < 0.1 * std
    assert abs(np.mean(shifts == 0) - 0.5) < 4 * math.sqrt(0.25 / n) + 0.01
    assert shifts.min() >= -32 and shifts.max() <= 32


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    h=st.integers(1, 30),
    w=st.integers(1, 30),
    seed=st.integers(0, 2**31 - 1),
    swap=st.sampled_from([0.0, 1.0]))
def test_any_image_keeps_shape_and_dtype(h, w, seed, swap):
    img = random_image(seed, (h, w, 3))
    np.random.seed(seed)
    results = RandomPhotometricDistort(
        prob=1.0, channel_swap_prob=swap)(
            dict(img=img))
    assert results['img'].shape == (h, w,
                                    3) and results['img'].dtype == np.uint8


def test_non_contiguous_views_are_accepted():
    img = random_image(6, (10, 12, 3))
    np.random.seed(0)
    out = RandomPhotometricDistort(prob=1.0)(dict(img=img[:, ::-1]))['img']
    assert out.shape == (10, 12, 3)


@pytest.mark.parametrize('img', [
    np.zeros((4, 4, 3), np.float32),
    np.zeros((4, 4, 2), np.uint8),
    np.zeros((4, 4, 4), np.uint8),
    np.zeros((4, 4, 1, 1), np.uint8)
])
def test_wrong_image_raises_type_error_with_fix(img):
    with pytest.raises(TypeError, match='LoadImageFromFile'):
        RandomPhotometricDistort()(dict(img=img))


@pytest.mark.parametrize('kwargs', [
    dict(brightness_delta=-1),
    dict(contrast_range=(1.5, 0.5)),
    dict(saturation_range=(-0.1, 1.0)),
    dict(hue_delta=180),
    dict(prob=1.5),
    dict(channel_swap_prob=-0.1)
])
def test_bad_arguments_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        RandomPhotometricDistort(**kwargs)


def test_registered_with_caffe_defaults():
    transform = TRANSFORMS.build(dict(type='RandomPhotometricDistort'))
    assert isinstance(transform, RandomPhotometricDistort)
    assert (transform.brightness_delta, transform.contrast_range,
            transform.saturation_range, transform.hue_delta, transform.prob,
            transform.channel_swap_prob) == (32, (0.5, 1.5), (0.5, 1.5), 18,
                                             0.5, 0.0)
    assert 'RandomPhotometricDistort' in repr(transform)
