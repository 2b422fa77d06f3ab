"""End-to-end speed of a deployed SSD through ``ssd_runtime``
(``tools/deployment/benchmark_runtime.py``).

A model of the config with random weights and a calibrated head
(:func:`ssd_plugin.utils.mmdet_ssd.calibrate_head`: a realistic number of
boxes pass the score threshold) is exported with the uint8 input and
quantized to INT8 on the benchmark's images. Each contender is an
``ssd_runtime.Detector`` (backend, precision, file) called on a BGR image:
resize, inference with the graph's post-processing, boxes mapped back --
BGR image in, detections out. They run interleaved in one process
(``time_interleaved``), so a shared machine's load hits all alike.
:func:`time_streams` runs the INT8 contenders with several inference
streams side by side (throughput) beside one; :func:`detect_vs_runtime`
compares ``ssd-detect`` on a video (decoding included; drawing and encoding
a video, or the JSON only) with the runtime alone on the same frames.
"""
import os
import os.path as osp
import statistics
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Union

import cv2
import numpy as np
import torch
from mmengine.config import Config

from ssd_plugin.deploy.export import export_onnx
from ssd_plugin.deploy.quantize import quantize_int8
from ssd_plugin.deploy.runtime import network_to_graph_input
from ssd_plugin.testing.shapes_video import make_shapes_video
from ssd_plugin.utils.benchmark import (check_timing_args, read_images,
                                        round_means, sample_dir,
                                        time_interleaved)
from ssd_plugin.utils.config import load_config
from ssd_plugin.utils.mmdet_ssd import (calibrate_head, count_candidates,
                                        random_detector)
from ssd_plugin.utils.network_input import config_input_size, network_inputs
from ssd_runtime import Detector
from ssd_runtime.detect import default_streams, parse_args
from ssd_runtime.detect import run as run_detect
from ssd_runtime.machine import describe_machine
from ssd_runtime.metadata import UINT8_BGR, read_model_info
from ssd_runtime.sources import open_source

# (name, file, backend, precision). INT8 is the file; OpenVINO runs its
# FP32 parts at the f32 hint.
CONTENDERS = (('ORT FP32', 'fp32', 'onnxruntime', 'f32'),
              ('ORT INT8', 'int8', 'onnxruntime', 'f32'),
              ('OV FP32', 'fp32', 'openvino', 'f32'),
              ('OV BF16', 'fp32', 'openvino', 'bf16'),
              ('OV INT8', 'int8', 'openvino', 'f32'))
BASELINE = 'ORT FP32'
# The contender of the throughput rows and of the ssd-detect comparison.
BEST_INT8 = 'OV INT8'


def export_benchmark_model(cfg: Config, images: Sequence[np.ndarray],
                           work_dir: str, seed: int = 0,
                           logit_std: float = 1.0,
                           background_bias: float = 7.0
                           ) -> Dict[str, Union[str, List[int]]]:
    """Export the config's model (random, head calibrated on ``images[0]``)
    with the uint8 input, and its INT8 version calibrated on ``images``.

    Returns:
        dict: ``fp32`` and ``int8`` ``.onnx`` paths; ``candidates``: per
        image the (box, class) pairs scoring above the head's
        ``score_thr``, what NMS sees before ``nms_pre``.
    """
    torch.manual_seed(seed)
    model = random_detector(cfg)
    inputs = network_inputs(model.cfg, images)
    calibrate_head(model, inputs[0], logit_std, background_bias)
    paths = dict(fp32=osp.join(work_dir, 'fp32.onnx'),
                 int8=osp.join(work_dir, 'int8.onnx'))
    export_onnx(model, paths['fp32'], config_input_size(model.cfg),
                classes=model.dataset_meta.get('classes'),
                input_format=UINT8_BGR)
    info = read_model_info(paths['fp32'])
    quantize_int8(paths['fp32'], paths['int8'],
                  [network_to_graph_input(x.numpy(), info) for x in inputs])
    paths['candidates'] = count_candidates(
        model, inputs, model.bbox_head.test_cfg['score_thr'])
    return paths


def build_contenders(paths: Dict[str, str],
                     threads: int) -> Dict[str, Detector]:
    """A :class:`~ssd_runtime.Detector` per :data:`CONTENDERS` entry."""
    return {name: Detector(paths[kind], backend, precision, threads)
            for name, kind, backend, precision in CONTENDERS}


def time_contenders(detectors: Dict[str, Detector],
                    images: Sequence[np.ndarray], rounds: int,
                    warmup: int = 3) -> Dict[str, List[float]]:
    """Per contender, the mean seconds per image of each round (a round:
    every image once), interleaved."""
    return round_means(time_interleaved(detectors, list(images), rounds,
                                        warmup=warmup * len(images)), rounds)


def report_fps(means: Dict[str, List[float]], baseline: str = BASELINE
               ) -> Dict[str, float]:
    """Print per contender its median FPS over the rounds, their range and
    the ratio to ``baseline``; return the median FPS."""
    fps = {name: [1 / s for s in values] for name, values in means.items()}
    medians = {name: statistics.median(v) for name, v in fps.items()}
    width = max(map(len, fps))
    for name, values in fps.items():
        print(f'{name:>{width}}: {medians[name]:7.1f} FPS '
              f'({1e3 / medians[name]:.2f} ms; rounds {min(values):.1f}-'
              f'{max(values):.1f}), {medians[name] / medians[baseline]:.2f}x '
              f'{baseline}')
    return medians


# ssd-detect's outputs in detect_vs_runtime: the drawn video costs an
# encode per frame, the JSON alone next to nothing.
DETECT_OUTPUTS = {'--out video, --json': ('drawn.mp4', 'detections.json'),
                  '--json only': (None, 'detections.json')}


def detect_vs_runtime(model: str, backend: str, precision: str,
                      threads: int, video: str, work_dir: str,
                      rounds: int, streams: int) -> Dict[str, float]:
    """``ssd-detect`` on ``video`` with each of :data:`DETECT_OUTPUTS`
    (``--streams streams``) against the runtime alone on its decoded frames
    (``Detector.imap``) with 1 stream and with ``streams``, alternating,
    ``rounds`` each.

    Returns:
        dict[str, float]: Median FPS of ``ssd-detect`` per outputs key, and
        of the runtime alone under ``'runtime, K streams'``.
    """
    source = open_source(video)  # the reader ssd-detect uses
    try:
        frames = [frame.image for frame in source]
    finally:
        source.close()
    alone = {f'runtime, {k} stream{"s" * (k > 1)}':
             Detector(model, backend, precision, threads, k)
             for k in sorted({1, streams})}
    common = [model, video, '--backend', backend, '--precision', precision,
              '--threads', str(threads), '--streams', str(streams),
              '--no-progress']
    argvs = {}
    for key, (drawn, json_file) in DETECT_OUTPUTS.items():
        argvs[key] = common + ['--json', osp.join(work_dir, json_file)]
        if drawn:
            argvs[key] += ['--out', osp.join(work_dir, drawn)]
    fps: Dict[str, List[float]] = {key: [] for key in [*argvs, *alone]}
    for detector in alone.values():  # warm-up
        list(detector.imap(frames[:10]))
    for _ in range(rounds):
        for key, argv in argvs.items():
            fps[key].append(run_detect(parse_args(argv))['fps'])
        for key, detector in alone.items():
            fps[key].append(1 / _imap_seconds(detector, frames))
    return {key: statistics.median(values) for key, values in fps.items()}


def _imap_seconds(detector: Detector, images: Sequence[np.ndarray]
                  ) -> float:
    """Wall seconds per image of ``detector.imap`` over ``images``."""
    start = time.perf_counter()
    for _ in detector.imap(images):
        pass
    return (time.perf_counter() - start) / len(images)


def time_streams(paths: Dict[str, str], images: Sequence[np.ndarray],
                 threads: int, streams: int, rounds: int
                 ) -> Dict[str, List[float]]:
    """Per INT8 contender with 1 and with ``streams`` streams
    (``Detector.imap``: images side by side), the mean seconds per image of
    each round (a round: every image once), the contenders alternating."""
    detectors = {}
    for name, kind, backend, precision in CONTENDERS:
        if kind == 'int8':
            for k in (1, streams):
                detectors[f'{name} x{k}'] = Detector(
                    paths[kind], backend, precision, threads, k)
    for detector in detectors.values():  # warm-up
        list(detector.imap(images[:6]))
    seconds: Dict[str, List[float]] = {name: [] for name in detectors}
    for _ in range(rounds):
        for name, detector in detectors.items():
            seconds[name].append(_imap_seconds(detector, images))
    return seconds


def run(config: str, images: Optional[Sequence[str]] = None,
        sizes: Sequence[str] = ('640x480', '1280x720'), threads: int = 2,
        rounds: int = 3, calls: int = 30, video_frames: int = 150,
        seed: int = 0, cfg_options: Optional[dict] = None
        ) -> Dict[str, float]:
    """Export, time and print; return the median FPS per contender.

    Args:
        config (str): The model's config (random weights).
        images (Sequence[str], optional): Photographs; None: matplotlib's
            ``grace_hopper.jpg``.
        sizes (Sequence[str]): ``'WxH'``: the first photograph also resized
            to these (camera frames).
        threads, rounds (int): Backend and OpenCV threads; timed rounds.
        calls (int): Calls per image and contender in a round.
        video_frames (int): Frames of the ``ssd-detect`` video (0: skip).
        seed (int): Of the weights and the video.
        cfg_options (dict, optional): Overrides of ``config``.
    """
    check_timing_args(rounds, threads)
    if calls < 1:
        raise ValueError(f'--calls={calls}: pass at least 1')
    cv2.setNumThreads(threads)
    arrays = read_images(images or [osp.join(sample_dir(),
                                             'grace_hopper.jpg')])
    for size in sizes:
        width, height = (int(v) for v in size.split('x'))
        arrays.append(cv2.resize(arrays[0], (width, height)))
    with tempfile.TemporaryDirectory() as work_dir:
        paths = export_benchmark_model(load_config(config, cfg_options),
                                       arrays, work_dir, seed)
        detectors = build_contenders(paths, threads)
        counts = {name: [len(d(im)) for im in arrays]
                  for name, d in detectors.items()}
        print(describe_machine(threads))
        if os.environ.get('ONEDNN_MAX_CPU_ISA'):
            print(f'ONEDNN_MAX_CPU_ISA={os.environ["ONEDNN_MAX_CPU_ISA"]}: '
                  "OpenVINO's kernels capped at that instruction set (ONNX "
                  'Runtime ignores it)')
        print(f'load average {os.getloadavg()[0]:.2f} (1 min) at the start; '
              f'{osp.basename(config)}; images '
              f'{[im.shape[:2] for im in arrays]}; (box, class) pairs above '
              f'score_thr per image {paths["candidates"]}; detections per '
              f'image {counts}')
        fps = report_fps(time_contenders(detectors, arrays * calls, rounds))
        streams = default_streams(threads)
        if streams > 1:
            print(f'Throughput: images side by side in {streams} streams '
                  f'({threads} threads shared), against 1 stream:')
            fps.update(report_fps(time_streams(
                paths, arrays * calls, threads, streams, rounds),
                baseline=f'{BEST_INT8} x1'))
        print(f'load average {os.getloadavg()[0]:.2f} (1 min) at the end')
        if video_frames:
            _video_report(paths, BEST_INT8, threads, streams, video_frames,
                          seed, work_dir, rounds)
    return fps


def _video_report(paths: Dict[str, str], name: str, threads: int,
                  streams: int, frames: int, seed: int, work_dir: str,
                  rounds: int) -> None:
    """Print :func:`detect_vs_runtime` for contender ``name`` on a shapes
    video of ``frames`` frames."""
    _, kind, backend, precision = next(c for c in CONTENDERS if c[0] == name)
    video = make_shapes_video(osp.join(work_dir, 'shapes.mp4'), frames,
                              seed=seed)
    fps = detect_vs_runtime(paths[kind], backend, precision, threads,
                            video['path'], work_dir, rounds, streams)
    alone = {key: fps.pop(key) for key in list(fps)
             if key.startswith('runtime')}
    width, height = video['frame_size']
    print(f'ssd-detect on a {width}x{height} video of {frames} frames '
          f'({name}, --streams {streams}) against the runtime alone on its '
          f'frames ({", ".join(f"{k}: {v:.1f} FPS" for k, v in alone.items())}'
          f'), median of {rounds}:')
    for outputs, detect in fps.items():
        shares = ', '.join(f'{detect / v:.0%} of {k}' for k, v in
                           alone.items())
        print(f'  ssd-detect {outputs}: {detect:.1f} FPS, {shares}')
