"""SSD512 on COCO 2017 (paper, trainval35k -> test-dev: 26.8 AP in table 5,
28.8 AP in table 6 with the zoom-out augmentation of section 3.6).

The model base's defaults are already COCO's (80 classes, Caffe's scales s
in [0.1, 0.9], conv4_3 at 0.04).
"""
_base_ = [
    '../_base_/models/ssd512.py', '../_base_/recipes/coco.py',
    '../_base_/default_runtime.py'
]

train_pipeline = list(_base_.train_steps.values())
test_pipeline = list(_base_.test_steps.values())
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
