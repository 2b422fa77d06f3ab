"""ImageNet VGG16 -> AtrousVGG's initial weights (Liu et al., section 3).

Section 3 ("Base network"): SSD starts from ImageNet's VGG16 with fc6 and fc7
"converted to convolutional layers", their parameters subsampled, pool5
changed to 3x3 stride 1 and fc6 made "a trous". The Caffe release ships the
result as ``VGG_ILSVRC_16_layers_fc_reduced`` (DeepLab-LargeFOV's reduced
VGG16). This script does the same to torchvision's ``vgg16`` state dict:

- conv1_1 ... conv5_3 (``features.{0, 2, ..., 28}``): copied, keys kept;
- fc6 (``classifier.0``, ``4096 x 25088``): viewed as the conv it is,
  ``4096 x 512 x 7 x 7`` (pool5's map flattened channel, row, column), then
  every 4th filter (0, 4, ..., 4092) and every 3rd tap along each axis
  (rows and columns 0, 3, 6: both ends and the centre) are kept:
  ``1024 x 512 x 3 x 3`` at ``features.31``. Kept taps lie 3 cells apart
  on VGG's stride-32 pool5 map, i.e. 6 cells on SSD's stride-16 one (pool5
  3x3/1): hence fc6's dilation of 6;
- fc7 (``classifier.3``, ``4096 x 4096``): every 4th filter and every 4th
  input channel, the ones fc6 kept: ``1024 x 1024 x 1 x 1`` at
  ``features.33``;
- biases: every 4th entry, as their filters;
- fc8 (``classifier.6``, ImageNet's 1000 classes): not converted, as the
  paper removes it; the only weights left out.

Input scaling: torchvision's VGG16 was trained on ``(rgb / 255 - mean) /
std``, i.e. in 0-255 pixels ``(rgb - [123.675, 116.28, 103.53]) /
[58.395, 57.12, 57.375]``. Our configs' data preprocessor subtracts the same
mean but divides by 1 (Caffe's VGG16 takes unscaled pixels), so by default
the std is folded into conv1_1: its weights for input channel ``c`` are
divided by ``std[c]``, which gives exactly torchvision's conv1_1 outputs on
our inputs (zero padding is zero either way). Pass ``--input-std 1 1 1``
for weights trained on unscaled pixels.

Usage::

    python tools/model_converters/vgg16_reducedfc.py SRC DST
        [--input-std 58.395 57.12 57.375]

``DST`` (keys ``features.N.*``) goes to the backbone's ``init_cfg=dict(
type='Pretrained', checkpoint=DST)``. Unknown or missing keys and wrong
shapes raise a ``ValueError`` naming the key and the expected shape.
"""
import argparse
import os.path as osp
import sys
from collections import OrderedDict
from typing import Mapping, Sequence, Tuple

import torch
from torch import Tensor

from ssd_plugin.models import AtrousVGG

_HERE = osp.dirname(osp.abspath(__file__))
if _HERE not in sys.path:  # the shared helpers live beside this script
    sys.path.insert(0, _HERE)
from _checkpoint_io import (Shapes, check_shapes,  # noqa: E402
                            load_state_dict, module_shapes, save_checkpoint)

TORCHVISION_STD = (58.395, 57.12, 57.375)  # ImageNet std x 255, RGB
FC6, FC7 = 'features.31', 'features.33'  # AtrousVGG's keys
POOL5_CHANNELS, POOL5_SIDE = 512, 7  # VGG16's pool5 map at 224 x 224
FC_FULL = 4096
FILTER_STEP = 4  # 4096 -> 1024 filters (fc6, fc7) and fc7 inputs
TAP_STEP = 3  # 7 -> 3 taps per axis of fc6: 0, 3, 6


def source_shapes(num_classes: int = None) -> Shapes:
    """Shapes of torchvision's ``vgg16`` state dict.

    Args:
        num_classes (int, optional): Rows of fc8 (``classifier.6``); None
            when it is absent.
    """
    shapes = {k: v for k, v in module_shapes(AtrousVGG).items()
              if not k.startswith((FC6 + '.', FC7 + '.'))}
    fc_in = POOL5_CHANNELS * POOL5_SIDE**2
    shapes.update({'classifier.0.weight': (FC_FULL, fc_in),
                   'classifier.0.bias': (FC_FULL, ),
                   'classifier.3.weight': (FC_FULL, FC_FULL),
                   'classifier.3.bias': (FC_FULL, )})
    if num_classes is not None:
        shapes.update({'classifier.6.weight': (num_classes, FC_FULL),
                       'classifier.6.bias': (num_classes, )})
    return shapes


def reduce_fc6(weight: Tensor, bias: Tensor) -> Tuple[Tensor, Tensor]:
    """fc6 ``(4096, 25088)`` -> conv ``(1024, 512, 3, 3)``, bias ``(1024,)``.

    ``weight.view(4096, 512, 7, 7)[::4, :, ::3, ::3]``, see the module
    docstring.
    """
    conv = weight.reshape(FC_FULL, POOL5_CHANNELS, POOL5_SIDE, POOL5_SIDE)
    return (conv[::FILTER_STEP, :, ::TAP_STEP, ::TAP_STEP].contiguous(),
            bias[::FILTER_STEP].clone())


def reduce_fc7(weight: Tensor, bias: Tensor) -> Tuple[Tensor, Tensor]:
    """fc7 ``(4096, 4096)`` -> conv ``(1024, 1024, 1, 1)``, bias ``(1024,)``.

    Rows (filters) and columns (fc6's outputs) every 4th: the columns are the
    fc6 filters :func:`reduce_fc6` kept.
    """
    reduced = weight[::FILTER_STEP, ::FILTER_STEP]
    return (reduced[:, :, None, None].contiguous(),
            bias[::FILTER_STEP].clone())


def convert(state_dict: Mapping[str, Tensor],
            input_std: Sequence[float] = TORCHVISION_STD
            ) -> 'OrderedDict[str, Tensor]':
    """torchvision ``vgg16`` weights -> :class:`AtrousVGG` weights.

    Args:
        state_dict (Mapping[str, Tensor]): torchvision's ``vgg16`` keys
            ``features.N.*`` and ``classifier.{0,3}.*`` (``classifier.6`` is
            allowed and left out).
        input_std (Sequence[float]): Per input channel (RGB), the std the
            source was trained with in 0-255 units, folded into conv1_1.
            Defaults to torchvision's; ``(1, 1, 1)`` changes nothing.

    Returns:
        OrderedDict[str, Tensor]: AtrousVGG's keys (``features.0.weight``
        ... ``features.33.bias``).

    Raises:
        ValueError: On an unknown or missing key or a wrong shape (naming it
            and the expected shape), or a bad ``input_std``.
    """
    std = torch.as_tensor(input_std, dtype=torch.float64)
    if std.shape != (3, ) or not bool((std > 0).all()):
        raise ValueError(f'input_std={tuple(input_std)} must be 3 positive '
                         'numbers (RGB), e.g. (58.395, 57.12, 57.375)')
    fc8 = state_dict.get('classifier.6.weight')
    check_shapes(state_dict,
                 source_shapes(None if fc8 is None else fc8.shape[0]))
    out = OrderedDict((k, v) for k, v in state_dict.items()
                      if k.startswith('features.'))
    conv1 = out['features.0.weight']
    out['features.0.weight'] = (conv1.double() / std[None, :, None, None]).to(
        conv1.dtype)
    out[FC6 + '.weight'], out[FC6 + '.bias'] = reduce_fc6(
        state_dict['classifier.0.weight'], state_dict['classifier.0.bias'])
    out[FC7 + '.weight'], out[FC7 + '.bias'] = reduce_fc7(
        state_dict['classifier.3.weight'], state_dict['classifier.3.bias'])
    return out


def main(argv: Sequence[str] = None) -> None:
    """Command line: ``vgg16_reducedfc.py SRC DST [--input-std R G B]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help="torchvision's vgg16 ImageNet weights")
    parser.add_argument('dst', help='output checkpoint for AtrousVGG')
    parser.add_argument('--input-std', type=float, nargs=3,
                        default=TORCHVISION_STD, metavar=('R', 'G', 'B'),
                        help='std (0-255 units) the source was trained with, '
                        "folded into conv1_1 (default: torchvision's)")
    args = parser.parse_args(argv)
    converted = convert(load_state_dict(args.src)[0], args.input_std)
    meta = dict(converted_from=osp.basename(args.src),
                converter='tools/model_converters/vgg16_reducedfc.py',
                input_std_folded=list(args.input_std))
    save_checkpoint(args.dst, converted, meta)
    print(f'{args.dst}: {len(converted)} tensors for AtrousVGG')


if __name__ == '__main__':
    main()
