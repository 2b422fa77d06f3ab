"""``CheckedCocoDataset``: mmdet's ``CocoDataset`` with errors that name files.

Its own name, so that it never shadows mmdet's ``CocoDataset`` (see
docs/design.md, "Registries and names"); why the checks sit in the
dataset: ``checks.py``.
"""
from typing import Any, List

from mmdet.datasets import CocoDataset as MMDetCocoDataset

from ssd_plugin.registry import DATASETS

from .checks import check_dataset_files, prepare_explained


@DATASETS.register_module()
class CheckedCocoDataset(MMDetCocoDataset):
    """mmdet's ``CocoDataset`` (same arguments) whose missing ``data_root``,
    ``ann_file``, image folder or bad image raises an error naming it and
    how to prepare the data."""

    def load_data_list(self) -> List[dict]:
        """Check the paths, then load as mmdet does."""
        check_dataset_files(
            type(self).__name__, self.ann_file,
            {'image folder (data_prefix.img)': self.data_prefix.get('img')},
            self.data_root, kind='coco')
        return super().load_data_list()

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline; if it fails on a bad image, say which image."""
        return prepare_explained(super().prepare_data, self, idx)
