"""Default-box coverage of a dataset's ground truth, and a fit (section 2.2).

Recall: ground truth with some default box at ``IoU >= pos_iou_thr``, the
rest get only their forced match (small objects, section 3.6). Shapes: ``G``
ground truth, ``L`` levels, ``P_l`` boxes of level l, ``(x1, y1, x2, y2)``.
"""
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor

# COCO's size buckets by box area (its ``areaRng``), at the network input.
SIZE_BUCKETS = (('small', 32 ** 2), ('medium', 96 ** 2), ('large', math.inf))
# Ground truth per bbox_overlaps call: memory stays at chunk x P_l floats.
_CHUNK = 4096
# max / min size factors tried per level by the fit (the extra square has
# side sqrt(min * max), section 2.2).
MAX_FACTORS = (1.25, 1.5, 2.0, 3.0)

# (level, min_size, max_size, ratios) -> (P_l, 4) default boxes of the level.
PriorsFn = Callable[[int, float, float, Tuple[float, ...]], Tensor]


def _check_gt(gt: Tensor) -> Tensor:
    if gt.dim() != 2 or gt.size(1) != 4:
        raise ValueError(f'ground truth has shape {tuple(gt.shape)}; need '
                         '(G, 4) boxes (x1, y1, x2, y2)')
    return gt.to(torch.float32)


def best_iou(gt: Tensor, priors: Tensor) -> Tensor:
    """``(G,)`` float32 best IoU of each ``(G, 4)`` ``gt`` with ``(P, 4)``
    ``priors``; G or P may be 0 (P = 0: all 0)."""
    gt = _check_gt(gt)
    out = gt.new_zeros(len(gt))
    if len(priors) == 0:
        return out
    priors = priors.to(torch.float32)
    for start in range(0, len(gt), _CHUNK):
        out[start:start + _CHUNK] = bbox_overlaps(
            gt[start:start + _CHUNK], priors).max(1).values
    return out


def match_stats(gt: Tensor, level_priors: Sequence[Tensor],
                pos_iou_thr: float) -> Dict[str, object]:
    """Per level: best IoU of each ground truth and matches at the threshold.

    Args:
        gt (Tensor): ``(G, 4)`` ground truth; G may be 0.
        level_priors (Sequence[Tensor]): ``(P_l, 4)`` per level, L >= 1.
        pos_iou_thr (float): A pair matches when ``IoU >= pos_iou_thr``.

    Returns:
        dict: ``best_per_level`` ``(G, L)``; ``num_pos`` ``(G, L)`` boxes at
        the threshold (before assignment); ``prior_hit`` ``(P_l,)`` bool each.
    """
    gt = _check_gt(gt)
    if len(level_priors) == 0:
        raise ValueError('no default-box levels given; pass one (P_l, 4) '
                         'tensor per feature level')
    best, num_pos, hits = [], [], []
    for priors in level_priors:
        priors = priors.to(torch.float32)
        level_best = gt.new_zeros(len(gt))  # 0 against no default box
        level_pos = torch.zeros(len(gt), dtype=torch.long)
        hit = torch.zeros(len(priors), dtype=torch.bool)
        for start in range(0, len(gt) if len(priors) else 0, _CHUNK):
            ious = bbox_overlaps(gt[start:start + _CHUNK], priors)  # (g, P_l)
            above = ious >= pos_iou_thr
            level_best[start:start + _CHUNK] = ious.max(1).values
            level_pos[start:start + _CHUNK] = above.sum(1)
            hit |= above.any(0)
        best.append(level_best)
        num_pos.append(level_pos)
        hits.append(hit)
    return dict(best_per_level=torch.stack(best, 1),
                num_pos=torch.stack(num_pos, 1), prior_hit=hits)


def recall(best: Tensor, pos_iou_thr: float) -> Optional[float]:
    """Fraction of ``(G,)`` best IoUs ``>= pos_iou_thr``; None when G = 0."""
    if len(best) == 0:
        return None
    return float((best >= pos_iou_thr).float().mean())


def recall_by(best: Tensor, keys: Sequence[str], pos_iou_thr: float,
              order: Sequence[str] = ()) -> Dict[str, dict]:
    """``{group: {'num_gt', 'recall'}}`` of ``(G,)`` ``best`` by G ``keys``;
    groups of ``order`` come first, even empty, the rest sorted."""
    if len(keys) != len(best):
        raise ValueError(f'{len(keys)} group keys for {len(best)} ground '
                         'truth boxes; give one key per box')
    groups = list(order) + sorted(set(keys) - set(order))
    out = {}
    for group in groups:
        mask = torch.tensor([k == group for k in keys], dtype=torch.bool)
        out[group] = dict(num_gt=int(mask.sum()),
                          recall=recall(best[mask], pos_iou_thr))
    return out


def size_buckets(gt: Tensor) -> List[str]:
    """COCO's small / medium / large name of each ``(G, 4)`` box by area."""
    gt = _check_gt(gt)
    areas = ((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])).tolist()
    return [next(name for name, top in SIZE_BUCKETS if area < top)
            for area in areas]


def size_grid(gt: Tensor, input_side: float, num: int = 24) -> List[float]:
    """``num`` geometric sizes from half the smallest gt side (>= 1 px) to
    1.05 x ``input_side``."""
    gt = _check_gt(gt)
    sides = torch.minimum(gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1])
    low = max(1.0, 0.5 * float(sides.min())) if len(gt) else 1.0
    high = max(1.05 * input_side, 2 * low)
    return [round(low * (high / low) ** (k / (num - 1)), 1)
            for k in range(num)]


def data_ratios(gt: Tensor, count: int) -> Tuple[float, ...]:
    """``count`` ratios ``r >= 1.1``: quantiles of ``max(w / h, h / w)``, as
    each ratio adds ``r`` and ``1 / r`` (section 2.2)."""
    gt = _check_gt(gt)
    if count == 0:
        return ()
    if len(gt) == 0:
        raise ValueError('no ground truth to take aspect ratios from')
    w, h = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    folded = torch.maximum(w / h, h / w).to(torch.float64)
    quantiles = torch.quantile(
        folded, torch.arange(1, count + 1, dtype=torch.float64) / (count + 1))
    return tuple(max(1.1, round(float(q) * 20) / 20) for q in quantiles)


def _score(best: Tensor, pos_iou_thr: float) -> Tuple[float, float]:
    return (float((best >= pos_iou_thr).float().mean()), float(best.mean()))


def _fit_level(gt: Tensor, priors_fn: PriorsFn, level: int, others: Tensor,
               current: Tuple[float, float, Tuple[float, ...]],
               bounds: Tuple[float, float], sizes: Sequence[float],
               ratio_sets: Sequence[Tuple[float, ...]],
               pos_iou_thr: float) -> Tuple[tuple, Tensor]:
    """Best ``(min, max, ratios)`` of one level and its ``(G,)`` IoU; the
    current choice wins ties, so the score never drops."""
    choice, level_best = current, best_iou(gt, priors_fn(level, *current))
    top = _score(torch.maximum(others, level_best), pos_iou_thr)
    for min_size in sizes:
        if not bounds[0] <= min_size <= bounds[1]:
            continue
        for factor in MAX_FACTORS:
            for ratios in ratio_sets:
                candidate = (min_size, round(min_size * factor, 1), ratios)
                cand_best = best_iou(gt, priors_fn(level, *candidate))
                score = _score(torch.maximum(others, cand_best), pos_iou_thr)
                if score > top:
                    choice, level_best, top = candidate, cand_best, score
    return choice, level_best


def fit_default_boxes(gt: Tensor, priors_fn: PriorsFn,
                      min_sizes: Sequence[float], max_sizes: Sequence[float],
                      ratios: Sequence[Sequence[float]], pos_iou_thr: float,
                      input_side: float, rounds: int = 2
                      ) -> Tuple[List[float], List[float], List[tuple]]:
    """Per-level min/max sizes and ratios that raise recall at the threshold.

    Coordinate ascent over levels; min sizes stay non-decreasing and the
    ratio count per level stays (so do the boxes per location).

    Args:
        gt (Tensor): ``(G, 4)`` ground truth at the input, G >= 1.
        priors_fn (PriorsFn): Default boxes of a level for given sizes.
        min_sizes, max_sizes, ratios: Starting values, one per level.
        pos_iou_thr (float): The assigner's positive threshold.
        input_side (float): Longer input side, bounds the sizes tried.
        rounds (int): Passes over the levels. Defaults to 2.

    Returns:
        tuple: Min sizes, max sizes, ratios per level (recall >= the start).
    """
    gt = _check_gt(gt)
    if len(gt) == 0:
        raise ValueError('no ground truth to fit default boxes to; check '
                         'the dataset split')
    num_levels = len(min_sizes)
    choices = [(float(lo), float(hi), tuple(r))
               for lo, hi, r in zip(min_sizes, max_sizes, ratios)]
    best = torch.stack([best_iou(gt, priors_fn(k, *c))
                        for k, c in enumerate(choices)], 1)
    sizes = size_grid(gt, input_side)
    for _ in range(rounds):
        for level in range(num_levels):
            others = best[:, [k for k in range(num_levels) if k != level]]
            others = others.max(1).values if num_levels > 1 \
                else best.new_zeros(len(gt))
            ratio_sets = list(dict.fromkeys(
                [choices[level][2], data_ratios(gt, len(choices[level][2]))]))
            bounds = (choices[level - 1][0] if level else 0.0,
                      choices[level + 1][0] if level + 1 < num_levels
                      else math.inf)
            choices[level], best[:, level] = _fit_level(
                gt, priors_fn, level, others, choices[level], bounds, sizes,
                ratio_sets, pos_iou_thr)
    return ([c[0] for c in choices], [c[1] for c in choices],
            [c[2] for c in choices])


def _level_entries(stats: dict, featmap_sizes: Sequence[Tuple[int, int]],
                   pos_iou_thr: float) -> Dict[str, dict]:
    out = {}
    for level, hit in enumerate(stats['prior_hit']):
        out[str(level)] = dict(
            featmap=list(featmap_sizes[level]),
            recall=recall(stats['best_per_level'][:, level], pos_iou_thr),
            num_priors=len(hit),
            matched_pairs=int(stats['num_pos'][:, level].sum()),
            unmatched_priors=int((~hit).sum()))
    return out


def coverage_report(gt: Tensor, labels: Sequence[int],
                    images: Sequence[str], level_priors: Sequence[Tensor],
                    featmap_sizes: Sequence[Tuple[int, int]],
                    pos_iou_thr: float,
                    class_names: Sequence[str]) -> Dict[str, object]:
    """The numbers of ``analyze_default_boxes.py``, JSON-ready.

    Args:
        gt (Tensor): ``(G, 4)`` ground truth at the network input.
        labels, images: G class indices and image paths.
        level_priors (Sequence[Tensor]): ``(P_l, 4)`` default boxes per level.
        featmap_sizes (Sequence[tuple[int, int]]): ``(H, W)`` per level.
        pos_iou_thr (float): The assigner's positive threshold.
        class_names (Sequence[str]): The dataset's classes.

    Returns:
        dict: ``recall`` (None if G = 0), ``mean_best_iou``,
        ``recall_per_{size,class,level}``, ``unreachable`` and ``per_gt``
        (``{image, box, label, best_iou, ...}`` each).
    """
    gt = _check_gt(gt)
    if not len(labels) == len(images) == len(gt):
        raise ValueError(f'{len(gt)} boxes, {len(labels)} labels and '
                         f'{len(images)} images; give one of each per box')
    stats = match_stats(gt, level_priors, pos_iou_thr)
    best, best_level = stats['best_per_level'].max(1)
    per_gt = [dict(image=images[i], box=[round(v, 2) for v in gt[i].tolist()],
                   label=class_names[labels[i]],
                   best_iou=round(float(best[i]), 4),
                   best_level=int(best_level[i]),
                   num_pos=int(stats['num_pos'][i].sum()))
              for i in range(len(gt))]
    return dict(
        pos_iou_thr=pos_iou_thr, num_gt=len(gt),
        recall=recall(best, pos_iou_thr),
        mean_best_iou=float(best.mean()) if len(gt) else None,
        recall_per_size=recall_by(best, size_buckets(gt), pos_iou_thr,
                                  [name for name, _ in SIZE_BUCKETS]),
        recall_per_class=recall_by(best, [class_names[k] for k in labels],
                                   pos_iou_thr, class_names),
        recall_per_level=_level_entries(stats, featmap_sizes, pos_iou_thr),
        unreachable=[{k: g[k] for k in ('image', 'box', 'label', 'best_iou')}
                     for g in per_gt if g['best_iou'] < pos_iou_thr],
        per_gt=per_gt)
