"""Time SSD training steps on the CPU: bf16 autocast against float32
(``tools/analysis_tools/benchmark_train_step.py``).

One model, the two precisions interleaved on a synthetic batch
(:func:`synthetic_batch`); a step is forward, loss, backward and SGD.
"""
from functools import partial
from typing import Dict, List, Optional, Tuple

import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from ssd_plugin.registry import MODELS
from ssd_plugin.utils.benchmark import (check_timing_args, report_rounds,
                                        set_process_threads, time_interleaved)
from ssd_plugin.utils.config import load_config
from ssd_plugin.utils.network_input import config_input_size
from ssd_runtime.machine import describe_machine


def synthetic_batch(batch: int, size: Tuple[int, int],
                    seed: int = 0) -> dict:
    """``batch`` uint8 ``(3, H, W)`` images of ``size`` ``(H, W)``, three
    boxes each."""
    gen = torch.Generator().manual_seed(seed)
    height, width = size
    scale = torch.tensor([width, height])
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, height, width),
                                    generator=gen, dtype=torch.uint8))
        xy = torch.rand(3, 2, generator=gen) * scale * 0.6
        wh = (torch.rand(3, 2, generator=gen) * 0.3 + 0.1) * scale
        sample = DetDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width),
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


def run(config: str, batch: int = 4, steps: int = 2, rounds: int = 3,
        threads: Optional[int] = None,
        cfg_options: Optional[dict] = None) -> Dict[str, List[float]]:
    """Time the steps; print and return the per-round speed-ups over
    float32.

    Args:
        config (str): The model's config (its input size, from the test
            pipeline).
        batch (int): Images per step.
        steps (int): Timed steps per round and precision.
        rounds (int): Interleaved rounds.
        threads (int, optional): torch threads (None: torch's default).
        cfg_options (dict, optional): Overrides of ``config``.
    """
    check_timing_args(rounds, threads)
    set_process_threads(threads)
    print(describe_machine(torch.get_num_threads(), modules=('torch', )))
    cfg = load_config(config, cfg_options)
    model = MODELS.build(cfg.model)
    model.train()  # PyTorch's init: the step time does not depend on it
    size = config_input_size(cfg)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    step = partial(train_step, model, optimizer)
    print(f'{config}, batch {batch}, {torch.get_num_threads()} threads, '
          f'{rounds} rounds of {steps} steps')
    # Warm-up (allocator, MKL-DNN kernels): one untimed step of each.
    times = time_interleaved(
        dict(float32=partial(step, bf16=False), bf16=partial(step, bf16=True)),
        [synthetic_batch(batch, size)] * steps, rounds)
    return report_rounds(times, rounds, 'float32', unit='ms/step')
