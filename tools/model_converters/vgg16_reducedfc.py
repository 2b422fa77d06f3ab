"""ImageNet VGG16 -> AtrousVGG's initial weights (Liu et al., section 3).

``python tools/model_converters/vgg16_reducedfc.py SRC DST [--input-std R G
B]`` (:mod:`ssd_plugin.converters.vgg16_reducedfc`): fc6 and fc7 become
subsampled convolutions, fc8 is removed, torchvision's input std is folded
into conv1_1. ``DST`` is for the backbone's ``init_cfg``.
"""
from typing import Optional, Sequence

from ssd_plugin.converters import common, vgg16_reducedfc


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command line: ``vgg16_reducedfc.py SRC DST [--input-std R G B]``."""
    args = common.parse_args(__doc__, argv, input_std=dict(
        type=float, nargs=3, default=vgg16_reducedfc.TORCHVISION_STD,
        metavar=('R', 'G', 'B'),
        help="std (0-255) the source was trained with (torchvision's)"))
    state_dict = common.load(args.src)[0]
    common.save(args, vgg16_reducedfc.convert(state_dict, args.input_std,
                                              args.cfg),
                input_std_folded=list(args.input_std))


if __name__ == '__main__':
    main()
