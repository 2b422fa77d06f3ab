"""``CheckedVOCDataset``: mmdet's ``VOCDataset`` with errors that name files.

Its own name, so that it never shadows mmdet's ``VOCDataset`` (see
docs/design.md, "Registries and names"); why the checks sit in the
dataset: ``checks.py``.
"""
import os.path as osp
from typing import Any, List

from mmdet.datasets import VOCDataset as MMDetVOCDataset

from ssd_plugin.registry import DATASETS

from .checks import check_dataset_files, prepare_explained


@DATASETS.register_module()
class CheckedVOCDataset(MMDetVOCDataset):
    """mmdet's ``VOCDataset`` (same arguments) whose missing ``data_root``,
    image-set file, ``VOC20xx/`` folder or bad image raises an error naming
    it and how to prepare the data.

    With classes other than VOC's 20, ``metainfo['dataset_type']`` is None:
    mmdet's ``VOCMetric`` would otherwise label its table with VOC's names;
    the protocol then comes from the metric's ``eval_mode``.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        if tuple(self._metainfo['classes']) != tuple(
                MMDetVOCDataset.METAINFO['classes']):
            self._metainfo['dataset_type'] = None

    def load_data_list(self) -> List[dict]:
        """Check the paths, then load as mmdet does."""
        sub_root = self.sub_data_root
        folders = {}
        if sub_root:  # mmdet joins image and XML paths under it
            folders = {
                'VOC year folder (data_prefix.sub_data_root)': sub_root,
                'image folder': osp.join(sub_root, self.img_subdir),
                'annotation folder': osp.join(sub_root, self.ann_subdir)}
        check_dataset_files(type(self).__name__, self.ann_file, folders,
                            self.data_root, kind='voc')
        return super().load_data_list()

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline; if it fails on a bad image, say which image."""
        return prepare_explained(super().prepare_data, self, idx)
