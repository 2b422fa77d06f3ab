"""SSD512 (Liu et al., section 3.1 "SSD512"): SSD300 with a 512 input.

One more extra layer (conv10_2, a 4x4 conv), conv8_2 and conv9_2 with
stride 2, seven levels (64, 32, 16, 8, 4, 2, 1), Caffe's ``ssd_coco.py`` /
``ssd_pascal_512.py`` numbers; COCO's scales by default.
"""
_base_ = ['./ssd300.py']

input_size = 512
level_channels = (*_base_.level_channels, 256)  # + conv10_2
model = dict(
    neck=dict(
        out_channels=level_channels,
        bottleneck_channels=(256, 128, 128, 128, 128),
        kernel_sizes=(3, 3, 3, 3, 4),
        strides=(2, 2, 2, 2, 1),
        paddings=(1, 1, 1, 1, 1)),
    bbox_head=dict(
        in_channels=level_channels,
        prior_generator=dict(
            input_size=input_size,
            ratios=((2, ), (2, 3), (2, 3), (2, 3), (2, 3), (2, ), (2, )),
            # Caffe's SSD512 COCO: s in [0.1, 0.9], conv4_3 at (0.04, 0.1).
            scale_range=(0.1, 0.9),
            first_level=(0.04, 0.1),
            strides=(8, 16, 32, 64, 128, 256, 512))))
train_steps = dict(resize=dict(scale=(input_size, input_size)))
test_steps = dict(resize=dict(scale=(input_size, input_size)))
