"""Images/s of SSD300's train augmentation: ssd_plugin against MMDetection.

Both pipelines run in this process on one core (OpenCV and torch limited to
one thread), on the same decoded photographs, interleaved sample by sample
so that load from other processes hits both alike. Decoding and annotation
loading are left out: they are the same for both.

- ``mmdet``: the augmentation of MMDetection 3.3's
  ``configs/ssd/ssd300_coco.py`` in its order: ``Expand``,
  ``MinIoURandomCrop``, ``Resize``, ``RandomFlip``, ``PhotoMetricDistortion``.
- ``ssd_plugin``: the Caffe order: ``RandomPhotometricDistort``,
  ``RandomZoomOut``, ``RandomIoUCrop``, then mmdet's ``Resize`` and
  ``RandomFlip``.

Samples are random crops (60-100 % of each side) of the given photographs,
rescaled so that the longer side is 300-700 pixels, with 1 to ``--max-boxes``
random boxes (default 6).

Usage::

    python tools/analysis_tools/benchmark_augmentation.py
        [--images a.jpg b.png] [--samples 200] [--rounds 7] [--seed 0]
        [--max-boxes 6]
"""
import argparse
import glob
import os.path as osp
import statistics
import time
from typing import Dict, List, Sequence, Tuple

import cv2
import matplotlib
import numpy as np
import torch
from mmcv.transforms import Compose
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.registry import init_default_scope

import ssd_plugin  # noqa: F401  (registers the transforms)
from ssd_plugin.registry import TRANSFORMS

INPUT_SIZE = 300
# mmdet's SSD data_preprocessor mean (RGB); Expand reverses it to BGR.
MEAN_RGB = (123.675, 116.28, 103.53)
MEAN_BGR = MEAN_RGB[::-1]
RESIZE_FLIP = [
    dict(type='Resize', scale=(INPUT_SIZE, INPUT_SIZE), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5)
]
PIPELINES: Dict[str, List[dict]] = {
    'mmdet': [
        dict(
            type='mmdet.Expand',
            mean=MEAN_RGB,
            to_rgb=True,
            ratio_range=(1, 4)),
        dict(
            type='mmdet.MinIoURandomCrop',
            min_ious=(0.1, 0.3, 0.5, 0.7, 0.9),
            min_crop_size=0.3),
        *RESIZE_FLIP,
        dict(
            type='mmdet.PhotoMetricDistortion',
            brightness_delta=32,
            contrast_range=(0.5, 1.5),
            saturation_range=(0.5, 1.5),
            hue_delta=18),
    ],
    'ssd_plugin': [
        dict(type='RandomPhotometricDistort'),
        dict(
            type='RandomZoomOut', mean=MEAN_BGR, ratio_range=(1, 4), prob=0.5),
        dict(type='RandomIoUCrop'),
        *RESIZE_FLIP,
    ],
}


def default_images() -> List[str]:
    """Photographs shipped with the environment: matplotlib's sample jpgs."""
    sample_dir = osp.join(
        osp.dirname(matplotlib.__file__), 'mpl-data', 'sample_data')
    return sorted(glob.glob(osp.join(sample_dir, '*.jpg')))


def make_sample(photo: np.ndarray,
                rng: np.random.Generator,
                max_boxes: int = 6) -> Tuple[np.ndarray, np.ndarray]:
    """A random crop of ``photo`` rescaled to 300-700 px, with boxes.

    Args:
        photo: (H, W, 3) uint8 BGR photograph.
        rng: Source of randomness.
        max_boxes: Up to this many boxes (at least one), each side 10-70 %
            of the image's. Defaults to 6 (VOC averages 2.5 objects per
            image, COCO 7.3).

    Returns:
        tuple: (h, w, 3) uint8 contiguous image and (N, 4) float32 boxes.
    """
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


def fresh_results(img: np.ndarray, boxes: np.ndarray) -> dict:
    """What ``LoadImageFromFile`` + ``LoadAnnotations`` would give."""
    h, w = img.shape[:2]
    return dict(
        img=img,
        img_shape=(h, w),
        ori_shape=(h, w),
        gt_bboxes=HorizontalBoxes(boxes.copy()),
        gt_bboxes_labels=np.zeros(len(boxes), np.int64),
        gt_ignore_flags=np.zeros(len(boxes), bool))


def time_round(
        pipelines: Dict[str, Compose],
        samples: Sequence[Tuple[np.ndarray, np.ndarray]]) -> Dict[str, float]:
    """Seconds each pipeline spends on ``samples``, interleaved per sample.

    Every sample goes through all pipelines back to back, the order
    alternating, so that a burst of load from other processes lands on both.
    Inputs are built outside the timed region.
    """
    seconds = dict.fromkeys(pipelines, 0.0)
    names = list(pipelines)
    for i, (img, boxes) in enumerate(samples):
        for name in (names if i % 2 == 0 else names[::-1]):
            results = fresh_results(img, boxes)
            start = time.perf_counter()
            out = pipelines[name](results)
            seconds[name] += time.perf_counter() - start
            if out['img'].shape[:2] != (INPUT_SIZE, INPUT_SIZE):
                raise RuntimeError(f'{name} gave shape {out["img"].shape}')
    return seconds


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--images',
        nargs='+',
        default=None,
        help='photographs (default: matplotlib sample jpgs)')
    parser.add_argument(
        '--samples', type=int, default=200, help='samples per round')
    parser.add_argument(
        '--rounds', type=int, default=7, help='interleaved rounds')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--max-boxes', type=int, default=6,
                        help='1 to this many boxes per sample')
    return parser.parse_args()


def load_samples(images: Sequence[str],
                 num_samples: int,
                 seed: int,
                 max_boxes: int = 6) -> List[Tuple[np.ndarray, np.ndarray]]:
    """``num_samples`` samples made from the photographs in turn."""
    photos = [cv2.imread(p, cv2.IMREAD_COLOR) for p in images]
    missing = [p for p, photo in zip(images, photos) if photo is None]
    if missing or not photos:
        raise FileNotFoundError(
            f'cannot read photographs {missing or images}; pass readable '
            f'--images'
        )
    rng = np.random.default_rng(seed)
    return [
        make_sample(photos[i % len(photos)], rng, max_boxes)
        for i in range(num_samples)
    ]


def run(images: Sequence[str],
        num_samples: int,
        rounds: int,
        seed: int,
        max_boxes: int = 6) -> List[float]:
    """Print images/s per pipeline and round; return the per-round ratios."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    init_default_scope('ssd_plugin')
    samples = load_samples(images, num_samples, seed, max_boxes)
    pixels = np.mean([img.shape[0] * img.shape[1] for img, _ in samples])
    print(f'{num_samples} samples/round from {len(images)} photographs, '
          f'mean {pixels / 1e3:.0f} kpixels; one thread')
    pipelines = {
        name: Compose([TRANSFORMS.build(cfg) for cfg in cfgs])
        for name, cfgs in PIPELINES.items()
    }
    np.random.seed(seed)
    time_round(pipelines, samples[:10])  # warm-up: lazy imports, caches
    speeds: Dict[str, List[float]] = {name: [] for name in pipelines}
    ratios = []
    for r in range(rounds):
        for name, seconds in time_round(pipelines, samples).items():
            speeds[name].append(num_samples / seconds)
        ratios.append(speeds['ssd_plugin'][-1] / speeds['mmdet'][-1])
        print(f'round {r}: mmdet {speeds["mmdet"][-1]:.1f} img/s, ssd_plugin '
              f'{speeds["ssd_plugin"][-1]:.1f} img/s, ratio {ratios[-1]:.2f}')
    print(f'median over {rounds} rounds: mmdet '
          f'{statistics.median(speeds["mmdet"]):.1f} img/s, ssd_plugin '
          f'{statistics.median(speeds["ssd_plugin"]):.1f} img/s, ratio '
          f'{statistics.median(ratios):.2f}')
    return ratios


def main() -> None:
    args = parse_args()
    run(args.images or default_images(), args.samples, args.rounds, args.seed,
        args.max_boxes)


if __name__ == '__main__':
    main()
