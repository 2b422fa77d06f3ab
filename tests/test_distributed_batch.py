"""Several GPUs: the recipe's total batch, BatchNorm's share, per-rank seeds.

The paper's recipes are for a total batch of 32 (``auto_scale_lr.
base_batch_size``); ``DistributedBatchCheckHook`` refuses a multi-process
total that differs unless ``--auto-scale-lr`` says what is meant. The
quickstart (one loader process per rank) seeds each rank apart.
"""
import os.path as osp
from types import SimpleNamespace

import pytest
from mmengine.config import Config
from mmengine.model import convert_sync_batchnorm
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.runner import utils as runner_utils
from torch import nn

from conftest import REPO_ROOT, SSD_CONFIGS
from ssd_plugin.engine.distributed_batch_check_hook import (
    DistributedBatchCheckHook, total_batch_note, unsynced_batch_norms)
from ssd_plugin.registry import MODELS

RECIPE = dict(enable=False, base_batch_size=32)


def _config(path: str) -> Config:
    return Config.fromfile(osp.join(REPO_ROOT, 'configs', path))


@pytest.mark.parametrize('world_size,batch_size', [(1, 32), (8, 4), (2, 16),
                                                   (32, 1)])
def test_the_recipes_total_is_silent(world_size, batch_size):
    assert total_batch_note(world_size, batch_size, RECIPE) is None


def test_no_recipe_total_no_check():
    assert total_batch_note(8, 32, None) is None
    assert total_batch_note(8, 32, dict(enable=True)) is None


def test_several_gpus_at_the_per_gpu_recipe_batch_are_refused():
    """8 GPUs x 32: 8x the recipe's total at its LR, for 8x its epochs."""
    with pytest.raises(ValueError) as info:
        total_batch_note(8, 32, RECIPE)
    message = str(info.value)
    assert '8 processes x train_dataloader.batch_size=32 = a total batch ' \
        'of 256' in message
    assert '--cfg-options train_dataloader.batch_size=4' in message  # 32/8
    assert '--auto-scale-lr' in message and '8x the recipe' in message
    assert 'auto_scale_lr.base_batch_size=256' in message
    # 32 does not split over 3 GPUs: the fix is said in words.
    with pytest.raises(ValueError, match='makes 32 over 3'):
        total_batch_note(3, 32, RECIPE)


def test_auto_scale_lr_and_one_process_are_notes():
    note = total_batch_note(8, 32, dict(RECIPE, enable=True))
    assert 'LR is scaled by 8' in note and "8x the recipe's epochs" in note
    note = total_batch_note(1, 8, RECIPE)
    assert "batch 8, the recipe's 32" in note and 'unscaled' in note


class _Runner(SimpleNamespace):
    """What the hook reads of mmengine's ``Runner``."""


def test_hook_reads_the_runner(monkeypatch):
    notes = []
    monkeypatch.setattr(
        'ssd_plugin.engine.distributed_batch_check_hook.print_log',
        lambda msg, **kwargs: notes.append(msg))
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    loader = SimpleNamespace(batch_size=4, batch_sampler=None)
    hook = DistributedBatchCheckHook()
    hook.before_train(_Runner(world_size=8, train_dataloader=loader,
                              auto_scale_lr=RECIPE, model=model))
    assert notes == ['1 BatchNorm layers normalise over each process\'s 4 '
                     'images only; for statistics over the whole batch of '
                     '32 add --cfg-options sync_bn=torch (CUDA)']
    # A batch sampler's size when the loader has none (mmdet's samplers).
    loader = SimpleNamespace(batch_size=None,
                             batch_sampler=SimpleNamespace(batch_size=32))
    with pytest.raises(ValueError, match='total batch of 64'):
        hook.before_train(_Runner(world_size=2, train_dataloader=loader,
                                  auto_scale_lr=RECIPE, model=nn.Linear(1, 1)))


@pytest.mark.parametrize('name', SSD_CONFIGS)
def test_paper_configs_are_the_recipe_on_one_gpu_and_check_it(name):
    cfg = _config(f'ssd/{name}.py')
    assert cfg.auto_scale_lr == dict(RECIPE)
    assert cfg.train_dataloader.batch_size == 32  # one GPU: the total
    assert dict(type='DistributedBatchCheckHook') in cfg.custom_hooks


@pytest.mark.parametrize('path', ['quickstart/ssd_shapes.py',
                                  'ssd_resnet/ssd300_r50_coco.py',
                                  'ssdlite/ssdlite_mobilenetv2_320_coco.py'])
def test_batch_norm_models_convert_to_sync_bn(path):
    """``sync_bn='torch'`` (mmengine's Runner under DDP) reaches every
    BatchNorm of the BN backbones, neck and head."""
    cfg = _config(path)
    init_default_scope('ssd_plugin')
    with DefaultScope.overwrite_default_scope('ssd_plugin'):
        model = MODELS.build(cfg.model)
    count = unsynced_batch_norms(model)
    assert count > 0
    model = convert_sync_batchnorm(model, 'torch')
    assert unsynced_batch_norms(model) == 0
    assert sum(isinstance(m, nn.SyncBatchNorm)
               for m in model.modules()) == count


def test_quickstart_seeds_each_rank_apart_and_shuffles_alike(monkeypatch):
    cfg = _config('quickstart/ssd_shapes.py')
    assert cfg.randomness == dict(seed=0, diff_rank_seed=True)
    # One shuffle for all ranks (each takes its share), seeded as the run.
    assert cfg.train_dataloader.sampler.seed == cfg.randomness.seed
    seeds = []
    for rank in (0, 1):  # mmengine's seeding, as each rank runs it
        monkeypatch.setattr(runner_utils, 'get_rank', lambda: rank)
        seeds.append(runner_utils.set_random_seed(**cfg.randomness))
    assert seeds == [0, 1]  # rank 0: the single-process run's seed
