"""ssd_runtime: run an exported SSD with one backend, numpy and OpenCV.

The deployment side of ssd_plugin, importable where torch, mmengine, mmcv
and mmdet are not installed (a camera box, an edge server, a container):
it needs numpy, OpenCV and ONNX Runtime or OpenVINO, nothing else. It is
installed alone from ``runtime/`` (``pip install './runtime[onnxruntime]'``)
and is part of ``ssd_plugin``'s own install, which uses it for
:class:`ssd_plugin.deploy.DeployedDetector`.

- :mod:`~ssd_runtime.machine`: the CPU, its instruction sets, threads and
  backend versions, printed beside every figure our benchmarks give.
"""
__version__ = '0.1.0'
