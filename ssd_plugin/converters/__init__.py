"""Weight converters: a rename table per source and a strict load into the
model a config builds (:mod:`.common`); ``tools/model_converters/`` are
their command lines.

- :mod:`.from_mmdet`: MMDetection >= 2.14 SSD checkpoints.
- :mod:`.from_torchvision`: torchvision's ``ssd300_vgg16``.
- :mod:`.vgg16_reducedfc`: ImageNet VGG16 to the atrous backbone (section 3).

Not imported by ``ssd_plugin`` itself: training does not need it.
"""
