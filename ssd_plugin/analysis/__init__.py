"""Analyses behind ``tools/analysis_tools``: default-box coverage and fitting
(:mod:`.default_boxes`, a config's in :mod:`.coverage`, drawn by
:mod:`.coverage_plots`), annotation checks (:mod:`.dataset_check`, a
config's in :mod:`.config_check`), and a config against its MMDetection
counterpart (:mod:`.mmdet_comparison`).

Not imported by ``ssd_plugin`` itself: nothing here is a registered
component, and training does not need it.
"""
