"""mmdet's ``CocoDataset`` with errors that name missing or broken files.

Registered under mmdet's own name in the ``ssd_plugin`` scope, so every
config with ``default_scope='ssd_plugin'`` and ``type='CocoDataset'`` gets
the checks, under ``tools/train.py`` and ``mim train mmdet`` alike (see
``ssd_plugin.datasets.checks`` for why the dataset is the place).
``type='mmdet.CocoDataset'`` still reaches the unchecked original.
"""
from typing import Any, List

from mmdet.datasets import CocoDataset as MMDetCocoDataset

from ssd_plugin.registry import DATASETS

from .checks import check_dataset_files, image_problem


@DATASETS.register_module()
class CocoDataset(MMDetCocoDataset):
    """COCO-format detection dataset; arguments as mmdet's ``CocoDataset``.

    Adds, before any file is opened:

    * ``FileNotFoundError`` naming a missing ``data_root``, ``ann_file`` or
      image folder (``data_prefix['img']``) and how to prepare the data;

    and, when the pipeline fails on a sample:

    * ``FileNotFoundError`` / ``ValueError`` naming a missing or corrupt
      image and the annotation file that lists it.
    """

    def load_data_list(self) -> List[dict]:
        """Check the paths, then load as mmdet does."""
        check_dataset_files(
            type(self).__name__, self.ann_file,
            {'image folder (data_prefix.img)': self.data_prefix.get('img')},
            self.data_root, kind='coco')
        return super().load_data_list()

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline; if it fails on a bad image, say which image."""
        try:
            return super().prepare_data(idx)
        except Exception as error:
            problem = image_problem(self.get_data_info(idx)['img_path'],
                                    self.ann_file)
            if problem is None:
                raise
            raise problem from error
