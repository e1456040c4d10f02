"""Long synthetic videos: several actions in sequence with idle stretches, and the truth.

`vidclass synth --kind long` writes `out/long_000.mp4` + `out/long_000.json` (`segments`:
`[{"label", "t_start", "t_end"}]`, times in seconds). One scene per video; an action segment
is one rendition of a class exactly as the training clips render it (so a model sees the
motions at the speed it learned them: actions last 1.5 to 4 s; `repeats` strings several
renditions into longer actions); before an action the actor mostly stands still in its first
pose for a while (ground truth: no action, what the `background` training clips show), and
sometimes the action follows the previous one with no gap. Used to measure prediction flicker and temporal localization.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from vidclass.errors import UserError
from vidclass.progress import track
from vidclass.synth.clips import check_out, render_clip, write_index
from vidclass.synth.labels import ACTION_CLASSES, BACKGROUND, CLASSES, TWIN
from vidclass.synth.scene import sample_scene, seeded_rng
from vidclass.video.writer import write_video

IDLE_S = (1.5, 4.0)  # still stretches between actions
# Renditions per action segment. One by default: back-to-back renditions make the actor
# jump back to the start pose at each seam, a discontinuity that no trimmed training clip
# shows (measured: slow_fusion named 26 of 29 single-rendition actions right, 11 of 40
# repeated ones). (1, 3) gives the longer actions the flicker test was measured on.
REPEATS = (1, 1)
NO_GAP = 0.25  # share of actions that follow the previous one with no idle stretch


def render_long(
    seed: int,
    index: int,
    size: tuple[int, int] = (160, 120),
    fps: int = 15,
    seconds: float = 60.0,
    repeats: tuple[int, int] = REPEATS,
) -> tuple[np.ndarray, list[dict]]:
    """Frames `(N, H, W, 3)` uint8 and the ground-truth action segments of one long video."""
    w, h = size
    rng = seeded_rng(seed, "long", index)
    scene = sample_scene(rng, w, h)
    if scene.texture == "blobs":  # random per render: the background must stay put
        scene = replace(scene, texture="stripes")
    frames: list[np.ndarray] = []
    segments: list[dict] = []
    previous = None
    while len(frames) < seconds * fps:
        label = str(rng.choice([c for c in ACTION_CLASSES if c != previous]))
        previous = label
        count = int(rng.integers(repeats[0], repeats[1] + 1))
        idle = 0 if segments and rng.random() < NO_GAP else round(rng.uniform(*IDLE_S) * fps)
        start = len(frames) + idle
        for r in range(count):
            frames.extend(
                render_clip(label, scene, rng, fps, hold=(idle if r == 0 else 0, 0)).frames
            )
        segments.append(
            {"label": label, "t_start": round(start / fps, 4), "t_end": round(len(frames) / fps, 4)}
        )
    still = frames[-1].astype(np.int16)
    for _ in range(round(IDLE_S[0] * fps)):  # end at rest, like a real recording
        frames.append(
            np.clip(still + rng.integers(-2, 3, still.shape, dtype=np.int16), 0, 255).astype(
                np.uint8
            )
        )
    return np.stack(frames), segments


def generate_long(
    out: str | Path,
    count: int = 1,
    seed: int = 0,
    size: tuple[int, int] = (160, 120),
    fps: int = 15,
    seconds: float = 60.0,
    quiet: bool = False,
    repeats: tuple[int, int] = REPEATS,
) -> dict:
    """Write `count` long videos with their ground truth into `out`."""
    if count < 1 or seconds <= 0:
        raise UserError("--count must be at least 1 and --seconds positive")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    written = []
    for i in track(range(count), description="synth long", quiet=quiet):
        frames, segments = render_long(seed, i, size, fps, seconds, repeats)
        video = out / f"long_{i:03d}.mp4"
        write_video(video, frames, fps)
        truth = {
            "video": video.name,
            "fps": fps,
            "duration_s": round(len(frames) / fps, 4),
            "segments": segments,
        }
        (out / f"long_{i:03d}.json").write_text(json.dumps(truth, indent=1))
        written.append(str(video))
    return {
        "num_videos": count,
        "videos": written,
        "classes": ACTION_CLASSES,
        "out": str(out),
        "seconds": time.perf_counter() - start,
    }


def frame_labels(segments: list[dict], times: np.ndarray) -> list[str | None]:
    """Ground-truth label at each time (None where no action happens)."""
    labels: list[str | None] = [None] * len(times)
    for seg in segments:
        for i, t in enumerate(times):
            if seg["t_start"] <= t < seg["t_end"]:
                labels[i] = seg["label"]
    return labels


WINDOW_S = (1.2, 3.6)  # durations of the training windows cut from long videos
ACTION_SHARE = 0.6  # a window is an action's when that action fills this share of it
BACKGROUND_SHARE = 0.1  # ... and background when no action fills more than this


def window_label(segments: list[dict], t0: float, t1: float) -> str | None:
    """The training label of the window [t0, t1] of a long video: the action that fills most
    of it, `background` when actions barely touch it, None (skip) when it is ambiguous."""
    share = {}
    for s in segments:
        inter = max(0.0, min(t1, s["t_end"]) - max(t0, s["t_start"]))
        share[s["label"]] = share.get(s["label"], 0.0) + inter / (t1 - t0)
    best = max(share, key=share.get) if share else None
    if best is not None and share[best] >= ACTION_SHARE:
        return best
    if sum(share.values()) <= BACKGROUND_SHARE:
        return BACKGROUND
    return None


def generate_windows(
    out: str | Path,
    count: int = 40,
    per_video: int = 30,
    seed: int = 0,
    size: tuple[int, int] = (160, 120),
    fps: int = 15,
    seconds: float = 60.0,
    quiet: bool = False,
) -> dict:
    """Training clips cut from long videos the way `localize` slides its windows over them:
    random windows of 1.2-3.6 s, labelled by the action filling most of them (or
    `background`), as the classification stage of S-CNN is trained. A clip model trained on
    these has seen action edges, idle stretches and partial actions, which trimmed clips never
    show. Written like `vidclass synth` (class folders, `gNN` = the long video, so a split
    never puts windows of one video on both sides), with `classes.json` and `metadata.csv`.
    """
    if count < 1 or per_video < 1:
        raise UserError("--count and --per-video must be at least 1")
    out = Path(out)
    check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = []
    for i in track(range(count), description="synth windows", quiet=quiet):
        frames, segments = render_long(seed, 10_000 + i, size, fps, seconds)
        rng = seeded_rng(seed, "windows", i)
        duration = len(frames) / fps
        kept = 0
        for _ in range(per_video * 4):
            if kept == per_video:
                break
            length = float(rng.uniform(*WINDOW_S))
            t0 = float(rng.uniform(0.0, duration - length))
            label = window_label(segments, t0, t0 + length)
            if label is None:
                continue
            kept += 1
            a, b = round(t0 * fps), round((t0 + length) * fps)
            rel = f"{label}/v_{label}_g{i + 1:02d}_c{kept:02d}.mp4"
            (out / label).mkdir(exist_ok=True)
            write_video(out / rel, frames[a:b], fps)
            rows.append(
                {
                    "path": rel,
                    "label": label,
                    "group": f"g{i + 1:02d}",
                    "pair": TWIN.get(label, ""),
                    "num_frames": b - a,
                    "fps": fps,
                    "seed": seed,
                }
            )
    write_index(out, rows, CLASSES)
    return {
        "num_videos": len(rows),
        "classes": CLASSES,
        "out": str(out),
        "seconds": time.perf_counter() - start,
    }
