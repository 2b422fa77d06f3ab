"""One image's detections, and the graph's outputs mapped back to the image.

An ``end2end`` graph gives ``dets`` ``(N, K, 5)`` (x1, y1, x2, y2 in input
pixels, score) and ``labels`` ``(N, K)``, best first, rows past an image's
detections all zero. :func:`to_original` clips the boxes to the resized
image and divides by the resize's scale, as ``SSDHead.predict_by_feat(
rescale=True)`` does; ``ssd_plugin``'s ``DeployedDetector`` calls it too.

Shorthand: ``K`` rows per image, ``D`` detections found.
"""
from dataclasses import dataclass
from typing import Sequence, Tuple, Union

import numpy as np


def to_original(dets: np.ndarray, labels: np.ndarray,
                img_shape: Tuple[int, int],
                scale_factor: Tuple[float, float]
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's graph outputs in the original image.

    Args:
        dets (np.ndarray): ``(K, 5)`` float32, input pixels and score; all-zero
            rows are padding.
        labels (np.ndarray): ``(K,)`` int64.
        img_shape (tuple[int, int]): ``(H, W)`` of the resized image.
        scale_factor (tuple[float, float]): ``(w_scale, h_scale)`` of the
            resize.

    Returns:
        tuple: ``boxes`` ``(D, 4)`` float32 x1, y1, x2, y2 in original-image
        pixels, ``scores`` ``(D,)`` float32, ``labels`` ``(D,)`` int64;
        best first.
    """
    found = dets[:, 4] > 0
    height, width = img_shape[:2]
    limit = np.array([width, height, width, height], np.float32)
    boxes = np.minimum(np.maximum(dets[found, :4], 0), limit)
    # float32 arithmetic as the head's (1 / scale computed in double).
    boxes *= np.array([1 / s for s in scale_factor] * 2, np.float32)
    return boxes, dets[found, 4], labels[found].astype(np.int64)


@dataclass
class Detections:
    """One image's detections, best first (numpy, no framework types).

    Attributes:
        boxes (np.ndarray): ``(D, 4)`` float32 x1, y1, x2, y2, pixels of the
            image given.
        scores (np.ndarray): ``(D,)`` float32 in (0, 1].
        labels (np.ndarray): ``(D,)`` int64 class indices.
        class_names (np.ndarray): ``(D,)`` str, the model's name of each
            label (``str(label)`` if the model records none).
    """
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    class_names: np.ndarray

    @classmethod
    def from_graph(cls, dets: np.ndarray, labels: np.ndarray, meta: dict,
                   classes: Sequence[str]) -> 'Detections':
        """From one image's graph outputs (:func:`to_original`) and the
        ``img_shape``/``scale_factor`` of its resize."""
        boxes, scores, labels = to_original(dets, labels, meta['img_shape'],
                                            meta['scale_factor'])
        if len(classes) and len(labels) and labels.max() >= len(classes):
            raise ValueError(f'label {labels.max()} is beyond the model\'s '
                             f'{len(classes)} class names; export it again')
        names = np.asarray(classes)[labels] if len(classes) else \
            labels.astype(str)
        return cls(boxes, scores, labels, names)

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index: Union[int, slice, np.ndarray]
                    ) -> 'Detections':
        """The detections at ``index`` (a slice, mask or index array)."""
        if isinstance(index, (int, np.integer)):
            index = slice(index, index + 1 if index != -1 else None)
        return Detections(self.boxes[index], self.scores[index],
                          self.labels[index], self.class_names[index])

    def above(self, score_thr: float) -> 'Detections':
        """Those scoring at least ``score_thr``."""
        return self[self.scores >= score_thr]
