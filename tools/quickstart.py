"""The quickstart: data, training, COCO evaluation and pictures, no download.

Writes the shapes set unless it is there, trains and tests
``configs/quickstart/ssd_shapes.py`` with mmengine's ``Runner`` (drawing the
held-out detections), writes a grid of the first held-out images, ground
truth beside detections, and prints the time and mAP
(:mod:`ssd_plugin.utils.quickstart`, docs/get_started.md, "The quickstart").
"""
import argparse
import sys
from typing import List, Optional

from ssd_plugin.utils.config import add_cfg_options
from ssd_plugin.utils.quickstart import run


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/quickstart')
    parser.add_argument('--data-root', default='data/shapes')
    parser.add_argument('--epochs', type=int, default=None,
                        help='training epochs (default: the config\'s)')
    parser.add_argument('--seed', type=int, default=None,
                        help='random seed (default: the config\'s, 0)')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the quickstart; 1 if its mAP@0.5 is below the promise."""
    return run(**vars(parse_args(argv)))


if __name__ == '__main__':
    sys.exit(main())
