"""Property-based tests of the SSD augmentation chain, in any order.

Hypothesis draws the image size (1 x 1 up, extreme aspect ratios included),
grey or colour content, and 0-6 boxes of five kinds (inside, touching the
borders, the whole image, zero width, zero height), with or without masks.
After every transform of the chain, mmdet's Resize/RandomFlip included,
the sample must be consistent: image shape equals ``img_shape``, boxes lie
in the image and are finite, boxes/labels/flags/masks have one length.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.registry import init_default_scope

from ssd_plugin.registry import TRANSFORMS

MEAN = (103.53, 116.28, 123.675)
SSD = [
    dict(type='RandomPhotometricDistort'),
    dict(type='RandomZoomOut', mean=MEAN, ratio_range=(1, 4), prob=0.5),
    dict(type='RandomIoUCrop')
]
TAIL = [
    dict(type='Resize', scale=(300, 300), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5)
]
ORDERS = {
    'paper': SSD + TAIL,
    'zoom_last': [SSD[0], SSD[2], SSD[1]],
    'zoom_then_resize': [SSD[1]] + TAIL + [SSD[0]],
    'crop_first': [SSD[2], SSD[0], SSD[1]] + TAIL,
    # A flipped image is a negative-stride view.
    'flip_first': [dict(TAIL[1], prob=1.0), SSD[1], SSD[0], SSD[2]],
}
BOX_KINDS = ('inside', 'border', 'whole', 'zero_w', 'zero_h')


def make_box(kind: str, h: int, w: int, rng: np.random.Generator) -> list:
    x1, x2 = np.sort(rng.uniform(0, w, 2))
    y1, y2 = np.sort(rng.uniform(0, h, 2))
    if kind == 'border':
        x1, y2 = 0.0, float(h)
    elif kind == 'whole':
        x1, y1, x2, y2 = 0.0, 0.0, float(w), float(h)
    elif kind == 'zero_w':
        x2 = x1
    elif kind == 'zero_h':
        y2 = y1
    return [x1, y1, x2, y2]


@st.composite
def samples(draw) -> dict:
    shape = draw(st.sampled_from(['small', 'wide', 'tall', 'photo']))
    h, w = {
        'small': (draw(st.integers(1, 40)), draw(st.integers(1, 40))),
        'wide': (1, draw(st.integers(50, 400))),
        'tall': (draw(st.integers(50, 400)), 2),
        'photo': (draw(st.integers(100, 200)), draw(st.integers(100, 200)))
    }[shape]
    kinds = draw(st.lists(st.sampled_from(BOX_KINDS), max_size=6))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if draw(st.booleans()):  # a grey image loaded as colour
        img = np.repeat(img[..., :1], 3, axis=2)
    boxes = np.array([make_box(k, h, w, rng) for k in kinds],
                     np.float32).reshape(-1, 4)
    results = dict(
        img=img,
        img_shape=(h, w),
        ori_shape=(h, w),
        gt_bboxes=HorizontalBoxes(boxes),
        gt_bboxes_labels=np.arange(len(boxes), dtype=np.int64),
        gt_ignore_flags=rng.random(len(boxes)) < 0.3)
    if draw(st.booleans()):
        results['gt_masks'] = BitmapMasks(
            rng.integers(0, 2, (len(boxes), h, w), dtype=np.uint8), h, w)
    results['seed'] = int(rng.integers(2**31))
    return results


def assert_consistent(results: dict, step: str) -> None:
    img = results['img']
    h, w = img.shape[:2]
    assert tuple(results['img_shape']) == (h, w), step
    assert img.ndim == 3 and img.shape[2] == 3 and h >= 1 and w >= 1, step
    boxes = results['gt_bboxes'].numpy()
    assert np.isfinite(boxes).all(), step
    tol = 1e-3 * max(h, w)
    assert (boxes >= -tol).all(), step
    assert (boxes[:, [0, 2]] <= w + tol).all() and (boxes[:, [1, 3]]
                                                    <= h + tol).all(), step
    n = len(boxes)
    assert len(results['gt_bboxes_labels']) == n == len(
        results['gt_ignore_flags']), step
    if 'gt_masks' in results:
        masks = results['gt_masks']
        assert len(masks) == n and (masks.height, masks.width) == (h, w), step


def run_checked(pipeline_cfg: list, results: dict) -> dict:
    init_default_scope('ssd_plugin')
    np.random.seed(results.pop('seed'))
    for cfg in pipeline_cfg:
        results = TRANSFORMS.build(cfg)(results)
        if cfg['type'] != 'PackDetInputs':
            assert_consistent(results, cfg['type'])
    return results


@settings(max_examples=60, deadline=None, derandomize=True)
@given(results=samples())
def test_paper_pipeline_keeps_samples_consistent(results):
    labels_before = set(results['gt_bboxes_labels'].tolist())
    flags_before = dict(
        zip(results['gt_bboxes_labels'].tolist(),
            results['gt_ignore_flags'].tolist()))
    out = run_checked(ORDERS['paper'], results)
    assert out['img'].shape == (300, 300, 3) and out['img'].dtype == np.uint8
    labels = out['gt_bboxes_labels'].tolist()
    assert set(labels) <= labels_before and len(set(labels)) == len(labels)
    assert [flags_before[i] for i in labels] == out['gt_ignore_flags'].tolist()


@pytest.mark.parametrize(
    'order', ['zoom_last', 'zoom_then_resize', 'crop_first', 'flip_first'])
@settings(max_examples=25, deadline=None, derandomize=True)
@given(results=samples())
def test_any_order_keeps_samples_consistent(order, results):
    run_checked(ORDERS[order], results)


@pytest.mark.parametrize(
    'transform', SSD + [dict(type='RandomIoUCrop', constraint='all')],
    ids=lambda cfg: cfg['type'] + cfg.get('constraint', ''))
@settings(max_examples=25, deadline=None, derandomize=True)
@given(results=samples())
def test_each_transform_alone_keeps_samples_consistent(transform, results):
    cfg = dict(
        transform,
        prob=1.0) if transform['type'] == 'RandomZoomOut' else transform
    run_checked([cfg], results)


def test_pack_det_inputs_after_the_chain():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    results = dict(
        img=img,
        img_shape=(200, 300),
        ori_shape=(200, 300),
        img_id=0,
        img_path='x.jpg',
        scale_factor=(1.0, 1.0),
        gt_bboxes=HorizontalBoxes(np.array([[10, 20, 150, 180]], np.float32)),
        gt_bboxes_labels=np.array([3]),
        gt_ignore_flags=np.array([False]),
        seed=0)
    out = run_checked(ORDERS['paper'] + [dict(type='PackDetInputs')],
                      dict(results))
    assert tuple(out['inputs'].shape) == (3, 300, 300)
    assert out['data_samples'].gt_instances.labels.tolist() == [3]


@pytest.mark.parametrize('cfg', SSD, ids=lambda cfg: cfg['type'])
def test_no_per_sample_state_is_stored_on_the_transform(cfg):
    init_default_scope('ssd_plugin')
    transform = TRANSFORMS.build(dict(cfg, prob=1.0) if 'prob' in cfg else cfg)
    before = {k: repr(v) for k, v in vars(transform).items()}
    np.random.seed(0)
    for _ in range(5):
        transform(dict(img=np.zeros((40, 50, 3), np.uint8), img_shape=(40, 50),
                       gt_bboxes=HorizontalBoxes(np.array([[5., 5., 30., 30.]])),
                       gt_bboxes_labels=np.array([1]),
                       gt_ignore_flags=np.array([False])))
    assert {k: repr(v) for k, v in vars(transform).items()} == before
