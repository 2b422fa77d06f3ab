"""Dataset analyses behind ``tools/analysis_tools``: default-box coverage and
fitting (:mod:`.default_boxes`), annotation checks (:mod:`.dataset_check`).

Not imported by ``ssd_plugin`` itself: nothing here is a registered
component, and training does not need it.
"""
