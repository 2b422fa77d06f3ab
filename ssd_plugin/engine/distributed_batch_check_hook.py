"""Check a run's batch across processes before training: the total against
the recipe's, and BatchNorm's share of it.

The paper's recipes (``configs/_base_/schedules/ssd_sgd.py``) fix the LR,
the warm-up and the iteration schedule for a total batch of
``auto_scale_lr.base_batch_size`` (32) images per iteration, as Caffe's
solver counts it. mmengine's ``train_dataloader.batch_size`` is per process,
so ``k`` GPUs at the config's batch train ``k`` times that total: without
``--auto-scale-lr`` at the recipe's LR, with it at ``k`` times the LR for
``k`` times the epochs. Several processes must therefore either split the
total (``batch_size = base / k``) or say which of the two they mean.
"""
import logging
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ssd_plugin.registry import HOOKS


def total_batch_note(world_size: int, batch_size: int,
                     auto_scale_lr: Optional[dict]) -> Optional[str]:
    """What to say of ``world_size x batch_size`` against the recipe's total.

    Args:
        world_size (int): Training processes (GPUs).
        batch_size (int): ``train_dataloader.batch_size``, per process.
        auto_scale_lr (dict, optional): The config's ``auto_scale_lr``:
            ``base_batch_size`` (the recipe's total) and ``enable``.

    Returns:
        str | None: None when the totals agree or the config has no
        ``base_batch_size``; else a note for the log (the LR scaling, or a
        single process at another batch).

    Raises:
        ValueError: Several processes whose total differs from the recipe's
            without ``auto_scale_lr.enable``; it names the three fixes.
    """
    base = (auto_scale_lr or {}).get('base_batch_size')
    total = world_size * batch_size
    if base is None or total == base:
        return None
    ratio = f'{total / base:g}'
    if auto_scale_lr.get('enable', False):
        return (f'total batch {world_size} x {batch_size} = {total}, the '
                f"recipe's {base}: the LR is scaled by {ratio} "
                '(auto_scale_lr); the schedule and warm-up stay in '
                f"iterations, so the run covers {ratio}x the recipe's epochs")
    if world_size == 1:
        return (f"batch {batch_size}, the recipe's {base}: the LR and "
                "iteration schedule are the recipe's, unscaled "
                '(--auto-scale-lr scales the LR)')
    split = (f'--cfg-options train_dataloader.batch_size={base // world_size}'
             if base % world_size == 0 else
             f'a batch per process that makes {base} over {world_size}')
    raise ValueError(
        f'{world_size} processes x train_dataloader.batch_size={batch_size} '
        f"= a total batch of {total}, but the recipe's LR and iteration "
        f'schedule are for a total of {base} (auto_scale_lr.base_batch_size)'
        f". For the recipe: {split}. To train at {total} with the LR scaled "
        f"linearly (mmdet's convention; the iterations then cover {ratio}x "
        "the recipe's epochs): --auto-scale-lr. To keep the LR at "
        f'{total}: --cfg-options auto_scale_lr.base_batch_size={total}.')


def unsynced_batch_norms(model: nn.Module) -> int:
    """How many BatchNorm layers of a (maybe wrapped) model normalise over
    their own process's images only (torch's ``SyncBatchNorm`` excluded)."""
    if is_model_wrapper(model):
        model = model.module
    return sum(isinstance(m, _BatchNorm)
               and not isinstance(m, nn.SyncBatchNorm)
               for m in model.modules())


@HOOKS.register_module()
class DistributedBatchCheckHook(Hook):
    """Before training: :func:`total_batch_note` (ValueError or a logged
    note), and with several processes a note on BatchNorm layers that see
    only their process's images (``sync_bn='torch'``, docs/gpu.md)."""

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        """Check the run's ``world_size``, batch and ``auto_scale_lr``."""
        loader = runner.train_dataloader
        batch_size = loader.batch_size or loader.batch_sampler.batch_size
        note = total_batch_note(runner.world_size, batch_size,
                                runner.auto_scale_lr)
        if note:
            print_log(note, logger='current', level=logging.WARNING)
        num_bn = unsynced_batch_norms(runner.model)
        if runner.world_size > 1 and num_bn:
            print_log(
                f'{num_bn} BatchNorm layers normalise over each process\'s '
                f'{batch_size} images only; for statistics over the whole '
                f'batch of {runner.world_size * batch_size} add '
                '--cfg-options sync_bn=torch (CUDA)',
                logger='current', level=logging.WARNING)
