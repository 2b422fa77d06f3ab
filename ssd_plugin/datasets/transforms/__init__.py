"""SSD's data augmentation (paper section 2.2, "Data augmentation")."""
from .iou_crop import RandomIoUCrop  # noqa: F401
from .photometric_distort import RandomPhotometricDistort  # noqa: F401
from .zoom_out import RandomZoomOut  # noqa: F401
from .to_bgr_image import ToBGRImage  # noqa: F401
