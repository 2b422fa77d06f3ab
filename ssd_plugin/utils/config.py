"""A config file read as every tool reads it (``--cfg-options`` included),
and what a config says without building anything: its registry scope and
its leaf datasets."""
import argparse
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Our SSD300 COCO config: the converters' and the GPU check's default.
SSD300_COCO = osp.join(REPO_ROOT, 'configs', 'ssd', 'ssd300_coco.py')
# Ours falls back to mmdet's registries, so it builds mmdet's names too.
DEFAULT_SCOPE = 'ssd_plugin'


def use_default_scope(cfg: Config) -> str:
    """Make ``cfg``'s ``default_scope`` (:data:`DEFAULT_SCOPE` if it names
    none) the current registry scope, as the runner does; returns it."""
    scope = cfg.get('default_scope') or DEFAULT_SCOPE
    init_default_scope(scope)
    return scope


def load_config(path: str, options: Optional[dict] = None,
                set_scope: bool = True) -> Config:
    """``path`` with ``--cfg-options`` ``options`` merged and (``set_scope``)
    its scope made current (:func:`use_default_scope`); FileNotFoundError
    naming a missing file (mmengine's names no fix)."""
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'config {path!r} not found; pass an existing config file (CONFIG '
            'or --config), e.g. configs/quickstart/ssd_shapes.py')
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    if set_scope:
        use_default_scope(cfg)
    return cfg


def add_cfg_options(parser: argparse.ArgumentParser,
                    help_text: str = 'override config values, key=value (e.g. '
                    'train_cfg.max_epochs=12 model.bbox_head.num_classes=4)'
                    ) -> None:
    """Add ``--cfg-options key=value ...`` to a tool's command line: the
    ``options`` of :func:`load_config` (mmengine's ``DictAction``)."""
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        metavar='KEY=VALUE', help=help_text)


def leaf_datasets(dataset: dict) -> List[dict]:
    """Leaf dataset configs under ``dataset``/``datasets`` wrappers
    (``RepeatDataset``, ``ConcatDataset``...), in order, the same dicts."""
    if 'datasets' in dataset:
        return [d for sub in dataset['datasets'] for d in leaf_datasets(sub)]
    if 'dataset' in dataset:
        return leaf_datasets(dataset['dataset'])
    return [dataset]
