"""SSD300 on a GPU: correctness against the CPU, mixed precision, speed.

What ``tools/analysis_tools/gpu_check.py`` runs (``docs/gpu.md`` says how to
run it on a CUDA machine). Each check returns a dict of plain numbers and a
``passed`` flag; the tool prints them and writes them as JSON. With
``device='cpu'`` every check runs at small sizes (CI does, so that it
cannot rot): the "device" copy is then a second CPU copy.

1. :func:`check_nms`: mmcv's NMS on device tensors equals the CPU's.
2. :func:`check_equivalence`: SSD300 forward, loss, backward and
   predictions on the device equal the CPU's.
3. :func:`check_amp`: training steps under fp16 and bf16 autocast beside
   fp32, finite, with the largest activation of every VGG layer under fp16.
4. :func:`inference_speed`, :func:`training_speed`: ours against mmdet's
   SSD300, interleaved in one process.
5. :func:`check_deploy`: torch bf16/fp16 autocast of the network, ONNX
   export from a device model, ``DeployedDetector`` moved to the device.

Shapes: ``N`` images, ``B`` boxes, ``C`` classes.
"""
import copy
import functools
import os.path as osp
import statistics
import tempfile
import time
from typing import Callable, Dict, List, Sequence

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.optim import OptimWrapper
from mmengine.structures import InstanceData
from torch import nn

from ssd_plugin.testing.shapes import draw_image
from ssd_plugin.utils.benchmark import detection_agreement, time_interleaved
from ssd_plugin.utils.config import SSD300_COCO, load_config
from ssd_plugin.utils.mmdet_ssd import (build_mmdet_ssd300, calibrate_head,
                                        random_detector)
from ssd_plugin.utils.network_input import config_input_size

DTYPES = dict(fp32=None, fp16=torch.float16, bf16=torch.bfloat16)

# Tolerances of the device against the CPU, fp32 with TF32 off. cuDNN and
# oneDNN sum a convolution's products in other orders: about 1e-6 relative
# per layer, grown through SSD300's 23 convolutions. The loss mines its
# hard negatives by sorting: two near-equal negatives may swap at the 3:1
# cut, which moves the loss by their difference and the gradient by their
# rows, hence the looser gradient bound.
TOL = dict(logits=1e-3, loss=1e-3, grad=1e-2, agree=0.99)


def sync(device: str) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.startswith('cuda'):
        torch.cuda.synchronize(device)


def check_nms(device: str, num_boxes: int = 5000, seed: int = 0) -> Dict:
    """mmcv's ``nms`` and ``batched_nms`` on device tensors against the CPU.

    Kept boxes are compared as sets of indices: with distinct random
    scores the greedy order is unique, so the sets must be equal.
    """
    from mmcv.ops import batched_nms, nms
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(num_boxes, 2, generator=gen) * 300
    boxes = torch.cat([xy, xy + 10 + torch.rand(num_boxes, 2,
                                                generator=gen) * 60], 1)
    scores = torch.rand(num_boxes, generator=gen)
    groups = torch.randint(0, 20, (num_boxes, ), generator=gen)
    results = {}
    for name, run in (('nms', lambda b, s: nms(b, s, 0.45)[1]),
                      ('batched_nms', lambda b, s: batched_nms(
                          b, s, groups.to(b.device),
                          dict(iou_threshold=0.45))[1])):
        on_cpu = set(run(boxes, scores).tolist())
        on_device = set(run(boxes.to(device), scores.to(device)).cpu()
                        .tolist())
        results[name] = dict(kept_cpu=len(on_cpu), kept_device=len(on_device),
                             equal=on_cpu == on_device)
    return dict(boxes=num_boxes, device=device, **results,
                passed=all(r['equal'] for r in results.values()))


def build_ours(config: str = SSD300_COCO, device: str = 'cpu',
               seed: int = 0) -> nn.Module:
    """Our SSD300 with seeded random weights and a calibrated head (trained-
    like scores, :func:`calibrate_head`), in eval mode on ``device``: a
    fresh copy of one model built per ``(config, seed)``."""
    return copy.deepcopy(_built(config, seed)).to(device).eval()


@functools.lru_cache(maxsize=4)
def _built(config: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = random_detector(load_config(config, set_scope=False))
    calibrate_head(model, probe_inputs(model))
    return model


def probe_inputs(model: nn.Module, num: int = 1,
                 seed: int = 0) -> torch.Tensor:
    """``(num, 3, 300, 300)`` preprocessed shapes images on the model's
    device (see :func:`make_batch`)."""
    data = make_batch(num, seed)
    return model.data_preprocessor(data, False)['inputs']


def make_batch(num: int, seed: int, size: int = 300) -> Dict[str, list]:
    """A collated training/test batch of ``num`` synthetic images.

    Coloured shapes on textured backgrounds (``ssd_plugin.testing.shapes``),
    already at the network size, each with its boxes and labels: what a
    train or test pipeline's ``PackDetInputs`` hands the data preprocessor.

    Returns:
        dict: ``inputs`` (list of ``(3, size, size)`` uint8 BGR) and
        ``data_samples`` (list of ``DetDataSample`` with ``gt_instances``).
    """
    rng = np.random.default_rng(seed)
    inputs, samples = [], []
    for _ in range(num):
        image, objects = draw_image(rng, size, max_objects=6)
        inputs.append(torch.from_numpy(image).permute(2, 0, 1).contiguous())
        boxes = torch.tensor([[x, y, x + w, y + h] for _, (x, y, w, h), _ in
                              objects], dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor([label for label, _, _ in objects],
                              dtype=torch.long)
        sample = DetDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size),
            scale_factor=(1.0, 1.0), pad_shape=(size, size)))
        sample.gt_instances = InstanceData(bboxes=boxes, labels=labels)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


class NoTF32:
    """Context: fp32 convolutions and matmuls without TF32 (exact fp32)."""

    def __enter__(self) -> None:
        self.saved = (torch.backends.cudnn.allow_tf32,
                      torch.backends.cuda.matmul.allow_tf32)
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False

    def __exit__(self, *exc) -> None:
        (torch.backends.cudnn.allow_tf32,
         torch.backends.cuda.matmul.allow_tf32) = self.saved


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max |a - b| / max |a|`` (0 for two zero tensors)."""
    scale = a.abs().max().clamp(min=1e-12)
    return float((a - b.to(a.device)).abs().max() / scale)


def agreement(reference: Sequence[DetDataSample],
              other: Sequence[DetDataSample]) -> Dict:
    """Share of ``reference``'s detections that ``other`` has too (same
    label, IoU > 0.99, score within 1e-3), over all images."""
    agree = total = 0
    for ref, oth in zip(reference, other):
        a, t = detection_agreement(ref.pred_instances.cpu(),
                                   oth.pred_instances.cpu())
        agree, total = agree + a, total + t
    return dict(detections=total, agreeing=agree,
                share=agree / total if total else 1.0)


def _forward_loss_grads(model: nn.Module, data: Dict) -> Dict:
    """Head outputs, losses and gradients of one batch (train mode)."""
    from mmdet.models.utils import unpack_gt_instances
    model.train()
    model.zero_grad()
    batch = model.data_preprocessor(data, True)
    head = model.bbox_head
    outs = head(model.extract_feat(batch['inputs']))
    gts, ignored, metas = unpack_gt_instances(batch['data_samples'])
    losses = head.loss_by_feat(*outs, gts, metas, ignored)
    total, _ = model.parse_losses(losses)
    total.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()
             if p.grad is not None}
    model.eval()
    return dict(outs=[t.detach() for level in outs for t in level],
                losses={k: float(torch.stack(v).sum()) if isinstance(v, list)
                        else float(v) for k, v in losses.items()},
                grads=grads)


def check_equivalence(device: str, batch: int = 4, seed: int = 0) -> Dict:
    """Our SSD300 on ``device`` against the same weights on the CPU.

    fp32 with TF32 off on both. Compares the head's outputs (max difference
    over max magnitude, per map), every loss term, every parameter's
    gradient (relative L2 error) and the predictions (:func:`agreement`)
    on ``batch`` shapes images; bounds in :data:`TOL`.
    """
    cpu_model = build_ours(seed=seed)
    dev_model = copy.deepcopy(cpu_model).to(device)
    data = make_batch(batch, seed + 1)
    with NoTF32():
        ref, got = (_forward_loss_grads(m, data)
                    for m in (cpu_model, dev_model))
        preds = [m.test_step(data) for m in (cpu_model, dev_model)]
    logits = max(_relative(a, b) for a, b in zip(ref['outs'], got['outs']))
    loss = max(abs(ref['losses'][k] - got['losses'][k]) /
               max(abs(ref['losses'][k]), 1e-12) for k in ref['losses'])
    grad = max(float((ref['grads'][n] - got['grads'][n].cpu()).norm() /
                     ref['grads'][n].norm().clamp(min=1e-12))
               for n in ref['grads'])
    agree = agreement(*preds)
    return dict(device=device, batch=batch, max_rel_head_output=logits,
                max_rel_loss=loss, max_rel_grad_l2=grad,
                losses_cpu=ref['losses'], losses_device=got['losses'],
                predictions=agree, tolerances=TOL,
                passed=(logits <= TOL['logits'] and loss <= TOL['loss'] and
                        grad <= TOL['grad'] and
                        agree['share'] >= TOL['agree']))


def optim_wrapper(model: nn.Module, dtype: str,
                  device: str) -> OptimWrapper:
    """The recipe's SGD (LR 1e-3, momentum 0.9, weight decay 5e-4) in the
    wrapper ``tools/train.py --amp --amp-dtype`` builds for ``dtype`` on
    ``device`` (:func:`~ssd_plugin.engine.amp.amp_optim_wrapper`): mmengine's
    ``AmpOptimWrapper`` on CUDA, our ``CPUAmpOptimWrapper`` (bf16) on the
    CPU, plain ``OptimWrapper`` for fp32.

    Raises:
        ValueError: For fp16 on the CPU (loss scaling needs CUDA).
    """
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    from ssd_plugin.engine.amp import amp_optim_wrapper
    cfg = dict(type='OptimWrapper', optimizer=dict(
        type='SGD', lr=1e-3, momentum=0.9, weight_decay=5e-4))
    if DTYPES[dtype] is not None:
        amp_dtype = dict(fp16='float16', bf16='bfloat16')[dtype]
        cfg, _ = amp_optim_wrapper(cfg, device.split(':')[0], amp_dtype)
    with DefaultScope.overwrite_default_scope('ssd_plugin'):
        return build_optim_wrapper(model, cfg)


class ActivationMax:
    """Context: the largest ``|output|`` of every layer of ``modules`` (a
    name -> module dict), kept on the device until read (no sync per step).
    Infinite where a layer overflowed its dtype."""

    def __init__(self, modules: Dict[str, nn.Module]) -> None:
        self.modules = modules
        self.values: Dict[str, torch.Tensor] = {}

    def __enter__(self) -> 'ActivationMax':
        self.handles = [m.register_forward_hook(self._hook(name))
                        for name, m in self.modules.items()]
        return self

    def _hook(self, name: str) -> Callable:
        def hook(module, args, output):
            top = output.detach().abs().max().float()
            seen = self.values.get(name)
            self.values[name] = top if seen is None else torch.maximum(
                seen, top)
        return hook

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()

    def read(self) -> Dict[str, float]:
        return {name: float(v) for name, v in self.values.items()}


def vgg_layers(model: nn.Module) -> Dict[str, nn.Module]:
    """``'features.<i> <Type>'`` -> layer, for every layer of AtrousVGG."""
    return {f'features.{i} {type(m).__name__}': m
            for i, m in enumerate(model.backbone.features)}


def train_run(model: nn.Module, dtype: str, device: str, batches: List[Dict],
              iters: int) -> Dict:
    """``iters`` steps of ``model.train_step`` (the runner's path) on
    ``batches`` in turn; losses, non-finite count, loss-scale history and
    the largest activation of each VGG layer."""
    wrapper = optim_wrapper(model, dtype, device)
    scaler = getattr(wrapper, 'loss_scaler', None)
    losses, skipped = [], 0
    model.train()
    with ActivationMax(vgg_layers(model)) as acts:
        for step in range(iters):
            scale = scaler.get_scale() if scaler is not None else None
            log_vars = model.train_step(batches[step % len(batches)], wrapper)
            losses.append(float(log_vars['loss']))
            if scale is not None and scaler.get_scale() < scale:
                skipped += 1  # GradScaler found inf/NaN gradients
    model.eval()
    return dict(losses=losses,
                non_finite=sum(not np.isfinite(x) for x in losses),
                skipped_steps=skipped,
                final_loss_scale=scaler.get_scale() if scaler else None,
                max_activation=acts.read())


@torch.no_grad()
def range_probe(device: str, batch: int = 8, seed: int = 0) -> Dict:
    """Largest ``|activation|`` of every VGG layer with magnitude-keeping
    weights, in fp32 and under fp16 autocast (bf16 on the CPU).

    Random default weights shrink activations layer by layer (about 2x per
    conv, :func:`check_amp`'s runs show it); trained VGG16 weights keep the
    scale of their unscaled 0-255 input. Kaiming-normal weights (fan-in,
    ReLU gain) keep each layer's second moment: the trained-like, harsher
    case for fp16's 65504.
    """
    model = build_ours(seed=seed)
    for layer in model.backbone.features:
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, nonlinearity='relu')
            nn.init.zeros_(layer.bias)
    model.to(device)
    inputs = model.data_preprocessor(make_batch(batch, seed + 3),
                                     False)['inputs']
    low = 'fp16' if device.startswith('cuda') else 'bf16'
    result = {}
    for dtype in ('fp32', low):
        with ActivationMax(vgg_layers(model)) as acts, torch.autocast(
                inputs.device.type, dtype=DTYPES[dtype] or torch.float32,
                enabled=DTYPES[dtype] is not None):
            model.extract_feat(inputs)
        result[dtype] = acts.read()
    return result


def check_amp(device: str, iters: int = 50, batch: int = 32,
              dtypes: Sequence[str] = ('fp32', 'fp16', 'bf16'),
              seed: int = 0) -> Dict:
    """Our SSD300 trained ``iters`` steps from one initial state in each of
    ``dtypes`` on the same batches, plus :func:`range_probe`; passes when
    every loss is finite and no VGG activation overflows fp16 (65504) in
    either."""
    start = build_ours(seed=seed)
    batches = [make_batch(batch, seed + 10 + k) for k in range(4)]
    runs = {}
    for dtype in dtypes:
        torch.manual_seed(seed)
        runs[dtype] = train_run(copy.deepcopy(start).to(device), dtype,
                                device, batches, iters)
    probe = range_probe(device, min(batch, 8), seed)
    peaks = [max(acts.values()) for acts in probe.values()]
    if 'fp16' in runs:
        peaks.append(max(runs['fp16']['max_activation'].values()))
    finite = all(r['non_finite'] == 0 for r in runs.values())
    return dict(device=device, iters=iters, batch=batch, runs=runs,
                range_probe_kaiming=probe, largest_activation=max(peaks),
                passed=finite and max(peaks) < 65504)


def _clock(device: str) -> Callable[[], float]:
    """``perf_counter`` after the device's queued work is done."""

    def clock() -> float:
        sync(device)
        return time.perf_counter()

    return clock


def _race(contenders: Dict[str, Callable], images: int, device: str,
          iters: int, rounds: int, warmup: int) -> Dict:
    """The contenders timed interleaved (:func:`time_interleaved`): images
    per second of each one's median call, and ours over mmdet's best."""
    seconds = time_interleaved(contenders, [None] * iters, rounds,
                               warmup=warmup, clock=_clock(device))
    speed = {name: images / statistics.median(t)
             for name, t in seconds.items()}
    best = max(v for k, v in speed.items() if k.startswith('mmdet'))
    return dict(images_per_s=speed, ours_vs_best_mmdet=speed['ours'] / best)


def build_contestants(device: str, seed: int = 0) -> Dict[str, nn.Module]:
    """mmdet's SSD300 (NCHW, as it ships, and converted to channels-last) and
    ours (channels-last by default), calibrated alike on one image, in eval
    mode on ``device``; each keeps its own config's ``test_cfg``."""
    ours = build_ours(seed=seed)
    torch.manual_seed(seed)
    theirs = build_mmdet_ssd300()
    calibrate_head(theirs, probe_inputs(theirs))
    theirs_cl = copy.deepcopy(theirs).to(memory_format=torch.channels_last)
    return dict(mmdet=theirs.to(device), mmdet_channels_last=theirs_cl.to(
        device), ours=ours.to(device))


def _predict(model: nn.Module, inputs: torch.Tensor,
             samples: List[DetDataSample], dtype: str) -> Callable:
    """One batched ``predict`` (network under ``dtype`` autocast,
    post-processing in fp32, as :func:`autocast_network` runs it)."""
    from ssd_plugin.deploy.torch_bf16 import autocast_network

    @torch.no_grad()
    def run(_):
        if DTYPES[dtype] is None:
            return model.predict(inputs, samples)
        with autocast_network(model, DTYPES[dtype]):
            return model.predict(inputs, samples)

    return run


def inference_speed(device: str, models: Dict[str, nn.Module],
                    batches: Sequence[int] = (1, 64),
                    dtypes: Sequence[str] = ('fp32', 'fp16', 'bf16'),
                    iters: int = 20, rounds: int = 3,
                    warmup: int = 3) -> Dict:
    """Images per second of each model's ``predict`` on preprocessed
    ``(N, 3, 300, 300)`` device tensors (data loading and the test pipeline
    excluded; predict's post-processing and NMS included), interleaved."""
    torch.backends.cudnn.benchmark = True  # both alike
    results = {}
    for batch in batches:
        data = make_batch(batch, seed=100 + batch)
        for dtype in dtypes:
            contenders = {}
            for name, model in models.items():
                prep = model.data_preprocessor(data, False)
                inputs = prep['inputs']
                if 'channels_last' in name:
                    inputs = inputs.contiguous(
                        memory_format=torch.channels_last)
                contenders[name] = _predict(model, inputs,
                                            prep['data_samples'], dtype)
            results[f'batch{batch}_{dtype}'] = _race(
                contenders, batch, device, iters, rounds, warmup)
    return results


def training_speed(device: str, models: Dict[str, nn.Module],
                   batch: int = 32, dtypes: Sequence[str] = ('fp16', 'bf16'),
                   iters: int = 10, rounds: int = 3,
                   warmup: int = 3) -> Dict:
    """Images per second of ``train_step`` (preprocessing, forward, loss,
    backward, SGD step) at ``batch`` under each AMP ``dtype``, interleaved;
    the batch is ready in memory (no data loading)."""
    torch.backends.cudnn.benchmark = True
    data = make_batch(batch, seed=7)
    results = {}
    for dtype in dtypes:
        contenders = {}
        for name, model in models.items():
            model.train()
            wrapper = optim_wrapper(model, dtype, device)
            contenders[name] = (lambda m, w: lambda _: m.train_step(data, w))(
                model, wrapper)
        results[f'batch{batch}_{dtype}'] = _race(
            contenders, batch, device, iters, rounds, warmup)
    for model in models.values():
        model.eval()
    return results


def check_deploy(device: str, batch: int = 2, seed: int = 0) -> Dict:
    """Deployment from a model on ``device``: the network under bf16 (and,
    on CUDA, fp16) autocast, ``export_onnx`` of the device model, and that
    file's :class:`DeployedDetector` moved to the device, each against
    the CPU model's fp32 predictions on ``batch`` shapes images."""
    from ssd_plugin.deploy import DeployedDetector, export_onnx
    from ssd_plugin.deploy.torch_bf16 import autocast_network
    cpu_model = build_ours(seed=seed)
    dev_model = copy.deepcopy(cpu_model).to(device)
    data = make_batch(batch, seed + 2)
    reference = cpu_model.test_step(data)
    result: Dict = dict(device=device)
    first_conv = dev_model.backbone.features[0]
    dtypes = ('bf16', 'fp16') if device.startswith('cuda') else ('bf16', )
    for dtype in dtypes:
        seen = []
        handle = first_conv.register_forward_hook(
            lambda module, args, out: seen.append(out.dtype))
        try:
            with autocast_network(dev_model, DTYPES[dtype]):
                preds = dev_model.test_step(data)
        finally:
            handle.remove()
        result[f'autocast_{dtype}'] = dict(
            network_dtype=str(seen[0]), ran_in_dtype=seen[0] == DTYPES[dtype],
            predictions_vs_fp32=agreement(reference, preds))
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'ssd300.onnx')
        export_onnx(dev_model, path, config_input_size(cpu_model.cfg))
        deployed = DeployedDetector(path, cpu_model.cfg)
        result['exported_from'] = str(next(dev_model.parameters()).device)
        result['deployed_on'] = device
        result['deployed_vs_torch'] = agreement(
            reference, deployed.to(device).test_step(data))
    result['passed'] = (
        all(result[f'autocast_{d}']['ran_in_dtype'] for d in dtypes) and
        result['deployed_vs_torch']['share'] >= TOL['agree'])
    return result


def speed(device: str, batches: Sequence[int] = (1, 64), iters: int = 20,
          rounds: int = 3, train_batch: int = 32, train_iters: int = 10,
          dtypes: Sequence[str] = ('fp32', 'fp16', 'bf16'),
          warmup: int = 3) -> Dict:
    """:func:`inference_speed` at each of ``batches`` and ``dtypes`` and
    :func:`training_speed` at ``train_batch`` under the AMP dtypes among
    ``dtypes`` (fp32 where there is none), for the models of
    :func:`build_contestants`. Figures, not a pass/fail: ``passed`` is True
    when everything ran."""
    models = build_contestants(device)
    amp = [d for d in dtypes if d != 'fp32'] or ['fp32']
    return dict(
        device=device, cudnn_benchmark=True,
        tf32_convolutions=torch.backends.cudnn.allow_tf32,
        inference=inference_speed(device, models, batches, dtypes, iters,
                                  rounds, warmup),
        training=training_speed(device, models, train_batch, amp,
                                train_iters, rounds, warmup),
        passed=True)
