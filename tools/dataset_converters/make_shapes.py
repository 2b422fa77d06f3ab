"""Write the synthetic shapes detection set (COCO and/or VOC layout) with
:func:`ssd_plugin.testing.shapes.make_shapes`, or with ``--video`` a short
video of moving shapes (:func:`ssd_plugin.testing.shapes_video.
make_shapes_video`) to run ``ssd-detect`` on. A VOC config needs the names:
``metainfo=dict(classes=('circle', 'square', 'triangle', 'star'))``.

Usage::

    python tools/dataset_converters/make_shapes.py data/shapes [options]
    python tools/dataset_converters/make_shapes.py data/shapes.mp4 --video
        [--num-frames 150] [--fps 30] [--frame-size 640 480]
"""
import argparse
from typing import List, Optional

from ssd_plugin.testing.shapes import FORMATS, SHAPE_CLASSES, make_shapes
from ssd_plugin.testing.shapes_video import make_shapes_video

__all__ = ['make_shapes', 'make_shapes_video', 'main']


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description='Write a synthetic detection set of coloured shapes '
        f'{SHAPE_CLASSES} on textured backgrounds, or a video of them.')
    parser.add_argument('out_dir', help='output folder, e.g. data/shapes; '
                        'with --video the video file, e.g. data/shapes.mp4')
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
                        help='most shapes per image (with --video: the '
                        'shapes moving)')
    parser.add_argument('--min-objects', type=int, default=1,
                        help='fewest shapes per image (0 allows empty images)')
    parser.add_argument('--scale-range', type=float, nargs=2,
                        default=(0.1, 0.6), metavar=('LOW', 'HIGH'),
                        help='shape diameters as fractions of the image side '
                        '(at least 6 px)')
    video = parser.add_argument_group('video')
    video.add_argument('--video', action='store_true',
                       help='write a video of moving shapes to OUT '
                       '(.mp4 or .avi) instead of the image set')
    video.add_argument('--num-frames', type=int, default=150)
    video.add_argument('--fps', type=float, default=30.)
    video.add_argument('--frame-size', type=int, nargs=2, default=(640, 480),
                       metavar=('WIDTH', 'HEIGHT'))
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    """Generate the set (or the video) and print where it went."""
    args = vars(parse_args(argv))
    video = {name: args.pop(name) for name in ('video', 'num_frames', 'fps',
                                               'frame_size')}
    if video.pop('video'):
        result = make_shapes_video(args['out_dir'], num_objects=args[
            'max_objects'], seed=args['seed'], **video)
        print(f'video: {result["path"]} ({result["num_frames"]} frames, '
              f'{result["frame_size"][0]}x{result["frame_size"][1]}, '
              f'{result["fps"]:g} FPS)')
        return
    # Each remaining option is named as make_shapes's parameter.
    for name, path in make_shapes(**args).items():
        print(f'{name}: {path}')


if __name__ == '__main__':
    main()
