"""What the converters share: renaming, strict loading, files, the command
line.

A rule ``(theirs, ours)`` renames a key prefix, ``*`` standing for a layer
index; read backwards, the same rules give the source's names in errors.
"""
import argparse
import functools
import os
import os.path as osp
import pickle
import re
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope
from torch import Tensor

from ssd_plugin.utils.config import (SSD300_COCO, add_cfg_options,
                                     load_config)

Rules = Sequence[Tuple[str, str]]
StateDict = Dict[str, Tensor]
# A config file (default: SSD300 COCO) or a loaded config.
ConfigLike = Union[str, Config, None]


def rename(key: str, rules: Rules) -> Optional[str]:
    """``key`` renamed by the first rule whose prefix it has; None if none."""
    for theirs, ours in rules:
        match = re.match(re.escape(theirs).replace(r'\*', r'(\d+)'), key)
        if match:
            return (ours.replace('*', '{}').format(*match.groups()) +
                    key[match.end():])
    return None


@functools.lru_cache(maxsize=None)
def _model_cfg_of_file(path: str) -> ConfigDict:
    # mmdet's bases take seconds: once
    return load_config(path, set_scope=False).model


def model_cfg(config: ConfigLike = None) -> ConfigDict:
    """The ``model`` of ``config``: a loaded config's, or a file's read
    once (None: :data:`ssd_plugin.utils.config.SSD300_COCO`)."""
    if isinstance(config, Config):
        return config.model
    return _model_cfg_of_file(config or SSD300_COCO)


def convert(state_dict: Mapping[str, Tensor], rules: Rules, source: str,
            fix: str, config: ConfigLike = None, part: Optional[str] = None,
            hints: Sequence[Tuple[str, str]] = ()) -> StateDict:
    """Every key renamed, then loaded strictly into the model ``config``
    builds on ``meta`` (no memory), or into its ``part``. Returns our keys
    and the same tensors in the source's order.

    Raises:
        ValueError: Naming a key no rule fits or renamed like another (with
            the ``hints`` it matches), or torch's message on a missing,
            unexpected or misshapen key, with the source's names and ``fix``.
    """
    names = [rename(k, rules) for k in state_dict]
    bad = [k for k, n in zip(state_dict, names)
           if n is None or names.count(n) > 1]  # nothing overwritten
    if bad:
        hint = ''.join(h for s, h in hints if any(s in k for k in bad))
        raise ValueError(f'unknown key {bad[0]!r} (and {len(bad) - 1} more): '
                         f'not a layer of {source} (or renamed alike).{hint}')
    converted = dict(zip(names, state_dict.values()))
    from ssd_plugin.registry import MODELS
    cfg = model_cfg(config)
    with DefaultScope.overwrite_default_scope('ssd_plugin'), torch.device(
            'meta'):
        model = MODELS.build(cfg[part] if part else cfg)

    def name(match: re.Match) -> str:  # our key -> our key (source key)
        ours = match.group(1) or match.group(2)
        theirs = rename(ours, [(o, t) for t, o in rules])
        return match.group() + (f' (source {theirs!r})' if theirs not in (
            None, ours) else '')

    try:
        model.load_state_dict(converted, strict=True, assign=True)
    except RuntimeError as error:
        raise ValueError(re.sub(r'"([\w.]+)"|(?<=size mismatch for )([\w.]+)',
                                name, str(error)) + '\n' + fix) from None
    return converted


def load(path: str) -> Tuple[StateDict, dict]:
    """The state dict (raw or a checkpoint's) and ``meta``, weights-only;
    ValueError if it holds more than tensors and containers, TypeError if no
    dict, FileNotFoundError (torch's) if no file."""
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).split('WeightsUnpickler error: ')[-1]
        raise ValueError(
            f'{path} cannot be loaded weights-only ({reason.splitlines()[0]})'
            '. If you trust it, re-save its tensors: torch.save(torch.load('
            'SRC, weights_only=False)["state_dict"], NEW)') from None
    nested = isinstance(checkpoint, dict) and 'state_dict' in checkpoint
    state_dict = checkpoint['state_dict'] if nested else checkpoint
    if not isinstance(state_dict, dict):  # torch names a non-tensor value
        raise TypeError(f'{path} holds a {type(state_dict).__name__}; '
                        'expected a state dict or dict(state_dict=...)')
    return state_dict, dict(checkpoint.get('meta') or {}) if nested else {}


def parse_args(doc: str, argv: Optional[Sequence[str]],
               **options: dict) -> argparse.Namespace:
    """``SRC DST [--config CONFIG] [--cfg-options k=v ...]``, plus
    ``--<name>`` for each option; ``args.cfg`` is the config as
    :func:`ssd_plugin.utils.config.load_config` reads it."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument('src', help='source weights (.pth)')
    parser.add_argument('dst', help='output checkpoint for ssd_plugin')
    parser.add_argument('--config', default=SSD300_COCO,
                        help='our config whose model the weights must fit')
    add_cfg_options(parser)
    for name, kwargs in options.items():
        parser.add_argument('--' + name.replace('_', '-'), **kwargs)
    args = parser.parse_args(argv)
    args.cfg = load_config(args.config, args.cfg_options, set_scope=False)
    return args


def save(args: argparse.Namespace, state_dict: StateDict, **meta) -> None:
    """``dict(state_dict=..., meta=...)`` at ``args.dst``, folder created."""
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    meta.update(converted_from=osp.basename(args.src), config=args.config)
    torch.save(dict(state_dict=state_dict, meta=meta), args.dst)
