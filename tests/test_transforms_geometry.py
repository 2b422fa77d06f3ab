"""RandomZoomOut and RandomIoUCrop against hand-derived geometry.

Expected canvases and patches are computed by hand from Caffe's
``ExpandImage`` and ``SampleBBox`` formulas; IoUs are checked with mmdet's
``bbox_overlaps`` (an independent implementation); box/pixel consistency is
checked by painting each object in its own colour and reading the colour
back inside the output box. Statistical tests use fixed seeds and tolerances
of 4 standard deviations.
"""
import math

import numpy as np
import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes, bbox_overlaps
from mmdet.structures.mask import BitmapMasks, PolygonMasks

from ssd_plugin.datasets.transforms.iou_crop import (
    RandomIoUCrop, box_iou, boxes_as_array, first_valid_trials, kept_boxes,
    to_pixel_crops, trials_from_uniforms)
from ssd_plugin.datasets.transforms.zoom_out import (RandomZoomOut,
                                                     ZoomOutParams,
                                                     paste_on_canvas,
                                                     zoom_out_params)
from ssd_plugin.registry import TRANSFORMS

MEAN = (103.53, 116.28, 123.675)


def painted_sample(h=60,
                   w=80,
                   boxes=((5, 5, 25, 30), (40, 10, 75, 55)),
                   with_masks=False):
    """An image whose box i is painted with value 10 * (i + 1) in channel 0."""
    img = np.zeros((h, w, 3), np.uint8)
    masks = np.zeros((len(boxes), h, w), np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        img[y1:y2, x1:x2, 0] = 10 * (i + 1)
        masks[i, y1:y2, x1:x2] = 1
    results = dict(
        img=img,
        img_shape=(h, w),
        gt_bboxes=HorizontalBoxes(np.array(boxes, np.float32).reshape(-1, 4)),
        gt_bboxes_labels=np.arange(len(boxes), dtype=np.int64),
        gt_ignore_flags=np.arange(len(boxes)) % 2 == 1)
    if with_masks:
        results['gt_masks'] = BitmapMasks(masks, h, w)
    return results


def assert_boxes_hold_their_paint(results):
    img, boxes = results['img'], results['gt_bboxes'].numpy()
    for box, label in zip(boxes, results['gt_bboxes_labels']):
        x1, y1, x2, y2 = np.round(box).astype(int)
        patch = img[y1:y2, x1:x2, 0]
        assert patch.size > 0 and (patch == 10 * (label + 1)).all()


# ----------------------------------------------------------------- zoom-out


def test_zoom_out_params_by_hand():
    assert zoom_out_params((10, 20), 2.5, 0.5,
                           0.5) == ZoomOutParams(25, 50, 7, 15)
    assert zoom_out_params((10, 20), 1.0, 0.9,
                           0.9) == ZoomOutParams(10, 20, 0, 0)
    assert zoom_out_params((1, 1), 4.0, 0.999,
                           0.0) == ZoomOutParams(4, 4, 2, 0)


@pytest.mark.parametrize('dtype,fill', [(np.uint8, (104, 116, 124)),
                                        (np.float32, MEAN)])
def test_paste_on_canvas_fills_rounded_mean_around_the_image(dtype, fill):
    img = (np.arange(6 * 4 * 3).reshape(6, 4, 3) % 50).astype(dtype)
    transform = RandomZoomOut(mean=MEAN)
    canvas = paste_on_canvas(img, ZoomOutParams(13, 9, 3, 2),
                             transform._fill_for(img))
    assert canvas.shape == (13, 9, 3) and canvas.dtype == dtype
    np.testing.assert_array_equal(canvas[3:9, 2:6], img)
    outside = np.ones((13, 9), bool)
    outside[3:9, 2:6] = False
    np.testing.assert_allclose(
        canvas[outside], np.broadcast_to(fill, (outside.sum(), 3)), rtol=1e-6)


def test_paste_on_canvas_handles_many_channels_and_2d():
    img = np.ones((2, 2, 6), np.float32)
    canvas = paste_on_canvas(img, ZoomOutParams(4, 5, 1, 2), (7.0, ) * 6)
    assert canvas.shape == (4, 5, 6) and canvas[0, 0,
                                                5] == 7 and canvas[1, 2,
                                                                   0] == 1
    seg = np.zeros((2, 2), np.uint8)
    assert paste_on_canvas(seg, ZoomOutParams(3, 3, 0, 0), (255, ))[2,
                                                                    2] == 255


def test_zoom_out_moves_boxes_masks_and_seg_with_the_image():
    np.random.seed(3)
    results = painted_sample(with_masks=True)
    results['gt_seg_map'] = np.zeros((60, 80), np.uint8)
    out = RandomZoomOut(mean=MEAN, prob=1.0)(results)
    h, w = out['img'].shape[:2]
    assert out['img_shape'] == (h, w) and h >= 60 and w >= 80
    assert_boxes_hold_their_paint(out)
    assert out['gt_masks'].masks.shape == (2, h, w)
    mask_boxes = out['gt_masks'].get_bboxes(HorizontalBoxes).numpy()
    np.testing.assert_allclose(mask_boxes, out['gt_bboxes'].numpy())
    assert out['gt_seg_map'].shape == (h, w) and (out['gt_seg_map']
                                                  == 255).sum() == h * w - 4800


def test_zoom_out_prob_zero_is_identity():
    results = painted_sample()
    img = results['img']
    out = RandomZoomOut(prob=0.0)(results)
    assert out['img'] is img and out['img_shape'] == (60, 80)


def test_zoom_ratio_and_position_statistics():
    transform = RandomZoomOut(mean=MEAN, ratio_range=(1, 4), prob=0.5)
    np.random.seed(11)
    n = 4000
    draws = [transform._draw() for _ in range(n)]
    fired = [d for d in draws if d is not None]
    assert abs(len(fired) / n - 0.5) < 4 * math.sqrt(0.25 / n)
    ratios = np.array([d[0] for d in fired])
    assert ratios.min() >= 1 and ratios.max() <= 4
    # Uniform on [1, 4]: mean 2.5, std 3 / sqrt(12).
    assert abs(ratios.mean() -
               2.5) < 4 * (3 / math.sqrt(12)) / math.sqrt(len(ratios))
    offsets = np.array([d[1:] for d in fired])
    assert abs(offsets.mean() -
               0.5) < 4 * math.sqrt(1 / 12) / math.sqrt(offsets.size)


def test_zoom_out_canvas_ratio_through_transform():
    transform = RandomZoomOut(mean=MEAN, ratio_range=(2, 3), prob=1.0)
    np.random.seed(5)
    for _ in range(50):
        out = transform(
            dict(img=np.zeros((40, 50, 3), np.uint8), img_shape=(40, 50)))
        h, w = out['img'].shape[:2]
        assert 80 <= h <= 120 and 100 <= w <= 150
        assert abs(h / 40 - w / 50) < 1 / 40 + 1 / 50  # one ratio, both axes


@pytest.mark.parametrize('kwargs', [
    dict(ratio_range=(0.5, 2)),
    dict(ratio_range=(3, 2)),
    dict(prob=2.0),
    dict(mean=())
])
def test_zoom_out_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        RandomZoomOut(**kwargs)


def test_zoom_out_mean_channel_mismatch_names_the_fix():
    with pytest.raises(ValueError, match='one mean value per channel'):
        RandomZoomOut(prob=1.0)(dict(img=np.zeros((4, 4), np.uint8)))


# ----------------------------------------------------------------- sampler


def test_trials_from_uniforms_by_hand():
    u = np.array([
        [0.5, 0.5, 0.0, 0.0],  # scale 0.65, ratio 1.25
        [1.0, 1.0, 0.5, 0.5],  # scale 1, ratio 2 clamped to 1
        [0.0, 0.0, 1.0, 1.0]
    ])  # scale 0.3, ratio 0.5
    patches = trials_from_uniforms(u, (0.3, 1.0), (0.5, 2.0))
    w0, h0 = 0.65 * math.sqrt(1.25), 0.65 / math.sqrt(1.25)
    np.testing.assert_allclose(patches[0], [0, 0, w0, h0])
    np.testing.assert_allclose(patches[1], [0, 0, 1, 1])
    w2, h2 = 0.3 * math.sqrt(0.5), 0.3 / math.sqrt(0.5)
    np.testing.assert_allclose(patches[2], [1 - w2, 1 - h2, 1, 1])


def test_patch_scale_and_aspect_statistics():
    rng = np.random.default_rng(0)
    patches = trials_from_uniforms(
        rng.random((20000, 4)), (0.3, 1.0), (0.5, 2.0))
    w, h = patches[:, 2] - patches[:, 0], patches[:, 3] - patches[:, 1]
    assert patches.min() >= 0 and patches.max() <= 1 + 1e-12
    scale = np.sqrt(w * h)
    aspect = w / h
    assert scale.min() >= 0.3 - 1e-9 and scale.max() <= 1 + 1e-9
    assert aspect.min() >= 0.5 - 1e-9 and aspect.max() <= 2 + 1e-9
    # The side scale is uniform on [0.3, 1] (the clamp only moves the ratio).
    assert abs(scale.mean() -
               0.65) < 4 * (0.7 / math.sqrt(12)) / math.sqrt(len(scale))


def test_to_pixel_crops_are_non_empty_and_inside():
    rng = np.random.default_rng(1)
    patches = trials_from_uniforms(
        rng.random((500, 4)), (0.3, 1.0), (0.5, 2.0))
    for h, w in [(1, 1), (1, 300), (7, 3), (375, 500)]:
        crops = to_pixel_crops(patches, (h, w))
        assert (crops[:, 0] >= 0).all() and (crops[:, 1] >= 0).all()
        assert (crops[:, 2] <= w).all() and (crops[:, 3] <= h).all()
        assert (crops[:, 2] > crops[:, 0]).all() and (crops[:, 3]
                                                      > crops[:, 1]).all()
    np.testing.assert_array_equal(
        to_pixel_crops(patches[:1], (1, 1)), [[0, 0, 1, 1]])


def test_box_iou_matches_mmdet_bbox_overlaps():
    rng = np.random.default_rng(2)
    a = np.sort(
        rng.uniform(0, 100, (30, 2, 2)), axis=1).transpose(0, 2,
                                                           1).reshape(30, 4)
    a = a[:, [0, 2, 1, 3]]
    b = np.sort(
        rng.uniform(0, 100, (20, 2, 2)), axis=1).transpose(0, 2,
                                                           1).reshape(20, 4)
    b = b[:, [0, 2, 1, 3]]
    expected = bbox_overlaps(torch.tensor(a), torch.tensor(b)).numpy()
    np.testing.assert_allclose(box_iou(a, b), expected, rtol=1e-5, atol=1e-6)


def test_box_iou_of_degenerate_box_is_zero():
    iou = box_iou(
        np.array([[0, 0, 10, 10]]), np.array([[5, 5, 5, 8], [2, 2, 1, 1]]))
    np.testing.assert_array_equal(iou, [[0, 0]])


def test_kept_boxes_rule_by_hand():
    crop = np.array([[10, 10, 20, 20]])
    boxes = np.array(
        [
            [5, 5, 15, 15],  # centre (10, 10) on the corner: kept
            [18, 18, 30, 30],  # centre (24, 24) outside: dropped
            [12, 12, 12, 18],  # zero width: dropped
            [12, 12, 18, 12],  # zero height: dropped
            [np.nan, 0, 15, 15],  # non-finite: dropped
            [11, 11, 19, 19]
        ],
        np.float32)
    np.testing.assert_array_equal(
        kept_boxes(crop, boxes)[0], [True, False, False, False, False, True])


def test_first_valid_trials_takes_the_first_success_per_sampler():
    boxes = np.array([[0, 0, 10, 10]], np.float32)
    crops = np.array([[[0, 0, 100, 100], [0, 0, 10, 10], [0, 0, 12, 12]],
                      [[50, 50, 60, 60], [0, 0, 20, 20], [0, 0, 10, 10]]])
    # IoUs: sampler 0: 0.01, 1, 0.69; sampler 1: kept-box-less, 0.25, 1.
    np.testing.assert_array_equal(
        first_valid_trials(crops, boxes, np.array([0.5, 0.2])), [1, 1])
    np.testing.assert_array_equal(
        first_valid_trials(crops, boxes, np.array([0.0, 0.99])), [0, 2])
    np.testing.assert_array_equal(
        first_valid_trials(crops, np.zeros((0, 4)), np.array([0.0, 0.5])),
        [-1, -1])


@pytest.mark.parametrize('constraint', ['any', 'all'])
def test_sampled_crop_meets_the_iou_it_drew(constraint):
    transform = RandomIoUCrop(constraint=constraint)
    rng = np.random.default_rng(3)
    modes = []
    for seed in range(300):
        np.random.seed(seed)
        h, w = rng.integers(50, 400, 2)
        n = rng.integers(1, 6)
        xy = rng.uniform(0, [w - 10, h - 10], (n, 2))
        wh = rng.uniform(5, [w, h], (n, 2))
        boxes = np.concatenate([xy, np.minimum(xy + wh, [w, h])],
                               1).astype(np.float32)
        choice = transform._sample_crop((h, w), boxes)
        modes.append(choice.min_iou)
        x1, y1, x2, y2 = choice.crop
        if choice.min_iou is None:
            assert (x1, y1, x2, y2) == (0, 0, w, h)
            continue
        iou = bbox_overlaps(
            torch.tensor(choice.crop[None], dtype=torch.float32),
            torch.from_numpy(boxes)).numpy()[0]
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] +
                                                   boxes[:, 3]) / 2
        inside = (cx >= x1) & (cx <= x2) & (cy >= y1) & (cy <= y2)
        enough = iou >= choice.min_iou - 1e-5
        if constraint == 'any':
            assert (inside & enough).any()
        else:  # mmdet's rule: every box has the IoU, one centre inside
            assert enough.all() and inside.any()
    # The samplers that rarely fail on random boxes all get picked; the whole
    # image, always a candidate, at least about 1/7 of the time.
    assert {None, 0.0, 0.1, 0.3} <= set(modes) <= {
        None, 0.0, 0.1, 0.3, 0.5, 0.7, 0.9}
    assert modes.count(None) / len(modes) > 1 / 7 - 4 * math.sqrt(
        1 / 7 * 6 / 7 / 300)
    if constraint == 'any':
        assert 0.5 in modes


def test_first_valid_trials_all_boxes_rule_by_hand():
    boxes = np.array([[0, 0, 10, 10], [10, 0, 20, 10], [5, 5, 5, 9]],
                     np.float32)  # the third is degenerate: left out
    crops = np.array([[[0, 0, 10, 10], [0, 0, 20, 10], [0, 0, 40, 10]]])
    # IoUs with the proper boxes: (1, 0), (0.5, 0.5), (0.25, 0.25).
    for constraint, expected in (('any', [0]), ('all', [1])):
        np.testing.assert_array_equal(
            first_valid_trials(crops, boxes, np.array([0.5]), constraint),
            expected)
    np.testing.assert_array_equal(
        first_valid_trials(crops, boxes, np.array([0.6]), 'all'), [-1])
    # The unconstrained sampler (0) needs one kept box under either rule.
    np.testing.assert_array_equal(
        first_valid_trials(crops, boxes, np.array([0.0]), 'all'), [0])
    only_degenerate = boxes[2:]
    np.testing.assert_array_equal(
        first_valid_trials(crops, only_degenerate, np.array([0.0]), 'all'),
        [-1])


def test_all_boxes_rule_falls_back_where_caffe_crops():
    # The example below: with mmdet's rule no 0.7-IoU crop holds both boxes,
    # so only the whole image and the unconstrained sampler remain.
    boxes = np.array([[0, 0, 80, 80], [95, 95, 97, 97]], np.float32)
    transform = RandomIoUCrop(min_ious=(0.7, ), constraint='all')
    modes = set()
    for seed in range(50):
        np.random.seed(seed)
        modes.add(transform._sample_crop((100, 100), boxes).min_iou)
    assert modes == {None, 0.0}


def test_one_overlapping_box_suffices_caffe_rule():
    # A large box and a tiny far one: no 0.7-IoU crop can hold both (mmdet's
    # rule would always fall back), but Caffe's "at least one" finds crops.
    boxes = np.array([[0, 0, 80, 80], [95, 95, 97, 97]], np.float32)
    transform = RandomIoUCrop(min_ious=(0.7, ))
    found = 0
    for seed in range(50):
        np.random.seed(seed)
        choice = transform._sample_crop((100, 100), boxes)
        if choice.min_iou == 0.7:
            found += 1
            iou = box_iou(choice.crop[None], boxes)[0]
            assert iou[0] >= 0.7 and iou[1] < 0.7
    assert found > 10


def test_images_without_boxes_are_kept_whole():
    transform = RandomIoUCrop()
    for seed in range(20):
        np.random.seed(seed)
        img = np.zeros((30, 40, 3), np.uint8)
        out = transform(
            dict(
                img=img,
                img_shape=(30, 40),
                gt_bboxes=HorizontalBoxes(np.zeros((0, 4), np.float32)),
                gt_bboxes_labels=np.zeros(0, np.int64),
                gt_ignore_flags=np.zeros(0, bool)))
        assert out['img'].shape == (30, 40, 3) and len(out['gt_bboxes']) == 0
    np.random.seed(0)
    assert transform(dict(img=img))['img'].shape == (30, 40, 3
                                                     )  # no annotations


def test_crop_keeps_labels_flags_masks_and_paint_aligned():
    transform = RandomIoUCrop()
    crops_taken = 0
    for seed in range(60):
        np.random.seed(seed)
        results = painted_sample(
            h=120,
            w=160,
            boxes=((5, 5, 40, 50), (60, 20, 150, 110), (100, 0, 120, 15)),
            with_masks=True)
        out = transform(results)
        h, w = out['img'].shape[:2]
        crops_taken += (h, w) != (120, 160)
        assert out['img_shape'] == (h, w)
        n = len(out['gt_bboxes'])
        assert n >= 1 and len(out['gt_bboxes_labels']) == n == len(
            out['gt_masks'])
        np.testing.assert_array_equal(out['gt_ignore_flags'],
                                      out['gt_bboxes_labels'] % 2 == 1)
        boxes = out['gt_bboxes'].numpy()
        assert (boxes >= 0).all() and (boxes[:, [0, 2]]
                                       <= w).all() and (boxes[:, [1, 3]]
                                                        <= h).all()
        assert_boxes_hold_their_paint(out)
        mask_boxes = out['gt_masks'].get_bboxes(HorizontalBoxes).numpy()
        np.testing.assert_allclose(mask_boxes, boxes)
    assert crops_taken > 30


def test_whole_image_mode_drops_only_degenerate_and_outside_boxes():
    transform = RandomIoUCrop(
        min_ious=(),
        max_trials=1,
        scale_range=(1, 1),
        aspect_ratio_range=(1, 1))
    boxes = np.array(
        [[0, 0, 10, 10], [5, 5, 5, 9], [-30, 0, -5, 10], [30, 20, 50, 40]],
        np.float32)
    np.random.seed(0)
    out = transform(
        dict(
            img=np.zeros((30, 40, 3), np.uint8),
            img_shape=(30, 40),
            gt_bboxes=HorizontalBoxes(boxes),
            gt_bboxes_labels=np.arange(4)))
    np.testing.assert_array_equal(out['gt_bboxes_labels'], [0, 3])
    np.testing.assert_array_equal(out['gt_bboxes'].numpy(),
                                  [[0, 0, 10, 10], [30, 20, 40, 30]])


def test_crop_accepts_numpy_boxes_and_returns_numpy():
    np.random.seed(0)
    out = RandomIoUCrop()(
        dict(
            img=np.zeros((30, 40, 3), np.uint8),
            gt_bboxes=np.array([[1, 1, 20, 20]], np.float32)))
    assert isinstance(out['gt_bboxes'],
                      np.ndarray) and out['gt_bboxes'].shape == (1, 4)


@pytest.mark.parametrize('kwargs', [
    dict(min_ious=(1.2, )),
    dict(scale_range=(0, 1)),
    dict(scale_range=(0.5, 1.5)),
    dict(aspect_ratio_range=(2, 1)),
    dict(max_trials=0),
    dict(constraint='every')
])
def test_crop_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        RandomIoUCrop(**kwargs)


def test_registered_with_paper_defaults():
    crop = TRANSFORMS.build(dict(type='RandomIoUCrop'))
    assert (crop.min_ious, crop.scale_range, crop.aspect_ratio_range,
            crop.max_trials, crop.constraint) == ((0.1, 0.3, 0.5, 0.7, 0.9),
                                                  (0.3, 1.0), (0.5, 2.0), 50,
                                                  'any')
    zoom = TRANSFORMS.build(
        dict(type='RandomZoomOut', mean=MEAN, ratio_range=(1, 4), prob=0.5))
    assert isinstance(zoom, RandomZoomOut) and zoom.ratio_range == (1.0, 4.0)
    assert 'RandomIoUCrop' in repr(crop) and 'RandomZoomOut' in repr(zoom)


def test_crop_rejects_other_box_types_with_the_fix():
    with pytest.raises(TypeError, match="box_type='hbox'"):
        boxes_as_array(torch.zeros(1, 5))
    assert boxes_as_array(None).shape == (0, 4)


def test_polygon_masks_follow_zoom_out_and_crop():
    # mmdet's PolygonMasks.expand is not implemented: zoom-out translates.
    polys = PolygonMasks([[np.array([5, 5, 30, 5, 30, 30, 5, 30], float)],
                          [np.array([40, 10, 70, 10, 70, 50], float)]], 60, 80)
    for seed in range(20):
        np.random.seed(seed)
        results = painted_sample(boxes=((5, 5, 30, 30), (40, 10, 70, 50)))
        results['gt_masks'] = polys
        results = RandomZoomOut(prob=1.0)(results)
        mask_boxes = results['gt_masks'].get_bboxes(HorizontalBoxes).numpy()
        np.testing.assert_allclose(mask_boxes, results['gt_bboxes'].numpy())
        results = RandomIoUCrop()(results)
        masks = results['gt_masks']
        assert len(masks) == len(results['gt_bboxes'])
        assert (masks.height, masks.width) == results['img_shape']
