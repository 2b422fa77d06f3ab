"""Export a trained SSD to ONNX, no custom ops (``ssd_plugin.deploy.export``).

Usage::

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT OUT.onnx
        [--mode {end2end,raw}]

``end2end`` (default): input ``input`` float32 ``(N, 3, H, W)``, the data
preprocessor's output (resized by the test pipeline, RGB, normalised);
outputs ``dets`` ``(N, K, 5)`` and ``labels`` ``(N, K)`` int64 in input
pixels with the config's ``test_cfg`` baked in (printed), rows past an
image's detections zero. ``raw``: ``cls_logits`` ``(N, P, C + 1)``,
``bbox_deltas`` ``(N, P, 4)``, ``priors`` ``(P, 4)``. The batch is dynamic,
``H x W`` fixed to the config's test pipeline output.
"""
import argparse
from typing import List, Optional

from mmdet.apis import init_detector

from ssd_plugin.deploy.backends import import_backend
from ssd_plugin.deploy.export import (config_input_size,
                                      export_onnx)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out', help='output .onnx file')
    parser.add_argument('--mode', choices=('end2end', 'raw'),
                        default='end2end')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    """Export, check with ``onnx.checker``, print what was baked in."""
    args = parse_args(argv)
    import_backend('onnx')  # fail before building the model
    model = init_detector(args.config, args.checkpoint, device='cpu')
    size = config_input_size(model.cfg)
    meta = export_onnx(model, args.out, size, args.mode,
                       classes=model.dataset_meta.get('classes'))
    print(f'[export] {args.out}: {args.mode}, input (N, 3, {size[0]}, '
          f'{size[1]}), N dynamic; checked with onnx.checker')
    for key, value in meta.items():
        print(f'[export]   {key} = {value}')
    return meta


if __name__ == '__main__':
    main()
