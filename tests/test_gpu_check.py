"""The GPU check (tools/analysis_tools/gpu_check.py) and its parts.

On the CPU the whole check runs at small sizes, so that it cannot rot; the
tests marked ``cuda`` run its checks at full size where a GPU is present.
"""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.optim import OptimWrapper
from torch import nn

from conftest import REPO_ROOT, load_tool
from ssd_plugin.deploy.torch_bf16 import autocast_network, bf16_network
from ssd_plugin.engine import CPUAmpOptimWrapper
from ssd_plugin.models.ssd_head import flatten_levels
from ssd_plugin.utils import gpu_check
from ssd_plugin.utils.config import load_config
from ssd_plugin.utils.mmdet_ssd import (calibrate_head, patch_ssd_head,
                                        random_detector)
from ssd_plugin.utils.network_input import network_inputs


@pytest.fixture(scope='module')
def ours():
    return gpu_check.build_ours(seed=0)


def test_calibrated_head_scores_like_a_trained_one(ours):
    """Per level: class logits of standard deviation 1 around 0, background
    7 higher, offsets of deviation 1 (the numbers calibrate_head promises),
    measured on the probe image it was calibrated on."""
    head = ours.bbox_head
    with torch.no_grad():
        cls_scores, bbox_preds = head(ours.extract_feat(
            gpu_check.probe_inputs(ours)))
    for cls, reg in zip(cls_scores, bbox_preds):
        assert reg.std().item() == pytest.approx(1.0, rel=1e-3)
        logits = flatten_levels([cls], head.cls_out_channels)
        background = logits[..., -1] - 7.0
        both = torch.cat([logits[..., :-1].flatten(), background.flatten()])
        assert both.std().item() == pytest.approx(1.0, rel=1e-3)
    # A few thousand of SSD300's 8732 x 80 (box, class) pairs pass 0.01.
    scores = flatten_levels(cls_scores, head.cls_out_channels).softmax(-1)
    passing = int((scores[..., :-1] > 0.01).sum())
    assert 100 < passing < 50000


def test_mmdet_head_patch_only_adds_what_is_missing():
    head = nn.Module()
    patch_ssd_head(head)
    assert head.loss_cls.use_sigmoid is False
    own = nn.Module()
    own.use_sigmoid = True
    head.loss_cls = own
    patch_ssd_head(head)
    assert head.loss_cls is own


def test_calibrate_head_reaches_mmdet_wrapped_predictors():
    """mmdet wraps each predictor in a Sequential: its last conv is the one
    rescaled."""
    model = gpu_check.build_ours(seed=1)
    head = model.bbox_head
    head.cls_convs = nn.ModuleList(nn.Sequential(c) for c in head.cls_convs)
    head.reg_convs = nn.ModuleList(nn.Sequential(c) for c in head.reg_convs)
    inputs = gpu_check.probe_inputs(model, seed=3)
    calibrate_head(model, inputs, logit_std=2.0)
    with torch.no_grad():
        _, bbox_preds = head(model.extract_feat(inputs))
    assert bbox_preds[0].std().item() == pytest.approx(1.0, rel=1e-3)


def test_calibrate_head_rescales_the_last_conv_of_depthwise_predictors():
    """SSDLite's predictors are depthwise conv, BN, ReLU6, 1x1 conv: only the
    1x1 is rescaled, so that the predictor's output has the promised
    deviation (depthwise weights untouched)."""
    cfg = load_config(osp.join(REPO_ROOT, 'configs', 'ssdlite',
                               'ssdlite_mobilenetv2_320_coco.py'))
    torch.manual_seed(0)
    model = random_detector(cfg)
    head = model.bbox_head
    depthwise = head.cls_convs[0][0].weight.clone()
    inputs = network_inputs(cfg, [np.random.default_rng(0).integers(
        0, 256, (240, 320, 3), np.uint8)])[0]
    calibrate_head(model, inputs, logit_std=2.0, background_bias=5.0)
    assert torch.equal(head.cls_convs[0][0].weight, depthwise)
    with torch.no_grad():
        cls_scores, bbox_preds = head(model.extract_feat(inputs))
    # The first level (the deeper maps of a random MobileNetV2 all but
    # vanish, std < 1e-11, below what the rescaling's 1e-12 floor lifts).
    assert bbox_preds[0].std().item() == pytest.approx(1.0, rel=1e-3)
    logits = flatten_levels(cls_scores[:1], head.cls_out_channels)
    both = torch.cat([logits[..., :-1].flatten(),
                      (logits[..., -1] - 5.0).flatten()])
    assert both.std().item() == pytest.approx(2.0, rel=1e-3)
    for cls in head.cls_convs:  # every level's background bias
        background = cls[-1].bias[head.cls_out_channels - 1::
                                  head.cls_out_channels]
        assert (background == 5.0).all()


def test_make_batch_boxes_inside_images():
    data = gpu_check.make_batch(3, seed=0)
    assert len(data['inputs']) == 3
    for image, sample in zip(data['inputs'], data['data_samples']):
        assert image.shape == (3, 300, 300) and image.dtype == torch.uint8
        boxes = sample.gt_instances.bboxes
        assert len(boxes) >= 1
        assert (boxes[:, 2:] > boxes[:, :2]).all()
        assert boxes.min() >= 0 and boxes.max() <= 300


def test_nms_check_on_cpu_runs_both_ops():
    result = gpu_check.check_nms('cpu', num_boxes=300)
    assert result['passed']
    # Boxes of 10-70 px in 300x300 overlap: NMS must drop some.
    assert 0 < result['nms']['kept_cpu'] < 300


def test_activation_max_sees_overflow():
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.fill_(1e5)
        layer.bias.zero_()
    with gpu_check.ActivationMax({'fc': layer}) as acts:
        layer(torch.ones(1, 2))
        layer(torch.full((1, 2), -0.5))
    assert acts.read()['fc'] == pytest.approx(2e5)
    identity = nn.Identity()  # an fp16 layer output past 65504 is inf
    with gpu_check.ActivationMax({'fp16': identity}) as acts:
        identity(torch.tensor([1.0, -7e4]).half())
    assert acts.read()['fp16'] == float('inf')


def test_no_tf32_restores_flags():
    before = (torch.backends.cudnn.allow_tf32,
              torch.backends.cuda.matmul.allow_tf32)
    with gpu_check.NoTF32():
        assert not torch.backends.cudnn.allow_tf32
        assert not torch.backends.cuda.matmul.allow_tf32
    assert (torch.backends.cudnn.allow_tf32,
            torch.backends.cuda.matmul.allow_tf32) == before


def test_optim_wrapper_per_device_and_dtype():
    model = nn.Linear(2, 2)
    assert type(gpu_check.optim_wrapper(model, 'fp32', 'cpu')) is OptimWrapper
    assert isinstance(gpu_check.optim_wrapper(model, 'bf16', 'cpu'),
                      CPUAmpOptimWrapper)
    with pytest.raises(ValueError, match='float16 AMP on the CPU'):
        gpu_check.optim_wrapper(model, 'fp16', 'cpu')


def test_autocast_network_uses_the_models_device_and_nests(ours):
    seen = []
    conv = ours.backbone.features[0]
    handle = conv.register_forward_hook(lambda m, a, out: seen.append(
        out.dtype))
    inputs = gpu_check.probe_inputs(ours)
    try:
        with bf16_network(ours):
            with autocast_network(ours, torch.bfloat16):
                with torch.no_grad():
                    outs = ours.bbox_head(ours.extract_feat(inputs))
            assert 'extract_feat' in ours.__dict__  # the outer patch stays
        assert 'extract_feat' not in ours.__dict__  # the class's again
        assert 'forward' not in ours.bbox_head.__dict__
    finally:
        handle.remove()
    assert seen == [torch.bfloat16]
    assert all(t.dtype == torch.float32 for level in outs for t in level)


def test_whole_check_on_cpu(tmp_path):
    """The tool end to end on the CPU: every check runs and passes."""
    tool = load_tool('analysis_tools/gpu_check.py')
    out = tmp_path / 'gpu_check.json'
    assert tool.main(['--device', 'cpu', '--out', str(out)]) == 0
    results = json.loads(out.read_text())
    for name in ('nms', 'equivalence', 'amp', 'speed', 'deploy'):
        assert results[name]['passed'], (name, results[name])
    assert 'CPU:' in results['machine']
    # A CPU copy of the CPU model: the same numbers exactly.
    assert results['equivalence']['max_rel_head_output'] == 0
    amp = results['amp']['runs']
    assert set(amp) == {'fp32', 'bf16'}
    assert all(np.isfinite(amp[d]['losses']).all() for d in amp)
    race = results['speed']['inference']['batch1_fp32']
    assert set(race['images_per_s']) == {'mmdet', 'mmdet_channels_last',
                                         'ours'}
    assert all(v > 0 for v in race['images_per_s'].values())
    best = max(race['images_per_s']['mmdet'],
               race['images_per_s']['mmdet_channels_last'])
    assert race['ours_vs_best_mmdet'] == pytest.approx(
        race['images_per_s']['ours'] / best)
    assert results['deploy']['deployed_vs_torch']['share'] >= 0.99


def test_cuda_device_without_gpu_is_a_clear_error(capsys):
    if torch.cuda.is_available():
        pytest.skip('a GPU is present')
    tool = load_tool('analysis_tools/gpu_check.py')
    with pytest.raises(SystemExit):
        tool.main(['--device', 'cuda'])
    assert 'sees no CUDA device' in capsys.readouterr().err


@pytest.mark.cuda
def test_cuda_nms_equals_cpu():
    assert gpu_check.check_nms('cuda')['passed']


@pytest.mark.cuda
def test_cuda_equivalence_and_deploy():
    assert gpu_check.check_equivalence('cuda', batch=2)['passed']
    assert gpu_check.check_deploy('cuda')['passed']
