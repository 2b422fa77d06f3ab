"""Deployment out of PyTorch: ONNX export, ONNX Runtime / OpenVINO, BF16, INT8.

- :mod:`~ssd_plugin.deploy.export`: the ``end2end`` and ``raw`` graphs, with a
  float or a uint8 BGR input (:mod:`~ssd_plugin.deploy.graph_input`), and the
  head's selection in tensor ops (:mod:`~ssd_plugin.deploy.selection`).
- :mod:`~ssd_plugin.deploy.backends`: ONNX Runtime and OpenVINO sessions
  (``ssd_runtime``'s, the torch-free runtime's).
- :mod:`~ssd_plugin.deploy.runtime`: :class:`DeployedDetector`, an exported
  model as an mmdet detector (``inference_detector``, evaluators).
- :mod:`~ssd_plugin.deploy.quantize`: INT8 post-training quantization.
- :mod:`~ssd_plugin.deploy.torch_bf16`: torch bf16 autocast inference.

The backends come with the ``deploy`` extra (``pip install -e .[deploy]``);
importing this package does not need them.
"""
from .backends import build_session
from .export import End2EndSSD, RawSSD, export_onnx
from .runtime import DeployedDetector, read_metadata
from .torch_bf16 import bf16_network

__all__ = ['DeployedDetector', 'End2EndSSD', 'RawSSD', 'bf16_network',
           'build_session', 'export_onnx', 'read_metadata']
