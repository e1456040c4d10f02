"""Run an iterator on a thread of its own, a few items ahead of the one that consumes it.

`predict` spends its time in two halves of similar size: making each sampled frame ready
(converting it from the decoder's YUV, finding the person, cropping) and encoding it. The
encoder (onnxruntime, torch) and most of the preparation (PyAV's conversion, OpenCV, numpy)
release the GIL, so on two cores the next frames can be made ready while the encoder scores
these, the decoder thread sharing the second core (docs/benchmarks.md, "Predict speed").
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


class _Raised:
    """An exception of the producer, handed to the consumer to raise."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def run_ahead(items: Iterator[T], depth: int = 8, name: str = "vidclass-ahead") -> Iterator[T]:
    """The items of `items` in order, produced on a thread up to `depth` ahead; its errors
    are raised here. Closing this iterator (or its end) stops the thread, which closes
    `items` where it ran (so a decoder behind it stops too)."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, never lost
            put(_Raised(exc))
        finally:
            if isinstance(items, Generator):
                items.close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()
