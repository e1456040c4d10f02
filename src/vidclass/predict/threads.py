"""One core for the decoder thread while a model runs, shared safely by concurrent jobs.

Decoding runs on its own thread; giving torch one core fewer lets decoding and the model
overlap instead of fighting over the same cores (measured on 2 cores: predict/decode
1.8 → 1.3). torch's thread count is process-wide, so with several jobs at once (the HTTP
service's worker pool) the first job in lowers it and the last one out restores it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_lock = threading.Lock()
_active = 0
_saved = 0


@contextmanager
def decoder_core() -> Iterator[None]:
    global _active, _saved
    with _lock:
        if _active == 0:
            _saved = torch.get_num_threads()
            torch.set_num_threads(max(1, _saved - 1))
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                torch.set_num_threads(_saved)
