"""Convert an MMDetection >= 2.14 SSD checkpoint to ssd_plugin's SSD.

mmdet's SSD300/512 has our layers, class order (background last) and
default-box order; mmdet wraps each neck and head conv in a ``ConvModule``
(``.conv``) or a one-element ``Sequential`` (``.0``). ``meta`` keeps the
source's ``dataset_meta`` (class names, for ``init_detector``).
"""
from typing import Mapping, Optional, Sequence

import _converter
from torch import Tensor

RULES = (  # (mmdet's key prefix, ours); * is a layer index
    ('backbone.features.', 'backbone.features.'),
    ('neck.l2_norm.', 'neck.l2_norm.'),
    ('neck.extra_layers.*.0.conv.', 'neck.extra_layers.*.0.'),  # 1x1
    ('neck.extra_layers.*.1.conv.', 'neck.extra_layers.*.2.'),  # kxk
    ('bbox_head.cls_convs.*.0.', 'bbox_head.cls_convs.*.'),
    ('bbox_head.reg_convs.*.0.', 'bbox_head.reg_convs.*.'),
)
HINTS = (('backbone.extra', " A checkpoint of mmdet < 2.14: upgrade it first "
          "with mmdet's tools/model_converters/upgrade_ssd_version.py."),
         ('.bn.', ' SSDLite (depthwise convs, batch norm) is not supported.'))
FIX = ('Pass --config with the config these weights were trained for, e.g. '
       'configs/ssd/ssd512_coco.py (SSD512) or ssd300_voc0712.py (VOC).')


def convert(state_dict: Mapping[str, Tensor],
            config: Optional[str] = None) -> _converter.StateDict:
    """mmdet SSD weights -> ours (the same tensors), checked against the
    model of ``config``; see ``_converter.convert``."""
    return _converter.convert(state_dict, RULES, "mmdet's SSD", FIX, config,
                              hints=HINTS)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command line: ``from_mmdet.py SRC DST [--config CONFIG]``."""
    args = _converter.parse_args(__doc__, argv)
    state_dict, source_meta = _converter.load(args.src)
    num_classes = _converter.model_cfg(args.config).bbox_head.num_classes
    names = {k: v for k, v in source_meta.items() if k == 'dataset_meta'}
    _converter.save(args, convert(state_dict, args.config),
                    num_classes=num_classes, **names)


if __name__ == '__main__':
    main()
