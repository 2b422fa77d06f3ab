"""Plain and depthwise-separable conv blocks for SSD's neck and head.

SSDLite (MobileNetV2, Sandler et al., CVPR 2018, section 6.2) replaces
every 3x3 conv of SSD's extra layers and predictors with a depthwise 3x3
conv followed by a pointwise 1x1 conv; ResNet-50 SSD (NVIDIA's SSD300 v1.1)
adds BatchNorm to the extra layers. Both are options of ``SSDNeck`` and
``SSDHead`` built from these helpers rather than new classes.

The blocks are flat lists of ``nn.Conv2d``, optional norm and optional
activation modules, not mmcv's ``ConvModule``: put in an ``nn.Sequential``,
the plain variant keeps the state-dict keys of the Caffe-style neck and head
(``extra_layers.k.0.weight``, ``extra_layers.k.2.weight``), which the weight
converters rely on. The norm and activation layers are mmcv's builders.

Shape shorthand: ``N`` images, ``C_in`` / ``C_out`` channels, ``H x W`` the
map.
"""
from typing import List, Optional

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
    """A conv, then an optional norm and an optional activation.

    The conv has a bias only without a norm (the norm's shift replaces it,
    as in mmcv's ``ConvModule(bias='auto')``).

    Args:
        in_channels (int): ``C_in``.
        out_channels (int): ``C_out``.
        kernel_size (int): Square kernel side.
        stride (int): Stride. Defaults to 1.
        padding (int): Zero padding on each side. Defaults to 0.
        groups (int): Conv groups; ``C_in`` makes it depthwise. Defaults to 1.
        norm_cfg (dict, optional): mmcv norm config, e.g. ``dict(type='BN')``.
            None: no norm. Defaults to None.
        act_cfg (dict, optional): mmcv activation config, e.g.
            ``dict(type='ReLU6', inplace=True)``. None: no activation.
            Defaults to None.

    Returns:
        list[nn.Module]: 1 to 3 modules, ``(N, C_in, H, W)`` to ``(N, C_out,
        H', W')``.
    """
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
    """Depthwise ``k x k`` conv then pointwise 1x1, each with norm and act.

    MobileNet's depthwise-separable convolution (mmcv's
    ``DepthwiseSeparableConvModule`` as a flat list): about ``k^2 + C_out``
    instead of ``k^2 * C_out`` multiply-adds per input channel and pixel.

    Args:
        in_channels (int): ``C_in``, also the depthwise conv's groups.
        out_channels (int): ``C_out`` of the pointwise conv.
        kernel_size, stride, padding (int): Of the depthwise conv.
        norm_cfg (dict, optional): Norm after each conv. Defaults to None.
        act_cfg (dict, optional): Activation after each conv. Defaults to
            None.

    Returns:
        list[nn.Module]: ``[depthwise, (norm), (act), pointwise, (norm),
        (act)]``.
    """
    return (conv_norm_act(in_channels, in_channels, kernel_size, stride,
                          padding, groups=in_channels, norm_cfg=norm_cfg,
                          act_cfg=act_cfg) +
            conv_norm_act(in_channels, out_channels, 1, norm_cfg=norm_cfg,
                          act_cfg=act_cfg))
