"""Images/s of SSD's train augmentation: ssd_plugin against MMDetection.

Both pipelines are the augmentation of a config's train pipeline (loading
and packing left out: the same for both), read from the configs:
``--config`` (ours, default ``configs/ssd/ssd300_coco.py``: Caffe's order,
photometric distortion, zoom-out, IoU crop, resize, flip) and
``--mmdet-config`` (default MMDetection 3.3's ``configs/ssd/ssd300_coco.py``:
``Expand``, ``MinIoURandomCrop``, ``Resize``, ``RandomFlip``,
``PhotoMetricDistortion``). They run in this process on one thread (OpenCV
and torch), on the same decoded samples, interleaved sample by sample
(``ssd_plugin.utils.benchmark``).

Samples are random crops (60-100 % of each side) of the given photographs,
rescaled so that the longer side is 300-700 pixels, with 1 to ``--max-boxes``
random boxes (default 6).

Usage::

    python tools/analysis_tools/benchmark_augmentation.py
        [--images a.jpg b.png] [--samples 200] [--rounds 7] [--seed 0]
        [--max-boxes 6] [--config CONFIG] [--mmdet-config CONFIG]
"""
import argparse
import glob
import os.path as osp
import statistics
from typing import Dict, List, Sequence, Tuple

import cv2
import mmdet
import numpy as np
import torch
from mmcv.transforms import Compose

from ssd_plugin.utils.benchmark import report, time_interleaved
# The script's folder is on sys.path when it runs.
from show_augmentation import (DEFAULT_CONFIG, SAMPLE_DIR,  # isort:skip
                               annotated_results, build_augmentation)

MMDET_CONFIG = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'ssd',
                        'ssd300_coco.py')
Sample = Tuple[np.ndarray, np.ndarray]


def make_sample(photo: np.ndarray,
                rng: np.random.Generator,
                max_boxes: int = 6) -> Sample:
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


def load_samples(images: Sequence[str],
                 num_samples: int,
                 seed: int,
                 max_boxes: int = 6) -> List[Sample]:
    """``num_samples`` samples made from the photographs in turn."""
    photos = [cv2.imread(p, cv2.IMREAD_COLOR) for p in images]
    missing = [p for p, photo in zip(images, photos) if photo is None]
    if missing or not photos:
        raise FileNotFoundError(
            f'cannot read photographs {missing or images}; pass readable '
            f'--images')
    rng = np.random.default_rng(seed)
    return [
        make_sample(photos[i % len(photos)], rng, max_boxes)
        for i in range(num_samples)
    ]


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


def parse_args() -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', nargs='+', default=None,
                        help='photographs (default: matplotlib sample jpgs)')
    parser.add_argument('--samples', type=int, default=200,
                        help='samples per round')
    parser.add_argument('--rounds', type=int, default=7,
                        help='interleaved rounds')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--max-boxes', type=int, default=6,
                        help='1 to this many boxes per sample')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='our training config (default: SSD300 COCO)')
    parser.add_argument('--mmdet-config', default=MMDET_CONFIG,
                        help="mmdet's (default: its SSD300 COCO config)")
    return parser.parse_args()


def run(images: Sequence[str],
        num_samples: int,
        rounds: int,
        seed: int,
        max_boxes: int = 6,
        config: str = DEFAULT_CONFIG,
        mmdet_config: str = MMDET_CONFIG) -> List[float]:
    """Print images/s per pipeline and round; return the per-round ratios."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    samples = load_samples(images, num_samples, seed, max_boxes)
    pixels = np.mean([img.shape[0] * img.shape[1] for img, _ in samples])
    print(f'{num_samples} samples/round from {len(images)} photographs, '
          f'mean {pixels / 1e3:.0f} kpixels; one thread')
    pipelines = dict(mmdet=build_augmentation(mmdet_config),
                     ssd_plugin=build_augmentation(config))
    np.random.seed(seed)
    check_output_sizes(pipelines, samples[:10])
    times = time_interleaved(pipelines, samples, rounds, warmup=0,
                             prepare=lambda sample: annotated_results(*sample))
    per_image = {
        name: [sum(t[r * num_samples:(r + 1) * num_samples]) / num_samples
               for r in range(rounds)] for name, t in times.items()}
    ratios = [m / s for m, s in zip(per_image['mmdet'],
                                    per_image['ssd_plugin'])]
    for r, ratio in enumerate(ratios):
        print(f'round {r}: mmdet {1 / per_image["mmdet"][r]:.1f} img/s, '
              f'ssd_plugin {1 / per_image["ssd_plugin"][r]:.1f} img/s, '
              f'ratio {ratio:.2f}')
    print(f'median over {rounds} rounds (ratio of medians; median of the '
          f'ratios {statistics.median(ratios):.2f}):')
    report(per_image, 'mmdet', unit='ms/image')
    return ratios


def main() -> None:
    """Run the benchmark with the command line's options."""
    args = parse_args()
    images = args.images or sorted(glob.glob(osp.join(SAMPLE_DIR, '*.jpg')))
    run(images, args.samples, args.rounds, args.seed,
        args.max_boxes, args.config, args.mmdet_config)


if __name__ == '__main__':
    main()
