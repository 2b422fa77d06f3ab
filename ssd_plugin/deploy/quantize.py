"""INT8 post-training quantization of an exported SSD (ONNX Runtime, QDQ).

Static quantization: activation ranges calibrated (min/max) on real images
passed through the config's test pipeline and data preprocessor, weights
per output channel, symmetric int8; activations asymmetric uint8 (x86's
u8 x s8 VNNI path). Only the network is quantized -- the convolutions,
ReLUs, pools and additions of the backbone, neck and head; the L2 norm,
softmax, box decoding and NMS stay FP32, since 8 bits of box coordinates
would cost more accuracy than they save time. The result is a QDQ ONNX
file that ONNX Runtime runs with int8 kernels and OpenVINO reads as its own
quantized model.

The file is the same for every x86 CPU; what it gains depends on the CPU
that runs it (:func:`int8_advice`, docs/quantization.md): with VNNI
(``vpdpbusd``) both backends run it several times faster than FP32; on an
AVX2-only CPU the int8 kernels multiply with ``vpmaddubsw`` + ``vpmaddwd``,
two instructions per 32 products (one for 8 in FP32's FMA), and OpenVINO's
oneDNN kernels gain the most. Per-tensor weights, u8 weights (ONNX
Runtime's "u8u8") and 7-bit weights (``reduce_range``) were measured and
are no faster; NNCF's OpenVINO model runs the same kernels (the same speed).
"""
import contextlib
import glob
import logging
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from mmengine.config import Config

from ssd_plugin.deploy.backends import import_backend
from ssd_plugin.registry import DATASETS
from ssd_plugin.utils.config import leaf_datasets, use_default_scope
from ssd_plugin.utils.network_input import network_inputs
from ssd_runtime.sources import IMAGE_SUFFIXES  # as ssd-detect reads folders

# The network's ops (quantized); torch's exporter names each node by its
# module path, e.g. '/backbone/layer1/layer1.0/conv1/Conv'.
NETWORK_OPS = ('Conv', 'Relu', 'Clip', 'MaxPool', 'AveragePool', 'Add')
NETWORK_SCOPES = ('/backbone/', '/neck/', '/bbox_head/')
# FP32 inside the network: the L2 norm's ``norm + eps`` is an Add, and 8
# bits of the norm (a per-location denominator spanning orders of magnitude)
# would round the small norms to zero and blow their features up. Its input
# (conv4_3's ReLU) and output (the head's conv inputs) stay quantized.
FP32_SCOPES = ('/neck/l2_norm/', )


def _train_images(cfg: Config) -> List[str]:
    """The image paths of the config's train set, leaf after leaf."""
    use_default_scope(cfg)
    paths = []
    for leaf in leaf_datasets(cfg.train_dataloader.dataset):
        dataset = DATASETS.build(dict(leaf, pipeline=[]))
        paths += [dataset.get_data_info(i)['img_path']
                  for i in range(len(dataset))]
    return paths


def calibration_inputs(cfg: Config, num_images: int,
                       image_dir: Optional[str] = None
                       ) -> List[np.ndarray]:
    """Network inputs of ``num_images`` calibration images.

    Each image goes through the config's test pipeline and data
    preprocessor (:func:`~ssd_plugin.utils.network_input.network_inputs`).

    Args:
        cfg (Config): The model's config.
        num_images (int): Images to use, spread evenly over the set.
        image_dir (str, optional): A folder of images (no annotations
            needed); None: the config's train set (its images only, no
            augmentation).

    Returns:
        list[np.ndarray]: ``(1, 3, H, W)`` float32 arrays.

    Raises:
        ValueError: If ``num_images < 1`` or no image is found.
    """
    if num_images < 1:
        raise ValueError(f'num_images={num_images}; calibrate on at least '
                         'one image (a few hundred is typical)')
    if image_dir is not None:
        paths = sorted(p for p in glob.glob(osp.join(image_dir, '*'))
                       if p.lower().endswith(IMAGE_SUFFIXES))
        if not paths:
            raise ValueError(f'no {IMAGE_SUFFIXES} images in {image_dir!r}')
    else:
        paths = _train_images(cfg)
        if not paths:
            raise ValueError('the config\'s train set is empty; pass --images')
    step = max(len(paths) // num_images, 1)
    chosen = paths[::step][:num_images]
    return [x.numpy() for x in network_inputs(cfg, chosen)]


class _Reader:
    """ONNX Runtime's ``CalibrationDataReader`` over a list of arrays."""

    def __init__(self, input_name: str, arrays: Sequence[np.ndarray]):
        self.items = iter([{input_name: a} for a in arrays])

    def get_next(self) -> Optional[dict]:
        return next(self.items, None)


def network_nodes(model) -> List[str]:
    """Names of the nodes of :data:`NETWORK_OPS` in the network's scope,
    less :data:`FP32_SCOPES`."""
    return [n.name for n in model.graph.node
            if n.op_type in NETWORK_OPS and n.name.startswith(NETWORK_SCOPES)
            and not n.name.startswith(FP32_SCOPES)]


def inline_identities(model) -> int:
    """Give each ``Identity`` of an initializer its own copy, in place.

    torch's exporter shares equal constants (e.g. the zero biases of
    freshly initialised convs) through ``Identity`` nodes; ONNX Runtime's
    quantizer then finds no bias initializer, leaves the bias FP32 and the
    conv outside its int8 kernels.

    Returns:
        int: Identities removed.
    """
    onnx = import_backend('onnx')
    inits = {t.name: t for t in model.graph.initializer}
    shared = [n for n in model.graph.node
              if n.op_type == 'Identity' and n.input[0] in inits]
    for node in shared:
        copy_ = onnx.TensorProto()
        copy_.CopyFrom(inits[node.input[0]])
        copy_.name = node.output[0]
        model.graph.initializer.append(copy_)
        model.graph.node.remove(node)
    return len(shared)


def int8_advice(flags: Optional[Sequence[str]]) -> str:
    """Which backend to run the INT8 file with on a CPU of ``flags``.

    Args:
        flags (Sequence[str], optional): ``ssd_runtime.machine.FLAGS``
            present (``visible_flags()``); None: unknown.

    Returns:
        str: One sentence naming the CPU's int8 instructions and the backend.
    """
    if flags is None:
        return ('instruction sets unknown: run profile_layers.py and '
                'benchmark_inference.py --deploy on the target CPU')
    vnni = [f for f in ('amx_int8', 'avx512_vnni', 'avx_vnni') if f in flags]
    if vnni:
        return (f'{vnni[0]}: int8 kernels with VNNI on both backends; '
                'OpenVINO (--backend openvino) is the fastest')
    if 'avx2' in flags:
        return ('AVX2 without VNNI: int8 convolutions take two multiplies '
                'per 32 products; run the INT8 file with OpenVINO (--backend '
                "openvino), whose kernels gain most there (ONNX Runtime's "
                'u8s8 AVX2 kernels gain less, see docs/quantization.md)')
    return 'no AVX2: the int8 kernels are SSE4 ones, INT8 may not pay'


class _DropMessage(logging.Filter):

    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.start)


@contextlib.contextmanager
def _without_preprocess_advice():
    """Drop ONNX Runtime's "consider pre-processing" lines (root logger).

    Its ``quant_pre_process`` (shape inference, graph optimisation) exists
    for graphs whose ops it could not otherwise quantize; on ours every
    selected node is quantized without it (docs/quantization.md: all 35
    convolutions of SSD300 run as ``QLinearConv``), so the advice, printed
    twice per call, is not the user's to act on.
    """
    drop = _DropMessage('Please consider')
    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def quantize_int8(model_path: str, out_path: str,
                  inputs: Sequence[np.ndarray]) -> int:
    """Write the INT8 QDQ model of ``model_path`` to ``out_path``.

    Args:
        model_path (str): FP32 export (end2end or raw).
        out_path (str): Quantized ``.onnx`` file; keeps the metadata.
        inputs (Sequence[np.ndarray]): Calibration inputs from
            :func:`calibration_inputs`.

    Returns:
        int: Number of network nodes quantized.

    Raises:
        ValueError: If ``model_path`` has no node of :data:`NETWORK_OPS`
            under :data:`NETWORK_SCOPES` (ONNX Runtime would read an empty
            ``nodes_to_quantize`` as "every node", decoding and NMS too).
    """
    onnx = import_backend('onnx')
    quantization = import_backend('onnxruntime.quantization')
    model = onnx.load(model_path)
    inline_identities(model)
    nodes = network_nodes(model)
    if not nodes:
        raise ValueError(
            f'{model_path!r} has no {"/".join(NETWORK_OPS)} node named under '
            f'{NETWORK_SCOPES}, so nothing would tell the network from the '
            'post-processing; quantize a model exported by '
            'tools/deployment/export_onnx.py (torch names its nodes by '
            'module path)')
    with _without_preprocess_advice():
        quantization.quantize_static(
            model, out_path, _Reader(model.graph.input[0].name, inputs),
            quant_format=quantization.QuantFormat.QDQ, per_channel=True,
            activation_type=quantization.QuantType.QUInt8,
            weight_type=quantization.QuantType.QInt8,
            op_types_to_quantize=list(NETWORK_OPS), nodes_to_quantize=nodes,
            # Every image's range counts: the calibrator keeps only each
            # tensor's ReduceMin/ReduceMax per image (a few KB), so no
            # CalibMaxIntermediateOutputs, whose chunks ONNX Runtime 1.32
            # drops without taking their ranges.
            calibrate_method=quantization.CalibrationMethod.MinMax)
    quantized = onnx.load(out_path)
    onnx.helper.set_model_props(
        quantized, {p.key: p.value for p in model.metadata_props})
    onnx.save(quantized, out_path)
    return len(nodes)
