"""The labels CSV of `vidclass label`: exactly what `vidclass prepare labels.csv` reads (one
parser and writer for both: `data.labels_csv`).

Columns `path,label,split,group`, and any others the CSV already has (kept, in their place,
on every rewrite). Paths are written relative to the CSV's folder when the clip lies under it
(prepare resolves relative paths against the CSV's folder), absolute otherwise, also for the
rows a review copies from another CSV. Every change rewrites the whole file atomically and
fsyncs it (`atomic.write_text` with `durable`), so a killed server, or a power cut, loses no
label and never leaves half a file; opening the store again reads the CSV back and resumes.
The store holds the CSV's lock (`label_lock`) from opening to `close()`, so a second session
cannot rewrite the file from an older copy.

No web code here: the page's routes (`label_app`) call this.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from vidclass.atomic import sync_folder, write_text
from vidclass.data.labels_csv import (
    LABEL_COLUMNS,
    LabelRow,
    clip_key,
    format_labels_csv,
    read_labels_csv,
)
from vidclass.data.splits import group_of
from vidclass.serve.label_lock import CsvLock

COLUMNS = LABEL_COLUMNS
CHANGE_COLUMNS = (
    "time_utc", "path", "action", "old_label", "new_label", "model_label", "model_score",
)  # fmt: skip


Row = LabelRow  # the store's rows are the CSV's rows, with their other columns in `extra`


class LabelStore:
    """The labels of a set of clips, kept in `csv_path` after every change.

    Rows already in the CSV are read back (those of clips outside the labelled folder are
    kept as they are, and so are its other columns). `group_regex` fills `group` from the
    file name (its first capture group), as `prepare --group-regex` would. `undo` reverts
    this session's changes, newest first. Opening takes the CSV's lock (a UserError naming
    the session holding it); `close()` releases it.
    """

    def __init__(self, csv_path: str | os.PathLike, group_regex: str | None = None) -> None:
        self.csv_path = Path(csv_path)
        self.group_regex = group_regex
        self.rows: dict[str, Row] = {}
        self.columns: tuple[str, ...] = COLUMNS
        self._undo: list[tuple[str, Row | None]] = []
        self.lock = CsvLock(self.csv_path)
        self.lock.acquire()  # before reading: what is loaded is what no one else rewrites
        try:
            if self.csv_path.exists():
                table = read_labels_csv(self.csv_path)
                self.columns = table.columns
                self.rows = {r.key: r for r in table.rows}
        except BaseException:
            self.lock.release()
            raise

    def close(self) -> None:
        """Release the CSV's lock (the store writes no more)."""
        self.lock.release()

    @contextmanager
    def closed_on_error(self) -> Iterator[LabelStore]:
        """`with store.closed_on_error(): build on it`: the lock is released if that fails."""
        try:
            yield self
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, clip: str | os.PathLike) -> Row | None:
        return self.rows.get(clip_key(clip))

    def label_of(self, clip: str | os.PathLike) -> str | None:
        row = self.get(clip)
        return row.label if row else None

    def csv_path_of(self, clip: str | os.PathLike) -> str:
        """How the CSV names `clip`: relative to the CSV's folder when under it."""
        path, base = Path(clip_key(clip)), self.csv_path.parent.resolve()
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            return str(path)

    def set(
        self,
        clip: str | os.PathLike,
        label: str,
        split: str | None = None,
        group: str | None = None,
    ) -> Row | None:
        """Label `clip` (a new row goes last; a relabelled one keeps its place) and write the
        CSV; the previous row, if any. `split`/`group` None keep the row's own (a new row:
        empty split, the regex's group)."""
        key = clip_key(clip)
        old = self.rows.get(key)
        if old is not None:
            row = replace(
                old,
                label=label,
                split=old.split if split is None else split,
                group=old.group if group is None else group,
            )
        else:
            found = group_of(key, self.group_regex) if self.group_regex else None
            path, group = self.csv_path_of(key), group or found or ""
            row = Row(path=path, file=Path(key), label=label, split=split or "", group=group)
        self.rows[key] = row
        self._write()
        self._undo.append((key, old))
        return old

    def seed(self, rows: list[Row]) -> None:
        """Rows of an already-labelled set that the CSV does not hold yet (review mode), in
        their order, with their other columns; written at once. Their paths are named as this
        CSV names clips: a path relative to another CSV's folder means another file here."""
        new = {r.key: replace(r, path=self.csv_path_of(r.key), file=Path(r.key)) for r in rows}
        new = {k: r for k, r in new.items() if k not in self.rows}
        if new:
            extra = [c for r in new.values() for c in r.extra if c not in self.columns]
            self.columns += tuple(dict.fromkeys(extra))
            self.rows.update(new)
            self._write()

    def undo(self) -> tuple[str, Row | None] | None:
        """Revert the newest change of this session: (clip key, the row restored, or None
        when the clip is unlabelled again); None when there is nothing to undo."""
        if not self._undo:
            return None
        key, old = self._undo.pop()
        if old is None:
            self.rows.pop(key, None)
        else:
            self.rows[key] = old
        self._write()
        return key, old

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    def _write(self) -> None:
        if not self.lock.held:
            raise RuntimeError(f"{self.csv_path}: the store is closed; open it again to write")
        text = format_labels_csv(
            self.columns,
            ({**r.extra, "path": r.path, "label": r.label, "split": r.split, "group": r.group}
             for r in self.rows.values()),
        )  # fmt: skip
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.csv_path, text, durable=True)


def read_rows(csv_path: str | os.PathLike) -> list[Row]:
    """The rows of a labels CSV `path,label[,split][,group]` (header optional, as prepare
    reads it: the same parser), relative paths resolved against the CSV's folder."""
    return read_labels_csv(csv_path).rows


class ChangeLog:
    """What review mode changed, one appended and fsynced CSV row per decision
    (`labels.changes.csv` beside the labels CSV): `confirm`, `correct`, or `undo` of the
    clip's previous decision. The clips reviewed (last action not an undo) are read back."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.reviewed: set[str] = set()
        if self.path.exists():
            with self.path.open(newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    if row.get("path"):
                        self._note(clip_key(self._full(row["path"])), row.get("action", ""))

    def _note(self, key: str, action: str) -> None:
        if action == "undo":
            self.reviewed.discard(key)
        else:
            self.reviewed.add(key)

    def _full(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.path.parent / p

    def append(
        self,
        path: str,
        action: str,
        old_label: str,
        new_label: str,
        model_label: str = "",
        model_score: float | None = None,
    ) -> None:
        """Log one decision (`path` as the labels CSV names it) and make it durable."""
        new_file = not self.path.exists()
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if new_file:
            writer.writerow(CHANGE_COLUMNS)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        score = "" if model_score is None else f"{model_score:.4f}"
        writer.writerow([stamp, path, action, old_label, new_label, model_label, score])
        with self.path.open("a", encoding="utf-8", newline="") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        if new_file:
            sync_folder(self.path.parent)
        self._note(clip_key(self._full(path)), action)


def changes_path(csv_path: str | os.PathLike) -> Path:
    """Where review mode logs its changes: `<name>.changes.csv` beside the labels CSV."""
    p = Path(csv_path)
    return p.with_name(f"{p.stem}.changes.csv")
