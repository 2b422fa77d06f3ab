"""SSD's neck: conv4_3 L2 normalisation and the extra feature layers.

Section 3.1: conv4_3 has a different feature scale from the other layers, so
it is L2-normalised per location and rescaled by a learned per-channel factor
initialised to 20 (ParseNet; Caffe's ``Normalize`` layer with
``across_spatial=false, channel_shared=false``). Section 2.1 / figure 2: the
extra layers after fc7 halve the map (3x3 stride 2) and then shrink it
without stride (3x3 pad 0), each preceded by a 1x1 bottleneck; numbers from
Caffe's ``AddExtraLayers`` (``ssd_pascal.py``, ``ssd_pascal_512.py``).

Shape shorthand: ``N`` images; ``C_k``, ``H_k x W_k`` channels and size of
level ``k``. SSD300 gives sides 38, 19, 10, 5, 3, 1; SSD512 64, 32, 16, 8, 4,
2, 1.

State-dict keys: ``l2_norm.weight`` ``(C_0,)``; extra layer ``k`` is
``extra_layers.k`` = (1x1 conv ``.0``, ReLU, kxk conv ``.2``, ReLU), e.g.
``extra_layers.0.0.weight`` is Caffe's conv6_1 and ``extra_layers.0.2.weight``
its conv6_2. With ``norm_cfg`` each conv is followed by its norm (and the
indices shift); with ``use_depthwise`` the kxk conv is a depthwise kxk and a
pointwise 1x1 (SSDLite, see ``conv_layers.py``).
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule, caffe2_xavier_init
from torch import Tensor, nn

from ssd_plugin.models.conv_layers import (conv_norm_act,
                                          separable_conv_norm_act)
from ssd_plugin.registry import MODELS

# fc7's side is ceil(image / 16) with AtrousVGG's ceil-mode pools.
_VGG_FC7_STRIDE = 16


def conv_output_size(size: int, kernel_size: int, stride: int,
                     padding: int) -> int:
    """Side of a convolution's output: ``floor((s + 2p - k) / stride) + 1``.

    Args:
        size (int): Input side.
        kernel_size (int): Kernel side.
        stride (int): Stride.
        padding (int): Zero padding on each side.

    Returns:
        int: Output side; below 1 when the input is too small.
    """
    return (size + 2 * padding - kernel_size) // stride + 1


def extra_map_sizes(size: int, kernel_sizes: Sequence[int],
                    strides: Sequence[int],
                    paddings: Sequence[int]) -> List[int]:
    """Sides of the extra layers' maps for the side of the last input map.

    Args:
        size (int): Side (height or width) of the neck's last input (fc7).
        kernel_sizes, strides, paddings (Sequence[int]): Of each extra
            layer's second conv (its 1x1 bottleneck keeps the size).

    Returns:
        list[int]: One side per extra layer; the first non-positive entry
        means the input was too small (later entries are meaningless).
    """
    sizes = []
    for kernel, stride, pad in zip(kernel_sizes, strides, paddings):
        size = conv_output_size(size, kernel, stride, pad)
        sizes.append(size)
    return sizes


def min_input_size(kernel_sizes: Sequence[int], strides: Sequence[int],
                   paddings: Sequence[int]) -> int:
    """Smallest last-input side for which every extra map is at least 1.

    Inverts :func:`conv_output_size` from the last layer back: an output of
    ``o`` needs an input of at least ``(o - 1) * stride + k - 2p`` (and 1).

    Args:
        kernel_sizes, strides, paddings (Sequence[int]): As for
            :func:`extra_map_sizes`.

    Returns:
        int: The smallest working side.
    """
    size = 1
    for kernel, stride, pad in reversed(
            list(zip(kernel_sizes, strides, paddings))):
        size = max((size - 1) * stride + kernel - 2 * pad, 1)
    return size


class L2Norm(nn.Module):
    """Per-location L2 normalisation with a learned per-channel scale.

    Args:
        channels (int): Channels of the input.
        scale (float): Initial scale of every channel. Defaults to 20
            (section 3.1).
        eps (float): Added to the norm to avoid dividing by zero. Defaults to
            1e-10 (Caffe's ``Normalize``).
    """

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

    Each extra layer is ``1x1 conv (bottleneck) -> ReLU -> kxk conv (stride,
    padding) -> ReLU``, with optional norms after the convs and the kxk conv
    optionally depthwise separable (SSDLite). The defaults are SSD300's
    (section 2.1, Caffe's conv6_1 ... conv9_2); SSD512 is
    ``out_channels=(512, 1024, 512, 256, 256, 256, 256)``,
    ``bottleneck_channels=(256, 128, 128, 128, 128)``,
    ``kernel_sizes=(3, 3, 3, 3, 4)``, ``strides=(2, 2, 2, 2, 1)``,
    ``paddings=(1, 1, 1, 1, 1)``.

    Args:
        in_channels (Sequence[int]): Channels of the backbone's maps (conv4_3,
            fc7). Defaults to ``(512, 1024)``.
        out_channels (Sequence[int]): Channels of every output: the inputs'
            followed by one per extra layer. Defaults to ``(512, 1024, 512,
            256, 256, 256)``.
        bottleneck_channels (Sequence[int]): 1x1 conv channels per extra
            layer. Defaults to ``(256, 128, 128, 128)``.
        kernel_sizes (Sequence[int]): Second conv's kernel per extra layer.
            Defaults to ``(3, 3, 3, 3)``.
        strides (Sequence[int]): Second conv's stride. Defaults to
            ``(2, 2, 1, 1)``.
        paddings (Sequence[int]): Second conv's padding. Defaults to
            ``(1, 1, 0, 0)``.
        l2_norm_scale (float, optional): Initial L2Norm scale; None disables
            the normalisation. Defaults to 20 (section 3.1).
        use_depthwise (bool): Make each kxk conv a depthwise kxk conv and a
            pointwise 1x1 conv (SSDLite). Defaults to False.
        norm_cfg (dict, optional): mmcv norm after every extra conv, e.g.
            ``dict(type='BN')`` (NVIDIA's ResNet-50 SSD); such convs have no
            bias. Defaults to None (Caffe: no norm).
        act_cfg (dict): mmcv activation after every extra conv. Defaults to
            ``dict(type='ReLU', inplace=True)``; SSDLite uses ``ReLU6``.
        channels_last (bool): Keep the conv weights in the channels-last
            memory format, as ``AtrousVGG`` does with its input and weights
            (faster MKL-DNN convs; same values and state-dict shapes).
            Defaults to True.
        init_cfg (dict | list[dict], optional): Applied after
            :meth:`init_weights`' Caffe init, e.g. a ``Pretrained`` dict.

    Raises:
        ValueError: On lists of the wrong length or with non-positive values,
            or output channels of the inputs that differ from
            ``in_channels``.
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
        if channels_last:
            self.to(memory_format=torch.channels_last)

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
                     use_depthwise: bool = False,
                     norm_cfg: Optional[dict] = None,
                     act_cfg: Optional[dict] = dict(type='ReLU', inplace=True)
                     ) -> nn.Sequential:
        """Caffe's convN_1 (1x1) and convN_2, each with (norm and) act.

        Without a norm: ``[conv 1x1, act, conv kxk, act]`` (Caffe's layout).
        """
        second = separable_conv_norm_act if use_depthwise else conv_norm_act
        return nn.Sequential(
            *conv_norm_act(in_channels, mid_channels, 1, norm_cfg=norm_cfg,
                           act_cfg=act_cfg),
            *second(mid_channels, out_channels, kernel_size, stride, padding,
                    norm_cfg=norm_cfg, act_cfg=act_cfg))

    def output_sizes(self, input_hw: Tuple[int, int]) -> List[List[int]]:
        """Sides of the extra maps for the last input's ``(H, W)``.

        Args:
            input_hw (tuple[int, int]): Size of the neck's last input (fc7).

        Returns:
            list[list[int]]: ``[heights, widths]`` of the extra maps.
        """
        return [extra_map_sizes(side, self.kernel_sizes, self.strides,
                                self.paddings) for side in input_hw]

    def min_input_size(self) -> int:
        """int: Smallest side of the last input that the extra layers take."""
        return min_input_size(self.kernel_sizes, self.strides, self.paddings)

    def _check_input_size(self, height: int, width: int) -> None:
        """ValueError naming the sizes if a map would shrink below 1x1."""
        if min(min(sides, default=1) for sides in self.output_sizes(
                (height, width))) >= 1:
            return
        need = self.min_input_size()
        image = (need - 1) * _VGG_FC7_STRIDE + 1
        raise ValueError(
            f'SSDNeck got a last input map of {height}x{width} (HxW); its '
            f'extra layers (kernels {self.kernel_sizes}, strides '
            f'{self.strides}, paddings {self.paddings}) need at least '
            f'{need}x{need}, else a map would shrink below 1x1. With '
            f'AtrousVGG (fc7 = ceil(image / {_VGG_FC7_STRIDE})) that is an '
            f'input image of at least {image}x{image} pixels (with another '
            f'backbone: an image whose last backbone map is at least '
            f'{need}x{need}): resize the images to a larger size')

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Normalise the first map and grow the pyramid from the last.

        Args:
            inputs (Sequence[Tensor]): The backbone's maps, ``(N, C_k, H_k,
                W_k)`` with ``C_k = in_channels[k]``.

        Returns:
            tuple[Tensor]: ``len(out_channels)`` maps ``(N, out_channels[k],
            H_k, W_k)``.
        """
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
        """Caffe's init: extra convs "xavier" (uniform, fan-in), zero bias.

        Caffe's ``XavierFiller`` draws from ``U(-sqrt(3 / fan_in),
        sqrt(3 / fan_in))``, which is mmengine's ``caffe2_xavier_init``. The
        L2Norm scale is reset to its initial value. An ``init_cfg`` is
        applied afterwards (by ``BaseModule.init_weights``).
        """
        for module in self.extra_layers.modules():
            if isinstance(module, nn.Conv2d):
                caffe2_xavier_init(module, bias=0)
        if self.l2_norm is not None:
            nn.init.constant_(self.l2_norm.weight, self.l2_norm.scale)
        super().init_weights()
