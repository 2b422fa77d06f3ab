"""SSD512 on COCO 2017 (paper, trainval35k -> test-dev: 26.8 AP in table 5,
28.8 AP in table 6 with the zoom-out augmentation of section 3.6).

The model base's defaults are already COCO's (80 classes, Caffe's scales s
in [0.1, 0.9], conv4_3 at 0.04).
"""
_base_ = ['../_base_/models/ssd512.py', '../_base_/recipes/coco.py']

# The model base's pipelines.
train_pipeline = _base_.ssd_train_pipeline
test_pipeline = _base_.ssd_test_pipeline
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
