"""Scoped registry look-ups: ours first, mmdet's as fallback, ours from mmdet."""
import subprocess
import sys

import mmdet.registry as mmdet_registry
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

import ssd_plugin
from ssd_plugin import registry

# Every public name and the registry it must live in (a floor: the tests
# below run over everything registered).
PUBLIC = [
    ('AtrousVGG', 'MODELS'),
    ('SSDNeck', 'MODELS'),
    ('SSDHead', 'MODELS'),
    ('MultiBoxLoss', 'MODELS'),
    ('DefaultBoxGenerator', 'TASK_UTILS'),
    ('RandomPhotometricDistort', 'TRANSFORMS'),
    ('RandomZoomOut', 'TRANSFORMS'),
    ('RandomIoUCrop', 'TRANSFORMS'),
    ('ToBGRImage', 'TRANSFORMS'),
    ('CheckedCocoDataset', 'DATASETS'),
    ('CheckedVOCDataset', 'DATASETS'),
    ('NumClassesCheckHook', 'HOOKS'),
    ('FiniteLossCheckHook', 'HOOKS'),
    ('EvalProgressBarHook', 'HOOKS'),
    ('CPUAmpOptimWrapper', 'OPTIM_WRAPPERS'),
]

REGISTRY_NAMES = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'STRATEGIES', 'DATASETS',
    'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS',
    'WEIGHT_INITIALIZERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
    'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'METRICS', 'EVALUATOR',
    'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS', 'LOG_PROCESSORS', 'INFERENCERS',
    'FUNCTIONS'
]


def test_version():
    assert isinstance(ssd_plugin.__version__, str)
    assert ssd_plugin.__version__.count('.') == 2


@pytest.mark.parametrize('name', REGISTRY_NAMES)
def test_every_registry_is_a_child_of_mmdet_or_mmengine(name):
    ours = getattr(registry, name)
    assert ours.scope == 'ssd_plugin'
    parent = getattr(mmdet_registry, name, None)
    if parent is not None:
        assert ours.parent is parent
    # Reachable from the root of its tree, which is how mmengine switches to
    # our scope (Registry.switch_scope_and_registry).
    root = ours._get_root_registry()
    assert root._search_child('ssd_plugin') is ours


def registered() -> list:
    """``(name, registry name)`` of everything registered in our registries."""
    return [(name, registry_name) for registry_name in REGISTRY_NAMES
            for name in getattr(registry, registry_name).module_dict]


REGISTERED = registered()


@pytest.mark.parametrize('name,registry_name', PUBLIC)
def test_public_name_is_registered(name, registry_name):
    assert (name, registry_name) in REGISTERED


# Ours by design, in place of mmdet's SSD parts (docs/faq.md: mmdet 3.3's
# SSDHead cannot predict); `mmdet.SSDHead` still reaches mmdet's.
REPLACES_MMDETS = {('SSDNeck', 'MODELS'), ('SSDHead', 'MODELS')}


@pytest.mark.parametrize('name,registry_name', REGISTERED)
def test_registered_name_is_ours_and_shadows_nothing_of_mmdets(
        name, registry_name):
    ours = getattr(registry, registry_name)
    assert ours.get(name).__module__.startswith('ssd_plugin.')
    parent = ours.parent
    with DefaultScope.overwrite_default_scope(parent.scope):
        theirs = parent.get(name)
    if (name, registry_name) in REPLACES_MMDETS:
        assert theirs is not None and theirs is not ours.get(name)
        with DefaultScope.overwrite_default_scope('ssd_plugin'):
            assert ours.get(f'mmdet.{name}') is theirs
    else:  # e.g. CocoDataset stays mmdet's in our scope
        assert theirs is None, (
            f'{name} shadows {parent.scope}\'s {registry_name} of that name')


@pytest.mark.parametrize('name,registry_name', REGISTERED)
def test_registered_name_reached_from_mmdet_scope(name, registry_name):
    ours = getattr(registry, registry_name)
    with DefaultScope.overwrite_default_scope('mmdet'):
        assert ours.parent.get(f'ssd_plugin.{name}') is ours.get(name)


def test_mmdet_dataset_names_reach_mmdets_datasets():
    with DefaultScope.overwrite_default_scope('ssd_plugin'):
        for name in ('CocoDataset', 'VOCDataset'):
            assert registry.DATASETS.get(name) is \
                mmdet_registry.DATASETS.get(name)


@pytest.mark.parametrize('name,registry_name', [
    ('ResNet', 'MODELS'), ('SingleStageDetector', 'MODELS'),
    ('DeltaXYWHBBoxCoder', 'TASK_UTILS'), ('MaxIoUAssigner', 'TASK_UTILS'),
    ('Resize', 'TRANSFORMS'), ('LVISV1Dataset', 'DATASETS'),
    ('CocoMetric', 'METRICS'), ('DetVisualizationHook', 'HOOKS'),
    ('DetLocalVisualizer', 'VISUALIZERS')
])
def test_mmdet_name_falls_back(name, registry_name):
    ours = getattr(registry, registry_name)
    theirs = getattr(mmdet_registry, registry_name)
    assert name not in ours.module_dict
    with DefaultScope.overwrite_default_scope('ssd_plugin'):
        assert ours.get(name) is theirs.get(name)


def test_fallback_in_a_fresh_process():
    """mmdet's lazily imported modules are found from our scope alone."""
    code = (
        'import ssd_plugin.registry as r\n'
        'from mmengine.registry import DefaultScope\n'
        "with DefaultScope.overwrite_default_scope('ssd_plugin'):\n"
        "    for reg, name in [(r.HOOKS, 'DetVisualizationHook'),\n"
        "                      (r.VISUALIZERS, 'DetLocalVisualizer'),\n"
        "                      (r.METRICS, 'VOCMetric'),\n"
        "                      (r.MODELS, 'RetinaNet')]:\n"
        "        assert reg.get(name) is not None, name\n")
    subprocess.run([sys.executable, '-c', code], check=True, timeout=120)


def test_mmdet_prefixed_name_from_our_scope():
    with DefaultScope.overwrite_default_scope('ssd_plugin'):
        assert registry.MODELS.get('mmdet.ResNet') is \
            mmdet_registry.MODELS.get('ResNet')


def test_plain_mmdet_config_builds_our_part(tmp_path):
    """A config under mmdet's scope names our parts as ``ssd_plugin.X``."""
    cfg_file = tmp_path / 'plain_mmdet.py'
    cfg_file.write_text(
        "default_scope = 'mmdet'\n"
        "custom_imports = dict(imports=['ssd_plugin'], "
        "allow_failed_imports=False)\n"
        "prior_generator = dict(type='ssd_plugin.DefaultBoxGenerator', "
        "input_size=300, scale_range=(0.15, 0.9), "
        "strides=[8, 16, 32, 64, 100, 300])\n")
    cfg = Config.fromfile(str(cfg_file))
    with DefaultScope.overwrite_default_scope('mmdet'):
        generator = mmdet_registry.TASK_UTILS.build(cfg.prior_generator)
    assert type(generator).__module__.startswith('ssd_plugin.')
    # 38^2*4 + 19^2*6 + 10^2*6 + 5^2*6 + 3^2*4 + 1*4 (paper: 8732 boxes)
    sizes = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
    boxes = generator.grid_priors(sizes, device='cpu')
    assert sum(len(b) for b in boxes) == 8732
