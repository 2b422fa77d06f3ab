"""The quickstart (``tools/quickstart.py``, docs/get_started.md): the shapes
set unless it is there, ``configs/quickstart/ssd_shapes.py`` trained and
tested by mmengine's ``Runner``, and a grid of the drawn held-out images."""
import glob
import json
import os.path as osp
import time
from typing import Optional, Sequence

import numpy as np
from mmengine.config import Config
from mmengine.runner import Runner

from ssd_plugin.utils.config import REPO_ROOT, load_config

CONFIG = osp.join(REPO_ROOT, 'configs', 'quickstart', 'ssd_shapes.py')
TARGET_MAP50 = 0.6  # the quickstart's promise (docs/get_started.md)
GRID_NAME = 'detections_grid.png'


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


def quickstart_config(work_dir: str = 'work_dirs/quickstart',
                      data_root: str = 'data/shapes',
                      epochs: Optional[int] = None,
                      seed: Optional[int] = None,
                      cfg_options: Optional[dict] = None) -> Config:
    """The quickstart config pointed at these folders.

    Args:
        work_dir, data_root (str): Logs and checkpoints; the shapes set.
        epochs (int, optional): Training epochs (the schedule and the
            checkpoint follow); None: the config's.
        seed (int, optional): Of the run and the sampler; None: the
            config's (0).
        cfg_options (dict, optional): Further overrides, applied first.
    """
    cfg = load_config(CONFIG, cfg_options, set_scope=False)
    cfg.work_dir = work_dir
    root = data_root.rstrip('/') + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = root
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator].ann_file = root + 'annotations/instances_val.json'
    if epochs is not None:  # the schedule and checkpoint follow it
        cfg.train_cfg.max_epochs = epochs
    if seed is not None:
        cfg.randomness.seed = seed
        cfg.train_dataloader.sampler.seed = seed
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


def run(work_dir: str = 'work_dirs/quickstart',
        data_root: str = 'data/shapes', epochs: Optional[int] = None,
        seed: Optional[int] = None,
        cfg_options: Optional[dict] = None) -> int:
    """Data, training, testing and the grid; print the time and mAP.

    Args:
        work_dir, data_root, epochs, seed, cfg_options: As
            :func:`quickstart_config`.

    Returns:
        int: 0, or 1 if mAP@0.5 is below :data:`TARGET_MAP50`.
    """
    cfg = quickstart_config(work_dir, data_root, epochs, seed, cfg_options)
    ensure_data(data_root, cfg)
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
