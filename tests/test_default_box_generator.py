"""DefaultBoxGenerator against numbers derived by hand from the paper/Caffe.

Expected sizes come from the Caffe release's scripts (ssd_pascal.py,
ssd_coco.py: ``min_dim * ratio / 100.``), expected boxes from the PriorBox
formulas written out here: centre ``((j + 0.5) * step_w, (i + 0.5) * step_h)``
and ``(w, h)`` in the order [min, sqrt(min*max), (min*sqrt(r), min/sqrt(r)),
(min/sqrt(r), min*sqrt(r)), ...].
"""
import math
import re

import pytest
import torch

from ssd_plugin.models.default_box_generator import (DefaultBoxGenerator,
                                                     caffe_scale_sizes,
                                                     default_box_shapes)
from ssd_plugin.registry import TASK_UTILS

RATIOS_300 = ((2, ), (2, 3), (2, 3), (2, 3), (2, ), (2, ))
RATIOS_512 = ((2, ), (2, 3), (2, 3), (2, 3), (2, 3), (2, ), (2, ))
MAPS_300 = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
MAPS_512 = [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
STRIDES_300 = (8, 16, 32, 64, 100, 300)
STRIDES_512 = (8, 16, 32, 64, 128, 256, 512)

# Caffe's sizes (ssd_pascal.py / ssd_coco.py), pixels.
VOC300 = ([30, 60, 111, 162, 213, 264], [60, 111, 162, 213, 264, 315])
COCO300 = ([21, 45, 99, 153, 207, 261], [45, 99, 153, 207, 261, 315])
COCO512 = ([20.48, 51.2, 133.12, 215.04, 296.96, 378.88, 460.8],
           [51.2, 133.12, 215.04, 296.96, 378.88, 460.8, 542.72])

SETTINGS = {
    'ssd300_voc': dict(input_size=300, ratios=RATIOS_300,
                       scale_range=(0.2, 0.9), strides=STRIDES_300),
    'ssd300_coco': dict(input_size=300, ratios=RATIOS_300,
                        scale_range=(0.15, 0.9), strides=STRIDES_300),
    'ssd512_coco': dict(input_size=512, ratios=RATIOS_512,
                        scale_range=(0.1, 0.9), first_level=(0.04, 0.1),
                        strides=STRIDES_512),
}
EXPECTED_SIZES = {'ssd300_voc': VOC300, 'ssd300_coco': COCO300,
                  'ssd512_coco': COCO512}
MAPS = {'ssd300_voc': MAPS_300, 'ssd300_coco': MAPS_300,
        'ssd512_coco': MAPS_512}


def box(cx, cy, w, h):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def cell_boxes(cx, cy, lo, hi, ratios):
    """Caffe PriorBox's boxes at one location, written out independently."""
    out = [box(cx, cy, lo, lo), box(cx, cy, math.sqrt(lo * hi),
                                    math.sqrt(lo * hi))]
    for r in ratios:
        out.append(box(cx, cy, lo * math.sqrt(r), lo / math.sqrt(r)))
        out.append(box(cx, cy, lo / math.sqrt(r), lo * math.sqrt(r)))
    return torch.tensor(out)


def build(name, **overrides):
    return DefaultBoxGenerator(**{**SETTINGS[name], **overrides})


@pytest.mark.parametrize('name', sorted(SETTINGS))
def test_scale_range_gives_caffe_sizes(name):
    gen = build(name)
    lows, highs = EXPECTED_SIZES[name]
    assert gen.min_sizes == pytest.approx(lows, abs=1e-9)
    assert gen.max_sizes == pytest.approx(highs, abs=1e-9)


@pytest.mark.parametrize('name,per_level,total', [
    ('ssd300_voc', [5776, 2166, 600, 150, 36, 4], 8732),
    ('ssd300_coco', [5776, 2166, 600, 150, 36, 4], 8732),
    ('ssd512_coco', [16384, 6144, 1536, 384, 96, 16, 4], 24564),
])
def test_box_counts(name, per_level, total):
    gen = build(name)
    boxes = gen.grid_priors(MAPS[name], device='cpu')
    assert [b.shape for b in boxes] == [(n, 4) for n in per_level]
    assert sum(len(b) for b in boxes) == total  # the paper's 8732 for 300
    assert gen.num_levels == len(per_level)
    assert gen.num_base_priors == [2 + 2 * len(r)
                                   for r in SETTINGS[name]['ratios']]


@pytest.mark.parametrize('name', sorted(SETTINGS))
def test_first_and_last_boxes_by_hand(name):
    gen = build(name)
    lows, highs = EXPECTED_SIZES[name]
    strides, ratios = SETTINGS[name]['strides'], SETTINGS[name]['ratios']
    boxes = gen.grid_priors(MAPS[name], dtype=torch.float64, device='cpu')
    # Cell (0, 0) of level 0, then cell (0, 1): centres (4, 4) and (12, 4).
    first = cell_boxes(4, 4, lows[0], highs[0], ratios[0])
    second = cell_boxes(12, 4, lows[0], highs[0], ratios[0])
    torch.testing.assert_close(boxes[0][:4], first.double())
    torch.testing.assert_close(boxes[0][4:8], second.double())
    # The single cell of the last level, centred at stride / 2.
    c = strides[-1] / 2
    last = cell_boxes(c, c, lows[-1], highs[-1], ratios[-1])
    torch.testing.assert_close(boxes[-1], last.double())


def test_middle_cell_row_major():
    """Level 1 (19x19, step 16), row i=2, column j=5 of SSD300 VOC."""
    gen = build('ssd300_voc')
    level1 = gen.single_level_grid_priors((19, 19), 1, torch.float64, 'cpu')
    start = (2 * 19 + 5) * 6
    expected = cell_boxes(5.5 * 16, 2.5 * 16, 60, 111, (2, 3))
    torch.testing.assert_close(level1[start:start + 6], expected.double())


def test_default_box_shapes_order():
    wh = default_box_shapes(30, 60, (2, 3))
    s2, s3 = math.sqrt(2), math.sqrt(3)
    expected = [(30, 30), (math.sqrt(1800), math.sqrt(1800)),
                (30 * s2, 30 / s2), (30 / s2, 30 * s2),
                (30 * s3, 30 / s3), (30 / s3, 30 * s3)]
    torch.testing.assert_close(wh, torch.tensor(expected, dtype=torch.float64))


def test_defaults_are_paper_and_caffe_ssd300_voc():
    gen = DefaultBoxGenerator()
    assert gen.min_sizes == pytest.approx(VOC300[0])
    assert gen.max_sizes == pytest.approx(VOC300[1])
    assert gen.num_base_priors == [4, 6, 6, 6, 4, 4]
    assert sum(b.shape[0] for b in gen.grid_priors(MAPS_300,
                                                   device='cpu')) == 8732


def test_caffe_scale_sizes_rule():
    # SSD512 VOC by hand: percents 7, 15, 30, ..., 90 (step (90 - 15) // 5
    # = 15), highs 15, 30, ..., 105; pixels = 5.12 * percent.
    lows, highs = caffe_scale_sizes(512, (0.15, 0.9), 7)
    assert lows == pytest.approx(
        [35.84, 76.8, 153.6, 230.4, 307.2, 384.0, 460.8])
    assert highs == pytest.approx(
        [76.8, 153.6, 230.4, 307.2, 384.0, 460.8, 537.6])
    # Float noise: Caffe means 29 percent for 0.29, not int(28.999...).
    assert caffe_scale_sizes(100, (0.29, 0.9), 3)[0][1] == pytest.approx(29)


def test_explicit_sizes_and_strides_none_rule():
    lows, highs = VOC300
    gen = DefaultBoxGenerator(300, RATIOS_300, min_sizes=lows,
                              max_sizes=highs)
    boxes = gen.grid_priors(MAPS_300, dtype=torch.float64, device='cpu')
    step = 300 / 38  # Caffe: step = img_size / layer_size without `step`.
    torch.testing.assert_close(
        boxes[0][:4], cell_boxes(0.5 * step, 0.5 * step, 30, 60, (2, )).double())
    j = 37  # Last cell of the first row.
    torch.testing.assert_close(
        boxes[0][j * 4:j * 4 + 4],
        cell_boxes((j + 0.5) * step, 0.5 * step, 30, 60, (2, )).double())
    # Where 300 / size is the Caffe step (3 -> 100, 1 -> 300) both agree.
    explicit = build('ssd300_voc').grid_priors(MAPS_300, torch.float64, 'cpu')
    for level in (4, 5):
        torch.testing.assert_close(boxes[level], explicit[level])


def test_non_square_input_takes_the_maps_given():
    maps = [(38, 63), (19, 32), (10, 16), (5, 8), (3, 4), (1, 2)]
    # 500 wide, 300 high: (w, h) as mmdet's Resize scale.
    gen = DefaultBoxGenerator((500, 300), RATIOS_300, scale_range=(0.2, 0.9))
    assert gen.min_sizes == pytest.approx(VOC300[0])  # min_dim = 300
    boxes = gen.grid_priors(maps, dtype=torch.float64, device='cpu')
    assert [len(b) for b in boxes] == [
        h * w * a for (h, w), a in zip(maps, [4, 6, 6, 6, 4, 4])]
    step_h, step_w = 300 / 38, 500 / 63
    torch.testing.assert_close(
        boxes[0][:4],
        cell_boxes(0.5 * step_w, 0.5 * step_h, 30, 60, (2, )).double())
    # Last level: 1 x 2 cells, steps (300, 250); its last box.
    last = cell_boxes(1.5 * 250, 150, 264, 315, (2, ))[-1]
    torch.testing.assert_close(boxes[-1][-1], last.double())


def test_unusual_size_and_input_shape_override():
    maps = [(33, 33), (17, 17), (9, 9), (5, 5), (3, 3), (1, 1)]
    gen = DefaultBoxGenerator(257, RATIOS_300, scale_range=(0.2, 0.9))
    total = sum(len(b) for b in gen.grid_priors(maps, device='cpu'))
    assert total == sum(h * w * a for (h, w), a in
                        zip(maps, [4, 6, 6, 6, 4, 4]))
    # Built for 300 but fed a 257 batch: steps follow the batch input.
    gen300 = DefaultBoxGenerator(300, RATIOS_300)
    boxes = gen300.grid_priors(maps, torch.float64, 'cpu',
                               input_shape=(257, 257))
    centre = 0.5 * 257 / 33
    torch.testing.assert_close(
        boxes[0][:4], cell_boxes(centre, centre, 30, 60, (2, )).double())


def test_rectangular_stride_is_w_h_as_mmdet():
    gen = DefaultBoxGenerator(300, ((2, ), (2, ), (2, )),
                              min_sizes=[10, 20, 30], max_sizes=[20, 30, 40],
                              strides=[(16, 8), 32, 64])
    assert gen.strides == [(16, 8), (32, 32), (64, 64)]
    boxes = gen.single_level_grid_priors((2, 3), 0, torch.float64, 'cpu')
    # Cell (1, 2): centre x = 2.5 * 16, y = 1.5 * 8.
    torch.testing.assert_close(
        boxes[-4:], cell_boxes(40, 12, 10, 20, (2, )).double())
    assert gen.level_step(0, (2, 3)) == (16, 8)


def test_strides_none_and_level_step_w_h():
    gen = DefaultBoxGenerator((500, 300), ((2, ), (2, ), (2, )),
                              min_sizes=[10, 20, 30], max_sizes=[20, 30, 40])
    assert gen.strides is None
    # (w, h) = (500 / 50, 300 / 20) for a 20 x 50 (H x W) map.
    assert gen.level_step(0, (20, 50)) == (10, 15)
    assert gen.level_step(0, (20, 50), input_shape=(100, 400)) == (8, 5)


def test_explicit_sizes_take_precedence_over_a_base_range():
    # A leaf config gives sizes over a base's scale_range/first_level.
    gen = DefaultBoxGenerator(300, RATIOS_300, min_sizes=VOC300[0],
                              max_sizes=VOC300[1], scale_range=(0.15, 0.9),
                              first_level=(0.04, 0.1),
                              basesize_ratio_range=None)
    assert gen.min_sizes == pytest.approx(VOC300[0])
    assert gen.max_sizes == pytest.approx(VOC300[1])


def test_empty_feature_map():
    gen = build('ssd300_voc', strides=None)
    maps = [(0, 0), (0, 19), (10, 0), (5, 5), (3, 3), (1, 1)]
    boxes = gen.grid_priors(maps, device='cpu')
    assert [len(b) for b in boxes] == [0, 0, 0, 150, 36, 4]
    flags = gen.valid_flags(maps, (300, 300), device='cpu')
    assert [len(f) for f in flags] == [0, 0, 0, 150, 36, 4]


def test_clip_and_box_type():
    gen = build('ssd300_voc', clip=True)
    boxes = torch.cat(gen.grid_priors(MAPS_300, device='cpu'))
    assert boxes.min() == 0 and boxes.max() == 300
    unclipped = torch.cat(build('ssd300_voc').grid_priors(MAPS_300,
                                                          device='cpu'))
    assert unclipped.min() < 0 and unclipped.max() > 300
    torch.testing.assert_close(boxes, unclipped.clamp(0, 300))
    typed = build('ssd300_voc', use_box_type=True).grid_priors(
        MAPS_300, device='cpu')
    torch.testing.assert_close(typed[2].tensor, unclipped[5776 + 2166:][:600])


def test_valid_flags():
    gen = build('ssd300_voc')
    flags = gen.valid_flags(MAPS_300, (300, 300, 3), device='cpu')
    assert all(f.dtype == torch.bool and f.all() for f in flags)
    # Image padded to 300 but only 150 x 300 (h x w) of it is real: level 0
    # (step 8) keeps rows i with 8 i < 150, i.e. 19 rows.
    flags = gen.valid_flags(MAPS_300, (150, 300), device='cpu')
    grid = flags[0].view(38, 38, 4)
    assert grid[:19].all() and not grid[19:].any()
    # Strides None: step 300 / 38, so 150 px holds exactly 19 rows.
    flags = build('ssd300_voc', strides=None).valid_flags(
        MAPS_300, (150, 300), device='cpu')
    assert int(flags[0].sum()) == 19 * 38 * 4


@pytest.mark.parametrize('strides', [STRIDES_300, None])
def test_sparse_priors_match_grid(strides):
    gen = build('ssd300_voc', strides=strides)
    grid = gen.single_level_grid_priors((19, 19), 1, device='cpu')
    idxs = torch.tensor([0, 5, 6, 113, 19 * 19 * 6 - 1])
    torch.testing.assert_close(
        gen.sparse_priors(idxs, (19, 19), 1, device='cpu'), grid[idxs])


def test_builds_from_registries():
    import mmdet.registry as mmdet_registry
    gen = TASK_UTILS.build(dict(type='DefaultBoxGenerator', input_size=300,
                                scale_range=(0.15, 0.9),
                                strides=list(STRIDES_300)))
    assert isinstance(gen, DefaultBoxGenerator)
    assert gen.min_sizes == pytest.approx(COCO300[0])
    from_mmdet = mmdet_registry.TASK_UTILS.build(
        dict(type='ssd_plugin.DefaultBoxGenerator'))
    assert isinstance(from_mmdet, DefaultBoxGenerator)


def _mmdet_generator(**kwargs):
    prior_generators = pytest.importorskip(
        'mmdet.models.task_modules.prior_generators')
    return prior_generators.SSDAnchorGenerator(scale_major=False, **kwargs)


@pytest.mark.parametrize('name,mmdet_kwargs', [
    ('ssd300_voc', dict(input_size=300, basesize_ratio_range=(0.2, 0.9))),
    ('ssd300_coco', dict(input_size=300, basesize_ratio_range=(0.15, 0.9))),
    # mmdet truncates SSD512 sizes to integers (51 for Caffe's 51.2), so
    # it is compared with Caffe's float sizes given explicitly.
    ('ssd512_coco', dict(min_sizes=COCO512[0], max_sizes=COCO512[1])),
])
def test_equal_to_mmdet_ssd_anchor_generator(name, mmdet_kwargs):
    cfg = SETTINGS[name]
    theirs = _mmdet_generator(strides=list(cfg['strides']),
                              ratios=[list(r) for r in cfg['ratios']],
                              **mmdet_kwargs)
    ours = build(name)
    assert ours.num_base_priors == theirs.num_base_priors
    for a, b in zip(ours.grid_priors(MAPS[name], device='cpu'),
                    theirs.grid_priors(MAPS[name], device='cpu')):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_equal_to_mmdet_with_mmdet_integer_sizes():
    theirs = _mmdet_generator(strides=list(STRIDES_512),
                              ratios=[list(r) for r in RATIOS_512],
                              input_size=512, basesize_ratio_range=(0.1, 0.9))
    ours = DefaultBoxGenerator(512, RATIOS_512, strides=STRIDES_512,
                               min_sizes=[int(s) for s in COCO512[0]],
                               max_sizes=[int(s) for s in COCO512[1]])
    for a, b in zip(ours.grid_priors(MAPS_512, device='cpu'),
                    theirs.grid_priors(MAPS_512, device='cpu')):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


# mmdet's own SSD configs (shipped in its package) and their feature maps.
MMDET_SSD_CONFIGS = {'ssd/ssd300_coco.py': MAPS_300,
                     'ssd/ssd512_coco.py': MAPS_512,
                     'pascal_voc/ssd300_voc0712.py': MAPS_300,
                     'pascal_voc/ssd512_voc0712.py': MAPS_512}


def _mmdet_anchor_cfg(path):
    import os.path as osp

    import mmdet
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(osp.dirname(mmdet.__file__), '.mim',
                                   'configs', path))
    return cfg.model.bbox_head.anchor_generator.to_dict()


@pytest.mark.parametrize('path', sorted(MMDET_SSD_CONFIGS))
def test_mmdet_ssd_configs_migrate_by_changing_the_type(path):
    import mmdet.registry as mmdet_registry
    anchor_cfg = _mmdet_anchor_cfg(path)
    theirs = mmdet_registry.TASK_UTILS.build(anchor_cfg)
    ours = TASK_UTILS.build(dict(anchor_cfg, type='DefaultBoxGenerator'))
    maps = MMDET_SSD_CONFIGS[path]
    assert ours.strides == [tuple(map(float, s)) for s in theirs.strides]
    assert ours.num_base_priors == theirs.num_base_priors
    diffs = [(a - b).abs().max().item() for a, b in zip(
        ours.grid_priors(maps, device='cpu'),
        theirs.grid_priors(maps, device='cpu'))]
    if anchor_cfg['input_size'] == 300:  # Caffe's sizes are whole pixels
        assert max(diffs) < 1e-4
    else:  # mmdet truncates 51.2 to 51 etc.: under a pixel, never zero
        assert 0.01 < max(diffs) < 1
        truncated = DefaultBoxGenerator(
            512, anchor_cfg['ratios'], strides=anchor_cfg['strides'],
            min_sizes=[int(v) for v in ours.min_sizes],
            max_sizes=[int(v) for v in ours.max_sizes])
        for a, b in zip(truncated.grid_priors(maps, device='cpu'),
                        theirs.grid_priors(maps, device='cpu')):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


@pytest.mark.parametrize('kwargs,message', [
    (dict(ratios=RATIOS_300[:5], min_sizes=VOC300[0], max_sizes=VOC300[1]),
     'disagree'),
    (dict(min_sizes=VOC300[0], max_sizes=VOC300[1][:5]), 'disagree'),
    (dict(strides=STRIDES_300[:5]), 'strides'),
    (dict(ratios=()), 'empty'),
    (dict(min_sizes=VOC300[1], max_sizes=VOC300[0]), 'min_size'),
    (dict(min_sizes=[0] * 6, max_sizes=VOC300[1]), 'min_size'),
    (dict(min_sizes=VOC300[0]), 'max_sizes'),
    (dict(scale_range=(0.2, 0.9), basesize_ratio_range=(0.2, 0.9)),
     'basesize_ratio_range'),
    (dict(scale_major=True), 'scale_major=False'),
    (dict(min_sizes=[[30, 40]] + [60] * 5, max_sizes=[60] * 6),
     "mmdet's SSDAnchorGenerator"),
    (dict(min_sizes=VOC300[0], max_sizes=None), "mmdet's max_sizes=None"),
    (dict(scale_range=(0.9, 0.2)), 'scale_range'),
    (dict(scale_range=(0.2, 0.9), ratios=((2, ), (2, ))), '3 levels'),
    (dict(scale_range=(0.2, 0.22)), 'narrower'),
    (dict(first_level=(0.2, 0.1)), 'first_level'),
    (dict(ratios=((2, ), (1, 2), (2, ), (2, ), (2, ), (2, ))), 'holds 1'),
    (dict(ratios=((2, ), (0, ), (2, ), (2, ), (2, ), (2, ))), 'positive'),
    (dict(ratios=((2, ), (-2, ), (2, ), (2, ), (2, ), (2, ))), 'positive'),
    (dict(ratios=(2, 3, 2, 2, 2, 2)), 'ratios[0]'),
    (dict(offset=1.5), 'offset'),
    (dict(input_size=0), 'input_size'),
    (dict(input_size=(300, )), 'input_size'),
    (dict(strides=(8, 16, 32, 64, 100, -1)), 'strides[5]'),
])
def test_invalid_configs_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        DefaultBoxGenerator(**kwargs)


def test_wrong_number_of_feature_maps():
    gen = build('ssd300_voc')
    with pytest.raises(ValueError, match='6 levels'):
        gen.grid_priors(MAPS_300[:5], device='cpu')
    with pytest.raises(ValueError, match='6 levels'):
        gen.valid_flags(MAPS_300 + [(1, 1)], (300, 300), device='cpu')
