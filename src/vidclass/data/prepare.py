"""A folder of videos (class folders, UCF101, or a CSV) → a training-ready dataset.

Output layout of `prepare(src, out)`:

    out/manifest.csv         one row per video, failed ones included with their reason
    out/prepared.json        the options, classes and normalization a loader needs
    out/cache/<id>.npy       uint8 (T, size, size, 3): the sampled real frames, no padding
    out/cache/<id>.json      what was done to that video (resume: same source + options → skip)
    out/frames/<id>/000001.jpg, out/frames.csv   with `export_frames`

Every file is written to a temporary name and renamed, so a killed run leaves no half
file; running again redoes only what is missing.

The job runs in three steps, each in its own module: list and label the videos
(`sources.discover`), do each video's work (`extract.extract_all`, cached per video by
`cache`), then write the manifest and the split (`manifest.write_dataset`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from vidclass.data.cache import (
    read_sidecar,
    remove_stale_temporaries,
    source_signature,
    video_signature,
)
from vidclass.data.extract import (
    MAX_AUTO_FRAMES,
    auto_frames,
    extract_all,
    extract_task,
    probe_task,
)
from vidclass.data.manifest import MANIFEST_COLUMNS, read_manifest, write_dataset
from vidclass.data.sampling import PAD_MODES
from vidclass.data.sources import SPLITS, SourceVideo, discover
from vidclass.errors import UserError

# The names this module has always offered; they live in the step modules now.
__all__ = [
    "MANIFEST_COLUMNS",
    "MAX_AUTO_FRAMES",
    "SPLITS",
    "PrepareResult",
    "SourceVideo",
    "discover",
    "extract_task",
    "prepare",
    "probe_task",
    "read_manifest",
    "video_signature",
]


@dataclass
class PrepareResult:
    """What `prepare` did: the manifest rows and where everything is."""

    out: Path
    classes: list[str]
    rows: list[dict]
    frames: int
    seconds: float
    reused: int = 0
    split_mode: str = ""
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files found but not taken as videos

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows if r["status"] == "failed"]

    @property
    def ok(self) -> list[dict]:
        return [r for r in self.rows if r["status"] == "ok"]


def prepare(
    src: str | os.PathLike,
    out: str | os.PathLike,
    frames: int | str = 16,
    interval: int | None = None,
    sample_fps: float | None = None,
    size: int = 112,
    pad: str = "zeros",
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
    workers: int = 2,
    export_frames: bool = False,
    ucf101_splits: str | os.PathLike | None = None,
    fold: int = 1,
    group_regex: str | None = None,
    quiet: bool = False,
) -> PrepareResult:
    """Probe, sample, pad-plan, resize and cache every video; write the manifest and split.

    The split is train / val / test: `test_fraction` of each class is held out for testing
    (or the split the source gives), and `val_fraction` of each class's clips is carved out
    of the training side to choose the best epoch, so the test split never chooses anything.
    Failed videos are kept as `failed` rows with a reason; check `result.failed`.
    """
    start = time.perf_counter()
    src, out = Path(src), Path(out)
    fixed_frames = _check_options(frames, interval, sample_fps, pad)

    classes, videos, split_mode, skipped = discover(
        src, Path(ucf101_splits) if ucf101_splits else None, fold, group_regex
    )
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    export_dir = out / "frames" if export_frames else None
    if export_dir:
        export_dir.mkdir(exist_ok=True)
    sidecars = {v.video_id: read_sidecar(cache / f"{v.video_id}.json") for v in videos}
    signatures = {v.video_id: source_signature(v.path) for v in videos}

    if fixed_frames is None:
        fixed_frames = auto_frames(
            videos, sidecars, signatures, interval, sample_fps, workers, quiet
        )
    params = {"frames": fixed_frames, "interval": interval, "sample_fps": sample_fps, "size": size}
    records, reused = extract_all(
        videos, cache, params, export_dir, sidecars, signatures, workers, quiet
    )
    rows, warnings = write_dataset(
        out,
        src,
        classes,
        videos,
        records,
        split_mode=split_mode,
        sampling=params,
        pad=pad,
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        seed=seed,
        frames_csv=export_dir is not None,
    )
    return PrepareResult(
        out=out,
        classes=classes,
        rows=rows,
        frames=fixed_frames,
        reused=reused,
        seconds=time.perf_counter() - start,
        split_mode=split_mode,
        warnings=warnings,
        skipped=[str(p) for p in skipped],
    )


def _check_options(
    frames: int | str, interval: int | None, sample_fps: float | None, pad: str
) -> int | None:
    """The sampling options checked before any video is read: the frame count, or None for
    `--frames auto` (measured from the videos)."""
    if pad not in PAD_MODES:
        raise UserError(f"--pad {pad!r}: choose one of {', '.join(PAD_MODES)}")
    if interval is not None and sample_fps is not None:
        raise UserError("give either --interval or --fps, not both")
    if sample_fps is not None and sample_fps <= 0:
        raise UserError(f"--fps must be positive, got {sample_fps}")
    if str(frames).lower() == "auto":
        if interval is None and sample_fps is None:
            raise UserError(
                "--frames auto needs --interval K or --fps F (else every frame is kept)"
            )
        return None
    try:
        count = int(frames)
    except ValueError:
        raise UserError(f"--frames must be a number or 'auto', got {frames!r}") from None
    if count <= 0:
        raise UserError(f"--frames must be positive, got {count}")
    return count
