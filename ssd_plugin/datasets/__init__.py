"""Datasets and data transforms of ssd_plugin."""
from . import transforms  # noqa: F401
from .coco import CocoDataset  # noqa: F401
from .voc import VOCDataset  # noqa: F401
