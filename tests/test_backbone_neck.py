"""AtrousVGG and SSDNeck against sizes and counts worked out by hand.

Expected map sizes follow from the layer definitions (section 3 of the paper
and Caffe's ``VGGNetBody`` / ``AddExtraLayers``): ``ceil(s / 2)`` per 2x2
ceil-mode pool, ``floor((s + 2p - k) / stride) + 1`` per conv.
"""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ssd_plugin.models.atrous_vgg import AtrousVGG
from ssd_plugin.models.default_box_generator import DefaultBoxGenerator
from ssd_plugin.models.ssd_head import SSDHead
from ssd_plugin.models.ssd_neck import (L2Norm, SSDNeck, extra_map_sizes,
                                        min_input_size)

SSD512_NECK = dict(
    out_channels=(512, 1024, 512, 256, 256, 256, 256),
    bottleneck_channels=(256, 128, 128, 128, 128),
    kernel_sizes=(3, 3, 3, 3, 4), strides=(2, 2, 2, 2, 1),
    paddings=(1, 1, 1, 1, 1))


def tiny_neck(**kwargs) -> SSDNeck:
    """An SSDNeck with few channels: sizes do not depend on channels."""
    num_extra = len(kwargs.get('kernel_sizes', (3, 3, 3, 3)))
    return SSDNeck(in_channels=(4, 8),
                   out_channels=(4, 8) + (4, ) * num_extra,
                   bottleneck_channels=(2, ) * num_extra, **kwargs)


def sides(maps):
    return [tuple(m.shape[-2:]) for m in maps]


# --- AtrousVGG -------------------------------------------------------------

def vgg_feature_sizes(input_size: int):
    """conv4_3 and fc7 sides: convs keep the size, each 2x2/2 ceil-mode pool
    maps s to ceil(s / 2); conv4_3 follows three pools, fc7 four."""
    size = input_size
    for _ in range(3):
        size = math.ceil(size / 2)
    return size, math.ceil(size / 2)


@pytest.mark.parametrize('size, expected', [
    (300, (38, 19)),  # 300 -> 150 -> 75 -> 38 (pool3 rounds up) -> 19
    (512, (64, 32)),  # 512 -> 256 -> 128 -> 64 -> 32
    (333, (42, 21)),  # 333 -> 167 -> 84 -> 42 -> 21
    (480, (60, 30)),
    (1, (1, 1)),
])
def test_vgg_feature_sizes(size, expected):
    assert vgg_feature_sizes(size) == expected


@pytest.mark.parametrize('size', [1, 17, 33])
def test_atrous_vgg_maps_follow_the_size_rule(size):
    with torch.no_grad():
        conv4_3, fc7 = AtrousVGG().eval()(torch.rand(1, 3, size, size))
    assert (conv4_3.shape[-1], fc7.shape[-1]) == vgg_feature_sizes(size)


def test_atrous_vgg_outputs_match_feature_sizes():
    torch.manual_seed(0)
    vgg = AtrousVGG().eval()
    with torch.no_grad():
        conv4_3, fc7 = vgg(torch.rand(1, 3, 75, 50))
    # 75 -> 38 -> 19 -> 10 -> 5; 50 -> 25 -> 13 -> 7 -> 4
    assert conv4_3.shape == (1, 512, 10, 7)
    assert fc7.shape == (1, 1024, 5, 4)
    assert conv4_3.min() >= 0 and fc7.min() >= 0  # taken after the ReLUs


def test_atrous_vgg_parameter_count_is_the_hand_sum():
    # (k, c_in, c_out) of VGG16's 13 convs (Simonyan & Zisserman, config D)
    # then fc6 as 3x3 512 -> 1024 and fc7 as 1x1 1024 -> 1024 (section 3).
    convs = [(3, 3, 64), (3, 64, 64), (3, 64, 128), (3, 128, 128),
             (3, 128, 256), (3, 256, 256), (3, 256, 256),
             (3, 256, 512), (3, 512, 512), (3, 512, 512),
             (3, 512, 512), (3, 512, 512), (3, 512, 512)]
    vgg16_convs = sum(k * k * i * o + o for k, i, o in convs)
    # torchvision's VGG16 has 138,357,544 parameters; minus its three fc
    # layers (25088x4096, 4096x4096, 4096x1000 with biases):
    fc = 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    assert vgg16_convs == 138_357_544 - fc == 14_714_688
    expected = vgg16_convs + (9 * 512 * 1024 + 1024) + (1024 * 1024 + 1024)
    assert sum(p.numel() for p in AtrousVGG().parameters()) == expected


def test_atrous_vgg_state_dict_keys_and_fc6_dilation():
    vgg = AtrousVGG()
    conv_indices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28, 31, 33]
    expected = {f'features.{i}.{p}' for i in conv_indices
                for p in ('weight', 'bias')}
    assert set(vgg.state_dict()) == expected
    fc6 = vgg.features[31]
    assert fc6.weight.shape == (1024, 512, 3, 3)
    assert fc6.dilation == (6, 6) and fc6.padding == (6, 6)
    pool5 = vgg.features[30]
    assert (pool5.kernel_size, pool5.stride, pool5.padding) == (3, 1, 1)


def test_atrous_vgg_loads_pretrained_weights_by_key(tmp_path):
    torch.manual_seed(0)
    source = AtrousVGG()
    path = tmp_path / 'vgg.pth'
    torch.save(source.state_dict(), path)
    vgg = AtrousVGG(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    vgg.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(vgg.state_dict()[key], value), key


@pytest.mark.parametrize('kwargs', [
    dict(out_indices=(34, 22)), dict(out_indices=(22, 35)),
    dict(out_indices=()), dict(fc_channels=0), dict(dilation=-1)])
def test_atrous_vgg_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        AtrousVGG(**kwargs)


# --- pure size helpers ---------------------------------------------------

def test_one_layer_output_size_by_hand():
    assert extra_map_sizes(19, (3, ), (2, ), (1, )) == [10]  # conv6_2, SSD300
    assert extra_map_sizes(5, (3, ), (1, ), (0, )) == [3]  # conv8_2
    assert extra_map_sizes(2, (4, ), (1, ), (1, )) == [1]  # conv10_2, SSD512
    assert extra_map_sizes(2, (3, ), (1, ), (0, )) == [0]  # too small


def test_extra_map_sizes_ssd300_and_ssd512():
    assert extra_map_sizes(19, (3, 3, 3, 3), (2, 2, 1, 1),
                           (1, 1, 0, 0)) == [10, 5, 3, 1]
    assert extra_map_sizes(32, **{
        k: SSD512_NECK[k] for k in ('kernel_sizes', 'strides', 'paddings')
    }) == [16, 8, 4, 2, 1]


def test_min_input_size_by_hand():
    # SSD300 backwards: 1 <- 3 (3x3 p0) <- 5 (3x3 p0) <- 9 <- 17 (3x3 s2 p1)
    assert min_input_size((3, 3, 3, 3), (2, 2, 1, 1), (1, 1, 0, 0)) == 17
    # SSD512: 1 <- 2 (4x4 p1) <- 3 <- 5 <- 9 <- 17
    assert min_input_size((3, 3, 3, 3, 4), (2, 2, 2, 2, 1),
                          (1, 1, 1, 1, 1)) == 17
    assert min_input_size((), (), ()) == 1


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 3),
                          st.integers(0, 2)), min_size=1, max_size=5))
def test_min_input_size_is_the_smallest_that_works(layers):
    kernels, strides, pads = zip(*layers)
    need = min_input_size(kernels, strides, pads)
    assert min(extra_map_sizes(need, kernels, strides, pads)) >= 1
    if need > 1:
        assert min(extra_map_sizes(need - 1, kernels, strides, pads)) < 1


# --- L2Norm and SSDNeck --------------------------------------------------

def test_l2norm_gives_norm_20_per_location_at_init():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 5, 7) * 3
    x[0, :, 0, 0] = 0  # an all-zero location stays zero, no NaN
    out = L2Norm(16)(x)
    norms = out.pow(2).sum(1).sqrt()
    expected = torch.full_like(norms, 20.0)
    expected[0, 0, 0] = 0
    torch.testing.assert_close(norms, expected)
    assert torch.allclose(out[1] / out[1].norm(dim=0), x[1] / x[1].norm(
        dim=0), atol=1e-6)


def test_l2norm_is_learnable_per_channel():
    norm = L2Norm(4)
    assert norm.weight.shape == (4, ) and norm.weight.requires_grad
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1., 2., 3., 4.]))
    x = torch.ones(1, 4, 1, 1)  # unit vector / 2 per channel
    assert torch.allclose(norm(x).flatten(), torch.tensor([.5, 1., 1.5, 2.]))


def test_neck_ssd300_sizes():
    neck = tiny_neck()
    outs = neck([torch.rand(1, 4, 38, 38), torch.rand(1, 8, 19, 19)])
    assert sides(outs) == [(s, s) for s in (38, 19, 10, 5, 3, 1)]
    assert [o.size(1) for o in outs] == [4, 8, 4, 4, 4, 4]


def test_neck_ssd512_sizes():
    neck = tiny_neck(**{k: v for k, v in SSD512_NECK.items()
                        if k in ('kernel_sizes', 'strides', 'paddings')})
    outs = neck([torch.rand(1, 4, 64, 64), torch.rand(1, 8, 32, 32)])
    assert sides(outs) == [(s, s) for s in (64, 32, 16, 8, 4, 2, 1)]


def test_neck_full_channels_ssd512():
    neck = SSDNeck(**SSD512_NECK)
    assert [layer[2].out_channels for layer in neck.extra_layers] == [
        512, 256, 256, 256, 256]
    assert neck.extra_layers[4][2].kernel_size == (4, 4)


def test_neck_output_sizes_agree_with_forward():
    neck = tiny_neck()
    outs = neck([torch.rand(1, 4, 42, 60), torch.rand(1, 8, 21, 30)])
    heights, widths = neck.output_sizes((21, 30))
    assert sides(outs)[2:] == list(zip(heights, widths))


def test_neck_too_small_input_names_the_sizes():
    neck = tiny_neck()
    with pytest.raises(ValueError) as error:
        neck([torch.rand(1, 4, 32, 32), torch.rand(1, 8, 16, 16)])
    message = str(error.value)
    # fc7 needs 17 (see test_min_input_size_by_hand); the image
    # 16 * (17 - 1) + 1 = 257, since fc7 = ceil(image / 16).
    assert '16x16' in message and '17x17' in message and '257' in message


def test_neck_smallest_input_works():
    neck = tiny_neck()
    outs = neck([torch.rand(1, 4, 33, 33), torch.rand(1, 8, 17, 17)])
    assert sides(outs)[-1] == (1, 1)


def test_neck_checks_number_of_inputs():
    with pytest.raises(ValueError, match='got 1 maps'):
        tiny_neck()([torch.rand(1, 8, 19, 19)])


@pytest.mark.parametrize('kwargs, word', [
    (dict(strides=(2, 2, 1)), 'strides'),
    (dict(kernel_sizes=(3, 3, 0, 3)), 'kernel_sizes'),
    (dict(paddings=(1, 1, -1, 0)), 'paddings'),
    (dict(bottleneck_channels=(256, 128, 128)), 'bottleneck_channels'),
    (dict(out_channels=(512, 512, 512, 256, 256, 256)), 'must start with'),
    (dict(in_channels=(512, 0), out_channels=(512, 0, 1, 1, 1, 1)),
     'positive'),
])
def test_neck_rejects_bad_lists(kwargs, word):
    with pytest.raises(ValueError, match=word):
        SSDNeck(**kwargs)


def test_neck_init_weights_is_caffe_xavier():
    torch.manual_seed(0)
    neck = SSDNeck()
    with torch.no_grad():
        neck.l2_norm.weight.fill_(1.)
    neck.init_weights()
    assert torch.equal(neck.l2_norm.weight, torch.full((512, ), 20.))
    for layer in neck.extra_layers:
        for conv in (layer[0], layer[2]):
            fan_in = conv.weight[0].numel()
            bound = math.sqrt(3 / fan_in)  # Caffe XavierFiller, FAN_IN
            assert conv.weight.abs().max() <= bound
            # U(-b, b) has std b / sqrt(3) = 1 / sqrt(fan_in)
            std = conv.weight.std().item()
            assert abs(std * math.sqrt(fan_in) - 1) < 0.05
            assert torch.count_nonzero(conv.bias) == 0


# --- backbone + neck + head end to end ------------------------------------

@pytest.mark.parametrize('height, width, expected', [
    # 300x480: conv4_3 38x60, fc7 19x30, then 10x15, 5x8, 3x6, 1x4
    (300, 480, [(38, 60), (19, 30), (10, 15), (5, 8), (3, 6), (1, 4)]),
    # 333: 42, 21, then 11, 6, 4, 2
    (333, 333, [(42, 42), (21, 21), (11, 11), (6, 6), (4, 4), (2, 2)]),
])
def test_unusual_inputs_run_end_to_end(height, width, expected):
    torch.manual_seed(0)
    vgg, neck = AtrousVGG().eval(), SSDNeck().eval()
    head = SSDHead(num_classes=3).eval()
    with torch.no_grad():
        feats = neck(vgg(torch.rand(1, 3, height, width)))
        cls_scores, bbox_preds = head(feats)
    assert sides(feats) == expected
    generator = DefaultBoxGenerator(input_size=(width, height))  # (w, h)
    priors = generator.grid_priors(expected, device='cpu',
                                   input_shape=(height, width))
    per_location = (4, 6, 6, 6, 4, 4)  # SSD300's boxes per location
    count = sum(h * w * a for (h, w), a in zip(expected, per_location))
    assert sum(p.size(0) for p in priors) == count
    assert sum(s[0].numel() for s in cls_scores) == count * 4  # C + 1 = 4
    assert sum(b[0].numel() for b in bbox_preds) == count * 4


def test_too_small_image_raises_naming_the_sizes():
    vgg, neck = AtrousVGG().eval(), SSDNeck().eval()
    with torch.no_grad(), pytest.raises(ValueError, match='257x257'):
        neck(vgg(torch.rand(1, 3, 256, 256)))  # fc7 is 16x16
