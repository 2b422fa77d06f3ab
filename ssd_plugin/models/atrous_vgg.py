"""SSD's base network: VGG16 made fully convolutional (Liu et al., section 3).

Section 3 / footnote of table 1: VGG16 with fc6 and fc7 turned into
convolutions, fc6 subsampled to 1024 channels and dilated ("atrous", rate 6),
pool5 changed from 2x2/2 to 3x3/1, dropout and fc8 removed. The numbers follow
the Caffe release (``VGGNetBody(fully_conv=True, reduced=True,
dilated=True)``).

Shape shorthand: ``N`` images, ``H x W`` the input. Every 2x2/2 pool rounds
up (Caffe's pooling always does), so for a 300x300 input conv4_3 is 38x38
(pool3: 75 -> 38) and fc7 19x19; for 512, 64x64 and 32x32.

State-dict keys (``features.<index>``, torchvision's and mmdet's ``SSDVGG``
layout, so ImageNet VGG16 and mmdet's SSD checkpoints map one to one)::

    conv1_1 features.0    conv1_2 features.2    pool1 features.4
    conv2_1 features.5    conv2_2 features.7    pool2 features.9
    conv3_1 features.10   conv3_2 features.12   conv3_3 features.14
    pool3   features.16
    conv4_1 features.17   conv4_2 features.19   conv4_3 features.21
    pool4   features.23
    conv5_1 features.24   conv5_2 features.26   conv5_3 features.28
    pool5   features.30 (3x3, stride 1, pad 1)
    fc6     features.31 (3x3, dilation 6, pad 6, 1024 channels)
    fc7     features.33 (1x1, 1024 channels)

each conv with ``.weight`` ``(out, in, k, k)`` and ``.bias`` ``(out,)``, each
followed by a ReLU at the next index. The outputs are taken after the ReLUs of
conv4_3 (index 22) and fc7 (index 34).
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from ssd_plugin.registry import MODELS

# VGG16 (configuration "D"): output channels per conv, 'M' a 2x2/2 max pool.
# conv5_3 is followed by SSD's pool5, not VGG's.
VGG16_LAYERS = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M',
                512, 512, 512, 'M', 512, 512, 512)
CONV4_3_RELU = 22
FC7_RELU = 34


def vgg_feature_sizes(input_size: int) -> Tuple[int, int]:
    """Side of the conv4_3 and fc7 maps for an input side (pure arithmetic).

    Convs keep the size (3x3 pad 1; fc6 3x3 dilation 6 pad 6; fc7 1x1);
    each 2x2/2 ceil-mode pool maps ``s`` to ``ceil(s / 2)``; pool5 (3x3/1
    pad 1) keeps it. conv4_3 follows three pools, fc7 four.

    Args:
        input_size (int): Input height or width in pixels.

    Returns:
        tuple[int, int]: ``(conv4_3 side, fc7 side)``.
    """
    size = input_size
    for _ in range(3):
        size = math.ceil(size / 2)
    return size, math.ceil(size / 2)


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
    """VGG16 up to fc7 as convolutions, giving SSD's first two feature maps.

    Args:
        in_channels (int): Input image channels. Defaults to 3.
        fc_channels (int): Channels of fc6 and fc7. Defaults to 1024 (the
            paper's subsampled fc layers).
        dilation (int): Dilation and padding of fc6. Defaults to 6 (Caffe's
            ``dilated=True`` with pool5 3x3/1).
        out_indices (Sequence[int]): Indices into ``features`` whose outputs
            are returned, ascending. Defaults to ``(22, 34)``: conv4_3 and fc7
            after their ReLUs.
        channels_last (bool): Keep the conv weights and the input in the
            channels-last memory format, which MKL-DNN's CPU convolutions run
            about 1.4x as fast on VGG16 (and CUDA's mixed-precision ones
            faster too). Only the layout changes, not the values or the
            state-dict shapes. Defaults to True.
        init_cfg (dict | list[dict], optional): E.g.
            ``dict(type='Pretrained', checkpoint=PATH)`` for a state dict with
            the keys listed in the module docstring (a checkpoint holding a
            whole model needs ``prefix='backbone.'``). Defaults to None
            (PyTorch's default init).

    Raises:
        ValueError: If a size is not positive or an index is out of range or
            not ascending.
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
        if channels_last:
            # Weights once here; in-place init and load_state_dict's copy_
            # keep the layout.
            self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Run the network and return the requested feature maps.

        Args:
            x (Tensor): ``(N, in_channels, H, W)`` images.

        Returns:
            tuple[Tensor]: One map per ``out_indices``; by default
            ``(N, 512, ceil(H/8), ceil(W/8))`` (conv4_3) and
            ``(N, fc_channels, ceil(H/16), ceil(W/16))`` (fc7); channels-last
            with ``channels_last``.
        """
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
