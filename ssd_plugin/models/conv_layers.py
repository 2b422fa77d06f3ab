"""Conv blocks for SSD's neck and head as flat module lists (not mmcv's
``ConvModule``), so that the plain variant keeps the Caffe-style keys
(``extra_layers.k.0``, ``.2``) the converters use. Shapes: ``N`` images,
``C_in`` / ``C_out`` channels.
"""
from typing import List, Optional, TypeVar

import torch
from mmcv.cnn import build_activation_layer, build_norm_layer
from torch import nn


def conv_norm_act(in_channels: int,
                  out_channels: int,
                  kernel_size: int,
                  stride: int = 1,
                  padding: int = 0,
                  groups: int = 1,
                  norm_cfg: Optional[dict] = None,
                  act_cfg: Optional[dict] = None) -> List[nn.Module]:
    """Conv (bias only without a norm), optional mmcv norm and activation:
    ``(N, C_in, H, W)`` to ``(N, C_out, H', W')``; ``groups=in_channels``
    makes it depthwise."""
    layers: List[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                  groups=groups, bias=norm_cfg is None)
    ]
    if norm_cfg is not None:
        layers.append(build_norm_layer(norm_cfg, out_channels)[1])
    if act_cfg is not None:
        layers.append(build_activation_layer(act_cfg))
    return layers


def separable_conv_norm_act(in_channels: int,
                            out_channels: int,
                            kernel_size: int,
                            stride: int = 1,
                            padding: int = 0,
                            norm_cfg: Optional[dict] = None,
                            act_cfg: Optional[dict] = None
                            ) -> List[nn.Module]:
    """Depthwise ``kernel_size`` conv then pointwise 1x1, each with norm and
    act (MobileNet's separable conv; mmcv's ``DepthwiseSeparableConvModule``
    as a flat list)."""
    return (conv_norm_act(in_channels, in_channels, kernel_size, stride,
                          padding, groups=in_channels, norm_cfg=norm_cfg,
                          act_cfg=act_cfg) +
            conv_norm_act(in_channels, out_channels, 1, norm_cfg=norm_cfg,
                          act_cfg=act_cfg))


ModuleT = TypeVar('ModuleT', bound=nn.Module)


def use_channels_last(module: ModuleT, enabled: bool = True) -> ModuleT:
    """``module`` with its conv weights channels-last when ``enabled``: the one
    switch of ``AtrousVGG``, ``SSDNeck`` and ``SSDHead`` (faster MKL-DNN and
    cuDNN convs, same values and state-dict shapes)."""
    return module.to(memory_format=torch.channels_last) if enabled else module
