"""Install ssd_plugin: ``pip install -e .`` (``tools/setup_env.sh`` does it for you).

mmcv 2.1.0 has no wheel for recent torch and is compiled from source by
``tools/setup_env.sh``; the ranges below only say what works together.
"""
import os.path as osp

from setuptools import find_packages, setup


def read_version() -> str:
    namespace: dict = {}
    with open(osp.join(osp.dirname(__file__), 'ssd_plugin', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='ssd_plugin',
    version=read_version(),
    description='SSD: Single Shot MultiBox Detector as an MMDetection 3.x plugin',
    long_description=open('README.md', encoding='utf-8').read()
    if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    # ssd_runtime (runtime/, also installable alone from there: a deployed
    # SSD without torch or mmdet) is part of this install too: DeployedDetector
    # runs its sessions.
    packages=find_packages(include=['ssd_plugin', 'ssd_plugin.*']) +
    ['ssd_runtime'],
    package_dir={'ssd_runtime': 'runtime/ssd_runtime'},
    python_requires='>=3.9,<3.13',
    install_requires=[
        # compat.py: torch.serialization.safe_globals with (callable, name)
        # entries (2.6); tested with the pin of requirements/constraints.txt.
        'torch>=2.6',
        'mmengine>=0.10.0,<1.0',
        'mmcv>=2.0.0,<2.2.0',
        'mmdet>=3.3.0,<3.4',
        'numpy',
        'pycocotools',
    ],
    extras_require={
        'tests': ['pytest>=8', 'pytest-xdist', 'hypothesis>=6', 'openmim',
                  'psutil'],
        # ONNX export, ONNX Runtime / OpenVINO inference, INT8 (README).
        'deploy': ['onnx>=1.16', 'onnxruntime>=1.18', 'openvino>=2024.0'],
    },
    # The deployed-model command (ssd_runtime/detect.py); also installed by
    # runtime/pyproject.toml for ssd_runtime alone.
    entry_points={'console_scripts': ['ssd-detect = ssd_runtime.detect:main']},
    license='Apache-2.0',
    zip_safe=False,
)
