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
"""
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

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
        threads (int, optional): CPU threads of the backend; None: its
            default (all cores).

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
                 precision: str = 'f32', threads: Optional[int] = None
                 ) -> None:
        self.session = build_session(model_path, backend, precision, threads)
        self.info: ModelInfo = parse_metadata(self.session.props, model_path)
        if self.info.mode != 'end2end':
            raise ValueError(
                f'{model_path!r} is a {self.info.mode!r} export (network '
                'outputs without post-processing); the runtime runs end2end '
                'exports: export_onnx.py ... --mode end2end')
        check_normalisation(self.info)
        self.model_path, self.backend = model_path, backend
        self.precision, self.threads = precision, threads
        self.classes = list(self.info.classes)
        self._names = np.asarray(self.classes)
        self.timings: Dict[str, float] = dict(resize=0., inference=0.,
                                              postprocess=0.)

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
        dets, labels = self.session(inputs)[:2]
        return dets, labels

    def input_shape(self) -> Tuple[Tuple[int, int, int], np.dtype]:
        """The graph input's shape past the batch axis, and its dtype."""
        height, width = self.info.input_size
        if self.info.input_format == UINT8_BGR:
            return (height, width, 3), np.dtype(np.uint8)
        return (3, height, width), np.dtype(np.float32)

    def _add_times(self, *stamps: float) -> None:
        for name, begin, end in zip(self.timings, stamps, stamps[1:]):
            self.timings[name] += end - begin

    def __repr__(self) -> str:
        height, width = self.info.input_size
        return (f'Detector({self.model_path!r}, backend={self.backend!r}, '
                f'precision={self.precision!r}, threads={self.threads}; '
                f'input {height}x{width} {self.info.input_format}, '
                f'{self.info.num_classes} classes)')
