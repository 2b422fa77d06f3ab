"""Inference sessions over an exported ONNX file: ONNX Runtime and OpenVINO.

Each session is a callable from a float32 ``(N, 3, H, W)`` array to the
model's outputs as numpy arrays, in the model's output order. The backend
packages come with the ``deploy`` extra (``pip install -e .[deploy]``);
a missing one is an ``ImportError`` that says so.
"""
import importlib
import os.path as osp
from types import ModuleType
from typing import Dict, List, Optional

import numpy as np

EXTRA_HINT = ("install the deploy extra: pip install -e '.[deploy]' (onnx, "
              'onnxruntime, openvino at the versions of '
              'requirements/constraints.txt)')
BACKENDS = ('onnxruntime', 'openvino')
# Per backend, the precisions it can be asked for. INT8 is a property of
# the file (tools/deployment/quantize.py), not of the session.
PRECISIONS = dict(onnxruntime=('f32', ), openvino=('f32', 'bf16'))


def import_backend(name: str) -> ModuleType:
    """Import an optional deployment package, naming the extra if missing.

    Args:
        name (str): Module name, e.g. ``'onnxruntime'``.

    Raises:
        ImportError: If it is not installed.
    """
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ImportError(f'{name} is not installed ({error}); '
                          f'{EXTRA_HINT}') from error


class OnnxRuntimeSession:
    """ONNX Runtime on the CPU.

    Args:
        path (str): ``.onnx`` file.
        num_threads (int, optional): Intra-op threads; None: ONNX
            Runtime's default (all cores).
    """

    def __init__(self, path: str, num_threads: Optional[int] = None) -> None:
        ort = import_backend('onnxruntime')
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            path, options, providers=['CPUExecutionProvider'])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, inputs: np.ndarray) -> List[np.ndarray]:
        """Outputs for ``(N, 3, H, W)`` float32 ``inputs``."""
        return self.session.run(None, {self.input_name: inputs})


class OpenVINOSession:
    """OpenVINO on the CPU with an explicit precision hint.

    OpenVINO's CPU plugin runs in bf16 by default where the CPU has
    AVX-512 BF16 or AMX; ``'f32'`` is therefore set explicitly, never
    left to the default.

    Args:
        path (str): ``.onnx`` file (read by OpenVINO's ONNX frontend).
        precision (str): ``INFERENCE_PRECISION_HINT``: ``'f32'`` or
            ``'bf16'``.
        num_threads (int, optional): ``INFERENCE_NUM_THREADS``; None: all.
    """

    def __init__(self, path: str, precision: str = 'f32',
                 num_threads: Optional[int] = None) -> None:
        ov = import_backend('openvino')
        config: Dict[str, str] = {'INFERENCE_PRECISION_HINT': precision,
                                  'PERFORMANCE_HINT': 'LATENCY'}
        if num_threads:
            config['INFERENCE_NUM_THREADS'] = str(num_threads)
        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(path), 'CPU',
                                           config)
        self.request = self.compiled.create_infer_request()

    def __call__(self, inputs: np.ndarray) -> List[np.ndarray]:
        """Outputs for ``(N, 3, H, W)`` float32 ``inputs``."""
        results = self.request.infer({0: inputs})
        return [np.asarray(results[out]) for out in self.compiled.outputs]


def build_session(path: str, backend: str = 'onnxruntime',
                  precision: str = 'f32', num_threads: Optional[int] = None):
    """A session for ``path`` on ``backend`` at ``precision``.

    Args:
        path (str): ``.onnx`` file.
        backend (str): One of :data:`BACKENDS`.
        precision (str): One of ``PRECISIONS[backend]``.
        num_threads (int, optional): CPU threads; None: the backend's
            default.

    Returns:
        OnnxRuntimeSession | OpenVINOSession: The callable session.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: On an unknown backend or precision.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'no ONNX model at {path!r}; export one '
                                'with tools/deployment/export_onnx.py')
    if backend not in PRECISIONS:
        raise ValueError(f'backend={backend!r}; use one of {BACKENDS}')
    if precision not in PRECISIONS[backend]:
        raise ValueError(
            f'precision={precision!r} is not available on {backend}; use '
            f'one of {PRECISIONS[backend]} (INT8: quantize the file with '
            'tools/deployment/quantize.py and run that)')
    if backend == 'onnxruntime':
        return OnnxRuntimeSession(path, num_threads)
    return OpenVINOSession(path, precision, num_threads)
