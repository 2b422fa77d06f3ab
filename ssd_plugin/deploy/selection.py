"""SSD's inference selection as fixed-shape tensor ops, for the ONNX graph.

:func:`select_detections` is ``SSDHead.predict_by_feat``'s selection (score
threshold, the ``nms_pre`` best (box, class) pairs, empty boxes, per-class
NMS, the ``max_per_img`` best) with standard ONNX ops only;
:class:`NonMaxSuppression` is ONNX's op, run eagerly by mmcv. Part of
:mod:`ssd_plugin.deploy.export`'s ``end2end`` graph.

Shape shorthand: ``N`` images, ``P`` default boxes, ``C`` object classes,
``k`` candidates, ``M`` boxes kept by NMS, ``K`` detections per image.
"""
from typing import Dict, Optional, Tuple

import torch
from mmcv.ops import batched_nms
from mmengine.config import ConfigDict
from torch import Tensor


class NonMaxSuppression(torch.autograd.Function):
    """ONNX's ``NonMaxSuppression`` (opset 11): per (image, class), greedy.

    Eager, mmcv's ``batched_nms`` with a group per (image, class), which
    suppresses at IoU above ``iou_threshold`` as ONNX does; the per-class
    cap is not applied there (our caller's ``max_per_img`` makes it moot).
    """

    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor, max_per_class: int,
                iou_threshold: float, score_threshold: float) -> Tensor:
        """``(M, 3)`` int64 ``(image, class, box)`` of the kept boxes.

        Args:
            boxes (Tensor): ``(N, P, 4)`` x1, y1, x2, y2.
            scores (Tensor): ``(N, C, P)``.
            max_per_class (int): ONNX's ``max_output_boxes_per_class``.
            iou_threshold (float): Suppress above this IoU.
            score_threshold (float): Only boxes scoring above it compete.
        """
        img, cls, box = torch.nonzero(scores > score_threshold,
                                      as_tuple=True)
        if img.numel() == 0:
            return scores.new_zeros((0, 3), dtype=torch.long)
        _, keep = batched_nms(boxes[img, box], scores[img, cls, box],
                              img * scores.size(1) + cls,
                              dict(iou_threshold=iou_threshold))
        return torch.stack([img[keep], cls[keep], box[keep]], 1)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class: int, iou_threshold: float,
                 score_threshold: float):
        """The standard op; corner boxes (``center_point_box=0``)."""
        return g.op(
            'NonMaxSuppression', boxes, scores,
            g.op('Constant', value_t=torch.tensor([max_per_class])),
            g.op('Constant', value_t=torch.tensor([iou_threshold])),
            g.op('Constant', value_t=torch.tensor([score_threshold])),
            center_point_box_i=0)


def deploy_test_cfg(test_cfg: Optional[dict]) -> Dict[str, float]:
    """The head's ``test_cfg`` as the graph bakes it in.

    Args:
        test_cfg (dict): ``score_thr``, ``nms_pre``, ``nms.iou_threshold``,
            ``max_per_img`` and ``min_bbox_size`` as in ``SSDHead``.

    Returns:
        dict: ``score_thr``, ``nms_pre`` (<= 0: all), ``iou_threshold``,
        ``max_per_img``, ``min_bbox_size``.

    Raises:
        ValueError: Without a ``test_cfg``, NMS or ``max_per_img``, for
            another NMS than plain ``nms``, or a positive
            ``min_bbox_size`` (original-image pixels, unknown to the graph).
    """
    if not test_cfg or 'nms' not in test_cfg or test_cfg.get(
            'max_per_img', -1) <= 0:
        raise ValueError(
            f'test_cfg={test_cfg!r}: end2end export needs nms=dict(type='
            "'nms', iou_threshold=...) and max_per_img > 0 in "
            'model.test_cfg; use --mode raw to post-process yourself')
    cfg = ConfigDict(test_cfg)
    if cfg.nms.get('type', 'nms') != 'nms':
        raise ValueError(f'test_cfg.nms.type={cfg.nms.type!r}: ONNX has '
                         "plain NMS only; set nms=dict(type='nms', ...)")
    if cfg.get('min_bbox_size', -1) > 0:
        raise ValueError(
            f'test_cfg.min_bbox_size={cfg.min_bbox_size} is in original-'
            'image pixels, which the graph does not know; set it to 0 (drop '
            'empty boxes) or -1 (keep all) before exporting')
    return dict(score_thr=float(cfg.get('score_thr', 0.)),
                nms_pre=int(cfg.get('nms_pre', -1)),
                iou_threshold=float(cfg.nms.iou_threshold),
                max_per_img=int(cfg.max_per_img),
                min_bbox_size=float(cfg.get('min_bbox_size', -1)))


def _take(values: Tensor, inds: Tensor) -> Tensor:
    """``(N, k, D)`` rows ``inds`` ``(N, k)`` of each image's ``(N, P, D)``
    ``values``: one ONNX ``Gather`` on the flattened rows (a ``GatherElements``
    with expanded indices is refused by OpenVINO when ``values`` is a slice
    of a wider tensor)."""
    # Static row count and width (ints): the backends need NMS's box width.
    num_rows, width = int(values.shape[1]), int(values.shape[2])
    offsets = torch.arange(inds.shape[0], device=inds.device)[:, None]
    return values.reshape(-1, width)[inds + offsets * num_rows]


def _candidates(boxes: Tensor, scores: Tensor,
                nms_pre: int) -> Tuple[Tensor, Tensor]:
    """The (box, class) pairs that compete in NMS, as NMS takes them.

    With ``0 < nms_pre < P * C``: the ``nms_pre`` best pairs (``k =
    nms_pre``), each pair's box and, per class, its score where the pair is
    of that class, else 0; otherwise every box with its scores (``k = P``).
    Per-class NMS on the first form decides as on the second restricted to
    the chosen pairs, over ``C * k`` instead of ``C * P`` scores.

    The best pairs are found among the boxes of the ``nms_pre`` highest
    class scores: a box holding one of the ``nms_pre`` best pairs has a
    higher best score than all but at most ``nms_pre - 1`` boxes, so the
    ``TopK`` over pairs scans ``nms_pre * C`` scores, not ``P * C``
    (SSDLite-320 on COCO: 80 000 instead of 258 720).

    Returns:
        tuple[Tensor, Tensor]: ``(N, k, 4)`` boxes and ``(N, C, k)``
        scores.
    """
    num_boxes, num_classes = scores.shape[1:]
    if not 0 < nms_pre < num_boxes * num_classes:
        return boxes, scores.transpose(1, 2)
    if nms_pre < num_boxes:
        _, box_inds = scores.max(-1)[0].topk(nms_pre, dim=1)  # (N, k)
        scores, boxes = _take(scores, box_inds), _take(boxes, box_inds)
    top, pairs = scores.flatten(1).topk(nms_pre, dim=1)  # box * C + label
    cand_boxes = _take(boxes, torch.div(pairs, num_classes,
                                        rounding_mode='floor'))
    classes = torch.arange(num_classes, device=scores.device)[:, None]
    of_class = (pairs % num_classes)[:, None, :] == classes  # (N, C, k)
    return cand_boxes, torch.where(of_class, top[:, None, :],
                                   top.new_zeros(()))


def select_detections(boxes: Tensor, scores: Tensor,
                      cfg: Dict[str, float]) -> Tuple[Tensor, Tensor]:
    """``SSDHead.predict_by_feat``'s selection as fixed-shape tensor ops.

    The ``nms_pre`` best (box, class) pairs per image (:func:`_candidates`),
    of which those above ``score_thr`` and (``min_bbox_size >= 0``) not
    empty compete in per-class NMS, then the ``max_per_img`` best: the same
    order of steps as the head.

    Args:
        boxes (Tensor): ``(N, P, 4)`` decoded, clipped to the input.
        scores (Tensor): ``(N, P, C)`` class probabilities.
        cfg (dict): From :func:`deploy_test_cfg`.

    Returns:
        tuple[Tensor, Tensor]: ``dets`` ``(N, K, 5)`` and ``labels``
        ``(N, K)``; rows past an image's detections are zeros.
    """
    _, _, num_classes = scores.shape
    cand_boxes, cand = _candidates(boxes, scores, cfg['nms_pre'])
    num_cands = cand.size(2)
    if cfg['min_bbox_size'] >= 0:
        wh = cand_boxes[..., 2:] - cand_boxes[..., :2]
        big = (wh > cfg['min_bbox_size']).all(-1)[:, None, :]
        cand = torch.where(big, cand, cand.new_zeros(()))
    # NMS drops what scores at most score_thr (and 0: the out-of-race).
    kept = NonMaxSuppression.apply(cand_boxes, cand, cfg['max_per_img'],
                                   cfg['iou_threshold'],
                                   max(cfg['score_thr'], 0.))
    index = (kept[:, 0] * num_classes + kept[:, 1]) * num_cands + kept[:, 2]
    keep = torch.zeros_like(cand).flatten().scatter(0, index, 1.)
    final = torch.where(keep.view_as(cand) > 0, cand, cand.new_zeros(()))
    k = min(cfg['max_per_img'], num_classes * num_cands)
    top_scores, top = final.flatten(1).topk(k, dim=1)  # c * k' + candidate
    cand_inds = top % num_cands
    found = top_scores > 0  # (N, K); explicit casts: ONNX has no bool Mul
    dets = torch.gather(cand_boxes, 1,
                        cand_inds[..., None].expand(-1, -1, 4))
    dets = torch.cat([dets, top_scores[..., None]], -1) * found[
        ..., None].to(dets.dtype)
    labels = torch.div(top, num_cands, rounding_mode='floor') * found.long()
    return dets, labels
