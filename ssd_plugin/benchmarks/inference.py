"""CPU inference speed end to end: mmdet's SSD300 against ours on the same
images (``tools/analysis_tools/benchmark_inference.py``).

mmdet's SSD300 has random weights, its head calibrated to trained-like
scores (:func:`~ssd_plugin.utils.mmdet_ssd.calibrate_head`); ours gets the
same weights through :func:`ssd_plugin.converters.from_mmdet.convert`. A
contender is ``(name, fn(images) -> DetDataSamples)``, timed interleaved
in this process (:func:`~ssd_plugin.utils.benchmark.time_interleaved`);
append one to :func:`build_contenders`'s list to compare another path.
"""
import os.path as osp
import tempfile
from functools import partial
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.apis import inference_detector
from mmdet.structures import DetDataSample
from torch import nn

from ssd_plugin.converters import from_mmdet
from ssd_plugin.utils.benchmark import (check_timing_args,
                                        detection_agreement, read_images,
                                        report, sample_dir,
                                        set_process_threads, time_interleaved)
from ssd_plugin.utils.config import SSD300_COCO, load_config
from ssd_plugin.utils.mmdet_ssd import (build_mmdet_ssd300, calibrate_head,
                                        count_candidates,
                                        init_without_checkpoint)
from ssd_plugin.utils.network_input import network_inputs
from ssd_runtime.machine import describe_machine

BASELINE, REFERENCE = 'mmdet', 'ssd_plugin'
MACHINE_MODULES = ('torch', 'mmdet', 'numpy', 'cv2', 'onnxruntime',
                   'openvino')

Detector = Callable[[Sequence[np.ndarray]], List[DetDataSample]]
Contender = Tuple[str, Detector]


def load_images(paths: Sequence[str], num_random: int,
                seed: int) -> List[np.ndarray]:
    """BGR images: the given files, then random ones of assorted shapes."""
    images = read_images(paths)
    rng = np.random.default_rng(seed)
    for _ in range(num_random):
        height, width = rng.integers(200, 640, size=2)
        images.append(rng.integers(0, 256, (height, width, 3), np.uint8))
    return images


def build_models(image: np.ndarray, same_test_cfg: bool = False,
                 logit_std: float = 1.0, background_bias: float = 7.0,
                 cfg_options: Optional[dict] = None
                 ) -> Tuple[nn.Module, nn.Module]:
    """mmdet's SSD300 and ours, in eval mode on the CPU.

    Args:
        image (np.ndarray): BGR image mmdet's random head is calibrated on.
        same_test_cfg (bool): Both on mmdet's ``test_cfg`` with
            ``nms_pre=10**6`` (every candidate: identical detections);
            else each on its own.
        logit_std, background_bias (float): Of :func:`calibrate_head`.
        cfg_options (dict, optional): ``--cfg-options`` of our config.

    Returns:
        tuple[nn.Module, nn.Module]: ``(theirs, ours)``, the same weights.
    """
    theirs = build_mmdet_ssd300(nms_pre=10**6 if same_test_cfg else None)
    calibrate_head(theirs, network_inputs(theirs.cfg, [image])[0],
                   logit_std, background_bias)
    our_cfg = load_config(SSD300_COCO, cfg_options)
    if same_test_cfg:
        our_cfg.model.test_cfg = theirs.cfg.model.test_cfg
    ours = init_without_checkpoint(our_cfg)  # the weights are mmdet's
    ours.load_state_dict(from_mmdet.convert(theirs.state_dict(), our_cfg))
    ours.dataset_meta = dict(theirs.dataset_meta)
    return theirs, ours.eval()


def build_contenders(theirs: nn.Module, ours: nn.Module,
                     images: Sequence[np.ndarray], deploy: bool,
                     threads: Optional[int],
                     work_dir: str) -> List[Contender]:
    """The detectors compared, each printed with its post-processing;
    with ``deploy`` also ours deployed (:mod:`.deployed`, files in
    ``work_dir``)."""
    # Both configs make the same network inputs (their test pipelines and
    # preprocessors agree: tests/test_inference_equivalence.py).
    inputs = network_inputs(ours.cfg, images)
    for name, model in ((BASELINE, theirs), (REFERENCE, ours)):
        cfg = model.bbox_head.test_cfg
        counts = count_candidates(model, inputs, cfg['score_thr'])
        print(f'{name:>10}: score_thr={cfg["score_thr"]} (candidates per '
              f'image: {counts}), nms_pre={cfg["nms_pre"]}')
    contenders = [(BASELINE, partial(inference_detector, theirs)),
                  (REFERENCE, partial(inference_detector, ours))]
    if deploy:  # ONNX Runtime / OpenVINO paths (docs/deployment.md)
        from ssd_plugin.benchmarks.deployed import deployment_contenders
        contenders += deployment_contenders(ours, images, work_dir, threads)
    return contenders


def print_agreement(contenders: Sequence[Contender],
                    images: Sequence[np.ndarray]) -> None:
    """Each contender's detections per image, and how many agree with
    :data:`REFERENCE`'s (see ``detection_agreement``)."""
    results = {name: [fn([image])[0].pred_instances for image in images]
               for name, fn in contenders}
    for name, preds in results.items():
        counts = [detection_agreement(ref, pred)
                  for ref, pred in zip(results[REFERENCE], preds)]
        agree, total = (sum(c) for c in zip(*counts))
        share = f'{100 * agree / total:.1f}%' if total else 'both empty'
        print(f'{name:>10}: detections per image {[len(p) for p in preds]}, '
              f'{agree} of {total} agree with {REFERENCE} ({share})')


def run(images: Optional[Sequence[str]] = None, random_images: int = 3,
        rounds: int = 10, threads: Optional[int] = None, warmup: int = 1,
        test_cfg: str = 'own', logit_std: float = 1.0,
        background_bias: float = 7.0, seed: int = 0, deploy: bool = False,
        cfg_options: Optional[dict] = None) -> float:
    """Run the benchmark and print its report.

    Args:
        images (Sequence[str], optional): Photographs; None:
            ``grace_hopper.jpg`` of matplotlib's sample data.
        random_images (int): Random images of 200-640 px sides to add.
        rounds, threads: Interleaved timed rounds; torch and OpenCV threads
            (None: torch's default).
        warmup (int): Untimed rounds first.
        test_cfg (str): ``'own'`` (each config's) or ``'same'``
            (:func:`build_models`).
        logit_std, background_bias (float): Of the calibrated head.
        seed (int): Of the weights and the random images.
        deploy (bool): Also ours deployed (:mod:`.deployed`).
        cfg_options (dict, optional): Overrides of our config.

    Returns:
        float: mmdet's median time over ours.
    """
    check_timing_args(rounds, threads)
    set_process_threads(threads)
    print(describe_machine(threads, modules=MACHINE_MODULES))
    torch.manual_seed(seed)
    if images is None:
        images = [osp.join(sample_dir(), 'grace_hopper.jpg')]
    arrays = load_images(images, random_images, seed)
    if not arrays:
        raise ValueError('no images: pass --images or --random-images > 0')
    print(f'{len(arrays)} images x {rounds} rounds, {threads} threads, '
          f'test_cfg: {test_cfg}')
    theirs, ours = build_models(arrays[0], test_cfg == 'same', logit_std,
                                background_bias, cfg_options)
    with tempfile.TemporaryDirectory() as work_dir:  # sessions load it
        contenders = build_contenders(theirs, ours, arrays, deploy, threads,
                                      work_dir)
    print_agreement(contenders, arrays)
    inputs = [[image] for image in arrays]  # batch 1
    times = time_interleaved(dict(contenders), inputs, rounds,
                             warmup=warmup * len(inputs))
    return report(times, BASELINE, unit='ms/image')[REFERENCE]
