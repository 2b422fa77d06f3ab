"""Draw a grid of augmented samples with their boxes to a PNG.

Runs the augmentation of a config's train pipeline (everything between the
loading transforms and ``PackDetInputs``; wrapped datasets are searched)
many times on one image and tiles the results, boxes drawn in green (red
for ignored ones). For a dataset's own images and annotations, mmdet's
``mim run mmdet browse_dataset CONFIG`` shows the whole pipeline.

Usage::

    python tools/analysis_tools/show_augmentation.py --out aug.png
        [--config configs/ssd/ssd300_voc0712.py] [--image photo.jpg]
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

from ssd_plugin.registry import TRANSFORMS

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(REPO_ROOT, 'configs', 'ssd', 'ssd300_coco.py')
SAMPLE_DIR = osp.join(osp.dirname(matplotlib.__file__), 'mpl-data',
                      'sample_data')
_SKIPPED = ('LoadImageFromFile', 'LoadAnnotations', 'PackDetInputs')


def find_pipeline(dataset: dict) -> Optional[list]:
    """The first ``pipeline`` in a dataset, maybe wrapped or concatenated."""
    if dataset.get('pipeline'):
        return dataset['pipeline']
    inner = [dataset['dataset']] if 'dataset' in dataset else dataset.get(
        'datasets', [])
    return next(filter(None, map(find_pipeline, inner)), None)


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


def build_augmentation(path: str) -> Compose:
    """:func:`augmentation_from_config` built in the ``ssd_plugin`` scope."""
    init_default_scope('ssd_plugin')
    return Compose(
        [TRANSFORMS.build(t) for t in augmentation_from_config(path)])


def annotated_results(img: np.ndarray, boxes: np.ndarray) -> dict:
    """What ``LoadImageFromFile`` + ``LoadAnnotations`` give a pipeline.

    Args:
        img (np.ndarray): (H, W, 3) BGR image (not copied).
        boxes (np.ndarray): (N, 4) x1, y1, x2, y2 in pixels (copied), each
            of label 0 and not ignored.
    """
    h, w = img.shape[:2]
    return dict(
        img=img,
        img_shape=(h, w),
        ori_shape=(h, w),
        gt_bboxes=HorizontalBoxes(boxes.copy()),
        gt_bboxes_labels=np.zeros(len(boxes), np.int64),
        gt_ignore_flags=np.zeros(len(boxes), bool))


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


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Parse the command line (``sys.argv`` by default) and write the grid."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='augmentation.png')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='training config (default: SSD300 COCO)')
    parser.add_argument(
        '--image', default=osp.join(SAMPLE_DIR, 'grace_hopper.jpg'),
        help="default: grace_hopper.jpg of matplotlib's sample data")
    parser.add_argument('--boxes', nargs='*', default=None)
    parser.add_argument('--num', type=int, default=16)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    img = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(
            f'cannot read image {args.image}; pass a readable --image')
    pipeline = build_augmentation(args.config)
    boxes = parse_boxes(args.boxes, img.shape[:2])
    np.random.seed(args.seed)
    panels = []
    for _ in range(args.num):
        out = pipeline(annotated_results(img, boxes))
        panels.append(
            draw(out['img'], out['gt_bboxes'].numpy(), out['gt_ignore_flags']))
    cv2.imwrite(args.out, tile(panels))
    print(f'wrote {args.num} augmented samples of {args.image} to {args.out}')


if __name__ == '__main__':
    main()
