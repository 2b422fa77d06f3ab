"""Timing and agreement helpers for the benchmarks in ``tools/``.

Contenders run interleaved in one process, so a shared machine's load hits
all alike; in the package, as mmdet's ``utils/benchmark.py``.
"""
import statistics
import time
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple)

from mmdet.structures.bbox import bbox_overlaps
from mmengine.structures import InstanceData


def time_interleaved(contenders: Mapping[str, Callable[[Any], Any]],
                     inputs: Sequence[Any], rounds: int = 1, warmup: int = 1,
                     prepare: Optional[Callable[[Any], Any]] = None,
                     clock: Callable[[], float] = time.perf_counter
                     ) -> Dict[str, List[float]]:
    """Seconds of every call of every contender, calls interleaved.

    The order reverses on every other call.

    Args:
        contenders (Mapping[str, Callable]): Name to ``fn(input)``.
        inputs (Sequence): What each contender is called on.
        rounds (int): Passes over ``inputs``, at least 1. Defaults to 1.
        warmup (int): Untimed calls of each contender. Defaults to 1.
        prepare (Callable, optional): Untimed, on each input before a call.
        clock (Callable): Seconds. Defaults to ``time.perf_counter``.

    Returns:
        dict[str, list[float]]: ``rounds * len(inputs)`` seconds each.
    """
    if rounds < 1:
        raise ValueError(f'rounds={rounds}: time at least one round')
    if contenders and not inputs:
        raise ValueError('no inputs to time the contenders on')
    prepare = prepare or (lambda x: x)
    names = list(contenders)
    for name in names:
        for k in range(warmup):
            contenders[name](prepare(inputs[k % len(inputs)]))
    times: Dict[str, List[float]] = {name: [] for name in names}
    for call in range(rounds * len(inputs) if names else 0):
        for name in (names if call % 2 == 0 else names[::-1]):
            arg = prepare(inputs[call % len(inputs)])
            start = clock()
            contenders[name](arg)
            times[name].append(clock() - start)
    return times


def quartiles(values: Sequence[float]) -> List[float]:
    """First quartile, median and third quartile of ``values`` (>= 1)."""
    if len(values) < 2:
        return [values[0]] * 3
    return statistics.quantiles(values, n=4, method='inclusive')


def report(seconds: Mapping[str, Sequence[float]], baseline: str,
           unit: str = 'ms', scale: float = 1e3) -> Dict[str, float]:
    """Print each contender's median and quartiles, and its speed-up.

    Args:
        seconds (Mapping[str, Sequence[float]]): Per contender, seconds.
        baseline (str): The contender the ratios are against.
        unit (str): Printed after the figures. Defaults to ``'ms'``.
        scale (float): Seconds to ``unit``. Defaults to 1e3.

    Returns:
        dict[str, float]: ``median(baseline) / median(contender)``.
    """
    if baseline not in seconds:
        raise ValueError(f'baseline {baseline!r} is not a contender; '
                         f'choose one of {list(seconds)}')
    stats = {name: quartiles(t) for name, t in seconds.items()}
    width = max(map(len, stats))
    ratios = {}
    for name, (low, median, high) in stats.items():
        ratios[name] = stats[baseline][1] / median
        print(f'{name:>{width}}: {median * scale:8.1f} {unit} (median; '
              f'quartiles {low * scale:.1f}-{high * scale:.1f}), '
              f'{ratios[name]:.2f}x as fast as {baseline}')
    return ratios


def detection_agreement(reference: InstanceData, other: InstanceData,
                        iou_thr: float = 0.99,
                        score_tol: float = 1e-3) -> Tuple[int, int]:
    """How many detections two models agree on, of how many.

    Agreeing: same label, IoU > ``iou_thr``, score within ``score_tol`` (one
    to one after per-class NMS).

    Args:
        reference, other (InstanceData): ``bboxes`` (N, 4), ``scores`` and
            ``labels`` (N,); M for ``other``.
        iou_thr, score_tol (float): Defaults to 0.99, 1e-3.

    Returns:
        tuple[int, int]: Agreeing detections and ``max(N, M)``.
    """
    total = max(len(reference), len(other))
    if min(len(reference), len(other)) == 0:
        return 0, total
    same = (reference.labels[:, None] == other.labels[None]) & (
        (reference.scores[:, None] - other.scores[None]).abs() < score_tol)
    same &= bbox_overlaps(reference.bboxes.float(),
                          other.bboxes.float()) > iou_thr
    return min(int(same.any(1).sum()), int(same.any(0).sum())), total
