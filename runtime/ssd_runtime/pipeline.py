"""Reading and writing frames in threads beside the detector.

``ssd-detect`` decodes the next frames and draws and encodes the last ones
while the backend runs the current one: OpenCV's decoding and encoding and
the backends' inference release the GIL, so on a CPU with cores to spare the
video runs at nearly the detector's own speed. Bounded queues keep the
frames in memory few; an error in a thread is raised in the caller's.
"""
import queue
import threading
import time
from typing import Callable, Iterable, Iterator, Optional

_END = object()


class _Worker:
    """A daemon thread running :meth:`work`, and the first error it met."""

    def __init__(self) -> None:
        self.error: Optional[BaseException] = None
        self.seconds = 0.  # busy time of the thread
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.work()
        except BaseException as error:  # re-raised in the caller's thread
            self.error = error
        finally:
            self.done()

    def work(self) -> None:
        raise NotImplementedError

    def done(self) -> None:
        """Called in the thread when :meth:`work` ends."""

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error


def _put(box: 'queue.Queue', item: object, alive: Callable[[], bool]) -> bool:
    """Put ``item`` into ``box`` while ``alive()``; whether it went in."""
    while alive():
        try:
            box.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class ReadAhead(_Worker):
    """Iterate ``items`` in a thread, up to ``depth`` ahead of the consumer.

    Attributes:
        seconds (float): Time the thread spent getting items.
    """

    def __init__(self, items: Iterable, depth: int = 4) -> None:
        super().__init__()
        self.items = items
        self.queue: 'queue.Queue' = queue.Queue(maxsize=depth)
        self.thread.start()

    def work(self) -> None:
        iterator = iter(self.items)
        while not self.stop.is_set():
            start = time.perf_counter()
            item = next(iterator, _END)
            self.seconds += time.perf_counter() - start
            if item is _END or not _put(self.queue, item,
                                        lambda: not self.stop.is_set()):
                return

    def done(self) -> None:
        _put(self.queue, _END, lambda: not self.stop.is_set())

    def __iter__(self) -> Iterator:
        while True:
            item = self.queue.get()
            if item is _END:
                self.thread.join()
                self.raise_error()
                return
            yield item

    def close(self) -> None:
        """Stop reading (the consumer may have left early); wait for the
        thread."""
        self.stop.set()
        self.thread.join()


class WriteBehind(_Worker):
    """Run ``handle(item)`` in a thread on each item :meth:`put`, in order,
    up to ``depth`` behind the producer.

    Attributes:
        seconds (float): Time the thread spent in ``handle``.
    """

    def __init__(self, handle: Callable[[object], None],
                 depth: int = 4) -> None:
        super().__init__()
        self.handle = handle
        self.inbox: 'queue.Queue' = queue.Queue(maxsize=depth)
        self.thread.start()

    def work(self) -> None:
        while True:
            item = self.inbox.get()
            if item is _END:
                return
            start = time.perf_counter()
            self.handle(item)
            self.seconds += time.perf_counter() - start

    def put(self, item: object) -> None:
        """Queue ``item``; raise the thread's error if it failed."""
        if not _put(self.inbox, item, self.thread.is_alive):
            self.raise_error()

    def close(self) -> None:
        """Handle what is queued, stop; raise the thread's error if any."""
        _put(self.inbox, _END, self.thread.is_alive)
        self.thread.join()
        self.raise_error()
