"""The benchmarks behind ``tools/analysis_tools/benchmark_*.py`` and
``tools/deployment/benchmark_runtime.py``: each tool parses its command line
and calls one ``run`` here.

- :mod:`.inference`: mmdet's SSD300 against ours, end to end (with
  ``deploy``, the deployed paths of :mod:`.deployed` too).
- :mod:`.runtime`: a deployed SSD through ``ssd_runtime``, every backend.
- :mod:`.augmentation`: SSD's train augmentation, ours against mmdet's.
- :mod:`.train_step`: training steps in bf16 autocast against float32.

Timing and agreement helpers: :mod:`ssd_plugin.utils.benchmark`. Not
imported by ``ssd_plugin`` itself.
"""
