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
and their range; ratios to ORT FP32). Then ``ssd-detect`` on a generated
video (decoding, drawing, encoding, JSON) against the runtime alone on the
same frames, with the fastest contender. The machine (CPU, flags, threads,
versions) and the load average are printed with the figures
(``ssd_plugin.deploy.runtime_benchmark``). ``ONEDNN_MAX_CPU_ISA=AVX2`` in the
environment caps OpenVINO's kernels at AVX2 (an AVX2-only CPU's instruction
set on this one).
"""
import argparse
import os
import os.path as osp
import tempfile
from typing import List, Optional

import cv2

from ssd_plugin.deploy.runtime_benchmark import (CONTENDERS, build_contenders,
                                                 detect_vs_runtime,
                                                 export_benchmark_model,
                                                 report_fps, time_contenders)
from ssd_plugin.testing.shapes_video import make_shapes_video
from ssd_plugin.utils.benchmark import SAMPLE_DIR, read_images
from ssd_runtime.machine import describe_machine

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SSDLITE = osp.join(REPO_ROOT, 'configs', 'ssdlite',
                   'ssdlite_mobilenetv2_320_coco.py')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=SSDLITE)
    parser.add_argument('--images', nargs='*', default=[
        osp.join(SAMPLE_DIR, 'grace_hopper.jpg')],
        help="photographs to time on (default: matplotlib's grace_hopper)")
    parser.add_argument('--sizes', nargs='*', default=['640x480', '1280x720'],
                        help='the first photograph also resized to these '
                        'WxH (camera frames)')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--calls', type=int, default=30,
                        help='calls per image and contender in a round')
    parser.add_argument('--video-frames', type=int, default=150,
                        help='frames of the ssd-detect video (0: skip it)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    """Export, time, print; return the median FPS per contender."""
    args = parse_args(argv)
    for flag in ('threads', 'rounds', 'calls'):
        if getattr(args, flag) < 1:
            raise ValueError(f'--{flag}={getattr(args, flag)}: give >= 1')
    cv2.setNumThreads(args.threads)
    images = read_images(args.images)
    for size in args.sizes:
        width, height = (int(v) for v in size.split('x'))
        images.append(cv2.resize(images[0], (width, height)))
    with tempfile.TemporaryDirectory() as work_dir:
        paths = export_benchmark_model(args.config, images, work_dir,
                                       args.seed)
        detectors = build_contenders(paths, args.threads)
        counts = {name: [len(d(im)) for im in images]
                  for name, d in detectors.items()}
        print(describe_machine(args.threads))
        if os.environ.get('ONEDNN_MAX_CPU_ISA'):
            print(f'ONEDNN_MAX_CPU_ISA={os.environ["ONEDNN_MAX_CPU_ISA"]}: '
                  "OpenVINO's kernels capped at that instruction set (ONNX "
                  'Runtime ignores it)')
        print(f'load average {os.getloadavg()[0]:.2f} (1 min) at the start; '
              f'{osp.basename(args.config)}; images '
              f'{[im.shape[:2] for im in images]}; (box, class) pairs above '
              f'score_thr per image {paths["candidates"]}; detections per '
              f'image {counts}')
        means = time_contenders(detectors, images * args.calls,
                                args.rounds)
        fps = report_fps(means)
        print(f'load average {os.getloadavg()[0]:.2f} (1 min) at the end')
        if args.video_frames:
            best = max(fps, key=fps.get)
            _, kind, backend, precision = next(
                c for c in CONTENDERS if c[0] == best)
            video = make_shapes_video(osp.join(work_dir, 'shapes.mp4'),
                                      args.video_frames, seed=args.seed)
            detect, alone = detect_vs_runtime(
                paths[kind], backend, precision, args.threads,
                video['path'], work_dir, args.rounds)
            print(f'ssd-detect on a {video["frame_size"][0]}x'
                  f'{video["frame_size"][1]} video of {args.video_frames} '
                  f'frames ({best}; --out video, --json): {detect:.1f} FPS, '
                  f'the runtime alone on its frames {alone:.1f} FPS: '
                  f'{detect / alone:.0%} (median of {args.rounds})')
    return fps


if __name__ == '__main__':
    main()
