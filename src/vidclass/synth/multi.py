"""Multi-actor synthetic scenes: 2-4 figures, each doing its own actions, with per-frame truth.

`vidclass synth --kind multi` writes `out/multi_000.mp4` + `out/multi_000.json`. A static
camera looks at one textured background; every actor ("person") has its own look and its own
timeline: it stands still for a while (ground-truth label `background`: no action), performs
an action exactly as the training clips render it (same motions, same speeds), stands still
again, and so on. Each action starts where the previous one ended (the motion's parameters are
sampled in a region moved so that the actor's first pose sits on its last position), so an
actor wanders across the scene and actors cross paths; regions overlap.

Actors are drawn inside a region of half the canvas in each dimension: at the default 320x240
they have the pixel size of the 160x120 training clips, so a crop around an actor looks like a
training clip.

Ground truth (`multi_000.json`):

* `frames`: one entry per frame, `{"index", "t", "objects": [{"track_id", "box", "label"}]}`,
  `box` = `[x1, y1, x2, y2]` in pixels (clipped to the frame), `label` an action class or
  `"background"` when the actor holds still. Every actor is in every frame.
* `tracks`: per actor, `{"track_id", "segments": [{"label", "t_start", "t_end"}]}` (actions
  only), the shape of the detector's output.

AVA-style scoring (`vidclass evaluate-detection`) counts action labels only: a box labelled
`background` is not an action to detect.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from vidclass.atomic import write_text
from vidclass.errors import UserError
from vidclass.progress import track
from vidclass.synth.actions import ACTIONS, MOTIONS
from vidclass.synth.clips import num_frames_for
from vidclass.synth.labels import ACTION_CLASSES, BACKGROUND, CLASSES, PAIRS
from vidclass.synth.scene import (
    Look,
    Region,
    color_distance,
    random_color,
    render_background,
    sample_scene,
    seeded_rng,
)
from vidclass.video.tubes import tube_clip
from vidclass.video.writer import write_video

ACTORS = (2, 4)  # people per scene
FIRST_IDLE_S = (0.3, 3.0)  # actors start their first action at different moments
IDLE_S = (1.0, 3.0)  # still stretches between actions
NO_GAP = 0.2  # share of actions that follow the previous one at once
DEFAULT_SIZE = (320, 240)


@dataclass
class _Step:
    """One stretch of an actor's timeline: a motion drawn at given normalised times."""

    motion: str
    params: dict[str, Any]
    times: np.ndarray  # (n,) t in [0, 1] per frame
    label: str  # action class, or BACKGROUND for a hold


def sample_look(
    rng: np.random.Generator,
    colors: tuple[tuple[int, int, int], ...],
    others: list[Look] = (),  # type: ignore[assignment]
) -> Look:
    """An actor's look that stands out from the background colours (as `sample_scene` does)
    and, less strictly, from the other actors, so that people are told apart."""
    mean = np.mean(colors, axis=0)
    candidates = [random_color(rng) for _ in range(24)]

    def contrast(f) -> float:
        background = min(color_distance(f, c) for c in (*colors[:2], mean))
        people = min((color_distance(f, o.fill) for o in others), default=background)
        return min(background, 1.5 * people)

    fill = max(candidates, key=contrast)
    return Look(
        shape=str(rng.choice(["rect", "circle", "triangle", "diamond", "star", "hexagon"])),
        fill=fill,
        edge=tuple(int(v * 0.45) for v in fill),  # type: ignore[arg-type]
        accent=tuple(255 - v for v in fill),  # type: ignore[arg-type]
        size=float(rng.uniform(1.4, 2.0)),
    )


def _extent(motion: str, params: dict, look: Look, shape: tuple[int, int]) -> np.ndarray:
    """Boxes (9, 4) of the motion at t = 0, 1/8, ..., 1 (drawn on a scratch canvas)."""
    scratch = np.zeros((*shape, 3), np.uint8)
    return np.array([MOTIONS[motion].draw(scratch, params, look, t) for t in np.linspace(0, 1, 9)])


def _place(
    rng: np.random.Generator,
    motion: str,
    look: Look,
    region: Region,
    steps: int,
    anchor: np.ndarray | None,
    first_t: float,
    size: tuple[int, int],
) -> tuple[dict[str, Any], float]:
    """Sample a motion's parameters in `region`, moved so that its first pose is centred on
    `anchor` (the actor's last position) and its whole path stays inside the frame.

    Every motion places itself as region origin + offsets, so re-sampling from the same seed
    in a shifted region shifts the motion and changes nothing else.
    """
    w, h = size
    seed = int(rng.integers(2**63))
    params = MOTIONS[motion].sample(np.random.default_rng(seed), look, region, steps)
    boxes = _extent(motion, params, look, (h, w))
    union = np.array([*boxes[:, :2].min(0), *boxes[:, 2:].max(0)])
    first = boxes[0] if first_t == 0.0 else boxes[-1]
    shift = np.zeros(2)
    if anchor is not None:
        shift = anchor - (first[:2] + first[2:]) / 2
    wanted = shift.copy()
    for k, limit in ((0, w), (1, h)):  # keep the whole path inside the frame
        lo, hi = -union[k], limit - union[k + 2]
        shift[k] = (lo + hi) / 2 if lo > hi else float(np.clip(shift[k], lo, hi))
    moved = (region[0] + shift[0], region[1] + shift[1], region[2], region[3])
    params = MOTIONS[motion].sample(np.random.default_rng(seed), look, moved, steps)
    return params, float(np.hypot(*(shift - wanted)))


def _timeline(
    rng: np.random.Generator,
    look: Look,
    origin: tuple[float, float],
    region_size: tuple[float, float],
    total: int,
    fps: int,
    size: tuple[int, int],
) -> list[_Step]:
    """One actor's steps, holds and actions, covering exactly `total` frames."""
    steps: list[_Step] = []
    count, anchor, previous = 0, None, None
    region = (origin[0], origin[1], *region_size)
    while count < total:
        n = num_frames_for(rng, fps)
        # Of a few random actions, the one that can start where the actor stands (near a
        # border, some motions have no room and would have to jump).
        options = []
        for label in rng.choice([c for c in ACTION_CLASSES if c != previous], 3, replace=False):
            motion, reverse = ACTIONS[str(label)]
            # The twin class is the forward rendering played backwards: first pose at t = 1.
            first_t = 1.0 if reverse else 0.0
            params, jump = _place(rng, motion, look, region, n, anchor, first_t, size)
            options.append((jump, str(label), params))
        _, label, params = min(options, key=lambda o: o[0])
        previous = label
        motion, reverse = ACTIONS[label]
        times = np.clip(np.arange(n) / (n - 1), 0.0, 1.0)
        times = times[::-1].copy() if reverse else times
        if not steps:
            idle = round(rng.uniform(*FIRST_IDLE_S) * fps)
        else:
            idle = 0 if rng.random() < NO_GAP else round(rng.uniform(*IDLE_S) * fps)
        if idle:
            steps.append(_Step(motion, params, np.full(idle, times[0]), BACKGROUND))
        steps.append(_Step(motion, params, times, label))
        count += idle + n
        last = _extent(motion, params, look, (size[1], size[0]))[-1 if times[-1] == 1.0 else 0]
        anchor = (last[:2] + last[2:]) / 2
    excess = count - total
    while excess > 0:  # cut the end: the video stops mid-action or mid-hold
        cut = min(excess, len(steps[-1].times))
        steps[-1].times = steps[-1].times[: len(steps[-1].times) - cut]
        excess -= cut
        if not len(steps[-1].times):
            steps.pop()
    return steps


def render_multi(
    seed: int,
    index: int,
    size: tuple[int, int] = DEFAULT_SIZE,
    fps: int = 15,
    seconds: float = 30.0,
    actors: tuple[int, int] = ACTORS,
) -> tuple[np.ndarray, dict]:
    """Frames `(N, H, W, 3)` uint8 and the ground truth (see the module docstring)."""
    w, h = size
    rng = seeded_rng(seed, "multi", index)
    scene = replace(sample_scene(rng, w, h), margin=0)
    if scene.texture == "blobs":  # random per render: the background must stay put
        scene = replace(scene, texture="stripes")
    background = render_background(scene, rng)
    total = max(2, round(seconds * fps))
    n_actors = int(rng.integers(actors[0], actors[1] + 1))
    rw, rh = w / 2, h / 2
    # start in distinct quadrants, shifted so that neighbouring regions overlap
    quadrants = rng.permutation(4)[:n_actors]
    looks, timelines = [], []
    for q in quadrants:
        ox = np.clip((q % 2) * rw + rng.uniform(-0.35, 0.35) * rw, 0, w - rw)
        oy = np.clip((q // 2) * rh + rng.uniform(-0.35, 0.35) * rh, 0, h - rh)
        look = sample_look(rng, scene.colors, looks)
        looks.append(look)
        timelines.append(_timeline(rng, look, (ox, oy), (rw, rh), total, fps, size))

    truth_frames: list[dict] = [
        {"index": i, "t": round(i / fps, 4), "objects": []} for i in range(total)
    ]
    frames = np.repeat(background[None], total, axis=0)
    for track_id, (look, steps) in enumerate(zip(looks, timelines, strict=True), start=1):
        i = 0
        for step in steps:
            for t in step.times:
                box = MOTIONS[step.motion].draw(frames[i], step.params, look, float(t))
                x1, y1, x2, y2 = np.clip(box, 0, [w, h, w, h])
                truth_frames[i]["objects"].append(
                    {
                        "track_id": track_id,
                        "box": [round(float(v), 2) for v in (x1, y1, x2, y2)],
                        "label": step.label,
                    }
                )
                i += 1
    sigma = float(rng.uniform(1.0, 3.0))
    for i in range(total):
        noise = rng.standard_normal((h, w, 3), dtype=np.float32) * sigma
        frames[i] = np.clip(frames[i] + noise + 0.5, 0, 255).astype(np.uint8)
    truth = {
        "fps": fps,
        "width": w,
        "height": h,
        "duration_s": round(total / fps, 4),
        "num_frames": total,
        "tracks": [
            {"track_id": k, "segments": action_segments(steps, fps)}
            for k, steps in enumerate(timelines, start=1)
        ],
        "frames": truth_frames,
    }
    return frames, truth


def action_segments(steps: list[_Step], fps: int) -> list[dict]:
    """`[{"label", "t_start", "t_end"}]` of an actor's actions (holds left out)."""
    segments, start = [], 0
    for step in steps:
        end = start + len(step.times)
        if step.label != BACKGROUND:
            segments.append(
                {
                    "label": step.label,
                    "t_start": round(start / fps, 4),
                    "t_end": round(end / fps, 4),
                }
            )
        start = end
    return segments


def generate_multi(
    out: str | Path,
    count: int = 1,
    seed: int = 0,
    size: tuple[int, int] = DEFAULT_SIZE,
    fps: int = 15,
    seconds: float = 30.0,
    quiet: bool = False,
) -> dict:
    """Write `count` multi-actor scenes (`multi_NNN.mp4` + `multi_NNN.json`) into `out`."""
    if count < 1 or seconds <= 0:
        raise UserError("--count must be at least 1 and --seconds positive")
    w, h = size
    if w < 64 or h < 48 or w % 2 or h % 2:
        raise UserError(f"--size must be even and at least 64x48 for multi scenes, got {w}x{h}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    written = []
    for i in track(range(count), description="synth multi", quiet=quiet):
        frames, truth = render_multi(seed, i, size, fps, seconds)
        video = out / f"multi_{i:03d}.mp4"
        write_video(video, frames, fps, gop=fps)
        truth = {"video": video.name, **truth}
        (out / f"multi_{i:03d}.json").write_text(json.dumps(truth, separators=(",", ":")))
        written.append(str(video))
    return {
        "num_videos": count,
        "videos": written,
        "classes": ACTION_CLASSES,
        "out": str(out),
        "seconds": time.perf_counter() - start,
    }


# ----------------------------------------------------------------------------- tube clips

TUBE_FPS = 8  # frames per second of the tube clips (16 frames = a 2 s window)
TUBE_FRAMES = 16
BACKGROUND_KEEP = 0.3  # share of the (many) still windows kept as `background` clips


def generate_tubes(
    out: str | Path,
    count: int = 40,
    seed: int = 0,
    size: tuple[int, int] = DEFAULT_SIZE,
    seconds: float = 30.0,
    every_s: float = 1.0,
    fps: int = TUBE_FPS,
    frames: int = TUBE_FRAMES,
    clip_size: int = 112,
    quiet: bool = False,
) -> dict:
    """Training clips for the per-person action model, cut from multi-actor scenes exactly as
    `vidclass detect` cuts its tubes: every `every_s` seconds, per actor, a window of `frames`
    frames at `fps` cropped around the actor's path (`vidclass.video.tubes.tube_clip`), labelled with the
    actor's ground truth at the window's centre. Written like `vidclass synth` clips
    (`<label>/v_<label>_gNN_cNNN.mp4`, one scene per group, `classes.json`), so `vidclass
    prepare` + `train` apply unchanged; the model then sees what detection shows it: partial
    actions at window edges, still people, neighbours walking through the crop.
    """
    if count < 1 or seconds <= 0 or every_s <= 0:
        raise UserError("--count must be at least 1 and --seconds positive")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    written: dict[str, int] = dict.fromkeys(CLASSES, 0)
    for i in track(range(count), description="synth tubes", quiet=quiet):
        video, truth = render_multi(seed, i, size, fps, seconds)
        rng = seeded_rng(seed, "tubes", i)
        n = 0
        for first in range(0, len(video) - frames + 1, max(1, round(every_s * fps))):
            entries = truth["frames"][first : first + frames]
            for tid in (o["track_id"] for o in entries[0]["objects"]):
                objs = [next(o for o in e["objects"] if o["track_id"] == tid) for e in entries]
                label = objs[frames // 2]["label"]
                if label == BACKGROUND and rng.random() > BACKGROUND_KEEP:
                    continue
                boxes = np.array([o["box"] for o in objs], np.float32)
                clip = tube_clip(list(video[first : first + frames]), boxes, clip_size)
                n += 1
                name = f"v_{label}_g{i + 1:02d}_c{n:03d}.mp4"
                write_video(out / label / name, np.stack(clip), fps)
                written[label] += 1
    write_text(
        out / "classes.json",
        json.dumps({"classes": CLASSES, "pairs": [list(p) for p in PAIRS]}, indent=2) + "\n",
    )
    return {
        "num_videos": sum(written.values()),
        "per_class": written,
        "classes": CLASSES,
        "out": str(out),
        "seconds": time.perf_counter() - start,
    }
