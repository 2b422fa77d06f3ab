"""Our SSD300 against MMDetection's own; what makes it fast.

mmdet's SSD300 (its installed ``configs/ssd/ssd300_coco.py``) gets random
weights; ``tools/model_converters/from_mmdet.py`` converts its checkpoint
file; ours loads the result through ``init_detector``. Both then run mmdet's
``inference_detector`` on the same images -- a photograph and random ones,
none square, all resized by the test pipeline -- and must give the same
detections: mmdet's own outputs are the reference.

mmdet's ``nms_pre`` caps candidates per level, ours per image; with a cap
above the number of candidates both keep every (box, class) pair above
``score_thr``, so both ``test_cfg``s get a large ``nms_pre`` here.
"""
import importlib
import os.path as osp

import cv2
import matplotlib
import numpy as np
import pytest
import torch
from mmdet.apis import inference_detector, init_detector
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint
from torch import nn

from ssd_plugin.models import AtrousVGG, SSDHead
from ssd_plugin.models import ssd_head as ssd_head_module
from ssd_plugin.models.ssd_head import rank_in_group
from ssd_plugin.registry import MODELS
from ssd_plugin.utils.mmdet_ssd import (MMDET_SSD300, calibrate_head,
                                       patch_ssd_head)
from ssd_plugin.utils.network_input import inference_pipelines, network_inputs

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
OUR_CONFIG = osp.join(REPO_ROOT, 'configs', 'ssd', 'ssd300_coco.py')
CONVERTERS = osp.join(REPO_ROOT, 'tools', 'model_converters')
PHOTO = osp.join(osp.dirname(matplotlib.__file__), 'mpl-data',
                 'sample_data', 'grace_hopper.jpg')
TEST_CFG = dict(nms_pre=100000, score_thr=0.02, min_bbox_size=0,
                nms=dict(type='nms', iou_threshold=0.45), max_per_img=200)
CHANNELS_LAST = torch.channels_last


def _images():
    """BGR: the photograph (600x512) and two random non-square images."""
    rng = np.random.default_rng(0)
    return [cv2.imread(PHOTO),
            rng.integers(0, 256, (240, 320, 3), dtype=np.uint8),
            rng.integers(0, 256, (411, 257, 3), dtype=np.uint8)]


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """``(mmdet's SSD300, ours)`` with the same weights, both on the CPU."""
    torch.manual_seed(0)
    cfg = Config.fromfile(MMDET_SSD300)
    cfg.model.backbone.init_cfg = None  # no download
    cfg.model.test_cfg = TEST_CFG
    theirs = init_detector(cfg, None, device='cpu')
    theirs.init_weights()
    patch_ssd_head(theirs.bbox_head)  # mmdet 3.3's missing loss_cls
    # Spread the random head's scores (else every score is ~1/81 or
    # saturated, and ties make any comparison of rankings meaningless).
    calibrate_head(theirs, network_inputs(cfg, _images()[:1])[0])
    folder = tmp_path_factory.mktemp('equivalence')
    src, dst = str(folder / 'mmdet.pth'), str(folder / 'ours.pth')
    torch.save(dict(state_dict=theirs.state_dict(),
                    meta=dict(dataset_meta=theirs.dataset_meta)), src)
    with pytest.MonkeyPatch.context() as patch:  # as its command line sees it
        patch.syspath_prepend(CONVERTERS)
        importlib.import_module('from_mmdet').main([src, dst])
    ours_cfg = Config.fromfile(OUR_CONFIG)
    ours_cfg.model.test_cfg = TEST_CFG
    return theirs.eval(), init_detector(ours_cfg, dst, device='cpu')


def _assert_same(result, expected) -> None:
    """Same detections; the order may differ only between near-equal scores.

    The two models' convolutions round differently (channels-last and not),
    so two scores a few 1e-7 apart can swap places. Each of mmdet's
    detections is matched to ours of the same label with the nearest box:
    after NMS no two boxes of a class overlap by more than the IoU
    threshold, so the match is unique.
    """
    ours, theirs = result.pred_instances, expected.pred_instances
    assert len(ours) == len(theirs)
    assert (ours.scores[:-1] >= ours.scores[1:]).all()
    gap = (ours.bboxes[:, None] - theirs.bboxes[None]).abs().amax(-1)
    gap[ours.labels[:, None] != theirs.labels[None]] = float('inf')
    match = gap.argmin(0)  # ours for each of theirs
    assert match.unique().numel() == len(theirs)
    assert torch.equal(ours.labels[match], theirs.labels)
    torch.testing.assert_close(ours.scores[match], theirs.scores, rtol=1e-4,
                               atol=1e-6)
    torch.testing.assert_close(ours.bboxes[match], theirs.bboxes, rtol=1e-4,
                               atol=1e-3)
    # Apart from such swaps, the same order.
    assert (match == torch.arange(len(match))).float().mean() > 0.95


def test_same_detections_as_mmdet(models):
    theirs, ours = models
    images = _images()
    expected = inference_detector(theirs, images)
    for result, exp, image in zip(inference_detector(ours, images), expected,
                                  images):
        # A meaningful reference: many detections, varied classes and
        # scores, boxes in the original image's pixels.
        assert len(exp.pred_instances) > 50
        assert exp.pred_instances.labels.unique().numel() > 10
        assert exp.pred_instances.scores.std() > 0.01
        assert result.ori_shape == image.shape[:2]
        _assert_same(result, exp)
    # Our batched post-processing: the three images in one test_step.
    from_array = inference_pipelines(ours.cfg)[1]
    batch = pseudo_collate([from_array(dict(img=im, img_id=i))
                            for i, im in enumerate(images)])
    with torch.no_grad():
        for result, exp in zip(ours.test_step(batch), expected):
            _assert_same(result, exp)


def _conv_weights(model: nn.Module):
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_channels_last_survives_init_and_checkpoint_loading(tmp_path):
    cfg = Config.fromfile(OUR_CONFIG)
    with DefaultScope.overwrite_default_scope('ssd_plugin'):
        model, fresh = MODELS.build(cfg.model), MODELS.build(cfg.model)
    model.init_weights()
    weights = _conv_weights(model)
    assert len(weights) == 15 + 8 + 12  # VGG, extra layers, head
    assert all(w.is_contiguous(memory_format=CHANNELS_LAST) for w in weights)
    path = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=model.state_dict()), path)
    load_checkpoint(fresh, path, map_location='cpu')
    for mine, loaded in zip(weights, _conv_weights(fresh)):
        assert loaded.is_contiguous(memory_format=CHANNELS_LAST)
        assert torch.equal(mine, loaded)
    cfg.model.backbone.channels_last = False
    cfg.model.neck.channels_last = False
    cfg.model.bbox_head.channels_last = False
    with DefaultScope.overwrite_default_scope('ssd_plugin'):
        plain = MODELS.build(cfg.model)
    # (a 1x1 kernel is contiguous in both layouts)
    assert not any(w.is_contiguous(memory_format=CHANNELS_LAST)
                   for w in _conv_weights(plain) if w.size(-1) > 1)


def test_channels_last_changes_the_layout_not_the_values():
    torch.manual_seed(0)
    fast, plain = AtrousVGG(), AtrousVGG(channels_last=False)
    plain.load_state_dict(fast.state_dict())
    image = torch.randn(2, 3, 48, 40) * 50
    with torch.no_grad():
        for out_fast, out_plain in zip(fast(image), plain(image)):
            assert out_fast.is_contiguous(memory_format=CHANNELS_LAST)
            assert out_plain.is_contiguous()
            torch.testing.assert_close(out_fast, out_plain, rtol=1e-4,
                                       atol=1e-4)


# --- NMS on each image's best candidates first ------------------------------

def test_rank_in_group_by_hand():
    ranks, counts = rank_in_group(torch.tensor([0, 0, 0, 2, 2, 3]), 5)
    assert ranks.tolist() == [0, 1, 2, 0, 1, 0]
    assert counts.tolist() == [3, 0, 2, 1, 0]
    ranks, counts = rank_in_group(torch.zeros(0, dtype=torch.long), 2)
    assert ranks.numel() == 0 and counts.tolist() == [0, 0]


@pytest.mark.parametrize('iou, max_per_img, calls', [
    (0.45, 3, [2 * 4 * 3]),  # the 4 x 3 best of each image settle it
    (0.0, 60, [2 * 4 * 60, 'all']),  # NMS keeps too few of those: again
    (0.45, 1000, ['all']),  # no image has more than 4 x 1000 candidates
])
def test_nms_on_the_best_candidates_is_exact(monkeypatch, iou, max_per_img,
                                             calls):
    """Against NMS over every candidate (NMS_PROBE made huge).

    Each image has about 950 candidates above 0.05; NMS keeps about 570 at
    IoU 0.45 and 75 at IoU 0.
    """
    with DefaultScope.overwrite_default_scope('ssd_plugin'):
        torch.manual_seed(0)
        head = SSDHead(num_classes=5, in_channels=(8, 8), prior_generator=dict(
            type='DefaultBoxGenerator', input_size=64, ratios=((2, ), (2, )),
            min_sizes=(12, 30), max_sizes=(30, 60), strides=(8, 16)))
    feats = [torch.randn(2, 8, s, s) * 3 for s in (8, 4)]
    metas = [dict(img_shape=(64, 64), batch_input_shape=(64, 64),
                  scale_factor=(1., 1.))] * 2
    cfg = dict(nms_pre=-1, score_thr=0.05, min_bbox_size=0,
               nms=dict(type='nms', iou_threshold=iou),
               max_per_img=max_per_img)
    sizes = []
    batched_nms = SSDHead._batched_nms

    def record(self, boxes, scores, labels, img_inds, inds, nms_cfg):
        sizes.append(inds.numel() if inds.numel() < 1000 else 'all')
        return batched_nms(self, boxes, scores, labels, img_inds, inds,
                           nms_cfg)

    monkeypatch.setattr(SSDHead, '_batched_nms', record)
    with torch.no_grad():
        outs = head(feats)
        results = head.predict_by_feat(*outs, batch_img_metas=metas, cfg=cfg)
        assert sizes == calls
        monkeypatch.setattr(ssd_head_module, 'NMS_PROBE', 10**6)
        expected = head.predict_by_feat(*outs, batch_img_metas=metas,
                                        cfg=cfg)
    for res, exp in zip(results, expected):
        assert len(res) == min(max_per_img, len(exp)) and len(res) > 0
        assert torch.equal(res.labels, exp.labels)
        assert torch.equal(res.scores, exp.scores)
        assert torch.equal(res.bboxes, exp.bboxes)
