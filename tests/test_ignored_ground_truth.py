"""Ignored ground truth (VOC "difficult", COCO crowd) is ignored for real.

A default box lying mostly inside an ignored box (IoF > 0.5) gets weight 0:
neither a positive nor a mined hard negative (issue 9, item 8). Checked on a
hand-built case: changing the logits of those boxes changes nothing, while
with mmdet's ``ignore_iof_thr=-1`` they are mined as background.
"""
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from ssd_plugin.models.ssd_head import SSDHead

# 64x64 input, one 8x8 level (step 8); per cell a 12x12 square, a
# sqrt(12 * 30) square and the ratio-2 pair: A = 4.
GENERATOR = dict(type='DefaultBoxGenerator', input_size=64, ratios=((2, ), ),
                 min_sizes=(12, ), max_sizes=(30, ), strides=(8, ))
ASSIGNER = dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                min_pos_iou=0., gt_max_assign_all=False)
META = dict(img_shape=(64, 64), batch_input_shape=(64, 64),
            pad_shape=(64, 64), scale_factor=(1., 1.))
NUM_CLASSES = 2
A = 4  # min square, sqrt(min*max) square, ratio 2 and its flip


@pytest.fixture(autouse=True)
def _scope():
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('ssd_plugin'):
        yield


def head(ignore_iof_thr):
    torch.manual_seed(0)
    return SSDHead(num_classes=NUM_CLASSES, in_channels=(4, ),
                   prior_generator=GENERATOR,
                   train_cfg=dict(assigner=dict(
                       ASSIGNER, ignore_iof_thr=ignore_iof_thr)))


def cell_priors(row, col):
    """Flat indices of the A default boxes of cell (row, col)."""
    return [(row * 8 + col) * A + a for a in range(A)]


def logits(boost=None):
    """(1, A * 3, 8, 8): mild scores, background favoured; ``boost``: flat
    prior indices whose class-0 logit is made huge (a confident false
    positive, i.e. a huge background loss)."""
    gen = torch.Generator().manual_seed(1)
    flat = torch.randn(1, 8 * 8 * A, NUM_CLASSES + 1, generator=gen) * 0.1
    flat[..., -1] += 1.0
    if boost:
        flat[0, boost, 0] = 40.0
    return [flat.view(1, 8, 8, A * (NUM_CLASSES + 1)).permute(0, 3, 1, 2)]


def loss_cls(ssd_head, boost=None):
    gt = InstanceData(bboxes=torch.tensor([[4., 4., 20., 20.]]),
                      labels=torch.tensor([1]))
    # A "difficult" object over cells (5..6, 5..6): centres 44 and 52.
    ignored = InstanceData(bboxes=torch.tensor([[38., 38., 58., 58.]]),
                           labels=torch.tensor([0]))
    deltas = [torch.zeros(1, A * 4, 8, 8)]
    return ssd_head.loss_by_feat(logits(boost), deltas, [gt], [META],
                                 [ignored])['loss_cls'].item()


def test_default_box_on_an_ignored_box_is_not_a_mined_negative():
    # The min square of cell (6, 6), centre (52, 52), spans 46..58: wholly
    # inside the ignored box (IoF 1), far from the ground truth.
    on_ignored = [cell_priors(6, 6)[0]]
    ssd_head = head(ignore_iof_thr=0.5)
    assert loss_cls(ssd_head, on_ignored) == pytest.approx(loss_cls(ssd_head))


def test_with_mmdet_ignore_iof_thr_minus_one_it_is_mined():
    on_ignored = [cell_priors(6, 6)[0]]
    ssd_head = head(ignore_iof_thr=-1)
    # Its loss (~40) makes it the hardest negative: it joins the mined set.
    assert loss_cls(ssd_head, on_ignored) > loss_cls(ssd_head) + 5


def test_box_far_from_ignored_box_is_still_mined():
    # Control: the same huge loss on a box far from both objects is mined.
    far = [cell_priors(0, 7)[0]]
    ssd_head = head(ignore_iof_thr=0.5)
    assert loss_cls(ssd_head, far) > loss_cls(ssd_head) + 5


def test_ignored_box_never_becomes_a_positive():
    ssd_head = head(ignore_iof_thr=0.5)
    weights = {}

    class Recorder(torch.nn.Module):
        def forward(self, cls, box, labels, targets, w):
            weights['labels'], weights['w'] = labels, w
            return cls.sum() * 0, box.sum() * 0

    ssd_head.multibox_loss = Recorder()
    loss_cls(ssd_head)
    labels, w = weights['labels'][0], weights['w'][0]
    inside = cell_priors(6, 6)[0]
    assert w[inside] == 0 and labels[inside] == NUM_CLASSES
    assert (w == 0).sum() >= 1 and (labels < NUM_CLASSES).sum() >= 1
    assert (w[labels < NUM_CLASSES] == 1).all()


@pytest.mark.parametrize('path', ['configs/ssd/ssd300_voc0712.py',
                                  'configs/ssd/ssd512_voc0712.py',
                                  'configs/ssd/ssd300_coco.py'])
def test_recipes_ignore_ignored_boxes(path):
    assigner = Config.fromfile(path).model.train_cfg.assigner
    assert assigner.ignore_iof_thr == 0.5
