"""Time SSD training steps on the CPU: bf16 autocast against float32.

One model, the two precisions interleaved on a synthetic batch
(:mod:`ssd_plugin.benchmarks.train_step`); a step is forward, loss, backward
and SGD.
"""
import argparse
from typing import Dict, List, Optional, Sequence

from ssd_plugin.benchmarks.train_step import run
from ssd_plugin.utils.benchmark import add_timing_args
from ssd_plugin.utils.config import SSD300_COCO, add_cfg_options


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, List[float]]:
    """Time the steps with ``argv``'s options (default ``sys.argv``); print
    and return the per-round speed-ups over float32."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=SSD300_COCO)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--steps', type=int, default=2,
                        help='timed steps per round and precision')
    add_timing_args(parser, rounds=3, threads=None)
    add_cfg_options(parser)
    return run(**vars(parser.parse_args(argv)))


if __name__ == '__main__':
    main()
