"""How well a config's default boxes cover its dataset, and a fit that helps.

Reads a split of the config's dataset through its test pipeline (the resize
to the network input, no random augmentation), builds the model to get the
feature-map sizes it actually produces and the default boxes of its prior
generator on them, and reports, at the assigner's ``pos_iou_thr``
(``IoU >= thr``, as mmdet's ``MaxIoUAssigner``): recall overall, per COCO
size bucket (at the input), per class and per level; the ground truth no
default box reaches; default boxes that match nothing. Plots (PNG) and
``--json`` carry the same numbers (:func:`ssd_plugin.analysis.default_boxes.
coverage_report`).

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
import copy
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib
import torch
from mmdet.structures.bbox import get_box_tensor
from mmengine.config import Config, DictAction
from mmengine.utils import ProgressBar

import ssd_plugin  # noqa: F401  (registers the model and datasets)
from ssd_plugin.analysis.dataset_check import leaf_datasets
from ssd_plugin.analysis.default_boxes import (coverage_report, data_ratios,
                                               fit_default_boxes)
from ssd_plugin.models.default_box_generator import DefaultBoxGenerator
from ssd_plugin.registry import DATASETS, MODELS, TASK_UTILS
from ssd_plugin.utils.config import load_config

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

SHOWN = 10  # unreachable ground truth printed (the JSON has all)


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
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. '
                        'train_dataloader.dataset.data_root=data/x/')
    return parser.parse_args(argv)


def analysis_pipeline(test_pipeline: Sequence[dict]) -> List[dict]:
    """The test pipeline with boxes loaded before the resize, unpacked.

    mmdet's test pipelines load annotations after ``Resize`` (evaluation
    wants original coordinates); here the boxes must be at the input, so
    ``LoadAnnotations`` moves right after ``LoadImageFromFile`` and
    ``PackDetInputs`` goes: the dataset returns the results dict.
    """
    steps = [dict(s) for s in test_pipeline
             if not s['type'].endswith('PackDetInputs')]
    loads = [s for s in steps if s['type'].endswith('LoadAnnotations')]
    if not loads or not steps[0]['type'].endswith('LoadImageFromFile'):
        raise ValueError(
            'the test pipeline must start with LoadImageFromFile and hold '
            f'LoadAnnotations, got {[s["type"] for s in test_pipeline]}')
    rest = [s for s in steps[1:] if s is not loads[0]]
    return [steps[0], dict(loads[0], with_bbox=True)] + rest


def build_dataset(cfg: Config, split: str):
    """The split's dataset with the test-time pipeline of the analysis."""
    test_leaf = leaf_datasets(cfg.test_dataloader.dataset)[0]
    pipeline = analysis_pipeline(test_leaf['pipeline'])
    dataset_cfg = copy.deepcopy(cfg[f'{split}_dataloader'].dataset)
    for leaf in leaf_datasets(dataset_cfg):
        leaf['pipeline'] = pipeline
    return DATASETS.build(dataset_cfg)


def read_ground_truth(dataset) -> Dict[str, object]:
    """Every non-ignored box of ``dataset`` at the input, with a progress bar.

    Returns:
        dict: ``boxes`` ``(G, 4)``, ``labels`` and ``images`` (G each),
        ``num_images``, ``num_ignored`` (e.g. VOC difficult, which the
        assigner never sees), ``input_shapes`` (the distinct ``(h, w)``).
    """
    boxes, labels, images, shapes, ignored = [], [], [], set(), 0
    bar = ProgressBar(len(dataset), file=sys.stdout)
    for index in range(len(dataset)):
        results = dataset[index]
        keep = ~torch.as_tensor(results['gt_ignore_flags'], dtype=torch.bool)
        found = get_box_tensor(results['gt_bboxes']).reshape(-1, 4)
        boxes.append(torch.as_tensor(found, dtype=torch.float32)[keep])
        labels += torch.as_tensor(results['gt_bboxes_labels'])[keep].tolist()
        images += [results['img_path']] * int(keep.sum())
        ignored += int((~keep).sum())
        shapes.add(tuple(results['img_shape'][:2]))
        bar.update()
    sys.stdout.write('\n')
    return dict(boxes=torch.cat(boxes) if boxes else torch.zeros(0, 4),
                labels=labels, images=images, num_images=len(dataset),
                num_ignored=ignored, input_shapes=sorted(shapes))


def model_priors(cfg: Config, input_shape: Tuple[int, int]):
    """The model's prior generator, feature-map sizes and default boxes.

    The maps are those the built backbone and neck produce on a zero input
    of ``input_shape``, so the boxes are the ones the head trains with.

    Returns:
        tuple: (generator, ``[(H, W)]`` per level, ``[(P_l, 4)]`` boxes).
    """
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(1, 3, *input_shape))
    featmaps = [tuple(f.shape[-2:]) for f in feats]
    generator = model.bbox_head.prior_generator
    # mmdet's own generators take no input_shape; ours uses it for steps.
    extra = dict(input_shape=input_shape) if isinstance(
        generator, DefaultBoxGenerator) else {}
    priors = generator.grid_priors(featmaps, device='cpu', **extra)
    return generator, featmaps, [get_box_tensor(p) for p in priors]


def plot_shapes(gt: torch.Tensor, level_priors: Sequence[torch.Tensor],
                num_base: Sequence[int], path: str,
                title: str = 'Ground truth and default-box shapes') -> None:
    """Ground-truth width/height (log axes), each level's box shapes over."""
    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=80)
    wh = gt[:, 2:] - gt[:, :2]
    ax.scatter(wh[:, 0], wh[:, 1], s=4, c='0.6', alpha=0.5,
               label='ground truth', rasterized=True)
    colours = plt.get_cmap('viridis')
    for level, (priors, count) in enumerate(zip(level_priors, num_base)):
        shapes = priors[:count, 2:] - priors[:count, :2]  # one location
        ax.scatter(shapes[:, 0], shapes[:, 1], s=40, marker='x',
                   color=colours(level / max(len(num_base) - 1, 1)),
                   label=f'level {level} default boxes')
    ax.set(xscale='log', yscale='log', xlabel='width at input (px)',
           ylabel='height at input (px)', title=title)
    ax.legend(fontsize=7, loc='upper left')
    _save(fig, path)


def plot_best_iou(report: dict, path: str) -> None:
    """Histogram of each ground truth's best IoU, threshold marked."""
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=80)
    ax.hist([g['best_iou'] for g in report['per_gt']], bins=40,
            range=(0, 1), color='tab:blue')
    ax.axvline(report['pos_iou_thr'], color='tab:red', linestyle='--',
               label=f'pos_iou_thr {report["pos_iou_thr"]}')
    ax.set(xlabel='best IoU with any default box', ylabel='ground truth',
           title=f'Best IoU (recall {_fmt(report["recall"])})')
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_matches(report: dict, path: str) -> None:
    """Matched (ground truth, default box) pairs and recall per level."""
    levels = report['recall_per_level']
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=80)
    names = [f'{k}\n{v["featmap"][0]}x{v["featmap"][1]}'
             for k, v in levels.items()]
    ax.bar(names, [v['matched_pairs'] for v in levels.values()],
           color='tab:green')
    ax.set(xlabel='level (feature map)', ylabel='matched pairs',
           title='Matches per level (IoU >= threshold)')
    _save(fig, path)


def _save(fig, path: str) -> None:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fmt(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.3f}'


def format_report(report: dict, shown: int = SHOWN) -> str:
    """The printed summary of :func:`coverage_report`'s dict."""
    lines = [f'{report["num_gt"]} ground truth boxes; recall at IoU >= '
             f'{report["pos_iou_thr"]}: {_fmt(report["recall"])} (mean best '
             f'IoU {_fmt(report["mean_best_iou"])})']
    for key, title in (('recall_per_size', 'size'),
                       ('recall_per_class', 'class')):
        lines.append(f'per {title}: ' + ', '.join(
            f'{k} {_fmt(v["recall"])} ({v["num_gt"]})'
            for k, v in report[key].items()))
    for level, v in report['recall_per_level'].items():
        lines.append(
            f'level {level} {v["featmap"][0]}x{v["featmap"][1]}: recall '
            f'{_fmt(v["recall"])}, {v["matched_pairs"]} matched pairs, '
            f'{v["unmatched_priors"]}/{v["num_priors"]} default boxes match '
            'nothing')
    missed = report['unreachable']
    lines.append(f'{len(missed)} ground truth no default box reaches'
                 + (f' (first {shown}):' if len(missed) > shown else ':'))
    lines += [f'  {g["image"]} {g["label"]} box {g["box"]} best IoU '
              f'{g["best_iou"]}' for g in missed[:shown]]
    return '\n'.join(lines)


def pos_iou_thr(cfg: Config) -> float:
    """The assigner's positive threshold from ``model.train_cfg``."""
    assigner = cfg.model.get('train_cfg', {}).get('assigner', {})
    if 'pos_iou_thr' not in assigner:
        raise ValueError(
            'model.train_cfg.assigner has no pos_iou_thr (got '
            f'{dict(assigner)}); the analysis needs a MaxIoUAssigner-style '
            'threshold, e.g. pos_iou_thr=0.5 as in SSD')
    return float(assigner['pos_iou_thr'])


def fit(cfg: Config, generator: DefaultBoxGenerator,
        featmaps: Sequence[Tuple[int, int]], input_shape: Tuple[int, int],
        gt: torch.Tensor, thr: float,
        num_ratios: Optional[Sequence[int]] = None,
        max_gt: int = 20000) -> dict:
    """Fitted ``prior_generator`` overrides (min/max sizes, ratios).

    At most ``max_gt`` ground truth (a seeded random subset) drive the
    search; the reports before and after use all of them.
    """
    if not isinstance(generator, DefaultBoxGenerator):
        raise ValueError(f'--fit needs DefaultBoxGenerator, the config has '
                         f'{type(generator).__name__}')
    levels = generator.num_levels
    ratios = [tuple(r) for r in generator.ratios]
    if num_ratios is not None:
        if len(num_ratios) != levels or min(num_ratios) < 0:
            raise ValueError(f'--num-ratios {list(num_ratios)}: give {levels}'
                             ' counts >= 0, one per level')
        ratios = [data_ratios(gt, k) for k in num_ratios]
    base = dict(cfg.model.bbox_head.prior_generator)

    def priors_fn(level, min_size, max_size, level_ratios):
        mins, maxs = list(generator.min_sizes), list(generator.max_sizes)
        mins[level], maxs[level] = min_size, max_size
        rats = list(ratios)
        rats[level] = level_ratios
        built = TASK_UTILS.build(dict(base, min_sizes=mins, max_sizes=maxs,
                                      ratios=rats))
        return get_box_tensor(built.single_level_grid_priors(
            featmaps[level], level, device='cpu', input_shape=input_shape))

    if len(gt) > max_gt:
        pick = torch.randperm(len(gt), generator=torch.Generator()
                              .manual_seed(0))[:max_gt]
        gt = gt[pick]
    mins, maxs, rats = fit_default_boxes(
        gt, priors_fn, generator.min_sizes, generator.max_sizes, ratios, thr,
        max(input_shape))
    return dict(min_sizes=mins, max_sizes=maxs, ratios=rats)


def leaf_config_text(base: str, out: str, fitted: dict, note: str) -> str:
    """A leaf config inheriting ``base`` that overrides only the boxes."""
    rel = osp.relpath(osp.abspath(base), osp.dirname(osp.abspath(out)))
    ratios = tuple(tuple(r) for r in fitted['ratios'])
    return (
        f'"""Default boxes fitted by analyze_default_boxes.py --fit.\n\n'
        f'{note}\n"""\n'
        f'_base_ = [{rel!r}]\n\n'
        'model = dict(bbox_head=dict(prior_generator=dict(\n'
        f'    min_sizes={tuple(fitted["min_sizes"])!r},\n'
        f'    max_sizes={tuple(fitted["max_sizes"])!r},\n'
        # Explicit sizes win over the base's scale_range/first_level.
        f'    ratios={ratios!r})))\n')


def run_fit(args: argparse.Namespace, cfg: Config, context: dict,
            before: dict) -> dict:
    """``--fit``: fit, report after, write the leaf config; the JSON part."""
    fitted = fit(cfg, context['generator'], context['featmaps'],
                 context['input_shape'], context['data']['boxes'],
                 before['pos_iou_thr'], args.num_ratios)
    built = TASK_UTILS.build(dict(cfg.model.bbox_head.prior_generator,
                                  **fitted))
    priors = [get_box_tensor(p) for p in built.grid_priors(
        context['featmaps'], device='cpu',
        input_shape=context['input_shape'])]
    after = _report(context, priors, before['pos_iou_thr'])
    plot_shapes(context['data']['boxes'], priors, built.num_base_priors,
                osp.join(context['out'], 'shapes_fitted.png'),
                'Ground truth and fitted default-box shapes')
    note = (f'Recall at IoU >= {before["pos_iou_thr"]} on the {args.split} '
            f'split ({before["num_gt"]} boxes): {_fmt(before["recall"])} -> '
            f'{_fmt(after["recall"])}.')
    path = args.fit_config or osp.join(
        osp.dirname(args.config),
        osp.splitext(osp.basename(args.config))[0] + '_fitted.py')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write(leaf_config_text(args.config, path, fitted, note))
    print(f'\n--fit: {note}\nfitted min_sizes {fitted["min_sizes"]}, '
          f'max_sizes {fitted["max_sizes"]}, ratios {fitted["ratios"]}\n'
          f'after the fit:\n{format_report(after)}\nleaf config: {path}')
    return dict(fitted, config=path, recall_before=before['recall'],
                recall_after=after['recall'],
                after={k: v for k, v in after.items() if k != 'per_gt'})


def _report(context: dict, priors: Sequence[torch.Tensor],
            thr: float) -> dict:
    data = context['data']
    return coverage_report(data['boxes'], data['labels'], data['images'],
                           priors, context['featmaps'], thr,
                           context['classes'])


def analyse(cfg: Config, split: str) -> dict:
    """Read the split and build the model's boxes: the analysis context."""
    dataset = build_dataset(cfg, split)
    data = read_ground_truth(dataset)
    if len(data['input_shapes']) != 1:
        raise ValueError(
            f'the {split} split has input shapes {data["input_shapes"]}; '
            'need exactly one: an empty split has none, and SSD resizes '
            'every image to the input (Resize with keep_ratio=False)')
    input_shape = data['input_shapes'][0]
    generator, featmaps, priors = model_priors(cfg, input_shape)
    return dict(data=data, generator=generator, featmaps=featmaps,
                priors=priors, input_shape=input_shape,
                classes=tuple(dataset.metainfo['classes']))


def main(argv: Optional[List[str]] = None) -> int:
    """Analyse, plot, optionally fit; print and write the report."""
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    thr = pos_iou_thr(cfg)
    context = analyse(cfg, args.split)
    report = _report(context, context['priors'], thr)
    report.update(config=args.config, split=args.split,
                  input_shape=list(context['input_shape']),
                  num_images=context['data']['num_images'],
                  num_ignored=context['data']['num_ignored'])
    print(format_report(report))
    out = args.out or osp.join('work_dirs', 'analyze_default_boxes',
                               osp.splitext(osp.basename(args.config))[0])
    os.makedirs(out, exist_ok=True)
    plot_shapes(context['data']['boxes'], context['priors'],
                context['generator'].num_base_priors,
                osp.join(out, 'shapes.png'))
    plot_best_iou(report, osp.join(out, 'best_iou.png'))
    plot_matches(report, osp.join(out, 'matches_per_level.png'))
    print(f'plots: {out}/{{shapes,best_iou,matches_per_level}}.png')
    context['out'] = out
    if args.fit:
        report['fit'] = run_fit(args, cfg, context, report)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)
        print(f'numbers: {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
