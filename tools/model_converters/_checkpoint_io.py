"""Reading, checking and writing checkpoints for the converters beside it.

Each converter (``from_mmdet.py``, ``from_torchvision.py``,
``vgg16_reducedfc.py``) is a pure ``convert(state_dict) -> state_dict`` plus
a command line ``SRC DST``; what they share lives here:

- :func:`load_state_dict`: an mmengine checkpoint (``state_dict`` key) or a
  raw state dict, loaded weights-only where the file allows
  (``ssd_plugin.compat``);
- :func:`module_shapes`: parameter shapes of one of our modules, built on the
  ``meta`` device (no memory, no init);
- :func:`check_shapes`: ``ValueError`` naming the first missing, unexpected
  or misshapen key and the shape expected -- converters never drop a weight
  silently;
- :func:`save_checkpoint`: ``dict(state_dict=..., meta=...)``.
"""
import os
import os.path as osp
from typing import Callable, Dict, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from ssd_plugin.compat import load_local_checkpoint

Shapes = Dict[str, Tuple[int, ...]]


def load_state_dict(path: str) -> Tuple[Dict[str, Tensor], dict]:
    """Weights and meta of an mmengine checkpoint or a raw state dict.

    Args:
        path (str): A ``.pth`` file.

    Returns:
        tuple[dict[str, Tensor], dict]: The state dict and the checkpoint's
        ``meta`` (empty for a raw state dict).

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        TypeError: If the file holds no mapping of tensors.
    """
    checkpoint = load_local_checkpoint(path, map_location='cpu')
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f'{path} holds a {type(checkpoint).__name__}; '
                        'expected a state dict or dict(state_dict=...)')
    meta = {}
    if 'state_dict' in checkpoint:
        meta = dict(checkpoint.get('meta') or {})
        checkpoint = checkpoint['state_dict']
    bad = [k for k, v in checkpoint.items() if not isinstance(v, Tensor)]
    if bad:
        raise TypeError(f'{path}: {bad[0]!r} is a {type(checkpoint[bad[0]])}'
                        ', not a tensor; expected a state dict of tensors')
    return dict(checkpoint), meta


def module_shapes(module_type: type, prefix: str = '',
                  **kwargs) -> Shapes:
    """Parameter shapes of ``module_type(**kwargs)``, built on ``meta``.

    Args:
        module_type (type): An ``nn.Module`` class, e.g. ``AtrousVGG``.
        prefix (str): Put before every key, e.g. ``'backbone.'``.
        **kwargs: Constructor arguments.

    Returns:
        dict[str, tuple[int, ...]]: ``prefix + key`` to shape.
    """
    with torch.device('meta'):
        module: nn.Module = module_type(**kwargs)
    return {prefix + k: tuple(v.shape) for k, v in module.state_dict().items()}


def check_shapes(state_dict: Mapping[str, Tensor], expected: Shapes,
                 source_name: Optional[Callable[[str], str]] = None) -> None:
    """ValueError naming the first missing, unexpected or misshapen key.

    Args:
        state_dict (Mapping[str, Tensor]): Weights to check.
        expected (dict[str, tuple[int, ...]]): Every key and its shape.
        source_name (Callable[[str], str], optional): A key's name in the
            source checkpoint, to name both in messages.
    """

    def name(key: str) -> str:
        source = key if source_name is None else source_name(key)
        return repr(key) if source == key else f'{source!r} (ours {key!r})'

    for key, shape in expected.items():
        if key not in state_dict:
            raise ValueError(f'missing key {name(key)}: expected a tensor of '
                             f'shape {tuple(shape)}')
        got = tuple(state_dict[key].shape)
        if got != tuple(shape):
            raise ValueError(f'{name(key)} has shape {got}; expected '
                             f'{tuple(shape)}')
    extra = sorted(set(state_dict) - set(expected))
    if extra:
        raise ValueError(f'unexpected key {name(extra[0])} (and '
                         f'{len(extra) - 1} more): it fits no layer of the '
                         'target model')


def save_checkpoint(path: str, state_dict: Mapping[str, Tensor],
                    meta: dict) -> None:
    """Write ``dict(state_dict=..., meta=...)``, creating the folder."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    torch.save(dict(state_dict=dict(state_dict), meta=meta), path)
