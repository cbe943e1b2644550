"""Batches prepared on a background thread while the model computes on the previous one.

Gathering a shuffled batch, augmenting it and scaling its pixels are NumPy copies that release
the GIL, so a second thread does them at the same time as the model's forward and backward
(which spend their time in BLAS, also without the GIL). The order and the random draws are
those of running the producer on the main thread: one producer, one thread, in order.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` in order, computing up to ``depth`` of them ahead on a worker thread.

    An exception raised by ``items`` is raised here, at the item where it happened. When the
    consumer stops early (an error, ``break``, garbage collection), the worker stops after at
    most the item it is computing.

    Example:
        >>> list(prefetch(iter(range(5))))
        [0, 1, 2, 3, 4]
    """
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            put((None, error))
            return
        put(_DONE)

    worker = threading.Thread(target=work, name="glassnet-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            entry = ready.get()
            if entry is _DONE:
                return
            item, error = entry  # type: ignore[misc]
            if error is not None:
                raise error
            yield item
    finally:
        stop.set()
        worker.join()
