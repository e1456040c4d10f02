"""Worker processes that are safe to start from any process.

A plain fork copies the parent's thread pools (torch, OpenCV, FFmpeg) in whatever state their
locks are in, and the child can hang forever on one of them; this happens as soon as a model
has run in the parent (tests, notebooks, `vidclass demo`). Workers are therefore forked from a
fresh server process that has only imported the modules named here.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

PRELOAD = ["vidclass.data.prepare", "vidclass.synth.clips"]


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A ProcessPoolExecutor whose workers are forked from a clean forkserver."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
