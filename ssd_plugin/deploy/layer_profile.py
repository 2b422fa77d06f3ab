"""What each layer of an exported SSD runs as: kernel, precision, time.

An INT8 file is only as fast as the layers that reach int8 kernels; a
quantize-dequantize pair the backend does not fuse leaves its op in FP32.
The backends say so themselves:

- OpenVINO's per-layer performance counters (``PERF_COUNT``): each executed
  layer's type and ``exec_type``, e.g. ``brgconv_avx512_I8`` (the oneDNN
  kernel, its instruction set, its precision) or ``jit_avx2_f32``;
- ONNX Runtime's profiler: each node of the optimized graph, its op (a fused
  ``QLinearConv`` or a float ``Conv``) and its inputs' element types.

Both are read after warm-up runs on one input; times are the median over
``runs``. Nothing here needs torch.
"""
import json
import os.path as osp
import statistics
import tempfile
from collections import defaultdict
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np

from ssd_plugin.deploy.backends import import_backend

# ONNX Runtime element types of int8 kernels' first input.
INT8_TYPES = ('uint8', 'int8')
# Convolution ops as OpenVINO and ONNX Runtime (optimized graph) name them.
CONV_OPS = ('Convolution', 'GroupConvolution', 'Conv', 'QLinearConv',
            'FusedConv', 'ConvInteger')


class Layer(NamedTuple):
    """One executed layer (OpenVINO) or node (ONNX Runtime).

    ``precision`` is ``'int8'`` or the backend's name of a float or integer
    type (``'f32'``, ``'bf16'``, ``'i32'``...); ``kernel`` OpenVINO's
    ``exec_type`` or ONNX Runtime's op type; ``ms`` the median time.
    """
    name: str
    op: str
    kernel: str
    precision: str
    ms: float


def _median_rows(rows: Dict[tuple, List[float]]) -> List[Layer]:
    return [Layer(*key, statistics.median(times))
            for key, times in rows.items()]


def openvino_layers(path: str, inputs: np.ndarray, precision: str = 'f32',
                    num_threads: Optional[int] = None,
                    runs: int = 3) -> List[Layer]:
    """The executed layers of ``path`` on OpenVINO's CPU plugin.

    Args:
        path (str): ``.onnx`` (or OpenVINO ``.xml``) file.
        inputs (np.ndarray): ``(N, 3, H, W)`` float32 network input.
        precision (str): ``INFERENCE_PRECISION_HINT`` (``'f32'``,
            ``'bf16'``).
        num_threads (int, optional): ``INFERENCE_NUM_THREADS``.
        runs (int): Timed runs after one warm-up.

    Returns:
        list[Layer]: In execution order; ``precision`` from the suffix of
        ``exec_type`` (``I8``/``U8`` as ``'int8'``; OpenVINO holds booleans
        as u8, so masks of the post-processing show as int8 too).
    """
    ov = import_backend('openvino')
    config = {'PERF_COUNT': True, 'INFERENCE_PRECISION_HINT': precision}
    if num_threads:
        config['INFERENCE_NUM_THREADS'] = str(num_threads)
    core = ov.Core()
    request = core.compile_model(core.read_model(path), 'CPU',
                                 config).create_infer_request()
    request.infer({0: inputs})
    rows: Dict[tuple, List[float]] = defaultdict(list)
    for _ in range(runs):
        request.infer({0: inputs})
        for info in request.profiling_info:
            if info.status != info.Status.EXECUTED:
                continue
            kind = info.exec_type.rsplit('_', 1)[-1].lower()
            kind = 'int8' if kind in ('i8', 'u8') else kind
            key = (info.node_name, info.node_type, info.exec_type, kind)
            rows[key].append(info.real_time.total_seconds() * 1e3)
    return _median_rows(rows)


def _ort_events(path: str, inputs: np.ndarray, num_threads: Optional[int],
                runs: int, folder: str) -> List[dict]:
    """ONNX Runtime's profiler events of ``runs`` runs after a warm-up."""
    ort = import_backend('onnxruntime')
    options = ort.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = osp.join(folder, 'profile')
    session = ort.InferenceSession(path, options,
                                   providers=['CPUExecutionProvider'])
    feed = {session.get_inputs()[0].name: inputs}
    for _ in range(runs + 1):
        session.run(None, feed)
    with open(session.end_profiling(), encoding='utf-8') as f:
        events = json.load(f)
    return [e for e in events if e.get('cat') == 'Node'
            and e['name'].endswith('_kernel_time')]


def onnxruntime_layers(path: str, inputs: np.ndarray,
                       num_threads: Optional[int] = None,
                       runs: int = 3) -> List[Layer]:
    """The nodes of ONNX Runtime's optimized graph of ``path`` as run.

    Args:
        path (str): ``.onnx`` file.
        inputs (np.ndarray): ``(N, 3, H, W)`` float32 network input.
        num_threads (int, optional): Intra-op threads.
        runs (int): Timed runs after one warm-up (not counted).

    Returns:
        list[Layer]: ``kernel`` the op type (``QLinearConv``, ``Conv``...),
        ``precision`` ``'int8'`` when its first input is (u)int8, else
        that input's element type (``'f32'`` for float).
    """
    with tempfile.TemporaryDirectory() as folder:
        events = _ort_events(path, inputs, num_threads, runs, folder)
    per_node: Dict[str, List[dict]] = defaultdict(list)
    for event in events:
        per_node[event['name'][:-len('_kernel_time')]].append(event)
    rows: Dict[tuple, List[float]] = {}
    for name, calls in per_node.items():
        args = calls[-1]['args']
        types = [next(iter(t)) for t in args.get('input_type_shape', [])]
        kind = types[0] if types else 'none'
        kind = 'int8' if kind in INT8_TYPES else dict(float='f32').get(
            kind, kind)
        # The first call is the warm-up run.
        rows[(name, args['op_name'], args['op_name'], kind)] = [
            e['dur'] / 1e3 for e in calls[1:] or calls]
    return _median_rows(rows)


def summarize(layers: Sequence[Layer]) -> Dict[tuple, Dict[str, float]]:
    """Per ``(op, precision)``: ``count`` and total ``ms``, slowest first."""
    totals: Dict[tuple, Dict[str, float]] = defaultdict(
        lambda: dict(count=0, ms=0.))
    for layer in layers:
        entry = totals[(layer.op, layer.precision)]
        entry['count'] += 1
        entry['ms'] += layer.ms
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]['ms']))


def convolutions(layers: Sequence[Layer]) -> List[Layer]:
    """The layers of :data:`CONV_OPS` (ONNX Runtime also runs per-channel
    float multiplies, e.g. the L2 norm's scale, as NCHWc ``Conv``)."""
    return [layer for layer in layers if layer.op in CONV_OPS]
