"""Quickstart: a small SSD trained from scratch on the synthetic shapes set.

The quickstart of docs/get_started.md (``make demo`` runs
``tools/quickstart.py``): it generates ``data/shapes`` with ``tools/dataset_converters/make_shapes.py``,
trains this config on the CPU in minutes and evaluates it with the COCO
metric. Everything SSD is ours (neck, default boxes, head, MultiBox loss,
augmentation); what differs from SSD300, and why:

* input 128 (the shapes images' size) instead of 300;
* a slim ResNet-18 (mmdet's, 32 base channels, BatchNorm, three stages:
  the neck makes the coarser levels, so layer4 would cost 13% of a step and
  2.1M parameters unused) instead of the atrous VGG16: VGG16 without
  ImageNet weights trains far too slowly from scratch on two CPU cores,
  BatchNorm lets a small net learn in minutes;
* five levels (16, 8, 4, 2, 1 for a 128 input) with steps input / map;
* AdamW with a cosine schedule over 28 epochs instead of Caffe's SGD
  recipe, for the same reason as the backbone;
* zoom-out up to 2x instead of 4x, and the crop's constraint 'all'
  (mmdet's) instead of Caffe's 'any' (see the train pipeline).
"""
_base_ = ['../_base_/models/ssd300.py', '../_base_/default_runtime.py']

input_size = 128
seed = 0  # randomness and the train sampler (tools/quickstart.py --seed)
data_root = 'data/shapes/'
# What tools/quickstart.py asks make_shapes for (128 px images, as the input).
shapes_set = dict(num_train=800, num_val=100, img_size=input_size, seed=0)
classes = ('circle', 'square', 'triangle', 'star')  # make_shapes' classes
level_channels = (64, 128, 128, 128, 128)

model = dict(
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=32,
        num_stages=3,  # layer4 would be unused: the neck makes the rest
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(1, 2),  # strides 8 and 16: 16x16 and 8x8 for 128
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch'),
    neck=dict(
        in_channels=(64, 128),
        out_channels=level_channels,
        bottleneck_channels=(64, 64, 64),
        kernel_sizes=(3, 3, 3),
        strides=(2, 2, 2),
        paddings=(1, 1, 1)),
    bbox_head=dict(
        num_classes=len(classes),
        in_channels=level_channels,
        prior_generator=dict(
            input_size=input_size,
            ratios=((2, ), (2, 3), (2, 3), (2, ), (2, )),
            min_sizes=(12, 26, 48, 76, 104),
            max_sizes=(26, 48, 76, 104, 132),
            strides=(8, 16, 32, 64, 128))))  # input / feature-map size

# SSD300's augmentation at this input size, with a zoom-out of at most 2x:
# the paper's 4x turns the smallest shapes (13 px) into 3 px, which a short
# schedule cannot learn (section 3.6 trains it 1.5x longer). The crop needs
# every box to keep the IoU (docs/design.md, "Which crop"): Caffe's 'any'
# zooms in on single objects, which a short schedule on few images pays for.
resize = dict(type='Resize', scale=(input_size, input_size), keep_ratio=False)
zoom_out = dict(_base_.train_steps.zoom_out, ratio_range=(1, 2))
crop = dict(_base_.train_steps.crop, constraint='all')
train_pipeline = list(
    dict(_base_.train_steps, resize=resize, zoom_out=zoom_out,
         crop=crop).values())
test_pipeline = list(dict(_base_.test_steps, resize=resize).values())

# Threads: on two cores, a loader process beside torch's two compute threads
# makes torch's OpenMP threads wait on each other (measured up to 3x slower
# per step); SSD's augmentation is fast enough to run in the main process.
metainfo = dict(classes=classes)
train_dataloader = dict(
    batch_size=16,
    num_workers=0,  # see the note on threads above
    persistent_workers=False,
    # The same shuffle on every rank (each takes its share of it).
    sampler=dict(type='DefaultSampler', shuffle=True, seed=seed),
    dataset=dict(
        _scope_='ssd_plugin',
        type='CheckedCocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=0,  # see the note on threads above
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _scope_='ssd_plugin',
        type='CheckedCocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric', ann_file=data_root + 'annotations/instances_val.json',
    metric='bbox')
test_evaluator = val_evaluator

# The run's length, its one setting: the cosine schedule ends at it (an
# unset `end` is mmengine's max_epochs), and the last epoch is validated and
# checkpointed whatever the intervals; tools/quickstart.py --epochs sets it.
max_epochs = 28  # 5-10 minutes on 2 cores (docs/benchmarks.md)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=8e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, eta_min=8e-5),
]
default_hooks = dict(
    checkpoint=dict(by_epoch=True, interval=-1),  # the last epoch only
    logger=dict(interval=10),
    # Test images with their detections drawn, in {work_dir}/{time}/vis.
    visualization=dict(draw=True, test_out_dir='vis'))
log_processor = dict(by_epoch=True)
# The same run every time (weights, shuffling, augmentation). With
# num_workers=0 the augmentation draws from each process's own generator:
# seed + rank on rank > 0 (diff_rank_seed), so that GPUs augment
# differently; the sampler keeps one seed for all ranks.
randomness = dict(seed=seed, diff_rank_seed=True)
