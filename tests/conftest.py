"""Shared fixtures: tiny synthetic detection sets, configs that train on them.

The sets are written once per session by the shapes generator; the configs
inherit the real paper configs (``configs/ssd/*.py``) and override only the
data paths, the class count, loader sizes and the run length.
"""
import importlib.util
import os.path as osp
from types import ModuleType, SimpleNamespace
from typing import Callable

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def pytest_collection_modifyitems(config, items) -> None:
    """Skip the tests marked ``cuda`` on a machine without a CUDA GPU."""
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA GPU')
    for item in items:
        if item.get_closest_marker('cuda') is not None:
            item.add_marker(skip)


SSD_CONFIGS = ('ssd300_coco', 'ssd512_coco', 'ssd300_voc0712',
               'ssd512_voc0712')


def load_tool(path: str) -> ModuleType:
    """``tools/<path>`` as a module, its folder first on ``sys.path`` while it
    loads (as when the script runs), under a name of its own (``tools/test.py``
    is not the standard library's ``test``). Tests import it from here."""
    path = osp.join(REPO_ROOT, 'tools', path)
    name = 'ssd_tools_' + osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(osp.dirname(path))
        spec.loader.exec_module(module)
    return module

# Appended to every tiny config: a short run with every check and progress
# hook of ssd_plugin.engine, logging every iteration.
_RUN = '''
model = dict(bbox_head=dict(num_classes={num_classes}))
train_cfg = dict(max_iters={max_iters}, val_interval={val_interval})
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval={checkpoint_interval}, by_epoch=False))
custom_hooks = [
    dict(type='NumClassesCheckHook'),
    dict(type='FiniteLossCheckHook'),
    dict(type='EvalProgressBarHook'),
]
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
env_cfg = dict(cudnn_benchmark=False)
'''
_LOADER = ('batch_size={batch_size}, num_workers=0, persistent_workers=False')
_COCO = '''
_base_ = {base!r}
classes = ('circle', 'square', 'triangle', 'star')
train_dataloader = dict(
    {loader},
    dataset=dict(type='CheckedCocoDataset', data_root={root!r},
                 ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='train/'),
                 metainfo=dict(classes=classes)))
val_dataloader = dict(
    {loader},
    dataset=dict(type='CheckedCocoDataset', data_root={root!r},
                 ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'), metainfo=dict(classes=classes),
                 indices={val_images}))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={root!r} + '/annotations/instances_val.json')
test_evaluator = val_evaluator
'''
_VOC = '''
_base_ = {base!r}
classes = ('circle', 'square', 'triangle', 'star')
voc = dict(type='CheckedVOCDataset', data_root={root!r} + '/VOCdevkit/',
           metainfo=dict(classes=classes))
train_dataloader = dict(
    {loader},
    dataset=dict(times=1, dataset=dict(datasets=[
        dict(split, **voc)
        for split in _base_.train_dataloader.dataset.dataset.datasets])))
val_dataloader = dict({loader}, dataset=dict(voc, indices={val_images}))
test_dataloader = val_dataloader
'''


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory) -> str:
    """A tiny shapes set in both layouts: 8 train and 4 val 64x64 images.

    COCO: ``{root}/{train,val}/`` and ``{root}/annotations/``; VOC:
    ``{root}/VOCdevkit/VOC2007`` (4 trainval + 4 test) and ``VOC2012``
    (4 trainval). Tests must not modify it (copy it first).
    """
    from ssd_plugin.testing.shapes import make_shapes
    root = str(tmp_path_factory.mktemp('shapes'))
    make_shapes(root, num_train=8, num_val=4, img_size=64, fmt='both',
                seed=0, progress=False)
    return root


@pytest.fixture(scope='session')
def tiny_config(tmp_path_factory, shapes_root) -> Callable[..., str]:
    """Factory: ``tiny_config('ssd300_coco', **overrides) -> config path``.

    The config trains ``max_iters`` (default 2) iterations on
    :func:`shapes_root`, checkpoints every ``checkpoint_interval`` and
    validates at the end on the first ``val_images`` val images (None: all
    4; the test loader is the same); ``num_classes`` defaults to the set's 4
    and ``root`` to :func:`shapes_root`. ``extra`` is appended verbatim
    (a top-level name it assigns replaces the one above, unmerged).
    """
    folder = tmp_path_factory.mktemp('configs')

    def make(name: str, max_iters: int = 2, val_interval: int = 0,
             checkpoint_interval: int = 0, batch_size: int = 1,
             num_classes: int = 4, root: str = None,
             val_images: int = None, extra: str = '') -> str:
        base = osp.join(REPO_ROOT, 'configs', 'ssd', f'{name}.py')
        template = _VOC if 'voc' in name else _COCO
        text = template.format(
            base=base, root=root or shapes_root,
            loader=_LOADER.format(batch_size=batch_size),
            val_images=val_images)
        text += _RUN.format(
            num_classes=num_classes, max_iters=max_iters,
            val_interval=val_interval or max_iters,
            checkpoint_interval=checkpoint_interval or max_iters) + extra
        path = folder / f'{name}_{len(list(folder.iterdir()))}.py'
        path.write_text(text)
        return str(path)

    return make



# A leaf config of the quickstart on a data root, one short epoch.
_QUICKSTART_LEAF = '''_base_ = [{base!r}]
train_dataloader = dict(batch_size=4, dataset=dict(data_root={root!r}{train}))
val_dataloader = dict(dataset=dict(data_root={root!r}))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={root!r} + 'annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1, val_interval=10)
default_hooks = dict(checkpoint=dict(interval=10), logger=dict(interval=1),
                     visualization=dict(draw=False))
'''


@pytest.fixture
def quickstart_leaf() -> Callable[..., str]:
    """``leaf(folder, data_root, train_ann=None)``: writes ``folder/leaf.py``,
    the quickstart config on ``data_root`` for one short epoch; its path."""
    base = osp.join(REPO_ROOT, 'configs', 'quickstart', 'ssd_shapes.py')

    def leaf(folder, data_root: str, train_ann: str = None) -> str:
        train = f', ann_file={train_ann!r}' if train_ann else ''
        path = osp.join(str(folder), 'leaf.py')
        with open(path, 'w') as f:
            f.write(_QUICKSTART_LEAF.format(
                base=base, root=data_root.rstrip('/') + '/', train=train))
        return path

    return leaf


# --- a deployed model: the quickstart SSD (input 128) exported to ONNX -------
QUICKSTART_CONFIG = osp.join(REPO_ROOT, 'configs', 'quickstart',
                             'ssd_shapes.py')


def sample_images():
    """BGR: a photograph (matplotlib's grace_hopper.jpg, 600x512) and five
    random non-square images."""
    import cv2
    import matplotlib
    import numpy as np
    photo = osp.join(osp.dirname(matplotlib.__file__), 'mpl-data',
                     'sample_data', 'grace_hopper.jpg')
    rng = np.random.default_rng(0)
    shapes = [(240, 320), (411, 257), (128, 300), (333, 500), (97, 131)]
    return [cv2.imread(photo)] + [
        rng.integers(0, 256, (*s, 3), dtype=np.uint8) for s in shapes]


def pipeline_batch(cfg, imgs):
    """The config's test pipeline on BGR arrays, collated (mmengine)."""
    from mmcv.transforms import Compose
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('ssd_plugin'):
        pipeline = cfg.test_dataloader.dataset.pipeline.copy()
        pipeline[0] = dict(type='mmdet.LoadImageFromNDArray')
        pipeline = Compose(pipeline)
        return pseudo_collate([pipeline(dict(img=im, img_id=i))
                               for i, im in enumerate(imgs)])


def spread_head(model, image) -> None:
    """Random head weights spread to trained-like scores on ``image``
    (``calibrate_head``): class logits of std 1.5 per level, background +3,
    unit offsets (hundreds of detections of every class and score come
    out)."""
    from ssd_plugin.utils.mmdet_ssd import calibrate_head
    from ssd_plugin.utils.network_input import network_inputs
    calibrate_head(model, network_inputs(model.cfg, [image])[0], 1.5, 3.0)


@pytest.fixture(scope='session')
def quickstart_onnx(tmp_path_factory):
    """The quickstart model with :func:`spread_head` weights, exported by
    ``tools/deployment/export_onnx.py``: ``model`` (torch, eval),
    ``checkpoint``, ``end2end`` (float input), ``raw``, ``uint8``
    (end2end, uint8 BGR input). Tests must not modify the files."""
    import torch
    from mmdet.apis import init_detector
    folder = tmp_path_factory.mktemp('deploy')
    torch.manual_seed(0)
    model = init_detector(QUICKSTART_CONFIG, None, device='cpu').eval()
    spread_head(model, sample_images()[0])
    checkpoint = str(folder / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(
                        classes=model.cfg.metainfo.classes))), checkpoint)
    model = init_detector(QUICKSTART_CONFIG, checkpoint, device='cpu').eval()
    tool = load_tool('deployment/export_onnx.py')
    files = {name: str(folder / f'{name}.onnx')
             for name in ('end2end', 'raw', 'uint8')}
    meta = tool.main([QUICKSTART_CONFIG, checkpoint, files['end2end']])
    assert meta['ssd_plugin.input_size'] == '128,128'
    tool.main([QUICKSTART_CONFIG, checkpoint, files['raw'], '--mode', 'raw'])
    tool.main([QUICKSTART_CONFIG, checkpoint, files['uint8'], '--input',
               'uint8'])
    return SimpleNamespace(model=model, checkpoint=checkpoint, **files)


def avx2_library(folder) -> str:
    """The CPUID mask library (``ssd_plugin.analysis.cpu_mask``) built in
    ``folder``, or skip where it cannot work here (not Linux on x86-64, no
    compiler, no CPUID faulting)."""
    import platform
    import subprocess
    import sys
    from ssd_plugin.analysis.cpu_mask import build_library, masked_environ
    if platform.system() != 'Linux' or platform.machine() != 'x86_64':
        pytest.skip('CPUID masking needs Linux on x86-64')
    try:
        library = build_library(str(folder))
    except FileNotFoundError as error:
        pytest.skip(str(error))
    probe = subprocess.run([sys.executable, '-c', 'pass'],
                           env=masked_environ(library), capture_output=True)
    if probe.returncode == 70:  # ARCH_SET_CPUID refused
        pytest.skip('this CPU or kernel has no CPUID faulting')
    return library
