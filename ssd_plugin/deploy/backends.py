"""Inference sessions over an exported ONNX file: ONNX Runtime and OpenVINO.

They live in :mod:`ssd_runtime.backends`, the torch-free runtime, so a
deployed program and :class:`ssd_plugin.deploy.DeployedDetector` run the
same sessions; this module keeps their names importable from
``ssd_plugin.deploy``.
"""
from ssd_runtime.backends import (BACKENDS, EXTRA_HINT, PRECISIONS,
                                  OnnxRuntimeSession, OpenVINOSession,
                                  build_session, import_backend, read_props)

__all__ = ['BACKENDS', 'EXTRA_HINT', 'PRECISIONS', 'OnnxRuntimeSession',
           'OpenVINOSession', 'build_session', 'import_backend', 'read_props']
