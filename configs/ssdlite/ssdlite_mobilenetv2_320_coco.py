"""SSDLite with MobileNetV2 at 320x320 on COCO.

Sandler et al., "MobileNetV2", CVPR 2018, section 6.2: every 3x3 conv of
SSD's extra layers and predictors becomes depthwise separable. Settings of
mmdet's ``ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py`` (21.3 AP): maps
20 (96 ch, stride 16) and 10 (1280 ch, stride 32) from MobileNetV2, extras
to 5, 3, 2, 1; BN (eps 1e-3, momentum 0.03) and ReLU6; six boxes per
location everywhere (3234 in all).

Kept from the base rather than mmdet's: SSD's Caffe-order augmentation and
the Caffe recipe (mmdet trains from scratch, 600 epochs, cosine LR 0.015 at
batch 192), score threshold 0.01 (mmdet: 0.02).
"""
_base_ = ['../ssd/ssd300_coco.py']

input_size = 320
level_channels = (96, 1280, 512, 256, 256, 128)  # maps 20, 10, 5, 3, 2, 1
norm_cfg = dict(type='BN', eps=0.001, momentum=0.03)
act_cfg = dict(type='ReLU6', inplace=True)
separable = dict(use_depthwise=True, norm_cfg=norm_cfg, act_cfg=act_cfg)
trunc_normal = dict(type='TruncNormal', layer='Conv2d', std=0.03)
model = dict(
    data_preprocessor=dict(std=_base_.imagenet_rgb_std),
    backbone=dict(
        type='MobileNetV2',
        out_indices=(4, 7),
        norm_cfg=norm_cfg,
        init_cfg=trunc_normal),
    neck=dict(
        in_channels=level_channels[:2],
        out_channels=level_channels,
        bottleneck_channels=(256, 128, 128, 64),  # half of each output
        strides=(2, 2, 2, 2),
        paddings=(1, 1, 1, 1),
        l2_norm_scale=None,
        init_cfg=trunc_normal,
        **separable),
    bbox_head=dict(
        in_channels=level_channels,
        init_cfg=dict(type='Normal', layer='Conv2d', std=0.001),
        prior_generator=dict(
            input_size=input_size,
            ratios=((2, 3), ) * 6,
            min_sizes=(48, 100, 150, 202, 253, 304),
            max_sizes=(100, 150, 202, 253, 304, 320),
            strides=(16, 32, 64, 107, 160, 320)),
        **separable))


# The base's pipelines with this input size.
resize = dict(type='Resize', scale=(input_size, input_size), keep_ratio=False)
train_pipeline = list(dict(_base_.train_steps, resize=resize).values())
test_pipeline = list(dict(_base_.test_steps, resize=resize).values())
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
