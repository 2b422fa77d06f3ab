"""A short video of the shapes set's objects moving: something to run a
detector on without a download (``ssd-detect model.onnx shapes.mp4``).

Each shape of :data:`~ssd_plugin.testing.shapes.SHAPE_CLASSES` drifts at a
constant velocity, bounces off the frame's edges and spins, over one
textured background; drawn with the image set's own helpers, so a model
trained on the set sees familiar objects.
"""
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np

from ssd_plugin.testing.shapes import (SHAPE_CLASSES, _shape_colour,
                                       mask_to_xywh, shape_mask,
                                       textured_background)
from ssd_runtime.outputs import FOURCC


def _moving_shapes(rng: np.random.Generator, num_objects: int,
                   frame_size: Tuple[int, int]) -> List[dict]:
    """Initial state of each shape: class, size, position, velocity, spin."""
    width, height = frame_size
    shapes = []
    for _ in range(num_objects):
        diameter = min(width, height) * rng.uniform(0.15, 0.4)
        speed, heading = rng.uniform(1.5, 5.0), rng.uniform(0, 2 * np.pi)
        shapes.append(dict(
            label=int(rng.integers(len(SHAPE_CLASSES))), diameter=diameter,
            center=rng.uniform(diameter / 2, [width - diameter / 2,
                                              height - diameter / 2]),
            velocity=speed * np.array([np.cos(heading), np.sin(heading)]),
            angle=rng.uniform(0, 2 * np.pi), spin=rng.uniform(-0.05, 0.05),
            colour=_shape_colour(rng)))
    return shapes


def _step(shape: dict, frame_size: Tuple[int, int]) -> None:
    """Move ``shape`` one frame on, bouncing off the edges."""
    radius = shape['diameter'] / 2
    shape['center'] = shape['center'] + shape['velocity']
    for axis, limit in enumerate(frame_size):
        if not radius <= shape['center'][axis] <= limit - radius:
            shape['velocity'][axis] *= -1
            shape['center'][axis] = np.clip(shape['center'][axis], radius,
                                            limit - radius)
    shape['angle'] += shape['spin']


def make_shapes_video(path: str, num_frames: int = 150,
                      frame_size: Tuple[int, int] = (640, 480),
                      fps: float = 30., num_objects: int = 4,
                      seed: int = 0) -> Dict[str, object]:
    """Write the video; return its ground truth.

    Args:
        path (str): ``.mp4`` (MPEG-4 part 2) or ``.avi`` (Motion JPEG) file;
            its folder is created.
        num_frames (int): Frames. Defaults to 150 (5 s at 30 FPS).
        frame_size (tuple[int, int]): ``(width, height)``, at least 32 each.
            Defaults to VGA, a webcam's 4:3 (SSD stretches frames to its
            square input: the wider 16:9 squashes shapes more).
        fps (float): Frame rate.
        num_objects (int): Shapes, at least 0.
        seed (int): The video depends only on the arguments.

    Returns:
        dict: ``path``, ``num_frames``, ``fps``, ``frame_size`` and
        ``boxes``: per frame a list of ``(label, [x, y, w, h])``.

    Raises:
        ValueError: On a bad argument, or a file OpenCV cannot write.
    """
    width, height = frame_size
    suffix = osp.splitext(path)[1].lower()
    if suffix not in FOURCC:
        raise ValueError(f'video {path!r}: give one of {sorted(FOURCC)}')
    if num_frames < 1 or min(frame_size) < 32 or num_objects < 0 or fps <= 0:
        raise ValueError(
            f'num_frames={num_frames}, frame_size={tuple(frame_size)}, '
            f'num_objects={num_objects}, fps={fps}: need at least 1 frame, '
            'sides of 32 px or more, 0 or more objects, fps > 0')
    rng = np.random.default_rng([seed, 2])
    side = max(width, height)
    background = textured_background(rng, side)[:height, :width]
    shapes = _moving_shapes(rng, num_objects, (width, height))
    if osp.dirname(path):
        os.makedirs(osp.dirname(path), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*FOURCC[suffix]),
                             fps, (width, height))
    if not writer.isOpened():
        raise ValueError(f'OpenCV cannot write {path!r}; try an .avi file')
    boxes = []
    for _ in range(num_frames):
        frame, objects = background.copy(), []
        for shape in shapes:
            mask = shape_mask(SHAPE_CLASSES[shape['label']], shape['center'],
                              shape['diameter'], shape['angle'],
                              side)[:height, :width]
            frame[mask] = shape['colour']
            objects.append((shape['label'], mask_to_xywh(mask)))
            _step(shape, (width, height))
        writer.write(frame)
        boxes.append(objects)
    writer.release()
    return dict(path=path, num_frames=num_frames, fps=fps,
                frame_size=(width, height), boxes=boxes)
