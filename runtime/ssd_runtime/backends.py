"""Inference sessions over an exported ONNX file: ONNX Runtime and OpenVINO.

Each session is built once from the file and is a callable from the graph's
input array (``uint8 (N, H, W, 3)`` or ``float32 (N, 3, H, W)``, see
:mod:`ssd_runtime.metadata`) to the model's outputs as numpy arrays, in the
model's output order. It also reads the model's ``metadata_props``
(:attr:`props`) through the backend itself, so the runtime needs no ``onnx``
package. A missing backend is an ``ImportError`` naming what to install.
"""
import argparse
import importlib
import importlib.util
import os
import os.path as osp
from types import ModuleType
from typing import Dict, List, Optional

import numpy as np

BACKEND_HINT = ("install it: pip install './runtime[{name}]' (ssd_runtime "
                "alone) or pip install -e '.[deploy]' (with ssd_plugin)")
EXTRA_HINT = ("install ssd_plugin's deploy extra: pip install -e '.[deploy]' "
              '(onnx, onnxruntime, openvino at the versions of '
              'requirements/constraints.txt)')
# Per backend, the precisions it can be asked for. INT8 is a property of
# the file (tools/deployment/quantize.py), not of the session.
PRECISIONS = dict(onnxruntime=('f32', ), openvino=('f32', 'bf16'))
BACKENDS = tuple(PRECISIONS)
# Every precision of some backend, in order (the command lines' choices).
ALL_PRECISIONS = tuple(dict.fromkeys(p for ps in PRECISIONS.values()
                                     for p in ps))


def add_backend_args(parser: argparse.ArgumentParser,
                     backend: str = 'onnxruntime') -> None:
    """Add ``--backend``, ``--precision`` and ``--threads`` to a command
    line, their choices from :data:`PRECISIONS` (``backend``: the
    default)."""
    parser.add_argument('--backend', choices=BACKENDS, default=backend)
    parser.add_argument(
        '--precision', choices=ALL_PRECISIONS, default='f32',
        help='; '.join(f'{name}: {", ".join(kinds)}'
                       for name, kinds in PRECISIONS.items()))
    parser.add_argument('--threads', type=int, default=None,
                        help='backend CPU threads (default: all cores)')


def import_backend(name: str) -> ModuleType:
    """Import an optional package, naming what to install if missing.

    Args:
        name (str): Module name, e.g. ``'onnxruntime'``.

    Raises:
        ImportError: If it is not installed.
    """
    try:
        return importlib.import_module(name)
    except ImportError as error:
        package = name.split('.')[0]
        hint = BACKEND_HINT.format(name=package) if package in BACKENDS \
            else EXTRA_HINT
        raise ImportError(f'{name} is not installed ({error}); {hint}') \
            from error


def _check_file(path: str) -> None:
    if not osp.isfile(path):
        raise FileNotFoundError(f'no ONNX model at {path!r}; export one '
                                'with tools/deployment/export_onnx.py')


def total_threads(num_threads: Optional[int]) -> int:
    """``num_threads``, or the CPU count where it is None."""
    return num_threads or os.cpu_count() or 1


def stream_threads(num_threads: Optional[int], streams: int
                   ) -> Optional[int]:
    """Threads per stream when ``num_threads`` are shared by ``streams``.

    One stream keeps ``num_threads`` (None: the backend's default). Several
    (throughput: an image per stream, the streams side by side) each get an
    equal share, at least one; None shares the CPU count.

    Raises:
        ValueError: If ``streams < 1``, or more streams than threads.
    """
    if not isinstance(streams, int) or streams < 1:
        raise ValueError(f'streams={streams!r}; use 1 (every thread on one '
                         'image) or more (images side by side)')
    if streams == 1:
        return num_threads
    total = total_threads(num_threads)
    if streams > total:
        raise ValueError(f'streams={streams} is more than the {total} '
                         'threads; use at most one stream per thread')
    return total // streams


class OnnxRuntimeSession:
    """ONNX Runtime on the CPU.

    Args:
        path (str): ``.onnx`` file.
        num_threads (int, optional): Intra-op threads, shared out among the
            streams; None: ONNX Runtime's default (all cores) for one
            stream, the CPU count for several.
        optimize (bool): Apply ONNX Runtime's graph optimisations (off only
            to read the metadata fast).
        streams (int): Sessions that may run at once, each called from its
            own thread (``stream=i``); ONNX Runtime releases the GIL while
            it runs.

    Raises:
        ValueError: If ONNX Runtime cannot load ``path`` as a model.
    """

    def __init__(self, path: str, num_threads: Optional[int] = None,
                 optimize: bool = True, streams: int = 1) -> None:
        ort = import_backend('onnxruntime')
        _check_file(path)
        num_threads = stream_threads(num_threads, streams)
        options = ort.SessionOptions()
        # Errors only: the quantizer leaves unused initializers that ONNX
        # Runtime lists one warning each at every load.
        options.log_severity_level = 3
        if not optimize:
            options.graph_optimization_level = \
                ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        try:
            self.sessions = [ort.InferenceSession(
                path, options, providers=['CPUExecutionProvider'])
                for _ in range(streams)]
        except Exception as error:  # InvalidProtobuf, Fail, ...
            raise ValueError(f'{path!r} is not an ONNX model ONNX Runtime '
                             f'can load ({error})') from error
        self.input_name = self.sessions[0].get_inputs()[0].name
        self.props: Dict[str, str] = dict(
            self.sessions[0].get_modelmeta().custom_metadata_map)

    def __call__(self, inputs: np.ndarray,
                 stream: int = 0) -> List[np.ndarray]:
        """Outputs for the graph's input array, on session ``stream``."""
        return self.sessions[stream].run(None, {self.input_name: inputs})


def openvino_props(model) -> Dict[str, str]:
    """``metadata_props`` of an ONNX file read by OpenVINO.

    OpenVINO's ONNX frontend keeps them in the model's runtime info, under
    ``framework``, one ``OVAny`` per key.
    """
    if not model.has_rt_info('framework'):
        return {}
    return {key: value.astype(str)
            for key, value in model.get_rt_info()['framework'].items()}


class OpenVINOSession:
    """OpenVINO on the CPU with an explicit precision hint.

    OpenVINO's CPU plugin runs in bf16 by default where the CPU has
    AVX-512 BF16 or AMX; ``'f32'`` is therefore set explicitly, never
    left to the default.

    Args:
        path (str): ``.onnx`` file (read by OpenVINO's ONNX frontend).
        precision (str): ``INFERENCE_PRECISION_HINT``: ``'f32'`` or
            ``'bf16'``.
        num_threads (int, optional): ``INFERENCE_NUM_THREADS``, all the
            streams' together; None: all.
        streams (int): 1: ``PERFORMANCE_HINT`` ``LATENCY`` (every thread
            on one image); more: ``NUM_STREAMS`` (OpenVINO's throughput
            mode: the threads split among the streams, each image on one)
            and an infer request per stream, each called from its own
            thread (``stream=i``; OpenVINO releases the GIL while it runs).

    Raises:
        ValueError: If OpenVINO cannot read ``path`` as a model.
    """

    def __init__(self, path: str, precision: str = 'f32',
                 num_threads: Optional[int] = None,
                 streams: int = 1) -> None:
        ov = import_backend('openvino')
        _check_file(path)
        stream_threads(num_threads, streams)  # checks the pair
        config: Dict[str, str] = {'INFERENCE_PRECISION_HINT': precision}
        if streams == 1:
            config['PERFORMANCE_HINT'] = 'LATENCY'
        else:
            config['NUM_STREAMS'] = str(streams)
            # Unpinned: ssd-detect's reading, drawing and encoding threads
            # share the cores with the streams (120 vs 113 FPS, median of
            # 3, on 2 cores: no worse). Two 1-thread compiled models, each
            # pinned, were both pinned to the first core (0.7x).
            config['ENABLE_CPU_PINNING'] = 'NO'
        if num_threads:
            config['INFERENCE_NUM_THREADS'] = str(num_threads)
        core = ov.Core()
        try:
            model = core.read_model(path)
        except Exception as error:  # RuntimeError of the ONNX frontend
            raise ValueError(f'{path!r} is not an ONNX model OpenVINO can '
                             f'load ({error})') from error
        self.props = openvino_props(model)
        self.compiled = core.compile_model(model, 'CPU', config)
        self.requests = [self.compiled.create_infer_request()
                         for _ in range(streams)]
        self.outputs = list(self.compiled.outputs)

    def __call__(self, inputs: np.ndarray,
                 stream: int = 0) -> List[np.ndarray]:
        """Outputs for the graph's input array, on request ``stream``."""
        # share_inputs: no copy in; outputs are copied out (the request
        # reuses its buffers on the next call).
        results = self.requests[stream].infer({0: inputs}, share_inputs=True)
        return [results[out] for out in self.outputs]


def build_session(path: str, backend: str = 'onnxruntime',
                  precision: str = 'f32', num_threads: Optional[int] = None,
                  streams: int = 1):
    """A session for ``path`` on ``backend`` at ``precision``.

    Args:
        path (str): ``.onnx`` file.
        backend (str): One of :data:`BACKENDS`.
        precision (str): One of ``PRECISIONS[backend]``.
        num_threads (int, optional): CPU threads, all streams together;
            None: the backend's default.
        streams (int): Images that may run at once, one per thread
            (:func:`stream_threads`).

    Returns:
        OnnxRuntimeSession | OpenVINOSession: The callable session.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: On an unknown backend or precision, or a file the
            backend cannot load.
        ImportError: If the backend is not installed.
    """
    if backend not in PRECISIONS:
        raise ValueError(f'backend={backend!r}; use one of {BACKENDS}')
    if precision not in PRECISIONS[backend]:
        raise ValueError(
            f'precision={precision!r} is not available on {backend}; use '
            f'one of {PRECISIONS[backend]} (INT8: quantize the file with '
            'tools/deployment/quantize.py and run that)')
    _check_file(path)
    if backend == 'onnxruntime':
        return OnnxRuntimeSession(path, num_threads, streams=streams)
    return OpenVINOSession(path, precision, num_threads, streams)


def read_props(path: str) -> Dict[str, str]:
    """``metadata_props`` of ``path`` through whichever backend is installed
    (ONNX Runtime first; OpenVINO reads the file without compiling it).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If it is no ONNX model.
        ImportError: If neither backend is installed.
    """
    _check_file(path)
    for name in BACKENDS:
        if importlib.util.find_spec(name) is not None:
            break
    else:
        raise ImportError('neither onnxruntime nor openvino is installed; '
                          + BACKEND_HINT.format(name='onnxruntime'))
    if name == 'onnxruntime':
        return OnnxRuntimeSession(path, num_threads=1, optimize=False).props
    try:
        model = import_backend('openvino').Core().read_model(path)
    except Exception as error:
        raise ValueError(f'{path!r} is not an ONNX model OpenVINO can load '
                         f'({error})') from error
    return openvino_props(model)
