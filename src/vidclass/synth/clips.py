"""The embedded default dataset: procedurally rendered H.264 MP4s where frame order matters.

Classes come in time-reversed pairs (``open_door``/``close_door``, ``move_left``/``move_right``,
...): the reversed twin of a clip is the forward clip written backwards, frame for frame and
noise included, so inside a pair the frames are the same distribution once order is ignored.
A single-frame model therefore cannot beat chance inside a pair; a temporal model can reach
~100%. Two unpaired motions (``wave``, ``jump``) round it off.

``render_clip`` composes a scene (`scene.py`), one motion (`actions.py`), camera jitter and
noise into frames (reversed for the twin class) plus per-frame boxes;
``vidclass.video.writer.write_video`` encodes them to an MP4 atomically; ``generate`` fans
clips out to worker processes and writes ``metadata.csv`` and ``classes.json``
(``write_index``, shared with the long and multi-actor kinds).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidclass.atomic import write_text
from vidclass.data.splits import UCF101_GROUP_REGEX
from vidclass.errors import UserError
from vidclass.parallel import process_pool
from vidclass.progress import track
from vidclass.synth.actions import ACTIONS, MOTIONS, Motion
from vidclass.synth.labels import ACTION_CLASSES, BACKGROUND, CLASSES, PAIRS, TWIN
from vidclass.synth.scene import Scene, render_background, sample_scene, seeded_rng, vary_scene
from vidclass.video.writer import write_video

KINDS = ("clips",)
DURATION_S = (1.5, 4.0)  # clip length range: lengths must differ across videos
MIN_FRAMES = 8
CLIPS_PER_GROUP = 1  # one clip of every class per scene: many scenes, none tied to a class
SLACK = 0.25  # still stretch of up to this share of the motion before and after each action
# Clips per class by default (= scene groups; ~20% of them held out for test). Fewer scenes
# leave too few backgrounds to generalise from: early fusion on unseen scenes measured 93% with
# 25 and 97% with 40 (12 epochs), and 40 gives a finer test score (96 clips, not 60).
PER_CLASS = 40
GROUP_REGEX = UCF101_GROUP_REGEX  # captures the scene "gNN" from the file names written here

# --------------------------------------------------------------------------- clips


@dataclass
class Clip:
    """Rendered frames (T, H, W, 3) uint8 RGB and the actor's box per frame (T, 4) in pixels."""

    frames: np.ndarray
    boxes: np.ndarray


def num_frames_for(rng: np.random.Generator, fps: int) -> int:
    """A random clip length, so lengths (and speeds) differ across videos."""
    return max(MIN_FRAMES, round(rng.uniform(*DURATION_S) * fps))


def render_clip(
    label: str,
    scene: Scene,
    rng: np.random.Generator,
    fps: int,
    hold: tuple[int, int] = (0, 0),
    slack: float = 0.0,
) -> Clip:
    """Render one clip of `label`. Twin classes consume `rng` identically, so the same rng
    state gives an exactly time-reversed clip for the twin (noise and jitter included).

    `hold` = (before, after): extra frames in which the actor stands still in the first and
    last pose of the action, as between the actions of a long video. `slack` adds a random
    still stretch of up to that share of the motion on each side, as a trimmed clip of a real
    action has (and as a window sliding over a long video sees at an action's edges).
    `background` clips hold one pose of a random motion, and half of them cut to another
    pose once, as a long video does between two actions.
    """
    if label not in ACTIONS and label != BACKGROUND:
        raise UserError(f"unknown class {label!r}; known classes: {', '.join(CLASSES)}")
    if label == BACKGROUND:
        motion_name, reverse = str(rng.choice(sorted(MOTIONS))), False
    else:
        motion_name, reverse = ACTIONS[label]
    motion = MOTIONS[motion_name]
    steps = num_frames_for(rng, fps)
    background = render_background(scene, rng)
    m = scene.margin
    region = (float(m), float(m), float(scene.width), float(scene.height))
    params = motion.sample(rng, scene.look, region, steps)
    # The forward rendering is reversed for a twin class, so its holds swap sides here.
    before, after = (hold[1], hold[0]) if reverse else hold
    if slack > 0:  # drawn in the forward rendering: a twin stays the exact reverse
        limit = int(slack * steps) + 1
        before, after = before + int(rng.integers(0, limit)), after + int(rng.integers(0, limit))
    poses: list[tuple[Motion, dict[str, Any], float]]
    if label == BACKGROUND:
        pose = float(rng.choice([0.0, 1.0, rng.uniform(0.0, 1.0)]))
        poses = [(motion, params, pose)] * steps
        if rng.random() < 0.5:
            other = MOTIONS[str(rng.choice(sorted(MOTIONS)))]
            other_params = other.sample(rng, scene.look, region, steps)
            cut = int(rng.integers(1, steps))
            poses[cut:] = [(other, other_params, float(rng.choice([0.0, 1.0])))] * (steps - cut)
    else:
        times = np.clip((np.arange(steps + before + after) - before) / (steps - 1), 0.0, 1.0)
        poses = [(motion, params, float(t)) for t in times]
    total = len(poses)

    # camera jitter: a bounded random walk, sub-pixel
    amp = rng.uniform(0.0, min(1.5, m - 0.5))
    walk = np.cumsum(rng.normal(0, 0.35, (total, 2)), axis=0)
    jitter = np.clip(walk, -amp, amp)
    sigma = float(rng.uniform(1.0, 3.0))

    h, w = scene.height, scene.width
    frames = np.empty((total, h, w, 3), np.uint8)
    boxes = np.empty((total, 4), np.float32)
    for i, (mover, p, t) in enumerate(poses):
        canvas = background.copy()
        box = mover.draw(canvas, p, scene.look, t)
        ox, oy = m + jitter[i, 0], m + jitter[i, 1]
        shift = np.array([[1, 0, -ox], [0, 1, -oy]], np.float32)
        view = cv2.warpAffine(canvas, shift, (w, h), flags=cv2.INTER_LINEAR)
        noise = rng.standard_normal((h, w, 3), dtype=np.float32) * sigma
        frames[i] = np.clip(view + noise + 0.5, 0, 255).astype(np.uint8)
        boxes[i] = np.clip([box[0] - ox, box[1] - oy, box[2] - ox, box[3] - oy], 0, [w, h, w, h])
    if reverse:
        frames, boxes = frames[::-1].copy(), boxes[::-1].copy()
    return Clip(frames, boxes)


# --------------------------------------------------------------------------- dataset


def video_name(label: str, group: int, clip: int) -> str:
    """UCF101-style file name; GROUP_REGEX captures the scene 'gNN' from it."""
    return f"v_{label}_g{group:02d}_c{clip:02d}.mp4"


def group_sizes(per_class: int) -> list[int]:
    """Clips per group: about CLIPS_PER_GROUP each, at least two groups when possible."""
    n = max(min(2, per_class), math.ceil(per_class / CLIPS_PER_GROUP))
    return [per_class // n + (1 if g < per_class % n else 0) for g in range(n)]


@dataclass(frozen=True)
class Job:
    """One clip to render: everything a worker needs, and nothing else."""

    out: str
    label: str
    group: int  # 1-based
    clip: int  # 1-based within the group
    seed: int
    width: int
    height: int
    fps: int

    @property
    def relpath(self) -> str:
        return f"{self.label}/{video_name(self.label, self.group, self.clip)}"


def render_job(job: Job) -> dict[str, Any]:
    """Render and write one clip; returns its metadata row. Runs in a worker process."""
    cv2.setNumThreads(1)
    # A scene is shared by group gNN of *every* class, so appearance says nothing about the
    # class: a model must learn the motion (a scene per class and group lets it memorise
    # backgrounds, and held-out groups then score at chance).
    scene = sample_scene(seeded_rng(job.seed, "scene", job.group), job.width, job.height)
    rng = seeded_rng(job.seed, job.label, job.group, job.clip)
    scene = vary_scene(scene, rng)
    clip = render_clip(job.label, scene, rng, job.fps, slack=SLACK)
    write_video(Path(job.out) / job.relpath, clip.frames, job.fps)
    return {
        "path": job.relpath,
        "label": job.label,
        "group": f"g{job.group:02d}",
        "pair": TWIN.get(job.label, ""),
        "num_frames": len(clip.frames),
        "fps": job.fps,
        "seed": job.seed,
    }


def write_index(out: Path, rows: list[dict[str, Any]], classes: list[str]) -> None:
    """`metadata.csv` (one row per clip, by path) and `classes.json` (classes and pairs): what
    `prepare` reads beside the class folders."""
    buffer = io.StringIO()
    fields = ["path", "label", "group", "pair", "num_frames", "fps", "seed"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda r: r["path"]))
    write_text(out / "metadata.csv", buffer.getvalue())
    write_text(
        out / "classes.json",
        json.dumps({"classes": classes, "pairs": [list(p) for p in PAIRS]}, indent=2) + "\n",
    )


def check_out(out: Path) -> None:
    """Refuse to scribble into a folder that is not empty and not an earlier synth output."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; pass a folder for --out")
    if out.is_dir() and any(out.iterdir()) and not (out / "classes.json").exists():
        raise UserError(
            f"{out} is not empty and holds no classes.json from an earlier `vidclass synth`; "
            "choose a new or empty --out folder"
        )


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Drop videos of an earlier, larger run so the folder matches metadata.csv."""
    for label in CLASSES:
        for path in (out / label).glob(f"v_{label}_g*_c*.mp4"):
            if f"{label}/{path.name}" not in keep:
                path.unlink()


def generate(
    out: Path,
    per_class: int = PER_CLASS,
    seed: int = 0,
    size: tuple[int, int] = (160, 120),
    fps: int = 15,
    workers: int = 2,
    quiet: bool = False,
    kind: str = "clips",
    background: bool = True,
) -> dict[str, Any]:
    """Render the default dataset into `out`: <class>/v_<class>_gGG_cCC.mp4, metadata.csv
    (path,label,group,pair,num_frames,fps,seed) and classes.json ({"classes", "pairs"}).

    kind: "clips" (one action per video); long videos with several actions are written by
    `vidclass.synth.long.generate_long`, on the same scene/motion renderers.
    `background` adds the "no action" class (an actor holding still), which temporal
    localization needs; the action clips are the same with or without it.
    The same seed gives byte-identical files whatever `workers` is.
    Returns {"num_videos", "classes", "seconds", "out"}.
    """
    start = time.perf_counter()
    if kind not in KINDS:
        raise UserError(f"unknown kind {kind!r}; available: {', '.join(KINDS)}")
    if per_class < 1:
        raise UserError(f"per_class must be at least 1, got {per_class}")
    width, height = (int(v) for v in size)
    if width < 32 or height < 32 or width % 2 or height % 2:
        raise UserError(f"size must be even and at least 32x32 (H.264), got {width}x{height}")
    if fps < 1:
        raise UserError(f"fps must be at least 1, got {fps}")
    if workers < 1:
        raise UserError(f"workers must be at least 1, got {workers}")
    out = Path(out)
    check_out(out)
    out.mkdir(parents=True, exist_ok=True)

    classes = CLASSES if background else ACTION_CLASSES
    jobs = [
        Job(str(out), label, g + 1, c + 1, seed, width, height, fps)
        for label in classes
        for g, n in enumerate(group_sizes(per_class))
        for c in range(n)
    ]
    rows: list[dict[str, Any]] = []
    if workers == 1:
        for job in track(jobs, description="synth", quiet=quiet):
            rows.append(render_job(job))
    else:
        with process_pool(workers) as pool:
            futures = [pool.submit(render_job, job) for job in jobs]
            for future in track(
                as_completed(futures), total=len(futures), description="synth", quiet=quiet
            ):
                rows.append(future.result())
    rows.sort(key=lambda r: r["path"])
    _remove_stale(out, {r["path"] for r in rows})

    write_index(out, rows, classes)
    return {
        "num_videos": len(rows),
        "classes": list(classes),
        "seconds": time.perf_counter() - start,
        "out": str(out),
    }
