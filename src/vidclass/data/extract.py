"""The per-video work of `prepare`: probe, sample, decode, crop, resize and cache each video
(and export its frames as JPEGs), in worker processes, reusing what the cache already holds.

Each video's work depends on that video and the options only, so any subset of a source's
videos can be extracted on its own and the results put together afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import as_completed
from pathlib import Path

import av
import cv2
import numpy as np

from vidclass.atomic import write_bytes
from vidclass.data.cache import reusable, write_json
from vidclass.data.crop import DEFAULT_BOX_SOURCE, FIT, crop_clip, source_boxes
from vidclass.data.sampling import sample_indices, sampled_length
from vidclass.data.sources import SourceVideo
from vidclass.errors import UserError, VideoError
from vidclass.parallel import process_pool
from vidclass.progress import make_progress
from vidclass.video.decode import decode_indices
from vidclass.video.probe import VideoInfo, open_container, read_info

MAX_AUTO_FRAMES = 1024


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
    """Worker: sample, decode, crop, resize and cache one video; always returns a sidecar
    record (with the crop's status and its box per sampled frame, in source pixels)."""
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
            mode = params.get("crop", "center")  # absent: prepared before --crop existed
            frames, seen = decode_indices(p, container, indices, params["size"], FIT[mode])
        if len(frames) < len(indices) and seen < info.num_frames / 2:
            raise VideoError(
                p,
                f"truncated: the stream ends after {seen} of the {info.num_frames} frames "
                "its header announces; re-download or re-encode it",
            )
        if len(frames) < len(indices):
            info = VideoInfo(**{**info.to_dict(), "num_frames": seen})
        crop = crop_clip(
            frames, mode, params["size"], params.get("person_boxes", DEFAULT_BOX_SOURCE)
        )
        boxes = source_boxes(crop, frames.shape[1:3], info.width, info.height)
        frames = crop.frames
        record["crop"] = {"status": crop.status, "boxes": boxes}
        npy = cache / f"{task['video_id']}.npy"
        write_bytes(npy, lambda fh: np.save(fh, frames))
        if task["export_dir"]:
            _export_jpegs(frames, Path(task["export_dir"]) / task["video_id"])
        record.update(info=info.to_dict(), sampled_frames=int(len(frames)))
    except VideoError as exc:
        record["error"] = exc.reason
    except (av.error.FFmpegError, OSError, ValueError, RuntimeError) as exc:
        record["error"] = f"unreadable ({type(exc).__name__}: {exc})"
    write_json(cache / f"{task['video_id']}.json", record)
    return record


def _run_pool(
    fn: Callable[..., dict], tasks: list[dict], workers: int, description: str, quiet: bool
) -> Iterator[tuple[dict, dict]]:
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


def auto_frames(
    videos: list[SourceVideo],
    sidecars: dict[str, dict | None],
    signatures: dict[str, dict],
    interval: int | None,
    sample_fps: float | None,
    workers: int,
    quiet: bool,
) -> int:
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


def extract_all(
    videos: list[SourceVideo],
    cache: Path,
    params: dict,
    export_dir: Path | None,
    sidecars: dict[str, dict | None],
    signatures: dict[str, dict],
    workers: int,
    quiet: bool,
) -> tuple[dict[str, dict], int]:
    """(the sidecar record of each video by id, how many were reused): a video cached from the
    same file with the same options is reused, the others are extracted now."""
    records: dict[str, dict] = {}
    tasks = []
    for v in videos:
        old = sidecars[v.video_id]
        if reusable(
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
    return records, reused
