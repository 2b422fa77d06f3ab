"""Convert an MMDetection >= 2.14 SSD checkpoint to ssd_plugin's SSD.

``python tools/model_converters/from_mmdet.py SRC DST [--config CONFIG]``
(:mod:`ssd_plugin.converters.from_mmdet`); ``meta`` keeps the source's
``dataset_meta`` (class names, for ``init_detector``).
"""
from typing import Optional, Sequence

from ssd_plugin.converters import common, from_mmdet


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command line: ``from_mmdet.py SRC DST [--config CONFIG]``."""
    args = common.parse_args(__doc__, argv)
    state_dict, source_meta = common.load(args.src)
    names = {k: v for k, v in source_meta.items() if k == 'dataset_meta'}
    common.save(args, from_mmdet.convert(state_dict, args.cfg),
                num_classes=args.cfg.model.bbox_head.num_classes, **names)


if __name__ == '__main__':
    main()
