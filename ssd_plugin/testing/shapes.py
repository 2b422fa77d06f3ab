"""Synthetic detection set: coloured shapes on textured backgrounds.

No VOC or COCO in CI, so the quickstart and tests draw their own, with shapes
of several sizes (the paper's Fig. 4 case for multi-scale default boxes).
"""
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple
from xml.etree import ElementTree as ET

import cv2
import numpy as np
from mmengine.fileio import dump, put, put_text
from mmengine.utils import track_iter_progress

SHAPE_CLASSES = ('circle', 'square', 'triangle', 'star')
FORMATS = ('coco', 'voc', 'both')
_SPLIT_CODES = {'train': 0, 'val': 1}
_BACKGROUNDS = ('noise', 'gradient', 'stripes', 'checker')

# An object: (label index into SHAPE_CLASSES, [x, y, w, h], mask area in px).
ShapeObject = Tuple[int, List[int], int]


def shape_polygon(kind: str, center: Tuple[float, float], diameter: float,
                  angle: float) -> np.ndarray:
    """(V, 2) float64 ``(x, y)`` vertices of a ``'square'``, ``'triangle'``
    or ``'star'`` inscribed in the circle ``center``, ``diameter`` (px),
    rotated by ``angle`` radians."""
    radius = diameter / 2
    if kind == 'star':
        # 5 outer points alternating with inner ones at 0.45 of the radius.
        radii = np.tile([radius, 0.45 * radius], 5)
        thetas = angle + np.arange(10) * np.pi / 5
    elif kind in ('square', 'triangle'):
        count = 4 if kind == 'square' else 3
        radii = np.full(count, radius)
        thetas = angle + np.arange(count) * 2 * np.pi / count
    else:
        raise ValueError(f'unknown polygon kind {kind!r}; expected one of '
                         "'square', 'triangle', 'star'")
    return np.stack([center[0] + radii * np.cos(thetas),
                     center[1] + radii * np.sin(thetas)], axis=1)


def shape_mask(kind: str, center: Tuple[float, float], diameter: float,
               angle: float, img_size: int) -> np.ndarray:
    """(S, S) bool mask of one of :data:`SHAPE_CLASSES`, S = ``img_size``;
    other args as :func:`shape_polygon`."""
    mask = np.zeros((img_size, img_size), np.uint8)
    if kind == 'circle':
        cv2.circle(mask, (round(center[0]), round(center[1])),
                   max(1, round(diameter / 2)), 1, thickness=-1)
    else:
        points = shape_polygon(kind, center, diameter, angle)
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def mask_to_xywh(mask: np.ndarray) -> List[int]:
    """Tight COCO ``[x, y, w, h]`` of a non-empty (H, W) mask (pixel (r, c)
    gives ``[c, r, 1, 1]``)."""
    if not mask.any():
        raise ValueError('mask_to_xywh got an empty mask; draw the shape '
                         'inside the image first')
    return list(cv2.boundingRect(mask.astype(np.uint8)))


def overlap_over_smaller(box: Sequence[float],
                         others: Sequence[Sequence[float]]) -> float:
    """Largest intersection of ``[x, y, w, h]`` ``box`` with any of K
    ``others`` over the smaller area, in [0, 1] (0 for K = 0); unlike IoU it
    catches a small box inside a large one."""
    best = 0.0
    for other in others:
        iw = min(box[0] + box[2], other[0] + other[2]) - max(box[0], other[0])
        ih = min(box[1] + box[3], other[1] + other[3]) - max(box[1], other[1])
        if iw > 0 and ih > 0:
            smaller = min(box[2] * box[3], other[2] * other[3])
            best = max(best, iw * ih / smaller)
    return best


def textured_background(rng: np.random.Generator, img_size: int) -> np.ndarray:
    """A muted (S, S, 3) uint8 BGR background, one of :data:`_BACKGROUNDS`."""
    kind = _BACKGROUNDS[rng.integers(len(_BACKGROUNDS))]
    # Two grey levels with a small per-channel tint, so the saturated shapes
    # (_shape_colour) stand out by colour, not only by brightness.
    low, high = (rng.uniform(50, 200, size=(2, 1))
                 + rng.uniform(-20, 20, size=(2, 3)))
    yy, xx = np.mgrid[0:img_size, 0:img_size] / img_size
    theta = rng.uniform(0, np.pi)
    along = np.cos(theta) * xx + np.sin(theta) * yy
    if kind == 'gradient':
        weight = (along - along.min()) / max(np.ptp(along), 1e-6)
    elif kind == 'stripes':
        weight = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 10) * along)
    elif kind == 'checker':
        cells = rng.integers(4, 12)
        weight = ((xx * cells).astype(int) + (yy * cells).astype(int)) % 2
    else:
        weight = rng.uniform(0, 1, size=(img_size, img_size))
    image = low + weight[..., None] * (high - low)
    image += rng.normal(0, 8, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _shape_colour(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array([[[rng.integers(0, 180), rng.integers(180, 256),
                      rng.integers(180, 256)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float64)


def _place_shape(rng: np.random.Generator, img_size: int,
                 boxes: List[List[int]], scale_range: Tuple[float, float],
                 max_overlap: float) -> Optional[Tuple[int, np.ndarray]]:
    """``(label, mask)`` of a shape overlapping ``boxes`` little, or None."""
    for _ in range(20):
        label = int(rng.integers(len(SHAPE_CLASSES)))
        # Log-uniform size: as many small as large objects.
        diameter = img_size * np.exp(rng.uniform(*np.log(scale_range)))
        diameter = max(diameter, 6.0)
        center = tuple(rng.uniform(diameter / 2, img_size - diameter / 2, 2))
        mask = shape_mask(SHAPE_CLASSES[label], center, diameter,
                          rng.uniform(0, 2 * np.pi), img_size)
        if mask.any() and overlap_over_smaller(
                mask_to_xywh(mask), boxes) <= max_overlap:
            return label, mask
    return None


def draw_image(rng: np.random.Generator, img_size: int, max_objects: int,
               min_objects: int = 1,
               scale_range: Tuple[float, float] = (0.1, 0.6),
               max_overlap: float = 0.4
               ) -> Tuple[np.ndarray, List[ShapeObject]]:
    """Draw one image of shapes.

    Arguments as :func:`make_shapes`'s; ``max_overlap`` bounds
    :func:`overlap_over_smaller` with earlier shapes (partial occlusion).

    Returns:
        tuple: (S, S, 3) uint8 BGR image, objects ``(label, xywh, area)``.
    """
    image = textured_background(rng, img_size)
    objects: List[ShapeObject] = []
    for _ in range(int(rng.integers(min_objects, max_objects + 1))):
        placed = _place_shape(rng, img_size, [obj[1] for obj in objects],
                              scale_range, max_overlap)
        if placed is None:
            continue
        label, mask = placed
        shading = rng.normal(0, 6, size=(int(mask.sum()), 3))
        image[mask] = np.clip(_shape_colour(rng) + shading, 0, 255)
        objects.append((label, mask_to_xywh(mask), int(mask.sum())))
    return image, objects


def coco_json(split_images: List[Tuple[str, List[ShapeObject]]],
              img_size: int) -> dict:
    """COCO instances dict of ``(file_name, objects)`` per image; ids from 1,
    ``category_id`` = label + 1."""
    images, annotations = [], []
    for image_id, (file_name, objects) in enumerate(split_images, start=1):
        images.append(dict(id=image_id, file_name=file_name,
                           width=img_size, height=img_size))
        for label, bbox, area in objects:
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id,
                category_id=label + 1, bbox=bbox, area=area, iscrowd=0))
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(SHAPE_CLASSES)]
    return dict(images=images, annotations=annotations,
                categories=categories)


def _add(parent: ET.Element, tag: str, **children: object) -> ET.Element:
    element = ET.SubElement(parent, tag)
    for child, text in children.items():
        ET.SubElement(element, child).text = str(text)
    return element


def voc_xml(folder: str, stem: str, img_size: int,
            objects: List[ShapeObject]) -> str:
    """VOCdevkit XML; 1-based inclusive: ``xmin = x + 1``, ``xmax = x + w``."""
    root = ET.Element('annotation')
    ET.SubElement(root, 'folder').text = folder
    ET.SubElement(root, 'filename').text = f'{stem}.jpg'
    _add(root, 'size', width=img_size, height=img_size, depth=3)
    ET.SubElement(root, 'segmented').text = '0'
    for label, (x, y, w, h), _ in objects:
        obj = _add(root, 'object', name=SHAPE_CLASSES[label],
                   pose='Unspecified', truncated=0, difficult=0)
        _add(obj, 'bndbox', xmin=x + 1, ymin=y + 1, xmax=x + w, ymax=y + h)
    ET.indent(root)
    return ET.tostring(root, encoding='unicode') + '\n'


def _write_jpegs(folder: str, entries: list) -> None:
    os.makedirs(folder, exist_ok=True)  # even for an empty split
    for stem, jpeg, _ in entries:
        put(jpeg, osp.join(folder, f'{stem}.jpg'))


def _write_voc(voc_root: str, sets: Dict[Tuple[str, str], list],
               img_size: int) -> None:
    for (year, image_set), entries in sets.items():
        base = osp.join(voc_root, f'VOC{year}')
        os.makedirs(osp.join(base, 'Annotations'), exist_ok=True)
        _write_jpegs(osp.join(base, 'JPEGImages'), entries)
        for stem, _, objects in entries:
            put_text(voc_xml(f'VOC{year}', stem, img_size, objects),
                     osp.join(base, 'Annotations', f'{stem}.xml'))
        put_text(''.join(f'{stem}\n' for stem, _, _ in entries),
                 osp.join(base, 'ImageSets/Main', f'{image_set}.txt'))


def _write_coco(out_dir: str, split: str, entries: list,
                img_size: int) -> str:
    _write_jpegs(osp.join(out_dir, split), entries)
    ann_file = osp.join(out_dir, 'annotations', f'instances_{split}.json')
    dump(coco_json([(f'{stem}.jpg', objs) for stem, _, objs in entries],
                   img_size), ann_file)
    return ann_file


def _check_args(num_train: int, num_val: int, img_size: int, fmt: str,
                min_objects: int, max_objects: int,
                scale_range: Tuple[float, float] = (0.1, 0.6)) -> None:
    if not 0 < scale_range[0] <= scale_range[1] <= 1:
        raise ValueError(f'scale_range={tuple(scale_range)} must satisfy '
                         '0 < low <= high <= 1 (fractions of img_size)')
    if fmt not in FORMATS:
        raise ValueError(f'format {fmt!r} is not one of {FORMATS}')
    if num_train < 0 or num_val < 0:
        raise ValueError(f'num_train={num_train} and num_val={num_val} '
                         'must be >= 0')
    if img_size < 32:
        raise ValueError(f'img_size={img_size} is too small to draw shapes '
                         'of several sizes; use 32 or more')
    if not 0 <= min_objects <= max_objects:
        raise ValueError(f'need 0 <= min_objects ({min_objects}) <= '
                         f'max_objects ({max_objects})')


def make_shapes(out_dir: str, num_train: int = 400, num_val: int = 100,
                img_size: int = 128, fmt: str = 'coco', seed: int = 0,
                max_objects: int = 4, min_objects: int = 1,
                progress: bool = True,
                scale_range: Tuple[float, float] = (0.1, 0.6)
                ) -> Dict[str, str]:
    """Write the shapes set; boxes are tight around each full shape.

    Args:
        out_dir (str): Output folder; created if needed.
        num_train, num_val (int): Images per split. Defaults to 400, 100.
        img_size (int): Side of the square images. Defaults to 128.
        fmt (str): ``'coco'``, ``'voc'`` or ``'both'``. Defaults to 'coco'.
        seed (int): Image i of a split depends only on (seed, split, i).
        max_objects, min_objects (int): Shapes tried per image (0: may be
            empty). Defaults to 4, 1.
        progress (bool): Show a progress bar on stdout. Defaults to True.
        scale_range (tuple[float, float]): Diameters over ``img_size``
            (log-uniform, at least 6 px). Defaults to (0.1, 0.6).

    Returns:
        dict[str, str]: ``coco_{train,val}``: ``annotations/instances_*.json``
        (images in ``{split}/``); ``voc_root``: ``VOCdevkit``, train split
        halved into VOC2007/2012 ``trainval``, val as VOC2007 ``test`` (the
        paper's 07+12, section 3.2; mmdet's ``voc0712.py`` reads it).
    """
    _check_args(num_train, num_val, img_size, fmt, min_objects, max_objects,
                scale_range)
    jobs = [('train', index, index) for index in range(num_train)] + [
        ('val', index, num_train + index) for index in range(num_val)]
    splits: Dict[str, list] = dict(train=[], val=[])
    for split, index, image_id in (track_iter_progress(jobs, file=sys.stdout)
                                   if progress and jobs else jobs):
        rng = np.random.default_rng([seed, _SPLIT_CODES[split], index])
        image, objects = draw_image(rng, img_size, max_objects, min_objects,
                                    tuple(scale_range))
        jpeg = cv2.imencode('.jpg', image,
                            [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
        splits[split].append((f'{image_id:06d}', jpeg, objects))
    return _write_layouts(out_dir, splits, img_size, fmt)


def _write_layouts(out_dir: str, splits: Dict[str, list], img_size: int,
                   fmt: str) -> Dict[str, str]:
    paths = {}
    if fmt in ('coco', 'both'):
        for split, entries in splits.items():
            paths[f'coco_{split}'] = _write_coco(out_dir, split, entries,
                                                 img_size)
    if fmt in ('voc', 'both'):
        train = splits['train']
        half = (len(train) + 1) // 2
        voc12 = [(f'2012_{stem}', jpeg, objs)
                 for stem, jpeg, objs in train[half:]]
        paths['voc_root'] = osp.join(out_dir, 'VOCdevkit')
        _write_voc(paths['voc_root'],
                   {('2007', 'trainval'): train[:half],
                    ('2012', 'trainval'): voc12,
                    ('2007', 'test'): splits['val']}, img_size)
    return paths
