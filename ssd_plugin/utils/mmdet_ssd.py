"""MMDetection's own SSD300 as the reference our SSD is measured against,
and random detectors that score like trained ones.

mmdet's is built from the config shipped in its wheel without a download,
with mmdet 3.3's predict crash patched (its ``SSDHead`` skips
``AnchorHead.__init__``: ``'SSDHead' object has no attribute 'loss_cls'``,
mmdet #11063/#11305/#11780). A random head (mmdet's or ours) is made to
score like a trained one, so that post-processing does the work it does on
real detections.
"""
import logging
import os.path as osp
import warnings
from typing import List, Optional, Sequence, Union

import mmdet
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from torch import Tensor, nn

from ssd_plugin.models.ssd_head import flatten_levels
from ssd_plugin.utils.config import load_config

# mmdet 3.3's SSD300 COCO config, shipped in its wheel.
MMDET_SSD300 = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'ssd',
                        'ssd300_coco.py')


def patch_ssd_head(head: nn.Module) -> None:
    """Give mmdet 3.3's ``SSDHead`` the ``loss_cls`` its ``predict`` reads.

    ``predict_by_feat`` reads ``loss_cls.use_sigmoid`` and nothing else of
    it; SSD's scores are a softmax, so ``use_sigmoid=False``. A head that
    already has ``loss_cls`` is left alone.
    """
    if not hasattr(head, 'loss_cls'):
        head.loss_cls = nn.Module()
        head.loss_cls.use_sigmoid = False


def init_without_checkpoint(config: Union[str, Config],
                            device: str = 'cpu') -> nn.Module:
    """mmdet's ``init_detector`` with no checkpoint, on purpose: its warning
    that the classes default to COCO's is dropped (the config's classes, or
    the caller's, are set afterwards), every other warning passes.

    mmdet sets ``warnings.simplefilter('once')`` just before that warning,
    so no filter set outside can hold it: the block records the warnings
    and re-issues all but that one.
    """
    from mmdet.apis import init_detector
    with warnings.catch_warnings(record=True) as caught:
        model = init_detector(config, None, device=device)
    for warning in caught:
        if not str(warning.message).startswith('checkpoint is None'):
            warnings.warn_explicit(warning.message, warning.category,
                                   warning.filename, warning.lineno)
    return model


def random_detector(config: Union[str, Config],
                    device: str = 'cpu') -> nn.Module:
    """The detector of ``config`` with its random initial weights.

    ``init_detector`` without a checkpoint, then ``init_weights`` (the
    config's init, e.g. Xavier for our head; draws from torch's generator:
    seed it first), its log quietened.

    Args:
        config (str | Config): A config file or a loaded config (read by
            ``init_detector``; an ``init_cfg`` that downloads would).
        device (str): Where to put it.

    Returns:
        nn.Module: The detector in eval mode, ``cfg`` set.
    """
    model = init_without_checkpoint(config, device)
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # init's log
    model.init_weights()
    return model.eval()


def build_mmdet_ssd300(device: str = 'cpu',
                       nms_pre: Optional[int] = None) -> nn.Module:
    """mmdet's SSD300 (COCO, 80 classes) with random weights, patched.

    Args:
        device (str): Where to put it.
        nms_pre (int, optional): Overrides ``test_cfg.nms_pre`` (mmdet caps
            candidates per level, 1000 each).

    Returns:
        nn.Module: mmdet's ``SingleStageDetector`` in eval mode.
    """
    cfg = load_config(MMDET_SSD300, set_scope=False)
    cfg.model.backbone.init_cfg = None  # no ImageNet download
    if nms_pre is not None:
        cfg.model.test_cfg.nms_pre = nms_pre
    model = random_detector(cfg, device)
    patch_ssd_head(model.bbox_head)
    return model


def _last_conv(module: nn.Module) -> nn.Conv2d:
    """The predictor conv: the module itself or its last ``Conv2d`` (mmdet
    wraps each in a ``Sequential``, SSDLite ends with a 1x1)."""
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)][-1]


@torch.no_grad()
def calibrate_head(model: nn.Module, inputs: Tensor, logit_std: float = 1.0,
                   background_bias: float = 7.0) -> None:
    """Rescale a random SSD head in place to score like a trained one.

    Random weights score every (box, class) pair about ``1 / (C + 1)``: NMS
    would see tens of thousands or none. Per level, the class logits on
    ``inputs`` get standard deviation ``logit_std`` and zero bias, except
    ``background_bias`` on the background (index ``C`` of ``C + 1``, mmdet's
    and our order); the box offsets unit deviation. With the defaults a few
    thousand of SSD300's 698,560 pairs pass a 0.01 threshold.

    Args:
        model (nn.Module): mmdet's or our SSD (``extract_feat``, a
            ``bbox_head`` with ``cls_convs``, ``reg_convs`` and
            ``cls_out_channels``).
        inputs (Tensor): ``(N, 3, H, W)`` network inputs (preprocessed).
        logit_std (float): Class logits' standard deviation.
        background_bias (float): Added to the background logit.
    """
    head = model.bbox_head
    scores = head.cls_out_channels
    feats = model.extract_feat(inputs)
    for feat, cls, reg in zip(feats, head.cls_convs, head.reg_convs):
        for body, std in ((cls, logit_std), (reg, 1.0)):
            # The last conv ends ``body``: its output scales with its weight.
            conv = _last_conv(body)
            conv.bias.zero_()
            conv.weight.mul_(std / body(feat).float().std().clamp(min=1e-12))
        _last_conv(cls).bias[scores - 1::scores] = background_bias


@torch.no_grad()
def count_candidates(model: nn.Module, inputs: Sequence[Tensor],
                     score_thr: float) -> List[int]:
    """Per network input, the (box, class) pairs ``model`` scores above
    ``score_thr``: what its NMS sees before ``nms_pre``.

    Args:
        model (nn.Module): mmdet's or our SSD (``extract_feat``, a
            ``bbox_head`` with ``cls_out_channels``, background last).
        inputs (Sequence[Tensor]): ``(1, 3, H, W)`` network inputs
            (:func:`~ssd_plugin.utils.network_input.network_inputs`).
        score_thr (float): Softmax score over ``C + 1`` classes.

    Returns:
        list[int]: One count per input.
    """
    head = model.bbox_head
    counts = []
    for x in inputs:
        cls_scores, _ = head(model.extract_feat(x))
        scores = flatten_levels(cls_scores, head.cls_out_channels).softmax(-1)
        counts.append(int((scores[..., :-1] > score_thr).sum()))
    return counts
