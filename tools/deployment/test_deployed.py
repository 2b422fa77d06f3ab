"""Evaluate an exported SSD on the config's test set beside the torch model.

Usage::

    python tools/deployment/test_deployed.py CONFIG MODEL.onnx
        [--backend {onnxruntime,openvino}] [--precision {f32,bf16}]
        [--checkpoint CKPT] [--torch-bf16] [--threads N]
        [--work-dir DIR] [--cfg-options k=v ...]

Both run mmengine's test loop (``Runner.test``) over the config's test loader
and evaluator (mmdet's ``CocoMetric`` or ``VOCMetric``); with
``--checkpoint`` the torch model (FP32, or bf16 autocast with
``--torch-bf16``) is evaluated too and the metrics are printed side by side.
"""
import argparse
import os.path as osp
import tempfile
from contextlib import nullcontext
from typing import Dict, List, Optional

import torch
from mmdet.apis import init_detector
from mmengine.config import Config
from mmengine.runner import Runner

from ssd_plugin.deploy import DeployedDetector, bf16_network
from ssd_plugin.utils.config import add_cfg_options, load_config
from ssd_runtime.backends import add_backend_args


def evaluate(model: torch.nn.Module, cfg: Config, work_dir: str,
             name: str) -> Dict[str, float]:
    """The config's test metrics of ``model`` (mmengine's test loop; its
    log in ``work_dir``, warnings only on the console)."""
    runner = Runner(
        model=model, work_dir=work_dir, experiment_name=name,
        test_dataloader=cfg.test_dataloader, test_cfg=cfg.test_cfg,
        test_evaluator=cfg.test_evaluator, log_level='WARNING',
        default_scope=cfg.get('default_scope', 'ssd_plugin'))
    return runner.test()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('model', help='.onnx from export_onnx.py/quantize.py')
    add_backend_args(parser)
    parser.add_argument('--checkpoint', default=None,
                        help='also evaluate the torch model')
    parser.add_argument('--torch-bf16', action='store_true',
                        help='torch model in bf16 autocast')
    parser.add_argument('--work-dir', default=None, help='for the logs '
                        '(default: a temporary folder, removed after)')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict[str, Dict[str, float]]:
    """Evaluate; print and return ``{name: metrics}``."""
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    if args.threads:
        torch.set_num_threads(args.threads)
    name = f'{args.backend} {args.precision} {osp.basename(args.model)}'
    with tempfile.TemporaryDirectory() as tmp:
        work_dir = args.work_dir or tmp
        deployed = DeployedDetector(args.model, cfg, args.backend,
                                    args.precision, args.threads)
        results = {name: evaluate(deployed, cfg, work_dir, 'deployed')}
        if args.checkpoint:
            model = init_detector(cfg, args.checkpoint, device='cpu')
            key = 'torch bf16' if args.torch_bf16 else 'torch f32'
            with bf16_network(model) if args.torch_bf16 else nullcontext():
                results[key] = evaluate(model, cfg, work_dir, 'torch')
    for key in next(iter(results.values())):
        print(f'[test_deployed] {key}: ' + ', '.join(
            f'{n} {m[key]:.4f}' for n, m in results.items()))
    return results


if __name__ == '__main__':
    main()
