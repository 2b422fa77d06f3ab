"""A deployed SSD: BGR images in, numpy detections out.

Built once from the ``.onnx`` file, whose ``metadata_props`` say everything
it needs (:mod:`ssd_runtime.metadata`), then called on frames, as OpenCV's
``cv2.dnn.DetectionModel``::

    from ssd_runtime import Detector
    detector = Detector('ssd.onnx', backend='openvino', threads=2)
    found = detector(cv2.imread('photo.jpg'))   # Detections
    found.boxes, found.scores, found.labels, found.class_names

The steps are SSD's test pipeline (:mod:`ssd_runtime.preprocess`), the
session (:mod:`ssd_runtime.backends`) and the boxes mapped back
(:mod:`ssd_runtime.detections`): the same code ``ssd_plugin``'s
``DeployedDetector`` runs, so both give the same detections.

With ``streams=k`` the detector holds ``k`` inference streams that run side
by side, one image each, the threads shared among them (throughput rather
than latency: on 2 cores two 1-thread streams did 1.3x the images per
second of one 2-thread stream, docs/runtime.md); the detector is then safe
to call from ``k`` threads at once, and :meth:`Detector.imap` does that for
a sequence of frames, in order.
"""
import queue
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import (Dict, Iterable, Iterator, List, Optional, Sequence,
                    Tuple, Union)

import numpy as np

from ssd_runtime.backends import build_session
from ssd_runtime.detections import Detections
from ssd_runtime.metadata import UINT8_BGR, ModelInfo, parse_metadata
from ssd_runtime.preprocess import check_normalisation, preprocess

Images = Union[np.ndarray, Sequence[np.ndarray]]


class Detector:
    """An ``end2end`` export run by ONNX Runtime or OpenVINO.

    Args:
        model_path (str): The ``.onnx`` file (FP32 or INT8, uint8 or float
            input).
        backend (str): ``'onnxruntime'`` (default) or ``'openvino'``.
        precision (str): ``'f32'`` (default) or, on OpenVINO, ``'bf16'``.
            INT8 is a property of the file (``quantize.py``).
        threads (int, optional): CPU threads of the backend, all streams
            together; None: its default (all cores).
        streams (int): Images that may run at once (1: every thread on
            one image, the lowest latency; more: one image per stream, the
            most images per second, through :meth:`imap` or calls from
            several threads).

    Attributes:
        info (ModelInfo): What the file records.
        classes (list[str]): Class names by label.
        timings (dict[str, float]): Seconds spent in ``'resize'`` (the
            whole preprocessing), ``'inference'`` and ``'postprocess'``
            since construction, summed over calls.

    Raises:
        FileNotFoundError: If ``model_path`` does not exist.
        ValueError: If it is not an ONNX model, was not exported by
            ``ssd_plugin``, is a ``raw`` export, or is a float graph that
            does not record its normalisation.
        ImportError: If the backend is not installed (names what to
            install).
    """

    def __init__(self, model_path: str, backend: str = 'onnxruntime',
                 precision: str = 'f32', threads: Optional[int] = None,
                 streams: int = 1) -> None:
        self.session = build_session(model_path, backend, precision, threads,
                                     streams)
        self.info: ModelInfo = parse_metadata(self.session.props, model_path)
        if self.info.mode != 'end2end':
            raise ValueError(
                f'{model_path!r} is a {self.info.mode!r} export (network '
                'outputs without post-processing); the runtime runs end2end '
                'exports: export_onnx.py ... --mode end2end')
        check_normalisation(self.info)
        self.model_path, self.backend = model_path, backend
        self.precision, self.threads = precision, threads
        self.streams = streams
        self.classes = list(self.info.classes)
        self._names = np.asarray(self.classes)
        self.timings: Dict[str, float] = dict(resize=0., inference=0.,
                                              postprocess=0.)
        # The free streams: a call takes one for its inference, so calls
        # from several threads never share a session or request.
        self._free: 'queue.Queue[int]' = queue.Queue()
        for stream in range(streams):
            self._free.put(stream)
        self._lock = threading.Lock()

    def __call__(self, images: Images
                 ) -> Union[Detections, List[Detections]]:
        """Detections of one image or of each of a list.

        Args:
            images (np.ndarray | Sequence[np.ndarray]): ``(h, w, 3)`` BGR
                uint8 as OpenCV reads it (gray, BGRA, uint16 and float
                arrays are converted as the config's ``ToBGRImage``), or a
                list of them, any sizes; a list runs as one batch.

        Returns:
            Detections | list[Detections]: Boxes in each image's pixels.
        """
        single = isinstance(images, np.ndarray)
        batch = [images] if single else list(images)
        if not batch:
            return []
        start = time.perf_counter()
        inputs, metas = preprocess(batch, self.info)
        resized = time.perf_counter()
        dets, labels = self.infer(inputs)
        inferred = time.perf_counter()
        results = [Detections.from_graph(d, lab, meta, self._names)
                   for d, lab, meta in zip(dets, labels, metas)]
        self._add_times(start, resized, inferred, time.perf_counter())
        return results[0] if single else results

    def infer(self, inputs: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The graph's ``dets`` ``(N, K, 5)`` and ``labels`` ``(N, K)`` for
        its input array (:func:`ssd_runtime.preprocess.graph_input`).

        Raises:
            ValueError: If ``inputs`` has another shape or dtype than the
                graph's input.
        """
        expected = self.input_shape()
        if inputs.dtype != expected[1] or inputs.ndim != 4 or \
                inputs.shape[1:] != expected[0]:
            raise ValueError(
                f'input of shape {inputs.shape} and dtype {inputs.dtype}; '
                f'the model takes (N, {", ".join(map(str, expected[0]))}) '
                f'{expected[1]} (images resized to {self.info.input_size[0]}'
                f'x{self.info.input_size[1]}): call the detector on the '
                'images, or preprocess them with ssd_runtime.preprocess')
        stream = self._free.get()
        try:
            dets, labels = self.session(inputs, stream)[:2]
        finally:
            self._free.put(stream)
        return dets, labels

    def imap(self, images: Iterable[np.ndarray]) -> Iterator[Detections]:
        """Detections of each image of ``images``, in order, up to
        ``streams`` images running at once (one thread each).

        Reads ahead of what it yields by at most ``2 * streams`` images; a
        generator of frames is consumed as the detections are taken.
        """
        with ThreadPoolExecutor(self.streams) as pool:
            pending: deque = deque()
            for image in images:
                pending.append(pool.submit(self, image))
                if len(pending) >= 2 * self.streams:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def input_shape(self) -> Tuple[Tuple[int, int, int], np.dtype]:
        """The graph input's shape past the batch axis, and its dtype."""
        height, width = self.info.input_size
        if self.info.input_format == UINT8_BGR:
            return (height, width, 3), np.dtype(np.uint8)
        return (3, height, width), np.dtype(np.float32)

    def _add_times(self, *stamps: float) -> None:
        with self._lock:
            for name, begin, end in zip(self.timings, stamps, stamps[1:]):
                self.timings[name] += end - begin

    def __repr__(self) -> str:
        height, width = self.info.input_size
        return (f'Detector({self.model_path!r}, backend={self.backend!r}, '
                f'precision={self.precision!r}, threads={self.threads}, '
                f'streams={self.streams}; '
                f'input {height}x{width} {self.info.input_format}, '
                f'{self.info.num_classes} classes)')
