"""ssd_plugin's registries: children of MMDetection's, scope ``ssd_plugin``.

As in MMYOLO, every registry the plugin or its configs touch has a child here.
Under ``default_scope='ssd_plugin'`` a name is looked up in our registry first
and falls back to MMDetection's (then MMEngine's), so our configs can use
``SingleStageDetector`` or ``CocoMetric`` unqualified. From MMDetection's own
scope our parts are reached as ``ssd_plugin.<Name>`` once ``ssd_plugin`` is
imported (``custom_imports``). MMEngine imports ``ssd_plugin.registry`` when it
switches to our scope; importing it imports the package, which registers
everything (see ``ssd_plugin/__init__.py``).

``STRATEGIES``, ``INFERENCERS`` and ``FUNCTIONS`` have no MMDetection
counterpart in mmdet 3.3, so their parents are MMEngine's roots.
"""
from mmdet import registry as mmdet_registry
from mmengine import registry as mmengine_registry
from mmengine.registry import Registry

_SCOPE = 'ssd_plugin'

RUNNERS = Registry('runner', parent=mmdet_registry.RUNNERS, scope=_SCOPE)
RUNNER_CONSTRUCTORS = Registry(
    'runner constructor', parent=mmdet_registry.RUNNER_CONSTRUCTORS, scope=_SCOPE)
LOOPS = Registry('loop', parent=mmdet_registry.LOOPS, scope=_SCOPE)
HOOKS = Registry(
    'hook', parent=mmdet_registry.HOOKS, scope=_SCOPE,
    locations=['ssd_plugin.engine'])
STRATEGIES = Registry('strategy', parent=mmengine_registry.STRATEGIES, scope=_SCOPE)

DATASETS = Registry(
    'dataset', parent=mmdet_registry.DATASETS, scope=_SCOPE,
    locations=['ssd_plugin.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler', parent=mmdet_registry.DATA_SAMPLERS, scope=_SCOPE)
TRANSFORMS = Registry(
    'transform', parent=mmdet_registry.TRANSFORMS, scope=_SCOPE,
    locations=['ssd_plugin.datasets.transforms'])

MODELS = Registry(
    'model', parent=mmdet_registry.MODELS, scope=_SCOPE,
    locations=['ssd_plugin.models'])
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=mmdet_registry.MODEL_WRAPPERS, scope=_SCOPE)
WEIGHT_INITIALIZERS = Registry(
    'weight initializer', parent=mmdet_registry.WEIGHT_INITIALIZERS, scope=_SCOPE)

OPTIMIZERS = Registry('optimizer', parent=mmdet_registry.OPTIMIZERS, scope=_SCOPE)
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=mmdet_registry.OPTIM_WRAPPERS, scope=_SCOPE)
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=mmdet_registry.OPTIM_WRAPPER_CONSTRUCTORS, scope=_SCOPE)
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=mmdet_registry.PARAM_SCHEDULERS, scope=_SCOPE)

METRICS = Registry('metric', parent=mmdet_registry.METRICS, scope=_SCOPE)
EVALUATOR = Registry('evaluator', parent=mmdet_registry.EVALUATOR, scope=_SCOPE)

TASK_UTILS = Registry(
    'task util', parent=mmdet_registry.TASK_UTILS, scope=_SCOPE,
    locations=['ssd_plugin.models'])

VISUALIZERS = Registry(
    'visualizer', parent=mmdet_registry.VISUALIZERS, scope=_SCOPE)
VISBACKENDS = Registry(
    'vis_backend', parent=mmdet_registry.VISBACKENDS, scope=_SCOPE)
LOG_PROCESSORS = Registry(
    'log_processor', parent=mmdet_registry.LOG_PROCESSORS, scope=_SCOPE)
INFERENCERS = Registry(
    'inferencer', parent=mmengine_registry.INFERENCERS, scope=_SCOPE)
FUNCTIONS = Registry('function', parent=mmengine_registry.FUNCTIONS, scope=_SCOPE)
