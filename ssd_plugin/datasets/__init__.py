"""Datasets and data transforms of ssd_plugin."""
from . import transforms  # noqa: F401
from .coco import CheckedCocoDataset  # noqa: F401
from .voc import CheckedVOCDataset  # noqa: F401
