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
import os.path as osp
import sys
from collections import Counter, defaultdict
from typing import Dict, List, Optional

from mmdet.datasets import XMLDataset
from mmengine.config import Config, DictAction
from mmengine.utils import ProgressBar

import ssd_plugin  # noqa: F401  (registers the datasets)
from ssd_plugin.analysis.dataset_check import (PROBLEMS, check_coco,
                                               check_voc, clean_coco,
                                               count_problems)
from ssd_plugin.registry import DATASETS
from ssd_plugin.utils.config import leaf_datasets, load_config

SPLITS = ('train', 'val', 'test')
SHOWN = 5  # offenders printed per kind


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--json', help='write the counts per kind here')
    parser.add_argument('--write-clean', metavar='OUT.json',
                        help='write the COCO file without the offenders')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def dataset_sources(cfg: Config) -> List[dict]:
    """Each annotation source of the train/val/test loaders, once.

    The leaf datasets are built with ``lazy_init=True``: mmdet joins
    ``data_root`` and the prefixes but reads no annotation (its loaders
    would drop some offenders silently).

    Returns:
        list[dict]: ``split``, ``kind`` ('coco' or 'voc'), ``ann_file``,
        ``classes`` and ``img_dir`` (COCO) or ``sub_root``, ``img_subdir``,
        ``ann_subdir`` (VOC).
    """
    sources, seen = [], set()
    for split in SPLITS:
        loader = cfg.get(f'{split}_dataloader')
        for leaf in leaf_datasets(loader.dataset) if loader else []:
            dataset = DATASETS.build(dict(leaf, lazy_init=True))
            if dataset.ann_file in seen:
                continue
            seen.add(dataset.ann_file)
            source = dict(split=split, ann_file=dataset.ann_file,
                          classes=tuple(dataset.metainfo['classes']))
            if isinstance(dataset, XMLDataset):
                source.update(kind='voc', sub_root=dataset.sub_data_root,
                              img_subdir=dataset.img_subdir,
                              ann_subdir=dataset.ann_subdir)
            else:
                source.update(kind='coco',
                              img_dir=dataset.data_prefix.get('img', ''))
            sources.append(source)
    return sources


def check_source(source: dict) -> list:
    """The problems of one source, with a progress bar over its images."""
    if not osp.isfile(source['ann_file']):
        raise FileNotFoundError(
            f'{source["split"]} annotation file {source["ann_file"]!r} not '
            'found; fix data_root/ann_file in the config')
    print(f'{source["split"]}: {source["ann_file"]}')
    if source['kind'] == 'voc':
        with open(source['ann_file']) as f:
            bar = ProgressBar(sum(1 for line in f if line.strip()),
                              file=sys.stdout)
        problems = check_voc(source['ann_file'], source['sub_root'],
                             source['classes'], source['img_subdir'],
                             source['ann_subdir'], bar.update)
    else:
        with open(source['ann_file']) as f:
            source['coco'] = json.load(f)
        bar = ProgressBar(len(source['coco'].get('images', [])),
                          file=sys.stdout)
        problems = check_coco(source['coco'], source['img_dir'],
                              source['ann_file'], source['classes'],
                              bar.update)
    sys.stdout.write('\n')
    return problems


def format_problems(problems: list, shown: int = SHOWN) -> str:
    """Count per kind and the first offenders of each, grouped by file."""
    counts = count_problems(problems)
    lines = [f'{sum(counts.values())} problems']
    for kind in PROBLEMS:
        if not counts[kind]:
            continue
        lines.append(f'{kind}: {counts[kind]}')
        for p in [p for p in problems if p.kind == kind][:shown]:
            lines.append(f'  {p.file}: {p.image}: {p.detail}')
    return '\n'.join(lines)


def write_clean(sources: List[dict], problems: Dict[str, list],
                out: str) -> None:
    """``--write-clean``: each COCO file without its offenders."""
    coco = [s for s in sources if s['kind'] == 'coco']
    for skipped in (s for s in sources if s['kind'] != 'coco'):
        print(f'--write-clean: {skipped["ann_file"]} is VOC, not written '
              '(only COCO files are)')
    stem, ext = osp.splitext(out)
    per_split = Counter(s['split'] for s in coco)
    for k, source in enumerate(coco):
        path = f'{stem}_{source["split"]}'
        if per_split[source['split']] > 1:
            path += f'_{k}'
        path = out if len(coco) == 1 else path + ext
        clean, removed = clean_coco(source['coco'],
                                    problems[source['ann_file']])
        with open(path, 'w') as f:
            json.dump(clean, f)
        print(f'--write-clean: {path} from {source["ann_file"]}: removed '
              f'{removed["removed_images"]} images, '
              f'{removed["removed_annotations"]} annotations with a '
              f'problem, {removed["removed_with_images"]} annotations of '
              'removed images')


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
