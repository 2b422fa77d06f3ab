"""CPU inference speed, end to end: SSD300 contenders on the same images.

A contender is ``(name, fn(images) -> DetDataSamples)``: append one to
:func:`build_contenders`'s list to compare another path (README "Speed").
"""
import argparse
import logging
import os
import os.path as osp
import runpy
import subprocess
import sys
import tempfile
from functools import partial
from typing import Callable, List, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmdet.apis import inference_detector, init_detector
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.logging import MMLogger
from torch import nn

from ssd_plugin.models.ssd_head import flatten_levels
from ssd_plugin.utils.benchmark import (MMDET_SSD300, SAMPLE_DIR,
                                        add_timing_args, check_timing,
                                        detection_agreement, read_images,
                                        report, time_interleaved)
from ssd_plugin.utils.benchmark import calibrate_head as scale_head
from ssd_runtime.machine import describe_machine

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OUR_CONFIG = osp.join(REPO_ROOT, 'configs', 'ssd', 'ssd300_coco.py')
CONVERTER = osp.join(REPO_ROOT, 'tools', 'model_converters', 'from_mmdet.py')
DEPLOY_CONTENDERS = osp.join(REPO_ROOT, 'tools', 'deployment',
                             'benchmark_contenders.py')
RGB_MEAN = (123.675, 116.28, 103.53)  # both configs' data preprocessor
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


def _probe_input(image: np.ndarray) -> torch.Tensor:
    """``(1, 3, 300, 300)``: ``image`` resized to 300x300, RGB, mean
    subtracted (both configs' preprocessing)."""
    rgb = cv2.resize(image, (300, 300))[..., ::-1].astype(np.float32)
    tensor = torch.from_numpy(rgb - np.float32(RGB_MEAN)).permute(2, 0, 1)
    return tensor[None].contiguous()


def _probe_features(model: nn.Module, image: np.ndarray) -> List[torch.Tensor]:
    """Feature maps of :func:`_probe_input`."""
    with torch.no_grad():
        return list(model.extract_feat(_probe_input(image)))


def calibrate_head(model: nn.Module, image: np.ndarray, logit_std: float,
                   background_bias: float) -> None:
    """Rescale mmdet's random SSD head in place to trained-like scores on
    ``image`` (``ssd_plugin.utils.benchmark.calibrate_head``): random weights
    score every box about ``1 / 81``, so NMS would see tens of thousands."""
    scale_head(model, _probe_input(image), logit_std, background_bias)


def count_candidates(model: nn.Module, images: Sequence[np.ndarray],
                     score_thr: float) -> List[int]:
    """(box, class) pairs per image that ``model`` scores above
    ``score_thr`` (softmax over ``C + 1``, background last)."""
    counts = []
    for image in images:
        with torch.no_grad():
            cls_scores, _ = model.bbox_head(_probe_features(model, image))
        scores = flatten_levels(
            cls_scores, model.bbox_head.cls_out_channels).softmax(-1)[..., :-1]
        counts.append(int((scores > score_thr).sum()))
    return counts


def convert_checkpoint(model: nn.Module, work_dir: str) -> str:
    """mmdet ``model``'s weights through ``from_mmdet.py SRC DST``."""
    src = osp.join(work_dir, 'mmdet_ssd300.pth')
    dst = osp.join(work_dir, 'ssd300_from_mmdet.pth')
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=model.dataset_meta)), src)
    done = subprocess.run([sys.executable, CONVERTER, src, dst],
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f'{CONVERTER} failed:\n{done.stderr}')
    return dst


def build_models(args: argparse.Namespace, image: np.ndarray,
                 work_dir: str) -> Tuple[nn.Module, nn.Module]:
    """``(mmdet's SSD300, ours)`` in eval mode on the CPU: theirs random and
    calibrated on ``image``, ours with its weights; with ``--test-cfg same``
    both on mmdet's ``test_cfg`` with ``nms_pre=10**6``, else each its own."""
    same_test_cfg = args.test_cfg == 'same'
    mmdet_cfg = Config.fromfile(MMDET_SSD300)
    mmdet_cfg.model.backbone.init_cfg = None  # no download
    if same_test_cfg:
        mmdet_cfg.model.test_cfg.nms_pre = 10**6  # every candidate
    theirs = init_detector(mmdet_cfg, None, device='cpu')
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # init's log
    theirs.init_weights()
    # mmdet 3.3's SSDHead skips AnchorHead.__init__; predict reads
    # loss_cls.use_sigmoid (softmax here) and nothing else of it.
    theirs.bbox_head.loss_cls = nn.Module()
    theirs.bbox_head.loss_cls.use_sigmoid = False
    calibrate_head(theirs, image, args.logit_std, args.background_bias)
    our_cfg = Config.fromfile(OUR_CONFIG)
    if same_test_cfg:
        our_cfg.model.test_cfg = mmdet_cfg.model.test_cfg
    ours = init_detector(our_cfg, convert_checkpoint(theirs, work_dir),
                         device='cpu')
    return theirs.eval(), ours.eval()


def build_contenders(args: argparse.Namespace,
                     images: Sequence[np.ndarray]) -> List[Contender]:
    """The detectors compared, each printed with its post-processing."""
    with tempfile.TemporaryDirectory() as work_dir:
        theirs, ours = build_models(args, images[0], work_dir)
    for name, model in ((BASELINE, theirs), (REFERENCE, ours)):
        cfg = model.bbox_head.test_cfg
        counts = count_candidates(model, images, cfg['score_thr'])
        print(f'{name:>10}: score_thr={cfg["score_thr"]} (candidates per '
              f'image: {counts}), nms_pre={cfg["nms_pre"]}')
    contenders = [(BASELINE, partial(inference_detector, theirs)),
                  (REFERENCE, partial(inference_detector, ours))]
    if args.deploy:  # ONNX Runtime / OpenVINO paths (README "Deploy")
        with tempfile.TemporaryDirectory() as work_dir:  # sessions load it
            contenders += runpy.run_path(DEPLOY_CONTENDERS)[
                'deployment_contenders'](ours, images, work_dir, args.threads)
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


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', nargs='*',
                        default=[osp.join(SAMPLE_DIR, 'grace_hopper.jpg')],
                        help='photographs to run (default: grace_hopper.jpg '
                        "from matplotlib's sample data)")
    parser.add_argument('--random-images', type=int, default=3,
                        help='random images of 200-640 px sides to add')
    add_timing_args(parser, rounds=10, threads=os.cpu_count())
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed rounds first')
    parser.add_argument('--test-cfg', choices=('own', 'same'),
                        default='own', help="'own': each config's test_cfg; "
                        "'same': mmdet's, keeping every candidate in both "
                        '(identical detections)')
    parser.add_argument('--logit-std', type=float, default=1.0,
                        help="of the calibrated head's class logits")
    parser.add_argument('--background-bias', type=float, default=7.0,
                        help="added to the calibrated head's background")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--deploy', action='store_true',
                        help='also ours in torch BF16, ONNX Runtime FP32/'
                        'INT8 and OpenVINO FP32/BF16/INT8 (the deploy extra)')
    return parser.parse_args(argv)


def main(argv: Sequence[str] = None) -> float:
    """Run the benchmark, print the report; return mmdet's / our time."""
    args = parse_args(argv)
    check_timing(args.rounds, args.threads)
    print(describe_machine(args.threads, modules=MACHINE_MODULES))
    torch.manual_seed(args.seed)
    images = load_images(args.images, args.random_images, args.seed)
    if not images:
        raise ValueError('no images: pass --images or --random-images > 0')
    print(f'{len(images)} images x {args.rounds} rounds, {args.threads} '
          f'threads, test_cfg: {args.test_cfg}')
    contenders = build_contenders(args, images)
    print_agreement(contenders, images)
    inputs = [[image] for image in images]  # batch 1
    times = time_interleaved(dict(contenders), inputs, args.rounds,
                             warmup=args.warmup * len(inputs))
    return report(times, BASELINE, unit='ms/image')[REFERENCE]


if __name__ == '__main__':
    main()
