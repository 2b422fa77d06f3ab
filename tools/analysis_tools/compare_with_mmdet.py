"""Train a config and its MMDetection SSD counterpart identically; print mAPs.

The counterpart (:mod:`ssd_plugin.analysis.mmdet_comparison`) has mmdet's
neck, head, anchor generator with our default boxes, SSD ``train_cfg`` and
augmentation, with our settings; the rest stays. Both are evaluated on the
config's test set with its ``CocoMetric``. ``--variants`` adds
``ours+photometric``, ``ours+expand``, ``ours+crop``: our model with one of
mmdet's three transforms in place of ours, one change at a time; and
``ours+mmdet_aug`` (all three) and ``mmdet+ours_aug`` (mmdet's model, our
augmentation). ``--crop-stats`` instead runs both train pipelines on the
same images and prints what the crops do. Examples::

    python tools/analysis_tools/compare_with_mmdet.py \\
        configs/quickstart/ssd_shapes.py --seeds 0 1 2 \\
        --variants ours mmdet ours+photometric ours+expand
    python tools/analysis_tools/compare_with_mmdet.py CONFIG --variants ours \\
        --cfg-options train_dataloader.dataset.pipeline.4.constraint=any
    python tools/analysis_tools/compare_with_mmdet.py CONFIG --crop-stats 2000
"""
import argparse
import json
import os.path as osp
from typing import Dict, List, Optional

import ssd_plugin  # noqa: F401  (registers our components)
from ssd_plugin.analysis.mmdet_comparison import (VARIANTS, crop_statistics,
                                                  summary_lines,
                                                  train_and_test,
                                                  variant_config)
from ssd_plugin.utils.config import add_cfg_options, load_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='a config of ours, e.g. the quickstart')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument(
        '--variants', nargs='+', choices=VARIANTS, default=['ours', 'mmdet'],
        help="which to train; 'ours+X': our model with mmdet's X transform")
    parser.add_argument('--work-dir', default=None,
                        help='default: work_dirs/compare_with_mmdet/<config>')
    parser.add_argument('--crop-stats', type=int, default=0, metavar='N',
                        help='instead of training, crop N train samples '
                        'with each variant and print the statistics')
    add_cfg_options(parser, 'override config values for both variants, '
                    'key=value (e.g. train_cfg.max_epochs=12 '
                    'train_dataloader.dataset.pipeline.4.constraint=any)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    """Train and test each variant per seed, or print crop statistics."""
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    if args.crop_stats:
        for variant, stats in crop_statistics(cfg, args.crop_stats).items():
            print(variant, ' '.join(f'{k} {v:.3f}' for k, v in stats.items()))
        return
    if cfg.test_evaluator.get('type', '').split('.')[-1] != 'CocoMetric':
        raise ValueError(f'compare_with_mmdet reads CocoMetric results, the '
                         f'config tests with {cfg.test_evaluator.type}')
    work_dir = args.work_dir or osp.join(
        'work_dirs', 'compare_with_mmdet',
        osp.splitext(osp.basename(args.config))[0])
    configs = {v: variant_config(cfg, v) for v in args.variants}
    results: Dict[str, Dict[int, dict]] = {v: {} for v in args.variants}
    for seed in args.seeds:
        for variant in args.variants:
            results[variant][seed] = train_and_test(configs[variant], variant,
                                                    seed, work_dir)
            with open(osp.join(work_dir, 'results.json'), 'w') as f:
                json.dump(results, f, indent=1)
    print('\n'.join(summary_lines(results)))


if __name__ == '__main__':
    main()
