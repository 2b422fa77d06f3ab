"""ssd_plugin: SSD (Liu et al., ECCV 2016) as a plugin for MMDetection 3.x.

Importing the package registers every component in ``ssd_plugin.registry``
(scope ``ssd_plugin``), by explicit imports, and the weights-only checkpoint
loader of ``ssd_plugin.compat``.
"""
import warnings

from . import compat  # noqa: F401  (registers the checkpoint loader)
from . import datasets  # noqa: F401
from . import engine  # noqa: F401
from . import models  # noqa: F401
from .version import __version__

# mmengine 0.10.7 imports pkg_resources to find a package's configs (each
# ``mmdet::`` base of ours) and setuptools warns that this API is deprecated,
# twice per process, before any output of ours: that one warning is hidden
# for every tool and script that imports the plugin before reading a config.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated',
                        category=UserWarning)

__all__ = ['__version__']
