"""``ssd-detect``: a deployed SSD on images, folders, videos and cameras.

Usage::

    ssd-detect MODEL.onnx INPUT [--out OUT] [--json OUT.json]
        [--score-thr 0.3] [--backend {onnxruntime,openvino}]
        [--precision {f32,bf16}] [--threads N] [--streams N]
        [--max-frames N] [--no-progress]

``INPUT`` is an image, a folder or glob of images, a video file, or a camera
index (``0``). ``--out``: the drawn images into a folder, or the drawn video
(``.mp4``/``.avi``; a folder gets ``{input}.mp4``). ``--json``: every image
or frame and its detections, COCO's results format
(:mod:`ssd_runtime.outputs`). A progress bar goes to stderr when the length
is known; at the end, the frames per second and where the time went (read/
decode, resize, inference, post-processing, drawing/encoding), and every
frame that could not be read. Also ``python -m ssd_runtime.detect``.

``--streams``: frames detected side by side, the threads shared among them
(:class:`~ssd_runtime.detector.Detector`); the default, 2 where there are at
least 2 threads, gives the most frames per second on a video (1.3x one
2-thread stream on 2 cores, docs/runtime.md); ``--streams 1`` puts every
thread on one frame, the lowest latency per frame.

The command is ``ssd-detect``, not ``detect``: a bare ``detect`` on PATH is
too generic a name for one package to claim.
"""
import argparse
import os.path as osp
import sys
import time
from collections import deque
from typing import Dict, Iterator, List, Optional

import cv2

from ssd_runtime.backends import add_backend_args, total_threads
from ssd_runtime.detector import Detector
from ssd_runtime.outputs import CocoJson, ImageWriter, VideoWriter, draw
from ssd_runtime.pipeline import ReadAhead, WriteBehind
from ssd_runtime.sources import Source, open_source

STAGES = ('read/decode', 'resize', 'inference', 'postprocess',
          'draw/encode')  # Detector.timings' names in the middle


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='ssd-detect', description=__doc__.splitlines()[0],
        epilog='Export the model with tools/deployment/export_onnx.py '
        '(--input uint8), see docs/runtime.md.')
    parser.add_argument('model', help='.onnx exported by ssd_plugin')
    parser.add_argument('input', help='image, folder, glob, video or camera '
                        'index')
    parser.add_argument('--out', help='folder for drawn images, or the '
                        'drawn video (.mp4, .avi)')
    parser.add_argument('--json', help='write detections as COCO JSON')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='keep detections scoring at least this '
                        '(default 0.3; 0: all the model gives)')
    add_backend_args(parser)
    parser.add_argument('--streams', type=int, default=None,
                        help='frames detected side by side, the threads '
                        'shared among them (default: 2 with 2 or more '
                        'threads; 1: the lowest latency per frame)')
    parser.add_argument('--max-frames', type=int, default=None,
                        help='stop after this many frames (cameras)')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bar on stderr')
    return parser.parse_args(argv)


class Progress:
    """A progress line on stderr, redrawn at most 5 times a second: a bar
    where ``total`` is known, else the count."""

    def __init__(self, total: Optional[int], enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self.start = self.last = time.perf_counter()

    def update(self, done: int, final: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.2 and not final):
            return
        self.last = now
        fps = done / max(now - self.start, 1e-9)
        if self.total:
            filled = min(30, 30 * done // self.total)
            line = (f'[{"#" * filled}{"." * (30 - filled)}] {done}/'
                    f'{self.total}')
        else:
            line = f'{done} frames'
        sys.stderr.write(f'\r{line}, {fps:.1f} FPS')
        if final:
            sys.stderr.write('\n')
        sys.stderr.flush()


def default_streams(threads: Optional[int]) -> int:
    """2 streams where there are 2 threads or more (``None``: the CPU
    count), else 1."""
    return 2 if total_threads(threads) >= 2 else 1


def _check(args: argparse.Namespace) -> None:
    for flag in ('threads', 'streams', 'max_frames'):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f'--{flag.replace("_", "-")}={value}: give at '
                             'least 1')
    if not 0 <= args.score_thr <= 1:
        raise ValueError(f'--score-thr={args.score_thr}: give a score in '
                         '[0, 1]')


def _writer(args: argparse.Namespace, source: Source):
    if not args.out:
        return None
    if source.kind == 'images':
        return ImageWriter(args.out)
    stem = source.name.replace(' ', '') if source.kind == 'camera' else \
        osp.splitext(osp.basename(source.name))[0]
    return VideoWriter(args.out, source.fps, stem)


def _output(item: tuple, writer, coco: Optional[CocoJson]) -> None:
    """Record a ``(frame, detections)`` pair in the JSON and draw and write
    it (the writing thread's work)."""
    frame, found = item
    if coco is not None:
        coco.add(frame.index, frame.name, frame.image.shape, found)
    if writer is not None:
        writer.write(draw(frame.image, found), frame.name, frame.index)


def run(args: argparse.Namespace) -> Dict[str, object]:
    """Detect on every frame of ``args.input``; write and report.

    Frames are read one thread ahead and drawn, encoded and recorded one
    thread behind the detector (:mod:`ssd_runtime.pipeline`), which runs
    ``--streams`` frames side by side (:meth:`Detector.imap`, order kept);
    OpenCV's thread pool is set to one thread (``cv2.setNumThreads(1)``).

    Returns:
        dict: ``frames`` (int), ``skipped`` (list of ``(index, reason)``),
        ``seconds`` (wall time), ``fps``, ``runtime_fps`` (resize,
        inference and post-processing alone, one stream's rate),
        ``streams``, ``times`` (seconds spent in
        each stage of :data:`STAGES`; the threads' stages overlap the
        detector's), ``outputs`` (list of str).

    Raises:
        FileNotFoundError, ValueError, ImportError: Bad input (each names
            the value and the fix).
    """
    _check(args)
    # OpenCV's own pool to one thread: a frame's resize is too small to
    # split, and the backend and the reading/writing threads have the cores
    # (measured 20% more FPS on 2 cores with OpenVINO INT8).
    cv2.setNumThreads(1)
    streams = args.streams or default_streams(args.threads)
    detector = Detector(args.model, args.backend, args.precision,
                        args.threads, streams)
    source = open_source(args.input)
    try:
        writer = _writer(args, source)
    except ValueError:
        source.close()
        raise
    coco = CocoJson(detector.classes) if args.json else None
    start = time.perf_counter()
    reader = ReadAhead(source)
    behind = WriteBehind(lambda item: _output(item, writer, coco))
    try:
        frames = _loop(detector, reader, behind, source, args)
    finally:
        reader.close()
        source.close()
        try:
            behind.close()  # the last frames drawn and encoded
        finally:  # the video finalised even when drawing failed
            written = writer.close() if writer else None
    outputs = [written] if writer else []
    seconds = time.perf_counter() - start
    if frames == 0:
        raise ValueError(f'no frame of {args.input!r} could be read '
                         f'({len(source.skipped)} failed); check the input')
    if coco is not None:
        outputs.append(coco.write(args.json, source.skipped))
    times = dict(detector.timings)
    times.update({'read/decode': reader.seconds,
                  'draw/encode': behind.seconds})
    runtime = sum(detector.timings.values())
    return dict(frames=frames, skipped=source.skipped, seconds=seconds,
                fps=frames / seconds, runtime_fps=frames / runtime,
                streams=streams, times=times, outputs=outputs)


def _loop(detector: Detector, reader: ReadAhead, behind: WriteBehind,
          source: Source, args: argparse.Namespace) -> int:
    """Detect on the frames ``reader`` gives, hand them to ``behind``;
    return how many."""
    progress = Progress(source.length, not args.no_progress)
    frames = 0
    taken: deque = deque()  # frames handed to the detector, in order

    def images() -> Iterator:
        for frame in reader:
            taken.append(frame)
            yield frame.image
            if args.max_frames and len(taken) + frames >= args.max_frames:
                return

    try:
        for found in detector.imap(images()):
            behind.put((taken.popleft(), found.above(args.score_thr)))
            frames += 1
            progress.update(frames + len(source.skipped))
    except KeyboardInterrupt:  # a camera is stopped with Ctrl-C
        sys.stderr.write('\ninterrupted: writing what was detected\n')
    progress.update(frames + len(source.skipped), final=True)
    return frames


def report(summary: Dict[str, object]) -> str:
    """The end-of-run text: FPS, time per stage, skipped frames, outputs."""
    frames, times = summary['frames'], summary['times']
    own = sum(times[s] for s in ('resize', 'inference', 'postprocess'))
    streams = summary['streams']
    side = f'; {streams} streams side by side' if streams > 1 else ''
    lines = [f'{frames} frames in {summary["seconds"]:.2f} s: '
             f'{summary["fps"]:.1f} FPS end to end; the detector\'s own '
             f'stages took {1e3 * own / frames:.2f} ms/frame '
             f'({summary["runtime_fps"]:.1f} FPS a stream{side}). ms/frame '
             'per stage (reading and drawing run in threads beside the '
             'detector):']
    lines += [f'  {stage:<12} {1e3 * times[stage] / frames:7.2f}'
              for stage in STAGES]
    skipped = summary['skipped']
    if skipped:
        shown = ', '.join(f'{i} ({r})' for i, r in skipped[:10])
        more = f' and {len(skipped) - 10} more' if len(skipped) > 10 else ''
        lines.append(f'skipped {len(skipped)} frames that could not be '
                     f'read: {shown}{more}')
    lines += [f'wrote {out}' for out in summary['outputs']]
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    """The console script: run, print the report; bad input (or an output
    that cannot be written) exits with 2 and its message, no traceback."""
    args = parse_args(argv)
    try:
        summary = run(args)
    except (OSError, ValueError, ImportError) as error:
        sys.stderr.write(f'ssd-detect: error: {error}\n')
        return 2
    print(report(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
