"""SSD512 (Liu et al., section 3.1 "SSD512"): SSD300 with a 512 input.

One more extra layer (conv10_2, a 4x4 conv), conv8_2 and conv9_2 with
stride 2, seven levels (64, 32, 16, 8, 4, 2, 1), Caffe's ``ssd_coco.py`` /
``ssd_pascal_512.py`` numbers; COCO's scales by default.
"""
_base_ = ['./ssd300.py']

input_size = 512  # Network input side; set only here for SSD512.

level_channels = (512, 1024, 512, 256, 256, 256, 256)
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


def _resized(pipeline: list) -> list:
    """SSD300's pipeline with its Resize set to this input size."""
    return [
        dict(step, scale=(input_size, input_size))
        if step['type'] == 'Resize' else step for step in pipeline
    ]


ssd_train_pipeline = _resized(_base_.ssd_train_pipeline)
ssd_test_pipeline = _resized(_base_.ssd_test_pipeline)
