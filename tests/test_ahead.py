"""`run_ahead`: predict prepares the next frames on a thread while the encoder scores these;
the consumer must see the same items in the same order, the producer's errors, and a stop
that closes the source (so its decoder thread stops)."""

from __future__ import annotations

import threading

import pytest

from vidclass.predict.ahead import run_ahead


def test_items_arrive_in_order_from_another_thread():
    threads: set[str] = set()

    def source():
        for i in range(100):
            threads.add(threading.current_thread().name)
            yield i

    assert list(run_ahead(source(), depth=3)) == list(range(100))
    assert threading.current_thread().name not in threads


def test_an_error_of_the_producer_is_raised_to_the_consumer_after_the_items_before_it():
    def source():
        yield 1
        yield 2
        raise ValueError("bad frame")

    got = []
    with pytest.raises(ValueError, match="bad frame"):
        for item in run_ahead(source()):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_closes_the_source_and_the_thread():
    closed = threading.Event()

    def source():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    before = threading.active_count()
    items = run_ahead(source(), depth=2)
    assert [next(items) for _ in range(5)] == [0, 1, 2, 3, 4]
    items.close()
    assert closed.is_set(), "the endless source was closed"
    assert threading.active_count() == before
