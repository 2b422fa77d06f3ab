"""Convert torchvision's ``ssd300_vgg16`` weights to ssd_plugin's SSD300.

``python tools/model_converters/from_torchvision.py SRC DST``
(:mod:`ssd_plugin.converters.from_torchvision`): torchvision's 91 COCO ids
become mmdet's 80 classes, background last.
"""
from typing import Optional, Sequence

from ssd_plugin.converters import common, from_torchvision


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command line: ``from_torchvision.py SRC DST [--config CONFIG]``."""
    from mmdet.datasets import CocoDataset
    args = common.parse_args(__doc__, argv)
    state_dict = common.load(args.src)[0]
    common.save(args, from_torchvision.convert(state_dict, args.cfg),
                num_classes=len(from_torchvision.COCO_IDS),
                dataset_meta=dict(classes=CocoDataset.METAINFO['classes']))


if __name__ == '__main__':
    main()
