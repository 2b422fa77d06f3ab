"""SSD300 with ResNet-50 on COCO, as NVIDIA's SSD300 v1.1.

NVIDIA DeepLearningExamples, ``PyTorch/Detection/SSD``: ResNet-50 up to
conv4_x (layer3) with layer3's first block at stride 1, so the first map is
38x38 with 1024 channels at 300 (stride 8); five extra layers with
BatchNorm (convs without bias) and no L2Norm give 19, 10, 5, 3, 1; the head
and default boxes are SSD300 COCO's (21 ... 315 px, 8732 boxes). NVIDIA
reports about 0.25 COCO AP after 65 epochs.

Kept from the base rather than NVIDIA's: the Caffe recipe (batch 32, LR 1e-3,
240k iterations; NVIDIA: LR 2.6e-3 per 32 images, 65 epochs) and Caffe's
"xavier" init of the extra layers and head (NVIDIA: Glorot uniform).
"""
_base_ = ['../ssd/ssd300_coco.py']

level_channels = (1024, 512, 512, 256, 256, 256)  # maps 38, 19, 10, 5, 3, 1
model = dict(
    # torchvision's ImageNet std: ResNet's weights expect normalised pixels.
    data_preprocessor=dict(std=_base_.imagenet_rgb_std),
    # mmdet's ResNet: 3 stages, layer3 at stride 1. ImageNet weights: add
    # init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50').
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=3,
        strides=(1, 2, 1),
        dilations=(1, 1, 1),
        out_indices=(2, ),
        norm_eval=False),  # NVIDIA trains the backbone's BatchNorm
    neck=dict(
        in_channels=level_channels[:1],
        out_channels=level_channels,
        bottleneck_channels=(256, 256, 128, 128, 128),
        kernel_sizes=(3, 3, 3, 3, 3),
        strides=(2, 2, 2, 1, 1),
        paddings=(1, 1, 1, 0, 0),
        l2_norm_scale=None,
        norm_cfg=dict(type='BN')),
    bbox_head=dict(in_channels=level_channels))
