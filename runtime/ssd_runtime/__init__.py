"""ssd_runtime: run an exported SSD with one backend, numpy and OpenCV.

The deployment side of ssd_plugin, importable where torch, mmengine, mmcv
and mmdet are not installed (a camera box, an edge server, a container):
it needs numpy, OpenCV and ONNX Runtime or OpenVINO, nothing else. It is
installed alone from ``runtime/`` (``pip install './runtime[onnxruntime]'``)
and is part of ``ssd_plugin``'s own install, which uses it for
:class:`ssd_plugin.deploy.DeployedDetector`.

- :mod:`~ssd_runtime.detector`: :class:`Detector`, BGR images in,
  :class:`Detections` (numpy) out;
- :mod:`~ssd_runtime.detect`: the ``ssd-detect`` command (images, folders,
  videos, cameras), with :mod:`~ssd_runtime.sources` (frames in),
  :mod:`~ssd_runtime.outputs` (drawn frames, COCO JSON out) and
  :mod:`~ssd_runtime.pipeline` (reading and writing threads);
- :mod:`~ssd_runtime.metadata`: what an export records about itself;
- :mod:`~ssd_runtime.preprocess`: SSD's test pipeline in numpy and OpenCV;
- :mod:`~ssd_runtime.detections`: the graph's outputs in the image;
- :mod:`~ssd_runtime.backends`: ONNX Runtime and OpenVINO sessions;
- :mod:`~ssd_runtime.machine`: the CPU, its instruction sets, threads and
  backend versions, printed beside every figure our benchmarks give.

Nothing here imports torch, mmengine, mmcv, mmdet or onnx.
"""
from ssd_runtime.detections import Detections
from ssd_runtime.detector import Detector
from ssd_runtime.machine import describe_machine
from ssd_runtime.metadata import ModelInfo

__version__ = '0.1.0'
__all__ = ['Detections', 'Detector', 'ModelInfo', 'describe_machine']
