"""Time per image of SSD's train augmentation: ours against MMDetection's
(``tools/analysis_tools/benchmark_augmentation.py``).

Each config's train pipeline without loading and packing, interleaved on the
same decoded samples (:func:`make_sample`).
"""
import glob
import os.path as osp
import statistics
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import Compose
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.config import Config

from ssd_plugin.registry import TRANSFORMS
from ssd_plugin.utils.benchmark import (check_timing_args, read_images,
                                        report_rounds, sample_dir,
                                        set_process_threads, time_interleaved)
from ssd_plugin.utils.config import SSD300_COCO, leaf_datasets, load_config
from ssd_plugin.utils.mmdet_ssd import MMDET_SSD300
from ssd_runtime.machine import describe_machine

_SKIPPED = ('LoadImageFromFile', 'LoadAnnotations', 'PackDetInputs')
Sample = Tuple[np.ndarray, np.ndarray]


def augmentation_from_config(path: str,
                             options: Optional[dict] = None) -> List[dict]:
    """The train pipeline of a config (its first dataset's with one) without
    the loading and packing steps; ``options``: its ``--cfg-options``."""
    return _augmentation(load_config(path, options, set_scope=False), path)


def _augmentation(cfg: Config, path: str) -> List[dict]:
    """See :func:`augmentation_from_config`; ``path`` names ``cfg``."""
    leaves = leaf_datasets(cfg.get('train_dataloader', {}).get('dataset', {}))
    pipeline = next(filter(None, (d.get('pipeline') for d in leaves)), None)
    if not pipeline:
        raise ValueError(
            f'{path} has no train_dataloader dataset pipeline; pass '
            f'a training config')
    return [t for t in pipeline if t['type'].split('.')[-1] not in _SKIPPED]


def build_augmentation(path: str, options: Optional[dict] = None) -> Compose:
    """:func:`augmentation_from_config` built in the config's scope."""
    cfg = load_config(path, options)
    return Compose([TRANSFORMS.build(t) for t in _augmentation(cfg, path)])


def annotated_results(img: np.ndarray, boxes: np.ndarray) -> dict:
    """What ``LoadImageFromFile`` + ``LoadAnnotations`` give a pipeline for
    an (H, W, 3) BGR ``img`` (not copied) and (N, 4) pixel ``boxes`` (copied),
    all of label 0, none ignored."""
    h, w = img.shape[:2]
    return dict(img=img, img_shape=(h, w), ori_shape=(h, w),
                gt_bboxes=HorizontalBoxes(boxes.copy()),
                gt_bboxes_labels=np.zeros(len(boxes), np.int64),
                gt_ignore_flags=np.zeros(len(boxes), bool))


def make_sample(photo: np.ndarray, rng: np.random.Generator,
                max_boxes: int = 6) -> Sample:
    """A random crop (60-100 % of each side) of an (H, W, 3) uint8 ``photo``,
    longer side 300-700 px, contiguous, and 1 to ``max_boxes`` (VOC averages
    2.5 objects, COCO 7.3) (N, 4) float32 boxes of 10-70 % of each side."""
    h, w = photo.shape[:2]
    ch, cw = (int(s * rng.uniform(0.6, 1.0)) for s in (h, w))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    scale = rng.uniform(300, 700) / max(ch, cw)
    img = cv2.resize(photo[y:y + ch, x:x + cw],
                     (round(cw * scale), round(ch * scale)))
    ih, iw = img.shape[:2]
    n = rng.integers(1, max_boxes + 1)
    size = rng.uniform(0.1, 0.7, (n, 2)) * (iw, ih)
    xy = rng.uniform(0, 1, (n, 2)) * ((iw, ih) - size)
    return np.ascontiguousarray(img), np.concatenate([xy, xy + size],
                                                     1).astype(np.float32)


def load_samples(images: Sequence[str], num_samples: int, seed: int,
                 max_boxes: int = 6) -> List[Sample]:
    """``num_samples`` samples made from the photographs in turn."""
    photos = read_images(images)
    if not photos:
        raise FileNotFoundError('no photographs; pass readable --images')
    rng = np.random.default_rng(seed)
    return [make_sample(photos[i % len(photos)], rng, max_boxes)
            for i in range(num_samples)]


def check_output_sizes(pipelines: Dict[str, Compose],
                       samples: Sequence[Sample]) -> None:
    """Run every pipeline on ``samples`` (a warm-up too): the same output
    size from all, or a ``ValueError`` naming the sizes."""
    for img, boxes in samples:
        sizes = {name: pipeline(annotated_results(img, boxes))['img'].shape
                 for name, pipeline in pipelines.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f'the pipelines give images of different sizes '
                             f'{sizes}; pass configs of the same input size')


def run(images: Optional[Sequence[str]] = None, samples: int = 200,
        rounds: int = 7, seed: int = 0, max_boxes: int = 6,
        config: str = SSD300_COCO, mmdet_config: str = MMDET_SSD300,
        threads: Optional[int] = 1,
        cfg_options: Optional[dict] = None) -> List[float]:
    """Print ms/image per pipeline and round; return the per-round ratios.

    Args:
        images (Sequence[str], optional): Photographs; None: matplotlib's
            sample JPEGs.
        samples (int): Samples per round.
        rounds, seed, max_boxes: Timed rounds; of the samples; 1 to this
            many boxes per sample.
        config, mmdet_config (str): Our training config and mmdet's.
        threads (int, optional): torch and OpenCV threads.
        cfg_options (dict, optional): Overrides of ``config``.

    Returns:
        list[float]: mmdet's time over ours, per round.
    """
    check_timing_args(rounds, threads)
    set_process_threads(threads)
    print(describe_machine(threads, modules=('numpy', 'cv2', 'mmdet')))
    if images is None:
        images = sorted(glob.glob(osp.join(sample_dir(), '*.jpg')))
    made = load_samples(images, samples, seed, max_boxes)
    pixels = np.mean([img.shape[0] * img.shape[1] for img, _ in made])
    print(f'{samples} samples/round from {len(images)} photographs, '
          f'mean {pixels / 1e3:.0f} kpixels; {threads} thread(s)')
    pipelines = dict(mmdet=build_augmentation(mmdet_config),
                     ssd_plugin=build_augmentation(config, cfg_options))
    np.random.seed(seed)
    check_output_sizes(pipelines, made[:10])
    times = time_interleaved(pipelines, made, rounds, warmup=0,
                             prepare=lambda sample: annotated_results(*sample))
    ratios = report_rounds(times, rounds, 'mmdet', unit='ms/image')
    print(f'median of the per-round ratios: '
          f'{statistics.median(ratios["ssd_plugin"]):.2f}')
    return ratios['ssd_plugin']
