"""Checkpoint loading for mmengine 0.10.7 under torch >= 2.6.

torch 2.6 flipped ``torch.load``'s default to ``weights_only=True``.
mmengine 0.10.7 still calls ``torch.load(filename, map_location=...)``, so
every checkpoint the runner itself writes fails to load: its ``message_hub``
holds ``HistoryBuffer`` objects, whose pickle calls ``getattr``, and its
``meta`` holds numpy scalars (upstream open-mmlab/mmengine#1655).

We never patch site-packages. Instead the local-file scheme of mmengine's
``CheckpointLoader`` is re-registered (``force=True``) with a loader that

1. loads with ``weights_only=True`` and the numpy/mmengine types mmengine
   writes allow-listed, which covers plain state dicts (ImageNet VGG16,
   torchvision and the mmdet model zoo); and
2. only if that fails, loads the file with ``weights_only=False`` -- the
   behaviour mmengine was written for -- and logs a warning that names the
   file, so unpickling arbitrary objects never happens silently.

Every path through mmengine (``load_checkpoint``, ``Runner.resume``,
``init_cfg=dict(type='Pretrained')``, mmdet's ``init_detector``) goes
through this scheme.
"""
import logging
import os.path as osp
import pickle
from typing import Any, Optional

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner.checkpoint import CheckpointLoader

# numpy 2 renamed numpy.core to numpy._core (the old name warns).
_multiarray = (np._core.multiarray if hasattr(np, '_core') else
               np.core.multiarray)


def _safe_globals() -> list:
    """Types that mmengine's checkpoints hold besides tensors."""
    dtype_classes = [type(np.dtype(name)) for name in
                     ('bool', 'int32', 'int64', 'float32', 'float64')]
    return [np.ndarray, np.dtype, _multiarray.scalar,
            _multiarray._reconstruct, HistoryBuffer] + dtype_classes


def load_local_checkpoint(filename: str,
                          map_location: Optional[Any] = None) -> dict:
    """Load a local checkpoint, weights-only where the file allows it.

    Args:
        filename (str): Path of the checkpoint (``~`` is expanded).
        map_location: As for :func:`torch.load`.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        FileNotFoundError: If ``filename`` is not a file.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'checkpoint {filename!r} does not exist; check the path given '
            'to load_from, --resume, init_cfg or --checkpoint')
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).split('WeightsUnpickler error: ')[-1]
        reason = reason.splitlines()[0]
    print_log(
        f'{filename} is not a weights-only checkpoint ({reason}); loading it '
        'with weights_only=False as mmengine did before torch 2.6. Only load '
        'checkpoints you trust.',
        logger='current', level=logging.WARNING)
    return torch.load(filename, map_location=map_location, weights_only=False)


CheckpointLoader.register_scheme(prefixes='', force=True)(load_local_checkpoint)
