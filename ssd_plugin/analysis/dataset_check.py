"""Annotation checks before training (``analysis_tools/check_dataset.py``).

mmdet's loaders drop some bad boxes silently, and ``x2 < x1`` gives a NaN box
loss, so these read the raw files, in mmdet's coordinates (COCO
``(x, y, x + w, y + h)``, VOC as written). Findings: :class:`Problem`.
"""
import math
import os.path as osp
import xml.etree.ElementTree as ET
from collections import Counter
from numbers import Real
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import mmcv

PROBLEMS = (
    'malformed_box',        # not 4 numbers / a bndbox tag missing or text
    'non_finite',           # NaN or infinite coordinate
    'degenerate_box',       # x2 <= x1 or y2 <= y1
    'outside_image',        # a coordinate outside [0, width] x [0, height]
    'unknown_label',        # category id / class name not in the classes
    'missing_image',        # image file does not exist
    'unreadable_image',     # image does not decode
    'size_mismatch',        # decoded size differs from the annotation's
    'duplicate_image_id',   # COCO image id (or VOC image-set line) repeated
    'duplicate_annotation_id',  # COCO annotation id repeated
    'orphan_annotation',    # COCO annotation of an image id not listed
    'missing_annotation',   # VOC XML missing or not parseable
)


class Problem(NamedTuple):
    """One finding: its kind, where, and what exactly."""
    kind: str
    file: str  # the annotation file (COCO JSON, VOC XML or image set)
    image: str  # the image file name ('' if none)
    detail: str
    image_index: Optional[int] = None  # position in COCO's ``images``
    ann_index: Optional[int] = None  # position in COCO's ``annotations``


def box_problem(box: Sequence[float], width: Optional[float],
                height: Optional[float]) -> Optional[Tuple[str, str]]:
    """``(kind, detail)`` of the first problem of an ``(x1, y1, x2, y2)``
    box (non-finite, degenerate, outside; None ``width``/``height`` skips
    the bounds), or None."""
    x1, y1, x2, y2 = box
    if not all(math.isfinite(v) for v in box):
        return 'non_finite', f'box {list(box)} has NaN or infinity'
    if x2 <= x1 or y2 <= y1:
        return 'degenerate_box', f'box {list(box)} has x2 <= x1 or y2 <= y1'
    if width is not None and height is not None and (
            x1 < 0 or y1 < 0 or x2 > width or y2 > height):
        return 'outside_image', (f'box {list(box)} leaves the {width}x'
                                 f'{height} image')
    return None


def image_problem(path: str, width: Optional[int],
                  height: Optional[int]) -> Optional[Tuple[str, str]]:
    """``(kind, detail)`` if missing, undecodable (decoded in full: a
    truncated JPEG has a valid header) or not ``width`` x ``height``."""
    if not osp.isfile(path):
        return 'missing_image', f'{path} does not exist'
    with open(path, 'rb') as f:
        content = f.read()
    image = mmcv.imfrombytes(content) if content else None
    if image is None:
        return 'unreadable_image', f'{path} ({len(content)} bytes) does not '\
            'decode'
    if width is not None and height is not None and \
            image.shape[:2] != (height, width):
        return 'size_mismatch', (
            f'{path} is {image.shape[1]}x{image.shape[0]}, the annotation '
            f'says {width}x{height}')
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def coco_box(bbox: object) -> Tuple[Optional[List[float]], Optional[str]]:
    """``(x1, y1, x2, y2)`` of a COCO ``bbox``, or why it is malformed."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or not all(
            _is_number(v) for v in bbox):
        return None, f'bbox {bbox!r} is not 4 numbers [x, y, w, h]'
    x, y, w, h = (float(v) for v in bbox)
    return [x, y, x + w, y + h], None


def count_problems(problems: Sequence[Problem]) -> Dict[str, int]:
    counts = Counter(p.kind for p in problems)
    return {kind: counts.get(kind, 0) for kind in PROBLEMS}


def _coco_images(coco: dict, img_dir: str, ann_file: str,
                 on_image=None) -> List[Problem]:
    problems, seen = [], set()
    for index, info in enumerate(coco.get('images', [])):
        name = str(info.get('file_name', ''))
        if info.get('id') in seen:
            problems.append(Problem(
                'duplicate_image_id', ann_file, name,
                f'image id {info.get("id")!r} listed again', index))
        seen.add(info.get('id'))
        width, height = info.get('width'), info.get('height')
        found = image_problem(osp.join(img_dir, name),
                              width if _is_number(width) else None,
                              height if _is_number(height) else None)
        if found is not None:
            problems.append(Problem(found[0], ann_file, name, found[1],
                                    index))
        if on_image is not None:
            on_image()
    return problems


def _coco_annotation(ann: dict, image: Optional[dict], valid_cats: set
                     ) -> List[Tuple[str, str]]:
    if image is None:
        return [('orphan_annotation',
                 f'image_id {ann.get("image_id")!r} is not in images')]
    found = []
    if ann.get('category_id') not in valid_cats:
        found.append(('unknown_label', f'category_id '
                      f'{ann.get("category_id")!r} not among the classes\' '
                      f'ids {sorted(valid_cats)}'))
    box, why = coco_box(ann.get('bbox'))
    width, height = image.get('width'), image.get('height')
    bad = ('malformed_box', why) if box is None else box_problem(
        box, width if _is_number(width) else None,
        height if _is_number(height) else None)
    return found + ([bad] if bad else [])


def check_coco(coco: dict, img_dir: str, ann_file: str,
               classes: Optional[Sequence[str]] = None,
               on_image=None) -> List[Problem]:
    """Every problem of a COCO instances dict and its images.

    Args:
        coco (dict): The loaded instances JSON.
        img_dir (str): Folder the ``file_name`` s are relative to.
        ann_file (str): The JSON's path, for the findings.
        classes (Sequence[str], optional): Class names; other categories are
            unknown (mmdet drops them). None: all are valid.
        on_image (callable, optional): Called after each image (progress).

    Returns:
        list[Problem]: In file order, images first.
    """
    problems = _coco_images(coco, img_dir, ann_file, on_image)
    images = {}
    for info in coco.get('images', []):
        images.setdefault(info.get('id'), info)
    valid_cats = {c['id'] for c in coco.get('categories', [])
                  if classes is None or c.get('name') in classes}
    seen = set()
    for index, ann in enumerate(coco.get('annotations', [])):
        image = images.get(ann.get('image_id'))
        name = str(image.get('file_name', '')) if image else ''
        found = _coco_annotation(ann, image, valid_cats)
        if ann.get('id') in seen:
            found.append(('duplicate_annotation_id',
                          f'annotation id {ann.get("id")!r} used again'))
        seen.add(ann.get('id'))
        problems += [Problem(kind, ann_file, name, detail, None, index)
                     for kind, detail in found]
    return problems


def clean_coco(coco: dict, problems: Sequence[Problem]
               ) -> Tuple[dict, Dict[str, int]]:
    """The COCO dict without the offending images (with their annotations)
    and annotations, and the counts ``removed_images``,
    ``removed_annotations``, ``removed_with_images``."""
    bad_images = {p.image_index for p in problems if p.image_index is not None}
    bad_anns = {p.ann_index for p in problems if p.ann_index is not None}
    images = [info for i, info in enumerate(coco.get('images', []))
              if i not in bad_images]
    kept_ids = {info.get('id') for info in images}
    annotations, with_images = [], 0
    for index, ann in enumerate(coco.get('annotations', [])):
        if index in bad_anns:
            continue
        if ann.get('image_id') not in kept_ids:
            with_images += 1
            continue
        annotations.append(ann)
    clean = dict(coco, images=images, annotations=annotations)
    return clean, dict(removed_images=len(bad_images),
                       removed_annotations=len(bad_anns),
                       removed_with_images=with_images)


def _voc_number(box_tag: ET.Element, name: str) -> float:
    found = box_tag.find(name)
    if found is None or found.text is None:
        raise ValueError(f'bndbox has no {name}')
    return float(found.text)


def _voc_object(obj: ET.Element, classes: Sequence[str], width, height
                ) -> List[Tuple[str, str]]:
    found = []
    name = obj.findtext('name')
    if name not in classes:
        found.append(('unknown_label',
                      f'class {name!r} not in {tuple(classes)}'))
    box_tag = obj.find('bndbox')
    try:
        if box_tag is None:
            raise ValueError('no bndbox')
        box = [_voc_number(box_tag, tag)
               for tag in ('xmin', 'ymin', 'xmax', 'ymax')]
    except ValueError as error:
        return found + [('malformed_box', str(error))]
    bad = box_problem(box, width, height)
    return found + ([bad] if bad else [])


def _voc_size(root: ET.Element) -> Tuple[Optional[int], Optional[int]]:
    def number(tag):
        text = root.findtext(f'size/{tag}')
        try:
            return int(float(text))
        except (TypeError, ValueError):
            return None
    return number('width'), number('height')


def check_voc(image_set: str, sub_root: str, classes: Sequence[str],
              img_subdir: str = 'JPEGImages', ann_subdir: str = 'Annotations',
              on_image=None) -> List[Problem]:
    """Every problem of one VOC image set, its XML files and images.

    Args:
        image_set (str): ``ImageSets/Main/<set>.txt``, one stem a line.
        sub_root (str): The ``VOC20xx`` folder.
        classes (Sequence[str]): The config's class names.
        img_subdir, ann_subdir (str): As mmdet's ``XMLDataset``.
        on_image (callable, optional): Called after each image (progress).

    Returns:
        list[Problem]: In image-set order.
    """
    with open(image_set) as f:
        stems = [line.strip() for line in f if line.strip()]
    problems, seen = [], set()
    for stem in stems:
        if on_image is not None:
            on_image()
        xml_path = osp.join(sub_root, ann_subdir, f'{stem}.xml')
        image = f'{stem}.jpg'
        if stem in seen:  # checked once; mmdet would load it twice
            problems.append(Problem('duplicate_image_id', image_set, image,
                                    f'{stem} listed again'))
            continue
        seen.add(stem)
        try:
            root = ET.parse(xml_path).getroot()
        except (OSError, ET.ParseError) as error:
            problems.append(Problem('missing_annotation', xml_path, image,
                                    str(error)))
            continue
        width, height = _voc_size(root)
        for obj in root.findall('object'):
            problems += [Problem(kind, xml_path, image, detail)
                         for kind, detail in _voc_object(obj, classes,
                                                         width, height)]
        found = image_problem(osp.join(sub_root, img_subdir, image),
                              width, height)
        if found is not None:
            problems.append(Problem(found[0], xml_path, image, found[1]))
    return problems
