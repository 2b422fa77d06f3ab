"""FiniteLossCheckHook across ranks and under a loss scaler.

Two processes in a gloo group on the CPU: one rank's NaN stops both at the
same iteration with the same message. Under a loss scaler (fp16 AMP) a
non-finite loss whose step the scaler skipped is tolerated a few times in a
row, never with non-finite weights, and a collapsed scale stops the run.
"""
import math
import os
import socket
from typing import Dict, List, Optional

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from ssd_plugin.engine import FiniteLossCheckHook

FINITE = dict(loss=1.5, loss_cls=1.0, loss_bbox=0.5)
NAN = dict(loss=math.nan, loss_cls=math.nan, loss_bbox=0.5)


class _Scaler:
    """What the hook reads of a ``GradScaler``."""

    def __init__(self, scale: float = 65536.) -> None:
        self.scale = scale

    def get_scale(self) -> float:
        return self.scale


class _Wrapper:

    def __init__(self, scaler: Optional[_Scaler]) -> None:
        if scaler is not None:
            self.loss_scaler = scaler


class _Runner:
    """What the hook reads of mmengine's ``Runner``."""

    def __init__(self, scaler: Optional[_Scaler] = None) -> None:
        self.iter, self.epoch = 0, 0
        self.optim_wrapper = _Wrapper(scaler)
        self.model = nn.Linear(2, 1)


def _run(hook: FiniteLossCheckHook, runner: _Runner,
         schedule: List[Dict[str, float]]) -> int:
    """Feed ``schedule`` (one loss dict per iteration); the iterations done."""
    for index, losses in enumerate(schedule):
        runner.iter = index
        hook.after_train_iter(runner, index, outputs={
            k: torch.tensor(v) for k, v in losses.items()})
    return len(schedule)


# --- all ranks decide together (2 processes, gloo) -------------------------
def _rank_main(rank: int, port: int, folder: str) -> None:
    """Rank 1 has a NaN at iteration 3, rank 0 never: both must stop there."""
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    try:
        schedule = [FINITE] * 5
        if rank == 1:
            schedule = [FINITE, FINITE, NAN, FINITE, FINITE]
        runner = _Runner()
        try:
            _run(FiniteLossCheckHook(), runner, schedule)
            outcome = 'finished'
        except FloatingPointError as error:
            outcome = f'stopped at {runner.iter + 1}: {error}'
        with open(os.path.join(folder, f'rank{rank}.txt'), 'w') as f:
            f.write(outcome)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_one_ranks_nan_stops_every_rank_at_the_same_iteration(tmp_path):
    mp.spawn(_rank_main, args=(_free_port(), str(tmp_path)), nprocs=2)
    outcomes = [(tmp_path / f'rank{r}.txt').read_text() for r in (0, 1)]
    assert outcomes[0] == outcomes[1]  # the same decision and message
    assert outcomes[0].startswith('stopped at 3: non-finite loss at '
                                  'iteration 3 (epoch 1): rank 1: loss=nan, '
                                  'loss_cls=nan;')
    assert 'rank 0:' not in outcomes[0]
    assert 'last finite losses (iteration 2): loss=1.5' in outcomes[0]


# --- under a loss scaler ----------------------------------------------------
def test_without_a_scaler_the_first_nan_stops():
    with pytest.raises(FloatingPointError, match='iteration 2 '):
        _run(FiniteLossCheckHook(), _Runner(), [FINITE, NAN])


def test_skipped_steps_are_tolerated_then_counted_again():
    scaler = _Scaler()
    hook, runner = FiniteLossCheckHook(max_skipped=2), _Runner(scaler)
    # Two in a row, finite again (the count restarts), two more: no stop.
    assert _run(hook, runner, [FINITE, NAN, NAN, FINITE, NAN, NAN]) == 6
    with pytest.raises(FloatingPointError,
                       match=r'iteration 7 .*3 non-finite iterations in a '
                       r'row under the loss scaler; last finite losses '
                       r'\(iteration 4\).*--amp-dtype bfloat16'):
        runner.iter = 6
        hook.after_train_iter(runner, 6, outputs=dict(
            loss=torch.tensor(math.nan)))


def test_non_finite_weights_stop_at_once_under_a_scaler():
    runner = _Runner(_Scaler())
    with torch.no_grad():
        runner.model.weight[0, 0] = math.inf  # the step was not skipped
    with pytest.raises(FloatingPointError,
                       match='the weights are no longer finite'):
        _run(FiniteLossCheckHook(), runner, [FINITE, NAN])


def test_collapsed_loss_scale_stops():
    scaler = _Scaler()
    hook, runner = FiniteLossCheckHook(), _Runner(scaler)
    _run(hook, runner, [FINITE])
    scaler.scale, runner.iter = 0.5, 1
    with pytest.raises(FloatingPointError,
                       match='loss scale fell to 0.5 at iteration 2'):
        hook.after_train_iter(runner, 1, outputs=dict(loss=torch.tensor(1.)))
    # min_loss_scale=0 never stops on the scale.
    _run(FiniteLossCheckHook(min_loss_scale=0), _Runner(scaler), [FINITE])


@pytest.mark.parametrize('kwargs,name', [(dict(max_skipped=-1), 'max_skipped'),
                                         (dict(max_skipped=1.5),
                                          'max_skipped'),
                                         (dict(min_loss_scale=-1.),
                                          'min_loss_scale'),
                                         (dict(min_loss_scale=math.nan),
                                          'min_loss_scale')])
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        FiniteLossCheckHook(**kwargs)
