"""What `predict` was pointed at: files, folders of videos, or live sources."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from vidclass.errors import UserError
from vidclass.outputs import unique_names
from vidclass.video.probe import VIDEO_EXTENSIONS, scan_folder, skipped_summary
from vidclass.video.reader import is_live_source


class Inputs(NamedTuple):
    """The videos to work on, the output name of each file among them (live sources have
    none; see `vidclass.outputs`), and the files the folder scans skipped."""

    videos: list[str]
    names: dict[str, str]
    skipped: list[Path]


def scan_inputs(items: list[str]) -> Inputs:
    """Folders become their video files (sorted, recursive; `scan_folder`), each named by its
    path under the folder; everything else stays as given (a missing file is reported when
    it is opened, so the others still run). Nothing to work on at all is a user error."""
    out: list[str] = []
    roots: list[tuple[str, Path | None]] = []
    skipped: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            videos, others = scan_folder(p)
            out.extend(str(f) for f in videos)
            roots.extend((str(f), p) for f in videos)
            skipped.extend(others)
        else:
            out.append(item)
            if not is_live_source(item):
                roots.append((item, None))
    if not out:
        found = f" ({skipped_summary(skipped)})" if skipped else ""
        raise UserError(
            f"no video files ({', '.join(sorted(VIDEO_EXTENSIONS))}) in {', '.join(items)}"
            f"{found}; point at video files or a folder that holds some"
        )
    return Inputs(out, unique_names(roots), skipped)


def expand_inputs(items: list[str]) -> list[str]:
    """The videos of `items`, as `scan_inputs`, without the skipped files."""
    return scan_inputs(items).videos
