"""Evaluate an exported SSD on the config's test set beside the torch model.

Usage::

    python tools/deployment/test_deployed.py CONFIG MODEL.onnx
        --backend {onnxruntime,openvino} [--precision {f32,bf16}]
        [--checkpoint CKPT] [--torch-bf16] [--threads N]

Both run the config's test loader through its evaluator (mmdet's
``CocoMetric`` or ``VOCMetric``); with ``--checkpoint`` the torch model
(FP32, or bf16 autocast with ``--torch-bf16``) is evaluated too and the
metrics are printed side by side.
"""
import argparse
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmdet.apis import init_detector
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from ssd_plugin.deploy import DeployedDetector, bf16_network


def evaluate(model: torch.nn.Module, cfg: Config) -> Dict[str, float]:
    """The config's test metrics of any model with mmengine's test_step."""
    init_default_scope(cfg.get('default_scope', 'ssd_plugin'))
    loader = Runner.build_dataloader(cfg.test_dataloader)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = loader.dataset.metainfo
    with torch.no_grad():
        for batch in loader:
            evaluator.process(model.test_step(batch), batch)
    return evaluator.evaluate(len(loader.dataset))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('model', help='.onnx from export_onnx.py/quantize.py')
    parser.add_argument('--backend', choices=('onnxruntime', 'openvino'),
                        default='onnxruntime')
    parser.add_argument('--precision', choices=('f32', 'bf16'),
                        default='f32', help='OpenVINO inference precision')
    parser.add_argument('--checkpoint', default=None,
                        help='also evaluate the torch model')
    parser.add_argument('--torch-bf16', action='store_true',
                        help='torch model in bf16 autocast')
    parser.add_argument('--threads', type=int, default=None)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict[str, Dict[str, float]]:
    """Evaluate; print and return ``{name: metrics}``."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.threads:
        torch.set_num_threads(args.threads)
    name = f'{args.backend} {args.precision} {osp.basename(args.model)}'
    results = {name: evaluate(DeployedDetector(
        args.model, cfg, args.backend, args.precision, args.threads), cfg)}
    if args.checkpoint:
        model = init_detector(cfg, args.checkpoint, device='cpu').eval()
        if args.torch_bf16:
            with bf16_network(model):
                results['torch bf16'] = evaluate(model, cfg)
        else:
            results['torch f32'] = evaluate(model, cfg)
    keys = list(next(iter(results.values())))
    for key in keys:
        print(f'[test_deployed] {key}: ' + ', '.join(
            f'{n} {m[key]:.4f}' for n, m in results.items()))
    return results


if __name__ == '__main__':
    main()
