"""Deployed SSD speed through ssd_runtime, end to end: BGR image in,
detections out, every backend and precision, side by side.

Usage::

    python tools/deployment/benchmark_runtime.py
        [--config configs/ssdlite/ssdlite_mobilenetv2_320_coco.py]
        [--threads 2] [--rounds 3] [--video-frames 150]

Exports the config's model (random weights, head calibrated so that a
realistic number of boxes pass the score threshold) with the uint8 input,
quantizes it to INT8 on the benchmark images, and times ORT FP32/INT8 and
OV FP32/BF16/INT8 interleaved in this process (median FPS over the rounds
and their range; ratios to ORT FP32); with 2 threads or more, the INT8
contenders again with 2 streams side by side against 1 (throughput). Then
``ssd-detect`` on a generated video with OpenVINO INT8 (decoding, drawing
and encoding a video and the JSON; then the JSON only) against the runtime
alone on the same frames with 1 stream and with ssd-detect's streams. The
machine (CPU, flags, threads, versions) and the load average are printed
with the figures (``ssd_plugin.benchmarks.runtime``). ``ONEDNN_MAX_CPU_ISA=AVX2`` in the
environment caps OpenVINO's kernels at AVX2 (an AVX2-only CPU's instruction
set on this one).
"""
import argparse
import os.path as osp
from typing import Dict, List, Optional

from ssd_plugin.benchmarks.runtime import run
from ssd_plugin.utils.config import REPO_ROOT, add_cfg_options

SSDLITE = osp.join(REPO_ROOT, 'configs', 'ssdlite',
                   'ssdlite_mobilenetv2_320_coco.py')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=SSDLITE)
    parser.add_argument('--images', nargs='*', default=None,
                        help="photographs to time on (default: matplotlib's "
                        'grace_hopper.jpg)')
    parser.add_argument('--sizes', nargs='*', default=['640x480', '1280x720'],
                        help='the first photograph also resized to these '
                        'WxH (camera frames)')
    parser.add_argument('--threads', type=int, default=2,
                        help='backend threads (default 2)')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--calls', type=int, default=30,
                        help='calls per image and contender in a round')
    parser.add_argument('--video-frames', type=int, default=150,
                        help='frames of the ssd-detect video (0: skip it)')
    parser.add_argument('--seed', type=int, default=0)
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    """Export, time, print; return the median FPS per contender."""
    return run(**vars(parse_args(argv)))


if __name__ == '__main__':
    main()
