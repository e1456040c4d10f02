"""Folders of data derived from a prepared dataset (frozen features, optical flow).

A derived cache is only as right as its key. Each folder is named by a digest of everything
that determines its contents and holds that spec as `spec.json`, checked whenever the folder
is opened: a folder whose spec differs (an older format, an edited file) is emptied and
recomputed, never reused. Each file inside also carries the signature of the prepared video it
came from (`prepare.video_signature`), so a video that `prepare` redid is recomputed too.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from vidclass.atomic import write_text

SPEC_FILE = "spec.json"
FORMAT = 2  # bump when the files of a derived cache change meaning


def spec_digest(spec: dict) -> str:
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def open_derived(parent: Path, prefix: str, spec: dict) -> Path:
    """`parent/<prefix>-<digest>/`, created with its spec, or verified against it."""
    spec = {"format": FORMAT, **spec}
    folder = parent / f"{prefix}-{spec_digest(spec)}"
    path = folder / SPEC_FILE
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        found = None
    if found != spec:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(spec, indent=2, sort_keys=True))
    return folder
