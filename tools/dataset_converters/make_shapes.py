"""Write the synthetic shapes detection set (COCO and/or VOC layout) with
:func:`ssd_plugin.testing.shapes.make_shapes`. A VOC config needs the names:
``metainfo=dict(classes=('circle', 'square', 'triangle', 'star'))``.
"""
import argparse
from typing import List, Optional

from ssd_plugin.testing.shapes import FORMATS, SHAPE_CLASSES, make_shapes

__all__ = ['make_shapes', 'main']


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description='Write a synthetic detection set of coloured shapes '
        f'{SHAPE_CLASSES} on textured backgrounds.')
    parser.add_argument('out_dir', help='output folder, e.g. data/shapes')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--img-size', type=int, default=128,
                        help='side of the square images in pixels')
    parser.add_argument('--format', dest='fmt', choices=FORMATS,
                        default='coco',
                        help='coco: {out}/{train,val}/ + {out}/annotations/; '
                        'voc: {out}/VOCdevkit/VOC2007 and VOC2012; both')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--max-objects', type=int, default=4,
                        help='most shapes per image')
    parser.add_argument('--min-objects', type=int, default=1,
                        help='fewest shapes per image (0 allows empty images)')
    parser.add_argument('--scale-range', type=float, nargs=2,
                        default=(0.1, 0.6), metavar=('LOW', 'HIGH'),
                        help='shape diameters as fractions of the image side '
                        '(at least 6 px)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    """Generate the set and print where it went."""
    # Each option is named as make_shapes's parameter.
    for name, path in make_shapes(**vars(parse_args(argv))).items():
        print(f'{name}: {path}')


if __name__ == '__main__':
    main()
