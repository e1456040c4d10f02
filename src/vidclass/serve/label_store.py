"""The labels CSV of `vidclass label`: exactly what `vidclass prepare labels.csv` reads.

Columns `path,label,split,group`. Paths are written relative to the CSV's folder when the
clip lies under it (prepare resolves relative paths against the CSV's folder), absolute
otherwise. Every change rewrites the whole file atomically and fsyncs it (`atomic.write_text`
with `durable`), so a killed server, or a power cut, loses no label and never leaves half a
file; opening the store again reads the CSV back and resumes.

No web code here: the page's routes (`label_app`) call this.
"""

from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from vidclass.atomic import sync_folder, write_text
from vidclass.data.splits import group_of
from vidclass.errors import UserError

COLUMNS = ("path", "label", "split", "group")
CHANGE_COLUMNS = (
    "time_utc", "path", "action", "old_label", "new_label", "model_label", "model_score",
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    """One labelled clip as the CSV holds it; `key` is its resolved absolute path."""

    key: str
    path: str
    label: str
    split: str = ""
    group: str = ""


def clip_key(path: str | os.PathLike) -> str:
    """The one name of a clip, however its path was spelled."""
    return str(Path(path).resolve())


class LabelStore:
    """The labels of a set of clips, kept in `csv_path` after every change.

    Rows already in the CSV are read back (those of clips outside the labelled folder are
    kept as they are). `group_regex` fills `group` from the file name (its first capture
    group), as `prepare --group-regex` would. `undo` reverts this session's changes, newest
    first.
    """

    def __init__(self, csv_path: str | os.PathLike, group_regex: str | None = None) -> None:
        self.csv_path = Path(csv_path)
        self.group_regex = group_regex
        self.rows: dict[str, Row] = {}
        self._undo: list[tuple[str, Row | None]] = []
        if self.csv_path.exists():
            self.rows = {r.key: r for r in read_rows(self.csv_path)}

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
            row = Row(key, self.csv_path_of(key), label, split or "", group or found or "")
        self.rows[key] = row
        self._write()
        self._undo.append((key, old))
        return old

    def seed(self, rows: list[Row]) -> None:
        """Rows of an already-labelled set that the CSV does not hold yet (review mode), in
        their order; written at once."""
        new = {r.key: r for r in rows if r.key not in self.rows}
        if new:
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
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in self.rows.values():
            writer.writerow([r.path, r.label, r.split, r.group])
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.csv_path, buf.getvalue(), durable=True)


def read_rows(csv_path: str | os.PathLike) -> list[Row]:
    """The rows of a labels CSV `path,label[,split][,group]` (header optional, as prepare
    reads it), relative paths resolved against the CSV's folder."""
    csv_path = Path(csv_path)
    with csv_path.open(newline="", encoding="utf-8") as fh:
        lines = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    if lines and lines[0][0].strip().lower() == "path":
        header = [c.strip().lower() for c in lines[0]]
        lines = lines[1:]
    else:
        header = list(COLUMNS[: max((len(r) for r in lines), default=2)])
    if "path" not in header or "label" not in header:
        raise UserError(f"{csv_path}: a labels CSV needs columns path,label[,split][,group]")
    col = {name: i for i, name in enumerate(header)}

    def cell(r: list[str], name: str) -> str:
        i = col.get(name)
        return r[i].strip() if i is not None and i < len(r) else ""

    rows = []
    for n, r in enumerate(lines, 2):
        if not cell(r, "path") or not cell(r, "label"):
            raise UserError(f"{csv_path}:{n}: expected path,label[,split][,group], got {r}")
        path = Path(cell(r, "path"))
        full = path if path.is_absolute() else csv_path.parent / path
        rows.append(
            Row(
                clip_key(full),
                cell(r, "path"),
                cell(r, "label"),
                cell(r, "split"),
                cell(r, "group"),
            )
        )
    return rows


def extra_columns(csv_path: str | os.PathLike) -> list[str]:
    """The columns of a labels CSV's header beyond path,label,split,group (which a rewrite
    of it would drop)."""
    with Path(csv_path).open(newline="", encoding="utf-8") as fh:
        first = next(csv.reader(fh), [])
    if not first or first[0].strip().lower() != "path":
        return []
    return [c for c in first if c.strip().lower() not in COLUMNS]


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
