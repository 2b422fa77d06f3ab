"""SSD's head: predictors (section 2.1), matching and loss (2.2), inference
(3). Shapes: ``N`` images; ``A_l`` boxes per location of level ``l``
(``H_l x W_l``); ``P`` boxes per image; ``C`` classes, background index
``C``; ``K`` candidates. Rows go level, location, box (mmdet's order).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.ops import batched_nms
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import (ConfigType, InstanceList, OptConfigType,
                         OptInstanceList, OptMultiConfig)
from mmengine.config import ConfigDict
from mmengine.model import caffe2_xavier_init
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ssd_plugin.models.conv_layers import conv_norm_act, use_channels_last
from ssd_plugin.registry import MODELS, TASK_UTILS


def flatten_levels(maps: Sequence[Tensor], channels: int) -> Tensor:
    """Per-level ``(N, A_l * channels, H_l, W_l)`` maps to ``(N, P, channels)``,
    one row per default box (``channels``: ``C + 1`` or 4)."""
    # (N, A*k, H, W) -> (N, H, W, A*k) -> (N, H*W*A, k); reshape, not view:
    # the permuted (or channels-last) tensor need not be contiguous.
    return torch.cat([
        m.permute(0, 2, 3, 1).reshape(m.size(0), -1, channels) for m in maps
    ], dim=1)


def select_candidates(scores: Tensor, score_thr: float,
                      nms_pre: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(K,)`` image indices, box indices, labels and scores of the (box,
    class) pairs of ``(N, P, C)`` ``scores`` above ``score_thr``, the ``nms_pre``
    best per image (``<= 0``: all), by image then score, one ``topk`` each."""
    num_classes = scores.size(2)
    flat = scores.flatten(1)  # (N, P * C), index = box * C + label
    above = flat > score_thr
    k = flat.size(1) if nms_pre <= 0 else min(nms_pre, flat.size(1))
    # topk's cost grows with k: ask for no more than an image has.
    k = min(k, int(above.sum(1).max())) if above.numel() else 0
    top, pairs = flat.masked_fill(~above, float('-inf')).topk(k, dim=1)
    valid = top > score_thr
    img_inds = torch.arange(flat.size(0), device=flat.device)[:, None]
    pairs = pairs[valid]
    return (img_inds.expand_as(valid)[valid], pairs // num_classes,
            pairs % num_classes, top[valid])


def rank_in_group(groups: Tensor, num_groups: int) -> Tuple[Tensor, Tensor]:
    """``(K,)`` rank of each entry in its group and ``(num_groups,)`` group
    sizes, for ``(K,)`` non-decreasing group ids."""
    counts = torch.bincount(groups, minlength=num_groups)
    starts = counts.cumsum(0) - counts
    ranks = torch.arange(groups.numel(), device=groups.device) - starts[groups]
    return ranks, counts


# Candidates per image, in units of max_per_img, that SSDHead's NMS tries
# first (see SSDHead._nms).
NMS_PROBE = 4


@MODELS.register_module()
class SSDHead(BaseDenseHead):
    """SSD's head (section 2.1) with its matching, loss and inference.

    Args:
        num_classes (int): Object classes ``C``.
        prior_generator (dict): Fixes the levels and ``A_l``.
        bbox_coder (dict): Caffe's variances as ``target_stds``.
        loss (dict): The MultiBox loss and its hyper-parameters.
        train_cfg (dict, optional): ``assigner``; with ``ignore_iof_thr > 0``
            boxes on ignored ground truth get weight 0 (not positive, not mined).
        test_cfg (dict, optional): mmdet's SSD keys, all optional but ``nms``;
            ``nms_pre`` counts an image's (box, class) pairs over all levels.
        use_depthwise (bool): SSDLite's predictors; ``norm_cfg`` and
            ``act_cfg`` follow their depthwise conv.
    """

    def __init__(self,
                 num_classes: int = 80,
                 in_channels: Sequence[int] = (512, 1024, 512, 256, 256, 256),
                 prior_generator: ConfigType = dict(
                     type='DefaultBoxGenerator', input_size=300,
                     strides=(8, 16, 32, 64, 100, 300)),
                 bbox_coder: ConfigType = dict(
                     type='DeltaXYWHBBoxCoder',
                     target_means=(0., 0., 0., 0.),
                     target_stds=(0.1, 0.1, 0.2, 0.2)),
                 loss: ConfigType = dict(type='MultiBoxLoss',
                                         neg_pos_ratio=3.0),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 use_depthwise: bool = False,
                 norm_cfg: OptConfigType = None,
                 act_cfg: OptConfigType = dict(type='ReLU', inplace=True),
                 channels_last: bool = True,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'num_classes={num_classes!r} must be a '
                             'positive int (object classes, no background)')
        self.num_classes = num_classes
        self.cls_out_channels = num_classes + 1  # softmax, background last
        self.prior_generator = TASK_UTILS.build(prior_generator)
        self.num_base_priors = list(self.prior_generator.num_base_priors)
        if len(in_channels) != len(self.num_base_priors):
            raise ValueError(
                f'in_channels={tuple(in_channels)} has {len(in_channels)} '
                f'levels but the prior generator has '
                f'{len(self.num_base_priors)} (boxes per location '
                f'{self.num_base_priors}); give one channel count per level')
        self.in_channels = tuple(in_channels)
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.multibox_loss = MODELS.build(loss)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.assigner = None
        if train_cfg is not None and 'assigner' in train_cfg:
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])
        # Per level: logits (A_l * (C + 1) channels), then offsets (A_l * 4).
        self.cls_convs, self.reg_convs = (nn.ModuleList(
            self._predictor(c, a * k, use_depthwise, norm_cfg, act_cfg)
            for c, a in zip(self.in_channels, self.num_base_priors))
            for k in (self.cls_out_channels, 4))
        use_channels_last(self, channels_last)

    @staticmethod
    def _predictor(in_channels: int, out_channels: int, use_depthwise: bool,
                   norm_cfg: OptConfigType,
                   act_cfg: OptConfigType) -> nn.Module:
        """A 3x3 conv (section 2.1), or SSDLite's (MobileNetV2 paper, 6.2)
        depthwise 3x3, norm, act, 1x1: ``(N, C_l, H, W)`` to ``(N,
        out_channels, H, W)``."""
        if not use_depthwise:
            return nn.Conv2d(in_channels, out_channels, 3, padding=1)
        return nn.Sequential(
            *conv_norm_act(in_channels, in_channels, 3, padding=1,
                           groups=in_channels, norm_cfg=norm_cfg,
                           act_cfg=act_cfg),
            nn.Conv2d(in_channels, out_channels, 1))

    def init_weights(self) -> None:
        """Caffe's init (``CreateMultiBoxHead``): "xavier" convs
        (``caffe2_xavier_init``), zero bias; then ``init_cfg``."""
        for module in [*self.cls_convs.modules(), *self.reg_convs.modules()]:
            if isinstance(module, nn.Conv2d):
                caffe2_xavier_init(module, bias=0)
        super().init_weights()

    def forward(
            self, x: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Per level ``(N, in_channels[l], H_l, W_l)`` maps to logits ``(N, A_l *
        (C + 1), H_l, W_l)`` and offsets ``(N, A_l * 4, H_l, W_l)``."""
        if len(x) != len(self.cls_convs):
            raise ValueError(
                f'SSDHead got {len(x)} feature maps but has '
                f'{len(self.cls_convs)} levels (boxes per location '
                f'{self.num_base_priors}); the neck must output one map per '
                'level of the prior generator')
        cls_scores = [conv(feat) for conv, feat in zip(self.cls_convs, x)]
        bbox_preds = [conv(feat) for conv, feat in zip(self.reg_convs, x)]
        return cls_scores, bbox_preds

    def _priors(self, cls_scores: Sequence[Tensor],
                batch_img_metas: List[dict]) -> Tensor:
        """``(P, 4)`` default boxes, float32 whatever the head's dtype (as mmdet's
        training anchors: bf16 is off by up to a pixel at 300). From the maps
        of the batch being scored, no probe: ``utils.network_input.
        default_boxes`` probes for the same boxes when no batch is at hand."""
        meta = batch_img_metas[0]
        input_shape = meta.get('batch_input_shape',
                               meta.get('pad_shape', meta.get('img_shape')))
        featmap_sizes = [tuple(score.shape[-2:]) for score in cls_scores]
        priors = self.prior_generator.grid_priors(
            featmap_sizes, dtype=torch.float32,
            device=cls_scores[0].device, input_shape=input_shape)
        return torch.cat([get_box_tensor(p) for p in priors])

    def _targets_single(self, priors: Tensor, gt_instances: InstanceData,
                        gt_instances_ignore: Optional[InstanceData]
                        ) -> Tuple[Tensor, Tensor, Tensor]:
        """One image's matching (section 2.2): ``(P,)`` labels (``C``:
        background), ``(P, 4)`` matched boxes (the prior itself where unmatched:
        encodes to 0) and ``(P,)`` weights (0 where the assigner ignores)."""
        result = self.assigner.assign(
            InstanceData(priors=priors), gt_instances, gt_instances_ignore)
        pos = result.gt_inds > 0
        labels = torch.full_like(result.gt_inds, self.num_classes)
        matched = priors.clone()
        if pos.any():
            gt_inds = result.gt_inds[pos] - 1
            labels[pos] = gt_instances.labels[gt_inds].long()
            matched[pos] = get_box_tensor(gt_instances.bboxes)[gt_inds].to(
                priors.dtype)
        weights = (result.gt_inds >= 0).to(priors.dtype)
        return labels, matched, weights

    def loss_by_feat(
            self,
            cls_scores: List[Tensor],
            bbox_preds: List[Tensor],
            batch_gt_instances: InstanceList,
            batch_img_metas: List[dict],
            batch_gt_instances_ignore: OptInstanceList = None
    ) -> Dict[str, Tensor]:
        """``loss_cls`` and ``loss_bbox`` of a batch: match per image (ground truth
        ``bboxes`` ``(G, 4)``, ``labels`` ``(G,)``; ignored ground truth such as VOC
        difficult), one loss call. ``batch_img_metas`` give
        ``batch_input_shape``."""
        if self.assigner is None:
            raise ValueError(
                'SSDHead needs train_cfg=dict(assigner=...) to compute the '
                "loss, e.g. dict(type='MaxIoUAssigner', pos_iou_thr=0.5, "
                'neg_iou_thr=0.5, min_pos_iou=0., gt_max_assign_all=False)')
        if batch_gt_instances_ignore is None:
            batch_gt_instances_ignore = [None] * len(batch_gt_instances)
        priors = self._priors(cls_scores, batch_img_metas)
        # Matching and encoding in float32 whatever the autocast.
        with torch.autocast(priors.device.type, enabled=False):
            labels, matched, weights = (torch.stack(t) for t in zip(*[
                self._targets_single(priors, gt, ignore) for gt, ignore in
                zip(batch_gt_instances, batch_gt_instances_ignore)]))
            # One encode for the batch: (N * P, 4) rows.
            bbox_targets = self.bbox_coder.encode(
                priors.repeat(len(batch_gt_instances), 1),
                matched.flatten(0, 1)).view_as(matched)
        # The loss in float32 as well: bf16 logits and offsets are upcast.
        loss_cls, loss_bbox = self.multibox_loss(
            flatten_levels(cls_scores, self.cls_out_channels).float(),
            flatten_levels(bbox_preds, 4).float(), labels, bbox_targets,
            weights)
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox)

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        score_factors: Optional[List[Tensor]] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: OptConfigType = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> InstanceList:
        """Detections of a batch (section 3, "Inference"), vectorised: softmax;
        pairs above ``score_thr``, ``nms_pre`` per image; decode, clip, rescale;
        ``min_bbox_size``; one ``batched_nms``; ``max_per_img`` per image. ``cfg``
        replaces ``test_cfg``; ``score_factors`` is unused (mmdet's interface).

        Returns:
            list[InstanceData]: ``bboxes`` ``(D, 4)``, ``scores`` and ``labels``
            ``(D,)`` per image, best first when ``with_nms``.
        """
        cfg = self.test_cfg if cfg is None else cfg
        if cfg is None:
            raise ValueError(
                "SSDHead needs a test_cfg to predict, e.g. dict(nms_pre=1000, "
                "score_thr=0.02, nms=dict(type='nms', iou_threshold=0.45), "
                'min_bbox_size=0, max_per_img=200)')
        cfg = ConfigDict(cfg)
        # float32 (as the priors): NMS takes boxes and scores of one dtype.
        scores = flatten_levels(cls_scores, self.cls_out_channels).float(
        ).softmax(-1)[..., :-1]  # (N, P, C): background dropped
        img_inds, box_inds, labels, cand_scores = select_candidates(
            scores, cfg.get('score_thr', 0.), cfg.get('nms_pre', -1))
        boxes = self._decode(
            self._priors(cls_scores, batch_img_metas)[box_inds],
            flatten_levels(bbox_preds, 4)[img_inds, box_inds].float(),
            img_inds,
            batch_img_metas, rescale)
        keep = self._valid_size(boxes, cfg.get('min_bbox_size', -1))
        if with_nms and keep.numel():
            keep = self._nms(boxes, cand_scores, labels, img_inds, keep, cfg)
        max_per_img = cfg.get('max_per_img', -1) if with_nms else -1
        return self._split(boxes, cand_scores, labels, img_inds, keep,
                           scores.size(0), max_per_img)

    def _batched_nms(self, boxes: Tensor, scores: Tensor, labels: Tensor,
                     img_inds: Tensor, inds: Tensor, nms_cfg: dict) -> Tensor:
        """The entries of ``inds`` one NMS call keeps (a group per (image,
        class)), by descending score."""
        groups = img_inds[inds] * self.num_classes + labels[inds]
        _, order = batched_nms(boxes[inds], scores[inds], groups, nms_cfg)
        return inds[order]

    def _nms(self, boxes: Tensor, scores: Tensor, labels: Tensor,
             img_inds: Tensor, keep: Tensor, cfg: ConfigDict) -> Tensor:
        """Candidates ``keep`` (by image, best first) that survive NMS. Greedy NMS
        decides a box on better boxes of its class only, so NMS over each image's
        ``NMS_PROBE * max_per_img`` best is exact for them: the result if it keeps
        ``max_per_img`` per image that had more (saves mmcv's all-pairs CPU NMS).
        """
        max_per_img = cfg.get('max_per_img', -1)
        if max_per_img > 0:
            num_imgs = int(img_inds[keep].max()) + 1
            rank, counts = rank_in_group(img_inds[keep], num_imgs)
            probe = keep[rank < NMS_PROBE * max_per_img]
            if probe.numel() < keep.numel():
                kept = self._batched_nms(boxes, scores, labels, img_inds,
                                         probe, cfg.nms)
                enough = torch.bincount(img_inds[kept], minlength=num_imgs)
                if bool(((enough >= max_per_img) |
                         (counts <= NMS_PROBE * max_per_img)).all()):
                    return kept
        return self._batched_nms(boxes, scores, labels, img_inds, keep,
                                 cfg.nms)

    def _decode(self, priors: Tensor, deltas: Tensor, img_inds: Tensor,
                batch_img_metas: List[dict], rescale: bool) -> Tensor:
        """``(K, 4)`` boxes clipped to their image, optionally rescaled."""
        boxes = get_box_tensor(self.bbox_coder.decode(priors, deltas))
        # Clip per candidate to its own image's (w, h, w, h), as mmdet's
        # decode(max_shape=img_shape) does image by image.
        sizes = boxes.new_tensor(
            [[m['img_shape'][1], m['img_shape'][0]] for m in batch_img_metas])
        boxes = torch.min(boxes.clamp(min=0), sizes.repeat(1, 2)[img_inds])
        if rescale:
            # mmdet multiplies by 1 / scale_factor (computed in Python).
            inverse = boxes.new_tensor(
                [[1 / s for s in m['scale_factor']] for m in batch_img_metas])
            boxes = boxes * inverse.repeat(1, 2)[img_inds]
        return boxes

    @staticmethod
    def _valid_size(boxes: Tensor, min_bbox_size: float) -> Tensor:
        """Indices of boxes wider and taller than ``min_bbox_size`` (negative:
        all, mmdet's convention)."""
        if min_bbox_size < 0:
            return torch.arange(boxes.size(0), device=boxes.device)
        wh = boxes[:, 2:] - boxes[:, :2]
        return torch.nonzero((wh > min_bbox_size).all(1), as_tuple=True)[0]

    def _split(self, boxes: Tensor, scores: Tensor, labels: Tensor,
               img_inds: Tensor, keep: Tensor, num_imgs: int,
               max_per_img: int) -> InstanceList:
        """Per image the kept candidates, at most ``max_per_img`` of them."""
        results = []
        for img in range(num_imgs):
            inds = keep[img_inds[keep] == img]
            if max_per_img > 0:
                inds = inds[:max_per_img]
            results.append(InstanceData(
                bboxes=boxes[inds], scores=scores[inds], labels=labels[inds]))
        return results
