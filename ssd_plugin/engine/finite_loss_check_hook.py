"""Stop training at the first non-finite loss, saying where and what it was.

Unlike mmdet's ``CheckInvalidLossHook`` (an assert on the total), it names
the iteration and the losses before it, and runs before the checkpoint hook.
"""
import math
from typing import Dict, Mapping, Optional

from mmengine.hooks import Hook

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


@HOOKS.register_module()
class FiniteLossCheckHook(Hook):
    """Raise ``FloatingPointError`` when a training loss becomes NaN or inf.

    Args:
        interval (int): Check every ``interval`` iterations. Defaults to 1
            (the logger reads every loss anyway).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, interval: int = 1) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'FiniteLossCheckHook interval={interval!r} must '
                             'be a positive int')
        self.interval = interval
        self._last_finite: Optional[Dict[str, float]] = None
        self._last_finite_iter = 0

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[Mapping[str, object]] = None
                         ) -> None:
        """Check ``outputs`` (the loss dict of this iteration)."""
        if not outputs or not self.every_n_train_iters(runner, self.interval):
            return
        losses = loss_terms(outputs)
        bad = non_finite_terms(losses)
        iteration = runner.iter + 1  # 1-based, as in the training log
        if not bad:
            self._last_finite, self._last_finite_iter = losses, iteration
            return
        if self._last_finite is None:
            before = 'no earlier iteration had finite losses'
        else:
            before = (f'last finite losses (iteration '
                      f'{self._last_finite_iter}): '
                      f'{format_losses(self._last_finite)}')
        raise FloatingPointError(
            f'non-finite loss at iteration {iteration} (epoch '
            f'{runner.epoch + 1}): {format_losses(bad)}; {before}. Training '
            'stopped before saving this iteration. Lower the learning rate or '
            'lengthen the warm-up, check the annotations for empty or '
            'degenerate boxes, then continue from the last checkpoint with '
            '--resume.')
