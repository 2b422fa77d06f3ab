"""MMDetection >= 2.14 SSD weights to ours (``from_mmdet.py``).

mmdet's SSD300/512 has our layers, class order (background last) and
default-box order; mmdet wraps each neck and head conv in a ``ConvModule``
(``.conv``) or a one-element ``Sequential`` (``.0``).
"""
from typing import Mapping

from torch import Tensor

from ssd_plugin.converters.common import ConfigLike, StateDict
from ssd_plugin.converters.common import convert as convert_state_dict

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
            config: ConfigLike = None) -> StateDict:
    """mmdet SSD weights -> ours (the same tensors), checked against the
    model of ``config`` (a file or a loaded config; default SSD300 COCO);
    see :func:`.common.convert`."""
    return convert_state_dict(state_dict, RULES, "mmdet's SSD", FIX, config,
                              hints=HINTS)
