"""Shards of one `prepare`: the I-th of N parts of a source's videos, prepared by separate
processes or machines into one shared output folder, then merged (`prepare.merge_shards`).

A video's shard is a stable hash (sha1) of its path relative to the source, so every machine
picks the same videos however its file system lists them. A finished shard writes
`manifest.shard-I-of-N.csv` last, atomically: its completion marker. The file is a CSV of the
shard's videos (their manifest rows, the split column holding only a split the source gave,
and `position`, the video's place in the whole source's list) under one first line,
`#vidclass-shard {json}`, recording N and every option that must agree for the shards to be
merged. Nothing else a shard writes is shared with another shard: each video's cache files
belong to exactly one of them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from pathlib import Path

from vidclass.atomic import write_bytes
from vidclass.data.sources import SourceVideo
from vidclass.errors import UserError

SHARD_FORMAT = 1
HEADER_PREFIX = "#vidclass-shard "
SHARD_COLUMNS = ["position"]  # + the manifest's columns
_NAME = re.compile(r"^manifest\.shard-(\d+)-of-(\d+)\.csv$")


def parse_shard(text: str) -> tuple[int, int]:
    """`"I/N"` → (I, N), with 0 <= I < N: the I-th of N shards, counted from 0 as Slurm's
    `--array=0-63` and Kubernetes' JOB_COMPLETION_INDEX count."""
    index, sep, count = str(text).strip().partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i = n = -1
    if not sep or n < 1 or not 0 <= i < n:
        raise UserError(
            f"--shard {text!r}: expected I/N with 0 <= I < N, e.g. 0/4 ... 3/4 for four shares "
            "(Slurm: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT with --array=0-N-1)"
        )
    return i, n


def shard_key(video: SourceVideo, src: Path) -> str:
    """What a video's shard is chosen by: its path relative to the source folder (the CSV's
    folder for a CSV), in POSIX form; the whole path for a CSV row outside that folder."""
    root = src if src.is_dir() else src.parent
    try:
        return video.path.relative_to(root).as_posix()
    except ValueError:
        return video.path.as_posix()


def shard_of(key: str, count: int) -> int:
    """The shard (0..count-1) of `key`: sha1, so it is the same in every process and on every
    machine (Python's own `hash` of a string changes with each interpreter)."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:16], 16) % count


def listing_digest(keys: list[str]) -> str:
    """A digest of the whole ordered list of videos: shards that saw different sources (a file
    added between two shards' runs) do not merge."""
    return hashlib.sha1("\n".join(keys).encode("utf-8")).hexdigest()[:16]


def shard_manifest_name(index: int, count: int) -> str:
    return f"manifest.shard-{index}-of-{count}.csv"


def find_shard_manifests(out: Path) -> dict[tuple[int, int], Path]:
    """Every completed shard's manifest in `out`, by (index, count)."""
    found = {}
    for path in out.glob("manifest.shard-*-of-*.csv"):
        m = _NAME.match(path.name)
        if m:
            found[(int(m.group(1)), int(m.group(2)))] = path
    return found


def write_shard_manifest(path: Path, meta: dict, columns: list[str], rows: list[dict]) -> None:
    """The header line and the rows, written atomically (the shard's completion marker)."""
    buf = io.StringIO()
    buf.write(HEADER_PREFIX + json.dumps(meta, sort_keys=True) + "\n")
    writer = csv.DictWriter(buf, fieldnames=SHARD_COLUMNS + columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes(path, lambda fh: fh.write(buf.getvalue().encode("utf-8")))


def read_shard_manifest(path: Path) -> tuple[dict, list[dict]]:
    """(the recorded meta, the rows as strings) of one shard's manifest."""
    with path.open(newline="", encoding="utf-8") as fh:
        first = fh.readline()
        if not first.startswith(HEADER_PREFIX):
            raise UserError(f"{path}: not a shard manifest of vidclass prepare --shard")
        try:
            meta = json.loads(first[len(HEADER_PREFIX) :])
        except ValueError:
            raise UserError(f"{path}: its first line is not valid JSON") from None
        rows = list(csv.DictReader(fh))
    if meta.get("format") != SHARD_FORMAT:
        raise UserError(
            f"{path}: written by another version of vidclass (shard format "
            f"{meta.get('format')}, expected {SHARD_FORMAT}); run that shard again"
        )
    return meta, rows


def check_complete(out: Path, found: dict[tuple[int, int], Path]) -> int:
    """The shard count N, once every shard 0..N-1 of one N has finished; else a UserError that
    names what is missing (or which counts are mixed)."""
    if not found:
        raise UserError(
            f"{out}: no shard manifests (manifest.shard-I-of-N.csv); run "
            f"`vidclass prepare SRC --out {out} --shard I/N` for each I first"
        )
    counts = sorted({n for _, n in found})
    if len(counts) > 1:
        names = ", ".join(sorted(p.name for p in found.values()))
        raise UserError(
            f"{out}: shard manifests of different shard counts ({', '.join(map(str, counts))}): "
            f"{names}; delete those of the count you no longer use"
        )
    (count,) = counts
    missing = [i for i in range(count) if (i, count) not in found]
    if missing:
        listed = ", ".join(f"{i}/{count}" for i in missing)
        raise UserError(
            f"{out}: {len(missing)} of {count} shards not finished: {listed} (no "
            f"manifest.shard-I-of-{count}.csv yet); run `vidclass prepare SRC --out {out} "
            f"--shard I/{count}` for each (a killed shard resumes), then merge again"
        )
    return count


def check_agree(metas: dict[int, dict]) -> None:
    """Every shard was prepared from the same list with the same options, or a UserError that
    names each difference and the shards that differ."""
    first = metas[0]["params"]
    diffs = []
    for i, meta in sorted(metas.items()):
        for key in sorted(set(first) | set(meta["params"])):
            if meta["params"].get(key) != first.get(key):
                diffs.append(
                    f"shard {i} has {key}={meta['params'].get(key)!r}, "
                    f"shard 0 {key}={first.get(key)!r}"
                )
    if diffs:
        raise UserError(
            "the shards were prepared with different options or sources: "
            + "; ".join(diffs[:5])
            + ("; ..." if len(diffs) > 5 else "")
            + "; run the odd shards again with the same command line"
        )


def _number(text: str) -> int | float | str:
    """A manifest cell back as the number it was written from (str of an int or a float)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def row_to_video(row: dict) -> tuple[SourceVideo, dict]:
    """A shard manifest row → (its SourceVideo, its per-video record as `extract` gave it):
    what `manifest.write_dataset` needs, so the merged files are those one run writes."""
    video = SourceVideo(
        path=Path(row["path"]),
        label=row["label"],
        split=row["split"] or None,
        group=row["group"],
        video_id=row["video_id"],
    )
    fields = ("num_frames", "fps", "duration_s", "width", "height")
    info = {k: _number(row[k]) for k in fields if row[k] != ""}
    record = {
        "info": info or None,
        "sampled_frames": int(row["sampled_frames"] or 0),
        "error": row["error"] or None,
        "crop": {"status": row["crop"]} if row.get("crop") else None,
    }
    return video, record
