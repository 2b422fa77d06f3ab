"""Any image array a user hands to inference, as the 3-channel BGR SSD takes.

``inference_detector`` and ``DetInferencer`` put an array straight into
``results['img']`` (mmdet's ``LoadImageFromNDArray``), so what a file
loader would have normalised reaches the model as is. Shorthand: H, W
image height and width.
"""
from mmcv.transforms import BaseTransform

from ssd_plugin.registry import TRANSFORMS
# The conversion itself is the deployment runtime's (the same steps on a
# deployed model's input, without torch or mmcv); it is re-exported here.
from ssd_runtime.preprocess import to_bgr_image

__all__ = ['ToBGRImage', 'to_bgr_image']


@TRANSFORMS.register_module()
class ToBGRImage(BaseTransform):
    """Make ``results['img']`` a (H, W, 3) BGR image (:func:`to_bgr_image`).

    Required keys: ``img``. Modified keys: ``img``. A no-op on what
    ``LoadImageFromFile`` loads (it always decodes to 8-bit BGR); placed
    after the load step of the test pipeline, which mmdet's inference APIs
    replace by their array loader.
    """

    def transform(self, results: dict) -> dict:
        """Convert ``results['img']`` in place of the dict; return it."""
        results['img'] = to_bgr_image(results['img'])
        return results
