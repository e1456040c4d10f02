"""One `vidclass label` session per labels CSV: an exclusive lock on `<name>.lock` beside it.

Two sessions on one CSV would each rewrite the whole file from what they loaded, and the
last writer would erase the other's labels, so a second session is refused with a message
naming the holder (pid, host, start time: what the lock file holds). The lock is an advisory
`flock` held for the session's life: the kernel releases it when the process ends, however it
ends, so the file a killed session leaves is a stale lock, taken over with a note. Where
there is no `flock` (Windows) the file itself is the lock (created exclusively), and a stale
one has to be deleted by hand; the refusal says so.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

from vidclass.errors import UserError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("vidclass.label")


def lock_path(csv_path: str | os.PathLike) -> Path:
    """Where the lock of a labels CSV lives: `labels.csv` → `labels.csv.lock`."""
    p = Path(csv_path)
    return p.with_name(f"{p.name}.lock")


def _holder_text() -> str:
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started_utc": started})


def _describe(text: str) -> str:
    """'pid 123 on host, since 2025-01-01T10:00:00Z' from a lock file's text."""
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on {info['host']}, since {info['started_utc']}"
    except (ValueError, KeyError, TypeError):
        return "a process that has not said who it is yet"


def _read_fd(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 4096).decode("utf-8", "replace").strip()


class CsvLock:
    """`acquire()` or a UserError naming the session that holds `csv_path`; `release()`
    (idempotent) removes the lock file."""

    def __init__(self, csv_path: str | os.PathLike) -> None:
        self.csv_path = Path(csv_path)
        self.path = lock_path(csv_path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _refuse(self, holder: str, fix: str) -> UserError:
        return UserError(
            f"{self.csv_path}: another `vidclass label` session is writing it ({holder}; "
            f"lock {self.path}); {fix}, or label into another file with --out other.csv"
        )

    def acquire(self) -> None:
        if self._fd is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if fcntl is None:
                self._acquire_exclusive()
            else:
                self._acquire_flock()
        except OSError as exc:
            raise UserError(
                f"{self.path}: cannot create the labels CSV's lock file ({exc.strerror}); "
                "give --out a CSV in a folder you can write"
            ) from None

    def _acquire_flock(self) -> None:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if self._flock(fd):
                    left = _read_fd(fd)
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, _holder_text().encode(), 0)
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        self._fd = fd
        if left:
            log.warning(
                "note: took over the stale lock %s of a session that is no longer running (%s)",
                self.path,
                _describe(left),
            )

    def _flock(self, fd: int) -> bool:
        """Lock the open lock file `fd`: False if it is no longer the file at `self.path`."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read_fd(fd))
            raise self._refuse(holder, "stop that session first (Ctrl-C where it runs)") from None
        # A releasing holder unlinks the file before closing it: had we opened that one, our
        # lock would be on a file nobody else can see; the caller opens the new one instead.
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            return False

    def _acquire_exclusive(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _describe(self.path.read_text(encoding="utf-8", errors="replace"))
            raise self._refuse(
                holder, f"stop that session first (if none is running, delete {self.path})"
            ) from None
        os.write(fd, _holder_text().encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if fcntl is None:
            os.close(fd)
            self.path.unlink(missing_ok=True)
            return
        try:
            self.path.unlink(missing_ok=True)  # while still held: see acquire
        finally:
            os.close(fd)

    def __enter__(self) -> CsvLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
