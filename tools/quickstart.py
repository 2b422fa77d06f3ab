"""The quickstart: data, training, COCO evaluation and pictures, no download.

Writes the shapes set unless it is there, trains and tests
``configs/quickstart/ssd_shapes.py`` with mmengine's ``Runner`` (drawing the
held-out detections), writes a grid of the first held-out images, ground
truth beside detections, and prints the time and mAP
(docs/get_started.md, "The quickstart").
"""
import argparse
import glob
import json
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence

import numpy as np
from mmengine.config import Config
from mmengine.runner import Runner

from ssd_plugin.utils.config import load_config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'quickstart', 'ssd_shapes.py')
TARGET_MAP50 = 0.6  # the quickstart's promise (docs/get_started.md)
GRID_NAME = 'detections_grid.png'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/quickstart')
    parser.add_argument('--data-root', default='data/shapes')
    parser.add_argument('--epochs', type=int, default=None,
                        help='training epochs (default: the config\'s)')
    parser.add_argument('--seed', type=int, default=None,
                        help='random seed (default: the config\'s, 0)')
    return parser.parse_args(argv)


def ensure_data(data_root: str, cfg: Config) -> None:
    """Write the shapes set unless the one ``cfg.shapes_set`` asks is there.

    A set counts as there when both annotation files exist and hold the
    configured number of images; anything else is written anew.
    """
    from ssd_plugin.testing.shapes import make_shapes
    wanted = {'train': cfg.shapes_set['num_train'],
              'val': cfg.shapes_set['num_val']}
    found = {}
    for split in wanted:
        path = osp.join(data_root, 'annotations', f'instances_{split}.json')
        if osp.isfile(path):
            with open(path) as f:
                found[split] = len(json.load(f)['images'])
    if found == wanted:
        print(f'[quickstart] using the shapes set in {data_root}')
        return
    print(f'[quickstart] writing the synthetic shapes set to {data_root} '
          f'({wanted["train"]} train, {wanted["val"]} held-out images)')
    make_shapes(data_root, **cfg.shapes_set)


def quickstart_config(args: argparse.Namespace) -> Config:
    """The quickstart config pointed at ``args``' folders."""
    cfg = load_config(CONFIG, set_scope=False)
    cfg.work_dir = args.work_dir
    root = args.data_root.rstrip('/') + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = root
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator].ann_file = root + 'annotations/instances_val.json'
    if args.epochs is not None:  # the schedule and checkpoint follow it
        cfg.train_cfg.max_epochs = args.epochs
    if args.seed is not None:
        cfg.randomness.seed = args.seed
        cfg.train_dataloader.sampler.seed = args.seed
    return cfg


def write_grid(pictures: Sequence[str], out_file: str, cols: int = 2,
               rows: int = 3, gap: int = 4) -> Optional[str]:
    """Tile the first ``cols * rows`` drawn test images into one PNG.

    mmdet's ``DetVisualizationHook`` draws each test image as its ground
    truth (left half) beside the detections (right half); the grid keeps
    them in order, row by row, under a heading row naming the halves. The
    PNG has a 256-colour palette: about 100 KB for six of the quickstart's
    images, small enough to keep beside the docs.

    Args:
        pictures: the drawn images' paths, all of one size.
        out_file: where to write the PNG.
        cols: drawn images per row.
        rows: rows at most.
        gap: white pixels between cells.

    Returns:
        ``out_file``, or None when ``pictures`` is empty.
    """
    import cv2
    from PIL import Image
    cells = [cv2.imread(path) for path in pictures[:cols * rows]]
    if not cells:
        return None
    height, width = cells[0].shape[:2]
    if any(cell.shape[:2] != (height, width) for cell in cells):
        raise ValueError('write_grid needs drawn images of one size, got '
                         f'{sorted({cell.shape[:2] for cell in cells})}')
    blank = np.full_like(cells[0], 255)
    cells += [blank] * (-len(cells) % cols)
    canvas = np.full((28 + (height + gap) * (len(cells) // cols),
                      (width + gap) * cols - gap, 3), 255, np.uint8)
    for i, cell in enumerate(cells):
        y, x = 28 + (height + gap) * (i // cols), (width + gap) * (i % cols)
        canvas[y:y + height, x:x + width] = cell
    for col in range(cols):
        for half, text in enumerate(('ground truth', 'detections')):
            origin = ((width + gap) * col + half * width // 2 + 4, 19)
            cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        (0, 0, 0), 1, cv2.LINE_AA)
    rgb = Image.fromarray(np.ascontiguousarray(canvas[..., ::-1]))
    rgb.quantize(colors=256).save(out_file, format='PNG', optimize=True)
    return out_file


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    cfg = quickstart_config(args)
    ensure_data(args.data_root, cfg)

    start = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    train_minutes = (time.time() - start) / 60
    metrics = runner.test()
    map50 = metrics['coco/bbox_mAP_50']

    pictures = sorted(glob.glob(osp.join(
        runner.log_dir, cfg.default_hooks.visualization.test_out_dir, '*')))
    print('\n[quickstart] ---------------------------------------------------')
    print(f'[quickstart] trained in {train_minutes:.1f} min on the CPU; '
          f'held-out COCO mAP@0.5 = {map50:.3f} '
          f'(mAP@[.5:.95] = {metrics["coco/bbox_mAP"]:.3f})')
    print(f'[quickstart] {len(pictures)} validation images with their '
          f'detections drawn: {osp.dirname(pictures[0]) if pictures else "-"}')
    grid = write_grid(pictures, osp.join(runner.log_dir, GRID_NAME))
    print(f'[quickstart] ground truth beside detections: {grid or "-"}')
    checkpoint = f'epoch_{cfg.train_cfg.max_epochs}.pth'
    print(f'[quickstart] checkpoint: {osp.join(cfg.work_dir, checkpoint)}')
    if map50 < TARGET_MAP50:
        print(f'[quickstart] mAP@0.5 {map50:.3f} is below the expected '
              f'{TARGET_MAP50}: something is wrong, please report it.')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
