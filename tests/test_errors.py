"""Clear errors, nothing lost (issue 5): each message is checked, not only
that something raised.

Unit level here (datasets built directly, hooks driven by mmengine's real
``Runner`` on a toy model); the same errors through ``tools/train.py`` and
``mim train mmdet`` on the SSD configs are in ``test_tools.py``.
"""
import math
import os.path as osp
import re
import shutil
import warnings
from typing import Dict, List

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from ssd_plugin.datasets import CheckedCocoDataset, CheckedVOCDataset
from ssd_plugin.testing.shapes import SHAPE_CLASSES
from ssd_plugin.engine.finite_loss_check_hook import (FiniteLossCheckHook,
                                                      format_losses,
                                                      non_finite_terms)
from ssd_plugin.engine.num_classes_check_hook import (check_num_classes,
                                                      head_class_counts)

LOAD = [dict(type='LoadImageFromFile')]


def coco_kwargs(root: str, **overrides) -> dict:
    kwargs = dict(data_root=root, ann_file='annotations/instances_val.json',
                  data_prefix=dict(img='val/'), pipeline=LOAD,
                  metainfo=dict(classes=SHAPE_CLASSES), test_mode=True)
    kwargs.update(overrides)
    return kwargs


def voc_kwargs(root: str, **overrides) -> dict:
    kwargs = dict(data_root=osp.join(root, 'VOCdevkit'),
                  ann_file='VOC2007/ImageSets/Main/test.txt',
                  data_prefix=dict(sub_data_root='VOC2007/'), pipeline=LOAD,
                  metainfo=dict(classes=SHAPE_CLASSES), test_mode=True)
    kwargs.update(overrides)
    return kwargs


# --- missing dataset folder or annotation file -------------------------------
@pytest.mark.parametrize('override,named', [
    (dict(data_root='/nonexistent/coco/'), "data_root '/nonexistent/coco/'"),
    (dict(ann_file='annotations/missing.json'), 'annotations/missing.json'),
    (dict(data_prefix=dict(img='test2017/')), 'test2017/'),
])
def test_coco_missing_path_names_it_and_how_to_prepare(shapes_root, override,
                                                       named):
    with pytest.raises(FileNotFoundError) as info:
        CheckedCocoDataset(**coco_kwargs(shapes_root, **override))
    message = str(info.value)
    assert named in message
    assert 'make_shapes.py' in message and 'cocodataset.org' in message


@pytest.mark.parametrize('override,named', [
    (dict(ann_file='VOC2007/ImageSets/Main/val.txt'), 'Main/val.txt'),
    (dict(data_prefix=dict(sub_data_root='VOC2010/')), 'VOC2010/'),
])
def test_voc_missing_path_names_it_and_how_to_prepare(shapes_root, override,
                                                      named):
    with pytest.raises(FileNotFoundError) as info:
        CheckedVOCDataset(**voc_kwargs(shapes_root, **override))
    message = str(info.value)
    assert named in message
    assert 'VOCdevkit' in message and '--format voc' in message


def test_voc_missing_jpeg_folder_is_named(tmp_path, shapes_root):
    root = shutil.copytree(shapes_root, tmp_path / 'shapes')
    shutil.rmtree(root / 'VOCdevkit' / 'VOC2007' / 'JPEGImages')
    with pytest.raises(FileNotFoundError, match=r'image folder .*JPEGImages'):
        CheckedVOCDataset(**voc_kwargs(str(root)))


def test_valid_sets_load_with_the_generators_boxes(shapes_root):
    coco = CheckedCocoDataset(**coco_kwargs(shapes_root))
    voc = CheckedVOCDataset(**voc_kwargs(shapes_root))
    assert len(coco) == len(voc) == 4
    for i in range(4):
        coco_boxes = [inst['bbox'] for inst in coco.get_data_info(i)
                      ['instances']]
        voc_boxes = [inst['bbox'] for inst in voc.get_data_info(i)
                     ['instances']]
        # COCO [x, y, x + w, y + h]; VOC (1-based, inclusive, mmdet
        # subtracts 1) [x, y, x + w - 1, y + h - 1].
        assert voc_boxes == [[x1, y1, x2 - 1, y2 - 1]
                             for x1, y1, x2, y2 in coco_boxes]
    # Non-VOC class names: VOCMetric must label its table with them.
    assert voc.metainfo['dataset_type'] is None
    assert voc.metainfo['classes'] == SHAPE_CLASSES


# --- corrupt or missing image ------------------------------------------------
@pytest.fixture
def broken_coco(tmp_path, shapes_root):
    """A copy of the val set whose image 0 is garbage and image 1 is gone."""
    root = shutil.copytree(shapes_root, tmp_path / 'shapes')
    (root / 'val' / '000008.jpg').write_bytes(b'not a jpeg at all')
    (root / 'val' / '000009.jpg').unlink()
    return str(root)


def test_corrupt_image_is_named(broken_coco):
    dataset = CheckedCocoDataset(**coco_kwargs(broken_coco))
    with pytest.raises(ValueError) as info:
        dataset[0]
    assert re.search(r"image '.*val/000008\.jpg'", str(info.value))
    assert 'corrupt' in str(info.value)
    assert 'instances_val.json' in str(info.value)


def test_missing_image_is_named(broken_coco):
    dataset = CheckedCocoDataset(**coco_kwargs(broken_coco))
    with pytest.raises(FileNotFoundError,
                       match=r"image '.*val/000009\.jpg'.*does not exist"):
        dataset[1]
    assert dataset[2]['img'].shape == (64, 64, 3)  # the others still load


def test_other_pipeline_errors_pass_through_unchanged(shapes_root):
    def broken_step(results):
        raise KeyError('not about the image')

    dataset = CheckedCocoDataset(**coco_kwargs(shapes_root,
                                        pipeline=LOAD + [broken_step]))
    with pytest.raises(KeyError, match='not about the image'):
        dataset[0]


# --- class count -------------------------------------------------------------
class _Head(nn.Module):

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes


class _Detector(nn.Module):

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.backbone = _Head(-1)  # mmcv's VGG carries num_classes=-1
        self.bbox_head = _Head(num_classes)


def test_head_class_counts_skip_the_backbone():
    assert head_class_counts(_Detector(4)) == [('bbox_head', 4)]


def test_class_count_mismatch_names_both_numbers():
    with pytest.raises(ValueError) as info:
        check_num_classes(_Detector(80), SHAPE_CLASSES, 'train')
    message = str(info.value)
    assert 'model.bbox_head.num_classes=80' in message
    assert 'train dataset has 4 classes' in message
    check_num_classes(_Detector(4), SHAPE_CLASSES, 'val')  # match: silent
    check_num_classes(_Detector(4), None, 'val')  # no class names: skipped


def test_class_names_as_one_string_is_a_type_error():
    with pytest.raises(TypeError, match=r"classes=\('circle',\)"):
        check_num_classes(_Detector(1), 'circle', 'train')


# --- NaN loss ----------------------------------------------------------------
def test_non_finite_terms_and_format():
    log_vars = dict(loss=torch.tensor(math.nan), loss_cls=torch.tensor(0.5),
                    loss_bbox=torch.tensor(math.inf),
                    acc=torch.tensor(math.nan))
    assert set(non_finite_terms(log_vars)) == {'loss', 'loss_bbox'}
    assert non_finite_terms({}) == {}
    # A total loss still in the graph (as train_step returns it) and plain
    # numbers are read without torch's requires_grad warning.
    weight = torch.tensor(2.0, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert non_finite_terms(dict(loss=weight * math.inf, loss_x=1.0)) \
            == {'loss': math.inf}
    assert format_losses({'loss': 1.23456, 'loss_cls': 0.5}) == \
        'loss=1.235, loss_cls=0.5'


def test_bad_interval_is_named():
    with pytest.raises(ValueError, match='interval=0'):
        FiniteLossCheckHook(interval=0)


class _Scalars(Dataset):

    def __len__(self) -> int:
        return 64

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=torch.ones(1))


class _ScheduledLossModel(BaseModel):
    """Returns loss_a, loss_b from a fixed schedule, one pair per call."""

    def __init__(self, schedule: List[Dict[str, float]]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.schedule = schedule
        self.calls = 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        values = self.schedule[self.calls]
        self.calls += 1
        # weight * 0 keeps a graph; the value is exactly the schedule's.
        return {name: self.weight.sum() * 0 + value
                for name, value in values.items()}


def test_nan_loss_stops_with_iteration_and_last_finite_losses(tmp_path):
    schedule = [dict(loss_a=0.5, loss_b=0.25),
                dict(loss_a=0.375, loss_b=0.125),
                dict(loss_a=math.nan, loss_b=0.0625),
                dict(loss_a=0.1, loss_b=0.1)]
    runner = Runner(
        model=_ScheduledLossModel(schedule), work_dir=str(tmp_path),
        train_dataloader=dict(dataset=_Scalars(), batch_size=2,
                              sampler=dict(type='DefaultSampler'),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=4),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1,
                                           by_epoch=False)),
        custom_hooks=[dict(type='FiniteLossCheckHook')],
        default_scope='ssd_plugin')
    with pytest.raises(FloatingPointError) as info:
        runner.train()
    message = str(info.value)
    assert 'non-finite loss at iteration 3' in message
    assert 'loss=nan' in message and 'loss_a=nan' in message
    assert 'loss_b' not in message.split(';')[0]  # only the bad terms first
    # Iteration 2's values, computed here: loss = 0.375 + 0.125.
    assert ('last finite losses (iteration 2): loss=0.5, loss_a=0.375, '
            'loss_b=0.125') in message
    assert '--resume' in message
    # Nothing lost: iteration 2's checkpoint exists, no NaN one was written.
    assert osp.isfile(tmp_path / 'iter_2.pth')
    assert not osp.exists(tmp_path / 'iter_3.pth')


def test_nan_at_first_iteration_says_no_finite_losses(tmp_path):
    runner = Runner(
        model=_ScheduledLossModel([dict(loss_a=math.inf)]),
        work_dir=str(tmp_path),
        train_dataloader=dict(dataset=_Scalars(), batch_size=2,
                              sampler=dict(type='DefaultSampler'),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=2),
        custom_hooks=[dict(type='FiniteLossCheckHook')],
        default_scope='ssd_plugin')
    with pytest.raises(FloatingPointError,
                       match='iteration 1 .*loss_a=inf; no earlier iteration'):
        runner.train()
