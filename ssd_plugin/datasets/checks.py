"""Checks that turn missing or broken data into errors that say what to do.

In the datasets: the only code of ours that runs before the first file is
opened under both ``tools/train.py`` and ``mim train mmdet``.
"""
import os.path as osp
from typing import Any, Callable, Dict, Optional

import mmcv

# How to get each kind of data; appended to every "not found" message.
PREPARE_HINTS: Dict[str, str] = {
    'coco': (
        'Prepare it: download COCO 2017 from https://cocodataset.org into '
        'data/coco/ (annotations/instances_{train,val}2017.json, train2017/, '
        'val2017/), or write a synthetic set in the same layout with '
        '`python tools/dataset_converters/make_shapes.py data/shapes '
        '--format coco`; then point data_root, ann_file and data_prefix at '
        'it (e.g. --cfg-options train_dataloader.dataset.data_root=...).'),
    'voc': (
        'Prepare it: extract VOC2007 trainval+test and VOC2012 trainval '
        '(http://host.robots.ox.ac.uk/pascal/VOC/) into data/VOCdevkit/, or '
        'write a synthetic set in the same layout with `python '
        'tools/dataset_converters/make_shapes.py data/shapes --format voc` '
        "and set data_root='data/shapes/VOCdevkit/' and "
        'metainfo=dict(classes=...) on the dataset.'),
}


def is_local(path: str) -> bool:
    return '://' not in path


def check_dataset_files(dataset: str, ann_file: str, folders: Dict[str, str],
                        data_root: Optional[str], kind: str) -> None:
    """Raise ``FileNotFoundError`` for a missing annotation file or folder.

    Args:
        dataset (str): Dataset class name, for the message.
        ann_file (str): Annotation file path (already joined with data_root).
        folders (dict[str, str]): What -> folder that must exist.
        data_root (str | None): The dataset's data_root, for the message.
        kind (str): Key of :data:`PREPARE_HINTS` (``'coco'`` or ``'voc'``).

    Raises:
        FileNotFoundError: The first missing path and how to prepare it.
    """
    missing = None
    if data_root and is_local(data_root) and not osp.isdir(data_root):
        missing = f'data_root {data_root!r} is not a folder'
    elif ann_file and is_local(ann_file) and not osp.isfile(ann_file):
        missing = f'annotation file {ann_file!r} not found'
    else:
        for what, folder in folders.items():
            if folder and is_local(folder) and not osp.isdir(folder):
                missing = f'{what} {folder!r} not found'
                break
    if missing is not None:
        raise FileNotFoundError(
            f'{dataset}: {missing} (data_root={data_root!r}, '
            f'ann_file={ann_file!r}). {PREPARE_HINTS[kind]}')


def image_problem(img_path: str, ann_file: str) -> Optional[Exception]:
    """``FileNotFoundError`` (missing) or ``ValueError`` (undecodable) for
    an image the pipeline failed on, listed in ``ann_file``; None if it reads
    fine or is not local."""
    if not is_local(img_path):
        return None
    if not osp.isfile(img_path):
        return FileNotFoundError(
            f'image {img_path!r} (listed in {ann_file!r}) does not exist; '
            'restore it, or regenerate the dataset, or remove it from the '
            'annotation file')
    with open(img_path, 'rb') as f:
        content = f.read()
    image = mmcv.imfrombytes(content) if content else None
    if image is None:
        return ValueError(
            f'image {img_path!r} (listed in {ann_file!r}) is corrupt or not '
            f'an image ({len(content)} bytes that do not decode); replace '
            'it, or regenerate the dataset, or remove it from the annotation '
            'file')
    return None


def prepare_explained(prepare: Callable[[int], Any], dataset: Any,
                      idx: int) -> Any:
    """``prepare(idx)`` (the dataset's ``prepare_data``); if it fails on a
    bad image, raise what is wrong with it."""
    try:
        return prepare(idx)
    except Exception as error:
        problem = image_problem(dataset.get_data_info(idx)['img_path'],
                                dataset.ann_file)
        if problem is None:
            raise
        raise problem from error
