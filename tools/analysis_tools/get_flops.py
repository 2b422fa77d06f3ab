"""Parameters, GFLOPs and CPU latency per image of a detector config.

- Parameters: every parameter of the model (backbone, neck, head).
- GFLOPs: ``mmengine.analysis.get_model_complexity_info`` (fvcore's
  counting: one multiply-add is one FLOP; convs, norms, linear layers; the
  data preprocessor and the post-processing are not counted) of the
  network's ``tensor`` forward on one ``3 x input_size x input_size`` image.
- Latency: median wall time of mmdet's ``inference_detector`` on one random
  ``--image-size`` BGR image (test pipeline, preprocessing, network,
  decoding and NMS), after one warm-up call, with torch's current number of
  CPU threads (``--threads`` sets it). Random weights: an untrained model
  gives many low-score candidates, so NMS sees its full ``nms_pre`` load.
  Several configs are timed interleaved, call by call, so that load from
  other processes on a shared machine affects them alike. On a loaded
  machine prefer ``--threads 1``: OpenMP threads that other processes
  preempt stall every parallel op, and the figures swing several-fold.

Usage::

    python tools/analysis_tools/get_flops.py CONFIG [CONFIG ...] [--runs 5]
        [--threads N] [--image-size 480 640] [--no-latency]

Prints the figures of each config, then a Markdown table.
"""
import argparse
import logging
import statistics
import time
from functools import partial
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.logging import MMLogger
from torch import nn


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description='Parameters, GFLOPs and CPU latency of a detector')
    parser.add_argument('config', nargs='+',
                        help='config file path(s); several are timed '
                        'interleaved')
    parser.add_argument('--runs', type=int, default=5,
                        help='timed inference_detector calls (median)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch\'s own)')
    parser.add_argument('--image-size', type=int, nargs=2, default=(480, 640),
                        metavar=('H', 'W'),
                        help='size of the random test image (COCO-like)')
    parser.add_argument('--no-latency', action='store_true',
                        help='count parameters and FLOPs only')
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f'--runs {args.runs}: give at least 1 timed run')
    return args


def complexity(model: nn.Module, input_hw: Tuple[int, int]) -> Tuple[int, int]:
    """Parameters and FLOPs (multiply-adds) of one image's forward.

    Args:
        model (nn.Module): Called as ``model(x)`` with ``x`` a zero image
            ``(1, 3, H, W)``; an mmdet detector runs its ``tensor`` mode.
        input_hw (tuple[int, int]): ``(H, W)``.

    Returns:
        tuple[int, int]: Parameter count and FLOPs.
    """
    param = next(model.parameters())
    image = torch.zeros(1, 3, *input_hw, dtype=param.dtype,
                        device=param.device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        info = get_model_complexity_info(
            model, inputs=(image, ), show_table=False, show_arch=False)
    model.train(was_training)
    return sum(p.numel() for p in model.parameters()), int(info['flops'])


def interleaved_medians(fns: Sequence[Callable[[], object]], runs: int,
                        warmup: int = 1,
                        clock: Callable[[], float] = time.perf_counter
                        ) -> List[float]:
    """Median wall time of each ``fn()``, the calls interleaved.

    Round ``r`` calls every function once, in reverse order on odd rounds,
    so that load from other processes (a shared machine) hits all alike.

    Args:
        fns (Sequence[Callable]): What to time.
        runs (int): Timed calls of each, at least 1.
        warmup (int): Untimed calls of each first (lazy init, caches).
            Defaults to 1.
        clock (Callable): Seconds; defaults to ``time.perf_counter``.

    Returns:
        list[float]: Median seconds per call, one per function.
    """
    if runs < 1:
        raise ValueError(f'runs={runs}: time at least one call')
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: List[List[float]] = [[] for _ in fns]
    order = list(range(len(fns)))
    for run in range(runs):
        for k in (order if run % 2 == 0 else order[::-1]):
            start = clock()
            fns[k]()
            times[k].append(clock() - start)
    return [statistics.median(t) for t in times]


def markdown_row(name: str, input_size: int, params: int, flops: int,
                 latency: Optional[float]) -> str:
    """``| name | input | params (M) | GFLOPs | latency (ms) |``."""
    ms = '-' if latency is None else f'{latency * 1e3:.0f}'
    return (f'| {name} | {input_size} | {params / 1e6:.2f} | '
            f'{flops / 1e9:.2f} | {ms} |')


def build(config: str) -> nn.Module:
    """The config's detector on the CPU, random weights, in eval mode."""
    from mmdet.apis import init_detector
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    return init_detector(config, checkpoint=None, device='cpu')


def main(argv: Optional[List[str]] = None) -> None:
    """Parse, measure every config and print its figures and table row."""
    from mmdet.apis import inference_detector
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    models = [build(config) for config in args.config]
    sizes = [model.cfg.input_size for model in models]
    counts = [complexity(m, (s, s)) for m, s in zip(models, sizes)]
    seconds: List[Optional[float]] = [None] * len(models)
    if not args.no_latency:
        image = np.random.default_rng(0).integers(
            0, 256, (*args.image_size, 3), dtype=np.uint8)
        seconds = interleaved_medians(
            [partial(inference_detector, m, image) for m in models],
            args.runs)
    for config, size, (params, flops), sec in zip(args.config, sizes,
                                                  counts, seconds):
        print(f'config: {config}\ninput: 3x{size}x{size}\n'
              f'params: {params / 1e6:.2f} M\n'
              f'GFLOPs: {flops / 1e9:.2f} (one multiply-add = one FLOP)')
        if sec is not None:
            print(f'latency: {sec * 1e3:.0f} ms/image (median of {args.runs} '
                  f'inference_detector calls on a {args.image_size[0]}x'
                  f'{args.image_size[1]} image, {torch.get_num_threads()} '
                  'CPU threads)')
    print('\n| config | input | params (M) | GFLOPs | CPU latency (ms) |\n'
          '|---|---|---|---|---|')
    for config, size, (params, flops), sec in zip(args.config, sizes,
                                                  counts, seconds):
        print(markdown_row(config, size, params, flops, sec))


if __name__ == '__main__':
    main()
