"""SSD's model parts, one registered component per module."""
from .default_box_generator import DefaultBoxGenerator  # noqa: F401
from .multibox_loss import MultiBoxLoss, hard_negative_mask  # noqa: F401
from .atrous_vgg import AtrousVGG  # noqa: F401
from .ssd_neck import SSDNeck  # noqa: F401
from .ssd_head import SSDHead  # noqa: F401
