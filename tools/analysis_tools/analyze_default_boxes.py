"""How well a config's default boxes cover its dataset, and a fit that helps.

Reads a split through the config's test pipeline, builds the model for the
feature maps it produces and its default boxes on them, and reports, at the
assigner's ``pos_iou_thr``: recall overall, per COCO size bucket (at the
input), per class and per level; the ground truth no default box reaches;
default boxes that match nothing (:mod:`ssd_plugin.analysis.coverage`).
Plots (PNG) and ``--json`` carry the same numbers.

``--fit`` proposes per-level min/max sizes and aspect ratios (same boxes per
location unless ``--num-ratios``) that raise that recall, writes a leaf
config that inherits CONFIG and overrides only the default-box generator,
and prints recall before and after.

Usage::

    python tools/analysis_tools/analyze_default_boxes.py CONFIG
        [--split train|val] [--out DIR] [--json OUT.json] [--fit]
        [--fit-config OUT.py] [--num-ratios K ...] [--cfg-options k=v ...]
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import List, Optional

import ssd_plugin  # noqa: F401  (registers the model and datasets)
from ssd_plugin.analysis import coverage
from ssd_plugin.analysis.coverage_plots import (plot_best_iou, plot_matches,
                                                plot_shapes)
from ssd_plugin.utils.config import add_cfg_options, load_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--split', choices=('train', 'val'), default='train')
    parser.add_argument('--out', help='folder for the PNGs (default '
                        'work_dirs/analyze_default_boxes/<config name>)')
    parser.add_argument('--json', help='write the numbers to this file')
    parser.add_argument('--fit', action='store_true',
                        help='fit min/max sizes and ratios, write a leaf '
                        'config')
    parser.add_argument('--fit-config', help='where --fit writes the leaf '
                        'config (default <config dir>/<name>_fitted.py)')
    parser.add_argument('--num-ratios', type=int, nargs='+',
                        help='--fit: ratios per level (changes the boxes '
                        'per location, 2 + 2K); default: the config\'s')
    add_cfg_options(parser, 'override config keys, e.g. '
                    'train_dataloader.dataset.data_root=data/x/')
    return parser.parse_args(argv)


def run_fit(args: argparse.Namespace, cfg, analysis: coverage.Analysis,
            before: dict, out: str) -> dict:
    """``--fit``: fit, report after, write the leaf config; the JSON part."""
    thr = before['pos_iou_thr']
    fitted = coverage.fit(cfg, analysis, thr, args.num_ratios)
    generator, priors = coverage.fitted_boxes(cfg, analysis, fitted)
    after = analysis.report(thr, priors)
    plot_shapes(analysis.ground_truth['boxes'], priors,
                generator.num_base_priors,
                osp.join(out, 'shapes_fitted.png'),
                'Ground truth and fitted default-box shapes')
    note = (f'Recall at IoU >= {thr} on the {args.split} split '
            f'({before["num_gt"]} boxes): {coverage.fmt(before["recall"])} '
            f'-> {coverage.fmt(after["recall"])}.')
    path = args.fit_config or osp.join(
        osp.dirname(args.config),
        osp.splitext(osp.basename(args.config))[0] + '_fitted.py')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write(coverage.leaf_config_text(args.config, path, fitted, note))
    print(f'\n--fit: {note}\nfitted min_sizes {fitted["min_sizes"]}, '
          f'max_sizes {fitted["max_sizes"]}, ratios {fitted["ratios"]}\n'
          f'after the fit:\n{coverage.format_report(after)}\n'
          f'leaf config: {path}')
    return dict(fitted, config=path, recall_before=before['recall'],
                recall_after=after['recall'],
                after={k: v for k, v in after.items() if k != 'per_gt'})


def main(argv: Optional[List[str]] = None) -> int:
    """Analyse, plot, optionally fit; print and write the report."""
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    thr = coverage.pos_iou_thr(cfg)
    analysis = coverage.analyse(cfg, args.split)
    report = analysis.report(thr)
    report.update(config=args.config, split=args.split,
                  input_shape=list(analysis.input_shape),
                  num_images=analysis.ground_truth['num_images'],
                  num_ignored=analysis.ground_truth['num_ignored'])
    print(coverage.format_report(report))
    out = args.out or osp.join('work_dirs', 'analyze_default_boxes',
                               osp.splitext(osp.basename(args.config))[0])
    os.makedirs(out, exist_ok=True)
    plot_shapes(analysis.ground_truth['boxes'], analysis.priors,
                analysis.generator.num_base_priors,
                osp.join(out, 'shapes.png'))
    plot_best_iou(report, osp.join(out, 'best_iou.png'))
    plot_matches(report, osp.join(out, 'matches_per_level.png'))
    print(f'plots: {out}/{{shapes,best_iou,matches_per_level}}.png')
    if args.fit:
        report['fit'] = run_fit(args, cfg, analysis, report, out)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)
        print(f'numbers: {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
