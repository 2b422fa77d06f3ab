"""Convert torchvision's ``ssd300_vgg16`` weights to ssd_plugin's SSD300.

torchvision's SSD300 (``torchvision.models.detection.ssd300_vgg16``, e.g.
``ssd300_vgg16_coco-b556d3b4.pth``) is the paper's SSD300 with Caffe's COCO
default boxes; its modules carry other names::

    torchvision                          ssd_plugin
    backbone.features.{0..21}.*          backbone.features.{same}.*
      (conv1_1 ... conv4_3)
    backbone.extra.0.{1,3,5}.*           backbone.features.{24,26,28}.*
      (conv5_1 ... conv5_3; extra.0.0 is pool4, extra.0.7.0 pool5)
    backbone.extra.0.7.1.*  (fc6)        backbone.features.31.*
    backbone.extra.0.7.3.*  (fc7)        backbone.features.33.*
    backbone.scale_weight   (L2Norm)     neck.l2_norm.weight
    backbone.extra.K.{0,2}.*  (K = 1..4) neck.extra_layers.{K-1}.{0,2}.*
    head.classification_head.module_list.L.*  bbox_head.cls_convs.L.*
    head.regression_head.module_list.L.*      bbox_head.reg_convs.L.*

Classes: torchvision scores 91 classes per default box, index 0 the
background and index ``i`` the COCO category id ``i``, ten of which COCO
never uses (12, 26, 29, 30, 45, 66, 68, 69, 71, 83). mmdet has 80 classes,
the used ids in ascending order, and the background last. Each class conv's
``A * 91`` output channels (box ``a``'s scores at ``a * 91 ...``) are
reordered to ``A * 81``: the 80 used ids, then id 0. The ten unused classes
are dropped; never trained as positives, they hold a negligible share of
torchvision's softmax.

Boxes need no change: torchvision's ``BoxCoder(weights=(10, 10, 5, 5))``
encodes ``(dx, dy, dw, dh)`` divided by Caffe's variances, which is mmdet's
``DeltaXYWHBBoxCoder`` with ``target_stds=(0.1, 0.1, 0.2, 0.2)`` (our
configs'); its default-box order (location row-major, then the min square,
the ``sqrt(min * max)`` square, each ratio and its flip) is ours.

To reproduce torchvision with ``configs/ssd/ssd300_coco.py``:

- **Input normalisation.** torchvision's SSD300 takes RGB in [0, 1] and
  normalises with mean ``[0.48235, 0.45882, 0.40784]`` and std ``1 / 255``:
  RGB pixels in 0-255 minus ``[123., 117., 104.]``. Our config subtracts
  ImageNet's ``[123.675, 116.28, 103.53]`` (std 1, RGB), up to 0.7 grey
  levels away; set ``model.data_preprocessor.mean=[123., 117., 104.]``
  (e.g. ``--cfg-options``) for torchvision's exact input.
- **Default boxes.** Its scales ``(0.07, 0.15, 0.33, 0.51, 0.69, 0.87,
  1.05)`` are our COCO config's sizes (21, 45, 99, 153, 207, 261, 315 px).
  torchvision clips each box's width and height to the image (``clip=True``):
  only the two 2:1 boxes on the 1x1 map (369 x 185 px) change, to 300 px;
  we keep Caffe's (``clip=False``). 2 of 8732 default boxes differ.
- **Resizing and post-processing** differ in detail: torchvision resizes
  the float image with ``F.interpolate`` (mmdet: OpenCV on 8-bit pixels),
  and keeps the 400 best boxes per class above 0.01 before NMS (ours: the
  1000 best (box, class) pairs per image). Both apply NMS at 0.45 per class
  and keep 200.

Usage::

    python tools/model_converters/from_torchvision.py SRC DST

``DST`` holds ``dict(state_dict=..., meta=...)`` with COCO's 80 class names
in ``meta['dataset_meta']``. Unknown or missing keys and wrong shapes raise
a ``ValueError`` naming the key and the expected shape.
"""
import argparse
import os.path as osp
import re
import sys
from collections import OrderedDict
from typing import Callable, Dict, List, Mapping, Sequence

import torch
from torch import Tensor

from ssd_plugin.models import AtrousVGG, SSDHead, SSDNeck

_HERE = osp.dirname(osp.abspath(__file__))
if _HERE not in sys.path:  # the shared helpers live beside this script
    sys.path.insert(0, _HERE)
from _checkpoint_io import (Shapes, check_shapes,  # noqa: E402
                            load_state_dict, module_shapes, save_checkpoint)

TORCHVISION_CLASSES = 91  # background + COCO ids 1 ... 90
COCO_UNUSED_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
# Our class k is COCO id COCO_IDS[k]; our background (index 80) is id 0.
COCO_IDS = tuple(i for i in range(1, TORCHVISION_CLASSES)
                 if i not in COCO_UNUSED_IDS)
NUM_CLASSES = len(COCO_IDS)
CLASS_ORDER = COCO_IDS + (0, )  # torchvision index of each of our 81 scores
_CONV5 = {'1': 24, '3': 26, '5': 28}  # extra.0.<i> -> features.<index>
_FC = {'1': 31, '3': 33}  # extra.0.7.<i> -> features.<index> (fc6, fc7)
_P = r'\.(weight|bias)'
RULES: Sequence = (
    (r'backbone\.features\.(\d+)' + _P,
     lambda n, p: f'backbone.features.{n}.{p}'),
    (r'backbone\.extra\.0\.([135])' + _P,
     lambda i, p: f'backbone.features.{_CONV5[i]}.{p}'),
    (r'backbone\.extra\.0\.7\.([13])' + _P,
     lambda i, p: f'backbone.features.{_FC[i]}.{p}'),
    (r'backbone\.scale_weight', lambda: 'neck.l2_norm.weight'),
    (r'backbone\.extra\.([1-9]\d*)\.([02])' + _P,
     lambda k, i, p: f'neck.extra_layers.{int(k) - 1}.{i}.{p}'),
    (r'head\.classification_head\.module_list\.(\d+)' + _P,
     lambda lvl, p: f'bbox_head.cls_convs.{lvl}.{p}'),
    (r'head\.regression_head\.module_list\.(\d+)' + _P,
     lambda lvl, p: f'bbox_head.reg_convs.{lvl}.{p}'),
)


def rename(key: str) -> str:
    """Our name for one of torchvision's ``ssd300_vgg16`` keys.

    Raises:
        ValueError: If the key belongs to no layer of ``ssd300_vgg16``.
    """
    for pattern, new_name in RULES:
        match = re.fullmatch(pattern, key)
        if match:
            return new_name(*match.groups())
    raise ValueError(
        f"unknown key {key!r}: not a layer of torchvision's ssd300_vgg16 "
        '(backbone.features.*, backbone.scale_weight, backbone.extra.*, '
        'head.classification_head.*, head.regression_head.*)')


def torchvision_keys() -> List[str]:
    """Every key of torchvision's ``ssd300_vgg16`` state dict."""
    convs = ([f'backbone.features.{n}' for n in
              (0, 2, 5, 7, 10, 12, 14, 17, 19, 21)] +
             [f'backbone.extra.0.{i}' for i in _CONV5] +
             [f'backbone.extra.0.7.{i}' for i in _FC] +
             [f'backbone.extra.{k}.{i}' for k in range(1, 5) for i in (0, 2)]
             + [f'head.{branch}_head.module_list.{lvl}'
                for branch in ('classification', 'regression')
                for lvl in range(6)])
    return ['backbone.scale_weight'] + [
        f'{conv}.{p}' for conv in convs for p in ('weight', 'bias')]


def source_shapes() -> Shapes:
    """Shapes torchvision's weights must have, under our key names.

    Our SSD300 (the modules' defaults) with 91 instead of 81 scores per
    default box in the class convs.
    """
    shapes = module_shapes(AtrousVGG, 'backbone.')
    shapes.update(module_shapes(SSDNeck, 'neck.'))
    head = module_shapes(SSDHead, 'bbox_head.', num_classes=NUM_CLASSES)
    for key, shape in head.items():
        if key.startswith('bbox_head.cls_convs.'):
            boxes = shape[0] // (NUM_CLASSES + 1)
            shape = (boxes * TORCHVISION_CLASSES, ) + shape[1:]
        shapes[key] = shape
    return shapes


def remap_classes(scores: Tensor) -> Tensor:
    """A class conv's ``(A * 91, ...)`` weight or bias -> ``(A * 81, ...)``.

    Box ``a``'s torchvision scores are rows ``a * 91 + id``; ours are
    ``a * 81 + k`` with COCO id ``COCO_IDS[k]``, then the background.
    """
    boxes = scores.size(0) // TORCHVISION_CLASSES
    per_box = scores.reshape(boxes, TORCHVISION_CLASSES, *scores.shape[1:])
    order = torch.tensor(CLASS_ORDER, device=scores.device)
    return per_box.index_select(1, order).reshape(
        boxes * len(CLASS_ORDER), *scores.shape[1:])


def _namer(state_dict: Mapping[str, Tensor]) -> Callable[[str], str]:
    """Our key -> torchvision's key, for error messages."""
    names: Dict[str, str] = {
        rename(k): k for k in [*torchvision_keys(), *state_dict]}
    return lambda key: names.get(key, key)


def convert(state_dict: Mapping[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """torchvision ``ssd300_vgg16`` weights -> ssd_plugin SSD300 (COCO).

    Args:
        state_dict (Mapping[str, Tensor]): torchvision's state dict (91
            classes, background index 0).

    Returns:
        OrderedDict[str, Tensor]: Our keys; class convs reordered to mmdet's
        80 classes with background last, the rest unchanged.

    Raises:
        ValueError: On an unknown or missing key or a wrong shape, naming the
            key and the expected shape.
    """
    renamed = OrderedDict((rename(k), v) for k, v in state_dict.items())
    check_shapes(renamed, source_shapes(), _namer(state_dict))
    return OrderedDict(
        (k, remap_classes(v) if k.startswith('bbox_head.cls_convs.') else v)
        for k, v in renamed.items())


def main(argv: Sequence[str] = None) -> None:
    """Command line: ``from_torchvision.py SRC DST``."""
    from mmdet.datasets import CocoDataset
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help="torchvision's ssd300_vgg16 weights")
    parser.add_argument('dst', help='output checkpoint for ssd_plugin')
    args = parser.parse_args(argv)
    converted = convert(load_state_dict(args.src)[0])
    meta = dict(converted_from=osp.basename(args.src),
                converter='tools/model_converters/from_torchvision.py',
                num_classes=NUM_CLASSES,
                dataset_meta=dict(classes=CocoDataset.METAINFO['classes']))
    save_checkpoint(args.dst, converted, meta)
    print(f'{args.dst}: {len(converted)} tensors, COCO ids {COCO_IDS[0]} ... '
          f'{COCO_IDS[-1]} as classes 0 ... {NUM_CLASSES - 1}')


if __name__ == '__main__':
    main()
