"""SSD's MultiBox loss with hard negative mining (Liu et al., ECCV 2016).

Shape shorthand: ``N`` images, ``A`` default boxes per image (all levels),
``C`` object classes; class index ``C`` is background (mmdet's convention).

Section 2.2, eq. 1: ``L = (L_conf + alpha * L_loc) / N_pos`` with ``N_pos``
the matched (positive) default boxes of the whole batch (Caffe's
``normalization: VALID``). ``L_loc`` is Smooth L1 over positives;
``L_conf`` is softmax cross-entropy over positives and hard negatives:
per image the negatives of highest confidence loss, at most
``neg_pos_ratio`` times that image's positives ("Hard negative mining").
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssd_plugin.registry import MODELS


def hard_negative_mask(neg_loss: Tensor,
                       pos_mask: Tensor,
                       neg_pos_ratio: float,
                       neg_candidates: Optional[Tensor] = None) -> Tensor:
    """Per image, the negatives with the highest loss (section 2.2).

    Image ``n`` keeps ``k_n = min(floor(neg_pos_ratio * P_n), M_n)``
    negatives, ``P_n`` its positives and ``M_n`` its candidate negatives
    (Caffe's ``MineHardExamples``, ``MAX_NEGATIVE``). One sort for the whole
    batch, no loop over images; ties keep the lower index.

    Args:
        neg_loss (Tensor): ``(N, A)`` confidence loss of each box taken as
            background. Not differentiated through.
        pos_mask (Tensor): ``(N, A)`` bool, positive boxes.
        neg_pos_ratio (float): Negatives kept per positive (3 in the paper).
        neg_candidates (Tensor, optional): ``(N, A)`` bool, boxes that may be
            negatives. Defaults to ``~pos_mask``; positives are always
            excluded.

    Returns:
        Tensor: ``(N, A)`` bool, the selected negatives.
    """
    candidates = ~pos_mask if neg_candidates is None else (
        neg_candidates & ~pos_mask)
    num_pos = pos_mask.sum(dim=1)
    num_neg = torch.minimum(
        torch.floor(num_pos * neg_pos_ratio).long(), candidates.sum(dim=1))
    # Non-candidates sort last; a stable sort breaks ties by index.
    ranked = neg_loss.detach().masked_fill(~candidates, float('-inf'))
    order = ranked.sort(dim=1, descending=True, stable=True).indices
    rank = torch.arange(neg_loss.size(1), device=neg_loss.device)
    keep_sorted = rank[None, :] < num_neg[:, None]  # (N, A), sorted order
    return torch.zeros_like(keep_sorted).scatter(1, order, keep_sorted)


@MODELS.register_module()
class MultiBoxLoss(nn.Module):
    """Eq. 1 of the paper: confidence loss plus weighted localisation loss.

    Args:
        neg_pos_ratio (float): Hard negatives per positive, per image.
            Defaults to 3.0 (section 2.2).
        alpha (float): Weight of the localisation term. Defaults to 1.0
            (section 2.2, "alpha is set to 1 by cross validation").
        beta (float): Smooth L1 transition point; 1.0 is Caffe's (Fast
            R-CNN's) Smooth L1, 0 gives L1. Defaults to 1.0.
        loss_weight (float): Factor on both returned terms. Defaults to 1.0.

    Raises:
        ValueError: If a hyper-parameter is negative.
    """

    def __init__(self,
                 neg_pos_ratio: float = 3.0,
                 alpha: float = 1.0,
                 beta: float = 1.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        for name, value in dict(neg_pos_ratio=neg_pos_ratio, alpha=alpha,
                                beta=beta, loss_weight=loss_weight).items():
            if not value >= 0:
                raise ValueError(
                    f'{name}={value} must be >= 0; the paper uses '
                    'neg_pos_ratio=3, alpha=1, beta=1')
        self.neg_pos_ratio = float(neg_pos_ratio)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.loss_weight = float(loss_weight)

    def forward(self,
                cls_scores: Tensor,
                bbox_preds: Tensor,
                labels: Tensor,
                bbox_targets: Tensor,
                weights: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Compute ``(loss_cls, loss_bbox)``; their sum is eq. 1.

        Args:
            cls_scores (Tensor): ``(N, A, C + 1)`` logits, background last.
            bbox_preds (Tensor): ``(N, A, 4)`` encoded box offsets.
            labels (Tensor): ``(N, A)`` integer labels in ``[0, C]``, ``C``
                meaning background.
            bbox_targets (Tensor): ``(N, A, 4)`` encoded targets; only rows
                of positives are read.
            weights (Tensor, optional): ``(N, A)`` bool or float; a box with
                weight 0 is ignored (neither positive nor negative), any other
                weight counts fully. Defaults to all boxes used.

        Returns:
            tuple[Tensor, Tensor]: Scalars ``loss_weight * L_conf / N_pos``
            and ``loss_weight * alpha * L_loc / N_pos``; both zero, with the
            graph kept, when the batch has no positive.
        """
        self._check_inputs(cls_scores, bbox_preds, labels, bbox_targets,
                           weights)
        background = cls_scores.size(-1) - 1
        used = torch.ones_like(labels, dtype=torch.bool) if weights is None \
            else weights != 0
        pos_mask = (labels < background) & used
        conf_loss = F.cross_entropy(
            cls_scores.flatten(0, 1), labels.flatten().long(),
            reduction='none').view_as(labels)
        neg_mask = hard_negative_mask(conf_loss, pos_mask, self.neg_pos_ratio,
                                      used & (labels == background))
        loc_loss = F.smooth_l1_loss(
            bbox_preds, bbox_targets, reduction='none', beta=self.beta).sum(-1)
        # Caffe's VALID normalisation; max(1, .) keeps N_pos = 0 finite, and
        # then nothing is selected, so both terms are exactly 0.
        num_pos = pos_mask.sum().clamp(min=1).to(conf_loss.dtype)
        loss_cls = torch.where(pos_mask | neg_mask, conf_loss, 0.).sum()
        loss_bbox = torch.where(pos_mask, loc_loss, 0.).sum()
        return (self.loss_weight * loss_cls / num_pos,
                self.loss_weight * self.alpha * loss_bbox / num_pos)

    @staticmethod
    def _check_inputs(cls_scores: Tensor, bbox_preds: Tensor, labels: Tensor,
                      bbox_targets: Tensor, weights: Optional[Tensor]) -> None:
        """Raise ValueError/TypeError on shapes or dtypes that do not fit."""
        if cls_scores.dim() != 3 or cls_scores.size(-1) < 2:
            raise ValueError(
                f'cls_scores has shape {tuple(cls_scores.shape)}; expected '
                '(N, A, C + 1) logits with background last')
        batch = tuple(cls_scores.shape[:2])
        expected = dict(bbox_preds=(bbox_preds, batch + (4, )),
                        labels=(labels, batch),
                        bbox_targets=(bbox_targets, batch + (4, )))
        if weights is not None:
            expected['weights'] = (weights, batch)
        for name, (tensor, shape) in expected.items():
            if tuple(tensor.shape) != shape:
                raise ValueError(
                    f'{name} has shape {tuple(tensor.shape)}; expected '
                    f'{shape} to match cls_scores {tuple(cls_scores.shape)}')
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise TypeError(
                f'labels has dtype {labels.dtype}; pass integer (long) class '
                'indices with background = C')
