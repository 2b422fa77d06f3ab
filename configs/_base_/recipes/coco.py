"""SSD's COCO recipe: mmdet's COCO 2017 data and the paper's COCO schedule.

Section 3.4: LR 1e-3 for 160k iterations, then 1e-4 and 1e-5 for 40k each,
at batch 32: 240k iterations with LR x0.1 at 2/3 and 5/6, the same rule as
the VOC solver, so only the length changes here. (Caffe's later
``ssd_coco.py`` ran 400k with steps at 280k and 360k; set
``max_iters=400000`` and those milestones to reproduce that instead.)
A leaf config puts a model base's pipelines in the loaders.
"""
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py', '../schedules/ssd_sgd.py'
]

max_iters = 240000
train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1], end=max_iters,
         milestones=[max_iters * 2 // 3, max_iters * 5 // 6]),
]

# Our checked dataset (errors that name missing files), built with its
# pipeline in our scope.
dataset_type = 'CheckedCocoDataset'
train_dataloader = dict(
    _base_.train_loader, dataset=dict(_scope_='ssd_plugin', type=dataset_type))
val_dataloader = dict(dataset=dict(_scope_='ssd_plugin', type=dataset_type))
test_dataloader = val_dataloader
