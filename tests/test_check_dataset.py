"""Annotation checks (ssd_plugin.analysis.dataset_check) and their tool.

A copy of the session's tiny shapes set gets one planted error of every kind
in its COCO file and in its VOC folder; the tool must count exactly those,
and the COCO file it cleans must check clean and train.
"""
import json
import math
import os
import os.path as osp
import shutil
import xml.etree.ElementTree as ET

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from ssd_plugin.analysis.dataset_check import (PROBLEMS, box_problem,
                                               check_coco, clean_coco,
                                               count_problems)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
COCO_KINDS = ('malformed_box', 'non_finite', 'degenerate_box',
              'outside_image', 'unknown_label', 'missing_image',
              'unreadable_image', 'size_mismatch', 'duplicate_image_id',
              'duplicate_annotation_id', 'orphan_annotation')
VOC_KINDS = ('malformed_box', 'non_finite', 'degenerate_box',
             'outside_image', 'unknown_label', 'missing_image',
             'unreadable_image', 'size_mismatch', 'duplicate_image_id',
             'missing_annotation')


@pytest.fixture
def tool(monkeypatch):
    """The tool module, imported from tools/analysis_tools."""
    monkeypatch.syspath_prepend(osp.join(ROOT, 'tools', 'analysis_tools'))
    import check_dataset
    return check_dataset


def corrupt_coco(root: str) -> dict:
    """Plant one error of each COCO kind in ``root``'s train split.

    Returns:
        dict: The planted annotation and image indices and the file names.
    """
    path = osp.join(root, 'annotations', 'instances_train.json')
    with open(path) as f:
        coco = json.load(f)
    images, anns = coco['images'], coco['annotations']
    # Six copies of a box of image 6 (whose file stays intact) to corrupt.
    donor = next(a for a in anns if a['image_id'] == images[5]['id'])
    later = list(range(len(anns), len(anns) + 6))
    anns += [dict(donor, id=10 ** 5 + k) for k in range(6)]
    anns[later[0]]['bbox'] = [1, 2, 3]                       # malformed
    anns[later[1]]['bbox'] = [float('nan'), 1, 5, 5]         # non-finite
    anns[later[2]]['bbox'] = [10, 10, -3, 5]                 # x2 <= x1
    anns[later[3]]['bbox'] = [60, 10, 20, 5]                 # x2 = 80 > 64
    anns[later[4]]['category_id'] = 99                       # unknown
    anns.append(dict(anns[later[5]]))                        # same id again
    anns.append(dict(anns[later[5]], id=10 ** 6, image_id=999))  # orphan
    with open(osp.join(root, 'train', images[1]['file_name']), 'wb') as f:
        f.write(b'not a jpeg')                               # unreadable
    images[0]['file_name'] = 'nope.jpg'                      # missing
    images[2]['width'] = 100                                 # other size
    images.append(dict(images[3]))                           # same id again
    with open(path, 'w') as f:
        json.dump(coco, f)  # NaN is written as NaN, json.load reads it back
    return dict(path=path, bad_anns=later[:5] + [len(anns) - 2,
                                                 len(anns) - 1],
                bad_images=[0, 1, 2, len(images) - 1])


def corrupt_voc(root: str) -> None:
    """Plant one error of each VOC kind in ``root``'s VOC2007 trainval."""
    base = osp.join(root, 'VOCdevkit', 'VOC2007')
    image_set = osp.join(base, 'ImageSets', 'Main', 'trainval.txt')
    with open(image_set) as f:
        stems = f.read().split()
    xml = osp.join(base, 'Annotations', f'{stems[0]}.xml')
    tree = ET.parse(xml)
    for name, box in (('circle', (1, 1, 5, None)),          # malformed
                      ('circle', ('nan', 1, 5, 5)),         # non-finite
                      ('circle', (10, 10, 8, 20)),          # x2 <= x1
                      ('circle', (10, 10, 200, 20)),        # outside
                      ('dog', (10, 10, 20, 20))):           # unknown
        obj = ET.SubElement(tree.getroot(), 'object')
        ET.SubElement(obj, 'name').text = name
        bndbox = ET.SubElement(obj, 'bndbox')
        for tag, value in zip(('xmin', 'ymin', 'xmax', 'ymax'), box):
            if value is not None:
                ET.SubElement(bndbox, tag).text = str(value)
    tree.write(xml)
    xml1 = osp.join(base, 'Annotations', f'{stems[1]}.xml')
    tree = ET.parse(xml1)
    tree.getroot().find('size/width').text = '100'          # other size
    tree.write(xml1)
    os.remove(osp.join(base, 'JPEGImages', f'{stems[2]}.jpg'))  # missing
    with open(osp.join(base, 'JPEGImages', f'{stems[3]}.jpg'), 'wb') as f:
        f.write(b'')                                         # unreadable
    with open(image_set, 'a') as f:
        f.write(f'{stems[0]}\nno_such_xml\n')     # repeated, no annotation


def test_box_problem_by_hand():
    assert box_problem([0, 0, 10, 10], 10, 10) is None  # touching is inside
    assert box_problem([0, 0, 0, 10], 10, 10)[0] == 'degenerate_box'
    assert box_problem([0, 0, 10, 11], 10, 10)[0] == 'outside_image'
    assert box_problem([-1, 0, 5, 5], None, None) is None  # size unknown
    assert box_problem([0, math.inf, 5, 5], 10, 10)[0] == 'non_finite'


def test_a_clean_set_has_no_problem(quickstart_leaf, tool, shapes_root, tmp_path):
    out = str(tmp_path / 'counts.json')
    assert tool.main([quickstart_leaf(tmp_path, shapes_root),
                      '--json', out]) == 0
    with open(out) as f:
        assert json.load(f)['counts'] == {kind: 0 for kind in PROBLEMS}
    assert count_problems([]) == {kind: 0 for kind in PROBLEMS}
    assert check_coco(dict(images=[], annotations=[], categories=[]), '',
                      'x.json') == []


def test_every_planted_coco_error_is_found_and_the_clean_file_trains(
        quickstart_leaf, tool, shapes_root, tmp_path, capsys):
    root = str(tmp_path / 'data')
    shutil.copytree(shapes_root, root)
    planted = corrupt_coco(root)
    config = quickstart_leaf(tmp_path, root)
    counts_file, clean_file = str(tmp_path / 'c.json'), str(
        tmp_path / 'clean.json')
    assert tool.main([config, '--json', counts_file,
                      '--write-clean', clean_file]) == 1
    with open(counts_file) as f:
        counts = json.load(f)
    expected = {kind: int(kind in COCO_KINDS) for kind in PROBLEMS}
    assert counts['counts'] == expected
    assert counts['per_file'][planted['path']] == expected
    assert 'nope.jpg' in capsys.readouterr().out  # the offender by name

    with open(planted['path']) as f:
        coco = json.load(f)
    with open(tmp_path / 'clean_train.json') as f:  # and clean_val.json
        clean = json.load(f)
    ids_gone = {coco['images'][i]['id'] for i in planted['bad_images'][:3]}
    with_images = sum(1 for i, a in enumerate(coco['annotations'])
                      if a['image_id'] in ids_gone
                      and i not in planted['bad_anns'])
    assert len(clean['images']) == len(coco['images']) - 4
    assert len(clean['annotations']) == (
        len(coco['annotations']) - 7 - with_images)
    assert clean_coco(clean, [])[1] == dict(
        removed_images=0, removed_annotations=0, removed_with_images=0)
    assert check_coco(clean, osp.join(root, 'train'), 'clean_train.json',
                      ('circle', 'square', 'triangle', 'star')) == []

    cfg = Config.fromfile(quickstart_leaf(tmp_path, root,
                                          str(tmp_path / 'clean_train.json')))
    cfg.work_dir = str(tmp_path / 'work')
    Runner.from_cfg(cfg).train()  # one epoch of the 5 kept images
    assert osp.isfile(tmp_path / 'work' / 'epoch_1.pth')


def test_every_planted_voc_error_is_found(tool, shapes_root, tiny_config,
                                          tmp_path):
    root = str(tmp_path / 'data')
    shutil.copytree(shapes_root, root)
    corrupt_voc(root)
    out = str(tmp_path / 'counts.json')
    config = tiny_config('ssd300_voc0712', root=root)
    assert tool.main([config, '--json', out,
                      '--write-clean', str(tmp_path / 'clean.json')]) == 1
    with open(out) as f:
        counts = json.load(f)
    assert counts['counts'] == {kind: int(kind in VOC_KINDS)
                                for kind in PROBLEMS}
    # VOC2007 trainval holds them all; VOC2012 trainval and the test set
    # are clean; no COCO file to write.
    assert sorted(sum(c.values()) for c in counts['per_file'].values()) == [
        0, 0, len(VOC_KINDS)]
    assert not osp.exists(tmp_path / 'clean.json')


def test_tool_errors_name_the_value(tool, tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.py'):
        tool.main(['nope.py'])
