"""Torch low-precision inference: the network in autocast, post-processing FP32.

``torch.autocast`` around a whole ``inference_detector`` call would leave
the head's outputs in bf16, and the head then builds its default boxes in
their dtype: bf16's 8-bit mantissa puts a box edge at 300 px up to 1 px off.
:func:`autocast_network` autocasts only the backbone, neck and head
convolutions, on the device the detector's weights are on (CPU or CUDA),
and hands FP32 maps to the post-processing::

    with bf16_network(model):                # autocast_network(model, fp16)
        result = inference_detector(model, image)
"""
import contextlib
from typing import Callable, Iterator

import torch
from torch import nn

_MISSING = object()


def autocast_device_type(module: nn.Module) -> str:
    """The ``torch.autocast`` device type of ``module``'s weights.

    Args:
        module (nn.Module): A model; its first parameter (or buffer) decides.

    Returns:
        str: ``'cpu'``, ``'cuda'``, ... (``'cpu'`` for a module without
        tensors). Autocast on another device type than the tensors' leaves
        them in FP32 without a word.
    """
    tensor = next(module.parameters(), next(module.buffers(), None))
    return 'cpu' if tensor is None else tensor.device.type


def _autocast(function: Callable, device_type: str, dtype: torch.dtype,
              to_float: bool) -> Callable:
    """``function`` run under ``device_type`` autocast to ``dtype`` (its
    per-level output lists cast back to FP32 when ``to_float``)."""

    def run(*args, **kwargs):
        with torch.autocast(device_type, dtype=dtype):
            outputs = function(*args, **kwargs)
        if not to_float:
            return outputs
        return tuple([t.float() for t in level] for level in outputs)

    return run


@contextlib.contextmanager
def _replaced(owner: object, name: str, value: object) -> Iterator[None]:
    """``owner.name = value`` inside the block; on exit the attribute the
    instance held before (a wrapper of an enclosing block), or none."""
    before = vars(owner).get(name, _MISSING)
    setattr(owner, name, value)
    try:
        yield
    finally:
        if before is _MISSING:
            delattr(owner, name)  # back to the class's method
        else:
            setattr(owner, name, before)


@contextlib.contextmanager
def autocast_network(detector: nn.Module,
                     dtype: torch.dtype = torch.bfloat16
                     ) -> Iterator[nn.Module]:
    """Run ``detector``'s network in ``dtype`` inside the ``with`` block.

    Autocast runs on the device type of the detector's weights when the
    block is entered (:func:`autocast_device_type`): move the model first.
    Blocks nest; each restores what was there before it.

    Args:
        detector (nn.Module): mmdet ``SingleStageDetector`` whose head's
            ``forward`` returns ``(cls_scores, bbox_preds)`` lists (our
            ``SSDHead`` or mmdet's).
        dtype (torch.dtype): ``torch.bfloat16`` (default) or
            ``torch.float16`` (CUDA).

    Yields:
        nn.Module: ``detector``, with ``extract_feat`` and the head's
        ``forward`` wrapped; both are restored on exit.
    """
    device_type = autocast_device_type(detector)
    head = detector.bbox_head
    with _replaced(detector, 'extract_feat',
                   _autocast(detector.extract_feat, device_type, dtype,
                             False)), \
            _replaced(head, 'forward',
                      _autocast(head.forward, device_type, dtype, True)):
        yield detector


def bf16_network(detector: nn.Module
                 ) -> 'contextlib.AbstractContextManager[nn.Module]':
    """:func:`autocast_network` in bfloat16, the low-precision type that
    needs no loss scale (see there)."""
    return autocast_network(detector, torch.bfloat16)
