"""A folder of videos (class folders, UCF101, or a CSV) → a training-ready dataset.

Output layout of `prepare(src, out)`:

    out/manifest.csv         one row per video, failed ones included with their reason
    out/prepared.json        the options, classes and normalization a loader needs
    out/cache/<id>.npy       uint8 (T, size, size, 3): the sampled real frames, no padding
    out/cache/<id>.json      what was done to that video (resume: same source + options → skip)
    out/frames/<id>/000001.jpg, out/frames.csv   with `export_frames`

Every file is written to a temporary name and renamed, so a killed run leaves no half
file; running again redoes only what is missing.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from vidclass.atomic import write_bytes
from vidclass.data.sampling import PAD_MODES, sample_indices, sampled_length
from vidclass.data.splits import (
    UCF101_GROUP_REGEX,
    carve_validation,
    group_of,
    read_ucf101_splits,
    stratified_group_split,
)
from vidclass.errors import UserError, VideoError
from vidclass.parallel import process_pool
from vidclass.progress import make_progress
from vidclass.video.decode import IMAGENET_MEAN, IMAGENET_STD, decode_indices
from vidclass.video.probe import (
    VIDEO_EXTENSIONS,
    VideoInfo,
    is_video_name,
    open_container,
    read_info,
    scan_folder,
    skipped_summary,
)

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
    "status",
    "error",
]
MAX_AUTO_FRAMES = 1024
SPLITS = ("train", "val", "test")


@dataclass
class SourceVideo:
    """One input video before processing."""

    path: Path
    label: str
    split: str | None = None  # given by the CSV or the UCF101 split files
    group: str | None = None
    video_id: str = ""


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


# ---------------------------------------------------------------------------- discovery


def discover(
    src: Path, ucf101_splits: Path | None = None, fold: int = 1, group_regex: str | None = None
) -> tuple[list[str], list[SourceVideo], str, list[Path]]:
    """Find the videos, their labels, and any given split; return (classes, videos, split
    mode, skipped files: not videos by their name, or videos outside a class folder)."""
    if not src.exists():
        raise UserError(f"{src}: not found; give a folder of <class>/<video> files or a CSV")
    if group_regex is not None:
        try:
            re.compile(group_regex)
        except re.error as exc:
            raise UserError(f"--group-regex {group_regex!r} is not a valid regex: {exc}") from None
    skipped: list[Path] = []
    if src.is_file():
        classes, videos, mode = _discover_csv(src)
    else:
        if ucf101_splits is None:
            for candidate in (src / "ucfTrainTestlist", src):
                if (candidate / "classInd.txt").is_file():
                    ucf101_splits = candidate
                    break
        classes, videos, mode, skipped = _discover_folder(src, ucf101_splits, fold)
    if not videos:
        found = f" ({skipped_summary(skipped)})" if skipped else ""
        raise UserError(
            f"{src}: no videos found{found}; expected {src}/<class>/<video>"
            f"{{{','.join(VIDEO_EXTENSIONS)}}} or a CSV path,label[,split][,group]"
        )
    regex = group_regex or UCF101_GROUP_REGEX
    for v in videos:
        if v.group is None:
            v.group = group_of(v.path, regex)
    _assign_ids(videos)
    for v in videos:
        if v.group is None:
            v.group = v.video_id  # no group known: each video is its own source
    return classes, videos, mode, skipped


def _discover_folder(
    src: Path, ucf101_splits: Path | None, fold: int
) -> tuple[list[str], list[SourceVideo], str, list[Path]]:
    """Videos in class folders (one scan definition: `scan_folder`), and what was skipped:
    the class folders' other files and videos lying outside any class folder (the other
    files at the top, such as metadata.csv or classes.json, are the dataset's own)."""
    splits_dir = ucf101_splits.resolve() if ucf101_splits is not None else None
    class_dirs = sorted(
        d
        for d in src.iterdir()
        if d.is_dir() and not d.name.startswith(".") and d.resolve() != splits_dir
    )
    videos: list[SourceVideo] = []
    skipped = sorted(f for f in src.iterdir() if f.is_file() and is_video_name(f))
    for d in class_dirs:
        found, others = scan_folder(d)
        videos.extend(SourceVideo(path=f, label=d.name) for f in found)
        skipped.extend(others)
    present = sorted({v.label for v in videos})
    if ucf101_splits is None:
        return present, videos, "stratified-group", skipped
    classes, official = read_ucf101_splits(ucf101_splits, fold)
    unknown = sorted(set(present) - set(classes))
    if unknown:
        raise UserError(
            f"{src}: class folders {unknown[:5]} are not in {ucf101_splits}/classInd.txt; "
            "point --ucf101-splits at the split files of this dataset"
        )
    for v in videos:
        key = f"{v.label}/{v.path.stem}"
        v.split = official.get(key, "unused")
    return classes, videos, f"ucf101-fold{fold}", skipped


def _discover_csv(src: Path) -> tuple[list[str], list[SourceVideo], str]:
    videos: list[SourceVideo] = []
    with src.open(newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    if rows and rows[0][0].strip().lower() == "path":
        header = [c.strip().lower() for c in rows[0]]
        rows = rows[1:]
    else:
        header = ["path", "label", "split", "group"][: max((len(r) for r in rows), default=2)]
    if "path" not in header or "label" not in header:
        raise UserError(f"{src}: a CSV needs columns path,label[,split][,group]")
    col = {name: i for i, name in enumerate(header)}
    for n, r in enumerate(rows, 2 if header else 1):
        if len(r) <= max(col["path"], col["label"]):
            raise UserError(f"{src}:{n}: expected path,label[,split][,group], got {r}")
        path = Path(r[col["path"]].strip())
        if not path.is_absolute():
            path = src.parent / path
        split = r[col["split"]].strip().lower() if "split" in col and len(r) > col["split"] else ""
        if split and split not in SPLITS:
            raise UserError(f"{src}:{n}: split must be 'train', 'val' or 'test', got {split!r}")
        group = r[col["group"]].strip() if "group" in col and len(r) > col["group"] else ""
        videos.append(
            SourceVideo(
                path=path, label=r[col["label"]].strip(), split=split or None, group=group or None
            )
        )
    given = [v.split for v in videos]
    if any(given) and not all(given):
        raise UserError(f"{src}: the split column must be filled on every row or on none")
    return sorted({v.label for v in videos}), videos, "csv" if all(given) else "stratified-group"


def _assign_ids(videos: list[SourceVideo]) -> None:
    """Stable, file-system-safe ids: the file stem, made unique when stems repeat."""

    def clean(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "video"

    stems = Counter(clean(v.path.stem) for v in videos)
    for v in videos:
        vid = clean(v.path.stem)
        if stems[vid] > 1:
            digest = hashlib.sha1(str(v.path).encode()).hexdigest()[:8]
            vid = f"{clean(v.label)}__{vid}__{digest}"
        v.video_id = vid


# ---------------------------------------------------------------------------- per video work


def _source_signature(path: Path) -> dict:
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
    sidecar = _read_sidecar(cache / f"{video_id}.json") or {}
    try:
        st = (cache / f"{video_id}.npy").stat()
        npy = [st.st_size, st.st_mtime_ns]
    except OSError:
        npy = None
    spec = {"source": sidecar.get("source"), "params": sidecar.get("params"), "npy": npy}
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def _write_json(path: Path, data: dict) -> None:
    write_bytes(path, lambda fh: fh.write(json.dumps(data, indent=1).encode()))


def _export_jpegs(frames: np.ndarray, folder: Path) -> None:
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    for i, rgb in enumerate(frames, 1):
        cv2.imwrite(str(tmp / f"{i:06d}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if folder.exists():
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
    os.replace(tmp, folder)


def probe_task(path: str) -> dict:
    """Worker: the VideoInfo of one file, or its error (for `--frames auto`)."""
    p = Path(path)
    try:
        with open_container(p) as container:
            return {"info": read_info(p, container).to_dict(), "error": None}
    except VideoError as exc:
        return {"info": None, "error": exc.reason}
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        return {"info": None, "error": f"unreadable ({exc})"}


def extract_task(task: dict) -> dict:
    """Worker: sample, decode, resize and cache one video; always returns a sidecar record."""
    p = Path(task["path"])
    cache = Path(task["cache_dir"])
    record = {
        "source": task["source"],
        "params": task["params"],
        "info": None,
        "error": None,
        "sampled_frames": 0,
    }
    try:
        with open_container(p) as container:
            info = read_info(p, container)
            params = task["params"]
            indices = sample_indices(
                info.num_frames,
                params["frames"],
                params["interval"],
                info.fps,
                params["sample_fps"],
            )
            frames, seen = decode_indices(p, container, indices, params["size"])
        if len(frames) < len(indices) and seen < info.num_frames / 2:
            raise VideoError(
                p,
                f"truncated: the stream ends after {seen} of the {info.num_frames} frames "
                "its header announces; re-download or re-encode it",
            )
        if len(frames) < len(indices):
            info = VideoInfo(**{**info.to_dict(), "num_frames": seen})
        npy = cache / f"{task['video_id']}.npy"
        write_bytes(npy, lambda fh: np.save(fh, frames))
        if task["export_dir"]:
            _export_jpegs(frames, Path(task["export_dir"]) / task["video_id"])
        record.update(info=info.to_dict(), sampled_frames=int(len(frames)))
    except VideoError as exc:
        record["error"] = exc.reason
    except (av.error.FFmpegError, OSError, ValueError, RuntimeError) as exc:
        record["error"] = f"unreadable ({type(exc).__name__}: {exc})"
    _write_json(cache / f"{task['video_id']}.json", record)
    return record


def _run_pool(fn, tasks: list, workers: int, description: str, quiet: bool) -> Iterator[tuple]:
    """Yield (task, result) as they finish, with a progress bar; processes when workers > 1."""
    if not tasks:
        return
    with make_progress(quiet) as progress:
        bar = progress.add_task(description, total=len(tasks), status="")
        if workers <= 1:
            for t in tasks:
                yield t, fn(t["arg"])
                progress.advance(bar)
            return
        with process_pool(workers) as pool:
            futures = {pool.submit(fn, t["arg"]): t for t in tasks}
            failed = 0
            for fut in as_completed(futures):
                result = fut.result()
                failed += bool(result.get("error"))
                yield futures[fut], result
                progress.update(bar, advance=1, status=f"[red]{failed} failed" if failed else "")


# ---------------------------------------------------------------------------- the job


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
    if pad not in PAD_MODES:
        raise UserError(f"--pad {pad!r}: choose one of {', '.join(PAD_MODES)}")
    if interval is not None and sample_fps is not None:
        raise UserError("give either --interval or --fps, not both")
    if sample_fps is not None and sample_fps <= 0:
        raise UserError(f"--fps must be positive, got {sample_fps}")
    auto = str(frames).lower() == "auto"
    if not auto:
        try:
            frames = int(frames)
        except ValueError:
            raise UserError(f"--frames must be a number or 'auto', got {frames!r}") from None
        if frames <= 0:
            raise UserError(f"--frames must be positive, got {frames}")
    elif interval is None and sample_fps is None:
        raise UserError("--frames auto needs --interval K or --fps F (else every frame is kept)")

    classes, videos, split_mode, skipped = discover(
        src, Path(ucf101_splits) if ucf101_splits else None, fold, group_regex
    )
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out)
    export_dir = out / "frames" if export_frames else None
    if export_dir:
        export_dir.mkdir(exist_ok=True)
    sidecars = {v.video_id: _read_sidecar(cache / f"{v.video_id}.json") for v in videos}
    signatures = {v.video_id: _source_signature(v.path) for v in videos}

    if auto:
        frames = _auto_frames(
            videos, sidecars, signatures, cache, interval, sample_fps, workers, quiet
        )
    params = {"frames": frames, "interval": interval, "sample_fps": sample_fps, "size": size}

    records: dict[str, dict] = {}
    tasks = []
    for v in videos:
        old = sidecars[v.video_id]
        if _reusable(
            old,
            signatures[v.video_id],
            params,
            cache / f"{v.video_id}.npy",
            export_dir / v.video_id if export_dir else None,
        ):
            records[v.video_id] = old
            continue
        tasks.append(
            {
                "video": v,
                "arg": {
                    "path": str(v.path),
                    "video_id": v.video_id,
                    "cache_dir": str(cache),
                    "source": signatures[v.video_id],
                    "params": params,
                    "export_dir": str(export_dir) if export_dir else None,
                },
            }
        )
    reused = len(records)
    for task, record in _run_pool(extract_task, tasks, workers, "prepare", quiet):
        records[task["video"].video_id] = record

    rows = _manifest_rows(videos, classes, records)
    warnings = _assign_splits(rows, videos, split_mode, test_fraction, val_fraction, seed)
    _write_manifest(out / "manifest.csv", rows)
    if export_dir:
        _write_frames_csv(out / "frames.csv", rows)
    meta = {
        "version": 1,
        "source": str(src.resolve()),
        "classes": classes,
        "frames": frames,
        "interval": interval,
        "sample_fps": sample_fps,
        "size": size,
        "pad": pad,
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "pairs": _read_pairs(src, classes),
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
    _write_json(out / "prepared.json", meta)
    return PrepareResult(
        out=out,
        classes=classes,
        rows=rows,
        frames=frames,
        reused=reused,
        seconds=time.perf_counter() - start,
        split_mode=split_mode,
        warnings=warnings,
        skipped=[str(p) for p in skipped],
    )


def _read_pairs(src: Path, classes: list[str]) -> list[list[str]]:
    """Time-reversed class pairs from `SRC/classes.json` (written by `vidclass synth`), if any.

    Training reports how well each method tells the members of a pair apart.
    """
    path = src / "classes.json" if src.is_dir() else src.with_name("classes.json")
    try:
        pairs = json.loads(path.read_text()).get("pairs", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [list(p) for p in pairs if len(p) == 2 and all(c in classes for c in p)]


def _remove_stale_temporaries(out: Path) -> None:
    """Temporary files of a killed earlier run (never valid output: renamed only when whole)."""
    for folder in (out, out / "cache", out / "frames"):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                if tmp.is_dir():
                    for f in tmp.iterdir():
                        f.unlink()
                    tmp.rmdir()
                else:
                    tmp.unlink(missing_ok=True)


def _read_sidecar(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _reusable(
    old: dict | None, signature: dict, params: dict, npy: Path, frames_dir: Path | None
) -> bool:
    if not old or old.get("source") != signature or old.get("params") != params:
        return False
    if old.get("error"):
        return True  # the same unchanged file would fail the same way
    return npy.exists() and (frames_dir is None or frames_dir.is_dir())


def _auto_frames(videos, sidecars, signatures, cache, interval, sample_fps, workers, quiet) -> int:
    """`--frames auto`: the longest video's sampled length (probing what isn't cached yet)."""
    infos: dict[str, dict | None] = {}
    tasks = []
    for v in videos:
        old = sidecars[v.video_id]
        if (
            old
            and old.get("source") == signatures[v.video_id]
            and (old.get("info") or old.get("error"))
        ):
            infos[v.video_id] = old.get("info")
        else:
            tasks.append({"video": v, "arg": str(v.path)})
    for task, result in _run_pool(probe_task, tasks, workers, "probe", quiet):
        infos[task["video"].video_id] = result["info"]
    lengths = [
        sampled_length(i["num_frames"], MAX_AUTO_FRAMES, interval, i["fps"], sample_fps)
        for i in infos.values()
        if i
    ]
    if not lengths:
        raise UserError("no readable video found, so --frames auto has nothing to measure")
    if max(lengths) >= MAX_AUTO_FRAMES:
        raise UserError(
            f"--frames auto gives {max(lengths)} frames or more; use a larger --interval or a "
            "smaller --fps, or a fixed --frames"
        )
    return max(lengths)


def _manifest_rows(videos: list[SourceVideo], classes: list[str], records: dict) -> list[dict]:
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
                "status": "failed" if rec.get("error") else "ok",
                "error": rec.get("error") or "",
            }
        )
    return rows


def _assign_splits(rows, videos, split_mode, test_fraction, val_fraction, seed) -> list[str]:
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


def _write_manifest(path: Path, rows: list[dict]) -> None:
    def write(fh):
        text = _csv_text(MANIFEST_COLUMNS, rows)
        fh.write(text.encode())

    write_bytes(path, write)


def _write_frames_csv(path: Path, rows: list[dict]) -> None:
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
    import io

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
