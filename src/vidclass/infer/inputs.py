"""What `predict` was pointed at: files, folders of videos, or live sources."""

from __future__ import annotations

import os
from pathlib import Path

from vidclass.data.probe import VIDEO_EXTENSIONS
from vidclass.errors import UserError


def expand_inputs(items: list[str]) -> list[str]:
    """Folders become their video files (sorted, recursive); everything else stays as given
    (a missing file is reported when it is opened, so the others still run). Nothing to
    work on at all is a user error."""
    out: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out.extend(
                str(f)
                for f in sorted(p.rglob("*"))
                if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS
            )
        else:
            out.append(item)
    if not out:
        raise UserError(
            f"no video files ({', '.join(sorted(VIDEO_EXTENSIONS))}) in {', '.join(items)}; "
            "point at video files or a folder that holds some"
        )
    return out


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
