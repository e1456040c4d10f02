"""Atomic file writes, shared by every stage: a reader (or a resumed run) sees a whole file or
none, never half of one, because everything is written under a temporary name beside the
target and renamed over it only when complete. A killed process leaves at most a
`.<name>.<pid>.tmp` file, which never counts as output (`prepare` sweeps them up).

`durable=True` also survives a power cut, not only a killed process: the data is fsynced
before the rename and the folder after it (the labelling page writes every label so).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np


def temporary_path(path: str | os.PathLike) -> Path:
    """Where `path` is written before it is renamed into place."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """`with replacing(out) as tmp: write tmp`: renamed to `out` if the block succeeds, removed
    if it fails."""
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Call `write(fh)` on the temporary file, then rename it to `path`."""
    with replacing(path) as tmp, open(tmp, "wb") as fh:
        write(fh)


def write_text(path: str | os.PathLike, text: str, durable: bool = False) -> None:
    """`text` as UTF-8, atomically; `durable`: on disk (fsynced) when this returns."""
    if not durable:
        with replacing(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        return
    with replacing(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    sync_folder(Path(path).parent)


def sync_folder(folder: str | os.PathLike) -> None:
    """fsync a folder, so a rename or a new file in it is on disk (a no-op where folders
    cannot be opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_array(path: str | os.PathLike, array: np.ndarray) -> None:
    """`np.save`, atomically."""
    write_bytes(path, lambda fh: np.save(fh, array))
