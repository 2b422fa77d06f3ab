"""CPU inference speed: our SSD300 against MMDetection's, same weights.

Both detectors live in this process: MMDetection 3.3's own
``configs/ssd/ssd300_coco.py`` with random weights (its ``init_weights``),
and ours (``configs/ssd/ssd300_coco.py``) loading those weights converted by
``tools/model_converters/from_mmdet.py`` from a checkpoint file, the way a
user would. Each timed call is mmdet's ``inference_detector`` on an image
array (test pipeline, data preprocessor, network, post-processing), so the
figure is end to end. Calls alternate between the models (which one goes
first alternates too) so that load from other processes hits both alike;
the medians over all calls are compared.

Random weights make every default box score about ``1 / 81`` (or saturate),
which no trained SSD does, and would turn the post-processing into a
benchmark of NMS over tens of thousands of boxes. The head is therefore
calibrated once on the first image: class logits rescaled to a standard
deviation of ``--logit-std`` per level with the background logit raised by
``--background-bias``, offsets to a standard deviation of 1: a few
thousand (box, class) pairs of the 698,560 then pass ``score_thr`` (the
script prints how many), rather than none or all.

Post-processing settings (``--test-cfg``), NMS 0.45 and 200 per image in
both:

- ``own`` (default): each model with its own config's ``test_cfg``, as users
  run them: mmdet's ``score_thr=0.02`` with ``nms_pre=1000`` per level (up
  to 6000 candidates into NMS), ours Caffe's ``score_thr=0.01`` with
  ``nms_pre=1000`` per image. The detections may differ slightly.
- ``same``: both get mmdet's ``test_cfg`` with ``nms_pre=10**6``, which
  keeps every candidate above 0.02 in both: identical detections (checked)
  from the same post-processing work.

Usage::

    python tools/analysis_tools/benchmark_inference.py
        [--images a.jpg ...] [--random-images 3] [--rounds 10]
        [--threads N] [--test-cfg {own,same}] [--seed 0]
"""
import argparse
import importlib.util
import logging
import os
import os.path as osp
import statistics
import tempfile
import time
from typing import Dict, List, Sequence, Tuple

import cv2
import matplotlib
import mmdet
import numpy as np
import torch
from mmdet.apis import inference_detector, init_detector
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.logging import MMLogger
from torch import nn

import ssd_plugin  # noqa: F401  (registers ssd_plugin's modules)

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OUR_CONFIG = osp.join(REPO_ROOT, 'configs', 'ssd', 'ssd300_coco.py')
MMDET_CONFIG = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'ssd',
                        'ssd300_coco.py')
SAMPLE_IMAGE = osp.join(
    osp.dirname(matplotlib.__file__), 'mpl-data', 'sample_data',
    'grace_hopper.jpg')
RGB_MEAN = (123.675, 116.28, 103.53)  # both configs' data preprocessor


def _load_converter():
    """``tools/model_converters/from_mmdet.py`` as a module."""
    path = osp.join(REPO_ROOT, 'tools', 'model_converters', 'from_mmdet.py')
    spec = importlib.util.spec_from_file_location('from_mmdet', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_images(paths: Sequence[str], num_random: int,
                seed: int) -> List[np.ndarray]:
    """BGR images: the given files, then random ones of assorted shapes.

    Raises:
        FileNotFoundError: If a given file cannot be read.
    """
    images = []
    for path in paths:
        image = cv2.imread(path)
        if image is None:
            raise FileNotFoundError(f'cannot read image {path!r}; pass '
                                    'existing files to --images')
        images.append(image)
    rng = np.random.default_rng(seed)
    for _ in range(num_random):
        height, width = rng.integers(200, 640, size=2)
        images.append(rng.integers(0, 256, (height, width, 3), np.uint8))
    return images


def _probe_features(model: nn.Module, image: np.ndarray) -> List[torch.Tensor]:
    """Feature maps of ``image`` resized to 300x300, mean subtracted."""
    rgb = cv2.resize(image, (300, 300))[..., ::-1].astype(np.float32)
    tensor = torch.from_numpy(rgb - np.float32(RGB_MEAN)).permute(2, 0, 1)
    with torch.no_grad():
        return list(model.extract_feat(tensor[None].contiguous()))


def calibrate_head(model: nn.Module, image: np.ndarray, logit_std: float,
                   background_bias: float) -> None:
    """Rescale mmdet's random SSD head in place to trained-like scores.

    Per level, the class conv is scaled so that its logits on ``image`` have
    standard deviation ``logit_std``, its bias is zero except ``+
    background_bias`` on the background channel (index ``C`` of each
    box's ``C + 1``); the box conv is scaled to unit standard deviation.
    """
    head = model.bbox_head
    scores = head.cls_out_channels
    feats = _probe_features(model, image)
    with torch.no_grad():
        for feat, cls, reg in zip(feats, head.cls_convs, head.reg_convs):
            for conv, std in ((cls[-1], logit_std), (reg[-1], 1.0)):
                conv.bias.zero_()
                conv.weight.mul_(std / conv(feat).std().clamp(min=1e-12))
            cls[-1].bias[scores - 1::scores] = background_bias


def count_candidates(model: nn.Module, images: Sequence[np.ndarray],
                     score_thr: float) -> List[int]:
    """(box, class) pairs per image scoring above ``score_thr``."""
    counts = []
    for image in images:
        feats = _probe_features(model, image)
        with torch.no_grad():
            cls_scores, _ = model.bbox_head(feats)
        scores = torch.cat([
            s.permute(0, 2, 3, 1).reshape(-1, model.bbox_head.cls_out_channels)
            for s in cls_scores]).softmax(-1)[:, :-1]
        counts.append(int((scores > score_thr).sum()))
    return counts


def _quiet_init_weights(model: nn.Module) -> None:
    """``model.init_weights()`` without mmengine's per-parameter log."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)


def build_models(image: np.ndarray, same_test_cfg: bool, logit_std: float,
                 background_bias: float, work_dir: str
                 ) -> Tuple[nn.Module, nn.Module]:
    """mmdet's SSD300 (random, calibrated) and ours with its weights.

    Returns:
        tuple[nn.Module, nn.Module]: ``(mmdet's, ours)``, in eval mode on
        the CPU; with ``same_test_cfg`` both have mmdet's ``test_cfg`` and
        ``nms_pre=10**6``, else each its config's.
    """
    mmdet_cfg = Config.fromfile(MMDET_CONFIG)
    mmdet_cfg.model.backbone.init_cfg = None  # no download
    if same_test_cfg:
        mmdet_cfg.model.test_cfg.nms_pre = 10**6  # every candidate
    theirs = init_detector(mmdet_cfg, None, device='cpu')
    _quiet_init_weights(theirs)
    # mmdet 3.3's SSDHead skips AnchorHead.__init__; predict reads
    # loss_cls.use_sigmoid (softmax here) and nothing else of it.
    theirs.bbox_head.loss_cls = nn.Module()
    theirs.bbox_head.loss_cls.use_sigmoid = False
    calibrate_head(theirs, image, logit_std, background_bias)
    converter = _load_converter()
    checkpoint = osp.join(work_dir, 'ssd300_from_mmdet.pth')
    torch.save(dict(state_dict=converter.convert(theirs.state_dict()),
                    meta=dict(dataset_meta=theirs.dataset_meta)), checkpoint)
    our_cfg = Config.fromfile(OUR_CONFIG)
    if same_test_cfg:
        our_cfg.model.test_cfg = mmdet_cfg.model.test_cfg
    ours = init_detector(our_cfg, checkpoint, device='cpu')
    return theirs.eval(), ours.eval()


def same_detections(first: DetDataSample, second: DetDataSample) -> bool:
    """Whether two ``DetDataSample``s hold the same detections.

    Each of ``second``'s is matched to ``first``'s of the same label with
    the nearest box (after NMS no two boxes of a class overlap by more than
    the IoU threshold); their scores and boxes must agree to rounding. The
    order may differ between scores a few 1e-7 apart, as the models'
    convolutions round differently.
    """
    a, b = first.pred_instances, second.pred_instances
    if len(a) != len(b):
        return False
    gap = (a.bboxes[:, None] - b.bboxes[None]).abs().amax(-1)
    gap[a.labels[:, None] != b.labels[None]] = float('inf')
    match = gap.argmin(0) if len(a) else gap.new_zeros(0, dtype=torch.long)
    return (match.unique().numel() == len(b)
            and torch.equal(a.labels[match], b.labels)
            and torch.allclose(a.scores[match], b.scores, 1e-4, 1e-6)
            and torch.allclose(a.bboxes[match], b.bboxes, 1e-4, 1e-2))


def time_models(models: Dict[str, nn.Module], images: Sequence[np.ndarray],
                rounds: int, warmup: int) -> Dict[str, List[float]]:
    """Seconds per ``inference_detector`` call, interleaved.

    Each round runs every image through every model, alternating which
    model goes first; ``warmup`` untimed rounds come first.
    """
    names = list(models)
    times = {name: [] for name in names}
    for index in range(warmup + rounds):
        order = names if index % 2 == 0 else names[::-1]
        for image in images:
            for name in order:
                start = time.perf_counter()
                inference_detector(models[name], image)
                if index >= warmup:
                    times[name].append(time.perf_counter() - start)
    return times


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', nargs='*', default=[SAMPLE_IMAGE],
                        help='photographs to run (default: grace_hopper.jpg '
                        "from matplotlib's sample data)")
    parser.add_argument('--random-images', type=int, default=3,
                        help='random images of 200-640 px sides to add')
    parser.add_argument('--rounds', type=int, default=10,
                        help='timed calls per image and model')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed rounds first')
    parser.add_argument('--threads', type=int, default=os.cpu_count(),
                        help='torch threads (default: all cores)')
    parser.add_argument('--test-cfg', choices=('own', 'same'),
                        default='own', help="'own': each config's test_cfg; "
                        "'same': mmdet's, keeping every candidate in both "
                        '(identical detections)')
    parser.add_argument('--logit-std', type=float, default=1.0)
    parser.add_argument('--background-bias', type=float, default=7.0)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def print_report(args: argparse.Namespace, images: Sequence[np.ndarray],
                 models: Dict[str, nn.Module],
                 times: Dict[str, List[float]]) -> float:
    """Print the settings, the detections' agreement and the medians.

    Returns:
        float: mmdet's median time over ours.
    """
    theirs, ours = models['mmdet'], models['ssd_plugin']
    print(f'{len(images)} images x {args.rounds} rounds, {args.threads} '
          f'threads, torch {torch.__version__}, test_cfg: {args.test_cfg}')
    for name, model in models.items():
        cfg = model.bbox_head.test_cfg
        counts = count_candidates(ours, images, cfg['score_thr'])
        print(f'{name:>10}: score_thr={cfg["score_thr"]} (candidates per '
              f'image: {counts}), nms_pre={cfg["nms_pre"]}')
    results = [(inference_detector(theirs, im), inference_detector(ours, im))
               for im in images]
    print('detections per image: ' + ', '.join(
        str(len(ours_res.pred_instances)) for _, ours_res in results))
    print('identical detections: ' + str(all(
        same_detections(a, b) for a, b in results)))
    medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
    for name, value in medians.items():
        print(f'{name:>10}: {value:8.1f} ms/image (median)')
    ratio = medians['mmdet'] / medians['ssd_plugin']
    print(f'     ratio: {ratio:.2f}x (mmdet time / ssd_plugin time)')
    return ratio


def main(argv: Sequence[str] = None) -> float:
    """Run the benchmark, print the report; return mmdet's / our time."""
    args = parse_args(argv)
    if args.threads < 1 or args.rounds < 1:
        raise ValueError(f'--threads={args.threads} and --rounds='
                         f'{args.rounds} must be at least 1')
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    images = load_images(args.images, args.random_images, args.seed)
    if not images:
        raise ValueError('no images: pass --images or --random-images > 0')
    with tempfile.TemporaryDirectory() as work_dir:
        theirs, ours = build_models(images[0], args.test_cfg == 'same',
                                    args.logit_std, args.background_bias,
                                    work_dir)
    models = dict(mmdet=theirs, ssd_plugin=ours)
    times = time_models(models, images, args.rounds, args.warmup)
    return print_report(args, images, models, times)


if __name__ == '__main__':
    main()
