"""A folder of videos (class folders, UCF101, or a CSV) → a training-ready dataset.

Output layout of `prepare(src, out)`:

    out/manifest.csv         one row per video, failed ones included with their reason
    out/prepared.json        the options, classes and normalization a loader needs
    out/cache/<id>.npy       uint8 (T, size, size, 3): the sampled real frames, cropped
                             (`vidclass.data.crop`), no padding
    out/cache/<id>.json      what was done to that video (resume: same source + options → skip),
                             with its crop box per sampled frame
    out/frames/<id>/000001.jpg, out/frames.csv   with `export_frames`

Every file is written to a temporary name and renamed, so a killed run leaves no half
file; running again redoes only what is missing.

The job runs in three steps, each in its own module: list and label the videos
(`sources.discover`), do each video's work (`extract.extract_all`, cached per video by
`cache`), then write the manifest and the split (`manifest.write_dataset`).

A large source can be prepared in shards (`prepare(..., shard=(I, N))`, one process or
machine each, into one shared folder), then merged (`merge_shards`) into exactly the files
one run would have written; `vidclass.data.shard` says how the videos are shared out.
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
from vidclass.data.crop import BOX_SOURCES, DEFAULT_BOX_SOURCE, check_mode
from vidclass.data.extract import (
    MAX_AUTO_FRAMES,
    auto_frames,
    extract_all,
    extract_task,
    probe_task,
)
from vidclass.data.manifest import (
    MANIFEST_COLUMNS,
    manifest_rows,
    read_manifest,
    read_pairs,
    write_dataset,
)
from vidclass.data.sampling import PAD_MODES
from vidclass.data.shard import (
    SHARD_FORMAT,
    check_agree,
    check_complete,
    find_shard_manifests,
    listing_digest,
    parse_shard,
    read_shard_manifest,
    row_to_video,
    shard_key,
    shard_manifest_name,
    shard_of,
    write_shard_manifest,
)
from vidclass.data.sources import SPLITS, SourceVideo, discover
from vidclass.errors import UserError

# What one run, or the merge of shards, writes for the whole folder (prepared.json first:
# readers check it before the rest).
DATASET_FILES = ("prepared.json", "manifest.csv", "frames.csv")

# The names this module has always offered; they live in the step modules now.
__all__ = [
    "MANIFEST_COLUMNS",
    "MAX_AUTO_FRAMES",
    "SPLITS",
    "PrepareResult",
    "SourceVideo",
    "discover",
    "extract_task",
    "merge_shards",
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
    shard: tuple[int, int] | None = None  # (I, N): only that shard was prepared, not merged
    merged_shards: int = 0  # N: the manifest was merged from N shards
    keypoints: tuple[Path, int] | None = None  # --pose: (their folder, clips computed)

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
    shard: tuple[int, int] | str | None = None,
    crop: str = "center",
    person_boxes: str = DEFAULT_BOX_SOURCE,
    pose: bool = False,
) -> PrepareResult:
    """Probe, sample, pad-plan, resize and cache every video; write the manifest and split.

    The split is train / val / test: `test_fraction` of each class is held out for testing
    (or the split the source gives), and `val_fraction` of each class's clips is carved out
    of the training side to choose the best epoch, so the test split never chooses anything.
    Failed videos are kept as `failed` rows with a reason; check `result.failed`.

    `crop` decides the region of each frame the model sees (`vidclass.data.crop`: `center`,
    `full`, `person`; `person_boxes`, `pose`: `_check_crop`); the manifest's `crop` says what.

    With `shard=(I, N)` (or `"I/N"`) only the I-th of N shards of the videos is done (see
    `vidclass.data.shard`), and `manifest.shard-I-of-N.csv` is written instead of the
    manifest and split: `merge_shards(out)` makes those once every shard has finished.
    """
    start = time.perf_counter()
    src, out = Path(src), Path(out)
    if shard is not None:
        shard = parse_shard(shard if isinstance(shard, str) else f"{shard[0]}/{shard[1]}")
    fixed_frames = _check_options(frames, interval, sample_fps, pad, sharded=shard is not None)
    _check_crop(crop, person_boxes, pose, shard)

    classes, videos, split_mode, skipped = discover(
        src, Path(ucf101_splits) if ucf101_splits else None, fold, group_regex
    )
    listing, marker, cache = videos, None, out / "cache"
    if shard is None:
        _start_unsharded(out)
    else:
        videos, marker = _start_shard(out, src, videos, shard)
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
    if crop != "center":  # a centre crop keeps the options, so the caches, it always had
        params["crop"] = crop
        if crop == "person":
            params["person_boxes"] = person_boxes
    records, reused = extract_all(
        videos, cache, params, export_dir, sidecars, signatures, workers, quiet
    )
    result = PrepareResult(
        out=out,
        classes=classes,
        rows=[],
        frames=fixed_frames,
        reused=reused,
        seconds=0.0,
        split_mode=split_mode,
        skipped=[str(p) for p in skipped],
        shard=shard,
    )
    options = dict(pad=pad, test_fraction=test_fraction, val_fraction=val_fraction, seed=seed)
    if marker is not None:
        keyed = dict(ucf101_splits=ucf101_splits, fold=fold, group_regex=group_regex)
        shard_options = {**options, **keyed, "export_frames": export_frames}
        result.rows = _write_shard(
            marker, src, listing, videos, records, result, params, shard_options
        )
    else:
        result.rows, result.warnings = write_dataset(
            out,
            src,
            classes,
            videos,
            records,
            split_mode=split_mode,
            sampling=params,
            frames_csv=export_dir is not None,
            **options,
        )
    result.keypoints = _store_keypoints(out, quiet) if pose and marker is None else None
    result.seconds = time.perf_counter() - start
    return result


def _store_keypoints(out: Path, quiet: bool) -> tuple[Path, int]:
    from vidclass.data.keypoints import cache_keypoints

    return cache_keypoints(out, quiet)


def _check_pose(shard) -> None:
    from vidclass.data.pose import unavailable

    if shard is not None:
        raise UserError(
            "--pose with --shard: keypoints are stored once the shards are merged; prepare "
            "the shards without --pose (training computes the missing keypoints)"
        )
    reason = unavailable()
    if reason:
        raise UserError(f"--pose: {reason}")


def _start_unsharded(out: Path) -> None:
    """The cache folder made and its temporaries swept up; an earlier sharded run's manifests
    removed: they describe cache files this run rewrites, and a later `--merge` would put
    their options back over this run's clips."""
    (out / "cache").mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    for old in find_shard_manifests(out).values():
        old.unlink()


def _start_shard(
    out: Path, src: Path, videos: list[SourceVideo], shard: tuple[int, int]
) -> tuple[list[SourceVideo], Path]:
    """(the shard's videos, its manifest's path): its old manifest removed first (a shard
    redone with other options is not complete until it finishes again), and the folder's
    dataset files, unsharded or merged: they describe cache files this shard rewrites, so
    until `--merge` writes them again, `train` says to merge rather than read stale ones.
    Its own temporaries are swept up, never those of another shard."""
    index, count = shard
    mine = [v for v in videos if shard_of(shard_key(v, src), count) == index]
    marker = out / shard_manifest_name(index, count)
    marker.unlink(missing_ok=True)
    for name in DATASET_FILES:
        (out / name).unlink(missing_ok=True)
    (out / "cache").mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out, [v.video_id for v in mine], [marker.name])
    return mine, marker


def _write_shard(
    marker: Path,
    src: Path,
    listing: list[SourceVideo],
    videos: list[SourceVideo],
    records: dict[str, dict],
    result: PrepareResult,
    sampling: dict,
    options: dict,
) -> list[dict]:
    """The shard's manifest, its completion marker: its videos' rows (the split column holds
    only the source's own split) and, in its first line, everything the merge needs and
    checks: N, the whole list's digest, the classes and every option."""
    keys = [shard_key(v, src) for v in listing]
    position = {v.video_id: i for i, v in enumerate(listing)}
    rows = manifest_rows(videos, result.classes, records)
    for row, v in zip(rows, videos, strict=True):
        row["split"] = v.split or ""
        row["position"] = position[v.video_id]
    splits = options.pop("ucf101_splits")
    params = {
        "source": str(src.resolve()),
        "videos": len(listing),
        "listing": listing_digest(keys),
        "classes": result.classes,
        "split_mode": result.split_mode,
        "sampling": sampling,
        "ucf101_splits": str(Path(splits).resolve()) if splits else None,
        "pairs": read_pairs(src, result.classes),
        **options,
    }
    index, count = result.shard
    meta = {
        "format": SHARD_FORMAT,
        "shard": index,
        "count": count,
        "params": params,
        "skipped": result.skipped,
    }
    write_shard_manifest(marker, meta, MANIFEST_COLUMNS, rows)
    return rows


def merge_shards(out: str | os.PathLike) -> PrepareResult:
    """Once every shard of `out` has finished: the manifest, split and prepared.json of all
    their videos, the same files one unsharded `prepare` with the same options writes.

    A UserError names the shards that are missing, or the options on which they differ."""
    start = time.perf_counter()
    out = Path(out)
    if not out.is_dir():
        raise UserError(f"{out}: not found; give the folder the shards were prepared into (--out)")
    found = find_shard_manifests(out)
    count = check_complete(out, found)
    metas, rows, owner = {}, [], {}
    for i in range(count):
        metas[i], shard_rows = read_shard_manifest(found[(i, count)])
        if (metas[i].get("shard"), metas[i].get("count")) != (i, count):
            raise UserError(
                f"{found[(i, count)]}: holds shard {metas[i].get('shard')}/"
                f"{metas[i].get('count')}, not the {i}/{count} its name says; run "
                f"shard {i}/{count} again"
            )
        rows.extend(shard_rows)
        owner.update({r["video_id"]: i for r in shard_rows})
    check_agree(metas)
    params = metas[0]["params"]
    positions = sorted(int(r["position"]) for r in rows)
    if positions != list(range(params["videos"])):
        raise UserError(
            f"{out}: the {count} shard manifests hold {len(rows)} rows for the source's "
            f"{params['videos']} videos; run every shard again with the same command line"
        )
    rows.sort(key=lambda r: int(r["position"]))
    pairs = [row_to_video(r) for r in rows]
    videos = [v for v, _ in pairs]
    records = {v.video_id: rec for v, rec in pairs}
    lost = [
        v.video_id
        for v, rec in pairs
        if not rec["error"] and not (out / "cache" / f"{v.video_id}.npy").exists()
    ]
    if lost:
        shards = sorted({owner[v] for v in lost})
        raise UserError(
            f"{out}: {len(lost)} cached videos are gone (e.g. cache/{lost[0]}.npy); run shard "
            f"{', '.join(f'{i}/{count}' for i in shards)} again"
        )
    remove_stale_temporaries(out, [], list(DATASET_FILES))
    sampling = params["sampling"]
    merged, warnings = write_dataset(
        out,
        Path(params["source"]),
        params["classes"],
        videos,
        records,
        split_mode=params["split_mode"],
        sampling=sampling,
        pad=params["pad"],
        test_fraction=params["test_fraction"],
        val_fraction=params["val_fraction"],
        seed=params["seed"],
        frames_csv=params["export_frames"],
        pairs=params["pairs"],
    )
    return PrepareResult(
        out=out,
        classes=params["classes"],
        rows=merged,
        frames=sampling["frames"],
        seconds=time.perf_counter() - start,
        split_mode=params["split_mode"],
        warnings=warnings,
        reused=len(merged),  # every video comes from the shards' cache
        skipped=metas[0]["skipped"],
        merged_shards=count,
    )


def _check_crop(crop: str, person_boxes: str, pose: bool, shard) -> None:
    """The crop mode; `person_boxes`, where a `person` crop finds the person (`motion` or
    `pose`: `crop.BOX_SOURCES`); `pose`: also store the main person's keypoints per cached
    frame beside the cache (`vidclass.data.keypoints`, read by the `pose` method). Checked
    (the pose extra installed where needed) before any decoding."""
    check_mode(crop)
    if pose:
        _check_pose(shard)
    if person_boxes not in BOX_SOURCES:
        raise UserError(f"--person-boxes {person_boxes!r}: choose one of {', '.join(BOX_SOURCES)}")
    if crop == "person" and person_boxes == "pose":
        from vidclass.data.pose import unavailable

        reason = unavailable()
        if reason:
            raise UserError(f"--person-boxes pose: {reason}")


def _check_options(
    frames: int | str, interval: int | None, sample_fps: float | None, pad: str, sharded: bool
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
        if sharded:
            raise UserError(
                "--frames auto measures every video, which one shard does not see; "
                "give a fixed --frames N with --shard"
            )
        return None
    try:
        count = int(frames)
    except ValueError:
        raise UserError(f"--frames must be a number or 'auto', got {frames!r}") from None
    if count <= 0:
        raise UserError(f"--frames must be positive, got {count}")
    return count
