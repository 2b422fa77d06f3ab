"""Timing and agreement helpers for the benchmarks in ``tools/``.

Contenders run interleaved in one process, so a shared machine's load hits
all alike; in the package, as mmdet's ``utils/benchmark.py``.
"""
import argparse
import importlib.util
import os.path as osp
import statistics
import time
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple)

import cv2
import numpy as np
import torch
from mmdet.structures.bbox import bbox_overlaps
from mmengine.structures import InstanceData


def sample_dir() -> str:
    """matplotlib's folder of sample photographs (``grace_hopper.jpg``...),
    located when asked; ImportError naming the fix without matplotlib."""
    spec = importlib.util.find_spec('matplotlib')
    if spec is None:
        raise ImportError('matplotlib is not installed, so its sample photos '
                          'are not there: pip install matplotlib, or pass '
                          '--images')
    return osp.join(osp.dirname(spec.origin), 'mpl-data', 'sample_data')


def add_timing_args(parser: argparse.ArgumentParser, rounds: int,
                    threads: Optional[int]) -> None:
    """Add ``--rounds`` and ``--threads`` (None: torch's default)."""
    parser.add_argument('--rounds', type=int, default=rounds,
                        help=f'interleaved timed rounds (default {rounds})')
    parser.add_argument('--threads', type=int, default=threads,
                        help=f'torch and OpenCV threads (default {threads})')


def check_timing_args(rounds: int, threads: Optional[int]) -> None:
    """ValueError unless ``--rounds`` and ``--threads`` (None: torch's
    default) are at least 1; changes nothing."""
    for flag, value in dict(rounds=rounds, threads=threads).items():
        if value is not None and value < 1:
            raise ValueError(f'--{flag}={value}: pass at least 1')


def set_process_threads(threads: Optional[int]) -> None:
    """Set torch's and OpenCV's thread counts for the whole process (every
    later call of either, not only the timed ones); None leaves them."""
    if threads:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)


def read_images(paths: Sequence[str]) -> List[np.ndarray]:
    """(H, W, 3) uint8 BGR images, or ``FileNotFoundError`` naming all the
    unreadable ``--images``."""
    images = [cv2.imread(path, cv2.IMREAD_COLOR) for path in paths]
    missing = [path for path, img in zip(paths, images) if img is None]
    if missing:
        raise FileNotFoundError(f'cannot read images {missing}; pass '
                                'readable files to --images')
    return images


def time_interleaved(contenders: Mapping[str, Callable[[Any], Any]],
                     inputs: Sequence[Any], rounds: int = 1, warmup: int = 1,
                     prepare: Optional[Callable[[Any], Any]] = None,
                     clock: Callable[[], float] = time.perf_counter
                     ) -> Dict[str, List[float]]:
    """Per contender (name -> ``fn(input)``), the ``rounds * len(inputs)``
    seconds of its calls, interleaved in an order that reverses on every other
    call, after ``warmup`` untimed calls each; ``prepare`` runs untimed on
    each input before a call."""
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


def _check_baseline(seconds: Mapping[str, Any], baseline: str) -> None:
    if baseline not in seconds:
        raise ValueError(f'baseline {baseline!r} is not a contender; '
                         f'choose one of {list(seconds)}')


def report(seconds: Mapping[str, Sequence[float]], baseline: str,
           unit: str = 'ms', scale: float = 1e3) -> Dict[str, float]:
    """Print each contender's median and quartiles (seconds times ``scale``,
    in ``unit``); return its speed-up ``median(baseline) / median(it)``."""
    _check_baseline(seconds, baseline)
    stats = {name: quartiles(t) for name, t in seconds.items()}
    width = max(map(len, stats))
    ratios = {}
    for name, (low, median, high) in stats.items():
        ratios[name] = stats[baseline][1] / median
        print(f'{name:>{width}}: {median * scale:8.1f} {unit} (median; '
              f'quartiles {low * scale:.1f}-{high * scale:.1f}), '
              f'{ratios[name]:.2f}x as fast as {baseline}')
    return ratios


def round_means(seconds: Mapping[str, Sequence[float]], rounds: int
                ) -> Dict[str, List[float]]:
    """Per contender, the mean of each of ``rounds`` equal parts of its
    times in call order (a round of :func:`time_interleaved`)."""
    return {name: [statistics.fmean(part) for part in np.array_split(
        np.asarray(t, float), rounds)] for name, t in seconds.items()}


def report_rounds(seconds: Mapping[str, Sequence[float]], rounds: int,
                  baseline: str, unit: str = 'ms',
                  scale: float = 1e3) -> Dict[str, List[float]]:
    """Print each round's mean per call and ratio, then :func:`report` them;
    ``seconds`` in call order (as :func:`time_interleaved` gives them). Returns
    per contender and round ``mean(baseline) / mean(contender)``."""
    _check_baseline(seconds, baseline)
    means = round_means(seconds, rounds)
    ratios = {name: [b / m for b, m in zip(means[baseline], values)]
              for name, values in means.items()}
    for r in range(rounds):
        print(f'round {r}: ' + ', '.join(
            f'{name} {values[r] * scale:.1f} {unit} ({ratios[name][r]:.2f}x)'
            for name, values in means.items()), flush=True)
    print(f'median over {rounds} rounds:')
    report(means, baseline, unit, scale)
    return ratios


def detection_agreement(reference: InstanceData, other: InstanceData,
                        iou_thr: float = 0.99,
                        score_tol: float = 1e-3) -> Tuple[int, int]:
    """``(agreeing, max(N, M))`` of N reference and M other detections
    (``bboxes`` (N, 4), ``scores``, ``labels``): same label, IoU > ``iou_thr``,
    score within ``score_tol`` (one to one after per-class NMS)."""
    total = max(len(reference), len(other))
    if min(len(reference), len(other)) == 0:
        return 0, total
    same = (reference.labels[:, None] == other.labels[None]) & (
        (reference.scores[:, None] - other.scores[None]).abs() < score_tol)
    same &= bbox_overlaps(reference.bboxes.float(),
                          other.bboxes.float()) > iou_thr
    return min(int(same.any(1).sum()), int(same.any(0).sum())), total
