"""Draw a grid of augmented samples with their boxes to a PNG.

Runs a train pipeline's augmentation (everything between the loading
transforms and ``PackDetInputs``) many times on one image and tiles the
results, boxes drawn in green (red for ignored ones). With ``--config`` the
pipeline is the one of the config's train dataloader (wrapped datasets are
searched); without it, the SSD300 augmentation of ssd_plugin.

Usage::

    python tools/analysis_tools/show_augmentation.py --out aug.png
        [--config configs/ssd300_voc.py] [--image photo.jpg]
        [--boxes 10,20,200,300 250,40,400,380] [--num 16] [--seed 0]
"""
import argparse
import math
import os.path as osp
from typing import List, Optional, Sequence

import cv2
import matplotlib
import numpy as np
from mmcv.transforms import Compose
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.config import Config
from mmengine.registry import init_default_scope

import ssd_plugin  # noqa: F401  (registers the transforms)
from ssd_plugin.registry import TRANSFORMS

DEFAULT_AUGMENTATION = [
    dict(type='RandomPhotometricDistort'),
    dict(
        type='RandomZoomOut',
        mean=(103.53, 116.28, 123.675),
        ratio_range=(1, 4),
        prob=0.5),
    dict(type='RandomIoUCrop'),
    dict(type='Resize', scale=(300, 300), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
]
_SKIPPED = ('LoadImageFromFile', 'LoadAnnotations', 'PackDetInputs')


def find_pipeline(dataset: dict) -> Optional[list]:
    """The first ``pipeline`` in a dataset, maybe wrapped or concatenated."""
    if dataset.get('pipeline'):
        return dataset['pipeline']
    inner = [dataset['dataset']] if 'dataset' in dataset else dataset.get(
        'datasets', [])
    for child in inner:
        found = find_pipeline(child)
        if found:
            return found
    return None


def augmentation_from_config(path: str) -> List[dict]:
    """The train pipeline of a config without its loading and packing steps."""
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'config {path} not found; pass an existing --config')
    cfg = Config.fromfile(path)
    pipeline = find_pipeline(
        cfg.get('train_dataloader', {}).get('dataset', {}))
    if not pipeline:
        raise ValueError(
            f'{path} has no train_dataloader dataset pipeline; pass '
            f'a training config')
    return [t for t in pipeline if t['type'].split('.')[-1] not in _SKIPPED]


def parse_boxes(texts: Optional[Sequence[str]],
                hw: Sequence[int]) -> np.ndarray:
    """``['x1,y1,x2,y2', ...]`` to (N, 4); default: the central half."""
    if not texts:
        h, w = hw
        return np.array([[w / 4, h / 4, 3 * w / 4, 3 * h / 4]], np.float32)
    try:
        return np.array([[float(v) for v in t.split(',')] for t in texts],
                        np.float32).reshape(-1, 4)
    except ValueError as err:
        raise ValueError(
            f'--boxes must be x1,y1,x2,y2 groups, got {texts}') from err


def draw(img: np.ndarray, boxes: np.ndarray,
         ignored: np.ndarray) -> np.ndarray:
    """A uint8 copy of ``img`` with its boxes drawn."""
    out = np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))
    for box, ign in zip(boxes.round().astype(int), ignored):
        cv2.rectangle(out, tuple(box[:2]), tuple(box[2:]),
                      (0, 0, 255) if ign else (0, 255, 0), 2)
    return out


def tile(images: List[np.ndarray], cell: int = 300) -> np.ndarray:
    """Images letterboxed into ``cell``-sized squares on a near-square grid."""
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    grid = np.full((rows * cell, cols * cell, 3), 255, np.uint8)
    for i, img in enumerate(images):
        scale = cell / max(img.shape[:2])
        small = cv2.resize(img, (max(1, round(
            img.shape[1] * scale)), max(1, round(img.shape[0] * scale))))
        r, c = divmod(i, cols)
        grid[r * cell:r * cell + small.shape[0],
             c * cell:c * cell + small.shape[1]] = small
    return grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='augmentation.png')
    parser.add_argument('--config', default=None)
    parser.add_argument(
        '--image', default=None, help='default: grace_hopper.jpg')
    parser.add_argument('--boxes', nargs='*', default=None)
    parser.add_argument('--num', type=int, default=16)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    init_default_scope('ssd_plugin')
    image = args.image or osp.join(
        osp.dirname(matplotlib.__file__), 'mpl-data', 'sample_data',
        'grace_hopper.jpg')
    img = cv2.imread(image, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(
            f'cannot read image {image}; pass a readable --image')
    steps = augmentation_from_config(
        args.config) if args.config else DEFAULT_AUGMENTATION
    pipeline = Compose([TRANSFORMS.build(t) for t in steps])
    boxes = parse_boxes(args.boxes, img.shape[:2])
    np.random.seed(args.seed)
    panels = []
    for _ in range(args.num):
        out = pipeline(
            dict(
                img=img,
                img_shape=img.shape[:2],
                ori_shape=img.shape[:2],
                gt_bboxes=HorizontalBoxes(boxes.copy()),
                gt_bboxes_labels=np.zeros(len(boxes), np.int64),
                gt_ignore_flags=np.zeros(len(boxes), bool)))
        panels.append(
            draw(out['img'], out['gt_bboxes'].numpy(), out['gt_ignore_flags']))
    cv2.imwrite(args.out, tile(panels))
    print(f'wrote {args.num} augmented samples of {image} to {args.out}')


if __name__ == '__main__':
    main()
