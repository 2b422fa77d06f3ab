"""The graph's input and the config's test pipeline, for the ONNX export.

:class:`Uint8Input` puts the data preprocessor into the graph for a
``uint8 (N, H, W, 3)`` BGR input; :func:`resize_interpolation` and
:func:`check_runtime_preprocessing` read and check what the config's test
pipeline does, so that ``ssd_runtime`` (numpy and OpenCV) prepares the same
numbers. Part of
:mod:`ssd_plugin.deploy.export`.
"""
from typing import Dict, Sequence, Tuple

import numpy as np
import torch
from mmdet.utils import get_test_pipeline_cfg
from mmengine.config import Config
from torch import Tensor, nn

from ssd_plugin.utils.network_input import network_inputs
from ssd_runtime.metadata import FLOAT_NCHW, INTERPOLATIONS, ModelInfo
from ssd_runtime.preprocess import preprocess


def normalisation(detector: nn.Module) -> Dict[str, object]:
    """The data preprocessor's pixel normalisation, as numbers.

    Returns:
        dict: ``channel_order`` (``'rgb'`` if it swaps OpenCV's BGR, else
        ``'bgr'``), ``mean`` and ``std`` (lists of 3 floats, in that order;
        0 and 1 when it does not normalise).
    """
    preprocessor = detector.data_preprocessor
    swap = bool(getattr(preprocessor, '_channel_conversion', False))
    if getattr(preprocessor, '_enable_normalize', False):
        mean = preprocessor.mean.flatten().tolist()
        std = preprocessor.std.flatten().tolist()
    else:
        mean, std = [0.] * 3, [1.] * 3
    return dict(channel_order='rgb' if swap else 'bgr', mean=mean, std=std)


class Uint8Input(nn.Module):
    """``uint8 (N, H, W, 3)`` BGR to the network's float input.

    NHWC -> NCHW, then the data preprocessor's steps in its order and
    precision: the channel swap (if it makes RGB), ``float32``, ``(x -
    mean) / std``. The mean and std are expanded to the whole ``(1, 3, H,
    W)`` plane (a constant the backends fold at load): ONNX Runtime runs an
    INT8 model's first convolution NHWC and moves these steps there, where
    broadcasting 3 values along the last axis took it 6x longer than
    same-shape arithmetic.

    Args:
        input_size (tuple[int, int]): ``(H, W)``.
        channel_order (str): ``'rgb'`` or ``'bgr'``, what the network takes.
        mean, std (Sequence[float]): Per channel in ``channel_order``.
    """

    def __init__(self, input_size: Tuple[int, int], channel_order: str,
                 mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.swap = channel_order == 'rgb'
        self.plane = (1, 3, int(input_size[0]), int(input_size[1]))
        self.register_buffer('mean', torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, images: Tensor) -> Tensor:
        """``(N, H, W, 3)`` uint8 to ``(N, 3, H, W)`` float32."""
        images = images.permute(0, 3, 1, 2)
        if self.swap:  # a Gather, as the preprocessor's [[2, 1, 0], ...]:
            images = images[:, [2, 1, 0]]  # ORT kept a flip's Slice NHWC
        return (images.float() - self.mean.expand(self.plane)) / \
            self.std.expand(self.plane)


def resize_interpolation(cfg: Config) -> str:
    """The interpolation of the test pipeline's ``Resize`` (mmcv's name;
    ``'bilinear'``, its default, without one)."""
    for step in get_test_pipeline_cfg(cfg):
        if str(step.get('type', '')).split('.')[-1] == 'Resize':
            interpolation = step.get('interpolation', 'bilinear')
            if interpolation not in INTERPOLATIONS:
                raise ValueError(
                    f'the test Resize has interpolation={interpolation!r}; '
                    f'a deployed model resizes with one of {INTERPOLATIONS}')
            return interpolation
    return 'bilinear'


def check_runtime_preprocessing(cfg: Config, info: ModelInfo,
                                seed: int = 0) -> None:
    """Check that ``ssd_runtime``'s preprocessing gives the config's inputs.

    A random non-square image goes through the config's test pipeline and
    data preprocessor, and through :func:`ssd_runtime.preprocess.preprocess`
    with ``info``'s facts (as a float graph): the numbers must agree, or a
    deployed model would see other inputs than the torch model.

    Raises:
        ValueError: If they differ (a test pipeline that does more than
            SSD's: to BGR, ``Resize(keep_ratio=False)``, normalise).
    """
    image = np.random.default_rng(seed).integers(0, 256, (97, 131, 3),
                                                 np.uint8)
    expected = network_inputs(cfg, [image])[0].numpy()
    as_float = ModelInfo(**dict(vars(info), input_format=FLOAT_NCHW))
    got = preprocess([image], as_float)[0]
    if got.shape != expected.shape or not np.allclose(got, expected,
                                                      rtol=0, atol=1e-4):
        diff = np.abs(got - expected).max() if got.shape == expected.shape \
            else f'shapes {got.shape} and {expected.shape}'
        raise ValueError(
            'the config\'s test pipeline does more than to-BGR, Resize('
            "keep_ratio=False) with a cv2 interpolation and the data "
            f'preprocessor\'s normalisation (differs by {diff}): a deployed '
            'model would see other inputs; use SSD\'s test pipeline')
