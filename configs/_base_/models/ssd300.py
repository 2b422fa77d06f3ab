"""SSD300 (Liu et al., ECCV 2016): the model and its input pipelines.

Numbers not in the paper are the Caffe release's (``ssd_pascal.py``,
``ssd_coco.py``); the default-box scales are COCO's. The pipelines are
dicts of named steps, ``train_steps`` and ``test_steps`` (mmdet's dataset
bases own ``train_pipeline``/``test_pipeline``): a child base changes one
step by name, e.g. ``train_steps = dict(resize=dict(scale=(512, 512)))``,
and a leaf config puts ``list(_base_.train_steps.values())`` in its loader.
"""
input_size = 300  # Network input side (section 3)
# ImageNet mean, RGB: the VGG16 weights expect it (Caffe subtracts it, BGR).
rgb_mean = [123.675, 116.28, 103.53]
# ImageNet std, RGB: what torchvision-style backbones (ResNet-50, MobileNetV2)
# take; VGG16's Caffe weights take unscaled pixels (std 1).
imagenet_rgb_std = [58.395, 57.12, 57.375]
level_channels = (512, 1024, 512, 256, 256, 256)  # conv4_3, fc7, conv6_2...

model = dict(
    _scope_='ssd_plugin',  # our names, from any entry point's scope
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
        in_channels=level_channels,
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
train_steps = dict(
    load=dict(type='LoadImageFromFile', backend_args=None),
    annotations=dict(type='LoadAnnotations', with_bbox=True),
    photometric=dict(type='RandomPhotometricDistort'),
    zoom_out=dict(type='RandomZoomOut', mean=tuple(rgb_mean[::-1]),
                  ratio_range=(1, 4), prob=0.5),
    crop=dict(type='RandomIoUCrop'),
    resize=dict(type='Resize', scale=(input_size, input_size),
                keep_ratio=False),
    flip=dict(type='RandomFlip', prob=0.5),
    pack=dict(type='PackDetInputs'))
test_steps = dict(
    load=dict(type='LoadImageFromFile', backend_args=None),
    # Arrays given to inference_detector / DetInferencer: gray, BGRA, 16-bit
    # to 8-bit BGR; empty or non-finite images are errors.
    image=dict(_scope_='ssd_plugin', type='ToBGRImage'),  # for DetInferencer
    resize=dict(type='Resize', scale=(input_size, input_size),
                keep_ratio=False),
    annotations=dict(type='LoadAnnotations', with_bbox=True),
    pack=dict(type='PackDetInputs',
              meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                         'scale_factor')))
