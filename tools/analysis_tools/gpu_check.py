"""SSD300 on a GPU in one run: NMS, CPU equivalence, AMP, speed, deployment.

Runs the checks of ``ssd_plugin.utils.gpu_check`` in order, prints each
result as it comes and writes them all to ``--out`` (JSON); exits 1 if a
check failed. ``--device cpu`` runs every check at small sizes (CI does).

Plan for a lent GPU machine with no network (one H200: Python 3.12, torch
2.11 + CUDA 13.0, nvcc, numpy, OpenCV, onnx, onnxruntime; no mmengine,
mmcv, mmdet or pycocotools; our pins do not apply there). Nothing is
compiled there: what it lacks travels as wheels in ``.whl/`` (git-ignored),
prepared on the CPU machine (commands in docs/gpu.md, "The GPU check"):

1. mmcv 2.1.0 compiled for that exact stack: a Python 3.12 venv with PyPI's
   ``torch==2.11.0`` (its CUDA 13.0 build, the GPU machine's), CUDA 13.0's
   nvcc, ``CPATH`` on the venv's ``nvidia/cu13/include`` (torch's
   ``CUDAContextLight.h`` includes ``cusparse.h``, which a toolkit without
   the math libraries lacks), ``MMCV_WITH_OPS=1 FORCE_CUDA=1
   TORCH_CUDA_ARCH_LIST=9.0 pip wheel --no-build-isolation --no-deps``:
   136 compile steps (59 CUDA files) for sm_90 only, about 80 CPU-minutes
   (82 min of wall time on 2 shared cores; on the GPU machine's 16 cores an
   estimated 5-6 min, most of a 9-minute call, hence built here). 37.8 MB,
   6.0 MB with ``_ext``'s debug sections stripped (``wheel unpack``,
   ``strip --strip-debug``, ``wheel pack``).
2. For Python 3.12 (``pip download --no-deps --only-binary=:all:
   --python-version 3.12``): mmengine 0.10.7, mmdet 3.3.0, addict, yapf,
   platformdirs, termcolor, terminaltables, pycocotools, shapely; 12 MB
   with mmcv.
3. One call, ``timeout_s`` 420 (a rerun fits in the 15 minutes):
   ``pip install --no-index --no-deps --target /tmp/site .whl/*.whl``
   (2 s), ``PYTHONPATH=/tmp/site:.:runtime``, this script with ``--device
   cuda --out $OUT/gpu_check.json``: an estimated 3 minutes on the H200.

Checked on the CPU machine with the same wheels in that Python 3.12 venv:
mmcv's ops report CUDA 13.0, import beside torch 2.11.0+cu130, and
``--device cpu`` passes every check (49 s).
"""
import argparse
import json
import sys
import time
import warnings

warnings.filterwarnings('ignore', message='pkg_resources is deprecated',
                        category=UserWarning)
import torch  # noqa: E402

from ssd_plugin.utils import gpu_check  # noqa: E402
from ssd_runtime.machine import describe_machine  # noqa: E402

# (GPU, CPU) sizes of each check.
SIZES = dict(nms_boxes=(5000, 500), equivalence_batch=(8, 1),
             amp_iters=(50, 1), amp_batch=(32, 1), speed_batches=((1, 64),
                                                                  (1, )),
             speed_iters=(20, 1), speed_rounds=(3, 1), warmup=(3, 0),
             train_batch=(32, 1), train_iters=(10, 1), deploy_batch=(4, 1))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda',
                        help="'cuda' (default), 'cuda:1' or 'cpu' (small)")
    parser.add_argument('--out', default='gpu_check.json',
                        help='JSON file for every result')
    parser.add_argument('--skip', nargs='*', default=[],
                        choices=('nms', 'equivalence', 'amp', 'speed',
                                 'deploy'), help='checks to leave out')
    args = parser.parse_args(argv)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error(f'--device {args.device}: torch {torch.__version__} '
                     'sees no CUDA device; run on a GPU machine with a CUDA '
                     'build of torch, or pass --device cpu')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    cuda = args.device.startswith('cuda')
    size = {k: v[0] if cuda else v[1] for k, v in SIZES.items()}
    header = describe_machine(torch.get_num_threads(), modules=(
        'torch', 'mmcv', 'mmdet', 'mmengine', 'onnxruntime'))
    if cuda:
        header += (f'; GPU: {torch.cuda.get_device_name(args.device)}, CUDA '
                   f'{torch.version.cuda}, cuDNN '
                   f'{torch.backends.cudnn.version()}')
    print(header, flush=True)
    results = dict(machine=header, device=args.device)
    checks = dict(
        nms=lambda: gpu_check.check_nms(args.device, size['nms_boxes']),
        equivalence=lambda: gpu_check.check_equivalence(
            args.device, size['equivalence_batch']),
        amp=lambda: gpu_check.check_amp(
            args.device, size['amp_iters'], size['amp_batch'],
            ('fp32', 'fp16', 'bf16') if cuda else ('fp32', 'bf16')),
        speed=lambda: gpu_check.speed(
            args.device, size['speed_batches'], size['speed_iters'],
            size['speed_rounds'], size['train_batch'], size['train_iters'],
            ('fp32', 'fp16', 'bf16') if cuda else ('fp32', ), size['warmup']),
        deploy=lambda: gpu_check.check_deploy(args.device,
                                              size['deploy_batch']))
    for name, check in checks.items():
        if name in args.skip:
            continue
        start = time.perf_counter()
        try:
            results[name] = check()
        except Exception as error:  # report, go on with the other checks
            results[name] = dict(passed=False, error=repr(error))
        results[name]['seconds'] = round(time.perf_counter() - start, 1)
        print(f'[{name}] ' + json.dumps(results[name], indent=1), flush=True)
        with open(args.out, 'w') as f:  # whatever finished, if killed later
            json.dump(results, f, indent=1)
    failed = [k for k, v in results.items()
              if isinstance(v, dict) and not v.get('passed', True)]
    print(f'failed: {failed}' if failed else 'all checks passed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
