"""CPU inference speed, end to end: SSD300 contenders on the same images.

mmdet's SSD300 and ours with the same weights, and with ``--deploy`` ours in
torch BF16, ONNX Runtime and OpenVINO (:mod:`ssd_plugin.benchmarks.inference`,
docs/benchmarks.md).
"""
import argparse
import os
from typing import Optional, Sequence

from ssd_plugin.benchmarks.inference import run
from ssd_plugin.utils.benchmark import add_timing_args
from ssd_plugin.utils.config import add_cfg_options


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', nargs='*', default=None,
                        help='photographs to run (default: grace_hopper.jpg '
                        "from matplotlib's sample data)")
    parser.add_argument('--random-images', type=int, default=3,
                        help='random images of 200-640 px sides to add')
    add_timing_args(parser, rounds=10, threads=os.cpu_count())
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed rounds first')
    parser.add_argument('--test-cfg', choices=('own', 'same'),
                        default='own', help="'own': each config's test_cfg; "
                        "'same': mmdet's, keeping every candidate in both "
                        '(identical detections)')
    parser.add_argument('--logit-std', type=float, default=1.0,
                        help="of the calibrated head's class logits")
    parser.add_argument('--background-bias', type=float, default=7.0,
                        help="added to the calibrated head's background")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--deploy', action='store_true',
                        help='also ours in torch BF16, ONNX Runtime FP32/'
                        'INT8 and OpenVINO FP32/BF16/INT8 (the deploy extra)')
    add_cfg_options(parser, 'override values of our config '
                    '(configs/ssd/ssd300_coco.py), key=value')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> float:
    """Run the benchmark, print the report; return mmdet's / our time."""
    return run(**vars(parse_args(argv)))


if __name__ == '__main__':
    main()
