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

from vidclass.data.synthetic import (
    ACTION_CLASSES,
    _rng,
    render_clip,
    sample_scene,
    write_video,
)
from vidclass.errors import UserError
from vidclass.progress import track

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
    rng = _rng(seed, "long", index)
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
