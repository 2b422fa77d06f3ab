"""How many detections two models share: the deployment parity measure.

A detection of the reference is matched to an unmatched one of the other
model with the same label, IoU above ``iou_thr`` and a score within
``score_tol`` (the best IoU first); the count of matches over the larger of
the two detection counts is the fraction identical.
"""
from typing import Tuple

import torch
from mmdet.structures.bbox import bbox_overlaps
from mmengine.structures import InstanceData


def count_matches(reference: InstanceData, other: InstanceData,
                  iou_thr: float = 0.99,
                  score_tol: float = 1e-3) -> Tuple[int, int]:
    """Matched detections and the larger detection count.

    Args:
        reference (InstanceData): ``bboxes`` ``(R, 4)``, ``scores``
            ``(R,)``, ``labels`` ``(R,)``.
        other (InstanceData): The same fields, ``(O, ...)``.
        iou_thr (float): IoU a match must exceed. Defaults to 0.99.
        score_tol (float): Largest score difference. Defaults to 1e-3.

    Returns:
        tuple[int, int]: ``(matches, max(R, O))``.
    """
    total = max(len(reference), len(other))
    if len(reference) == 0 or len(other) == 0:
        return 0, total
    iou = bbox_overlaps(reference.bboxes.float(), other.bboxes.float())
    same = reference.labels[:, None] == other.labels[None].to(
        reference.labels.dtype)
    close = (reference.scores[:, None].float() -
             other.scores[None].float()).abs() < score_tol
    iou = torch.where(same & close, iou, iou.new_zeros(()))
    matches = 0
    taken = torch.zeros(len(other), dtype=torch.bool)
    for row in iou:
        row = row.masked_fill(taken, 0.)
        best = int(row.argmax())
        if row[best] > iou_thr:
            taken[best] = True
            matches += 1
    return matches, total


def match_fraction(reference: InstanceData, other: InstanceData,
                   iou_thr: float = 0.99, score_tol: float = 1e-3) -> float:
    """Fraction of detections identical (1.0 when both have none).

    Args:
        reference, other, iou_thr, score_tol: As for :func:`count_matches`.

    Returns:
        float: ``matches / max(R, O)``.
    """
    matches, total = count_matches(reference, other, iou_thr, score_tol)
    return 1.0 if total == 0 else matches / total
