"""SSD's base network: VGG16 made fully convolutional (section 3; Caffe's
``VGGNetBody(fully_conv, reduced, dilated)``). Keys are torchvision's and
mmdet's ``SSDVGG`` ``features.<index>`` (conv4_3 21, pool5 30, fc6 31, fc7
33), each conv followed by its ReLU."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from ssd_plugin.models.conv_layers import use_channels_last
from ssd_plugin.registry import MODELS

# VGG16 (configuration "D"): output channels per conv, 'M' a 2x2/2 max pool.
# conv5_3 is followed by SSD's pool5, not VGG's.
VGG16_LAYERS = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M',
                512, 512, 512, 'M', 512, 512, 512)
CONV4_3_RELU = 22
FC7_RELU = 34


def _vgg16_features(in_channels: int, fc_channels: int,
                    dilation: int) -> List[nn.Module]:
    """The layers of :class:`AtrousVGG` in ``features.<index>`` order."""
    layers: List[nn.Module] = []
    channels = in_channels
    for spec in VGG16_LAYERS:
        if spec == 'M':
            layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
            continue
        layers += [nn.Conv2d(channels, spec, 3, padding=1),
                   nn.ReLU(inplace=True)]
        channels = spec
    layers += [
        nn.MaxPool2d(3, stride=1, padding=1),  # pool5, section 3
        # fc6: VGG's 4096x7x7 fc decimated to 1024x3x3, "a trous" rate 6.
        nn.Conv2d(channels, fc_channels, 3, padding=dilation,
                  dilation=dilation),
        nn.ReLU(inplace=True),
        nn.Conv2d(fc_channels, fc_channels, 1),  # fc7
        nn.ReLU(inplace=True),
    ]
    return layers


@MODELS.register_module()
class AtrousVGG(BaseModule):
    """VGG16 up to fc7 as convolutions: SSD's first two feature maps.

    Args:
        fc_channels (int): fc6 and fc7 channels (section 3: 1024).
        dilation (int): fc6 dilation and padding (Caffe: 6).
        out_indices (Sequence[int]): Ascending ``features`` indices returned;
            ``(22, 34)``: conv4_3 and fc7 after their ReLUs.
        channels_last (bool): Input and weights channels-last.
        init_cfg (dict, optional): E.g. ``dict(type='Pretrained',
            checkpoint=PATH)`` (``prefix='backbone.'`` for a whole model).
    """

    def __init__(self,
                 in_channels: int = 3,
                 fc_channels: int = 1024,
                 dilation: int = 6,
                 out_indices: Sequence[int] = (CONV4_3_RELU, FC7_RELU),
                 channels_last: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in dict(in_channels=in_channels,
                                fc_channels=fc_channels,
                                dilation=dilation).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'{name}={value!r} must be a positive int')
        self.features = nn.Sequential(
            *_vgg16_features(in_channels, fc_channels, dilation))
        self.out_indices = tuple(out_indices)
        last = len(self.features) - 1
        if (not self.out_indices or list(self.out_indices) != sorted(
                set(self.out_indices)) or self.out_indices[0] < 0
                or self.out_indices[-1] > last):
            raise ValueError(
                f'out_indices={tuple(out_indices)} must be ascending, unique '
                f'and within [0, {last}]; SSD uses (22, 34), conv4_3 and fc7')
        self.channels_last = channels_last
        use_channels_last(self, channels_last)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """``(N, in_channels, H, W)`` images to the ``out_indices`` maps, by
        default ``(N, 512, ceil(H/8), ceil(W/8))`` (conv4_3) and ``(N,
        fc_channels, ceil(H/16), ceil(W/16))`` (fc7)."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        outs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.out_indices:
                outs.append(x)
            if index == self.out_indices[-1]:
                break
        return tuple(outs)
