"""SSD's detection head: per-level 3x3 convs for scores and box offsets.

Section 2.1 ("Convolutional predictors"): on each feature map, a 3x3 conv
gives, at every location, ``A * (C + 1)`` class scores and ``A * 4`` offsets
relative to the ``A`` default boxes of that location. Section 2.2: matching
(each ground truth to its best default box, then every box with IoU > 0.5),
encoding with variances (0.1, 0.1, 0.2, 0.2) (Caffe's ``PriorBox``), and the
MultiBox loss. Section 3 ("Inference"): confidence threshold, per-class NMS at
0.45, the 200 best detections per image.

Shape shorthand: ``N`` images; ``L`` levels; ``H_l x W_l`` their maps;
``A_l`` default boxes per location of level ``l``; ``P = sum_l H_l W_l A_l``
default boxes per image; ``C`` object classes, background is class index
``C`` (mmdet's convention, softmax over ``C + 1``); ``K`` candidates.

Rows are ordered level by level, then location (row-major), then the ``A_l``
boxes of the location, as the default-box generator and mmdet's ``SSDHead``
order them, so mmdet's SSD weights carry over conv for conv.
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

from ssd_plugin.models.conv_layers import conv_norm_act
from ssd_plugin.registry import MODELS, TASK_UTILS


def flatten_levels(maps: Sequence[Tensor], channels: int) -> Tensor:
    """Concatenate per-level head outputs into one row per default box.

    Args:
        maps (Sequence[Tensor]): ``(N, A_l * channels, H_l, W_l)`` per level.
        channels (int): Values per default box (``C + 1`` or 4).

    Returns:
        Tensor: ``(N, P, channels)``.
    """
    # (N, A*k, H, W) -> (N, H, W, A*k) -> (N, H*W*A, k); reshape, not view:
    # the permuted (or channels-last) tensor need not be contiguous.
    return torch.cat([
        m.permute(0, 2, 3, 1).reshape(m.size(0), -1, channels) for m in maps
    ], dim=1)


def select_candidates(scores: Tensor, score_thr: float,
                      nms_pre: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """(box, class) pairs above ``score_thr``, the ``nms_pre`` best per image.

    One ``topk`` over each image's ``P * C`` pairs, no loop and no full sort
    (an untrained model puts nearly every pair above a low threshold).

    Args:
        scores (Tensor): ``(N, P, C)`` class probabilities.
        score_thr (float): Keep scores strictly above it.
        nms_pre (int): Pairs kept per image; ``<= 0`` keeps all.

    Returns:
        tuple[Tensor, Tensor, Tensor, Tensor]: ``(K,)`` image indices, box
        indices, labels and scores; grouped by image (ascending), by
        descending score within an image.
    """
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
    """Position of each entry within its group, for sorted group ids.

    Args:
        groups (Tensor): ``(K,)`` non-decreasing ids in ``[0, num_groups)``.
        num_groups (int): Number of groups.

    Returns:
        tuple[Tensor, Tensor]: ``(K,)`` ranks (0 for each group's first
        entry) and ``(num_groups,)`` group sizes.
    """
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
        num_classes (int): Object classes ``C``, background excluded.
            Defaults to 80.
        in_channels (Sequence[int]): Channels of each level's feature map.
            Defaults to SSD300's ``(512, 1024, 512, 256, 256, 256)``.
        prior_generator (dict): Default-box generator config; it fixes the
            levels and ``A_l``. Defaults to ``DefaultBoxGenerator`` with
            SSD300's settings.
        bbox_coder (dict): Box encoder. Defaults to mmdet's
            ``DeltaXYWHBBoxCoder`` with Caffe's variances as ``target_stds``
            ``(0.1, 0.1, 0.2, 0.2)``.
        loss (dict): The MultiBox loss (its hyper-parameters live there).
            Defaults to ``MultiBoxLoss(neg_pos_ratio=3)``.
        train_cfg (dict, optional): ``assigner``: a box assigner config,
            the paper's matching being ``MaxIoUAssigner(pos_iou_thr=0.5,
            neg_iou_thr=0.5, min_pos_iou=0., gt_max_assign_all=False)``.
            Needed for :meth:`loss_by_feat` only.
        test_cfg (dict, optional): Inference settings, mmdet's SSD keys:
            ``score_thr``, ``nms_pre``, ``nms`` (e.g. ``dict(type='nms',
            iou_threshold=0.45)``), ``max_per_img``, ``min_bbox_size`` (a
            negative value disables it). Unlike mmdet, ``nms_pre`` caps the
            (box, class) candidates of an image over all levels together
            (mmdet: per level); with a large ``nms_pre`` both keep every
            candidate above ``score_thr`` and give the same detections.
        use_depthwise (bool): SSDLite's predictors: a depthwise 3x3 conv,
            ``norm_cfg``, ``act_cfg``, then a 1x1 conv, instead of one 3x3
            conv. Defaults to False.
        norm_cfg (dict, optional): mmcv norm after the depthwise conv, e.g.
            ``dict(type='BN')``. Defaults to None.
        act_cfg (dict, optional): mmcv activation after the depthwise conv.
            Defaults to ``dict(type='ReLU', inplace=True)``.
        channels_last (bool): Keep the conv weights in the channels-last
            memory format, as ``AtrousVGG`` does with its input and weights
            (faster MKL-DNN convs; same values and state-dict shapes).
            Defaults to True.
        init_cfg (dict | list[dict], optional): Applied after
            :meth:`init_weights`' Caffe init.

    Raises:
        ValueError: If ``in_channels`` does not give one entry per level of
            the generator, or ``num_classes`` is not positive.
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
        conv_args = (use_depthwise, norm_cfg, act_cfg)
        self.cls_convs = nn.ModuleList(
            self._predictor(c, a * self.cls_out_channels, *conv_args)
            for c, a in zip(self.in_channels, self.num_base_priors))
        self.reg_convs = nn.ModuleList(
            self._predictor(c, a * 4, *conv_args)
            for c, a in zip(self.in_channels, self.num_base_priors))
        if channels_last:
            self.to(memory_format=torch.channels_last)

    @staticmethod
    def _predictor(in_channels: int, out_channels: int, use_depthwise: bool,
                   norm_cfg: OptConfigType,
                   act_cfg: OptConfigType) -> nn.Module:
        """A 3x3 conv (section 2.1), or SSDLite's separable predictor.

        SSDLite (MobileNetV2 paper, section 6.2; mmdet's ``SSDHead``):
        depthwise 3x3 -> norm -> act -> 1x1 conv, ``(N, C_l, H, W)`` to
        ``(N, out_channels, H, W)`` as the plain conv.
        """
        if not use_depthwise:
            return nn.Conv2d(in_channels, out_channels, 3, padding=1)
        return nn.Sequential(
            *conv_norm_act(in_channels, in_channels, 3, padding=1,
                           groups=in_channels, norm_cfg=norm_cfg,
                           act_cfg=act_cfg),
            nn.Conv2d(in_channels, out_channels, 1))

    def init_weights(self) -> None:
        """Caffe's init (``CreateMultiBoxHead``): "xavier" convs, zero bias.

        Caffe's ``XavierFiller`` is ``U(-sqrt(3 / fan_in), sqrt(3 /
        fan_in))``, mmengine's ``caffe2_xavier_init``. An ``init_cfg`` is
        applied afterwards.
        """
        for module in [*self.cls_convs.modules(), *self.reg_convs.modules()]:
            if isinstance(module, nn.Conv2d):
                caffe2_xavier_init(module, bias=0)
        super().init_weights()

    def forward(
            self, x: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Score and regress every default box.

        Args:
            x (Sequence[Tensor]): ``(N, in_channels[l], H_l, W_l)`` per level.

        Returns:
            tuple[list[Tensor], list[Tensor]]: Class logits ``(N, A_l *
            (C + 1), H_l, W_l)`` and box offsets ``(N, A_l * 4, H_l, W_l)``
            per level.
        """
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
        """``(P, 4)`` default boxes for these maps and this batch's input."""
        meta = batch_img_metas[0]
        input_shape = meta.get('batch_input_shape',
                               meta.get('pad_shape', meta.get('img_shape')))
        featmap_sizes = [tuple(score.shape[-2:]) for score in cls_scores]
        priors = self.prior_generator.grid_priors(
            featmap_sizes, dtype=cls_scores[0].dtype,
            device=cls_scores[0].device, input_shape=input_shape)
        return torch.cat([get_box_tensor(p) for p in priors])

    def _targets_single(self, priors: Tensor, gt_instances: InstanceData,
                        gt_instances_ignore: Optional[InstanceData]
                        ) -> Tuple[Tensor, Tensor, Tensor]:
        """Match one image's ground truth to the default boxes (sec. 2.2).

        Returns:
            tuple[Tensor, Tensor, Tensor]: Labels ``(P,)`` (``C`` for
            background), matched boxes ``(P, 4)`` (the default box itself
            where unmatched, which encodes to zeros) and weights ``(P,)``
            (0 for boxes the assigner ignores).
        """
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
        """MultiBox loss of a batch: match per image, one loss call.

        Args:
            cls_scores (list[Tensor]): ``(N, A_l * (C + 1), H_l, W_l)``.
            bbox_preds (list[Tensor]): ``(N, A_l * 4, H_l, W_l)``.
            batch_gt_instances (list[InstanceData]): Per image ``bboxes``
                ``(G, 4)`` and ``labels`` ``(G,)``.
            batch_img_metas (list[dict]): Per image meta information, with
                ``batch_input_shape`` (set by mmdet's data preprocessor).
            batch_gt_instances_ignore (list[InstanceData], optional): Boxes
                the assigner may ignore.

        Returns:
            dict[str, Tensor]: ``loss_cls`` and ``loss_bbox``, scalars.
        """
        if self.assigner is None:
            raise ValueError(
                'SSDHead needs train_cfg=dict(assigner=...) to compute the '
                "loss, e.g. dict(type='MaxIoUAssigner', pos_iou_thr=0.5, "
                'neg_iou_thr=0.5, min_pos_iou=0., gt_max_assign_all=False)')
        if batch_gt_instances_ignore is None:
            batch_gt_instances_ignore = [None] * len(batch_gt_instances)
        priors = self._priors(cls_scores, batch_img_metas)
        labels, matched, weights = (torch.stack(t) for t in zip(*[
            self._targets_single(priors, gt, ignore) for gt, ignore in zip(
                batch_gt_instances, batch_gt_instances_ignore)]))
        # One encode for the batch: (N * P, 4) rows.
        bbox_targets = self.bbox_coder.encode(
            priors.repeat(len(batch_gt_instances), 1),
            matched.flatten(0, 1)).view_as(matched)
        loss_cls, loss_bbox = self.multibox_loss(
            flatten_levels(cls_scores, self.cls_out_channels),
            flatten_levels(bbox_preds, 4), labels, bbox_targets, weights)
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox)

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        score_factors: Optional[List[Tensor]] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: OptConfigType = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> InstanceList:
        """Detections of a batch (section 3, "Inference"), vectorised.

        Softmax, background dropped; every (box, class) pair above
        ``score_thr``; the ``nms_pre`` best per image; decoded and clipped to
        the image; rescaled to the original image (``scale_factor``); boxes
        not wider and taller than ``min_bbox_size`` dropped; one
        ``batched_nms`` call for the batch, per (image, class); the
        ``max_per_img`` best per image.

        Args:
            cls_scores (list[Tensor]): ``(N, A_l * (C + 1), H_l, W_l)``.
            bbox_preds (list[Tensor]): ``(N, A_l * 4, H_l, W_l)``.
            score_factors (list[Tensor], optional): Unused (SSD has none);
                kept for mmdet's interface.
            batch_img_metas (list[dict]): Per image ``img_shape`` and, with
                ``rescale``, ``scale_factor`` ``(w_scale, h_scale)``.
            cfg (dict, optional): Overrides ``test_cfg``.
            rescale (bool): Map boxes back to the original image.
            with_nms (bool): Apply NMS and ``max_per_img``.

        Returns:
            list[InstanceData]: Per image ``bboxes`` ``(D, 4)`` (x1, y1, x2,
            y2), ``scores`` ``(D,)`` and ``labels`` ``(D,)`` in ``[0, C)``,
            by descending score when ``with_nms``.
        """
        cfg = self.test_cfg if cfg is None else cfg
        if cfg is None:
            raise ValueError(
                "SSDHead needs a test_cfg to predict, e.g. dict(nms_pre=1000, "
                "score_thr=0.02, nms=dict(type='nms', iou_threshold=0.45), "
                'min_bbox_size=0, max_per_img=200)')
        cfg = ConfigDict(cfg)
        scores = flatten_levels(cls_scores, self.cls_out_channels).softmax(
            -1)[..., :-1]  # (N, P, C): background dropped
        img_inds, box_inds, labels, cand_scores = select_candidates(
            scores, cfg.get('score_thr', 0.), cfg.get('nms_pre', -1))
        boxes = self._decode(
            self._priors(cls_scores, batch_img_metas)[box_inds],
            flatten_levels(bbox_preds, 4)[img_inds, box_inds], img_inds,
            batch_img_metas, rescale)
        keep = self._valid_size(boxes, cfg.get('min_bbox_size', -1))
        if with_nms and keep.numel():
            keep = self._nms(boxes, cand_scores, labels, img_inds, keep, cfg)
        return self._split(boxes, cand_scores, labels, img_inds, keep,
                           scores.size(0), cfg.max_per_img if with_nms else -1)

    def _batched_nms(self, boxes: Tensor, scores: Tensor, labels: Tensor,
                     img_inds: Tensor, inds: Tensor, nms_cfg: dict) -> Tensor:
        """``inds`` kept by one NMS call, a group per (image, class).

        Returns:
            Tensor: The kept entries of ``inds``, by descending score.
        """
        groups = img_inds[inds] * self.num_classes + labels[inds]
        _, order = batched_nms(boxes[inds], scores[inds], groups, nms_cfg)
        return inds[order]

    def _nms(self, boxes: Tensor, scores: Tensor, labels: Tensor,
             img_inds: Tensor, keep: Tensor, cfg: ConfigDict) -> Tensor:
        """Candidates ``keep`` (grouped by image, best first) after NMS.

        Greedy NMS keeps or drops a box on the better boxes of its class
        alone, so NMS over each image's ``NMS_PROBE * max_per_img`` best
        candidates decides them exactly as over all of them; if that keeps
        ``max_per_img`` boxes of every image that had more candidates, the
        others cannot make the result. mmcv's CPU NMS compares all pairs of
        its input, so this saves most of its time when ``nms_pre`` lets many
        thousands of candidates through; otherwise all go through NMS.

        Returns:
            Tensor: Kept candidate indices, by descending score.
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
        """Indices of boxes wider and taller than ``min_bbox_size``.

        A negative size keeps all (mmdet's convention).
        """
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
