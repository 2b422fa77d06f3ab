"""SSD's MultiBox loss with hard negative mining (section 2.2, eq. 1).
Shapes: ``N`` images, ``A`` default boxes per image, ``C`` object classes;
class ``C`` is background."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssd_plugin.registry import MODELS


def hard_negative_mask(neg_loss: Tensor,
                       pos_mask: Tensor,
                       neg_pos_ratio: float,
                       neg_candidates: Optional[Tensor] = None) -> Tensor:
    """``(N, A)`` bool: per image the negatives of highest ``neg_loss`` (not
    differentiated): ``min(floor(neg_pos_ratio * P_n), M_n)`` of its ``M_n``
    candidates (``neg_candidates & ~pos_mask``), ``P_n`` its positives (Caffe's
    ``MAX_NEGATIVE``); one stable sort, ties to the lower index. A NaN loss
    ranks as the hardest (as +inf), whatever a device's sort does with NaN."""
    candidates = ~pos_mask if neg_candidates is None else (
        neg_candidates & ~pos_mask)
    num_pos = pos_mask.sum(dim=1)
    num_neg = torch.minimum(
        torch.floor(num_pos * neg_pos_ratio).long(), candidates.sum(dim=1))
    # NaN first, non-candidates last; a stable sort breaks ties by index.
    ranked = neg_loss.detach()
    ranked = torch.where(ranked.isnan(), float('inf'), ranked).masked_fill(
        ~candidates, float('-inf'))
    order = ranked.sort(dim=1, descending=True, stable=True).indices
    rank = torch.arange(neg_loss.size(1), device=neg_loss.device)
    keep_sorted = rank[None, :] < num_neg[:, None]  # (N, A), sorted order
    return torch.zeros_like(keep_sorted).scatter(1, order, keep_sorted)


@MODELS.register_module()
class MultiBoxLoss(nn.Module):
    """Eq. 1: confidence loss plus ``alpha`` (section 2.2: 1) times the Smooth
    L1 (transition ``beta``, Caffe's 1) localisation loss, ``neg_pos_ratio``
    (3) hard negatives per positive, both terms times ``loss_weight``."""

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
            setattr(self, name, float(value))

    def forward(self,
                cls_scores: Tensor,
                bbox_preds: Tensor,
                labels: Tensor,
                bbox_targets: Tensor,
                weights: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """``(loss_cls, loss_bbox)`` scalars, whose sum is eq. 1 (both 0, graph
        kept, without positives), from ``(N, A, C + 1)`` logits (background last),
        ``(N, A, 4)`` offsets, ``(N, A)`` int labels in ``[0, C]``, ``(N, A, 4)``
        targets (rows of positives read) and optional ``(N, A)`` weights (0 ignores
        a box: neither positive nor negative). A non-finite logit or offset of
        any box, selected or not, makes its term non-finite: its gradient
        would be NaN anyway (0 * NaN), so the loss says so."""
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
        # Never hide a NaN (no positives, an ignored box, not mined).
        conf_used = pos_mask | neg_mask | ~conf_loss.isfinite()
        loc_used = pos_mask | ~bbox_preds.isfinite().all(-1)
        loss_cls = torch.where(conf_used, conf_loss, 0.).sum()
        loss_bbox = torch.where(loc_used, loc_loss, 0.).sum()
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
