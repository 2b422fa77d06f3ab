"""Time SSD training steps on the CPU: bf16 autocast against float32.

One model, the two precisions interleaved on a synthetic batch
(:func:`synthetic_batch`); a step is forward, loss, backward and SGD.
"""
import argparse
from functools import partial
from typing import Dict, List, Optional, Sequence

import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

import ssd_plugin  # noqa: F401  (registers ssd_plugin's modules)
from ssd_plugin.registry import MODELS
from ssd_plugin.utils.benchmark import (add_timing_args, check_timing,
                                        report_rounds, time_interleaved)
from ssd_runtime.machine import describe_machine


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


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               data: dict, bf16: bool) -> None:
    """Forward, loss, backward and an SGD step, under bf16 autocast or not."""
    batch = model.data_preprocessor(data, training=True)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        losses = model(**batch, mode='loss')
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, List[float]]:
    """Time the steps with ``argv``'s options (default ``sys.argv``); print
    and return the per-round speed-ups over float32."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default='configs/ssd/ssd300_coco.py')
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--steps', type=int, default=2,
                        help='timed steps per round and precision')
    add_timing_args(parser, rounds=3, threads=None)
    args = parser.parse_args(argv)
    check_timing(args.rounds, args.threads)
    print(describe_machine(torch.get_num_threads(), modules=('torch', )))
    cfg = Config.fromfile(args.config)
    with DefaultScope.overwrite_default_scope('ssd_plugin'):
        model = MODELS.build(cfg.model)
    model.train()  # PyTorch's init: the step time does not depend on it
    size = cfg.model.bbox_head.prior_generator.input_size
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    step = partial(train_step, model, optimizer)
    print(f'{args.config}, batch {args.batch}, {torch.get_num_threads()} '
          f'threads, {args.rounds} rounds of {args.steps} steps')
    # Warm-up (allocator, MKL-DNN kernels): one untimed step of each.
    times = time_interleaved(
        dict(float32=partial(step, bf16=False), bf16=partial(step, bf16=True)),
        [synthetic_batch(args.batch, size)] * args.steps, args.rounds)
    return report_rounds(times, args.rounds, 'float32', unit='ms/step')


if __name__ == '__main__':
    main()
