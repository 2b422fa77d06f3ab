"""Train a detector: config -> mmengine ``Runner`` -> ``runner.train()``.

MMDetection 3.3's ``tools/train.py`` (``mim train mmdet`` behaves alike) plus
DDP on the CPU (``_launch.py``) and bf16 ``--amp`` on the CPU (README "Train
and test").
"""
import argparse
import logging
from typing import List, Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from _launch import config_from_args, launched, parse


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (AmpOptimWrapper): float16 on '
                        'CUDA, bfloat16 on the CPU')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the LR by the total batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='a checkpoint path to resume from; with no value, resume from '
        'the latest checkpoint in the work dir')
    return parse(parser, argv)


def enable_amp(cfg: Config) -> None:
    """``cfg.optim_wrapper`` to mmengine's ``AmpOptimWrapper`` (float16,
    dynamic loss scale) on CUDA, our ``CPUAmpOptimWrapper`` (bfloat16) on the
    CPU; ValueError for a wrapper other than ``OptimWrapper``."""
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper in ('AmpOptimWrapper', 'CPUAmpOptimWrapper'):
        print_log('AMP training is already enabled in your config.',
                  logger='current', level=logging.WARNING)
        return
    if wrapper != 'OptimWrapper':
        raise ValueError(f'--amp needs optim_wrapper.type="OptimWrapper", '
                         f'got {wrapper!r}; drop --amp or use OptimWrapper')
    if torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    else:
        cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'


def build_config(args: argparse.Namespace) -> Config:
    """The config file with the command line's overrides applied.

    Priority: ``--cfg-options`` < ``--work-dir``/``--amp``/``--resume``.
    """
    cfg = config_from_args(args)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise ValueError('--auto-scale-lr needs auto_scale_lr = dict('
                             'enable=False, base_batch_size=N) in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def main(argv: Optional[List[str]] = None) -> None:
    """Parse, build the runner and train."""
    cfg = build_config(parse_args(argv))
    with launched(cfg) as runner:
        runner.train()


if __name__ == '__main__':
    main()
