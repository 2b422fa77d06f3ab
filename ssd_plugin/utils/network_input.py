"""What a config's network is fed: images through the config's own test
pipeline and data preprocessor, the input size that makes, and a model's
default boxes at an input size.

Shapes: ``(H, W)`` the network input, ``L`` levels, ``P_l`` default boxes of
level ``l``.
"""
import copy
from typing import List, Sequence, Tuple, Union

import numpy as np
import torch
from mmcv.transforms import Compose
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import get_test_pipeline_cfg
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from torch import Tensor, nn

from ssd_plugin.models.default_box_generator import DefaultBoxGenerator
from ssd_plugin.registry import MODELS
from ssd_plugin.utils.config import use_default_scope

# An image file's path, or an (h, w, 3) uint8 BGR array (as cv2.imread).
Image = Union[str, np.ndarray]
# Two image shapes (h, w, 3) a fixed-size test pipeline makes one input of.
PROBE_SHAPES = ((480, 640, 3), (500, 333, 3))


def inference_pipelines(cfg: Config) -> Tuple[Compose, Compose]:
    """The config's test pipeline built twice: from a file (``img_path``)
    and from an array (``img``), as mmdet's ``inference_detector``."""
    use_default_scope(cfg)
    steps = get_test_pipeline_cfg(cfg)
    from_array = copy.deepcopy(steps)
    from_array[0].type = 'mmdet.LoadImageFromNDArray'
    return Compose(steps), Compose(from_array)


def network_inputs(cfg: Config, images: Sequence[Image]) -> List[Tensor]:
    """The network input of each image, as the config's test loop makes it.

    Args:
        cfg (Config): The model's config (its test pipeline and
            ``model.data_preprocessor``).
        images (Sequence[str | np.ndarray]): Image files, or ``(h, w, 3)``
            uint8 BGR arrays.

    Returns:
        list[Tensor]: ``(1, 3, H, W)`` float32 contiguous, on the CPU.

    Raises:
        TypeError: For an image that is neither a path nor an array.
    """
    from_file, from_array = inference_pipelines(cfg)
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    inputs = []
    for index, image in enumerate(images):
        if isinstance(image, np.ndarray):
            sample = from_array(dict(img=image, img_id=index))
        elif isinstance(image, str):
            sample = from_file(dict(img_path=image, img_id=index))
        else:
            raise TypeError(f'images[{index}] is a {type(image).__name__}; '
                            'pass an image path or an (h, w, 3) BGR array')
        with torch.no_grad():
            batch = preprocessor(pseudo_collate([sample]), False)
        inputs.append(batch['inputs'].float().contiguous())
    return inputs


def config_input_size(cfg: Config) -> Tuple[int, int]:
    """``(H, W)`` of the network input the config's test loop makes.

    Two blank images of :data:`PROBE_SHAPES` go through
    :func:`network_inputs`; SSD's pipeline resizes every image to one input
    (``Resize(keep_ratio=False)``).

    Raises:
        ValueError: If the two inputs differ in size.
    """
    sizes = [tuple(x.shape[-2:]) for x in network_inputs(
        cfg, [np.zeros(shape, np.uint8) for shape in PROBE_SHAPES])]
    if sizes[0] != sizes[1]:
        (h0, w0, _), (h1, w1, _) = PROBE_SHAPES
        raise ValueError(
            f'the test pipeline turns {h0}x{w0} and {h1}x{w1} images into '
            f'{sizes[0]} and {sizes[1]} inputs; SSD (its default boxes, ONNX '
            'export) needs one fixed size: Resize(scale=..., '
            "keep_ratio=False) as SSD's configs")
    return sizes[0]


def default_boxes(model: nn.Module, input_shape: Tuple[int, int]
                  ) -> Tuple[List[Tuple[int, int]], List[Tensor]]:
    """The feature-map sizes and default boxes of a detector at an input.

    The maps are those the model's backbone and neck make of a blank
    ``input_shape`` input, so the boxes are the ones its head matches and
    decodes against. (``SSDHead`` gets the same boxes from the maps of the
    batch it scores, with no probe; both ask the prior generator.)

    Args:
        model (nn.Module): An mmdet detector (``extract_feat``,
            ``bbox_head.prior_generator``: ours or mmdet's), on any device.
        input_shape (tuple[int, int]): ``(H, W)`` of the network input.

    Returns:
        tuple: ``[(H_l, W_l)]`` per level and ``[(P_l, 4)]`` float32 boxes
        ``(x1, y1, x2, y2)`` in input pixels, on the model's device.
    """
    param = next(model.parameters(), None)
    device = torch.device('cpu') if param is None else param.device
    with torch.no_grad():
        feats = model.extract_feat(
            torch.zeros(1, 3, *input_shape, device=device))
    featmaps = [tuple(int(s) for s in f.shape[-2:]) for f in feats]
    generator = model.bbox_head.prior_generator
    # mmdet's generators take no input_shape; ours steps and clips by it.
    extra = dict(input_shape=tuple(input_shape)) if isinstance(
        generator, DefaultBoxGenerator) else {}
    priors = generator.grid_priors(featmaps, dtype=torch.float32,
                                   device=device, **extra)
    return featmaps, [get_box_tensor(p) for p in priors]
