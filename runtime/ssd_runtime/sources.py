"""Frames to detect on: images, a folder or glob of them, a video, a camera.

:func:`open_source` turns the ``INPUT`` of ``ssd-detect`` into a
:class:`Source`, an iterable of :class:`Frame` that knows its length where
it can (images, video files), its frame rate, and every frame it could not
read: an image OpenCV cannot decode in a folder, or a video frame that fails
to decode, is skipped and recorded in :attr:`Source.skipped`, never dropped
silently.
"""
import glob
import os
import os.path as osp
from typing import Iterator, List, NamedTuple, Optional, Tuple, Union

import cv2
import numpy as np

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg',
                  '.mpeg', '.wmv', '.flv')
# Reads in a row that fail before a video counts as ended.
MAX_FAILED_READS = 8
MISSING_AT_END = 'missing at the end (failed to decode, or the stream ended)'
DEFAULT_FPS = 30.


class Frame(NamedTuple):
    """One input frame.

    Attributes:
        index (int): Image number in the sorted list, or frame number of
            the video/camera (0-based; skipped frames keep their number).
        name (str): The image file, or ``'<source> frame <index>'``.
        image (np.ndarray): ``(h, w, 3)`` uint8 BGR.
    """
    index: int
    name: str
    image: np.ndarray


class Source:
    """Base of the frame sources (see the module docstring).

    Attributes:
        name (str): What was opened (a path, ``'camera 0'``).
        kind (str): ``'images'``, ``'video'`` or ``'camera'``.
        length (int | None): Frames announced, None where unknown.
        fps (float): Frame rate for a video written from it.
        skipped (list[tuple[int, str]]): ``(index, reason)`` of each frame
            that could not be read.
    """
    kind = 'images'

    def __init__(self, name: str, length: Optional[int],
                 fps: float = DEFAULT_FPS) -> None:
        self.name, self.length, self.fps = name, length, fps
        self.skipped: List[Tuple[int, str]] = []

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds (a capture device)."""


class ImageSource(Source):
    """Image files, read in the order given.

    Args:
        paths (list[str]): Image files.
        name (str): The input as given (folder, glob or file).
    """

    def __init__(self, paths: List[str], name: str) -> None:
        super().__init__(name, len(paths))
        self.paths = paths

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is None:
                self.skipped.append((index, f'{path}: OpenCV cannot decode '
                                            'it'))
                continue
            yield Frame(index, path, image)


class VideoSource(Source):
    """A video file or a camera, through ``cv2.VideoCapture``.

    A read that fails before the end is a frame that failed to decode: it
    is recorded and reading goes on; :data:`MAX_FAILED_READS` failures in a
    row end the stream, and the frames a file announced but did not give
    are recorded too. Frames the decoder itself drops (the capture's
    position jumps) are recorded as well.

    Args:
        capture (cv2.VideoCapture): Opened.
        name (str): The file, or ``'camera N'``.
        camera (bool): A live camera (no length, no position checks).
    """

    def __init__(self, capture: 'cv2.VideoCapture', name: str,
                 camera: bool = False) -> None:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = capture.get(cv2.CAP_PROP_FPS)
        super().__init__(name, None if camera or count <= 0 else count,
                         fps if 0 < fps < 1000 else DEFAULT_FPS)
        self.capture, self.camera = capture, camera
        self.kind = 'camera' if camera else 'video'

    def __iter__(self) -> Iterator[Frame]:
        index = failed = 0
        while failed < MAX_FAILED_READS:
            ok, image = self.capture.read()
            if not ok or image is None:
                if self.length is not None and index >= self.length:
                    break  # the end the file announced
                self.skipped.append((index, 'failed to decode'))
                index, failed = index + 1, failed + 1
                continue
            failed = 0
            if not self.camera:
                index = self._record_drops(index)
            yield Frame(index, f'{self.name} frame {index}', image)
            index += 1
        # The last failures were the end of the stream: frames past it
        # that the file announced are missing; the rest were not frames.
        del self.skipped[len(self.skipped) - failed:]
        last = index - failed
        if self.length is not None and last < self.length:
            self.skipped += [(i, MISSING_AT_END)
                             for i in range(last, self.length)]

    def _record_drops(self, index: int) -> int:
        """The index of the frame just read: after frames the decoder
        skipped (position past ``index + 1``), each recorded."""
        position = int(self.capture.get(cv2.CAP_PROP_POS_FRAMES))
        for dropped in range(index, position - 1):
            self.skipped.append((dropped, 'dropped by the decoder'))
        return max(index, position - 1)

    def close(self) -> None:
        self.capture.release()


def _images(paths: List[str], spec: str, where: str) -> ImageSource:
    images = sorted(p for p in paths if osp.isfile(p) and
                    p.lower().endswith(IMAGE_SUFFIXES))
    if not images:
        raise ValueError(f'no images ({", ".join(IMAGE_SUFFIXES)}) {where} '
                         f'{spec!r}; give an image, a folder or glob of '
                         'images, a video file or a camera index')
    return ImageSource(images, spec)


def _opened(source: Union[str, int], error: str) -> 'cv2.VideoCapture':
    """``cv2.VideoCapture(source)``; ValueError ``error`` if it is closed."""
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise ValueError(error)
    return capture


def _video(path: str) -> VideoSource:
    return VideoSource(_opened(path, (
        f'OpenCV cannot open the video {path!r} (not a video, or a codec '
        "its FFmpeg lacks); convert it, e.g. ffmpeg -i IN -c:v libx264 "
        'OUT.mp4, or extract its frames into a folder')), path)


def open_camera(index: int) -> VideoSource:
    """Camera ``index`` (OpenCV's numbering).

    Raises:
        ValueError: If it does not open.
    """
    return VideoSource(_opened(index, (
        f'camera {index} does not open (no such device, no permission, '
        'or another program holds it); check ls /dev/video*, or give '
        'a video file or images')), f'camera {index}', camera=True)


def open_source(spec: str) -> Source:
    """The frames of ``ssd-detect``'s ``INPUT``.

    Args:
        spec (str): A camera index (digits), an existing folder (its images,
            sorted), a file (an image by its suffix, else a video), or a glob
            of images (``'data/*.jpg'``).

    Returns:
        Source: Iterate it for :class:`Frame` s; ``close()`` it after.

    Raises:
        FileNotFoundError: If ``spec`` is no file, folder, glob match or
            camera index.
        ValueError: For a folder or glob without images, or a video or
            camera that does not open.
    """
    if spec.isdigit():
        return open_camera(int(spec))
    if osp.isdir(spec):
        return _images([osp.join(spec, n) for n in os.listdir(spec)], spec,
                       'in the folder')
    if osp.isfile(spec):
        if spec.lower().endswith(IMAGE_SUFFIXES):
            return ImageSource([spec], spec)
        return _video(spec)
    if glob.has_magic(spec):
        matches = glob.glob(spec)
        if matches:
            return _images(matches, spec, 'match')
    raise FileNotFoundError(
        f'{spec!r} is no file, folder, glob match or camera index; give an '
        'image, a folder or glob of images, a video file or a camera '
        'number (0 for the first)')
