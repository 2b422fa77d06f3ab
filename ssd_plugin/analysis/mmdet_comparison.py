"""A config and its MMDetection SSD counterpart, trained alike
(``tools/analysis_tools/compare_with_mmdet.py``).

The counterpart is the loaded config mapped, not retyped: mmdet's
``SSDNeck``, ``SSDHead`` and ``SSDAnchorGenerator`` with the same default
boxes (our generator's ``min_sizes``/``max_sizes`` and steps), mmdet's SSD
``train_cfg``, and in the train pipeline mmdet's ``PhotoMetricDistortion``,
``Expand`` and ``MinIoURandomCrop`` in place of ours, with our settings;
backbone, data, schedule, seeds and test settings stay the same. A
variant (:data:`VARIANTS`) swaps the model, the augmentation or one
transform at a time.
"""
import copy
import os.path as osp
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.structures import InstanceData
from torch import nn

from ssd_plugin.registry import DATASETS, MODELS, TASK_UTILS, TRANSFORMS
from ssd_plugin.utils.config import leaf_datasets, use_default_scope
from ssd_plugin.utils.mmdet_ssd import patch_ssd_head
from ssd_plugin.utils.network_input import config_input_size, default_boxes

# Our transform -> mmdet's, from the built transform (defaults resolved).
# The numbers pass through as mmdet's own SSD config has them: its hue_delta
# is in degrees (ours: 2-degree units) and it also swaps channels half the
# time; its crop has no scale maximum or aspect range (fixed [0.5, 2]).
TO_MMDET = {
    'RandomPhotometricDistort': lambda t: dict(
        type='mmdet.PhotoMetricDistortion',
        brightness_delta=int(t.brightness_delta),
        contrast_range=t.contrast_range,
        saturation_range=t.saturation_range,
        hue_delta=int(t.hue_delta)),
    'RandomZoomOut': lambda t: dict(
        type='mmdet.Expand', mean=t.mean, to_rgb=False,
        ratio_range=t.ratio_range, prob=t.prob),
    'RandomIoUCrop': lambda t: dict(
        type='mmdet.MinIoURandomCrop', min_ious=t.min_ious,
        min_crop_size=t.scale_range[0]),
}
# 'ours+<transform>': our model with that one of mmdet's transforms in place
# of ours (one change at a time), 'ours+mmdet_aug' with all three; 'mmdet':
# mmdet's model and all three, 'mmdet+ours_aug' mmdet's model with ours.
SWAPS = {'ours+photometric': ('RandomPhotometricDistort', ),
         'ours+expand': ('RandomZoomOut', ), 'ours+crop': ('RandomIoUCrop', ),
         'ours+mmdet_aug': tuple(TO_MMDET)}
VARIANTS = ('ours', 'mmdet') + tuple(SWAPS) + ('mmdet+ours_aug', )


def _short(step: dict) -> str:
    return step['type'].split('.')[-1]


def map_pipelines(dataset: dict, names: Sequence[str] = tuple(TO_MMDET)
                  ) -> None:
    """Swap our transforms ``names`` for mmdet's in ``dataset``'s leaves."""
    for leaf in leaf_datasets(dataset):
        if leaf.get('pipeline'):
            leaf['pipeline'] = [
                TO_MMDET[_short(s)](TRANSFORMS.build(s))
                if _short(s) in names else s for s in leaf['pipeline']]


def variant_config(cfg: Config, variant: str) -> Config:
    """``cfg`` as ``variant`` of :data:`VARIANTS` trains it."""
    if variant.startswith('mmdet'):
        return mmdet_variant(cfg, augmentation=variant == 'mmdet')
    out = copy.deepcopy(cfg)
    if variant in SWAPS:
        map_pipelines(out.train_dataloader.dataset, SWAPS[variant])
    return out


def mmdet_anchor_generator(model: nn.Module,
                           input_shape: Tuple[int, int]) -> dict:
    """mmdet's ``SSDAnchorGenerator`` with our built model's default boxes
    at ``input_shape`` ``(H, W)``: our steps on the maps the model makes
    there (``strides=None`` means input / map size)."""
    gen = model.bbox_head.prior_generator
    featmaps, _ = default_boxes(model, input_shape)
    steps = [gen.level_step(i, size, input_shape)
             for i, size in enumerate(featmaps)]
    return dict(
        type='mmdet.SSDAnchorGenerator', scale_major=False,
        input_size=max(input_shape),
        strides=[tuple(s) if s[0] != s[1] else s[0] for s in steps],
        ratios=[list(r) for r in gen.ratios],
        min_sizes=list(gen.min_sizes), max_sizes=list(gen.max_sizes))


def mmdet_variant(cfg: Config, augmentation: bool = True) -> Config:
    """``cfg`` with mmdet's SSD neck, head, train_cfg and (unless
    ``augmentation`` is False) augmentation.

    Raises:
        ValueError: If our neck's extra layers are not mmdet's shape (a 1x1
            bottleneck of half the output channels, then a 3x3 conv).
    """
    use_default_scope(cfg)
    out = copy.deepcopy(cfg)
    model = MODELS.build(cfg.model)
    neck, head = model.neck, cfg.model.bbox_head
    halves = [c // 2 for c in neck.out_channels[len(neck.in_channels):]]
    if [layer[0].out_channels for layer in neck.extra_layers] != halves \
            or set(neck.kernel_sizes[:-1]) - {3}:
        raise ValueError(
            f"mmdet's SSDNeck needs bottleneck_channels={halves} (half the "
            f'outputs) and 3x3 convs but the last, got {cfg.model.neck}; '
            f'compare a config with such a neck')
    out.model.neck = dict(
        type='mmdet.SSDNeck', in_channels=neck.in_channels,
        out_channels=neck.out_channels, level_strides=neck.strides,
        level_paddings=neck.paddings,
        l2_norm_scale=neck.l2_norm.scale if neck.l2_norm else None,
        last_kernel_size=neck.kernel_sizes[-1])
    loss = MODELS.build(head.get('loss', dict(type='MultiBoxLoss')))
    out.model.bbox_head = dict(
        type='mmdet.SSDHead', num_classes=head.num_classes,
        in_channels=head.in_channels,
        anchor_generator=mmdet_anchor_generator(model,
                                                config_input_size(cfg)),
        bbox_coder=head.bbox_coder)
    # mmdet's configs/_base_/models/ssd300.py, with our assigner and loss.
    out.model.train_cfg = dict(
        assigner=cfg.model.train_cfg.assigner,
        sampler=dict(type='mmdet.PseudoSampler'), smoothl1_beta=loss.beta,
        allowed_border=-1, pos_weight=-1,
        neg_pos_ratio=int(loss.neg_pos_ratio), debug=False)
    if augmentation:
        map_pipelines(out.train_dataloader.dataset)
    return out


def train_and_test(cfg: Config, variant: str, seed: int,
                   work_dir: str) -> Dict[str, float]:
    """Train ``cfg`` with ``seed``, test it once; mAP@0.5 and mAP."""
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = osp.join(work_dir, f'{variant}_seed{seed}')
    cfg.experiment_name = f'{variant}_seed{seed}'
    cfg.randomness = dict(seed=seed)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None  # test once
    if 'visualization' in cfg.get('default_hooks', {}):
        cfg.default_hooks.visualization.draw = False
    runner = Runner.from_cfg(cfg)
    if variant.startswith('mmdet'):
        patch_ssd_head(runner.model.bbox_head)
    runner.train()
    metrics = runner.test()
    return dict(mAP50=metrics['coco/bbox_mAP_50'],
                mAP=metrics['coco/bbox_mAP'])


def _run_once(steps: list, results: dict, crop_at: int) -> tuple:
    """One sample through ``steps``: (whole image?, crop area fraction,
    boxes in, boxes out, (M, 4) boxes after the pipeline, network input
    side)."""
    for k, step in enumerate(steps):
        if k == crop_at:
            in_hw, n_in = results['img'].shape[:2], len(results['gt_bboxes'])
        results = step(results)
        if k == crop_at:
            out_hw = results['img'].shape[:2]
            n_out = len(results['gt_bboxes'])
    return (tuple(out_hw) == tuple(in_hw),
            out_hw[0] * out_hw[1] / (in_hw[0] * in_hw[1]), n_in, n_out,
            results['gt_bboxes'].tensor, min(results['img'].shape[:2]))


def _matcher(cfg: Config) -> Callable[[torch.Tensor], int]:
    """``boxes -> number of positive default boxes`` with the config's
    default boxes and assigner (section 2.2 matching), what the loss sees."""
    use_default_scope(cfg)
    model = MODELS.build(cfg.model)
    priors = torch.cat(default_boxes(model, config_input_size(cfg))[1])
    assigner = TASK_UTILS.build(cfg.model.train_cfg.assigner)

    def positives(boxes: torch.Tensor) -> int:
        gt = InstanceData(bboxes=boxes, labels=torch.zeros(len(boxes)).long())
        result = assigner.assign(InstanceData(priors=priors), gt)
        return int((result.gt_inds > 0).sum())
    return positives


def _train_steps(cfg: Config) -> Tuple[dict, List]:
    """The first train leaf dataset (pipeline removed) and its built steps
    before ``PackDetInputs``."""
    leaf = copy.deepcopy(leaf_datasets(cfg.train_dataloader.dataset)[0])
    if not leaf.get('pipeline'):
        raise ValueError('the train dataloader has no dataset with a '
                         'pipeline')
    steps = [TRANSFORMS.build(s) for s in leaf.pop('pipeline')
             if _short(s) != 'PackDetInputs']
    return leaf, steps


def crop_statistics(cfg: Config, num_samples: int,
                    seed: int = 0) -> Dict[str, Dict[str, float]]:
    """What each variant's crop does to the same train images.

    Returns, per variant: ``whole`` (fraction of crops that return the whole
    image), ``area`` (mean crop area over the crop's input area), ``kept``
    (boxes out of the crop over boxes in), ``large`` (fraction of boxes after
    the whole pipeline with sqrt(w * h) over half the network input),
    ``side`` (their mean sqrt(w * h) over the network input side) and
    ``pos`` (mean positive default boxes per sample, from the config's
    assigner: what the loss trains on; 3x as many negatives are mined).
    """
    stats, positives = {}, _matcher(cfg)
    for variant, vcfg in (('ours', cfg), ('mmdet', mmdet_variant(cfg))):
        dataset_cfg, steps = _train_steps(vcfg)
        crop_at = [type(s).__name__ for s in steps].index(
            'RandomIoUCrop' if variant == 'ours' else 'MinIoURandomCrop')
        dataset = DATASETS.build(dict(dataset_cfg, pipeline=[]))
        np.random.seed(seed)
        rows = [_run_once(steps, copy.deepcopy(dataset.get_data_info(
            i % len(dataset))), crop_at) for i in range(num_samples)]
        whole, area, n_in, n_out, boxes, side = zip(*rows)
        sides = np.concatenate([np.sqrt(
            ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).numpy()) / s
            for b, s in zip(boxes, side)])
        stats[variant] = dict(
            whole=float(np.mean(whole)), area=float(np.mean(area)),
            kept=sum(n_out) / max(sum(n_in), 1),
            large=float(np.mean(sides > 0.5)) if sides.size else 0.0,
            side=float(sides.mean()) if sides.size else 0.0,
            pos=float(np.mean([positives(b) for b in boxes])))
    return stats


def summary_lines(results: Dict[str, Dict[int, dict]]) -> List[str]:
    """Per variant and metric: each seed's value, then the mean, sample
    standard deviation and range (``results[variant][seed][metric]``)."""
    lines = []
    for variant, per_seed in results.items():
        for key in ('mAP50', 'mAP'):
            values = np.array([r[key] for r in per_seed.values()])
            cells = ' '.join(f'{s}: {r[key]:.3f}' for s, r in per_seed.items())
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            lines.append(f'{variant:16s} {key:6s} {cells}   mean '
                         f'{values.mean():.3f} +- {spread:.3f} (std), range '
                         f'{np.ptp(values):.3f}')
    return lines
