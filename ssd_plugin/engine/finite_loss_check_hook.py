"""Stop training at a non-finite loss, on every rank at once, saying where.

Unlike mmdet's ``CheckInvalidLossHook`` (an assert on the total), it names
the iteration, the ranks and the losses before it, and runs before the
checkpoint hook. mmengine does not all-reduce the logged losses, so the ranks
first agree on which of them saw a non-finite loss (one all-reduce of a
``world_size`` vector per checked iteration): all raise together, none is
left waiting in DDP's next all-reduce.

Under a loss scaler (mmengine's ``AmpOptimWrapper``: float16 AMP, or bf16
with a static scale) a non-finite loss gives non-finite gradients, which
``GradScaler`` detects and skips (the weights stay as they were), lowering
its scale: such iterations are logged and tolerated, ``max_skipped`` in a
row at most and only while the weights are finite. A scale below
``min_loss_scale`` means float16 overflows even unscaled gradients: the run
stops then too.
"""
import logging
import math
from typing import Dict, List, Mapping, Optional

import torch
from mmengine.dist import all_gather_object, all_reduce, get_dist_info
from mmengine.hooks import Hook
from mmengine.logging import print_log

from ssd_plugin.registry import HOOKS


def loss_terms(log_vars: Mapping[str, object]) -> Dict[str, float]:
    """The ``*loss*`` terms of ``train_step``'s ``log_vars`` (name -> scalar
    tensor, maybe still in the graph, or number) as floats."""
    return {name: float(getattr(value, 'detach', lambda: value)())
            for name, value in log_vars.items() if 'loss' in name}


def non_finite_terms(log_vars: Mapping[str, object]) -> Dict[str, float]:
    """The NaN or infinite ``*loss*`` terms of ``log_vars``."""
    return {name: value for name, value in loss_terms(log_vars).items()
            if not math.isfinite(value)}


def format_losses(losses: Mapping[str, float]) -> str:
    """``'loss=1.2346, loss_cls=0.5'`` style summary (4 significant digits)."""
    return ', '.join(f'{name}={value:.4g}' for name, value in losses.items())


def ranks_with(flag: bool) -> List[int]:
    """The ranks of the default group whose ``flag`` is set, the same list
    on every rank (an all-reduce; this process alone without a group)."""
    rank, world_size = get_dist_info()
    if world_size == 1:
        return [0] if flag else []
    flags = torch.zeros(world_size)
    flags[rank] = float(flag)
    all_reduce(flags)  # mmengine moves it to the backend's device
    return [r for r in range(world_size) if flags[r] > 0]


def finite_weights(model: torch.nn.Module) -> bool:
    """Whether every parameter of ``model`` is finite (one device sync)."""
    checks = [torch.isfinite(p).all() for p in model.parameters()]
    return bool(torch.stack(checks).all()) if checks else True


@HOOKS.register_module()
class FiniteLossCheckHook(Hook):
    """Raise ``FloatingPointError`` when a training loss becomes NaN or inf.

    Args:
        interval (int): Check every ``interval`` iterations. Defaults to 1
            (the logger reads every loss anyway).
        max_skipped (int): Under a loss scaler, how many checked iterations
            in a row may have a non-finite loss (steps the scaler skipped).
            Defaults to 10. Without a scaler the first one stops the run.
        min_loss_scale (float): Under a loss scaler, stop when its scale
            falls below this. Defaults to 1 (float16 overflows unscaled
            gradients); 0 never stops on the scale.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, interval: int = 1, max_skipped: int = 10,
                 min_loss_scale: float = 1.0) -> None:
        for name, value, low in (('interval', interval, 1),
                                 ('max_skipped', max_skipped, 0)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f'FiniteLossCheckHook {name}={value!r} must '
                                 f'be an int >= {low}')
        if not min_loss_scale >= 0:
            raise ValueError(f'FiniteLossCheckHook min_loss_scale='
                             f'{min_loss_scale!r} must be >= 0')
        self.interval = interval
        self.max_skipped = max_skipped
        self.min_loss_scale = float(min_loss_scale)
        self._last_finite: Optional[Dict[str, float]] = None
        self._last_finite_iter = 0
        self._skipped = 0

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[Mapping[str, object]] = None
                         ) -> None:
        """Check ``outputs`` (the loss dict of this iteration) on all ranks."""
        if not outputs or not self.every_n_train_iters(runner, self.interval):
            return
        losses = loss_terms(outputs)
        terms = non_finite_terms(losses)
        bad_ranks = ranks_with(bool(terms))
        iteration = runner.iter + 1  # 1-based, as in the training log
        scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
        if not bad_ranks:
            self._last_finite, self._last_finite_iter = losses, iteration
            self._skipped = 0
            self._check_scale(scaler, iteration)
            return
        # Every rank gets here together: the collectives below match.
        bad = all_gather_object(terms)
        found = '; '.join(f'rank {r}: {format_losses(bad[r])}'
                          for r in bad_ranks) if len(bad) > 1 else \
            format_losses(bad[0])
        if scaler is not None:
            self._skipped += 1
            weights_ok = not ranks_with(not finite_weights(runner.model))
            if weights_ok and self._skipped <= self.max_skipped:
                print_log(
                    f'non-finite loss at iteration {iteration} ({found}): '
                    f'the loss scaler skipped this step (scale now '
                    f'{scaler.get_scale():g}); {self._skipped} in a row, '
                    f'the run stops after {self.max_skipped}',
                    logger='current', level=logging.WARNING)
                return
            found += (f'; {self._skipped} non-finite iterations in a row '
                      'under the loss scaler' if weights_ok else
                      '; the weights are no longer finite')
        self._raise(f'non-finite loss at iteration {iteration} (epoch '
                    f'{runner.epoch + 1}): {found}', scaler is not None)

    def _check_scale(self, scaler, iteration: int) -> None:
        """Raise when ``scaler``'s scale fell below ``min_loss_scale``."""
        if scaler is None or not self.min_loss_scale:
            return
        scale = scaler.get_scale()  # the same on every rank under DDP
        if scale < self.min_loss_scale:
            self._raise(f'the loss scale fell to {scale:g} at iteration '
                        f'{iteration} (below min_loss_scale='
                        f'{self.min_loss_scale:g}): float16 overflows the '
                        'gradients even unscaled', True)

    def _raise(self, what: str, scaled: bool) -> None:
        """``FloatingPointError``: ``what``, the last finite losses, fixes."""
        if self._last_finite is None:
            before = 'no earlier iteration had finite losses'
        else:
            before = (f'last finite losses (iteration '
                      f'{self._last_finite_iter}): '
                      f'{format_losses(self._last_finite)}')
        amp = (' Under float16 AMP, try --amp-dtype bfloat16 (float32\'s '
               'range) or train in float32.' if scaled else '')
        raise FloatingPointError(
            f'{what}; {before}. Training stopped before saving this '
            'iteration. Lower the learning rate or lengthen the warm-up, '
            'check the annotations for empty or degenerate boxes, then '
            f'continue from the last checkpoint with --resume.{amp}')
