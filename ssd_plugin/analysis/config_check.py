"""The annotation sources of a config's loaders, checked and summarised
(``tools/analysis_tools/check_dataset.py``; the checks are
:mod:`.dataset_check`'s)."""
import json
import os.path as osp
import sys
from collections import Counter
from typing import Dict, List

from mmdet.datasets import XMLDataset
from mmengine.config import Config
from mmengine.utils import ProgressBar

from ssd_plugin.analysis.dataset_check import (PROBLEMS, Problem, check_coco,
                                               check_voc, clean_coco,
                                               count_problems)
from ssd_plugin.registry import DATASETS
from ssd_plugin.utils.config import leaf_datasets

SPLITS = ('train', 'val', 'test')
SHOWN = 5  # offenders printed per kind


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


def check_source(source: dict) -> List[Problem]:
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


def format_problems(problems: List[Problem], shown: int = SHOWN) -> str:
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


def write_clean(sources: List[dict], problems: Dict[str, List[Problem]],
                out: str) -> List[str]:
    """``--write-clean``: each COCO source without its offenders.

    One COCO file is written to ``out``; several to ``OUT_<split>.json``
    (``OUT_<split>_<k>.json`` for several in one split). VOC sources are
    named and skipped. What each removed is printed.

    Args:
        sources (list[dict]): :func:`dataset_sources`, checked (COCO ones
            hold their ``coco`` dict).
        problems (dict): Per ``ann_file``, its :func:`check_source` result.
        out (str): The output path.

    Returns:
        list[str]: The files written.
    """
    coco = [s for s in sources if s['kind'] == 'coco']
    for skipped in (s for s in sources if s['kind'] != 'coco'):
        print(f'--write-clean: {skipped["ann_file"]} is VOC, not written '
              '(only COCO files are)')
    stem, ext = osp.splitext(out)
    per_split = Counter(s['split'] for s in coco)
    written = []
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
        written.append(path)
    return written
