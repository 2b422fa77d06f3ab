"""Evaluate a checkpoint: config -> mmengine ``Runner`` -> ``runner.test()``.

MMDetection 3.3's ``tools/test.py`` plus DDP on the CPU (``_launch.py``).
"""
import argparse
import os.path as osp
from typing import List, Optional

from mmengine.config import Config

from _launch import config_from_args, launched, parse
from mmdet.engine.hooks.utils import trigger_visualization_hook
from mmdet.evaluation import DumpDetResults


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump predictions to a .pkl file')
    parser.add_argument('--show', action='store_true',
                        help='show the predictions in a window')
    parser.add_argument('--show-dir',
                        help='save drawn predictions under work_dir/<time>/')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='seconds each image is shown with --show')
    return parse(parser, argv)


def build_config(args: argparse.Namespace) -> Config:
    """The config file with the command line's overrides applied."""
    cfg = config_from_args(args)
    if '://' not in args.checkpoint and not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'checkpoint {args.checkpoint!r} does not exist; train first '
            '(tools/train.py writes work_dir/iter_N.pth) or fix the path')
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)  # mmdet's own helper
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out {args.out!r} must end in .pkl or .pickle')
    return cfg


def main(argv: Optional[List[str]] = None) -> dict:
    """Parse, build the runner and test; return the metrics."""
    args = parse_args(argv)
    cfg = build_config(args)
    with launched(cfg) as runner:
        if args.out is not None:
            # As mmdet 3.3's tools/test.py: a metric that only dumps results.
            runner.test_evaluator.metrics.append(
                DumpDetResults(out_file_path=args.out))
        return runner.test()


if __name__ == '__main__':
    main()
