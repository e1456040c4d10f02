"""What `predict` was pointed at: files, folders of videos, or live sources."""

from __future__ import annotations

import os
from pathlib import Path

from vidclass.errors import UserError
from vidclass.video.probe import VIDEO_EXTENSIONS, scan_folder, skipped_summary


def scan_inputs(items: list[str]) -> tuple[list[str], list[Path]]:
    """Folders become their video files (sorted, recursive; `scan_folder`); everything else
    stays as given (a missing file is reported when it is opened, so the others still run).
    Also returns the files the folder scans skipped, for the caller to name. Nothing to
    work on at all is a user error."""
    out: list[str] = []
    skipped: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            videos, others = scan_folder(p)
            out.extend(str(f) for f in videos)
            skipped.extend(others)
        else:
            out.append(item)
    if not out:
        found = f" ({skipped_summary(skipped)})" if skipped else ""
        raise UserError(
            f"no video files ({', '.join(sorted(VIDEO_EXTENSIONS))}) in {', '.join(items)}"
            f"{found}; point at video files or a folder that holds some"
        )
    return out, skipped


def expand_inputs(items: list[str]) -> list[str]:
    """The videos of `items`, as `scan_inputs`, without the skipped files."""
    return scan_inputs(items)[0]


def output_path(
    target: str | os.PathLike | None, source: str, suffix: str, many: bool
) -> Path | None:
    """Where a per-video output goes: the path itself, or `folder/<stem><suffix>` when there
    are many videos, or `target` is a folder: an existing one, or a path ending in `/`
    (`--json preds/` means the folder preds, even before it exists)."""
    if target is None:
        return None
    text = os.fspath(target)
    folder = text.endswith(("/", os.sep)) or Path(text).is_dir()
    path = Path(text)
    if many or folder:
        path.mkdir(parents=True, exist_ok=True)
        return path / f"{Path(source).stem}{suffix}"
    return path
