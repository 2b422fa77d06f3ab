"""ssd_plugin's registries: children of MMDetection's, scope ``ssd_plugin``.

As in MMYOLO, every registry the plugin or its configs touch has a child here.
Under ``default_scope='ssd_plugin'`` a name is looked up in our registry first
and falls back to MMDetection's (then MMEngine's), so our configs can use
``SingleStageDetector`` or ``CocoMetric`` unqualified. From MMDetection's own
scope our parts are reached as ``ssd_plugin.<Name>`` once ``ssd_plugin`` is
imported (``custom_imports``). MMEngine imports ``ssd_plugin.registry`` when it
switches to our scope; importing it imports the package, which registers
everything (see ``ssd_plugin/__init__.py``).

mmengine's fallback to a parent reads the parent's table without importing
the parent's lazy ``locations``, so a child that never triggered mmdet's
imports would not see e.g. ``DetVisualizationHook``. Each child therefore
lists its own modules and then its parent's locations.

``STRATEGIES``, ``INFERENCERS`` and ``FUNCTIONS`` have no MMDetection
counterpart in mmdet 3.3, so their parents are MMEngine's roots.
"""
from mmdet import registry as mmdet_registry
from mmengine import registry as mmengine_registry
from mmengine.registry import Registry


def _child(parent: Registry, *locations: str) -> Registry:
    """A registry in scope ``ssd_plugin`` under ``parent``.

    Args:
        parent (Registry): mmdet's (or mmengine's) registry of that kind.
        *locations (str): Our modules that register into it.
    """
    # ``_locations`` is mmengine's list of modules to import lazily.
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
OPTIM_WRAPPERS = _child(mmdet_registry.OPTIM_WRAPPERS)
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
