"""SSD300 on VOC07+12 trainval, tested on VOC07 test (11-point mAP: 74.3
in table 1, 77.2 in table 6 with the zoom-out augmentation of section 3.6).

Caffe's ``ssd_pascal.py``: 20 classes, default-box scales s in [0.2, 0.9]
(section 2.2) with conv4_3 at 0.1.
"""
_base_ = [
    '../_base_/models/ssd300.py', '../_base_/recipes/voc0712.py',
    '../_base_/default_runtime.py'
]

model = dict(
    bbox_head=dict(
        num_classes=_base_.voc_num_classes,
        prior_generator=dict(scale_range=(0.2, 0.9))))

train_pipeline = list(_base_.train_steps.values())
test_pipeline = list(_base_.test_steps.values())
train_dataloader = dict(dataset=dict(dataset=dict(datasets=[
    dict(split, pipeline=train_pipeline) for split in _base_.voc_trainval])))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
