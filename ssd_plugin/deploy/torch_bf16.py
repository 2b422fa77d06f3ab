"""Torch bf16 inference: the network in bf16 autocast, post-processing in FP32.

``torch.autocast`` around a whole ``inference_detector`` call would leave
the head's outputs in bf16, and the head then builds its default boxes in
their dtype: bf16's 8-bit mantissa puts a box edge at 300 px up to 1 px off.
:func:`bf16_network` autocasts only the backbone, neck and head convolutions
and hands FP32 maps to the post-processing::

    with bf16_network(model):
        result = inference_detector(model, image)
"""
import contextlib
from typing import Callable, Iterator

import torch
from torch import nn


def _autocast(function: Callable, to_float: bool) -> Callable:
    """``function`` run under CPU bf16 autocast (outputs cast back)."""

    def run(*args, **kwargs):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            outputs = function(*args, **kwargs)
        if not to_float:
            return outputs
        return tuple([t.float() for t in level] for level in outputs)

    return run


@contextlib.contextmanager
def bf16_network(detector: nn.Module) -> Iterator[nn.Module]:
    """Run ``detector``'s network in bf16 inside the ``with`` block.

    Args:
        detector (nn.Module): mmdet ``SingleStageDetector`` whose head's
            ``forward`` returns ``(cls_scores, bbox_preds)`` lists (SSDHead).

    Yields:
        nn.Module: ``detector``, with ``extract_feat`` and the head's
        ``forward`` wrapped; both are restored on exit.
    """
    head = detector.bbox_head
    detector.extract_feat = _autocast(detector.extract_feat, False)
    head.forward = _autocast(head.forward, True)
    try:
        yield detector
    finally:
        del detector.extract_feat, head.forward  # back to the class's
