"""ImageNet VGG16 to AtrousVGG's initial weights, section 3
(``vgg16_reducedfc.py``).

fc6 and fc7 become subsampled convolutions, fc6 dilated; fc8 is removed.
torchvision's input std is folded into conv1_1 (our configs divide by 1)
unless ``--input-std 1 1 1``. ``DST`` is for the backbone's ``init_cfg``.
"""
from typing import Mapping, Sequence

import torch
from torch import Tensor

from ssd_plugin.converters.common import ConfigLike, StateDict
from ssd_plugin.converters.common import convert as convert_state_dict

TORCHVISION_STD = (58.395, 57.12, 57.375)  # ImageNet std x 255, RGB
FC6_SHAPE = (4096, 512 * 7 * 7)  # over VGG16's 512 x 7 x 7 pool5
CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)  # conv1_1 ... 5_3
RULES = (  # (torchvision's key prefix, ours)
    ('classifier.0.', 'features.31.'),  # fc6
    ('classifier.3.', 'features.33.'),  # fc7
    *((f'features.{i}.', f'features.{i}.') for i in CONVS),  # kept as they are
)
FIX = "Expected torchvision's vgg16 (not vgg16_bn) and an AtrousVGG config."


def reduce_fc6(weight: Tensor) -> Tensor:
    """fc6 ``(4096, 25088)`` as a 7x7 conv; every 4th filter, taps 0, 3, 6:
    ``(1024, 512, 3, 3)``, 6 cells apart on SSD's stride-16 pool5 map."""
    if tuple(weight.shape) != FC6_SHAPE:
        raise ValueError(f"'classifier.0.weight' has shape "
                         f'{tuple(weight.shape)}; expected {FC6_SHAPE}')
    return weight.reshape(4096, 512, 7, 7)[::4, :, ::3, ::3].contiguous()


def convert(state_dict: Mapping[str, Tensor],
            input_std: Sequence[float] = TORCHVISION_STD,
            config: ConfigLike = None) -> StateDict:
    """torchvision ``vgg16`` weights -> AtrousVGG's ``features.N.*``, with
    ``input_std`` (RGB, 0-255) folded into conv1_1, checked against the
    backbone of ``config``; see :func:`.common.convert`."""
    std = torch.as_tensor(input_std, dtype=torch.float64)
    if std.shape != (3, ) or not bool((std > 0).all()):
        raise ValueError(f'input_std={tuple(input_std)} must be 3 positive '
                         'numbers (RGB), e.g. 58.395 57.12 57.375')
    reshape = {  # fc7: every 4th filter and the fc6 outputs kept
        'classifier.0.weight': reduce_fc6,
        'classifier.0.bias': lambda b: b[::4].clone(),
        'classifier.3.weight': lambda w: w[::4, ::4, None, None].contiguous(),
        'classifier.3.bias': lambda b: b[::4].clone()}
    converted = convert_state_dict(
        {k: reshape[k](v) if k in reshape else v for k, v in state_dict.items()
         if not k.startswith('classifier.6.')},  # fc8: removed
        RULES, "torchvision's vgg16", FIX, config, part='backbone')
    conv1_1 = converted['features.0.weight']  # (64, 3, 3, 3), checked
    converted['features.0.weight'] = (conv1_1.double() / std.view(
        1, 3, 1, 1)).to(conv1_1.dtype)
    return converted
