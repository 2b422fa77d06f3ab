"""SSD's VOC07+12 recipe: mmdet's data and Caffe's 120k-iteration solver.

Trains on VOC07+12 trainval, evaluates on VOC07 test with the 11-point mAP
the paper reports (``eval_mode='11points'``). A leaf config puts a model
base's pipelines in the loaders (``voc_trainval``: the two train splits).
"""
_base_ = [
    'mmdet::_base_/datasets/voc0712.py', '../schedules/ssd_sgd.py'
]

# Our checked dataset (errors that name missing files), built with its
# pipeline in our scope. mmdet's VOC base marks ground truth under 32 px as
# ignored (bbox_min_size), which drops it from matching; Caffe trains on
# every box, so keep them.
dataset_type = 'CheckedVOCDataset'
voc_num_classes = 20  # the leaves give it to their heads
voc_trainval = [
    dict(split, _scope_='ssd_plugin', type=dataset_type,
         filter_cfg=dict(filter_empty_gt=True, min_size=32))
    for split in _base_.train_dataloader.dataset.dataset.datasets
]
train_dataloader = dict(
    _base_.train_loader, dataset=dict(dataset=dict(datasets=voc_trainval)))
val_dataloader = dict(dataset=dict(_scope_='ssd_plugin', type=dataset_type))
test_dataloader = val_dataloader
val_evaluator = dict(type='VOCMetric', metric='mAP', eval_mode='11points')
test_evaluator = val_evaluator
