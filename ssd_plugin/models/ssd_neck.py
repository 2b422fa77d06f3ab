"""SSD's neck: conv4_3 L2 normalisation (section 3.1, ParseNet) and the extra
layers (section 2.1, figure 2; Caffe's ``AddExtraLayers``). Shapes: ``N``
images; ``C_k``, ``H_k x W_k`` level ``k``. Keys: ``l2_norm.weight``,
``extra_layers.k.0`` (1x1) and ``.2`` (kxk), Caffe's convK_1 and convK_2.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule, caffe2_xavier_init
from torch import Tensor, nn

from ssd_plugin.models.conv_layers import (conv_norm_act,
                                          separable_conv_norm_act,
                                          use_channels_last)
from ssd_plugin.registry import MODELS

# AtrousVGG's fc7 is ceil(image / 16): the example in the size error.
_VGG_FC7_STRIDE = 16


def extra_map_sizes(size: int, kernel_sizes: Sequence[int],
                    strides: Sequence[int],
                    paddings: Sequence[int]) -> List[int]:
    """Sides ``floor((s + 2p - k) / stride) + 1`` of the extra maps for the
    last input's side ``size``, one per kxk layer; from the first
    non-positive entry on, the input was too small."""
    sizes = []
    for kernel, stride, pad in zip(kernel_sizes, strides, paddings):
        size = (size + 2 * pad - kernel) // stride + 1
        sizes.append(size)
    return sizes


def min_input_size(kernel_sizes: Sequence[int], strides: Sequence[int],
                   paddings: Sequence[int]) -> int:
    """Smallest last-input side giving every extra map >= 1: from the last
    layer back, output ``o`` needs ``max((o - 1) * stride + k - 2p, 1)``."""
    size = 1
    for kernel, stride, pad in reversed(
            list(zip(kernel_sizes, strides, paddings))):
        size = max((size - 1) * stride + kernel - 2 * pad, 1)
    return size


class L2Norm(nn.Module):
    """Per-location L2 norm over channels times a learned per-channel scale,
    ``(N, C, H, W)`` to the same (Caffe's ``Normalize``, section 3.1: initial
    scale 20; ``eps`` 1e-10 as Caffe)."""

    def __init__(self, channels: int, scale: float = 20.0,
                 eps: float = 1e-10) -> None:
        super().__init__()
        self.scale = float(scale)
        self.eps = eps
        self.weight = nn.Parameter(torch.full((channels, ), self.scale))

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` -> ``(N, C, H, W)``, norm over ``C`` = weight."""
        # Norm in float32 at least: squares of half values overflow.
        x_float = x.float()
        norm = x_float.pow(2).sum(1, keepdim=True).sqrt() + self.eps
        out = self.weight.float()[None, :, None, None] * x_float / norm
        return out.type_as(x)


def _check_positive_lists(lists: dict, length: int) -> None:
    """ValueError unless each list has ``length`` positive ints (pads >= 0)."""
    for name, values in lists.items():
        if len(values) != length:
            raise ValueError(
                f'{name}={tuple(values)} has {len(values)} entries; the '
                f'neck has {length} extra layers (len(out_channels) - '
                'len(in_channels)), give one per layer')
        low = 0 if name == 'paddings' else 1
        if any(not isinstance(v, int) or v < low for v in values):
            raise ValueError(
                f'{name}={tuple(values)} must hold ints >= {low}')


@MODELS.register_module()
class SSDNeck(BaseModule):
    """L2Norm on the first input, then SSD's extra layers after the last.

    Defaults are SSD300's (conv6 ... conv9), SSD512's in its config.

    Args:
        in_channels (Sequence[int]): Backbone maps' channels (conv4_3, fc7).
        out_channels (Sequence[int]): The inputs', then one per extra layer.
        bottleneck_channels (Sequence[int]): 1x1 conv channels per layer.
        kernel_sizes, strides, paddings (Sequence[int]): Of each kxk conv.
        l2_norm_scale (float, optional): Initial scale (section 3.1); None: no
            L2Norm.
        use_depthwise (bool): Separable kxk convs (SSDLite).
        norm_cfg (dict, optional): Norm after every extra conv; None: Caffe.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (512, 1024),
                 out_channels: Sequence[int] = (512, 1024, 512, 256, 256,
                                                256),
                 bottleneck_channels: Sequence[int] = (256, 128, 128, 128),
                 kernel_sizes: Sequence[int] = (3, 3, 3, 3),
                 strides: Sequence[int] = (2, 2, 1, 1),
                 paddings: Sequence[int] = (1, 1, 0, 0),
                 l2_norm_scale: Optional[float] = 20.0,
                 use_depthwise: bool = False,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: dict = dict(type='ReLU', inplace=True),
                 channels_last: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self._check_channels(in_channels, out_channels)
        num_extra = len(out_channels) - len(in_channels)
        _check_positive_lists(
            dict(bottleneck_channels=bottleneck_channels,
                 kernel_sizes=kernel_sizes, strides=strides,
                 paddings=paddings), num_extra)
        self.in_channels = tuple(in_channels)
        self.out_channels = tuple(out_channels)
        self.kernel_sizes = tuple(kernel_sizes)
        self.strides = tuple(strides)
        self.paddings = tuple(paddings)
        self.l2_norm = None if l2_norm_scale is None else L2Norm(
            in_channels[0], l2_norm_scale)
        chans = self.out_channels[len(in_channels) - 1:]
        self.extra_layers = nn.ModuleList(
            self._extra_layer(c_in, mid, c_out, k, s, p, use_depthwise,
                              norm_cfg, act_cfg)
            for c_in, mid, c_out, k, s, p in zip(
                chans[:-1], bottleneck_channels, chans[1:], kernel_sizes,
                strides, paddings))
        use_channels_last(self, channels_last)

    @staticmethod
    def _check_channels(in_channels: Sequence[int],
                        out_channels: Sequence[int]) -> None:
        """Raise ValueError unless the channel lists fit together."""
        if not in_channels or any(
                not isinstance(c, int) or c < 1
                for c in tuple(in_channels) + tuple(out_channels)):
            raise ValueError(
                f'in_channels={tuple(in_channels)} and out_channels='
                f'{tuple(out_channels)} must be non-empty lists of positive '
                'ints')
        if tuple(out_channels[:len(in_channels)]) != tuple(in_channels):
            raise ValueError(
                f'out_channels={tuple(out_channels)} must start with '
                f'in_channels={tuple(in_channels)}: the inputs are passed '
                'through, then one entry per extra layer')

    @staticmethod
    def _extra_layer(in_channels: int, mid_channels: int, out_channels: int,
                     kernel_size: int, stride: int, padding: int,
                     use_depthwise: bool, norm_cfg: Optional[dict],
                     act_cfg: Optional[dict]) -> nn.Sequential:
        """Caffe's convK_1 (1x1) and convK_2 (kxk), each (normed and) act."""
        second = separable_conv_norm_act if use_depthwise else conv_norm_act
        return nn.Sequential(
            *conv_norm_act(in_channels, mid_channels, 1, norm_cfg=norm_cfg,
                           act_cfg=act_cfg),
            *second(mid_channels, out_channels, kernel_size, stride, padding,
                    norm_cfg=norm_cfg, act_cfg=act_cfg))

    def output_sizes(self, input_hw: Tuple[int, int]) -> List[List[int]]:
        """``[heights, widths]`` of the extra maps for last input ``(H, W)``."""
        return [extra_map_sizes(side, self.kernel_sizes, self.strides,
                                self.paddings) for side in input_hw]

    def min_input_size(self) -> int:
        """int: Smallest side of the last input that the extra layers take."""
        return min_input_size(self.kernel_sizes, self.strides, self.paddings)

    def _check_input_size(self, height: int, width: int) -> None:
        """ValueError if a map would shrink below 1x1; the factor ``need /
        side`` holds for any backbone, as every map scales with the image."""
        if min(min(sides, default=1) for sides in self.output_sizes(
                (height, width))) >= 1:
            return
        need = self.min_input_size()
        factor = need / max(min(height, width), 1)
        image = (need - 1) * _VGG_FC7_STRIDE + 1
        raise ValueError(
            f'SSDNeck got a last input map of {height}x{width} (HxW); its '
            f'extra layers (kernels {self.kernel_sizes}, strides '
            f'{self.strides}, paddings {self.paddings}) need at least '
            f'{need}x{need}, else a map would shrink below 1x1. Resize the '
            f'images to about {factor:.3g} times their side or more (every '
            f'backbone map scales with the image); with AtrousVGG (fc7 = '
            f'ceil(image / {_VGG_FC7_STRIDE})) that is an input image of at '
            f'least {image}x{image} pixels')

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """``len(in_channels)`` maps ``(N, C_k, H_k, W_k)`` to
        ``len(out_channels)`` maps ``(N, out_channels[k], H_k, W_k)``: the
        first normalised, the extra layers grown from the last."""
        if len(inputs) != len(self.in_channels):
            raise ValueError(
                f'SSDNeck got {len(inputs)} maps but in_channels='
                f'{self.in_channels}; check the backbone out_indices')
        self._check_input_size(*inputs[-1].shape[-2:])
        outs = list(inputs)
        if self.l2_norm is not None:
            outs[0] = self.l2_norm(outs[0])
        x = outs[-1]
        for layer in self.extra_layers:
            x = layer(x)
            outs.append(x)
        return tuple(outs)

    def init_weights(self) -> None:
        """Caffe's init: extra convs "xavier" (``caffe2_xavier_init``), zero
        bias; L2Norm back to its scale; then ``init_cfg``."""
        for module in self.extra_layers.modules():
            if isinstance(module, nn.Conv2d):
                caffe2_xavier_init(module, bias=0)
        if self.l2_norm is not None:
            nn.init.constant_(self.l2_norm.weight, self.l2_norm.scale)
        super().init_weights()
