"""A progress bar over validation and test batches (rank 0 only): mmengine
logs only every ``LoggerHook.interval`` batches."""
import sys
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.utils import ProgressBar

from ssd_plugin.registry import HOOKS


@HOOKS.register_module()
class EvalProgressBarHook(Hook):
    """Show a progress bar while the val and test loops run.

    Args:
        bar_width (int): Width of the bar in characters. Defaults to 30.
    """

    priority = 'LOW'

    def __init__(self, bar_width: int = 30) -> None:
        if not isinstance(bar_width, int) or bar_width < 1:
            raise ValueError(f'EvalProgressBarHook bar_width={bar_width!r} '
                             'must be a positive int')
        self.bar_width = bar_width
        self._bar: Optional[ProgressBar] = None

    def _before_epoch(self, runner, mode: str = 'train') -> None:
        """Start a bar over ``len(runner.{val,test}_dataloader)`` batches."""
        num_batches = 0 if mode == 'train' else len(
            getattr(runner, f'{mode}_dataloader'))
        if is_main_process() and num_batches > 0:
            self._bar = ProgressBar(num_batches, self.bar_width,
                                    file=sys.stdout)

    def _after_iter(self, runner, batch_idx: int,
                    data_batch: Optional[dict] = None,
                    outputs: Optional[list] = None,
                    mode: str = 'train') -> None:
        """Advance the bar (open only in val and test) by one batch."""
        if self._bar is not None:
            self._bar.update()
            # The metrics are computed (and printed) before after_*_epoch,
            # so end the bar's line at the last batch.
            if self._bar.completed >= self._bar.task_num:
                self._after_epoch(runner, mode)

    def _after_epoch(self, runner, mode: str = 'train') -> None:
        """End the bar's line if a short epoch left it open."""
        if self._bar is not None:
            sys.stdout.write('\n')
            sys.stdout.flush()
            self._bar = None
