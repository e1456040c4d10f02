"""The last step of `prepare`: one manifest row per video, the train / val / test split, and
`manifest.csv`, `prepared.json` (and `frames.csv` with exported frames) written; and
`read_manifest`, which every reader of a prepared folder uses.

It needs only the videos and each one's sidecar record (extracted now or cached), so it runs
the same however the per-video work was done.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from pathlib import Path

from vidclass.atomic import write_bytes
from vidclass.data.cache import write_json
from vidclass.data.sources import SPLITS, SourceVideo
from vidclass.data.splits import carve_validation, stratified_group_split
from vidclass.errors import UserError
from vidclass.video.decode import IMAGENET_MEAN, IMAGENET_STD

MANIFEST_COLUMNS = [
    "video_id",
    "path",
    "label",
    "label_index",
    "split",
    "group",
    "num_frames",
    "fps",
    "duration_s",
    "width",
    "height",
    "sampled_frames",
    "crop",
    "status",
    "error",
]


def write_dataset(
    out: Path,
    src: Path,
    classes: list[str],
    videos: list[SourceVideo],
    records: dict[str, dict],
    *,
    split_mode: str,
    sampling: dict,
    pad: str,
    test_fraction: float,
    val_fraction: float,
    seed: int,
    frames_csv: bool,
    pairs: list[list[str]] | None = None,
) -> tuple[list[dict], list[str]]:
    """Rows and split of every video, written out; returns (rows, warnings about the split).

    `sampling` is the options every video was sampled with (frames, interval, sample_fps,
    size, and crop with its person_boxes unless the crop is `center`), `records` each video's
    sidecar record by id; `pairs` the time-reversed class pairs (read from the source's
    classes.json when not given)."""
    rows = manifest_rows(videos, classes, records)
    warnings = assign_splits(rows, videos, split_mode, test_fraction, val_fraction, seed)
    write_manifest(out / "manifest.csv", rows)
    if frames_csv:
        write_frames_csv(out / "frames.csv", rows)
    meta = {
        "version": 1,
        "source": str(src.resolve()),
        "classes": classes,
        "frames": sampling["frames"],
        "interval": sampling["interval"],
        "sample_fps": sampling["sample_fps"],
        "size": sampling["size"],
        "crop": sampling.get("crop", "center"),
        "person_boxes": sampling.get("person_boxes"),
        "pad": pad,
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "pairs": read_pairs(src, classes) if pairs is None else pairs,
        "split": {
            "mode": split_mode,
            "test_fraction": test_fraction if split_mode == "stratified-group" else None,
            "val_fraction": val_fraction,
            "seed": seed,
        },
        "counts": {
            "ok": sum(r["status"] == "ok" for r in rows),
            "failed": sum(r["status"] == "failed" for r in rows),
        },
    }
    write_json(out / "prepared.json", meta)
    return rows, warnings


def read_pairs(src: Path, classes: list[str]) -> list[list[str]]:
    """Time-reversed class pairs from `SRC/classes.json` (written by `vidclass synth`), if any.

    Training reports how well each method tells the members of a pair apart.
    """
    path = src / "classes.json" if src.is_dir() else src.with_name("classes.json")
    try:
        pairs = json.loads(path.read_text()).get("pairs", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [list(p) for p in pairs if len(p) == 2 and all(c in classes for c in p)]


def manifest_rows(
    videos: list[SourceVideo], classes: list[str], records: dict[str, dict]
) -> list[dict]:
    """One row per video, in the source's order; the split is filled in by `assign_splits`."""
    index = {c: i for i, c in enumerate(classes)}
    rows = []
    for v in videos:
        rec = records[v.video_id]
        info = rec.get("info") or {}
        rows.append(
            {
                "video_id": v.video_id,
                "path": os.path.abspath(v.path),
                "label": v.label,
                "label_index": index[v.label],
                "split": "",
                "group": v.group,
                "num_frames": info.get("num_frames", ""),
                "fps": info.get("fps", ""),
                "duration_s": info.get("duration_s", ""),
                "width": info.get("width", ""),
                "height": info.get("height", ""),
                "sampled_frames": rec.get("sampled_frames", 0),
                "crop": "" if rec.get("error") else crop_status(rec),
                "status": "failed" if rec.get("error") else "ok",
                "error": rec.get("error") or "",
            }
        )
    return rows


def crop_status(record: dict) -> str:
    """What `crop_clip` did to a video (`center`, `full`, `person`, `full-fallback`: no person
    found, so shown whole); a sidecar from before `--crop` existed was centre-cropped."""
    return (record.get("crop") or {}).get("status") or "center"


def assign_splits(
    rows: list[dict],
    videos: list[SourceVideo],
    split_mode: str,
    test_fraction: float,
    val_fraction: float,
    seed: int,
) -> list[str]:
    """Fill in each ok row's split (the given one, or a stratified group split); return
    warnings about what the split could not do."""
    warnings = []
    ok = [r for r in rows if r["status"] == "ok"]
    if split_mode != "stratified-group":
        for row, v in zip(rows, videos, strict=True):
            row["split"] = v.split or ""
        if not any(r["split"] == "val" for r in ok) and val_fraction > 0:
            # A given train/test split (UCF101's lists, a CSV): val comes out of train.
            train = [r for r in ok if r["split"] == "train"]
            totals = Counter(r["label"] for r in ok)
            targets = {c: val_fraction * n for c, n in totals.items()}
            picks = carve_validation(
                [r["label"] for r in train], [r["group"] for r in train], targets, seed
            )
            for row, pick in zip(train, picks, strict=True):
                if pick:
                    row["split"] = "val"
        leaks = _groups_on_two_sides(ok)
        if leaks:
            warnings.append(
                f"the given split puts {len(leaks)} groups on two sides, e.g. {sorted(leaks)[:3]}"
            )
    else:
        splits = stratified_group_split(
            [r["label"] for r in ok], [r["group"] for r in ok], test_fraction, seed, val_fraction
        )
        for row, split in zip(ok, splits, strict=True):
            row["split"] = split
        if test_fraction > 0:
            tested = {r["label"] for r in ok if r["split"] == "test"}
            lonely = sorted({r["label"] for r in ok} - tested)
            if lonely:
                warnings.append(f"classes with a single group have no test clip: {lonely[:5]}")
    if val_fraction > 0:
        missing = sorted({r["label"] for r in ok} - {r["label"] for r in ok if r["split"] == "val"})
        if missing:
            warnings.append(
                f"the val split has no clip of {len(missing)} classes (e.g. {missing[:3]}): "
                "too few groups to hold one out; training keeps the last epoch instead of "
                "choosing one on val"
            )
    return warnings


def _groups_on_two_sides(rows: list[dict]) -> set[str]:
    sides: dict[str, set[str]] = {}
    for r in rows:
        sides.setdefault(r["group"], set()).add(r["split"])
    return {g for g, s in sides.items() if len(s & set(SPLITS)) > 1}


def write_manifest(path: Path, rows: list[dict]) -> None:
    def write(fh):
        text = _csv_text(MANIFEST_COLUMNS, rows)
        fh.write(text.encode())

    write_bytes(path, write)


def write_frames_csv(path: Path, rows: list[dict]) -> None:
    ok = [
        {
            "video_id": r["video_id"],
            "class": r["label"],
            "split": r["split"],
            "frame_count": r["sampled_frames"],
        }
        for r in rows
        if r["status"] == "ok"
    ]
    write_bytes(
        path,
        lambda fh: fh.write(_csv_text(["video_id", "class", "split", "frame_count"], ok).encode()),
    )


def _csv_text(columns: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def read_manifest(root: str | os.PathLike) -> list[dict]:
    """The rows of `root/manifest.csv`, with numbers as numbers."""
    path = Path(root) / "manifest.csv"
    if not path.is_file():
        raise UserError(f"{path}: not found; run `vidclass prepare SRC --out {root}` first")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["label_index"] = int(r["label_index"])
        r["sampled_frames"] = int(r["sampled_frames"] or 0)
    return rows
