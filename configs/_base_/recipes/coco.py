"""SSD's COCO recipe: mmdet's COCO 2017 data and Caffe's 400k solver.

Caffe's ``ssd_coco.py`` runs 400k iterations at batch 32 with LR x0.1 at
280k and 360k (its ``stepvalue``; the paper's own COCO run, section 3.4, was
160k + 40k + 40k). Evaluation is mmdet's bbox ``CocoMetric``. Model-agnostic:
a leaf config pairs it with a model base and puts that base's pipelines in
the loaders.
"""
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py', '../schedules/ssd_sgd_120k.py'
]

max_iters = 400000
train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1], end=max_iters,
         milestones=[280000, 360000]),
]

train_dataloader = dict(
    batch_size=_base_.batch_size,
    num_workers=4,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None)  # fixed-size inputs: no aspect-ratio grouping
