"""Convert an MMDetection 3.x SSD checkpoint to ssd_plugin's SSD.

MMDetection's SSD (``SSDVGG`` + ``SSDNeck`` + ``SSDHead``, model zoo files
such as ``ssd300_coco_20210803_015428-d231a06e.pth`` and
``ssd512_coco_20210803_022849-0a47a1ca.pth``) has the same layers in the same
order as ours; only the names of the neck and head convs differ, because
mmdet wraps each conv in a ``ConvModule`` (``.conv``) or a one-element
``Sequential`` (``.0``)::

    mmdet                                    ssd_plugin
    backbone.features.N.*                    backbone.features.N.*
    neck.l2_norm.weight                      neck.l2_norm.weight
    neck.extra_layers.K.0.conv.*  (1x1)      neck.extra_layers.K.0.*
    neck.extra_layers.K.1.conv.*  (kxk)      neck.extra_layers.K.2.*
    bbox_head.cls_convs.L.0.*                bbox_head.cls_convs.L.*
    bbox_head.reg_convs.L.0.*                bbox_head.reg_convs.L.*

Class channels need no reordering: both put background last (``C + 1``
scores per default box) and use the same default-box order. Checkpoints of
mmdet < 2.14 (``backbone.extra.*``) must first go through mmdet's
``tools/model_converters/upgrade_ssd_version.py``; SSDLite (depthwise convs,
batch norm) is not SSD and is refused.

Every key must be recognised and every shape must fit an SSD (VGG16 layer
shapes, each layer's input channels equal to the previous output, one head
level per feature map, the same class count on every level): otherwise a
``ValueError`` names the key and the shape expected. Nothing is dropped.

Usage::

    python tools/model_converters/from_mmdet.py SRC DST

``DST`` holds ``dict(state_dict=..., meta=...)``; ``meta`` keeps the source's
``dataset_meta`` (class names) so that ``init_detector`` shows the right
names. Use it with ``configs/ssd/ssd300_coco.py`` (or ``ssd512_coco.py``):
mmdet's data preprocessor settings are the same as ours. Note that mmdet's
``test_cfg`` uses ``score_thr=0.02`` where our configs use Caffe's 0.01.
"""
import argparse
import os.path as osp
import re
import sys
from collections import OrderedDict
from typing import List, Mapping, Sequence, Tuple

from torch import Tensor

from ssd_plugin.models import AtrousVGG

_HERE = osp.dirname(osp.abspath(__file__))
if _HERE not in sys.path:  # the shared helpers live beside this script
    sys.path.insert(0, _HERE)
from _checkpoint_io import (Shapes, check_shapes,  # noqa: E402
                            load_state_dict, module_shapes, save_checkpoint)

# (pattern on mmdet's key, our key as a format string over its groups).
RENAMES = (
    (re.compile(r'backbone\.features\.(\d+)\.(weight|bias)'),
     'backbone.features.{0}.{1}'),
    (re.compile(r'neck\.l2_norm\.weight'), 'neck.l2_norm.weight'),
    (re.compile(r'neck\.extra_layers\.(\d+)\.0\.conv\.(weight|bias)'),
     'neck.extra_layers.{0}.0.{1}'),
    (re.compile(r'neck\.extra_layers\.(\d+)\.1\.conv\.(weight|bias)'),
     'neck.extra_layers.{0}.2.{1}'),
    (re.compile(r'bbox_head\.(cls|reg)_convs\.(\d+)\.0\.(weight|bias)'),
     'bbox_head.{0}_convs.{1}.{2}'),
)
CONV4_3_CHANNELS, FC7_CHANNELS = 512, 1024  # mmdet's SSDVGG, as ours


def rename(key: str) -> str:
    """Our name for one of mmdet's SSD keys.

    Raises:
        ValueError: If the key belongs to no layer of mmdet's SSD.
    """
    for pattern, template in RENAMES:
        match = pattern.fullmatch(key)
        if match:
            return template.format(*match.groups())
    hint = ''
    if key.startswith(('backbone.extra', 'backbone.l2_norm')):
        hint = (' It is a checkpoint of mmdet < 2.14: upgrade it first with '
                "mmdet's tools/model_converters/upgrade_ssd_version.py.")
    elif any(word in key for word in ('depthwise', 'pointwise', '.bn.')):
        hint = ' SSDLite (depthwise convs, batch norm) is not supported.'
    raise ValueError(
        f'unknown key {key!r}: not a layer of mmdet\'s SSD (SSDVGG, SSDNeck, '
        f'SSDHead without stacked convs).{hint}')


def mmdet_key(key: str) -> str:
    """mmdet's name for one of our SSD keys (the inverse of :func:`rename`)."""
    key = re.sub(r'^neck\.extra_layers\.(\d+)\.0\.',
                 r'neck.extra_layers.\1.0.conv.', key)
    key = re.sub(r'^neck\.extra_layers\.(\d+)\.2\.',
                 r'neck.extra_layers.\1.1.conv.', key)
    return re.sub(r'^bbox_head\.(cls|reg)_convs\.(\d+)\.',
                  r'bbox_head.\1_convs.\2.0.', key)


def _indices(state_dict: Mapping[str, Tensor], prefix: str) -> List[int]:
    """Sorted distinct ``N`` of the keys ``<prefix>N.<rest>``."""
    return sorted({int(k[len(prefix):].split('.')[0]) for k in state_dict
                   if k.startswith(prefix)})


def _check_consecutive(indices: Sequence[int], name: str,
                       count: int) -> None:
    """ValueError unless ``indices`` is ``0 ... count - 1``."""
    if list(indices) != list(range(count)):
        raise ValueError(
            f'{name} has indices {list(indices)}; expected 0 ... '
            f'{count - 1} without gaps')


def _shape(state_dict: Mapping[str, Tensor], key: str,
           expected: str) -> Tuple[int, ...]:
    """Shape of ``key``; ValueError naming what was expected if missing."""
    if key not in state_dict:
        raise ValueError(f'missing key {mmdet_key(key)!r}: expected a tensor '
                         f'of shape {expected}')
    return tuple(state_dict[key].shape)


def neck_shapes(state_dict: Mapping[str, Tensor]) -> Tuple[Shapes, List[int]]:
    """Expected shapes of the L2Norm and the extra layers (our keys).

    Free numbers are read from the checkpoint (each extra layer's bottleneck
    and output channels and its kernel side); every input channel count must
    then equal the previous layer's output.

    Returns:
        tuple[dict, list[int]]: The shapes and the channels of every feature
        map (conv4_3, fc7, then one per extra layer).
    """
    shapes = {'neck.l2_norm.weight': (CONV4_3_CHANNELS, )}
    channels = [CONV4_3_CHANNELS, FC7_CHANNELS]
    indices = _indices(state_dict, 'neck.extra_layers.')
    _check_consecutive(indices, 'neck.extra_layers', len(indices))
    for k in indices:
        name = f'neck.extra_layers.{k}'
        mid = _shape(state_dict, f'{name}.0.weight', '(mid, in, 1, 1)')[0]
        out, _, kernel = _shape(state_dict, f'{name}.2.weight',
                                '(out, mid, k, k)')[:3]
        shapes.update({f'{name}.0.weight': (mid, channels[-1], 1, 1),
                       f'{name}.0.bias': (mid, ),
                       f'{name}.2.weight': (out, mid, kernel, kernel),
                       f'{name}.2.bias': (out, )})
        channels.append(out)
    return shapes, channels


def head_shapes(state_dict: Mapping[str, Tensor],
                channels: Sequence[int]) -> Tuple[Shapes, int]:
    """Expected shapes of the head convs (our keys).

    ``A_l`` (boxes per location) is read from each level's box conv
    (``A_l * 4`` outputs) and ``C + 1`` from level 0's class conv; every
    level must then have ``A_l * (C + 1)`` class outputs and take the
    channels of its feature map.

    Returns:
        tuple[dict, int]: The shapes and ``C``, the object classes.
    """
    levels = _indices(state_dict, 'bbox_head.reg_convs.')
    _check_consecutive(levels, 'bbox_head.reg_convs (one per feature map)',
                       len(channels))
    boxes = [_shape(state_dict, f'bbox_head.reg_convs.{lvl}.weight',
                    '(A * 4, in, 3, 3)')[0] // 4 for lvl in levels]
    cls0 = _shape(state_dict, 'bbox_head.cls_convs.0.weight',
                  '(A * (C + 1), in, 3, 3)')[0]
    num_scores = cls0 // max(boxes[0], 1)
    shapes = {}
    for lvl, (anchors, chans) in enumerate(zip(boxes, channels)):
        for branch, outs in (('cls', anchors * num_scores),
                             ('reg', anchors * 4)):
            shapes[f'bbox_head.{branch}_convs.{lvl}.weight'] = (outs, chans,
                                                                 3, 3)
            shapes[f'bbox_head.{branch}_convs.{lvl}.bias'] = (outs, )
    return shapes, num_scores - 1


def convert(state_dict: Mapping[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """mmdet SSD weights -> ssd_plugin SSD weights (renamed, checked).

    Args:
        state_dict (Mapping[str, Tensor]): The ``state_dict`` of an mmdet
            >= 2.14 SSD checkpoint (SSD300, SSD512, any class count).

    Returns:
        OrderedDict[str, Tensor]: Our keys, the same tensors, mmdet's order.

    Raises:
        ValueError: On an unknown or missing key or a wrong shape, naming the
            key and the expected shape.
    """
    converted = OrderedDict((rename(k), v) for k, v in state_dict.items())
    expected = module_shapes(AtrousVGG, 'backbone.')
    shapes, channels = neck_shapes(converted)
    expected.update(shapes)
    expected.update(head_shapes(converted, channels)[0])
    check_shapes(converted, expected, mmdet_key)
    return converted


def num_classes(state_dict: Mapping[str, Tensor]) -> int:
    """Object classes ``C`` of converted weights (``A * (C + 1)`` scores)."""
    anchors = state_dict['bbox_head.reg_convs.0.weight'].size(0) // 4
    return state_dict['bbox_head.cls_convs.0.weight'].size(0) // anchors - 1


def main(argv: Sequence[str] = None) -> None:
    """Command line: ``from_mmdet.py SRC DST``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='mmdet SSD checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint for ssd_plugin')
    args = parser.parse_args(argv)
    state_dict, source_meta = load_state_dict(args.src)
    converted = convert(state_dict)
    meta = dict(converted_from=osp.basename(args.src),
                converter='tools/model_converters/from_mmdet.py',
                num_classes=num_classes(converted))
    if 'dataset_meta' in source_meta:  # class names for init_detector
        meta['dataset_meta'] = source_meta['dataset_meta']
    save_checkpoint(args.dst, converted, meta)
    print(f'{args.dst}: {len(converted)} tensors, {meta["num_classes"]} '
          'classes')


if __name__ == '__main__':
    main()
