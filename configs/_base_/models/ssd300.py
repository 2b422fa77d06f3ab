"""SSD300 (Liu et al., ECCV 2016): the model and its input pipelines.

Dataset-agnostic: leaf configs pair it with a recipe (data, schedule) and set
``num_classes`` and the default-box scales of their dataset. Defaults are
COCO's (80 classes, Caffe's ``ssd_coco.py`` scales). Numbers not in the paper
are the Caffe release's (``ssd_pascal.py``, ``ssd_coco.py``).

The pipelines are named ``ssd_train_pipeline`` / ``ssd_test_pipeline``:
mmdet's dataset bases, inherited next to this file, already own the names
``train_pipeline`` / ``test_pipeline``. SSD's own transforms are named with
the ``ssd_plugin.`` prefix because mmdet's dataset configs build their
datasets, pipelines included, in the ``mmdet`` scope.

mmdet's runtime is inherited here rather than beside this file, as it sets
``default_scope`` too; SSD trains by iterations (Caffe) in every recipe, so
checkpoints and logs count iterations.
"""
_base_ = ['mmdet::_base_/default_runtime.py']

default_scope = 'ssd_plugin'
custom_imports = dict(imports=['ssd_plugin'], allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=10000))
log_processor = dict(by_epoch=False)
# Stop early and say why: a model/dataset class-count mismatch (before the
# first iteration), a non-finite loss (with the last finite ones); and show a
# progress bar while evaluating.
custom_hooks = [
    dict(type='NumClassesCheckHook'),
    dict(type='FiniteLossCheckHook'),
    dict(type='EvalProgressBarHook'),
]

input_size = 300  # Network input side (section 3); set only here.
# ImageNet mean, RGB: the VGG16 weights expect it (Caffe subtracts it, BGR).
rgb_mean = [123.675, 116.28, 103.53]

model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=rgb_mean,
        std=[1, 1, 1],  # Caffe VGG16 takes unscaled 0-255 pixels
        bgr_to_rgb=True,
        pad_size_divisor=1),
    # conv4_3 (38x38) and fc7 (19x19). ImageNet weights: add init_cfg=dict(
    # type='Pretrained', checkpoint=PATH), keys as in AtrousVGG's docstring.
    backbone=dict(type='AtrousVGG'),
    neck=dict(type='SSDNeck'),  # defaults: SSD300's conv6_2 ... conv9_2
    bbox_head=dict(
        type='SSDHead',
        num_classes=80,
        in_channels=(512, 1024, 512, 256, 256, 256),
        prior_generator=dict(
            type='DefaultBoxGenerator',
            input_size=input_size,
            ratios=((2, ), (2, 3), (2, 3), (2, 3), (2, ), (2, )),
            scale_range=(0.15, 0.9),  # ssd_coco.py; VOC overrides it
            strides=(8, 16, 32, 64, 100, 300)),  # Caffe's `steps`
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=(0., 0., 0., 0.),
            target_stds=(0.1, 0.1, 0.2, 0.2)),  # Caffe's prior variances
        loss=dict(type='MultiBoxLoss', neg_pos_ratio=3.0, alpha=1.0)),
    # Section 2.2 matching: each ground truth to its best default box, then
    # every box with IoU > 0.5 (no ignore band: neg_iou_thr = pos_iou_thr).
    train_cfg=dict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.5,
            min_pos_iou=0.,
            # Boxes mostly (IoF > 0.5) inside ignored ground truth (VOC
            # difficult, COCO crowd) get weight 0: not positive, not mined.
            ignore_iof_thr=0.5,
            gt_max_assign_all=False)),
    # Section 3 / Caffe's DetectionOutput: confidence 0.01, NMS 0.45 per
    # class, 200 per image. nms_pre caps (box, class) pairs per image.
    test_cfg=dict(
        nms_pre=1000,
        score_thr=0.01,
        nms=dict(type='nms', iou_threshold=0.45),
        min_bbox_size=0,
        max_per_img=200))

# Section 2.2 "Data augmentation", in Caffe's order: photometric distortion,
# zoom out (Caffe's "expand", section 3.6), IoU-constrained crop, resize,
# flip. The zoom-out canvas is filled with the mean in the loader's BGR.
ssd_train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='ssd_plugin.RandomPhotometricDistort'),
    dict(type='ssd_plugin.RandomZoomOut', mean=tuple(rgb_mean[::-1]),
         ratio_range=(1, 4), prob=0.5),
    dict(type='ssd_plugin.RandomIoUCrop'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
ssd_test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor')),
]
