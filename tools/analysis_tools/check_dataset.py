"""Check every annotation of a config's train and val sets before training.

Finds, in COCO files and VOC folders alike (the kinds of
:data:`ssd_plugin.analysis.dataset_check.PROBLEMS`): boxes with x2 <= x1 or
y2 <= y1, outside the image, with NaN or infinite values or malformed;
labels or category ids outside the config's classes; images missing,
unreadable or of another size than the annotation says; repeated image (and
COCO annotation) ids; COCO annotations of unlisted images, VOC XML missing.
Prints the count per problem and the first offenders by file, and exits 1
when anything is wrong.

``--json OUT.json`` writes the counts per kind (overall and per annotation
file); ``--write-clean OUT.json`` writes the COCO file without the offenders
(what was removed is printed and counted; with several COCO files, one per
file: ``OUT_train.json``, ``OUT_val.json``, ``OUT_<split>_<k>.json`` for
several in one split).

Usage::

    python tools/analysis_tools/check_dataset.py CONFIG [--json OUT.json]
        [--write-clean OUT.json] [--cfg-options k=v ...]
"""
import argparse
import json
import sys
from collections import defaultdict
from typing import List, Optional

import ssd_plugin  # noqa: F401  (registers the datasets)
from ssd_plugin.analysis.config_check import (check_source, dataset_sources,
                                              format_problems, write_clean)
from ssd_plugin.analysis.dataset_check import count_problems
from ssd_plugin.utils.config import add_cfg_options, load_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--json', help='write the counts per kind here')
    parser.add_argument('--write-clean', metavar='OUT.json',
                        help='write the COCO file without the offenders')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Check, print, write; 1 if any problem was found."""
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    sources = dataset_sources(cfg)
    problems = defaultdict(list)
    for source in sources:
        problems[source['ann_file']] = check_source(source)
    everything = [p for found in problems.values() for p in found]
    print(format_problems(everything))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(counts=count_problems(everything),
                           per_file={k: count_problems(v)
                                     for k, v in problems.items()}),
                      f, indent=1)
    if args.write_clean:
        write_clean(sources, problems, args.write_clean)
    return 1 if everything else 0


if __name__ == '__main__':
    sys.exit(main())
