"""ssd_plugin: SSD (Liu et al., ECCV 2016) as a plugin for MMDetection 3.x.

Importing the package registers every component in ``ssd_plugin.registry``
(scope ``ssd_plugin``), by explicit imports, and the weights-only checkpoint
loader of ``ssd_plugin.compat``.
"""
from . import compat  # noqa: F401  (registers the checkpoint loader)
from . import datasets  # noqa: F401
from . import engine  # noqa: F401
from . import models  # noqa: F401
from .version import __version__

__all__ = ['__version__']
