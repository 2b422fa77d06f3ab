"""Train a detector: config -> mmengine ``Runner`` -> ``runner.train()``.

Mirrors MMDetection 3.3's ``tools/train.py`` (so ``mim train mmdet`` and this
script behave alike). The plugin's components are registered by the config's
``custom_imports``; the script itself only adds DDP on the CPU
(``ssd_plugin.engine.cpu_ddp``) and ``--resume`` with or without a path.
Examples::

    python tools/train.py configs/ssd/ssd300_coco.py --work-dir work_dirs/x
    python tools/train.py CONFIG --resume             # latest in work_dir
    python tools/train.py CONFIG --resume work_dirs/x/iter_10000.pth
    bash tools/dist_train.sh CONFIG 2                  # DDP via torchrun
"""
import argparse
import logging
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ssd_plugin.engine.cpu_ddp import setup_cpu_ddp

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (AmpOptimWrapper)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the LR by the total batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='a checkpoint path to resume from; with no value, resume from '
        'the latest checkpoint in the work dir')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config values, key=value (e.g. '
        'train_cfg.max_epochs=2 "model.bbox_head.num_classes=4")')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none',
                        help='job launcher (pytorch: torchrun)')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def default_work_dir(config: str) -> str:
    """``./work_dirs/<config name>``, mmdet's default."""
    return osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])


def enable_amp(cfg: Config) -> None:
    """Switch ``cfg.optim_wrapper`` to ``AmpOptimWrapper`` (dynamic scale).

    Raises:
        ValueError: If the wrapper is neither ``OptimWrapper`` nor already
            ``AmpOptimWrapper``.
    """
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper == 'AmpOptimWrapper':
        print_log('AMP training is already enabled in your config.',
                  logger='current', level=logging.WARNING)
        return
    if wrapper != 'OptimWrapper':
        raise ValueError(f'--amp needs optim_wrapper.type="OptimWrapper", '
                         f'got {wrapper!r}; drop --amp or use OptimWrapper')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def build_config(args: argparse.Namespace) -> Config:
    """The config file with the command line's overrides applied.

    Priority: ``--cfg-options`` < ``--work-dir``/``--amp``/``--resume``.
    """
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = default_work_dir(args.config)
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


def build_runner(cfg: Config) -> Runner:
    """``Runner.from_cfg``, or the registered ``cfg.runner_type``."""
    setup_cpu_ddp(cfg)  # no-op with CUDA or without a launcher
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    # Look the runner up in the config's scope (e.g. ssd_plugin).
    cfg._scope_ = cfg.get('default_scope')
    return RUNNERS.build(cfg)


def main(argv: Optional[List[str]] = None) -> None:
    """Parse, build the runner and train."""
    build_runner(build_config(parse_args(argv))).train()


if __name__ == '__main__':
    main()
