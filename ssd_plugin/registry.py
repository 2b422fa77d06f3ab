"""ssd_plugin's registries: children of MMDetection's, scope ``ssd_plugin``.

As in MMYOLO, a name is looked up here first, then in mmdet's; from mmdet's
scope ours are ``ssd_plugin.X``; switching to our scope imports this module,
hence the package (registration). Parents without mmdet 3.3 counterparts
are mmengine's.
"""
from mmdet import registry as mmdet_registry
from mmengine import registry as mmengine_registry
from mmengine.registry import Registry


def _child(parent: Registry, *locations: str) -> Registry:
    """A registry in scope ``ssd_plugin`` under ``parent``, filled by the
    modules ``locations``."""
    # mmengine's fallback to a parent reads its table without importing the
    # parent's lazy ``_locations`` (e.g. mmdet's hooks): import them too.
    return Registry(parent.name, parent=parent, scope='ssd_plugin',
                    locations=[*locations, *parent._locations])


RUNNERS = _child(mmdet_registry.RUNNERS)
RUNNER_CONSTRUCTORS = _child(mmdet_registry.RUNNER_CONSTRUCTORS)
LOOPS = _child(mmdet_registry.LOOPS)
HOOKS = _child(mmdet_registry.HOOKS, 'ssd_plugin.engine')
STRATEGIES = _child(mmengine_registry.STRATEGIES)

DATASETS = _child(mmdet_registry.DATASETS, 'ssd_plugin.datasets')
DATA_SAMPLERS = _child(mmdet_registry.DATA_SAMPLERS)
TRANSFORMS = _child(mmdet_registry.TRANSFORMS,
                    'ssd_plugin.datasets.transforms')

MODELS = _child(mmdet_registry.MODELS, 'ssd_plugin.models')
MODEL_WRAPPERS = _child(mmdet_registry.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child(mmdet_registry.WEIGHT_INITIALIZERS)

OPTIMIZERS = _child(mmdet_registry.OPTIMIZERS)
OPTIM_WRAPPERS = _child(mmdet_registry.OPTIM_WRAPPERS, 'ssd_plugin.engine')
OPTIM_WRAPPER_CONSTRUCTORS = _child(mmdet_registry.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child(mmdet_registry.PARAM_SCHEDULERS)

METRICS = _child(mmdet_registry.METRICS)
EVALUATOR = _child(mmdet_registry.EVALUATOR)

TASK_UTILS = _child(mmdet_registry.TASK_UTILS, 'ssd_plugin.models')

VISUALIZERS = _child(mmdet_registry.VISUALIZERS)
VISBACKENDS = _child(mmdet_registry.VISBACKENDS)
LOG_PROCESSORS = _child(mmdet_registry.LOG_PROCESSORS)
INFERENCERS = _child(mmengine_registry.INFERENCERS)
FUNCTIONS = _child(mmengine_registry.FUNCTIONS)
