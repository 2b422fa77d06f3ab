"""Train a detector: config -> mmengine ``Runner`` -> ``runner.train()``.

MMDetection 3.3's ``tools/train.py`` (``mim train mmdet`` behaves alike) plus
DDP on the CPU (``_launch.py``), bf16 ``--amp`` on the CPU and
``--amp-dtype`` (docs/gpu.md).
"""
import argparse
import logging
from typing import List, Optional

from mmengine.config import Config
from mmengine.device import get_device
from mmengine.logging import print_log

from _launch import config_from_args, launched, parse
from ssd_plugin.engine.amp import AMP_DTYPES, amp_optim_wrapper


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: AmpOptimWrapper (float16 by '
                        'default) on CUDA, CPUAmpOptimWrapper (bfloat16) on '
                        'the CPU')
    parser.add_argument('--amp-dtype', choices=AMP_DTYPES,
                        help='with --amp: the autocast dtype (bfloat16 on '
                        'CUDA: no loss scaling; the CPU takes bfloat16 only)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the LR by the total batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='a checkpoint path to resume from; with no value, resume from '
        'the latest checkpoint in the work dir')
    return parse(parser, argv)


def enable_amp(cfg: Config, device: str,
               dtype: Optional[str] = None) -> None:
    """``cfg.optim_wrapper`` to the AMP wrapper of ``device`` in ``dtype``
    (:func:`ssd_plugin.engine.amp.amp_optim_wrapper`), its note logged."""
    cfg.optim_wrapper, note = amp_optim_wrapper(cfg.optim_wrapper, device,
                                                dtype)
    if note:
        print_log(note, logger='current', level=logging.WARNING)


def build_config(args: argparse.Namespace) -> Config:
    """The config file with the command line's overrides applied.

    Priority: ``--cfg-options`` < ``--work-dir``/``--amp``/``--resume``.
    ``--amp`` picks its wrapper for the device training will run on.
    """
    cfg = config_from_args(args)
    if args.amp_dtype is not None and not args.amp:
        raise ValueError(f'--amp-dtype {args.amp_dtype} needs --amp; add it')
    if args.amp:
        enable_amp(cfg, get_device(), args.amp_dtype)
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
