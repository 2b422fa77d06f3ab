"""SSDHead: layout, matching and loss, inference, and mmdet's SSDHead.

References are written out here: a loop-based flattening, the paper's
matching and Caffe's box encoding/decoding formulas, a greedy per-class NMS.
"""
import math

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from ssd_plugin.models.ssd_head import (SSDHead, flatten_levels,
                                        select_candidates)
from ssd_plugin.utils.mmdet_ssd import patch_ssd_head

ASSIGNER = dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                min_pos_iou=0., ignore_iof_thr=-1, gt_max_assign_all=False)
TEST_CFG = dict(nms_pre=1000, score_thr=0.02, min_bbox_size=0,
                nms=dict(type='nms', iou_threshold=0.45), max_per_img=200)
VARIANCES = (0.1, 0.1, 0.2, 0.2)  # Caffe's prior variances
# A two-level toy SSD on a 64x64 input: 8x8 and 4x4 maps, 4 boxes each.
TINY_GENERATOR = dict(type='DefaultBoxGenerator', input_size=64,
                      ratios=((2, ), (2, )), min_sizes=(12, 30),
                      max_sizes=(30, 60), strides=(8, 16))
TINY_SIZES = [(8, 8), (4, 4)]


@pytest.fixture(autouse=True)
def _scope():
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('ssd_plugin'):
        yield


def tiny_head(num_classes=3, **kwargs) -> SSDHead:
    torch.manual_seed(0)
    kwargs.setdefault('train_cfg', dict(assigner=ASSIGNER))
    kwargs.setdefault('test_cfg', TEST_CFG)
    return SSDHead(num_classes=num_classes, in_channels=(8, 8),
                   prior_generator=TINY_GENERATOR, **kwargs)


def tiny_feats(batch=2, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 8, h, w, generator=gen) for h, w in TINY_SIZES]


def metas(batch=2, size=64, scale_factor=(1., 1.)):
    return [dict(img_shape=(size, size), batch_input_shape=(size, size),
                 pad_shape=(size, size), scale_factor=scale_factor)
            for _ in range(batch)]


# --- pure helpers ----------------------------------------------------------

def test_flatten_levels_matches_a_loop_and_channels_last():
    torch.manual_seed(0)
    maps = [torch.randn(2, 3 * 5, 4, 6), torch.randn(2, 2 * 5, 2, 3)]
    anchors = [3, 2]
    rows = []
    for n in range(2):
        image = []
        for m, a in zip(maps, anchors):
            for y in range(m.size(2)):
                for x in range(m.size(3)):
                    for k in range(a):
                        image.append(m[n, k * 5:(k + 1) * 5, y, x])
        rows.append(torch.stack(image))
    expected = torch.stack(rows)
    assert torch.equal(flatten_levels(maps, 5), expected)
    last = [m.contiguous(memory_format=torch.channels_last) for m in maps]
    assert torch.equal(flatten_levels(last, 5), expected)


def reference_candidates(scores, thr, k):
    """Loop over images, boxes and classes, then sort each image."""
    out = []
    for img in range(scores.size(0)):
        pairs = [(scores[img, p, c].item(), p, c)
                 for p in range(scores.size(1)) for c in range(scores.size(2))
                 if scores[img, p, c] > thr]
        pairs.sort(key=lambda t: -t[0])
        out += [(img, p, c, s) for s, p, c in (pairs[:k] if k > 0 else pairs)]
    return out


@pytest.mark.parametrize('thr, k', [(0.5, -1), (0.5, 0), (0.3, 1), (0.3, 4),
                                    (0.0, 100), (1.0, 5)])
def test_select_candidates_matches_a_loop(thr, k):
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(3, 7, 2, generator=gen)
    scores[1] *= 0.25  # an image without candidates above 0.3
    img, box, label, score = select_candidates(scores, thr, k)
    got = list(zip(img.tolist(), box.tolist(), label.tolist(),
                   score.tolist()))
    assert got == reference_candidates(scores, thr, k)


def test_select_candidates_empty_batch():
    outs = select_candidates(torch.zeros(2, 0, 3), 0.1, 10)
    assert all(t.numel() == 0 for t in outs)


# --- construction and forward ----------------------------------------------

def test_head_layout_from_the_generator():
    head = SSDHead(num_classes=20)
    assert head.num_base_priors == [4, 6, 6, 6, 4, 4]
    assert [c.out_channels for c in head.cls_convs] == [
        a * 21 for a in (4, 6, 6, 6, 4, 4)]
    assert [c.out_channels for c in head.reg_convs] == [
        a * 4 for a in (4, 6, 6, 6, 4, 4)]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1)
               for c in [*head.cls_convs, *head.reg_convs])
    keys = set(head.state_dict())
    assert 'cls_convs.0.weight' in keys and 'reg_convs.5.bias' in keys


def test_head_rejects_wrong_number_of_levels():
    with pytest.raises(ValueError, match='in_channels'):
        SSDHead(in_channels=(512, 1024))
    with pytest.raises(ValueError, match='num_classes'):
        SSDHead(num_classes=0)
    head = tiny_head()
    with pytest.raises(ValueError, match='got 1 feature maps'):
        head(tiny_feats()[:1])


def test_head_forward_shapes():
    cls_scores, bbox_preds = tiny_head()(tiny_feats())
    assert [tuple(s.shape) for s in cls_scores] == [(2, 16, 8, 8),
                                                    (2, 16, 4, 4)]
    assert [tuple(b.shape) for b in bbox_preds] == [(2, 16, 8, 8),
                                                    (2, 16, 4, 4)]


def test_head_init_weights_is_caffe_xavier():
    head = tiny_head()
    head.init_weights()
    for conv in [*head.cls_convs, *head.reg_convs]:
        bound = math.sqrt(3 / conv.weight[0].numel())
        assert conv.weight.abs().max() <= bound
        assert torch.count_nonzero(conv.bias) == 0


# --- matching and loss ----------------------------------------------------

def iou(a, b):
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).prod(-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter)


def caffe_encode(prior, gt):
    pw, ph = prior[:, 2] - prior[:, 0], prior[:, 3] - prior[:, 1]
    px, py = prior[:, 0] + pw / 2, prior[:, 1] + ph / 2
    gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    gx, gy = gt[:, 0] + gw / 2, gt[:, 1] + gh / 2
    return torch.stack([(gx - px) / pw / VARIANCES[0],
                        (gy - py) / ph / VARIANCES[1],
                        torch.log(gw / pw) / VARIANCES[2],
                        torch.log(gh / ph) / VARIANCES[3]], 1)


def all_priors(head):
    return torch.cat(head.prior_generator.grid_priors(
        TINY_SIZES, device='cpu', input_shape=(64, 64)))


class Recorder(torch.nn.Module):
    """Stands in for MultiBoxLoss and keeps its inputs."""

    def forward(self, *args):
        self.args = args
        return args[0].sum() * 0, args[1].sum() * 0


def test_targets_follow_the_paper_matching():
    head = tiny_head()
    head.multibox_loss = Recorder()
    priors = all_priors(head)
    # Far apart: a small box (one best prior, maybe no IoU > 0.5 besides)
    # and a big one overlapping several priors above 0.5.
    gts = torch.tensor([[2., 3., 13., 12.], [20., 18., 58., 62.]])
    gt = InstanceData(bboxes=gts, labels=torch.tensor([2, 0]))
    empty = InstanceData(bboxes=torch.zeros(0, 4),
                         labels=torch.zeros(0, dtype=torch.long))
    head.loss_by_feat(*head(tiny_feats()), [gt, empty], metas())
    _, _, labels, targets, weights = head.multibox_loss.args

    overlaps = iou(gts, priors)  # (G, P)
    best_gt_iou, best_gt = overlaps.max(0)
    expected = torch.where(best_gt_iou >= 0.5, best_gt, -1)
    expected[overlaps.argmax(1)] = torch.arange(2)  # best box per gt
    assert (expected >= 0).sum() > 2  # some threshold matches happened
    exp_labels = torch.where(expected >= 0,
                             torch.tensor([2, 0])[expected.clamp(min=0)], 3)
    assert torch.equal(labels[0], exp_labels)
    assert torch.equal(labels[1], torch.full_like(labels[1], 3))
    pos = expected >= 0
    torch.testing.assert_close(targets[0][pos],
                               caffe_encode(priors[pos], gts[expected[pos]]))
    assert torch.count_nonzero(targets[0][~pos]) == 0
    assert torch.count_nonzero(targets[1]) == 0
    assert torch.equal(weights, torch.ones_like(weights))


def test_loss_no_objects_gives_zero_box_loss():
    head = tiny_head()
    empty = InstanceData(bboxes=torch.zeros(0, 4),
                         labels=torch.zeros(0, dtype=torch.long))
    losses = head.loss_by_feat(*head(tiny_feats(batch=1)), [empty],
                               metas(batch=1))
    assert losses['loss_bbox'].item() == 0
    assert torch.isfinite(losses['loss_cls'])


def test_loss_is_finite_and_backpropagates():
    head = tiny_head()
    gt = InstanceData(bboxes=torch.tensor([[10., 10., 40., 50.]]),
                      labels=torch.tensor([1]))
    empty = InstanceData(bboxes=torch.zeros(0, 4),
                         labels=torch.zeros(0, dtype=torch.long))
    losses = head.loss_by_feat(*head(tiny_feats()), [gt, empty], metas())
    assert set(losses) == {'loss_cls', 'loss_bbox'}
    total = losses['loss_cls'] + losses['loss_bbox']
    assert torch.isfinite(total) and total > 0
    total.backward()
    for convs in (head.cls_convs, head.reg_convs):
        grads = [c.weight.grad for c in convs]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0


def test_loss_needs_an_assigner():
    head = tiny_head(train_cfg=None)
    with pytest.raises(ValueError, match='assigner'):
        head.loss_by_feat(*head(tiny_feats(1)), [InstanceData(
            bboxes=torch.zeros(0, 4), labels=torch.zeros(0).long())],
            metas(1))


# --- inference -----------------------------------------------------------

def caffe_decode(prior, delta):
    pw, ph = prior[:, 2] - prior[:, 0], prior[:, 3] - prior[:, 1]
    px, py = prior[:, 0] + pw / 2, prior[:, 1] + ph / 2
    cx = px + delta[:, 0] * VARIANCES[0] * pw
    cy = py + delta[:, 1] * VARIANCES[1] * ph
    w = pw * torch.exp(delta[:, 2] * VARIANCES[2])
    h = ph * torch.exp(delta[:, 3] * VARIANCES[3])
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


def greedy_nms(boxes, scores, thr):
    order = scores.argsort(descending=True).tolist()
    keep = []
    while order:
        best = order.pop(0)
        keep.append(best)
        if order:
            ious = iou(boxes[best:best + 1], boxes[order])[0]
            order = [i for i, o in zip(order, ious.tolist()) if o <= thr]
    return keep


def reference_predict(head, cls_scores, bbox_preds, meta, img, cfg):
    """Section 3's inference for one image, loops over classes."""
    scores = flatten_levels(cls_scores, 4)[img].softmax(-1)[:, :-1]
    boxes = caffe_decode(all_priors(head), flatten_levels(bbox_preds, 4)[img])
    h, w = meta['img_shape']
    boxes = torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
                         boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)], 1)
    boxes = boxes / torch.tensor(meta['scale_factor']).repeat(2)
    dets = []
    for c in range(scores.size(1)):
        sel = torch.nonzero(scores[:, c] > cfg['score_thr']).flatten()
        for k in greedy_nms(boxes[sel], scores[sel, c],
                            cfg['nms']['iou_threshold']):
            dets.append((scores[sel[k], c].item(), c, boxes[sel[k]]))
    dets.sort(key=lambda d: -d[0])
    return dets[:cfg['max_per_img']]


def test_predict_matches_the_reference_and_rescales():
    head = tiny_head()
    cfg = dict(TEST_CFG, score_thr=0.3, nms_pre=-1, max_per_img=20)
    outs = head(tiny_feats())
    img_metas = [dict(m, scale_factor=sf) for m, sf in zip(
        metas(), [(0.5, 0.25), (2.0, 1.0)])]
    with torch.no_grad():
        results = head.predict_by_feat(*outs, batch_img_metas=img_metas,
                                       cfg=cfg, rescale=True)
        plain = head.predict_by_feat(*outs, batch_img_metas=img_metas,
                                     cfg=cfg, rescale=False)
    for img, (res, raw) in enumerate(zip(results, plain)):
        ref = reference_predict(head, [o.detach() for o in outs[0]],
                                [o.detach() for o in outs[1]],
                                img_metas[img], img, cfg)
        assert len(ref) == len(res) == 20  # enough candidates for the cap
        torch.testing.assert_close(res.scores, torch.tensor(
            [d[0] for d in ref]))
        assert res.labels.tolist() == [d[1] for d in ref]
        torch.testing.assert_close(res.bboxes, torch.stack(
            [d[2] for d in ref]))
        scale = torch.tensor(img_metas[img]['scale_factor']).repeat(2)
        torch.testing.assert_close(res.bboxes, raw.bboxes / scale)


def test_predict_at_most_200_per_image():
    head = tiny_head(num_classes=30)
    cfg = dict(TEST_CFG, score_thr=0.0)  # every pair is a candidate
    with torch.no_grad():
        results = head.predict_by_feat(*head(tiny_feats()),
                                       batch_img_metas=metas(), cfg=cfg)
    assert [len(r) for r in results] == [200, 200]
    for r in results:
        assert (r.scores[:-1] >= r.scores[1:]).all()
        assert r.labels.min() >= 0 and r.labels.max() < 30
        assert r.bboxes.min() >= 0 and r.bboxes.max() <= 64


def test_predict_nothing_above_threshold():
    head = tiny_head()
    with torch.no_grad():
        results = head.predict_by_feat(
            *head(tiny_feats()), batch_img_metas=metas(),
            cfg=dict(TEST_CFG, score_thr=1.0), rescale=True)
    for r in results:
        assert r.bboxes.shape == (0, 4) and r.scores.shape == (0, )
        assert r.labels.shape == (0, )


def test_predict_nms_pre_caps_per_image_and_min_size_filters():
    head = tiny_head()
    outs = head(tiny_feats())
    with torch.no_grad():
        capped = head.predict_by_feat(
            *outs, batch_img_metas=metas(),
            cfg=dict(TEST_CFG, score_thr=0., nms_pre=5), with_nms=False)
        big = head.predict_by_feat(
            *outs, batch_img_metas=metas(),
            cfg=dict(TEST_CFG, score_thr=0., min_bbox_size=20))
    assert [len(r) for r in capped] == [5, 5]
    for r in big:
        wh = r.bboxes[:, 2:] - r.bboxes[:, :2]
        assert len(r) > 0 and (wh > 20).all()


def test_predict_needs_a_test_cfg():
    head = tiny_head(test_cfg=None)
    with pytest.raises(ValueError, match='test_cfg'):
        head.predict_by_feat(*head(tiny_feats()), batch_img_metas=metas())


# --- equality with mmdet's own SSDHead -------------------------------------

def test_predictions_equal_mmdet_ssd_head():
    from mmdet.models.dense_heads import SSDHead as MMDetSSDHead
    num_classes, channels = 4, (8, 8, 8, 8, 8, 8)
    theirs = MMDetSSDHead(
        num_classes=num_classes, in_channels=channels,
        anchor_generator=dict(
            type='SSDAnchorGenerator', scale_major=False, input_size=300,
            basesize_ratio_range=(0.2, 0.9),
            strides=[8, 16, 32, 64, 100, 300],
            ratios=([2], [2, 3], [2, 3], [2, 3], [2], [2])),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                        target_stds=list(VARIANCES)),
        test_cfg=ConfigDict(TEST_CFG, nms_pre=100000)).eval()
    patch_ssd_head(theirs)  # mmdet 3.3's missing loss_cls
    ours = SSDHead(
        num_classes=num_classes, in_channels=channels,
        prior_generator=dict(type='DefaultBoxGenerator', input_size=300,
                             scale_range=(0.2, 0.9),
                             strides=(8, 16, 32, 64, 100, 300)),
        test_cfg=dict(TEST_CFG, nms_pre=100000)).eval()
    with torch.no_grad():
        for mine, their in zip([*ours.cls_convs, *ours.reg_convs],
                               [*theirs.cls_convs, *theirs.reg_convs]):
            their[0].weight.mul_(3)  # spread the scores
            mine.weight.copy_(their[0].weight)
            mine.bias.copy_(their[0].bias)
    sizes = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
    gen = torch.Generator().manual_seed(0)
    feats = [torch.randn(2, 8, h, w, generator=gen) for h, w in sizes]
    img_metas = [dict(img_shape=(300, 300), batch_input_shape=(300, 300),
                      pad_shape=(300, 300), scale_factor=sf)
                 for sf in [(0.6, 0.4), (1.5, 2.0)]]
    anchors = torch.cat(theirs.prior_generator.grid_priors(
        sizes, device='cpu'))
    torch.testing.assert_close(
        torch.cat(ours.prior_generator.grid_priors(sizes, device='cpu')),
        anchors)
    # Same priors bit for bit, to compare the heads alone.
    ours.prior_generator.grid_priors = (
        lambda *args, **kwargs: theirs.prior_generator.grid_priors(
            sizes, device='cpu'))
    with torch.no_grad():
        expected = theirs.predict_by_feat(
            *theirs(feats), batch_img_metas=img_metas, rescale=True)
        results = ours.predict_by_feat(
            *ours(feats), batch_img_metas=img_metas, rescale=True)
    for res, exp in zip(results, expected):
        assert len(exp) > 50
        assert torch.equal(res.labels, exp.labels)
        # Float noise only (torch 2.13: one softmax and decode over all
        # levels vs per level differ by an ulp or so).
        torch.testing.assert_close(res.scores, exp.scores, rtol=0, atol=1e-6)
        torch.testing.assert_close(res.bboxes, exp.bboxes, rtol=1e-5, atol=0)


def test_predict_without_max_per_img_keeps_all_after_nms():
    # mmdet's test_cfg keys are optional; max_per_img absent means no cap.
    head = tiny_head(num_classes=30)
    cfg = {k: v for k, v in TEST_CFG.items() if k != 'max_per_img'}
    cfg.update(score_thr=0.0, nms_pre=-1)
    outs = head(tiny_feats())
    with torch.no_grad():
        results = head.predict_by_feat(*outs, batch_img_metas=metas(),
                                       cfg=cfg)
        capped = head.predict_by_feat(*outs, batch_img_metas=metas(),
                                      cfg=dict(cfg, max_per_img=10 ** 6))
    assert all(len(r) > 200 for r in results)
    for r, c in zip(results, capped):
        torch.testing.assert_close(r.scores, c.scores)
        torch.testing.assert_close(r.bboxes, c.bboxes)


# --- mixed precision -------------------------------------------------------

# Level 0 and 1 of SSD300 (steps 8 and 16 on a 300 input): coordinates up to
# ~300, where bf16 (8-bit mantissa) rounds to 1 or 2 pixels.
SSD300_TWO_LEVELS = dict(type='DefaultBoxGenerator', input_size=300,
                         ratios=((2, ), (2, 3)), min_sizes=(30, 60),
                         max_sizes=(60, 111), strides=(8, 16))


def _amp_case():
    torch.manual_seed(0)
    head = SSDHead(num_classes=3, in_channels=(8, 8),
                   prior_generator=SSD300_TWO_LEVELS,
                   train_cfg=dict(assigner=ASSIGNER), test_cfg=TEST_CFG)
    gen = torch.Generator().manual_seed(3)
    feats = [torch.randn(2, 8, s, s, generator=gen) for s in (38, 19)]
    gts = [InstanceData(bboxes=torch.tensor([[13.3, 21.7, 77.1, 95.9],
                                             [151.2, 103.4, 289.6, 251.8]]),
                        labels=torch.tensor([0, 2])),
           InstanceData(bboxes=torch.tensor([[201.5, 7.25, 263.75, 61.5]]),
                        labels=torch.tensor([1]))]
    return head, feats, gts, metas(size=300)


def _loss_inputs(head, feats, gts, img_metas, amp):
    real_loss = head.multibox_loss
    head.multibox_loss = Recorder()
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
        outs = head(feats)
        head.loss_by_feat(*outs, gts, img_metas)
    args = head.multibox_loss.args
    head.multibox_loss = real_loss
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
        losses = head.loss_by_feat(*outs, gts, img_metas)
    return outs, args, losses


def test_bf16_autocast_matches_and_encodes_in_float32():
    head, feats, gts, img_metas = _amp_case()
    _, (_, _, labels, targets, weights), fp32 = _loss_inputs(
        head, feats, gts, img_metas, amp=False)
    outs, (_, _, labels16, targets16, weights16), bf16 = _loss_inputs(
        head, feats, gts, img_metas, amp=True)
    assert outs[0][0].dtype == torch.bfloat16  # autocast did run the convs
    assert targets16.dtype == torch.float32
    assert torch.equal(labels16, labels) and torch.equal(weights16, weights)
    assert (labels < 3).sum() > 3  # several positives
    torch.testing.assert_close(targets16, targets, rtol=0, atol=0)
    for key in ('loss_cls', 'loss_bbox'):
        assert bf16[key].dtype == torch.float32
        assert abs(bf16[key].item() - fp32[key].item()) <= 0.02 * abs(
            fp32[key].item()), key


def test_bf16_autocast_predicts_float32_boxes():
    head, feats, _, img_metas = _amp_case()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        results = head.predict_by_feat(*head(feats),
                                       batch_img_metas=img_metas)
    assert all(r.bboxes.dtype == torch.float32 and len(r) > 0
               for r in results)
