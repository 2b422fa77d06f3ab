"""Time per image of SSD's train augmentation: ssd_plugin against MMDetection.

Each config's train pipeline without loading and packing, interleaved on the
same samples (:mod:`ssd_plugin.benchmarks.augmentation`).
"""
import argparse
from typing import List, Optional, Sequence

from ssd_plugin.benchmarks.augmentation import run
from ssd_plugin.utils.benchmark import add_timing_args
from ssd_plugin.utils.config import SSD300_COCO, add_cfg_options
from ssd_plugin.utils.mmdet_ssd import MMDET_SSD300


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', nargs='+', default=None,
                        help='photographs (default: matplotlib sample jpgs)')
    parser.add_argument('--samples', type=int, default=200,
                        help='samples per round')
    add_timing_args(parser, rounds=7, threads=1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--max-boxes', type=int, default=6,
                        help='1 to this many boxes per sample')
    parser.add_argument('--config', default=SSD300_COCO,
                        help='our training config (default: SSD300 COCO)')
    parser.add_argument('--mmdet-config', default=MMDET_SSD300,
                        help="mmdet's (default: its SSD300 COCO config)")
    add_cfg_options(parser, 'override values of --config, key=value')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> List[float]:
    """Run the benchmark; return mmdet's / our time per round."""
    return run(**vars(parse_args(argv)))


if __name__ == '__main__':
    main()
