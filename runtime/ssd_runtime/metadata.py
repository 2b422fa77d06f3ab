"""What an exported SSD says about itself: its ``metadata_props``.

``ssd_plugin``'s exporter writes every fact a program needs to run the model
into the ``.onnx`` file, so the file alone describes it (as OpenCV's
``DetectionModel`` takes input size, mean, scale and channel order as
properties of the model, not of the caller's code). The keys, all prefixed
``ssd_plugin.``:

- ``mode``: ``end2end`` (detections out) or ``raw`` (network outputs);
- ``input_size``: ``H,W`` of the network input (static in the graph);
- ``input_format``: :data:`UINT8_BGR` -- the graph takes the resized image
  as OpenCV gives it, ``uint8 (N, H, W, 3)`` BGR, and normalises inside --,
  or :data:`FLOAT_NCHW` -- the graph takes the data preprocessor's output,
  ``float32 (N, 3, H, W)``, channels in ``channel_order``,
  ``(x - mean) / std``;
- ``resize``: JSON ``{"keep_ratio": false, "interpolation": "bilinear"}``:
  the test pipeline stretches every image to ``input_size`` (SSD's
  ``Resize(keep_ratio=False)``) with that interpolation;
- ``channel_order`` (``rgb``/``bgr``), ``mean``, ``std`` (JSON, per channel
  in ``channel_order``): the data preprocessor's normalisation;
- ``num_classes``, ``classes`` (JSON list), ``test_cfg`` (JSON, the
  post-processing baked into an ``end2end`` graph), ``version``.

A file without ``input_format`` is a float graph; one without ``mean`` and
``std`` reads with them None (``ssd_plugin``'s ``DeployedDetector`` takes
them from the config; the runtime asks for a new export).
"""
import json
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

from ssd_runtime.backends import read_props

PREFIX = 'ssd_plugin.'
# metadata_props keys; the presence of MODE marks a model as exported by us.
META = {name: PREFIX + name for name in (
    'mode', 'input_size', 'num_classes', 'test_cfg', 'classes', 'version',
    'input_format', 'resize', 'channel_order', 'mean', 'std')}
UINT8_BGR = 'uint8_bgr_nhwc'
FLOAT_NCHW = 'float32_nchw'
INPUT_FORMATS = (UINT8_BGR, FLOAT_NCHW)
# mmcv's imresize names (cv2 backend) of the interpolations the runtime
# reproduces with cv2.resize.
INTERPOLATIONS = ('nearest', 'bilinear', 'bicubic', 'area', 'lanczos')
EXPORT_HINT = ('export the model with tools/deployment/export_onnx.py CONFIG '
               'CHECKPOINT OUT.onnx')


@dataclass
class ModelInfo:
    """An export's ``metadata_props``, parsed (see the module docstring).

    Attributes:
        mode (str): ``'end2end'`` or ``'raw'``.
        input_size (tuple[int, int]): ``(H, W)`` of the network input.
        num_classes (int): Object classes (background excluded).
        test_cfg (dict | None): Post-processing of an end2end graph.
        classes (list[str]): Class names, by label (may be empty).
        version (str): ``ssd_plugin`` version that exported it.
        input_format (str): One of :data:`INPUT_FORMATS`.
        interpolation (str): The resize's, one of :data:`INTERPOLATIONS`.
        channel_order (str | None): ``'rgb'`` or ``'bgr'``: what the network
            takes; None if not recorded.
        mean, std (list[float] | None): Per channel in ``channel_order``;
            None if not recorded.
    """
    mode: str
    input_size: Tuple[int, int]
    num_classes: int
    test_cfg: Optional[dict]
    classes: List[str]
    version: str
    input_format: str = FLOAT_NCHW
    interpolation: str = 'bilinear'
    channel_order: Optional[str] = None
    mean: Optional[List[float]] = field(default=None)
    std: Optional[List[float]] = field(default=None)

    def props(self) -> Dict[str, str]:
        """The ``metadata_props`` that describe this model (keys of
        :data:`META`); unrecorded preprocessing is left out."""
        props = {
            META['mode']: self.mode,
            META['input_size']: '{},{}'.format(*self.input_size),
            META['num_classes']: str(self.num_classes),
            META['test_cfg']: json.dumps(self.test_cfg),
            META['classes']: json.dumps(list(self.classes)),
            META['version']: self.version,
            META['input_format']: self.input_format,
            META['resize']: json.dumps(dict(
                keep_ratio=False, interpolation=self.interpolation)),
        }
        if self.mean is not None:
            props.update({META['channel_order']: self.channel_order,
                          META['mean']: json.dumps(list(self.mean)),
                          META['std']: json.dumps(list(self.std))})
        return props


def _resize_rule(text: Optional[str], source: str) -> str:
    """The interpolation of a ``resize`` entry (None: bilinear)."""
    rule = json.loads(text) if text else dict(keep_ratio=False)
    interpolation = rule.get('interpolation', 'bilinear')
    if rule.get('keep_ratio', False) or interpolation not in INTERPOLATIONS:
        raise ValueError(
            f'{source!r} records the resize {rule}; the runtime stretches '
            'images to the input size (keep_ratio false) with one of '
            f'{INTERPOLATIONS}: {EXPORT_HINT}')
    return interpolation


def parse_metadata(props: Mapping[str, str], source: str) -> ModelInfo:
    """:class:`ModelInfo` from a model's ``metadata_props``.

    Args:
        props (Mapping[str, str]): Key to value, as the backend reads them.
        source (str): The file, for messages.

    Returns:
        ModelInfo: The parsed facts.

    Raises:
        ValueError: If the model was not exported by ``ssd_plugin``, or
            records a value the runtime cannot follow.
    """
    if META['mode'] not in props:
        raise ValueError(
            f'{source!r} was not exported by ssd_plugin (no '
            f'{META["mode"]!r} in its metadata_props, which hold '
            f'{sorted(props)}); {EXPORT_HINT}')
    input_format = props.get(META['input_format'], FLOAT_NCHW)
    if input_format not in INPUT_FORMATS:
        raise ValueError(f'{source!r} has input format {input_format!r}, '
                         f'not one of {INPUT_FORMATS}; {EXPORT_HINT}')
    mean = props.get(META['mean'])
    std = props.get(META['std'])
    return ModelInfo(
        mode=props[META['mode']],
        input_size=tuple(int(s) for s in props[META['input_size']].split(',')),
        num_classes=int(props[META['num_classes']]),
        test_cfg=json.loads(props[META['test_cfg']]),
        classes=list(json.loads(props[META['classes']])),
        version=props[META['version']],
        input_format=input_format,
        interpolation=_resize_rule(props.get(META['resize']), source),
        channel_order=props.get(META['channel_order']),
        mean=json.loads(mean) if mean else None,
        std=json.loads(std) if std else None)


def read_model_info(path: str) -> ModelInfo:
    """:func:`parse_metadata` of ``path``'s ``metadata_props``, read by
    whichever backend is installed (:func:`~ssd_runtime.backends.read_props`).

    Raises:
        FileNotFoundError, ValueError, ImportError: See ``read_props`` and
            :func:`parse_metadata`.
    """
    return parse_metadata(read_props(path), path)
