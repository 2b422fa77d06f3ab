"""A config file read as every tool reads it."""
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.registry import init_default_scope


def load_config(path: str, options: Optional[dict] = None,
                set_scope: bool = True) -> Config:
    """``path`` with ``--cfg-options`` ``options`` merged and (``set_scope``)
    its ``default_scope`` made current; FileNotFoundError naming a missing
    file (mmengine's names no fix)."""
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'config {path!r} not found; pass an existing config file (CONFIG '
            'or --config), e.g. configs/quickstart/ssd_shapes.py')
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    if set_scope:
        init_default_scope(cfg.get('default_scope', 'mmdet'))
    return cfg
