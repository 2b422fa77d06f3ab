"""Which layers of an exported SSD run in INT8 on this CPU, and their time.

Usage::

    python tools/deployment/profile_layers.py MODEL.onnx
        [--backend {openvino,onnxruntime}] [--precision {f32,bf16}]
        [--threads N] [--runs 3] [--layers]

Prints the machine, then per (op, precision) the layers' count and median
time on one input of the export's size, then how many convolutions reached
int8 kernels; ``--layers`` lists every layer (OpenVINO: its ``exec_type``,
e.g. ``jit_avx2_I8``; ONNX Runtime: the optimized graph's op, e.g.
``QLinearConv``). See ``ssd_plugin.deploy.layer_profile`` and
docs/quantization.md.
"""
import argparse
from typing import List, Optional

import numpy as np

from ssd_plugin.deploy.layer_profile import (convolutions,
                                             onnxruntime_layers,
                                             openvino_layers, summarize)
from ssd_runtime.backends import add_backend_args
from ssd_runtime.machine import describe_machine
from ssd_runtime.metadata import UINT8_BGR, read_model_info


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('model', help='.onnx from export_onnx.py/quantize.py')
    add_backend_args(parser, backend='openvino')
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--layers', action='store_true',
                        help='list every layer, slowest first')
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f'--runs={args.runs}: time at least one run')
    return args


def main(argv: Optional[List[str]] = None) -> list:
    """Profile, print; return the layers (``Layer`` tuples)."""
    args = parse_args(argv)
    info = read_model_info(args.model)
    height, width = info.input_size
    rng = np.random.default_rng(0)  # one input in the graph's own format
    inputs = rng.integers(0, 256, (1, height, width, 3), np.uint8) \
        if info.input_format == UINT8_BGR else rng.standard_normal(
            (1, 3, height, width)).astype(np.float32)
    print(describe_machine(args.threads))
    if args.backend == 'openvino':
        layers = openvino_layers(args.model, inputs, args.precision,
                                 args.threads, args.runs)
    else:
        layers = onnxruntime_layers(args.model, inputs, args.threads,
                                    args.runs)
    total = sum(layer.ms for layer in layers)
    print(f'[profile] {args.model} on {args.backend}: {len(layers)} layers, '
          f'{total:.1f} ms (median of {args.runs} runs per layer)')
    for (op, precision), entry in summarize(layers).items():
        share = 100 * entry['ms'] / total
        print(f'[profile]   {op:>20} {precision:>5}: {entry["count"]:4d} '
              f'layers {entry["ms"]:9.2f} ms {share:5.1f}%')
    convs = convolutions(layers)
    int8 = sum(layer.precision == 'int8' for layer in convs)
    print(f'[profile] convolutions in int8: {int8} of {len(convs)}')
    if args.layers:
        for layer in sorted(layers, key=lambda layer: -layer.ms):
            print(f'[profile]   {layer.ms:9.2f} ms {layer.op:>18} '
                  f'{layer.kernel:>24} {layer.precision:>5}  {layer.name}')
    return layers


if __name__ == '__main__':
    main()
