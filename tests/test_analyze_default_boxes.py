"""Default-box coverage (ssd_plugin.analysis.default_boxes, .coverage) and
its tool.

Expected numbers are counted by hand on hand-written boxes; the tool runs
end to end on the session's tiny shapes set through the quickstart config.
"""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from ssd_plugin.analysis import coverage
from ssd_plugin.analysis.default_boxes import (best_iou, coverage_report,
                                               data_ratios,
                                               fit_default_boxes,
                                               match_stats, recall,
                                               size_buckets, size_grid)
from ssd_plugin.models.default_box_generator import DefaultBoxGenerator

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# Two levels of hand-written default boxes (x1, y1, x2, y2).
LEVELS = [torch.tensor([[0., 0., 10., 10.]]),
          torch.tensor([[20., 20., 40., 40.], [50., 50., 60., 60.]])]
# IoU with the best default box, by hand: 1, 50/100, 40/100, 200/400, 0.
GT = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 5.], [0., 0., 10., 4.],
                   [20., 20., 40., 30.], [100., 100., 110., 110.]])
LABELS = [0, 0, 1, 1, 1]


@pytest.fixture
def tool(monkeypatch):
    """The tool module, imported from tools/analysis_tools."""
    monkeypatch.syspath_prepend(osp.join(ROOT, 'tools', 'analysis_tools'))
    import analyze_default_boxes
    return analyze_default_boxes


def test_a_ground_truth_equal_to_a_default_box_has_best_iou_one():
    generator = DefaultBoxGenerator(input_size=64, ratios=((2, ), ),
                                    min_sizes=(16, ), max_sizes=(32, ))
    priors = generator.grid_priors([(2, 2)], device='cpu')[0]
    assert best_iou(priors[5:6], priors).item() == pytest.approx(1, abs=1e-6)


def test_best_iou_of_nothing_and_against_nothing():
    assert best_iou(torch.zeros(0, 4), LEVELS[0]).shape == (0, )
    assert best_iou(GT, torch.zeros(0, 4)).tolist() == [0.] * 5
    with pytest.raises(ValueError, match=r'\(G, 4\)'):
        best_iou(torch.zeros(3), LEVELS[0])


def test_recall_on_a_hand_built_set_equals_the_hand_count():
    report = coverage_report(GT, LABELS, [f'im{i}.jpg' for i in range(5)],
                             LEVELS, [(1, 1), (1, 2)], 0.5, ('a', 'b'))
    assert report['num_gt'] == 5
    assert report['recall'] == pytest.approx(3 / 5)  # IoU 1, 0.5, 0.5
    assert report['recall_per_class'] == {
        'a': dict(num_gt=2, recall=1.0),
        'b': dict(num_gt=3, recall=pytest.approx(1 / 3))}
    # Areas 100, 50, 40, 200, 100: all small; the empty buckets are listed.
    assert report['recall_per_size'] == {
        'small': dict(num_gt=5, recall=pytest.approx(3 / 5)),
        'medium': dict(num_gt=0, recall=None),
        'large': dict(num_gt=0, recall=None)}
    level0, level1 = report['recall_per_level'].values()
    assert (level0['recall'], level1['recall']) == (
        pytest.approx(2 / 5), pytest.approx(1 / 5))
    assert (level0['matched_pairs'], level1['matched_pairs']) == (2, 1)
    assert (level0['unmatched_priors'], level1['unmatched_priors']) == (0, 1)
    assert [g['num_pos'] for g in report['per_gt']] == [1, 1, 0, 1, 0]
    assert [g['best_level'] for g in report['per_gt']][:2] == [0, 0]


def test_ground_truth_no_default_box_reaches_is_listed():
    report = coverage_report(GT, LABELS, [f'im{i}.jpg' for i in range(5)],
                             LEVELS, [(1, 1), (1, 2)], 0.5, ('a', 'b'))
    assert report['unreachable'] == [
        dict(image='im2.jpg', box=[0., 0., 10., 4.], label='b',
             best_iou=0.4),
        dict(image='im4.jpg', box=[100., 100., 110., 110.], label='b',
             best_iou=0.)]


def test_match_stats_per_level_equal_the_hand_count():
    stats = match_stats(GT, LEVELS + [torch.zeros(0, 4)], 0.5)
    # Level 0 holds the 10x10 box, level 1 the 20x20 one; level 2 is empty.
    torch.testing.assert_close(stats['best_per_level'], torch.tensor(
        [[1., 0., 0.], [.5, 0., 0.], [.4, 0., 0.], [0., .5, 0.],
         [0., 0., 0.]]))
    assert stats['num_pos'].tolist() == [[1, 0, 0], [1, 0, 0], [0, 0, 0],
                                         [0, 1, 0], [0, 0, 0]]
    assert [h.tolist() for h in stats['prior_hit']] == [[True], [True, False],
                                                        []]
    empty = match_stats(torch.zeros(0, 4), LEVELS, 0.5)
    assert empty['best_per_level'].shape == empty['num_pos'].shape == (0, 2)


def test_an_empty_set_has_no_recall():
    report = coverage_report(torch.zeros(0, 4), [], [], LEVELS,
                             [(1, 1), (1, 2)], 0.5, ('a', ))
    assert (report['num_gt'], report['recall'], report['unreachable']) == (
        0, None, [])
    assert report['recall_per_class'] == {'a': dict(num_gt=0, recall=None)}
    assert recall(torch.zeros(0), 0.5) is None
    with pytest.raises(ValueError, match='one of each per box'):
        coverage_report(GT, [0], ['x'] * 5, LEVELS, [(1, 1), (1, 2)], 0.5,
                        ('a', 'b'))


def test_size_buckets_are_cocos_at_the_input():
    boxes = torch.tensor([[0., 0., 31., 31.], [0., 0., 33., 33.],
                          [0., 0., 97., 97.]])
    assert size_buckets(boxes) == ['small', 'medium', 'large']


def test_data_ratios_follow_the_folded_aspects():
    wide_and_tall = torch.tensor([[0., 0., 20., 10.], [0., 0., 10., 20.]])
    assert data_ratios(wide_and_tall, 1) == (2.0, )
    assert data_ratios(wide_and_tall, 0) == ()
    squares = torch.tensor([[0., 0., 10., 10.]])
    assert data_ratios(squares, 2) == (1.1, 1.1)  # never the square's 1


def _one_level(step: float = 8., size: int = 32):
    """priors_fn of a one-level generator on a 4x4 map of a 32 input."""
    def priors_fn(level, min_size, max_size, ratios):
        generator = DefaultBoxGenerator(
            input_size=size, ratios=(ratios, ), min_sizes=(min_size, ),
            max_sizes=(max_size, ))
        return generator.single_level_grid_priors((4, 4), 0, device='cpu')
    return priors_fn


def test_fit_reaches_small_objects_the_start_misses():
    # 6x6 objects at cell centres (step 8, centre 4 + 8k): the 24 px start
    # reaches IoU 36/576; a ~6 px box reaches them.
    centres = torch.tensor([[4., 4.], [12., 20.], [28., 12.]])
    gt = torch.cat([centres - 3, centres + 3], 1)
    priors_fn = _one_level()
    start = best_iou(gt, priors_fn(0, 24., 30., (2., )))
    assert recall(start, 0.5) == 0.0
    mins, maxs, ratios = fit_default_boxes(gt, priors_fn, [24.], [30.],
                                           [(2., )], 0.5, 32)
    assert recall(best_iou(gt, priors_fn(0, mins[0], maxs[0], ratios[0])),
                  0.5) == 1.0
    assert len(ratios[0]) == 1 and mins[0] < maxs[0]
    assert min(abs(s - 6) for s in size_grid(gt, 32)) < 0.5


def test_fit_never_lowers_recall_and_needs_ground_truth():
    gt = torch.tensor([[0., 0., 8., 8.]])  # exactly the start's box at (4, 4)
    priors_fn = _one_level()
    mins, maxs, ratios = fit_default_boxes(gt, priors_fn, [8.], [12.],
                                           [(2., )], 0.5, 32)
    assert recall(best_iou(gt, priors_fn(0, mins[0], maxs[0], ratios[0])),
                  0.5) == 1.0
    with pytest.raises(ValueError, match='no ground truth'):
        fit_default_boxes(torch.zeros(0, 4), priors_fn, [8.], [12.],
                          [(2., )], 0.5, 32)


def test_tool_reports_fits_and_writes_a_leaf_config(quickstart_leaf, tool,
                                                    shapes_root,
                                                    tmp_path, capsys):
    config = quickstart_leaf(tmp_path, shapes_root)
    fitted = str(tmp_path / 'fitted.py')
    out = str(tmp_path / 'report.json')
    assert tool.main([config, '--out', str(tmp_path), '--json', out,
                      '--fit', '--fit-config', fitted]) == 0
    with open(out) as f:
        report = json.load(f)
    with open(osp.join(shapes_root, 'annotations',
                       'instances_train.json')) as f:
        num_boxes = len(json.load(f)['annotations'])
    assert report['num_gt'] == num_boxes
    assert report['input_shape'] == [128, 128]
    assert {'recall', 'recall_per_size', 'recall_per_level',
            'recall_per_class', 'unreachable'} <= set(report)
    # Quickstart: ResNet-18 strides 8, 16 and three stride-2 extra layers.
    assert [v['featmap'] for v in report['recall_per_level'].values()] == [
        [16, 16], [8, 8], [4, 4], [2, 2], [1, 1]]
    fit = report['fit']
    assert fit['recall_after'] >= fit['recall_before'] == report['recall']
    for name in ('shapes', 'best_iou', 'matches_per_level',
                 'shapes_fitted'):
        assert osp.getsize(tmp_path / f'{name}.png') > 0
    cfg = Config.fromfile(fitted)
    boxes = cfg.model.bbox_head.prior_generator
    assert list(boxes.min_sizes) == fit['min_sizes']
    assert [len(r) for r in boxes.ratios] == [1, 2, 2, 1, 1]  # as the base
    assert cfg.model.bbox_head.num_classes == 4  # the rest is inherited
    assert 'recall at IoU >= 0.5' in capsys.readouterr().out


def test_tool_errors_name_the_value(tool, quickstart_leaf, shapes_root,
                                    tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.py'):
        tool.main(['nope.py'])
    with pytest.raises(ValueError, match='the val split has no images'):
        tool.main([quickstart_leaf(tmp_path, shapes_root), '--split', 'val',
                   '--cfg-options', 'val_dataloader.dataset.indices=0',
                   'val_dataloader.dataset.serialize_data=False'])
    with pytest.raises(ValueError, match='LoadAnnotations'):
        coverage.analysis_pipeline([dict(type='LoadImageFromFile')])
    steps = coverage.analysis_pipeline([
        dict(type='LoadImageFromFile'), dict(type='Resize', scale=(8, 8)),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='PackDetInputs')])
    assert [s['type'] for s in steps] == ['LoadImageFromFile',
                                          'LoadAnnotations', 'Resize']
    cfg = Config(dict(model=dict(train_cfg=dict(assigner=dict()))))
    with pytest.raises(ValueError, match='pos_iou_thr'):
        coverage.pos_iou_thr(cfg)


def test_make_shapes_draws_objects_in_the_scale_range(tmp_path):
    from ssd_plugin.testing.shapes import make_shapes
    paths = make_shapes(str(tmp_path), num_train=6, num_val=0, img_size=128,
                        seed=0, progress=False, scale_range=(0.04, 0.1))
    with open(paths['coco_train']) as f:
        sides = [max(a['bbox'][2:]) for a in json.load(f)['annotations']]
    # Diameter at most 12.8 px (at least 6); a tight box of a drawn shape
    # spans at most the diameter plus a pixel of rasterisation.
    assert sides and max(sides) <= 14
    with pytest.raises(ValueError, match='scale_range'):
        make_shapes(str(tmp_path), num_train=1, num_val=0,
                    scale_range=(0.2, 0.1), progress=False)
