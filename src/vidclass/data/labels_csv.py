"""The labels CSV, read and written in one place: `path,label[,split][,group]` plus whatever
other columns the user keeps in it (notes, a reviewer, a source URL...).

`vidclass prepare labels.csv` reads it (`sources`), `vidclass label` reads and rewrites it
(`serve.label_store`); both go through `read_labels_csv`, so both accept the same files and
refuse the same mistakes (an unknown split value, a row without a path or label) with the
same message. The header is optional (a header-less file is path,label,split,group in that
order); relative paths are relative to the CSV's folder. Columns beyond the four are kept
(`LabelRow.extra`) so that rewriting the file (`format_labels_csv`) never drops what the
user wrote: cells without a header get the name `column<N>` (N counted from 1).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from vidclass.errors import UserError

LABEL_COLUMNS = ("path", "label", "split", "group")
SPLITS = ("train", "val", "test")
EXPECTED = "path,label[,split][,group]"


def clip_key(path: str | os.PathLike) -> str:
    """The one name of a clip, however its path was spelled: the resolved absolute path."""
    return str(Path(path).resolve())


@dataclass(frozen=True)
class LabelRow:
    """One labelled clip: `path` as the CSV spells it, `file` where it points (an absolute
    path, or the CSV's folder joined with it), `split` lower-cased and either empty or one of
    SPLITS, and the other columns' cells by column name."""

    path: str
    file: Path
    label: str
    split: str = ""
    group: str = ""
    extra: dict[str, str] = field(default_factory=dict, hash=False)

    @cached_property
    def key(self) -> str:
        """The clip's one name (`clip_key`), whichever CSV names it."""
        return clip_key(self.file)


@dataclass(frozen=True)
class LabelsTable:
    """A labels CSV as read: its columns in the file's order (the four always among them,
    the missing ones last) and its rows."""

    path: Path
    columns: tuple[str, ...]
    rows: list[LabelRow]


def _is_header(first: list[str]) -> bool:
    """Whether a first row is a header: one of its cells is `path`."""
    return any(c.strip().lower() == "path" for c in first)


def _column_names(csv_path: Path, given: list[str], width: int) -> list[str]:
    """The name of every column: the four known ones lower-cased, the others as written,
    `column<N>` for a nameless one (an empty header cell, a cell beyond the header); a name
    given twice is refused, as its cells could not both be kept."""
    names = [c.strip().lower() if c.strip().lower() in LABEL_COLUMNS else c for c in given]
    twice = sorted({n for n in names if n.strip() and names.count(n) > 1})
    if twice:
        raise UserError(
            f"{csv_path}: column {twice[0]!r} appears twice in the header; rename one of them"
        )
    names += [""] * (width - len(names))
    for i, name in enumerate(names):
        if not name.strip():
            names[i] = f"column{i + 1}"
            while names[i] in names[:i] + names[i + 1 :]:
                names[i] += "_"
    return names


def read_labels_csv(csv_path: str | os.PathLike) -> LabelsTable:
    """Read a labels CSV; a UserError naming the file, the line and the fix otherwise."""
    csv_path = Path(csv_path)
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            lines = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
    except UnicodeDecodeError as exc:
        raise UserError(f"{csv_path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    except csv.Error as exc:
        raise UserError(f"{csv_path}: not a readable CSV ({exc}); fix the quoting") from None
    header = bool(lines) and _is_header(lines[0][1])
    given: list[str] = []
    if header:
        given, lines = lines[0][1], lines[1:]
        if "label" not in (c.strip().lower() for c in given):
            raise UserError(f"{csv_path}: the header has no label column; expected {EXPECTED}")
    width = max([len(given) if header else 2, *(len(r) for _, r in lines)])
    names = _column_names(csv_path, given if header else list(LABEL_COLUMNS[:width]), width)
    rows = [_row(csv_path, n, r, names) for n, r in lines]
    columns = tuple(names) + tuple(c for c in LABEL_COLUMNS if c not in names)
    return LabelsTable(csv_path, columns, rows)


def _row(csv_path: Path, line: int, cells: list[str], names: list[str]) -> LabelRow:
    values = dict(zip(names, cells, strict=False))  # a short row: cells left empty
    known = {c: values.pop(c, "").strip() for c in LABEL_COLUMNS}
    if not known["path"] or not known["label"]:
        raise UserError(
            f"{csv_path}:{line}: expected {EXPECTED}, got {cells}; every row needs a path "
            "and a label"
        )
    split = known["split"].lower()
    if split and split not in SPLITS:
        raise UserError(
            f"{csv_path}:{line}: split must be 'train', 'val' or 'test' (or empty, to let "
            f"prepare split), got {known['split']!r}"
        )
    path = Path(known["path"])
    return LabelRow(
        path=known["path"],
        file=path if path.is_absolute() else csv_path.parent / path,
        label=known["label"],
        split=split,
        group=known["group"],
        extra=values,
    )


def format_labels_csv(columns: Sequence[str], records: Iterable[Mapping[str, str]]) -> str:
    """The CSV text of `records` ({column: cell}) under `columns` (a table's own order when
    rewriting one, so the user's columns stay where they were); a missing cell is empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([record.get(c, "") for c in columns])
    return buf.getvalue()
