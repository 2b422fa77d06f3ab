"""ssd_plugin: SSD (Liu et al., ECCV 2016) as a plugin for MMDetection 3.x.

Importing the package registers every component in ``ssd_plugin.registry``
(scope ``ssd_plugin``) and installs the checkpoint-loading fix for
torch >= 2.6 (``ssd_plugin.compat``). Registration is by explicit imports.
"""
from . import compat  # noqa: F401  (registers the local checkpoint loader)
from . import datasets  # noqa: F401
from . import engine  # noqa: F401
from . import models  # noqa: F401
from .version import __version__

__all__ = ['__version__']
