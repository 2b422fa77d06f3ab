"""SSD300 on COCO 2017 (paper, trainval35k -> test-dev: 23.2 AP in table 5,
25.1 AP in table 6 with the zoom-out augmentation of section 3.6).

The model base's defaults are already COCO's (80 classes, Caffe's
``ssd_coco.py`` scales s in [0.15, 0.9], conv4_3 at 0.07).
"""
_base_ = [
    '../_base_/models/ssd300.py', '../_base_/recipes/coco.py',
    '../_base_/default_runtime.py'
]

train_pipeline = list(_base_.train_steps.values())
test_pipeline = list(_base_.test_steps.values())
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
