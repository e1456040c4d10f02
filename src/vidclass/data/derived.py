"""Folders of data derived from a prepared dataset (frozen features, optical flow).

A derived cache is only as right as its key. Each folder is named by a digest of everything
that determines its contents and holds that spec as `spec.json`, checked whenever the folder
is opened: a folder whose spec differs (an older format, an edited file) is emptied and
recomputed, never reused. Each file inside also carries the signature of the prepared video it
came from (`prepare.video_signature`), so a video that `prepare` redid is recomputed too.

Several processes (training ranks, the shards of `vidclass features`, DataLoader workers) may
open one folder at once, on one machine or over a shared file system: a folder only ever
appears whole, with its spec, by an atomic rename, and a stale one is renamed aside before it
is deleted, so no process deletes files another has just written into a good folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from vidclass.atomic import write_text

SPEC_FILE = "spec.json"
FORMAT = 2  # bump when the files of a derived cache change meaning


def spec_digest(spec: dict) -> str:
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def open_derived(parent: Path, prefix: str, spec: dict) -> Path:
    """`parent/<prefix>-<digest>/`, created with its spec, or verified against it."""
    spec = json.loads(json.dumps({"format": FORMAT, **spec}))  # as spec.json gives it back
    folder = parent / f"{prefix}-{spec_digest(spec)}"
    for _ in range(_TRIES):
        if _read_spec(folder) == spec:
            return folder
        if folder.exists():
            if _read_spec(folder) == spec:
                continue  # another process's folder appeared since the first look
            # Stale (another format, an edited spec, or left without its spec by an older
            # version): one process wins the rename aside; the others find it gone.
            aside = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.old")
            try:
                os.rename(folder, aside)
            except OSError:
                continue
            if _read_spec(aside) == spec:
                # A good folder took the stale one's place in between: put it back.
                try:
                    os.rename(aside, folder)
                    continue
                except OSError:
                    pass
            shutil.rmtree(aside, ignore_errors=True)
        fresh = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.new")
        fresh.mkdir(parents=True)
        write_text(fresh / SPEC_FILE, json.dumps(spec, indent=2, sort_keys=True))
        try:
            os.rename(fresh, folder)  # refused when another process's folder got there first
        except OSError:
            shutil.rmtree(fresh, ignore_errors=True)
    if _read_spec(folder) == spec:
        return folder
    raise RuntimeError(f"{folder}: could not be created with its spec; is it writable?")


_TRIES = 5


def _read_spec(folder: Path) -> dict | None:
    try:
        return json.loads((folder / SPEC_FILE).read_text())
    except (OSError, ValueError):
        return None
