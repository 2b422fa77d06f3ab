"""Export a trained SSD to ONNX, no custom ops (``ssd_plugin.deploy.export``).

Usage::

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT OUT.onnx
        [--mode {end2end,raw}] [--input {float32,uint8}]
        [--cfg-options k=v ...]

``end2end`` (default): outputs ``dets`` ``(N, K, 5)`` and ``labels``
``(N, K)`` int64 in input pixels with the config's ``test_cfg`` baked in
(printed), rows past an image's detections zero. ``raw``: ``cls_logits``
``(N, P, C + 1)``, ``bbox_deltas`` ``(N, P, 4)``, ``priors`` ``(P, 4)``.

``--input float32`` (default): input ``input`` float32 ``(N, 3, H, W)``, the
data preprocessor's output (resized by the test pipeline, RGB, normalised).
``--input uint8``: input ``input`` uint8 ``(N, H, W, 3)``, the resized image
as OpenCV gives it (BGR); the graph swaps the channels and normalises. The
batch is dynamic, ``H x W`` fixed to the config's test pipeline output. The
resize, normalisation, input format, classes and ``test_cfg`` are written
into the file's ``metadata_props`` (``ssd_runtime`` reads them).
"""
import argparse
from typing import List, Optional

from mmdet.apis import init_detector

from ssd_plugin.deploy.backends import import_backend
from ssd_plugin.deploy.export import WRAPPERS, export_onnx
from ssd_plugin.utils.config import add_cfg_options, load_config
from ssd_plugin.utils.network_input import config_input_size
from ssd_runtime.metadata import FLOAT_NCHW, UINT8_BGR

INPUTS = dict(float32=FLOAT_NCHW, uint8=UINT8_BGR)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out', help='output .onnx file')
    parser.add_argument('--mode', choices=tuple(WRAPPERS),
                        default='end2end')
    parser.add_argument('--input', choices=tuple(INPUTS), default='float32',
                        help='float32: the data preprocessor\'s (N, 3, H, '
                        'W) output; uint8: the resized (N, H, W, 3) BGR '
                        'image, normalised in the graph (for ssd_runtime)')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    """Export, check with ``onnx.checker``, print what was baked in."""
    args = parse_args(argv)
    import_backend('onnx')  # fail before building the model
    cfg = load_config(args.config, args.cfg_options)
    model = init_detector(cfg, args.checkpoint, device='cpu')
    size = config_input_size(model.cfg)
    meta = export_onnx(model, args.out, size, args.mode,
                       classes=model.dataset_meta.get('classes'),
                       input_format=INPUTS[args.input], cfg=model.cfg)
    shape = f'(N, {size[0]}, {size[1]}, 3) uint8 BGR' if args.input == \
        'uint8' else f'(N, 3, {size[0]}, {size[1]}) float32'
    print(f'[export] {args.out}: {args.mode}, input {shape}, N dynamic; '
          'checked with onnx.checker')
    for key, value in meta.items():
        print(f'[export]   {key} = {value}')
    return meta


if __name__ == '__main__':
    main()
