"""Time SSD training steps on the CPU: bf16 autocast against float32.

One process, one model: rounds alternate float32 and bf16 (the first of a
round alternates too) so that load from other processes hits both alike.
A step is forward, loss, backward and an SGD step on a synthetic batch
(``--batch`` images at the config's input size, three boxes each).

Usage::

    python tools/analysis_tools/benchmark_train_step.py
        [--config configs/ssd/ssd300_coco.py] [--batch 4] [--steps 2]
        [--rounds 3] [--threads N]
"""
import argparse
import statistics
import time
from typing import Dict, List

import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

import ssd_plugin  # noqa: F401  (registers ssd_plugin's modules)
from ssd_plugin.registry import MODELS


def synthetic_batch(batch: int, size: int, seed: int = 0) -> dict:
    """``batch`` uint8 ``(3, size, size)`` images, three boxes each."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=gen,
                                    dtype=torch.uint8))
        xy = torch.rand(3, 2, generator=gen) * size * 0.6
        wh = (torch.rand(3, 2, generator=gen) * 0.3 + 0.1) * size
        sample = DetDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size),
            scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], 1),
            labels=torch.randint(0, 3, (3, ), generator=gen))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def time_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               data: dict, steps: int, bf16: bool) -> float:
    """Seconds per training step, averaged over ``steps``."""
    start = time.perf_counter()
    for _ in range(steps):
        batch = model.data_preprocessor(data, training=True)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            losses = model(**batch, mode='loss')
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default='configs/ssd/ssd300_coco.py')
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--steps', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    with DefaultScope.overwrite_default_scope('ssd_plugin'):
        model = MODELS.build(cfg.model)
    model.train()  # PyTorch's init: the step time does not depend on it
    size = cfg.model.bbox_head.prior_generator.input_size
    data = synthetic_batch(args.batch, size)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    for bf16 in (False, True):  # warm-up: allocator, MKL-DNN kernels
        time_steps(model, optimizer, data, 1, bf16)
    times: Dict[str, List[float]] = dict(float32=[], bf16=[])
    for r in range(args.rounds):
        for bf16 in ((False, True) if r % 2 == 0 else (True, False)):
            name = 'bf16' if bf16 else 'float32'
            times[name].append(time_steps(model, optimizer, data,
                                          args.steps, bf16))
            print(f'round {r}: {name} {times[name][-1]:.3f} s/step',
                  flush=True)
    print(f'{args.config}, batch {args.batch}, {torch.get_num_threads()} '
          f'threads, {args.rounds} rounds of {args.steps} steps')
    for name, values in times.items():
        print(f'{name:8s} median {statistics.median(values):.3f} s/step '
              f'(min {min(values):.3f}, max {max(values):.3f})')
    ratio = statistics.median(times['float32']) / statistics.median(
        times['bf16'])
    print(f'bf16 speed-up over float32: {ratio:.2f}x')


if __name__ == '__main__':
    main()
