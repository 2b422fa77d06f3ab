"""MultiBoxLoss and hard_negative_mask against a loop-per-image reference.

The reference follows the paper (section 2.2, eq. 1) and Caffe's
MultiBoxLoss/MineHardExamples literally: per image, sort the candidate
negatives by their background cross-entropy and keep the top
``min(int(ratio * positives), negatives)``; normalise by the batch's
positives.
"""
import math

import pytest
import torch

from ssd_plugin.models.multibox_loss import MultiBoxLoss, hard_negative_mask
from ssd_plugin.registry import MODELS


def reference_loss(scores, preds, labels, targets, weights, ratio, alpha,
                   beta, loss_weight):
    """Straightforward loops; returns (loss_cls, loss_bbox) as floats."""
    num_imgs, num_boxes, num_cls = scores.shape
    background = num_cls - 1
    conf_sum, loc_sum, num_pos = 0.0, 0.0, 0
    for n in range(num_imgs):
        ce = []
        for a in range(num_boxes):
            logits = scores[n, a].tolist()
            log_z = math.log(sum(math.exp(v) for v in logits))
            ce.append(log_z - logits[int(labels[n, a])])
        used = [weights is None or bool(weights[n, a] != 0)
                for a in range(num_boxes)]
        pos = [a for a in range(num_boxes)
               if used[a] and labels[n, a] != background]
        negs = [a for a in range(num_boxes)
                if used[a] and labels[n, a] == background]
        negs.sort(key=lambda a: ce[a], reverse=True)
        keep = negs[:min(int(ratio * len(pos)), len(negs))]
        conf_sum += sum(ce[a] for a in pos + keep)
        for a in pos:
            for d in (preds[n, a] - targets[n, a]).abs().tolist():
                loc_sum += 0.5 * d * d / beta if d < beta else d - 0.5 * beta
        num_pos += len(pos)
    norm = max(num_pos, 1)
    return (loss_weight * conf_sum / norm,
            loss_weight * alpha * loc_sum / norm)


def random_batch(seed, num_imgs=3, num_boxes=40, num_classes=4, pos_frac=0.1,
                 ignore_frac=0.0):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(num_imgs, num_boxes, num_classes + 1, generator=gen)
    preds = torch.randn(num_imgs, num_boxes, 4, generator=gen)
    targets = torch.randn(num_imgs, num_boxes, 4, generator=gen)
    fg = torch.randint(0, num_classes, (num_imgs, num_boxes), generator=gen)
    is_pos = torch.rand(num_imgs, num_boxes, generator=gen) < pos_frac
    labels = torch.where(is_pos, fg, num_classes)
    weights = (torch.rand(num_imgs, num_boxes, generator=gen)
               >= ignore_frac).float()
    return scores, preds, labels, targets, weights


@pytest.mark.parametrize('seed,ratio,alpha,beta,loss_weight,ignore', [
    (0, 3.0, 1.0, 1.0, 1.0, 0.0),
    (1, 3.0, 1.0, 1.0, 1.0, 0.3),
    (2, 1.5, 0.5, 0.11, 2.0, 0.2),
    (3, 0.0, 1.0, 1.0, 1.0, 0.0),
    (4, 10.0, 2.0, 0.5, 1.0, 0.1),
])
def test_matches_loop_reference(seed, ratio, alpha, beta, loss_weight,
                                ignore):
    scores, preds, labels, targets, weights = random_batch(
        seed, ignore_frac=ignore)
    loss = MultiBoxLoss(ratio, alpha, beta, loss_weight)
    loss_cls, loss_bbox = loss(scores, preds, labels, targets, weights)
    ref_cls, ref_bbox = reference_loss(scores, preds, labels, targets,
                                       weights, ratio, alpha, beta,
                                       loss_weight)
    assert loss_cls.dim() == 0 and loss_bbox.dim() == 0
    assert loss_cls.item() == pytest.approx(ref_cls, rel=1e-5)
    assert loss_bbox.item() == pytest.approx(ref_bbox, rel=1e-5)


def test_weights_none_means_all_used():
    scores, preds, labels, targets, _ = random_batch(5)
    loss = MultiBoxLoss()
    got = loss(scores, preds, labels, targets)
    ref = reference_loss(scores, preds, labels, targets, None, 3.0, 1.0,
                         1.0, 1.0)
    assert [g.item() for g in got] == pytest.approx(ref, rel=1e-5)
    bool_weights = torch.ones_like(labels, dtype=torch.bool)
    again = loss(scores, preds, labels, targets, bool_weights)
    assert [a.item() for a in again] == [g.item() for g in got]


@pytest.mark.parametrize('num_imgs,num_boxes', [(2, 30), (1, 0), (0, 5)])
def test_no_ground_truth_gives_zero_with_graph(num_imgs, num_boxes):
    scores = torch.randn(num_imgs, num_boxes, 3, requires_grad=True)
    preds = torch.randn(num_imgs, num_boxes, 4, requires_grad=True)
    labels = torch.full((num_imgs, num_boxes), 2, dtype=torch.long)
    targets = torch.randn(num_imgs, num_boxes, 4)
    loss_cls, loss_bbox = MultiBoxLoss()(scores, preds, labels, targets)
    assert loss_cls.item() == 0 and loss_bbox.item() == 0
    (loss_cls + loss_bbox).backward()
    assert torch.isfinite(scores.grad).all() and not scores.grad.any()
    assert torch.isfinite(preds.grad).all() and not preds.grad.any()


def test_gradient_only_through_selected_boxes():
    scores, preds, labels, targets, _ = random_batch(6, num_imgs=2,
                                                     num_boxes=50)
    scores.requires_grad_(True)
    preds.requires_grad_(True)
    loss_cls, loss_bbox = MultiBoxLoss()(scores, preds, labels, targets)
    (loss_cls + loss_bbox).backward()
    pos = labels < 4
    touched = scores.grad.abs().sum(-1) > 0
    num_pos = pos.sum(1)
    # Each image: its positives plus exactly 3 negatives per positive.
    assert torch.equal(touched.sum(1), 4 * num_pos)
    assert touched[pos].all()
    assert torch.equal(preds.grad.abs().sum(-1) > 0, pos)


def test_exactly_three_to_one_and_top_losses():
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    neg_loss = torch.empty(1, 20)
    neg_loss[0, perm] = torch.arange(19., -1., -1.)  # perm[k] has 19 - k.
    pos = torch.zeros(1, 20, dtype=torch.bool)
    pos[0, perm[:2]] = True  # The two largest losses are positives.
    mask = hard_negative_mask(neg_loss, pos, 3.0)
    assert int(mask.sum()) == 6
    assert not (mask & pos).any()
    # Remaining negatives have losses 17..0; the top 6 are 17..12.
    assert sorted(neg_loss[mask].tolist()) == [12., 13., 14., 15., 16., 17.]


def test_fewer_negatives_than_ratio_keeps_all():
    pos = torch.tensor([[True, True, False, False, False],
                        [True, False, False, False, False]])
    neg_loss = torch.rand(2, 5, generator=torch.Generator().manual_seed(1))
    mask = hard_negative_mask(neg_loss, pos, 3.0)
    assert torch.equal(mask[0], ~pos[0])  # 3 available < 6 allowed.
    assert int(mask[1].sum()) == 3


def test_ratio_truncates_like_caffe():
    pos = torch.zeros(1, 30, dtype=torch.bool)
    pos[0, :3] = True
    mask = hard_negative_mask(torch.rand(1, 30), pos, 1.5)
    assert int(mask.sum()) == 4  # int(1.5 * 3)


def test_ignored_boxes_never_selected():
    neg_loss = torch.tensor([[9., 8., 7., 6., 5., 4., 3., 2., 1., 0.]])
    pos = torch.zeros(1, 10, dtype=torch.bool)
    pos[0, 9] = True
    candidates = torch.ones(1, 10, dtype=torch.bool)
    candidates[0, :2] = False  # The two hardest are ignored.
    mask = hard_negative_mask(neg_loss, pos, 3.0, candidates)
    assert mask[0].nonzero().flatten().tolist() == [2, 3, 4]


def test_ignored_box_with_huge_loss_does_not_change_loss():
    scores, preds, labels, targets, _ = random_batch(7, num_imgs=1)
    weights = torch.ones_like(labels)
    base = MultiBoxLoss()(scores, preds, labels, targets, weights)
    neg = int((labels[0] == 4).nonzero()[0])
    weights[0, neg] = 0
    scores = scores.clone()
    scores[0, neg, :4] = 50.0  # Would be the hardest negative if used.
    got = MultiBoxLoss()(scores, preds, labels, targets, weights)
    ref = reference_loss(scores, preds, labels, targets, weights, 3.0, 1.0,
                         1.0, 1.0)
    assert [g.item() for g in got] == pytest.approx(ref, rel=1e-5)
    assert got[0].item() < base[0].item() + 1.0


@pytest.mark.parametrize('seed', range(4))
def test_mask_equals_per_image_loop(seed):
    gen = torch.Generator().manual_seed(seed)
    neg_loss = torch.rand(5, 60, generator=gen)
    pos = torch.rand(5, 60, generator=gen) < 0.15 * seed
    candidates = torch.rand(5, 60, generator=gen) < 0.8
    mask = hard_negative_mask(neg_loss, pos, 3.0, candidates)
    for n in range(5):
        negs = [a for a in range(60) if candidates[n, a] and not pos[n, a]]
        negs.sort(key=lambda a: float(neg_loss[n, a]), reverse=True)
        keep = set(negs[:min(3 * int(pos[n].sum()), len(negs))])
        assert set(mask[n].nonzero().flatten().tolist()) == keep


def test_empty_mask_inputs():
    for shape in [(0, 10), (3, 0), (0, 0)]:
        mask = hard_negative_mask(torch.zeros(shape),
                                  torch.zeros(shape, dtype=torch.bool), 3.0)
        assert mask.shape == shape and mask.dtype == torch.bool


@pytest.mark.parametrize('kwargs', [dict(neg_pos_ratio=-1.0),
                                    dict(alpha=-0.5), dict(beta=-1.0),
                                    dict(loss_weight=float('nan'))])
def test_bad_hyper_parameters(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        MultiBoxLoss(**kwargs)


def test_bad_inputs():
    scores, preds, labels, targets, weights = random_batch(8)
    loss = MultiBoxLoss()
    with pytest.raises(ValueError, match='cls_scores'):
        loss(scores[0], preds, labels, targets)
    with pytest.raises(ValueError, match='bbox_preds'):
        loss(scores, preds[:, :-1], labels, targets)
    with pytest.raises(ValueError, match='bbox_targets'):
        loss(scores, preds, labels, targets[..., :2])
    with pytest.raises(ValueError, match='weights'):
        loss(scores, preds, labels, targets, weights[:1])
    with pytest.raises(TypeError, match='labels'):
        loss(scores, preds, labels.float(), targets)


def test_builds_from_registry():
    loss = MODELS.build(dict(type='MultiBoxLoss', neg_pos_ratio=2.0,
                             alpha=0.5))
    assert isinstance(loss, MultiBoxLoss)
    assert (loss.neg_pos_ratio, loss.alpha) == (2.0, 0.5)


# --- NaN and inf: ranked explicitly, never hidden ---------------------------
def test_nan_ranks_as_the_hardest_negative():
    neg_loss = torch.tensor([[3., math.nan, 5., 1., 4.]])
    pos = torch.tensor([[True, False, False, False, False]])
    mask = hard_negative_mask(neg_loss, pos, 2.0)
    assert mask[0].nonzero().flatten().tolist() == [1, 2]  # NaN, then 5


def _nan_free_grads(*tensors) -> bool:
    return all(bool(torch.isfinite(t.grad).all()) for t in tensors)


@pytest.mark.parametrize('where', ['no positives', 'ignored', 'not mined'])
def test_a_nan_logit_anywhere_makes_loss_cls_nan(where):
    """Unselected, a NaN logit still sends NaN into the gradient (0 * NaN
    through the selection); the loss must say so, not read finite."""
    scores, preds, labels, targets, weights = random_batch(3, num_imgs=1)
    box = int((labels[0] == 4).nonzero()[0])  # a background box
    if where == 'no positives':
        labels = torch.full_like(labels, 4)
    elif where == 'ignored':
        weights[0, box] = 0
    else:  # the lowest-loss negative: never among the 3 per positive
        scores[0, box] = torch.tensor([-9., -9., -9., -9., 9.])
    scores[0, box, 0] = math.nan
    scores.requires_grad_(True)
    loss_cls, loss_bbox = MultiBoxLoss()(scores, preds, labels, targets,
                                         weights)
    assert math.isnan(loss_cls.item()) and math.isfinite(loss_bbox.item())
    (loss_cls + loss_bbox).backward()
    assert not _nan_free_grads(scores)  # the reason: NaN reaches the grads


def test_a_non_finite_offset_of_a_negative_makes_loss_bbox_non_finite():
    scores, preds, labels, targets, weights = random_batch(4, num_imgs=1)
    box = int((labels[0] == 4).nonzero()[0])
    for value in (math.nan, math.inf):
        bad = preds.clone()
        bad[0, box, 2] = value
        loss_bbox = MultiBoxLoss()(scores, bad, labels, targets, weights)[1]
        assert not math.isfinite(loss_bbox.item())


def test_finite_inputs_give_the_reference_with_finite_gradients():
    """The NaN rule changes nothing for finite inputs."""
    scores, preds, labels, targets, weights = random_batch(5, ignore_frac=.1)
    scores.requires_grad_(True)
    preds.requires_grad_(True)
    got = MultiBoxLoss()(scores, preds, labels, targets, weights)
    ref = reference_loss(scores.detach(), preds.detach(), labels, targets,
                         weights, 3.0, 1.0, 1.0, 1.0)
    assert [g.item() for g in got] == pytest.approx(ref, rel=1e-5)
    sum(got).backward()
    assert _nan_free_grads(scores, preds)
