"""Torch low-precision inference: the network in autocast, post-processing FP32.

``torch.autocast`` around a whole ``inference_detector`` call would leave
the head's outputs in bf16, and the head then builds its default boxes in
their dtype: bf16's 8-bit mantissa puts a box edge at 300 px up to 1 px off.
:func:`autocast_network` autocasts only the backbone, neck and head
convolutions, on the device the model lives on, and hands FP32 maps to the
post-processing::

    with bf16_network(model):          # or autocast_network(model, fp16)
        result = inference_detector(model, image)
"""
import contextlib
from typing import Callable, Iterator

import torch
from torch import nn


def _autocast(function: Callable, device_type: str, dtype: torch.dtype,
              to_float: bool) -> Callable:
    """``function`` run under ``device_type`` autocast to ``dtype``; with
    ``to_float`` its per-level output lists are cast back to float32."""

    def run(*args, **kwargs):
        with torch.autocast(device_type, dtype=dtype):
            outputs = function(*args, **kwargs)
        if not to_float:
            return outputs
        return tuple([t.float() for t in level] for level in outputs)

    return run


@contextlib.contextmanager
def _patched(owner: object, name: str, value: object) -> Iterator[None]:
    """``owner.name = value`` inside the block; the previous instance
    attribute (or none, the class's) afterwards, so the patches nest."""
    missing = object()
    previous = owner.__dict__.get(name, missing)
    setattr(owner, name, value)
    try:
        yield
    finally:
        if previous is missing:
            delattr(owner, name)
        else:
            setattr(owner, name, previous)


@contextlib.contextmanager
def autocast_network(detector: nn.Module,
                     dtype: torch.dtype = torch.bfloat16
                     ) -> Iterator[nn.Module]:
    """Run ``detector``'s network in ``dtype`` inside the ``with`` block.

    Autocast's device type is the one ``detector``'s parameters are on
    (``'cuda'`` for a model on a GPU, ``'cpu'`` otherwise): autocast of
    another device type would leave the network silently in FP32.

    Args:
        detector (nn.Module): mmdet ``SingleStageDetector`` whose head's
            ``forward`` returns ``(cls_scores, bbox_preds)`` lists (SSDHead,
            mmdet's SSDHead).
        dtype (torch.dtype): ``torch.bfloat16`` (default) or
            ``torch.float16`` (CUDA; fp16's range suits inference with
            trained weights, see docs/gpu.md).

    Yields:
        nn.Module: ``detector``, with ``extract_feat`` and the head's
        ``forward`` wrapped; both are restored on exit.
    """
    device_type = next(detector.parameters()).device.type
    head = detector.bbox_head
    with _patched(detector, 'extract_feat',
                  _autocast(detector.extract_feat, device_type, dtype,
                            False)), \
            _patched(head, 'forward',
                     _autocast(head.forward, device_type, dtype, True)):
        yield detector


def bf16_network(detector: nn.Module) -> 'contextlib.AbstractContextManager':
    """:func:`autocast_network` in bfloat16 (the CPU's and GPU's
    low-precision type that needs no loss scale)."""
    return autocast_network(detector, torch.bfloat16)
