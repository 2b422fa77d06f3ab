"""What ``ssd-detect`` writes: drawn images or a drawn video, and COCO JSON.

- :func:`draw`: boxes and ``name score`` labels on a frame, one colour per
  class;
- :class:`ImageWriter`: drawn images into a folder, under their file names;
- :class:`VideoWriter`: a drawn video (``cv2.VideoWriter``; the codec by the
  file's suffix);
- :class:`CocoJson`: the detections in COCO's results format (``image_id``,
  ``category_id``, ``bbox`` ``[x, y, w, h]``, ``score``) under
  ``annotations``, with every image or frame read under ``images`` -- also
  those without detections -- and the class names under ``categories``.
  ``category_id`` is the label + 1, as in our COCO files; the file loads
  as a COCO dataset with ``pycocotools``, and its ``annotations`` list is
  what ``COCO.loadRes`` takes.
"""
import functools
import json
import os
import os.path as osp
from typing import Dict, List, Sequence

import cv2
import numpy as np

from ssd_runtime.detections import Detections

# cv2.VideoWriter codecs by suffix; each is in OpenCV's pip wheels' FFmpeg.
FOURCC = {'.mp4': 'mp4v', '.m4v': 'mp4v', '.mov': 'mp4v', '.mkv': 'mp4v',
          '.avi': 'MJPG'}


@functools.lru_cache(maxsize=None)  # drawn per box on every frame
def class_colour(label: int) -> tuple:
    """A BGR colour per label, hues spread by the golden ratio."""
    hsv = np.uint8([[[int(label * 0.618034 * 180) % 180, 220, 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def draw(image: np.ndarray, found: Detections) -> np.ndarray:
    """Draw ``found`` on ``image`` in place; return it.

    Args:
        image (np.ndarray): ``(h, w, 3)`` uint8 BGR.
        found (Detections): Boxes in ``image``'s pixels.
    """
    thickness = max(1, round(min(image.shape[:2]) / 300))
    for box, score, label, name in zip(found.boxes, found.scores,
                                       found.labels, found.class_names):
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        colour = class_colour(int(label))
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, thickness)
        text = f'{name} {score:.2f}'
        (width, height), base = cv2.getTextSize(
            text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        top = max(y1 - height - base, 0)
        cv2.rectangle(image, (x1, top), (x1 + width, top + height + base),
                      colour, -1)
        cv2.putText(image, text, (x1, top + height), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return image


class ImageWriter:
    """Drawn images into ``folder`` (created), each under its file name;
    a name met twice gets its index (``name_3.jpg``)."""

    def __init__(self, folder: str) -> None:
        if osp.splitext(folder)[1].lower() in FOURCC:
            raise ValueError(
                f'--out {folder!r} names a video, but the input is images: '
                'give a folder for the drawn images')
        os.makedirs(folder, exist_ok=True)
        self.folder, self.count, self.names = folder, 0, set()

    def write(self, image: np.ndarray, name: str, index: int) -> None:
        base = osp.basename(name)
        if base in self.names:
            stem, ext = osp.splitext(base)
            base = f'{stem}_{index}{ext}'
        self.names.add(base)
        path = osp.join(self.folder, base)
        if not cv2.imwrite(path, image):
            raise ValueError(f'cannot write {path!r}: check the folder is '
                             'writable and the suffix is an image format')
        self.count += 1

    def close(self) -> str:
        return f'{self.folder}/ ({self.count} images)'


class VideoWriter:
    """A drawn video at ``path``, opened on the first frame (its size).

    Args:
        path (str): ``.mp4``, ``.m4v``, ``.mov``, ``.mkv`` (MPEG-4 part 2)
            or ``.avi`` (Motion JPEG); a folder: ``{path}/{stem}.mp4``.
        fps (float): Frame rate (the source's).
        stem (str): File name in a folder ``path``.
    """

    def __init__(self, path: str, fps: float, stem: str) -> None:
        suffix = osp.splitext(path)[1].lower()
        if suffix not in FOURCC:
            if suffix:
                raise ValueError(
                    f'--out {path!r}: a video is written as one of '
                    f'{sorted(FOURCC)}, or into a folder (no suffix)')
            path = osp.join(path, f'{stem}.mp4')
        self.path, self.fps, self.writer, self.count = path, fps, None, 0
        self.size = None

    def _open(self, width: int, height: int) -> None:
        folder = osp.dirname(self.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        fourcc = FOURCC[osp.splitext(self.path)[1].lower()]
        self.writer = cv2.VideoWriter(self.path,
                                      cv2.VideoWriter_fourcc(*fourcc),
                                      self.fps, (width, height))
        if not self.writer.isOpened():
            raise ValueError(f'OpenCV cannot write {self.path!r} with codec '
                             f'{fourcc}; try --out OUT.avi (Motion JPEG)')
        self.size = (width, height)

    def write(self, image: np.ndarray, name: str, index: int) -> None:
        height, width = image.shape[:2]
        if self.writer is None:
            self._open(width, height)
        elif (width, height) != self.size:
            # A camera that changes resolution: the video keeps its first.
            image = cv2.resize(image, self.size)
        self.writer.write(image)
        self.count += 1

    def close(self) -> str:
        if self.writer is not None:
            self.writer.release()
        return f'{self.path} ({self.count} frames)'


class CocoJson:
    """Detections of every frame, written as described in the module.

    Args:
        classes (Sequence[str]): The model's class names.
    """

    def __init__(self, classes: Sequence[str]) -> None:
        self.classes = list(classes)
        self.images: List[Dict] = []
        self.annotations: List[Dict] = []

    def add(self, index: int, name: str, shape: tuple,
            found: Detections) -> None:
        """Record frame ``index`` (its ``image_id``) and its detections."""
        self.images.append(dict(id=index, file_name=name, height=shape[0],
                                width=shape[1]))
        xywh = found.boxes.copy()
        xywh[:, 2:] -= xywh[:, :2]
        for box, score, label in zip(xywh.round(2).tolist(),
                                     found.scores.round(5).tolist(),
                                     found.labels.tolist()):
            self.annotations.append(dict(
                id=len(self.annotations) + 1, image_id=index,
                category_id=label + 1, bbox=box, area=box[2] * box[3],
                score=score, iscrowd=0))

    def write(self, path: str, skipped: Sequence) -> str:
        """Write to ``path``, with the frames that could not be read."""
        names = self.classes or [str(i) for i in range(
            max((a['category_id'] for a in self.annotations), default=0))]
        categories = [dict(id=i + 1, name=n) for i, n in enumerate(names)]
        folder = osp.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(dict(images=self.images, annotations=self.annotations,
                           categories=categories,
                           skipped=[dict(id=i, reason=r) for i, r in skipped]),
                      f)
        return (f'{path} ({len(self.images)} images, '
                f'{len(self.annotations)} detections)')
