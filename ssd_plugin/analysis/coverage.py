"""How well a config's default boxes cover its dataset, and a fit that helps
(``tools/analysis_tools/analyze_default_boxes.py``).

A split is read through the config's test pipeline (the resize to the
network input, no random augmentation); the default boxes are the model's
at that input (:func:`ssd_plugin.utils.network_input.default_boxes`); the
numbers are :func:`.default_boxes.coverage_report`'s, at the assigner's
``pos_iou_thr`` (``IoU >= thr``, as mmdet's ``MaxIoUAssigner``).
Shapes: ``G`` ground truth, ``P_l`` default boxes of level ``l``.
"""
import copy
import os.path as osp
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.structures.bbox import get_box_tensor
from mmengine.config import Config
from mmengine.utils import ProgressBar
from torch import Tensor

from ssd_plugin.analysis.default_boxes import (coverage_report, data_ratios,
                                               fit_default_boxes)
from ssd_plugin.models.default_box_generator import DefaultBoxGenerator
from ssd_plugin.registry import DATASETS, MODELS, TASK_UTILS
from ssd_plugin.utils.config import leaf_datasets
from ssd_plugin.utils.network_input import config_input_size, default_boxes

SHOWN = 10  # unreachable ground truth printed (the JSON has all)


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


def analysis_dataset(cfg: Config, split: str):
    """The ``split`` loader's dataset with :func:`analysis_pipeline`."""
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
        assigner never sees).
    """
    boxes, labels, images, ignored = [], [], [], 0
    bar = ProgressBar(len(dataset), file=sys.stdout)
    for index in range(len(dataset)):
        results = dataset[index]
        keep = ~torch.as_tensor(results['gt_ignore_flags'], dtype=torch.bool)
        found = get_box_tensor(results['gt_bboxes']).reshape(-1, 4)
        boxes.append(torch.as_tensor(found, dtype=torch.float32)[keep])
        labels += torch.as_tensor(results['gt_bboxes_labels'])[keep].tolist()
        images += [results['img_path']] * int(keep.sum())
        ignored += int((~keep).sum())
        bar.update()
    sys.stdout.write('\n')
    return dict(boxes=torch.cat(boxes) if boxes else torch.zeros(0, 4),
                labels=labels, images=images, num_images=len(dataset),
                num_ignored=ignored)


def pos_iou_thr(cfg: Config) -> float:
    """The assigner's positive threshold from ``model.train_cfg``."""
    assigner = cfg.model.get('train_cfg', {}).get('assigner', {})
    if 'pos_iou_thr' not in assigner:
        raise ValueError(
            'model.train_cfg.assigner has no pos_iou_thr (got '
            f'{dict(assigner)}); the analysis needs a MaxIoUAssigner-style '
            'threshold, e.g. pos_iou_thr=0.5 as in SSD')
    return float(assigner['pos_iou_thr'])


@dataclass
class Analysis:
    """A split's ground truth at the network input and the model's boxes."""
    ground_truth: Dict[str, object]  # :func:`read_ground_truth`'s
    generator: object  # the model's prior generator
    featmaps: List[Tuple[int, int]]  # (H, W) per level
    priors: List[Tensor]  # (P_l, 4) per level
    input_shape: Tuple[int, int]  # (H, W)
    classes: Tuple[str, ...]

    def report(self, thr: float,
               priors: Optional[Sequence[Tensor]] = None) -> dict:
        """:func:`coverage_report` of these boxes, or of ``priors``."""
        data = self.ground_truth
        return coverage_report(data['boxes'], data['labels'], data['images'],
                               self.priors if priors is None else priors,
                               self.featmaps, thr, self.classes)


def analyse(cfg: Config, split: str) -> Analysis:
    """Read the split at the config's input and the boxes of its model.

    Raises:
        ValueError: For an empty split, or a test pipeline without one
            fixed input size (``config_input_size``).
    """
    input_shape = config_input_size(cfg)
    dataset = analysis_dataset(cfg, split)
    if len(dataset) == 0:
        raise ValueError(f'the {split} split has no images; check its '
                         'data_root and ann_file')
    data = read_ground_truth(dataset)
    model = MODELS.build(cfg.model).eval()
    featmaps, priors = default_boxes(model, input_shape)
    return Analysis(data, model.bbox_head.prior_generator, featmaps, priors,
                    input_shape, tuple(dataset.metainfo['classes']))


def fit(cfg: Config, analysis: Analysis, thr: float,
        num_ratios: Optional[Sequence[int]] = None,
        max_gt: int = 20000) -> dict:
    """Fitted ``prior_generator`` overrides (min/max sizes, ratios).

    At most ``max_gt`` ground truth (a seeded random subset) drive the
    search; the reports before and after use all of them.
    """
    generator, gt = analysis.generator, analysis.ground_truth['boxes']
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
            analysis.featmaps[level], level, device='cpu',
            input_shape=analysis.input_shape))

    if len(gt) > max_gt:
        pick = torch.randperm(len(gt), generator=torch.Generator()
                              .manual_seed(0))[:max_gt]
        gt = gt[pick]
    mins, maxs, rats = fit_default_boxes(
        gt, priors_fn, generator.min_sizes, generator.max_sizes, ratios, thr,
        max(analysis.input_shape))
    return dict(min_sizes=mins, max_sizes=maxs, ratios=rats)


def fitted_boxes(cfg: Config, analysis: Analysis,
                 fitted: dict) -> Tuple[DefaultBoxGenerator, List[Tensor]]:
    """The generator with :func:`fit`'s overrides and its ``(P_l, 4)``
    boxes on the analysed maps."""
    built = TASK_UTILS.build(dict(cfg.model.bbox_head.prior_generator,
                                  **fitted))
    return built, [get_box_tensor(p) for p in built.grid_priors(
        analysis.featmaps, device='cpu', input_shape=analysis.input_shape)]


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


def fmt(value: Optional[float]) -> str:
    """A recall or IoU with 3 decimals, ``-`` for None (no ground truth)."""
    return '-' if value is None else f'{value:.3f}'


def format_report(report: dict, shown: int = SHOWN) -> str:
    """The printed summary of :func:`coverage_report`'s dict."""
    lines = [f'{report["num_gt"]} ground truth boxes; recall at IoU >= '
             f'{report["pos_iou_thr"]}: {fmt(report["recall"])} (mean best '
             f'IoU {fmt(report["mean_best_iou"])})']
    for key, title in (('recall_per_size', 'size'),
                       ('recall_per_class', 'class')):
        lines.append(f'per {title}: ' + ', '.join(
            f'{k} {fmt(v["recall"])} ({v["num_gt"]})'
            for k, v in report[key].items()))
    for level, v in report['recall_per_level'].items():
        lines.append(
            f'level {level} {v["featmap"][0]}x{v["featmap"][1]}: recall '
            f'{fmt(v["recall"])}, {v["matched_pairs"]} matched pairs, '
            f'{v["unmatched_priors"]}/{v["num_priors"]} default boxes match '
            'nothing')
    missed = report['unreachable']
    lines.append(f'{len(missed)} ground truth no default box reaches'
                 + (f' (first {shown}):' if len(missed) > shown else ':'))
    lines += [f'  {g["image"]} {g["label"]} box {g["box"]} best IoU '
              f'{g["best_iou"]}' for g in missed[:shown]]
    return '\n'.join(lines)
