"""Every config under configs/ (but _base_) loads, builds and runs.

Parametrised by a glob, so configs added later are covered. Each builds its
model under our default scope and runs one loss and one predict forward on a
fake one-image batch at the config's input size; the data pipelines are
checked to be SSD's at that size and to build in the scope the runner uses.
"""
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.structures import InstanceData

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (ROOT / 'configs').rglob('*.py')
                 if '_base_' not in p.relative_to(ROOT / 'configs').parts)
IDS = [str(p.relative_to(ROOT / 'configs')) for p in CONFIGS]


@pytest.fixture(scope='module', params=CONFIGS, ids=IDS)
def cfg(request) -> Config:
    return Config.fromfile(str(request.param))


def test_there_are_configs():
    names = {p.name for p in CONFIGS}
    assert {'ssd300_coco.py', 'ssd512_coco.py', 'ssd300_voc0712.py',
            'ssd512_voc0712.py'} <= names


def datasets(dataset_cfg):
    """The leaf datasets (those with a pipeline) under wrappers."""
    if 'datasets' in dataset_cfg:
        return [d for sub in dataset_cfg.datasets for d in datasets(sub)]
    if 'dataset' in dataset_cfg:
        return datasets(dataset_cfg.dataset)
    return [dataset_cfg]


def fake_batch(size: int) -> dict:
    """Two images: one with an object, one without (BatchNorm on a 1x1 map
    needs more than one value per channel in train mode)."""
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    boxes = [torch.tensor([[0.1, 0.15, 0.7, 0.8]]) * size, torch.zeros(0, 4)]
    for box in boxes:
        inputs.append(torch.randint(0, 256, (3, size, size),
                                    dtype=torch.uint8, generator=gen))
        sample = DetDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size),
            scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(
            bboxes=box, labels=torch.ones(len(box), dtype=torch.long))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_config_scope_and_imports(cfg):
    assert cfg.default_scope == 'ssd_plugin'
    assert cfg.custom_imports == dict(imports=['ssd_plugin'],
                                      allow_failed_imports=False)
    # Built in our scope whatever scope the caller is in (DetInferencer's
    # default 'mmdet', mmdet's analysis tools).
    assert cfg.model._scope_ == 'ssd_plugin'
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        for split in datasets(loader.dataset):
            assert split._scope_ == 'ssd_plugin'
            assert split.type in ('CheckedCocoDataset', 'CheckedVOCDataset')


ALL_CONFIG_FILES = sorted((ROOT / 'configs').rglob('*.py'))


@pytest.mark.parametrize(
    'path', ALL_CONFIG_FILES,
    ids=[str(p.relative_to(ROOT / 'configs')) for p in ALL_CONFIG_FILES])
def test_config_file_names_bare_and_no_resets(path):
    """Our names and mmdet's are bare (MMYOLO's convention, one scope); no
    leaf resets a base value to make room for another."""
    text = path.read_text()
    assert not re.search(r"type='(ssd_plugin|mmdet)\.", text)
    if '_base_' not in path.relative_to(ROOT / 'configs').parts:
        for reset in ('_delete_', '{{', 'scale_range=None',
                      'first_level=None', 'strides=None'):
            assert reset not in text, reset


def test_config_model_builds_and_runs(cfg):
    from ssd_plugin.registry import MODELS
    init_default_scope('ssd_plugin')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    generator = model.bbox_head.prior_generator
    assert generator.input_size == (cfg.input_size, ) * 2
    with torch.no_grad():  # the loss values suffice; saves memory
        data = model.data_preprocessor(fake_batch(cfg.input_size), True)
        losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_bbox'}
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(fake_batch(cfg.input_size), False)
        results = model(**data, mode='predict')
    assert len(results) == 2
    for result in results:
        dets = result.pred_instances
        assert len(dets) <= cfg.model.test_cfg.max_per_img
        assert dets.bboxes.shape == (len(dets), 4)


def test_config_pipelines_are_ssd_at_input_size(cfg):
    size = (cfg.input_size, cfg.input_size)
    for split in datasets(cfg.train_dataloader.dataset):
        steps = [t.type.split('.')[-1] for t in split.pipeline]
        assert steps == [
            'LoadImageFromFile', 'LoadAnnotations',
            'RandomPhotometricDistort', 'RandomZoomOut', 'RandomIoUCrop',
            'Resize', 'RandomFlip', 'PackDetInputs']
        resize = split.pipeline[5]
        assert tuple(resize.scale) == size and not resize.keep_ratio
        zoom = split.pipeline[3]
        # BGR fill: the preprocessor's RGB mean reversed
        assert list(zoom.mean) == cfg.model.data_preprocessor.mean[::-1]
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        (split, ) = datasets(loader.dataset)
        # mmdet's inference APIs replace step 0 by their array loader.
        assert [t.type for t in split.pipeline[:2]] == [
            'LoadImageFromFile', 'ToBGRImage']
        resize = [t for t in split.pipeline if t.type == 'Resize']
        assert [tuple(r.scale) for r in resize] == [size]
        assert 'scale_factor' in split.pipeline[-1].meta_keys


def test_config_keeps_small_ground_truth(cfg):
    # mmdet's VOC base would ignore boxes under 32 px (bbox_min_size).
    for split in datasets(cfg.train_dataloader.dataset):
        assert 'bbox_min_size' not in split.get('filter_cfg', {})


def synthetic_sample() -> dict:
    """What the load steps give for a 120x160 image with one box."""
    from mmdet.structures.bbox import HorizontalBoxes
    rng = np.random.default_rng(0)
    return dict(
        img=rng.integers(0, 256, (120, 160, 3), dtype=np.uint8),
        img_shape=(120, 160), ori_shape=(120, 160), img_id=0,
        img_path='fake.jpg',
        instances=[dict(bbox=[20., 10., 90., 100.], bbox_label=1,
                        ignore_flag=0)],
        gt_bboxes=HorizontalBoxes(torch.tensor([[20., 10., 90., 100.]])),
        gt_bboxes_labels=np.array([1]), gt_ignore_flags=np.array([False]))


def test_config_every_split_pipeline_runs_in_its_scope(cfg):
    """Each dataset's pipeline, built in the scope the runner builds it in,
    runs (after its load steps) on a synthetic image and gives an input of
    the model's size."""
    from mmcv.transforms import Compose
    size = (3, cfg.input_size, cfg.input_size)
    train = datasets(cfg.train_dataloader.dataset)
    tests = datasets(cfg.val_dataloader.dataset) + datasets(
        cfg.test_dataloader.dataset)
    for split, skip in [(t, 2) for t in train] + [(t, 1) for t in tests]:
        with DefaultScope.overwrite_default_scope(split._scope_):
            pipeline = Compose(split.pipeline[skip:])
        torch.manual_seed(0)
        packed = pipeline(synthetic_sample())
        assert tuple(packed['inputs'].shape) == size, split


PAPER_CONFIGS = [p for p in CONFIGS if p.parent.name == 'ssd']


@pytest.mark.parametrize('path', PAPER_CONFIGS,
                         ids=[p.name for p in PAPER_CONFIGS])
def test_paper_config_schedule(path):
    """The paper's recipes keep Caffe's solver (section 3)."""
    cfg = Config.fromfile(str(path))
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.auto_scale_lr.base_batch_size == 32
    assert cfg.train_dataloader.batch_size == 32
    assert cfg.optim_wrapper.optimizer.lr == 1e-3
    steps = cfg.param_scheduler[-1]
    assert steps.end == cfg.train_cfg.max_iters
    assert all(0 < m < cfg.train_cfg.max_iters for m in steps.milestones)
    # Caffe's lr_mult 2 / decay_mult 0 on biases
    from mmengine.optim import build_optim_wrapper
    init_default_scope('ssd_plugin')
    conv = torch.nn.Conv2d(1, 1, 1)
    wrapper = build_optim_wrapper(conv, cfg.optim_wrapper)
    groups = {id(g['params'][0]): g for g in wrapper.param_groups}
    bias, weight = groups[id(conv.bias)], groups[id(conv.weight)]
    assert bias['lr'] == 2e-3 and bias['weight_decay'] == 0
    assert weight['lr'] == 1e-3 and weight['weight_decay'] == 5e-4


def test_inference_detector_on_a_numpy_image():
    from mmdet.apis import inference_detector, init_detector
    model = init_detector(
        str(ROOT / 'configs/ssd/ssd300_coco.py'), checkpoint=None,
        device='cpu')
    image = np.random.default_rng(0).integers(0, 256, (240, 320, 3),
                                              dtype=np.uint8)
    result = inference_detector(model, image)
    dets = result.pred_instances
    assert len(dets) <= 200
    if len(dets):
        # Rescaled to the 320x240 original image.
        assert dets.bboxes[:, 0::2].max() <= 320 + 1e-3
        assert dets.bboxes[:, 1::2].max() <= 240 + 1e-3


# Caffe's default-box sizes (pixels): ssd_pascal_512.py (min_ratio 15,
# max_ratio 90, conv4_3 at 7%), and SSDLite's explicit lists, which win over
# the scale range the base sets.
SIZES = {
    'ssd/ssd512_voc0712.py': (
        [35.84, 76.8, 153.6, 230.4, 307.2, 384.0, 460.8],
        [76.8, 153.6, 230.4, 307.2, 384.0, 460.8, 537.6]),
    'ssdlite/ssdlite_mobilenetv2_320_coco.py': (
        [48, 100, 150, 202, 253, 304], [100, 150, 202, 253, 304, 320]),
}


@pytest.mark.parametrize('name', list(SIZES))
def test_config_default_box_sizes(name):
    from ssd_plugin.registry import TASK_UTILS
    cfg = Config.fromfile(str(ROOT / 'configs' / name))
    generator = TASK_UTILS.build(cfg.model.bbox_head.prior_generator)
    min_sizes, max_sizes = SIZES[name]
    assert generator.min_sizes == pytest.approx(min_sizes)
    assert generator.max_sizes == pytest.approx(max_sizes)
