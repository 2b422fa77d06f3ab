"""Weight converters (ssd_plugin.converters, tools/model_converters/)
against their sources.

No downloads: each source state dict is built here with the source's key
names and shapes -- mmdet's own SSD modules; torchvision's ``ssd300_vgg16``
and ``vgg16`` layouts reproduced from torchvision's source (torchvision
cannot be imported here). Expected values come from running the source
layers and ours on the same inputs, or from the paper's subsampling written
out index by index, never from the converters' own output.
"""
import os
import os.path as osp

import mmdet
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import nn

from conftest import load_tool
from ssd_plugin.converters import (common, from_mmdet, from_torchvision,
                                   vgg16_reducedfc)
from ssd_plugin.models import AtrousVGG
from ssd_plugin.models.ssd_head import flatten_levels
from ssd_plugin.registry import MODELS

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MMDET_CONFIGS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')
# torchvision's _COCO_CATEGORIES: index = COCO category id, 'N/A' unused.
TORCHVISION_COCO = [
    '__background__', 'person', 'bicycle', 'car', 'motorcycle', 'airplane',
    'bus', 'train', 'truck', 'boat', 'traffic light', 'fire hydrant', 'N/A',
    'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse',
    'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'N/A',
    'backpack', 'umbrella', 'N/A', 'N/A', 'handbag', 'tie', 'suitcase',
    'frisbee', 'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat',
    'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'N/A', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana',
    'apple', 'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza',
    'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed', 'N/A',
    'dining table', 'N/A', 'N/A', 'toilet', 'N/A', 'tv', 'laptop', 'mouse',
    'remote', 'keyboard', 'cell phone', 'microwave', 'oven', 'toaster',
    'sink', 'refrigerator', 'N/A', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush']
VGG16_CFG = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512,
             'M', 512, 512, 512, 'M')  # torchvision's cfg "D"


def main_of(name: str):
    """A converter's command line, as ``tools/model_converters`` runs it."""
    return load_tool(f'model_converters/{name}.py').main


def our_config(name: str) -> str:
    return osp.join(REPO_ROOT, 'configs', 'ssd', f'{name}.py')


def build_mmdet(name: str, seed: int = 0, **head) -> nn.Module:
    """mmdet's own SSD from its installed config, random weights."""
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(osp.join(MMDET_CONFIGS, 'ssd', f'{name}.py'))
    cfg.model.backbone.init_cfg = None
    cfg.model.bbox_head.update(head)
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MMDET_MODELS.build(cfg.model).eval()
    # mmdet's L2Norm weight is left uninitialised until init_weights.
    nn.init.uniform_(model.neck.l2_norm.weight, 10, 30)
    return model


def build_ours(name: str, **head) -> nn.Module:
    cfg = Config.fromfile(our_config(name))
    cfg.model.bbox_head.update(head)
    with DefaultScope.overwrite_default_scope('ssd_plugin'):
        return MODELS.build(cfg.model).eval()


@pytest.fixture(scope='module')
def mmdet_ssd300() -> nn.Module:
    return build_mmdet('ssd300_coco')


# --- from_mmdet --------------------------------------------------------------

@pytest.mark.parametrize('name', ['ssd300_coco', 'ssd512_coco'])
def test_from_mmdet_computes_what_mmdet_computes(name):
    theirs, ours = build_mmdet(name), build_ours(name)
    ours.load_state_dict(from_mmdet.convert(
        theirs.state_dict(), our_config(name)), strict=True)
    gen = torch.Generator().manual_seed(1)
    image = torch.randn(1, 3, 64, 64, generator=gen) * 50
    fc7_side = ours.neck.min_input_size()  # smallest map the extras take
    neck_in = (torch.randn(1, 512, 6, 6, generator=gen),
               torch.rand(1, 1024, fc7_side, fc7_side, generator=gen))
    sizes = [(5, 4), (3, 3), (2, 3), (2, 2), (1, 2), (1, 1), (1, 1)]
    head_in = [torch.randn(1, c, *hw, generator=gen) for c, hw in zip(
        ours.bbox_head.in_channels, sizes)]
    with torch.no_grad():
        pairs = [(theirs.backbone(image), ours.backbone(image)),
                 (theirs.neck(neck_in), ours.neck(neck_in)),
                 (sum(theirs.bbox_head(head_in), []),
                  sum(ours.bbox_head(head_in), []))]
    for their_maps, our_maps in pairs:
        assert len(their_maps) == len(our_maps)
        for their, our in zip(their_maps, our_maps):
            torch.testing.assert_close(our, their, rtol=1e-4, atol=1e-4)


def test_from_mmdet_keeps_tensors_and_checks_the_class_count():
    state = build_mmdet('ssd300_coco', num_classes=20).state_dict()
    converted = from_mmdet.convert(state, our_config('ssd300_voc0712'))
    # Every tensor is carried over, unchanged (renamed only): nothing dropped.
    assert sorted(map(id, converted.values())) == sorted(
        map(id, state.values()))
    build_ours('ssd300_voc0712').load_state_dict(converted, strict=True)
    # 21 scores per default box do not fit the default config's 81.
    with pytest.raises(ValueError) as error:
        from_mmdet.convert(state)
    for part in ("size mismatch for bbox_head.cls_convs.0.weight (source "
                 "'bbox_head.cls_convs.0.0.weight')", 'torch.Size([84, 512',
                 'torch.Size([324, 512', 'Pass --config'):
        assert part in str(error.value)


def _mutate(state, remove=(), **replace):
    state = dict(state)
    for key in remove:
        del state[key]
    state.update({k.replace('__', '.'): v for k, v in replace.items()})
    return state


@pytest.mark.parametrize('mutation, messages', [
    (dict(foo__bar=torch.zeros(1)), ["unknown key 'foo.bar' (and 0 more)"]),
    (dict(backbone__extra__0__weight=torch.zeros(1)),
     ["unknown key 'backbone.extra.0.weight'", 'upgrade_ssd_version']),
    ({'neck__extra_layers__0__0__bn__weight': torch.zeros(256)},
     ["unknown key 'neck.extra_layers.0.0.bn.weight'", 'SSDLite']),
    (dict(remove=['bbox_head.reg_convs.5.0.bias']),
     ['Missing key(s) in state_dict: "bbox_head.reg_convs.5.bias" (source '
      "'bbox_head.reg_convs.5.0.bias')"]),
    ({'backbone__features__31__weight': torch.zeros(1024, 512, 7, 7)},
     ['size mismatch for backbone.features.31.weight: copying a param with '
      'shape torch.Size([1024, 512, 7, 7])', 'torch.Size([1024, 512, 3, 3])']),
    ({'bbox_head__cls_convs__2__0__weight': torch.zeros(6 * 82, 512, 3, 3)},
     ["bbox_head.cls_convs.2.weight (source 'bbox_head.cls_convs.2.0.weight')",
      'torch.Size([486, 512, 3, 3])']),  # another class count than level 0
    ({'neck__extra_layers__1__0__conv__weight': torch.zeros(128, 256, 1, 1)},
     ["neck.extra_layers.1.0.weight (source 'neck.extra_layers.1.0.conv.",
      'torch.Size([128, 512, 1, 1])']),  # input: the previous layer's 512
    (dict(remove=[f'neck.extra_layers.1.{i}.conv.{p}' for i in (0, 1)
                  for p in ('weight', 'bias')]),
     ['"neck.extra_layers.1.0.weight" (source '
      "'neck.extra_layers.1.0.conv.weight')", '"neck.extra_layers.1.2.bias"']),
])
def test_from_mmdet_names_the_bad_key(mmdet_ssd300, mutation,
                                      messages):
    state = _mutate(mmdet_ssd300.state_dict(), **mutation)
    with pytest.raises(ValueError) as error:
        from_mmdet.convert(state)
    for message in messages:
        assert message in str(error.value)


def test_from_mmdet_empty_state_dict_raises():
    with pytest.raises(ValueError, match=r'Missing key\(s\) in state_dict: '
                       '"backbone.features.0.weight"'):
        from_mmdet.convert({})


class Payload:
    """Unpickling it would delete ``path``: a stand-in for malicious code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.remove, (self.path, )


def test_from_mmdet_command_line(tmp_path, mmdet_ssd300):
    state = mmdet_ssd300.state_dict()
    classes = tuple(f'class{i}' for i in range(80))
    src, raw, dst = (str(tmp_path / n) for n in ('a.pth', 'b.pth', 'c.pth'))
    torch.save(dict(state_dict=state, meta=dict(
        dataset_meta=dict(classes=classes))), src)
    torch.save(state, raw)  # a bare state dict is accepted too
    for source in (src, raw):
        main_of('from_mmdet')([source, dst])
        saved = torch.load(dst, weights_only=True)
        assert set(saved) == {'state_dict', 'meta'}
        assert list(saved['state_dict']) == list(
            from_mmdet.convert(state))
        assert saved['meta']['num_classes'] == 80
    assert 'dataset_meta' not in saved['meta']  # the raw file had none
    main_of('from_mmdet')([src, dst])
    assert torch.load(dst)['meta']['dataset_meta']['classes'] == classes
    ssd512 = our_config('ssd512_coco')  # --config is the model checked
    with pytest.raises(ValueError, match='Missing key.*neck.extra_layers.4'):
        main_of('from_mmdet')([src, dst, '--config', ssd512])
    # --cfg-options reach the model checked: 20 classes fit a 20-class head.
    state20 = build_mmdet('ssd300_coco', num_classes=20).state_dict()
    torch.save(state20, raw)
    main_of('from_mmdet')([raw, dst, '--cfg-options',
                           'model.bbox_head.num_classes=20'])
    assert torch.load(dst, weights_only=True)['meta']['num_classes'] == 20
    with pytest.raises(FileNotFoundError):
        main_of('from_mmdet')([str(tmp_path / 'missing.pth'), dst])
    with pytest.raises(FileNotFoundError, match='nope.py'):
        main_of('from_mmdet')([src, dst, '--config', 'nope.py'])
    torch.save(dict(state_dict={**state, 'neck.l2_norm.weight': 'text'}), src)
    with pytest.raises(ValueError, match='"neck.l2_norm.weight", expected '
                       'torch.Tensor'):
        main_of('from_mmdet')([src, dst])
    torch.save([state], src)
    with pytest.raises(TypeError, match='holds a list'):
        main_of('from_mmdet')([src, dst])
    torch.save(dict(state_dict=state, meta=Payload(raw)), src)
    with pytest.raises(ValueError, match='cannot be loaded weights-only'):
        main_of('from_mmdet')([src, dst])
    assert osp.isfile(raw)  # the payload never ran


# --- from_torchvision --------------------------------------------------------

def _conv_relu(in_channels, out_channels, kernel, **kwargs):
    return [nn.Conv2d(in_channels, out_channels, kernel, **kwargs),
            nn.ReLU(inplace=True)]


def torchvision_ssd300(seed: int = 0) -> nn.Module:
    """torchvision's ``ssd300_vgg16`` module tree (its ssd.py), random.

    ``SSDFeatureExtractorVGG``: vgg16.features up to conv4_3's ReLU; then
    ``extra[0]`` = pool4, conv5_x, and ``fc`` = (pool5, fc6, ReLU, fc7,
    ReLU) as its 8th module; four extra blocks; the two scoring heads.
    """
    torch.manual_seed(seed)
    vgg, channels = [], 3
    for spec in VGG16_CFG:
        if spec == 'M':
            vgg.append(nn.MaxPool2d(2, 2))
        else:
            vgg += _conv_relu(channels, spec, 3, padding=1)
            channels = spec
    vgg[16].ceil_mode = True  # maxpool3, patched by torchvision
    fc = nn.Sequential(nn.MaxPool2d(3, 1, 1),
                       *_conv_relu(512, 1024, 3, padding=6, dilation=6),
                       *_conv_relu(1024, 1024, 1))
    blocks = [(1024, 256, 512, dict(stride=2, padding=1)),
              (512, 128, 256, dict(stride=2, padding=1)),
              (256, 128, 256, {}), (256, 128, 256, {})]
    backbone = nn.Module()
    backbone.features = nn.Sequential(*vgg[:23])
    backbone.scale_weight = nn.Parameter(torch.rand(512) * 40)
    backbone.extra = nn.ModuleList(
        [nn.Sequential(*vgg[23:-1], fc)] +
        [nn.Sequential(*_conv_relu(c_in, mid, 1), *_conv_relu(mid, c_out, 3,
                                                               **kw))
         for c_in, mid, c_out, kw in blocks])
    head = nn.Module()
    for branch, per_box in (('classification', 91), ('regression', 4)):
        scoring = nn.Module()
        scoring.module_list = nn.ModuleList(
            nn.Conv2d(c, a * per_box, 3, padding=1) for c, a in zip(
                (512, 1024, 512, 256, 256, 256), (4, 6, 6, 6, 4, 4)))
        setattr(head, f'{branch}_head', scoring)
    model = nn.Module()
    model.backbone, model.head = backbone, head
    return model.eval()


def torchvision_scores(module_list, feats, per_box):
    """SSDScoringHead.forward: (N, A*K, H, W) -> (N, HWA, K), concatenated."""
    outs = []
    for conv, feat in zip(module_list, feats):
        out = conv(feat)
        n, _, h, w = out.shape
        out = out.view(n, -1, per_box, h, w).permute(0, 3, 4, 1, 2)
        outs.append(out.reshape(n, -1, per_box))
    return torch.cat(outs, dim=1)


@pytest.fixture(scope='module')
def torchvision_model() -> nn.Module:
    return torchvision_ssd300()


def test_torchvision_layout_is_the_documented_one(torchvision_model):
    keys = set(torchvision_model.state_dict())
    assert len(keys) == 2 * (10 + 5 + 8 + 12) + 1  # convs; the L2 norm scale
    for key in ('backbone.features.21.weight', 'backbone.extra.0.5.weight',
                'backbone.extra.0.7.1.weight', 'backbone.extra.0.7.3.bias',
                'backbone.extra.4.2.weight', 'backbone.scale_weight',
                'head.classification_head.module_list.5.bias'):
        assert key in keys
    assert torchvision_model.state_dict()[
        'backbone.extra.0.7.1.weight'].shape == (1024, 512, 3, 3)
    # The rename table maps these keys one to one onto our SSD300's.
    renamed = {common.rename(k, from_torchvision.RULES)
               for k in keys}
    assert renamed == set(build_ours('ssd300_coco').state_dict())


def test_from_torchvision_features_equal(torchvision_model):
    ours = build_ours('ssd300_coco')
    ours.load_state_dict(from_torchvision.convert(
        torchvision_model.state_dict()), strict=True)
    tv = torchvision_model.backbone
    gen = torch.Generator().manual_seed(2)
    image = torch.randn(1, 3, 64, 64, generator=gen) * 50
    conv4_3 = torch.rand(1, 512, 6, 6, generator=gen)
    fc7 = torch.rand(1, 1024, 19, 19, generator=gen)
    with torch.no_grad():
        conv4_3_tv = tv.features(image)
        expected = [conv4_3_tv, tv.extra[0](conv4_3_tv)]
        actual = list(ours.backbone(image))
        # torchvision's L2 norm and extras, on given maps.
        expected.append(tv.scale_weight.view(1, -1, 1, 1) *
                        F.normalize(conv4_3))
        x = fc7
        for block in tv.extra[1:]:
            x = block(x)
            expected.append(x)
        neck = ours.neck([conv4_3, fc7])
        actual += [neck[0], *neck[2:]]
    for exp, act in zip(expected, actual):
        torch.testing.assert_close(act, exp, rtol=1e-4, atol=1e-4)


def test_from_torchvision_head_maps_coco_ids_to_mmdet_classes(
        torchvision_model):
    from mmdet.datasets import CocoDataset
    ours = build_ours('ssd300_coco')
    ours.load_state_dict(from_torchvision.convert(
        torchvision_model.state_dict()), strict=True)
    gen = torch.Generator().manual_seed(3)
    sizes = [(3, 2), (2, 2), (2, 1), (1, 2), (1, 1), (1, 1)]
    feats = [torch.randn(2, c, *hw, generator=gen) for c, hw in zip(
        (512, 1024, 512, 256, 256, 256), sizes)]
    head = torchvision_model.head
    with torch.no_grad():
        cls_tv = torchvision_scores(
            head.classification_head.module_list, feats, 91)
        reg_tv = torchvision_scores(head.regression_head.module_list, feats, 4)
        cls_scores, bbox_preds = ours.bbox_head(feats)
    # Our class k is the mmdet name k; torchvision scores it at the index of
    # that name in its category list; background: 0 -> last.
    tv_index = [TORCHVISION_COCO.index(name)
                for name in CocoDataset.METAINFO['classes']] + [0]
    torch.testing.assert_close(flatten_levels(cls_scores, 81),
                               cls_tv[..., tv_index], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(flatten_levels(bbox_preds, 4), reg_tv,
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('mutation, messages', [
    (dict(head__extra__weight=torch.zeros(1)),
     ["unknown key 'head.extra.weight'", "torchvision's ssd300_vgg16"]),
    (dict(remove=['backbone.extra.0.7.3.bias']),
     ['Missing key(s) in state_dict: "backbone.features.33.bias" (source '
      "'backbone.extra.0.7.3.bias')", "torchvision's ssd300_vgg16 weights"]),
    ({'head__classification_head__module_list__0__weight':
      torch.zeros(4 * 81, 512, 3, 3)},
     ["'head.classification_head.module_list.0.weight' has 324 outputs, not "
      'A * 91']),
    ({'head__classification_head__module_list__0__weight':
      torch.zeros(6 * 91, 512, 3, 3)},  # 6 boxes per location, not 4
     ["size mismatch for bbox_head.cls_convs.0.weight (source "
      "'head.classification_head.module_list.0.weight')",
      'torch.Size([486, 512', 'torch.Size([324, 512']),
    ({'backbone__extra__5__0__weight': torch.zeros(128, 256, 1, 1)},
     ["unknown key 'backbone.extra.5.0.weight'"]),  # SSD512's extra block
    ({'backbone__features__24__weight': torch.zeros(512, 512, 3, 3)},
     ["'backbone.extra.0.1.weight' (and 1 more)", 'renamed alike']),  # conv5_1
])
def test_from_torchvision_names_the_bad_key(torchvision_model,
                                            mutation, messages):
    state = _mutate(torchvision_model.state_dict(), **mutation)
    with pytest.raises(ValueError) as error:
        from_torchvision.convert(state)
    for message in messages:
        assert message in str(error.value)


def test_from_torchvision_command_line(tmp_path, torchvision_model):
    src, dst = str(tmp_path / 'tv.pth'), str(tmp_path / 'ours.pth')
    torch.save(torchvision_model.state_dict(), src)
    main_of('from_torchvision')([src, dst])
    saved = torch.load(dst, weights_only=True)
    assert saved['meta']['num_classes'] == 80
    classes = saved['meta']['dataset_meta']['classes']
    assert len(classes) == 80 and classes[0] == 'person'
    assert saved['state_dict']['bbox_head.cls_convs.0.weight'].shape == (
        4 * 81, 512, 3, 3)


# --- vgg16_reducedfc ---------------------------------------------------------

@pytest.fixture(scope='module')
def vgg16_state() -> dict:
    """torchvision ``vgg16`` keys and shapes, random values (~0.5 GB)."""
    gen = torch.Generator().manual_seed(4)
    state, index, channels = {}, 0, 3
    for spec in VGG16_CFG:
        if spec != 'M':
            state[f'features.{index}.weight'] = torch.randn(
                spec, channels, 3, 3, generator=gen)
            state[f'features.{index}.bias'] = torch.randn(spec, generator=gen)
            channels, index = spec, index + 1
        index += 1
    for index, (out, inp) in zip((0, 3, 6), [(4096, 25088), (4096, 4096),
                                             (1000, 4096)]):
        state[f'classifier.{index}.weight'] = torch.randn(out, inp,
                                                         generator=gen)
        state[f'classifier.{index}.bias'] = torch.randn(out, generator=gen)
    return state


def test_vgg16_reducedfc_loads_into_atrous_vgg(vgg16_state):
    converted = vgg16_reducedfc.convert(vgg16_state, (1, 1, 1))
    AtrousVGG().load_state_dict(converted, strict=True)
    for key, value in vgg16_state.items():
        if key.startswith('features.'):  # conv1_1 ... conv5_3 as they were
            assert torch.equal(converted[key], value)


def test_vgg16_reducedfc_fc6_is_fc6_on_every_third_tap(vgg16_state):
    """Paper section 3: fc6 as a 7x7 conv, every 4th filter, taps 0, 3, 6.

    On a pool5 map that is zero except at rows and columns 0, 3 and 6, the
    reduced 3x3 conv with dilation 3 (those taps) gives the original fc6's
    filters 0, 4, 8, ...
    """
    converted = vgg16_reducedfc.convert(vgg16_state, (1, 1, 1))
    gen = torch.Generator().manual_seed(5)
    pool5 = torch.zeros(512, 7, 7)
    taps = torch.tensor([0, 3, 6])
    pool5[:, taps[:, None], taps] = torch.randn(512, 3, 3, generator=gen)
    full = (vgg16_state['classifier.0.weight'] @ pool5.flatten() +
            vgg16_state['classifier.0.bias'])
    reduced = F.conv2d(pool5[None], converted['features.31.weight'],
                       converted['features.31.bias'], dilation=3)
    torch.testing.assert_close(reduced.flatten(), full[0::4], rtol=1e-4,
                               atol=1e-2)
    # Spot checks of the index formula W6[4o, c * 49 + 7 * 3y + 3x].
    for o, c, y, x in [(0, 0, 0, 0), (255, 17, 2, 1), (1023, 511, 1, 2)]:
        assert converted['features.31.weight'][o, c, y, x] == vgg16_state[
            'classifier.0.weight'][4 * o, c * 49 + 7 * 3 * y + 3 * x]


def test_vgg16_reducedfc_fc7_reads_the_kept_fc6_outputs(vgg16_state):
    converted = vgg16_reducedfc.convert(vgg16_state, (1, 1, 1))
    fc6_kept = torch.randn(1024, generator=torch.Generator().manual_seed(6))
    fc6_full = torch.zeros(4096)
    fc6_full[0::4] = fc6_kept  # the outputs fc6's reduction kept
    full = (vgg16_state['classifier.3.weight'] @ fc6_full +
            vgg16_state['classifier.3.bias'])
    reduced = F.conv2d(fc6_kept[None, :, None, None],
                       converted['features.33.weight'],
                       converted['features.33.bias'])
    assert converted['features.33.weight'].shape == (1024, 1024, 1, 1)
    torch.testing.assert_close(reduced.flatten(), full[0::4], rtol=1e-4,
                               atol=1e-3)


def test_vgg16_reducedfc_folds_the_input_std_into_conv1_1(vgg16_state):
    std = (58.395, 57.12, 57.375)
    converted = vgg16_reducedfc.convert(vgg16_state)  # torchvision's std
    gen = torch.Generator().manual_seed(7)
    centred = torch.randn(1, 3, 8, 8, generator=gen) * 60  # pixels - mean
    torch.testing.assert_close(
        F.conv2d(centred, converted['features.0.weight'],
                 converted['features.0.bias'], padding=1),
        F.conv2d(centred / torch.tensor(std).view(1, 3, 1, 1),
                 vgg16_state['features.0.weight'],
                 vgg16_state['features.0.bias'], padding=1),
        rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('mutation, messages', [
    (dict(remove=['classifier.3.bias']),
     ['Missing key(s) in state_dict: "features.33.bias" (source '
      "'classifier.3.bias')", 'AtrousVGG']),
    (dict(classifier__0__weight=torch.zeros(4096, 9216)),
     ["'classifier.0.weight' has shape (4096, 9216); expected (4096, 25088)"]),
    (dict(features__30__weight=torch.zeros(512, 512, 3, 3)),
     ["unknown key 'features.30.weight'"]),
    (dict(features__1__running_mean=torch.zeros(64)),  # vgg16_bn
     ["unknown key 'features.1.running_mean'", "torchvision's vgg16"]),
    (dict(features__0__running_mean=torch.zeros(64)),
     ['Unexpected key(s) in state_dict: "features.0.running_mean"']),
    (dict(features__0__weight=torch.zeros(64, 1, 3, 3)),  # grey input
     ['size mismatch for features.0.weight', 'torch.Size([64, 3, 3, 3])']),
    (dict(classifier__7__weight=torch.zeros(1)),
     ["unknown key 'classifier.7.weight'"]),
    (dict(features__31__weight=torch.zeros(1024, 512, 3, 3)),  # ours
     ["unknown key 'features.31.weight'"]),
])
def test_vgg16_reducedfc_names_the_bad_key(vgg16_state, mutation,
                                           messages):
    with pytest.raises(ValueError) as error:
        vgg16_reducedfc.convert(_mutate(vgg16_state, **mutation))
    for message in messages:
        assert message in str(error.value)


def test_vgg16_reducedfc_refuses_converted_weights(vgg16_state):
    converted = vgg16_reducedfc.convert(vgg16_state)
    with pytest.raises(ValueError, match="unknown key 'features.31.weight'"):
        vgg16_reducedfc.convert(converted)  # would fold the std twice


@pytest.mark.parametrize('std', [(0, 1, 1), (1, 1)])
def test_vgg16_reducedfc_rejects_a_bad_std(vgg16_state, std):
    with pytest.raises(ValueError, match='input_std'):
        vgg16_reducedfc.convert(vgg16_state, std)


def test_vgg16_reducedfc_command_line_without_fc8(tmp_path,
                                                  vgg16_state):
    state = {k: v for k, v in vgg16_state.items()
             if not k.startswith('classifier.6.')}
    src, dst = str(tmp_path / 'vgg.pth'), str(tmp_path / 'atrous.pth')
    torch.save(state, src)
    main_of('vgg16_reducedfc')([src, dst, '--input-std', '1', '1', '1'])
    saved = torch.load(dst, weights_only=True)
    AtrousVGG().load_state_dict(saved['state_dict'], strict=True)
    assert saved['meta']['input_std_folded'] == [1.0, 1.0, 1.0]
