"""Backbone swaps by config inheritance: SSD300-ResNet50 and SSDLite.

References written out or taken from elsewhere, never from the code under
test: NVIDIA SSD300 v1.1's extra layers (``_build_additional_features``)
written here in plain torch; mmdet's own ``SSDNeck``/``SSDHead``/
``SSDAnchorGenerator`` with the settings of its SSDLite config; map sides
from the conv arithmetic; default-box counts summed by hand; FLOPs of a conv
as ``H_out * W_out * C_out * C_in / groups * k^2``. A "bring your own
backbone" test runs docs/train_test.md's snippet verbatim.
"""
import os
import sys
from pathlib import Path
from typing import Tuple

import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from torch import nn

from ssd_plugin.models.conv_layers import (conv_norm_act,
                                           separable_conv_norm_act)
from ssd_plugin.models.ssd_head import SSDHead
from ssd_plugin.models.ssd_neck import SSDNeck
from ssd_plugin.registry import MODELS

ROOT = Path(__file__).resolve().parents[1]
R50 = 'configs/ssd_resnet/ssd300_r50_coco.py'
LITE = 'configs/ssdlite/ssdlite_mobilenetv2_320_coco.py'
BN = dict(type='BN', eps=0.001, momentum=0.03)
RELU6 = dict(type='ReLU6', inplace=True)
# Sides worked out by hand. ResNet-50 at 300: conv1 7x7/2 -> 150, max pool
# 3x3/2 -> 75, layer2 -> 38, layer3 stride 1 -> 38; extras 3x3/2 pad 1 x3
# (19, 10, 5) then 3x3/1 pad 0 x2 (3, 1). MobileNetV2 at 320: stride 16 ->
# 20, stride 32 -> 10; extras 3x3/2 pad 1: 5, 3, 2, 1.
VARIANTS = {
    R50: dict(sides=[38, 19, 10, 5, 3, 1],
              channels=[1024, 512, 512, 256, 256, 256],
              boxes_per_cell=[4, 6, 6, 6, 4, 4]),
    LITE: dict(sides=[20, 10, 5, 3, 2, 1],
               channels=[96, 1280, 512, 256, 256, 128],
               boxes_per_cell=[6] * 6),
}
# 38^2*4 + 19^2*6 + 10^2*6 + 5^2*6 + 3^2*4 + 1*4 (SSD300's 8732) and
# 6 * (20^2 + 10^2 + 5^2 + 3^2 + 2^2 + 1).
TOTAL_BOXES = {R50: 8732, LITE: 3234}


@pytest.fixture(autouse=True)
def _scope():
    with DefaultScope.overwrite_default_scope('ssd_plugin'):
        yield


def load(config: str) -> Config:
    return Config.fromfile(str(ROOT / config))


def randomize(module: nn.Module, seed: int = 0) -> None:
    """Random weights and BN statistics, so equal outputs mean something."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            values = torch.rand(tensor.shape, generator=gen)
            if 'running_var' in name:
                tensor.copy_(values + 0.5)
            elif tensor.dim() > 1:  # conv weights: U(+-sqrt(3 / fan_in))
                scale = 2 * (3 / tensor[0].numel())**0.5
                tensor.copy_((values - 0.5) * scale)
            else:
                tensor.copy_(values - 0.5)


def copy_in_order(dst: nn.Module, src: nn.Module) -> None:
    """Copy ``src``'s state into ``dst`` entry by entry (same layout)."""
    dst_state, src_state = dst.state_dict(), src.state_dict()
    assert len(dst_state) == len(src_state)
    with torch.no_grad():
        for (k_dst, v_dst), (k_src, v_src) in zip(dst_state.items(),
                                                  src_state.items()):
            assert v_dst.shape == v_src.shape, (k_dst, k_src)
            v_dst.copy_(v_src)


# --- conv blocks ------------------------------------------------------------

def test_conv_norm_act_bias_only_without_norm():
    plain = nn.Sequential(*conv_norm_act(4, 6, 3, padding=1,
                                         act_cfg=dict(type='ReLU')))
    normed = nn.Sequential(*conv_norm_act(4, 6, 3, padding=1, norm_cfg=BN,
                                          act_cfg=RELU6))
    assert [type(m) for m in plain] == [nn.Conv2d, nn.ReLU]
    assert [type(m) for m in normed] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU6]
    # 4*6*9 weights (+ 6 biases without norm; + 6 scales + 6 shifts with BN)
    assert sum(p.numel() for p in plain.parameters()) == 4 * 6 * 9 + 6
    assert sum(p.numel() for p in normed.parameters()) == 4 * 6 * 9 + 12
    assert normed[1].eps == 0.001 and normed[1].momentum == 0.03


def test_separable_conv_matches_a_per_channel_reference():
    torch.manual_seed(0)
    block = nn.Sequential(*separable_conv_norm_act(3, 5, 3, stride=2,
                                                   padding=1))
    depthwise, pointwise = block
    assert depthwise.groups == 3 and depthwise.weight.shape == (3, 1, 3, 3)
    x = torch.randn(2, 3, 7, 7)
    # Reference: each channel convolved with its own 3x3 kernel, then a 1x1
    # mix of the channels.
    per_channel = torch.cat([
        F.conv2d(x[:, c:c + 1], depthwise.weight[c:c + 1],
                 depthwise.bias[c:c + 1], stride=2, padding=1)
        for c in range(3)], dim=1)
    expected = torch.einsum('oc,nchw->nohw', pointwise.weight[:, :, 0, 0],
                            per_channel) + pointwise.bias[None, :, None, None]
    out = block(x)
    assert out.shape == (2, 5, 4, 4)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_separable_conv_on_a_one_pixel_map():
    block = nn.Sequential(*separable_conv_norm_act(
        4, 2, 3, stride=2, padding=1, norm_cfg=BN, act_cfg=RELU6)).eval()
    assert block(torch.randn(1, 4, 1, 1)).shape == (1, 2, 1, 1)


# --- SSDNeck options ---------------------------------------------------------

def test_neck_default_keys_unchanged():
    # Caffe's convN_1 at .0 and convN_2 at .2 (the converters rely on it).
    expected = {'l2_norm.weight'} | {
        f'extra_layers.{k}.{i}.{p}' for k in range(4) for i in (0, 2)
        for p in ('weight', 'bias')}
    assert set(SSDNeck().state_dict()) == expected


def test_neck_with_norm_has_no_conv_bias():
    neck = SSDNeck(in_channels=(8, ), out_channels=(8, 4),
                   bottleneck_channels=(2, ), kernel_sizes=(3, ),
                   strides=(2, ), paddings=(1, ), norm_cfg=dict(type='BN'))
    layer = neck.extra_layers[0]
    assert [type(m) for m in layer] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] * 2
    assert layer[0].bias is None and layer[3].bias is None


def nvidia_extras() -> nn.ModuleList:
    """NVIDIA SSD300 v1.1 ``SSD300._build_additional_features`` (ResNet-50).

    Written from DeepLearningExamples, PyTorch/Detection/SSD/ssd/model.py:
    1x1 then 3x3 convs without bias, each with BatchNorm and ReLU; the
    first three 3x3 at stride 2 pad 1, the last two stride 1 pad 0.
    """
    chans = [1024, 512, 512, 256, 256, 256]
    mids = [256, 256, 128, 128, 128]
    blocks = []
    for i, (c_in, c_out, mid) in enumerate(zip(chans[:-1], chans[1:], mids)):
        stride, pad = (2, 1) if i < 3 else (1, 0)
        blocks.append(nn.Sequential(
            nn.Conv2d(c_in, mid, 1, bias=False), nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, c_out, 3, padding=pad, stride=stride, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)))
    return nn.ModuleList(blocks)


def test_r50_neck_is_nvidias_extra_layers():
    neck = MODELS.build(load(R50).model.neck)
    assert neck.l2_norm is None  # NVIDIA has no L2Norm
    reference = nvidia_extras()
    randomize(reference)
    copy_in_order(neck.extra_layers, reference)
    assert neck.output_sizes((38, 38)) == [[19, 10, 5, 3, 1]] * 2
    gen = torch.Generator().manual_seed(1)
    # 33 is the smallest side the extras take (1 -> 3 -> 5 -> 9 -> 17 -> 33).
    x = torch.randn(2, 1024, 33, 33, generator=gen)
    for train in (False, True):
        neck.train(train)
        reference.train(train)
        with torch.no_grad():
            outs = neck([x])
            expected = [x]
            for block in reference:
                expected.append(block(expected[-1]))
        assert len(outs) == 6
        for out, exp in zip(outs, expected):
            # Sums over up to 1024 * 9 terms: float32 order differences
            # (channels-last vs contiguous kernels), which train-mode BN on
            # the last maps (1x1 and 3x3: 2 and 18 values per channel)
            # divides by a small deviation.
            torch.testing.assert_close(out, exp, rtol=1e-4, atol=5e-4)


def lite_mmdet_neck() -> nn.Module:
    """mmdet's SSDNeck with its SSDLite config's settings."""
    from mmdet.models.necks import SSDNeck as MMDetSSDNeck
    return MMDetSSDNeck(
        in_channels=(96, 1280), out_channels=(96, 1280, 512, 256, 256, 128),
        level_strides=(2, 2, 2, 2), level_paddings=(1, 1, 1, 1),
        l2_norm_scale=None, use_depthwise=True, norm_cfg=BN,
        act_cfg=dict(type='ReLU6'))


def test_lite_neck_equals_mmdets_ssdlite_neck():
    ours = MODELS.build(load(LITE).model.neck)
    theirs = lite_mmdet_neck()
    randomize(theirs)
    copy_in_order(ours, theirs)
    gen = torch.Generator().manual_seed(2)
    x = [torch.randn(2, 96, 20, 20, generator=gen),
         torch.randn(2, 1280, 10, 10, generator=gen)]
    for train in (False, True):
        ours.train(train)
        theirs.train(train)
        with torch.no_grad():
            outs, expected = ours(x), theirs(x)
        assert [o.shape[-1] for o in outs] == VARIANTS[LITE]['sides']
        for out, exp in zip(outs, expected):
            torch.testing.assert_close(out, exp, rtol=1e-5, atol=1e-5)


def test_depthwise_neck_smallest_input_works():
    neck = SSDNeck(in_channels=(8, ), out_channels=(8, 4, 4),
                   bottleneck_channels=(2, 2), kernel_sizes=(3, 3),
                   strides=(1, 1), paddings=(0, 0), use_depthwise=True,
                   norm_cfg=BN, act_cfg=RELU6).eval()
    side = neck.min_input_size()
    assert side == 5  # 1 <- 3 <- 5 for two 3x3/1 pad 0 convs
    outs = neck([torch.randn(1, 8, side, side)])
    assert [o.shape[-1] for o in outs] == [5, 3, 1]
    with pytest.raises(ValueError, match='4x4'):
        neck([torch.randn(1, 8, 4, 4)])


# --- SSDHead option and the SSDLite default boxes ----------------------------

def lite_mmdet_head() -> nn.Module:
    """mmdet's SSDHead with its SSDLite config's settings."""
    from mmdet.models.dense_heads import SSDHead as MMDetSSDHead
    return MMDetSSDHead(
        num_classes=80, in_channels=(96, 1280, 512, 256, 256, 128),
        use_depthwise=True, norm_cfg=BN, act_cfg=dict(type='ReLU6'),
        anchor_generator=dict(
            type='SSDAnchorGenerator', scale_major=False, input_size=320,
            strides=[16, 32, 64, 107, 160, 320], ratios=[[2, 3]] * 6,
            min_sizes=[48, 100, 150, 202, 253, 304],
            max_sizes=[100, 150, 202, 253, 304, 320]))


def test_lite_head_and_boxes_equal_mmdets_ssdlite():
    cfg = load(LITE).model.bbox_head
    ours = MODELS.build(cfg)
    theirs = lite_mmdet_head()
    randomize(theirs)
    copy_in_order(ours, theirs)
    sides = VARIANTS[LITE]['sides']
    sizes = [(s, s) for s in sides]
    gen = torch.Generator().manual_seed(3)
    feats = [torch.randn(2, c, s, s, generator=gen)
             for c, s in zip(VARIANTS[LITE]['channels'], sides)]
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        for mine, their in zip(ours(feats), theirs(feats)):
            for m, t in zip(mine, their):
                torch.testing.assert_close(m, t, rtol=1e-5, atol=1e-5)
    boxes = torch.cat(ours.prior_generator.grid_priors(sizes, device='cpu'))
    expected = torch.cat(theirs.prior_generator.grid_priors(sizes,
                                                            device='cpu'))
    assert len(boxes) == TOTAL_BOXES[LITE]
    torch.testing.assert_close(boxes, expected)


def test_head_depthwise_parameter_count_by_hand():
    head = SSDHead(num_classes=3, in_channels=(8, 16), use_depthwise=True,
                   norm_cfg=BN, prior_generator=dict(
                       type='DefaultBoxGenerator', input_size=64,
                       ratios=((2, ), (2, 3)), min_sizes=(12, 30),
                       max_sizes=(30, 60), strides=(8, 16)))
    # Per level and branch: depthwise 9*C, BN 2*C, 1x1 C*out + out.
    expected = 0
    for c, a in [(8, 4), (16, 6)]:
        for out in (a * 4, a * 4):  # (3 + 1) classes and 4 offsets
            expected += 9 * c + 2 * c + c * out + out
    assert sum(p.numel() for p in head.parameters()) == expected
    feats = [torch.randn(1, 8, 8, 8), torch.randn(1, 16, 4, 4)]
    cls, reg = head.eval()(feats)
    assert [c.shape[1:] for c in cls] == [(16, 8, 8), (24, 4, 4)]
    assert [r.shape[1:] for r in reg] == [(16, 8, 8), (24, 4, 4)]


def test_head_init_weights_reaches_depthwise_convs():
    head = SSDHead(num_classes=3, in_channels=(8, ), use_depthwise=True,
                   prior_generator=dict(
                       type='DefaultBoxGenerator', input_size=64,
                       ratios=((2, ), ), min_sizes=(12, ), max_sizes=(30, ),
                       strides=(8, )))
    convs = [m for m in head.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:
        nn.init.constant_(conv.weight, 7.)
    head.init_weights()
    for conv in convs:
        # Caffe's xavier: U(-sqrt(3 / fan_in), sqrt(3 / fan_in)).
        fan_in = conv.weight[0].numel()
        assert conv.weight.abs().max() <= (3 / fan_in) ** 0.5


# --- the configs -------------------------------------------------------------

@pytest.mark.parametrize('config', list(VARIANTS))
def test_leaf_config_overrides_only_what_differs(config):
    text = (ROOT / config).read_text()
    assert "_base_ = ['../ssd/ssd300_coco.py']" in text
    assert '_delete_' not in text and '{{' not in text
    cfg = load(config)
    assert cfg.model.bbox_head.in_channels == cfg.model.neck.out_channels
    assert cfg.model.data_preprocessor.std == [58.395, 57.12, 57.375]


@pytest.mark.parametrize('config', list(VARIANTS))
def test_variant_maps_and_default_box_count(config):
    cfg = load(config)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    size = cfg.input_size
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(1, 3, size, size))
    expected = VARIANTS[config]
    assert [f.shape[-1] for f in feats] == expected['sides']
    assert [f.shape[1] for f in feats] == expected['channels']
    head = model.bbox_head
    assert head.num_base_priors == expected['boxes_per_cell']
    boxes = head.prior_generator.grid_priors(
        [f.shape[-2:] for f in feats], device='cpu')
    assert sum(len(b) for b in boxes) == TOTAL_BOXES[config]


def batch(size: int) -> dict:
    """Two images: one with two objects, one empty (the degenerate case)."""
    gen = torch.Generator().manual_seed(0)
    samples = []
    for boxes, labels in [([[30., 40., 200., 250.], [150., 20., 290., 120.]],
                           [1, 5]), ([], [])]:
        sample = DetDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size),
            scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(boxes).reshape(-1, 4),
            labels=torch.tensor(labels, dtype=torch.long))
        samples.append(sample)
    images = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8,
                            generator=gen) for _ in samples]
    return dict(inputs=images, data_samples=samples)


@pytest.mark.slow
@pytest.mark.parametrize('config', list(VARIANTS))
def test_variant_train_step_and_inference(config):
    """One SGD step of the config's optimiser, then inference_detector."""
    import numpy as np
    from mmdet.apis import inference_detector
    from mmengine.optim import build_optim_wrapper
    cfg = load(config)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    # Batch 2: BatchNorm on the 1x1 maps needs more than one value.
    data = model.data_preprocessor(batch(cfg.input_size), True)
    loss, log_vars = model.parse_losses(model(**data, mode='loss'))
    assert set(log_vars) == {'loss', 'loss_cls', 'loss_bbox'}
    assert all(torch.isfinite(v) for v in log_vars.values())
    wrapper.backward(loss)
    for part in ('backbone', 'neck', 'bbox_head'):
        grads = [p.grad for n, p in model.named_parameters()
                 if n.startswith(part) and p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), part
    wrapper.step()
    wrapper.zero_grad()
    model.cfg = cfg  # what init_detector sets for inference_detector
    model.eval()
    image = np.random.default_rng(0).integers(0, 256, (240, 320, 3),
                                              dtype=np.uint8)
    dets = inference_detector(model, image).pred_instances
    assert len(dets) <= cfg.model.test_cfg.max_per_img
    assert dets.bboxes.shape == (len(dets), 4)
    if len(dets):
        assert dets.bboxes[:, 0::2].max() <= 320 + 1e-3
        assert dets.bboxes[:, 1::2].max() <= 240 + 1e-3


# --- bring your own backbone (docs/train_test.md's snippet, verbatim) -------

SNIPPET_BACKBONE = '''\
from typing import Sequence, Tuple

from mmengine.model import BaseModule
from torch import Tensor, nn

from ssd_plugin.registry import MODELS


@MODELS.register_module()
class TinyNet(BaseModule):
    """Two maps for SSD: stride 8 (38x38 at 300) and stride 16 (19x19)."""

    def __init__(self, channels: Sequence[int] = (32, 64),
                 init_cfg: dict = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels[0], 3, stride=8, padding=1), nn.ReLU())
        self.down = nn.Sequential(
            nn.Conv2d(channels[0], channels[1], 3, stride=2, padding=1),
            nn.ReLU())

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        c1 = self.stem(x)
        return c1, self.down(c1)
'''
SNIPPET_CONFIG = '''\
_base_ = ['../configs/ssd/ssd300_coco.py']
custom_imports = dict(imports=['ssd_plugin', 'tinynet'],
                      allow_failed_imports=False)

channels = (32, 64, 512, 256, 256, 256)  # maps 38, 19, 10, 5, 3, 1
model = dict(
    backbone=dict(type='TinyNet', channels=channels[:2]),
    neck=dict(in_channels=channels[:2], out_channels=channels),
    bbox_head=dict(in_channels=channels))
'''


@pytest.fixture
def my_project(tmp_path, monkeypatch):
    """The documented layout: ``my_project/`` beside the checkout's configs.

    ``PYTHONPATH=my_project`` is ``sys.path``; the registered name and the
    module are removed afterwards.
    """
    os.symlink(ROOT / 'configs', tmp_path / 'configs')
    project = tmp_path / 'my_project'
    project.mkdir()
    (project / 'tinynet.py').write_text(SNIPPET_BACKBONE)
    (project / 'ssd300_tinynet_coco.py').write_text(SNIPPET_CONFIG)
    monkeypatch.syspath_prepend(str(project))
    yield project
    MODELS._module_dict.pop('TinyNet', None)
    sys.modules.pop('tinynet', None)


def test_bring_your_own_backbone(my_project):
    from mmdet.apis import inference_detector, init_detector
    from mmengine.optim import build_optim_wrapper
    config = str(my_project / 'ssd300_tinynet_coco.py')
    model = init_detector(config, checkpoint=None, device='cpu')
    assert type(model.backbone).__name__ == 'TinyNet'
    assert model.neck.in_channels == (32, 64)
    model.train()
    wrapper = build_optim_wrapper(model, model.cfg.optim_wrapper)
    losses = model.train_step(batch(300), wrapper)
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    image = torch.randint(0, 256, (300, 400, 3), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    dets = inference_detector(model, image.numpy()).pred_instances
    assert len(dets) <= 200
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(1, 3, 300, 300))
    assert [f.shape[-1] for f in feats] == [38, 19, 10, 5, 3, 1]


# --- parameters and FLOPs, as `mim run mmdet get_flops CONFIG` counts them ---

def complexity(model: nn.Module, input_hw: Tuple[int, int]) -> Tuple[int, int]:
    """Parameters and FLOPs (multiply-adds) of a zero image's forward, by
    mmengine's fvcore counter, as mmdet's ``get_flops`` tool runs it."""
    with torch.no_grad():
        info = get_model_complexity_info(
            model.eval(), inputs=(torch.zeros(1, 3, *input_hw), ),
            show_table=False, show_arch=False)
    return info['params'], info['flops']


def test_complexity_counts_multiply_adds_by_hand():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                          *separable_conv_norm_act(8, 4, 3, stride=2,
                                                   padding=1))
    params, flops = complexity(model, (10, 12))
    # conv 3->8 3x3 on 10x12; depthwise 8 3x3/2 -> 5x6; pointwise 8->4.
    assert flops == 10 * 12 * 8 * 3 * 9 + 5 * 6 * 8 * 9 + 5 * 6 * 4 * 8
    assert params == (3 * 8 * 9 + 8) + (8 * 9 + 8) + (8 * 4 + 4)


def _conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out


# SSD300 COCO by hand. VGG16's 13 3x3 convs (Simonyan & Zisserman, table 1,
# column D), atrous fc6 3x3 and fc7 1x1 (SSD section 3), the
# L2Norm scale of conv4_3 (512), the extras conv6_1 ... conv9_2 and a 3x3
# class (81 per box) and box (4 per box) conv per level.
VGG16 = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256),
         (256, 256), (256, 512), (512, 512), (512, 512), (512, 512),
         (512, 512), (512, 512)]
EXTRAS = [(1024, 256, 1), (256, 512, 3), (512, 128, 1), (128, 256, 3),
          (256, 128, 1), (128, 256, 3), (256, 128, 1), (128, 256, 3)]
SSD300_PARAMS = (
    sum(_conv(i, o, 3) for i, o in VGG16) + _conv(512, 1024, 3) +
    _conv(1024, 1024, 1) + 512 + sum(_conv(*e) for e in EXTRAS) +
    sum(_conv(c, a * 81, 3) + _conv(c, a * 4, 3) for c, a in zip(
        (512, 1024, 512, 256, 256, 256), (4, 6, 6, 6, 4, 4))))


# Multiply-adds: map side s, s * s * c_in * c_out * k * k per conv (biases and
# pools not counted, as fvcore). Sides: 300, pools rounding up to 150, 75,
# 38, 19; fc6, fc7 and conv6_1 at 19; extras 10, 5, 3, 1.
SIDES = [300, 300, 150, 150, 75, 75, 75, 38, 38, 38, 19, 19, 19]
SSD300_FLOPS = (
    sum(s * s * i * o * 9 for s, (i, o) in zip(SIDES, VGG16)) +
    19 * 19 * (512 * 1024 * 9 + 1024 * 1024) +
    sum(s * s * i * o * k * k for s, (i, o, k) in zip(
        (19, 10, 10, 5, 5, 3, 3, 1), EXTRAS)) +
    sum(s * s * c * a * 85 * 9 for s, c, a in zip(
        (38, 19, 10, 5, 3, 1), (512, 1024, 512, 256, 256, 256),
        (4, 6, 6, 6, 4, 4))))


def test_complexity_of_ssd300_by_hand():
    # VGG16's convs alone: 14,714,688, as torchvision's vgg16().features.
    assert sum(_conv(i, o, 3) for i, o in VGG16) == 14_714_688
    model = MODELS.build(load('configs/ssd/ssd300_coco.py').model)
    # 34,305,206 and 34,360,351,232: docs/train_test.md's 34.31 M and
    # 34.36 GFLOPs.
    assert complexity(model, (300, 300)) == (SSD300_PARAMS, SSD300_FLOPS)


def test_lite_parameters_equal_mmdets_ssdlite():
    # mmdet's own MobileNetV2 and its SSDLite neck and head as the reference.
    from mmdet.models.backbones import MobileNetV2
    params = sum(p.numel() for m in (MobileNetV2(out_indices=(4, 7)),
                                     lite_mmdet_neck(), lite_mmdet_head())
                 for p in m.parameters())
    model = MODELS.build(load(LITE).model)
    assert complexity(model, (320, 320))[0] == params
