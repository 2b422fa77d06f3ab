"""INT8 post-training quantization of an exported SSD (static, QDQ).

Usage::

    python tools/deployment/quantize.py CONFIG MODEL.onnx OUT.onnx
        [--images DIR] [--num-images 100] [--cfg-options k=v ...]

Calibrates activation ranges on ``--num-images`` images of the config's
train set passed through its test pipeline, or of the images in ``DIR``
(no annotations needed); weights per channel (``ssd_plugin.deploy.quantize``).
A uint8-input export (``export_onnx.py --input uint8``) is calibrated on the
same images as the graph takes them (resized BGR pixels). The file is the
same for every CPU; the tool says which backend runs it fastest on this one
(VNNI or AVX2 only, docs/quantization.md). Run the result as any export:
``test_deployed.py CONFIG OUT.onnx --backend
onnxruntime`` or ``--backend openvino``.
"""
import argparse
import time
from typing import List, Optional

from ssd_plugin.deploy.quantize import (calibration_inputs, int8_advice,
                                        quantize_int8)
from ssd_plugin.deploy.runtime import network_to_graph_input
from ssd_plugin.utils.config import add_cfg_options, load_config
from ssd_runtime.machine import describe_machine, visible_flags
from ssd_runtime.metadata import read_model_info


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('model', help='FP32 .onnx from export_onnx.py')
    parser.add_argument('out', help='quantized .onnx to write')
    parser.add_argument('--images', default=None,
                        help='folder of calibration images (default: the '
                        "config's train set)")
    parser.add_argument('--num-images', type=int, default=100)
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Calibrate, quantize, write ``out``; return the nodes quantized."""
    args = parse_args(argv)
    info = read_model_info(args.model)  # ours, or a clear error
    cfg = load_config(args.config, args.cfg_options)
    start = time.perf_counter()
    inputs = [network_to_graph_input(x, info) for x in calibration_inputs(
        cfg, args.num_images, args.images)]
    nodes = quantize_int8(args.model, args.out, inputs)
    print(f'[quantize] {args.out}: {nodes} network nodes INT8, calibrated '
          f'on {len(inputs)} images in {time.perf_counter() - start:.0f} s')
    # The file is the same for every CPU; its gain is not.
    print(f'[quantize] on this machine ({describe_machine(modules=())}): '
          f'{int8_advice(visible_flags())}')
    return nodes


if __name__ == '__main__':
    main()
