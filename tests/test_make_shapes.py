"""Tests of the synthetic shapes generator (ssd_plugin.testing.shapes) and
its video (ssd_plugin.testing.shapes_video).

Expected values come from hand geometry, from pycocotools / ElementTree
reading the files back, and from the drawn pixels themselves.
"""
import json
import math
import os
import os.path as osp
from xml.etree import ElementTree as ET

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from conftest import load_tool
from ssd_plugin.testing.shapes import (SHAPE_CLASSES, draw_image,
                                        make_shapes, mask_to_xywh,
                                        overlap_over_smaller, shape_mask,
                                        shape_polygon, textured_background)
from ssd_plugin.testing.shapes_video import make_shapes_video


def _load_cli():
    return load_tool('dataset_converters/make_shapes.py')


# --- pure geometry -----------------------------------------------------------
def test_square_polygon_vertices_on_circumscribed_circle():
    points = shape_polygon('square', (50, 50), 20, 0.0)
    expected = np.array([[60, 50], [50, 60], [40, 50], [50, 40]])
    np.testing.assert_allclose(points, expected, atol=1e-9)


@pytest.mark.parametrize('kind,count', [('triangle', 3), ('square', 4),
                                        ('star', 10)])
def test_polygon_vertex_count_and_radius(kind, count):
    points = shape_polygon(kind, (0, 0), 10, 0.3)
    assert points.shape == (count, 2)
    radii = np.hypot(points[:, 0], points[:, 1])
    assert radii.max() == pytest.approx(5.0)
    if kind == 'star':  # inner points at 0.45 of the radius
        assert radii.min() == pytest.approx(2.25)


def test_unknown_polygon_kind_names_it():
    with pytest.raises(ValueError, match="'hexagon'"):
        shape_polygon('hexagon', (0, 0), 10, 0.0)


def test_circle_mask_area_close_to_pi_r_squared():
    mask = shape_mask('circle', (32, 32), 30, 0.0, 64)
    assert mask.sum() == pytest.approx(math.pi * 15 ** 2, rel=0.05)
    x, y, w, h = mask_to_xywh(mask)
    assert (w, h) == (31, 31) and (x, y) == (17, 17)  # 32 +- 15, inclusive


def test_mask_to_xywh_single_pixel_and_rectangle():
    mask = np.zeros((10, 12), bool)
    mask[3, 7] = True
    assert mask_to_xywh(mask) == [7, 3, 1, 1]
    mask[3:6, 2:9] = True
    assert mask_to_xywh(mask) == [2, 3, 7, 3]


def test_mask_to_xywh_empty_raises():
    with pytest.raises(ValueError, match='empty mask'):
        mask_to_xywh(np.zeros((4, 4), bool))


def test_overlap_over_smaller_hand_values():
    assert overlap_over_smaller([0, 0, 10, 10], []) == 0.0
    assert overlap_over_smaller([0, 0, 10, 10], [[5, 5, 10, 10]]) == 0.25
    assert overlap_over_smaller([0, 0, 10, 10], [[2, 2, 2, 2]]) == 1.0
    assert overlap_over_smaller([0, 0, 10, 10], [[10, 0, 5, 5]]) == 0.0


# --- drawing -----------------------------------------------------------------
@pytest.mark.parametrize('seed', range(6))
def test_single_object_box_is_tight_around_changed_pixels(seed):
    # draw_image starts with textured_background on the same generator, so
    # replaying the seed gives the background; the shape is what changed.
    background = textured_background(np.random.default_rng(seed), 64)
    image, objects = draw_image(np.random.default_rng(seed), 64,
                                max_objects=1, min_objects=1)
    assert len(objects) == 1
    label, (x, y, w, h), area = objects[0]
    changed = np.abs(image.astype(int) - background).max(axis=2) > 0
    rows, cols = np.nonzero(changed)
    assert abs(cols.min() - x) <= 1 and abs(rows.min() - y) <= 1
    assert abs(cols.max() - (x + w - 1)) <= 1
    assert abs(rows.max() - (y + h - 1)) <= 1
    assert area == pytest.approx(changed.sum(), abs=0.05 * area + 2)
    assert 0 <= label < len(SHAPE_CLASSES)


def test_draw_image_with_zero_objects_is_background_only():
    image, objects = draw_image(np.random.default_rng(1), 48, max_objects=0,
                                min_objects=0)
    assert objects == [] and image.shape == (48, 48, 3)


def test_sizes_span_small_to_large():
    boxes = []
    for seed in range(60):
        boxes += [obj[1] for obj in draw_image(np.random.default_rng(seed),
                                               128, 4)[1]]
    sides = np.array([max(w, h) for _, _, w, h in boxes])
    assert sides.min() < 0.15 * 128 and sides.max() > 0.4 * 128
    # Boxes stay inside the image.
    assert all(x >= 0 and y >= 0 and x + w <= 128 and y + h <= 128
               for x, y, w, h in boxes)


# --- files -------------------------------------------------------------------
def test_coco_files_load_with_pycocotools(shapes_root):
    for split, count in (('train', 8), ('val', 4)):
        coco = COCO(osp.join(shapes_root, 'annotations',
                             f'instances_{split}.json'))
        assert len(coco.getImgIds()) == count
        names = [c['name'] for c in coco.loadCats(coco.getCatIds())]
        assert tuple(names) == SHAPE_CLASSES
        assert len(coco.getAnnIds()) >= count  # at least 1 object each
        for ann in coco.loadAnns(coco.getAnnIds()):
            x, y, w, h = ann['bbox']
            assert ann['iscrowd'] == 0 and 0 < ann['area'] <= w * h
            assert x >= 0 and y >= 0 and x + w <= 64 and y + h <= 64
        for info in coco.loadImgs(coco.getImgIds()):
            image = cv2.imread(osp.join(shapes_root, split,
                                        info['file_name']))
            assert image.shape == (info['height'], info['width'], 3)


def test_voc_layout_and_boxes_match_coco(shapes_root):
    voc = osp.join(shapes_root, 'VOCdevkit')

    def ids(year, image_set):
        path = osp.join(voc, f'VOC{year}', 'ImageSets', 'Main',
                        f'{image_set}.txt')
        return open(path).read().split()

    assert len(ids(2007, 'trainval')) + len(ids(2012, 'trainval')) == 8
    assert ids(2007, 'test') == ['000008', '000009', '000010', '000011']
    coco = json.load(open(osp.join(shapes_root, 'annotations',
                                   'instances_val.json')))
    first = [a for a in coco['annotations'] if a['image_id'] == 1]
    root = ET.parse(osp.join(voc, 'VOC2007', 'Annotations',
                             '000008.xml')).getroot()
    objects = root.findall('object')
    assert len(objects) == len(first)
    for obj, ann in zip(objects, first):
        x, y, w, h = ann['bbox']
        box = [int(obj.find('bndbox').find(k).text)
               for k in ('xmin', 'ymin', 'xmax', 'ymax')]
        assert box == [x + 1, y + 1, x + w, y + h]  # VOC: 1-based inclusive
        assert obj.find('name').text == SHAPE_CLASSES[ann['category_id'] - 1]
    for year in (2007, 2012):
        for stem in ids(year, 'trainval'):
            assert osp.isfile(osp.join(voc, f'VOC{year}', 'JPEGImages',
                                       f'{stem}.jpg'))


def _read_all(root):
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = osp.join(folder, name)
            out[osp.relpath(path, root)] = open(path, 'rb').read()
    return out


def test_deterministic_given_seed_and_independent_of_count(tmp_path):
    make_shapes(str(tmp_path / 'a'), 3, 2, 48, seed=5, progress=False)
    make_shapes(str(tmp_path / 'b'), 3, 2, 48, seed=5, progress=False)
    make_shapes(str(tmp_path / 'c'), 3, 2, 48, seed=6, progress=False)
    make_shapes(str(tmp_path / 'd'), 5, 0, 48, seed=5, progress=False)
    a, b, c = (_read_all(tmp_path / n) for n in 'abc')
    assert a == b
    assert a['train/000000.jpg'] != c['train/000000.jpg']
    d = _read_all(tmp_path / 'd')
    assert all(d[f'train/00000{i}.jpg'] == a[f'train/00000{i}.jpg']
               for i in range(3))


def test_empty_set_is_valid(tmp_path):
    paths = make_shapes(str(tmp_path), 0, 0, 64, fmt='both', progress=False)
    coco = COCO(paths['coco_train'])
    assert coco.getImgIds() == [] and len(coco.getCatIds()) == 4
    assert open(osp.join(paths['voc_root'], 'VOC2007', 'ImageSets', 'Main',
                         'test.txt')).read() == ''


def test_images_without_objects(tmp_path):
    paths = make_shapes(str(tmp_path), 3, 0, 64, max_objects=0,
                        min_objects=0, progress=False)
    coco = COCO(paths['coco_train'])
    assert len(coco.getImgIds()) == 3 and coco.getAnnIds() == []


@pytest.mark.parametrize('kwargs,match', [
    (dict(fmt='yolo'), "'yolo'"),
    (dict(img_size=16), 'img_size=16'),
    (dict(num_train=-1), 'num_train=-1'),
    (dict(min_objects=3, max_objects=2), r'min_objects \(3\)'),
])
def test_bad_arguments_name_the_value(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_shapes(str(tmp_path), **kwargs)


def test_cli_writes_both_layouts_with_progress_bar(tmp_path, capsys):
    _load_cli().main([str(tmp_path), '--num-train', '2', '--num-val', '1',
                      '--img-size', '48', '--format', 'both'])
    out = capsys.readouterr().out
    assert '3/3' in out and 'elapsed' in out  # mmengine's ProgressBar
    assert osp.isfile(tmp_path / 'annotations' / 'instances_val.json')
    assert osp.isfile(tmp_path / 'VOCdevkit' / 'VOC2012' / 'JPEGImages' /
                      '2012_000001.jpg')


# --- the video of moving shapes ---------------------------------------------
def _read_video(path):
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames, capture.get(cv2.CAP_PROP_FPS)
        frames.append(frame)


@pytest.mark.parametrize('suffix', ['.mp4', '.avi'])
def test_video_frames_and_boxes(tmp_path, suffix):
    path = str(tmp_path / 'sub' / f'shapes{suffix}')
    result = make_shapes_video(path, num_frames=10, frame_size=(96, 64),
                               fps=12, num_objects=3, seed=1)
    frames, fps = _read_video(path)
    assert len(frames) == 10 and fps == 12
    assert frames[0].shape == (64, 96, 3)
    assert len(result['boxes']) == 10
    for boxes in result['boxes']:
        assert len(boxes) == 3
        for label, (x, y, w, h) in boxes:
            assert 0 <= label < len(SHAPE_CLASSES)
            assert 0 <= x and x + w <= 96 and 0 <= y and y + h <= 64
    # Shapes move: the first shape's box is not where it started.
    assert result['boxes'][0][0][1] != result['boxes'][-1][0][1]
    again = make_shapes_video(str(tmp_path / f'again{suffix}'), num_frames=10,
                              frame_size=(96, 64), fps=12, num_objects=3,
                              seed=1)
    assert again['boxes'] == result['boxes']


def test_video_without_shapes_is_the_background(tmp_path):
    path = str(tmp_path / 'empty.avi')
    result = make_shapes_video(path, num_frames=3, frame_size=(48, 40),
                               num_objects=0)
    frames, _ = _read_video(path)
    assert result['boxes'] == [[], [], []] and len(frames) == 3
    # Motion JPEG is lossy: consecutive frames of one image differ little.
    assert np.abs(frames[0].astype(int) - frames[2]).mean() < 1


@pytest.mark.parametrize('kwargs,match', [
    (dict(path='v.gif'), r"v\.gif'"),
    (dict(num_frames=0), 'num_frames=0'),
    (dict(frame_size=(16, 64)), r'frame_size=\(16, 64\)'),
    (dict(num_objects=-1), 'num_objects=-1'),
])
def test_video_bad_arguments_name_the_value(tmp_path, kwargs, match):
    kwargs.setdefault('path', 'v.mp4')
    kwargs['path'] = str(tmp_path / kwargs['path'])
    with pytest.raises(ValueError, match=match):
        make_shapes_video(**kwargs)


def test_cli_video(tmp_path, capsys):
    path = tmp_path / 'shapes.mp4'
    _load_cli().main([str(path), '--video', '--num-frames', '4',
                      '--frame-size', '80', '48', '--max-objects', '2'])
    assert 'shapes.mp4 (4 frames, 80x48, 30 FPS)' in capsys.readouterr().out
    frames, _ = _read_video(str(path))
    assert len(frames) == 4 and frames[0].shape == (48, 80, 3)
