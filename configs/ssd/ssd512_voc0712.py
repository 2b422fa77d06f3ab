"""SSD512 on VOC07+12 trainval, tested on VOC07 test (11-point mAP: 76.8
in table 1, 79.8 in table 6 with the zoom-out augmentation of section 3.6).

Caffe's ``ssd_pascal_512.py``: 20 classes, scales s in [0.15, 0.9] with
conv4_3 at (0.07, 0.15).
"""
_base_ = [
    '../_base_/models/ssd512.py', '../_base_/recipes/voc0712.py',
    '../_base_/default_runtime.py'
]

model = dict(
    bbox_head=dict(
        num_classes=_base_.voc_num_classes,
        prior_generator=dict(scale_range=(0.15, 0.9),
                             first_level=(0.07, 0.15))))

train_pipeline = list(_base_.train_steps.values())
test_pipeline = list(_base_.test_steps.values())
train_dataloader = dict(dataset=dict(dataset=dict(datasets=[
    dict(split, pipeline=train_pipeline) for split in _base_.voc_trainval])))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
