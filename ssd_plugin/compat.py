"""Weights-only checkpoint loading for mmengine 0.10.7 under torch >= 2.6.

torch 2.6 refuses mmengine's own checkpoints (numpy scalars, ``HistoryBuffer``;
open-mmlab/mmengine#1655): this re-registers ``CheckpointLoader``'s local
scheme with a loader that allows exactly those types.
"""
import logging
import os
import os.path as osp
import pickle
from typing import Any, Callable, List, Optional

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner.checkpoint import CheckpointLoader

UNSAFE_ENV = 'SSD_PLUGIN_UNSAFE_LOAD'
# numpy 2 renamed numpy.core to numpy._core (the old name warns).
_multiarray = (np._core.multiarray if hasattr(np, '_core') else
               np.core.multiarray)


def history_buffer_method(owner: Any, name: str) -> Callable:
    """``getattr`` restricted to what a pickled ``HistoryBuffer`` needs.

    Raises:
        pickle.UnpicklingError: For any other object or attribute.
    """
    if (owner is HistoryBuffer and not name.startswith('_')
            and callable(getattr(HistoryBuffer, name, None))):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({owner!r}, {name!r}): only HistoryBuffer methods are '
        'allowed in a weights-only checkpoint')


def safe_globals() -> List[Any]:
    """The non-tensor types mmengine's checkpoints hold, for ``torch.load``."""
    dtype_classes = [type(np.dtype(name)) for name in
                     ('bool', 'int32', 'int64', 'float32', 'float64')]
    return [np.ndarray, np.dtype, _multiarray.scalar, _multiarray._reconstruct,
            HistoryBuffer, (history_buffer_method, 'builtins.getattr'),
            *dtype_classes]


def load_local_checkpoint(filename: str,
                          map_location: Optional[Any] = None) -> dict:
    """Load a local checkpoint weights-only (``SSD_PLUGIN_UNSAFE_LOAD=1``:
    any pickle, with a warning); ``map_location`` as :func:`torch.load`.

    Raises:
        FileNotFoundError: If ``filename`` is not a file.
        pickle.UnpicklingError: If the file needs more than weights-only
            unpickling and the user did not opt in; the message says how.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'checkpoint {filename!r} does not exist; check the path given '
            'to load_from, --resume, init_cfg or --checkpoint')
    if os.environ.get(UNSAFE_ENV) == '1':
        print_log(f'{UNSAFE_ENV}=1: loading {filename} with weights_only='
                  'False, which can run code from the file.',
                  logger='current', level=logging.WARNING)
        return torch.load(filename, map_location=map_location,
                          weights_only=False)
    try:
        with torch.serialization.safe_globals(safe_globals()):
            return torch.load(filename, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).split('WeightsUnpickler error: ')[-1]
        reason = reason.splitlines()[0].split('. Please use')[0]
        raise pickle.UnpicklingError(
            f'{filename} is not a weights-only checkpoint '
            f'({reason}): unpickling it could run code from '
            f'the file. If you trust it, set {UNSAFE_ENV}=1 (e.g. '
            f'`{UNSAFE_ENV}=1 python tools/train.py ...`), or save its '
            'state_dict with torch.save where you trust it.') from error


CheckpointLoader.register_scheme(prefixes='', force=True)(load_local_checkpoint)
