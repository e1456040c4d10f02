"""The per-video cache of `prepare`: `out/cache/<id>.npy` (the sampled frames) and its sidecar
`out/cache/<id>.json` (what was done to the video), and when a cached video can be reused.

A sidecar records the source file (path, size, mtime) and the sampling options; a rerun with
the same file and options reuses the video, anything else redoes it. Every file is written
to a temporary name and renamed, so a killed run leaves no half file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from vidclass.atomic import write_bytes


def source_signature(path: Path) -> dict:
    """What identifies the source file's content cheaply: path, size and mtime."""
    try:
        st = path.stat()
    except OSError:
        return {"path": str(path), "size": -1, "mtime_ns": -1}
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def video_signature(root: str | os.PathLike, video_id: str) -> str:
    """A digest of what `prepare` did to one video: its source file (path, size, mtime), the
    sampling options and the cached frames file itself. Anything derived from the cached
    frames (features, flow) is keyed by it, so a video `prepare` redoes is recomputed."""
    cache = Path(root) / "cache"
    sidecar = read_sidecar(cache / f"{video_id}.json") or {}
    try:
        st = (cache / f"{video_id}.npy").stat()
        npy = [st.st_size, st.st_mtime_ns]
    except OSError:
        npy = None
    spec = {"source": sidecar.get("source"), "params": sidecar.get("params"), "npy": npy}
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def read_sidecar(path: Path) -> dict | None:
    """A video's sidecar record, or None when there is none (or it is unreadable)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: dict) -> None:
    write_bytes(path, lambda fh: fh.write(json.dumps(data, indent=1).encode()))


def reusable(
    old: dict | None, signature: dict, params: dict, npy: Path, frames_dir: Path | None
) -> bool:
    """Whether the cached record `old` is what extracting the video again would give."""
    if not old or old.get("source") != signature or old.get("params") != params:
        return False
    if old.get("error"):
        return True  # the same unchanged file would fail the same way
    return npy.exists() and (frames_dir is None or frames_dir.is_dir())


def remove_stale_temporaries(
    out: Path, video_ids: Iterable[str] | None = None, files: Iterable[str] = ()
) -> None:
    """Temporary files of a killed earlier run (never valid output: renamed only when whole).

    With `video_ids`, only those whose target belongs to one of these videos (their cache
    files, their exported frames) or is one of `files` in `out`: a shard sweeps up its own
    leftovers and never a temporary that another shard, running now, is still writing.
    Without, every temporary (one run owns the whole folder)."""
    owned: dict[Path, set[str]] | None = None
    if video_ids is not None:
        ids = set(video_ids)
        owned = {
            out: set(files),
            out / "cache": {f"{v}.npy" for v in ids} | {f"{v}.json" for v in ids},
            out / "frames": ids,
        }
    for folder in (out, out / "cache", out / "frames"):
        if not folder.is_dir():
            continue
        for tmp in folder.glob(".*.tmp"):
            if owned is not None and temporary_target(tmp.name) not in owned[folder]:
                continue
            if tmp.is_dir():
                for f in tmp.iterdir():
                    f.unlink()
                tmp.rmdir()
            else:
                tmp.unlink(missing_ok=True)


def temporary_target(name: str) -> str:
    """The file a temporary `.<name>.<pid>.tmp` (`atomic.temporary_path`) was to become."""
    return name[1 : -len(".tmp")].rsplit(".", 1)[0]
