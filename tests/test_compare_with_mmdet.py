"""compare_with_mmdet (ssd_plugin.analysis.mmdet_comparison): the mmdet
counterpart of a config is mmdet's SSD.

Its default boxes are checked against ours box for box (mmdet's
``SSDAnchorGenerator`` is an independent implementation), its modules and
transforms against mmdet's classes and our settings.
"""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from ssd_plugin.analysis import mmdet_comparison
from ssd_plugin.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
QUICKSTART = osp.join(ROOT, 'configs', 'quickstart', 'ssd_shapes.py')


def sorted_rows(boxes) -> np.ndarray:
    boxes = getattr(boxes, 'tensor', boxes).numpy()
    return boxes[np.lexsort(boxes.T[::-1])]


@pytest.fixture(scope='module')
def configs():
    cfg = Config.fromfile(QUICKSTART)
    return cfg, mmdet_comparison.mmdet_variant(cfg)


def test_mmdet_counterpart_has_our_default_boxes(configs):
    cfg, mmdet_cfg = configs
    init_default_scope('ssd_plugin')
    ours, theirs = MODELS.build(cfg.model), MODELS.build(mmdet_cfg.model)
    assert type(theirs.neck).__module__.startswith('mmdet.')
    assert type(theirs.bbox_head).__module__.startswith('mmdet.')
    with torch.no_grad():
        feats = ours.extract_feat(torch.zeros(1, 3, 128, 128))
        their_feats = theirs.extract_feat(torch.zeros(1, 3, 128, 128))
    sizes = [f.shape[-2:] for f in feats]
    assert sizes == [f.shape[-2:] for f in their_feats]
    mine = ours.bbox_head.prior_generator.grid_priors(sizes, device='cpu')
    mmdet_boxes = theirs.bbox_head.prior_generator.grid_priors(
        sizes, device='cpu')
    for level, (a, b) in enumerate(zip(mine, mmdet_boxes)):
        np.testing.assert_allclose(sorted_rows(a), sorted_rows(b),
                                   atol=1e-4, err_msg=f'level {level}')
    assert theirs.bbox_head.train_cfg['neg_pos_ratio'] == 3


def test_mmdet_counterpart_uses_mmdet_augmentation_with_our_settings(
        configs):
    cfg, mmdet_cfg = configs
    ours = cfg.train_dataloader.dataset.pipeline
    theirs = mmdet_cfg.train_dataloader.dataset.pipeline
    assert len(ours) == len(theirs)
    mapped = {s['type']: s for s in theirs if s['type'].startswith('mmdet.')}
    assert set(mapped) == {'mmdet.PhotoMetricDistortion', 'mmdet.Expand',
                           'mmdet.MinIoURandomCrop'}
    assert mapped['mmdet.Expand']['ratio_range'] == (1.0, 2.0)  # quickstart
    assert mapped['mmdet.MinIoURandomCrop']['min_ious'] == (0.1, 0.3, 0.5,
                                                            0.7, 0.9)
    assert mapped['mmdet.MinIoURandomCrop']['min_crop_size'] == 0.3
    assert mapped['mmdet.PhotoMetricDistortion']['hue_delta'] == 18
    # The rest of the pipeline is untouched.
    for a, b in zip(ours, theirs):
        if not b['type'].startswith('mmdet.'):
            assert a == b


def test_a_neck_mmdet_cannot_express_is_refused():
    cfg = Config.fromfile(QUICKSTART)
    cfg.model.neck.bottleneck_channels = (32, 64, 64)
    with pytest.raises(ValueError, match='bottleneck_channels'):
        mmdet_comparison.mmdet_variant(cfg)


def test_cross_variants_swap_the_model_or_the_augmentation(configs):
    cfg = configs[0]
    tool = mmdet_comparison
    # Fresh: building a detector writes train/test_cfg into its head's cfg.
    mmdet_cfg = tool.mmdet_variant(cfg)
    ours_aug = tool.variant_config(cfg, 'ours+mmdet_aug')
    assert ours_aug.model == cfg.model
    assert ours_aug.train_dataloader == mmdet_cfg.train_dataloader
    mmdet_model = tool.variant_config(cfg, 'mmdet+ours_aug')
    assert mmdet_model.model == mmdet_cfg.model
    assert mmdet_model.train_dataloader == cfg.train_dataloader
    assert mmdet_model.model.bbox_head.type == 'mmdet.SSDHead'


@pytest.mark.parametrize('variant, ours_type, mmdet_type', [
    ('ours+photometric', 'RandomPhotometricDistort',
     'mmdet.PhotoMetricDistortion'),
    ('ours+expand', 'RandomZoomOut', 'mmdet.Expand'),
    ('ours+crop', 'RandomIoUCrop', 'mmdet.MinIoURandomCrop')])
def test_one_change_variants_swap_exactly_one_transform(
        configs, variant, ours_type, mmdet_type):
    cfg, mmdet_cfg = configs
    swapped = mmdet_comparison.variant_config(cfg, variant)
    assert swapped.model == cfg.model  # our neck, head, boxes and loss
    ours = cfg.train_dataloader.dataset.pipeline
    theirs = swapped.train_dataloader.dataset.pipeline
    changed = [(a['type'], b) for a, b in zip(ours, theirs) if a != b]
    assert len(ours) == len(theirs) and len(changed) == 1
    # The same mmdet step, with the same settings, as in the mmdet variant.
    assert changed[0][0] == ours_type
    assert changed[0][1] == next(
        s for s in mmdet_cfg.train_dataloader.dataset.pipeline
        if s['type'] == mmdet_type)
    same = mmdet_comparison.variant_config(cfg, 'ours')
    assert same.model == cfg.model
    assert same.train_dataloader == cfg.train_dataloader


def test_crop_statistics_of_crops_that_keep_the_whole_image(
        shapes_root, quickstart_leaf, tmp_path):
    """Crops of scale 1 (ours: scale_range (1, 1), mmdet's: min_crop_size
    1) and no zoom-out or flip return every image whole with all its boxes;
    both variants then train on the same boxes, so the loss sees the same
    positives, at least one default box per ground truth (section 2.2)."""
    cfg = Config.fromfile(quickstart_leaf(tmp_path, shapes_root))
    steps = cfg.train_dataloader.dataset.pipeline
    steps[3].prob = 0.0  # zoom-out
    steps[4].scale_range = (1.0, 1.0)
    steps[6].prob = 0.0  # flip
    stats = mmdet_comparison.crop_statistics(cfg, 16)
    with open(osp.join(shapes_root, 'annotations',
                       'instances_train.json')) as f:
        boxes_per_image = len(json.load(f)['annotations']) / 8
    for variant in ('ours', 'mmdet'):
        assert stats[variant]['whole'] == 1.0
        assert stats[variant]['area'] == 1.0
        assert stats[variant]['kept'] == 1.0
        assert stats[variant]['pos'] >= boxes_per_image
    assert stats['ours']['pos'] == stats['mmdet']['pos']
    assert stats['ours']['side'] == pytest.approx(stats['mmdet']['side'])
