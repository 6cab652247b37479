"""One background-thread prefetcher for every stage: the training loader and eval's batches of
rows and predictions read the next items (disk, decompression: the GIL is mostly released)
while the consumer works on the current one."""
from __future__ import annotations

import queue
import threading
from typing import Any, Iterable, Iterator, TypeVar

T = TypeVar("T")


class Prefetcher:
    """Runs an iterator in a background thread, `depth` items ahead; re-raises its errors in the
    consumer. `close()` stops the thread (it checks every 0.1 s while the queue is full)."""

    _DONE = object()

    def __init__(self, items: Iterable[Any], depth: int = 4):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iter(items),), daemon=True)
        self._thread.start()

    def _run(self, items: Iterator[Any]) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            self._put(_Failure(error))
            return
        self._put(self._DONE)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> "Prefetcher":
        return self

    def __next__(self) -> Any:
        item = self._queue.get()
        if item is self._DONE:
            self._queue.put(item)  # stay exhausted
            raise StopIteration
        if isinstance(item, _Failure):
            raise item.error
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _Failure:
    """An exception of the producer, wrapped so that an iterator may also yield exceptions."""

    def __init__(self, error: BaseException):
        self.error = error


def prefetched(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Iterate `items` through a background thread; the thread stops when the caller does."""
    prefetcher = Prefetcher(items, depth)
    try:
        yield from prefetcher
    finally:
        prefetcher.close()
