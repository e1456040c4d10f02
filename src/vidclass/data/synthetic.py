"""The embedded default dataset: procedurally rendered H.264 MP4s where frame order matters.

Classes come in time-reversed pairs (``open_door``/``close_door``, ``move_left``/``move_right``,
...): the reversed twin of a clip is the forward clip written backwards, frame for frame and
noise included, so inside a pair the frames are the same distribution once order is ignored.
A single-frame model therefore cannot beat chance inside a pair; a temporal model can reach
~100%. Two unpaired motions (``wave``, ``jump``) round it off.

Layout of the code, so later kinds (long videos with several actions, multi-actor scenes) can
reuse the parts:

* a *scene* (background texture, palette, actor look) is sampled per group number, shared by
  that group of every class, then varied slightly per clip (``sample_scene`` / ``vary_scene``);
* a *motion* is a pair of functions: ``sample(rng, look, region, steps)`` draws its random
  parameters inside a region of the canvas, and ``draw(canvas, params, t)`` draws the actor at
  normalised time ``t`` in [0, 1] and returns its bounding box. Motions know nothing of files,
  noise or camera jitter;
* ``render_clip`` composes a scene, one motion, camera jitter and noise into frames (reversed
  for the twin class) plus per-frame boxes;
* ``vidclass.video.writer.write_video`` encodes frames to an MP4 atomically; ``generate`` fans
  clips out to worker processes and writes ``metadata.csv`` and ``classes.json``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidclass.data.splits import UCF101_GROUP_REGEX
from vidclass.errors import UserError
from vidclass.parallel import process_pool
from vidclass.progress import track
from vidclass.video.writer import write_video

# --------------------------------------------------------------------------- classes

PAIRS: list[tuple[str, str]] = [
    ("open_door", "close_door"),
    ("move_left", "move_right"),
    ("rise", "fall"),
    ("grow", "shrink"),
    ("rotate_cw", "rotate_ccw"),
]
UNPAIRED: list[str] = ["wave", "jump"]
ACTION_CLASSES: list[str] = [name for pair in PAIRS for name in pair] + UNPAIRED
# "No action": the actor holds still in some pose of a random motion. It lets a clip model
# say that nothing happens, which temporal localization needs between actions.
BACKGROUND = "background"
CLASSES: list[str] = [*ACTION_CLASSES, BACKGROUND]

# label -> (motion renderer name, whether the rendered frames are written in reverse order).
# The forward motion of each pair is rendered; its twin is that rendering played backwards.
ACTIONS: dict[str, tuple[str, bool]] = {
    "open_door": ("door", False),
    "close_door": ("door", True),
    "move_right": ("slide", False),
    "move_left": ("slide", True),
    "rise": ("rise", False),
    "fall": ("rise", True),
    "grow": ("grow", False),
    "shrink": ("grow", True),
    "rotate_cw": ("rotate", False),
    "rotate_ccw": ("rotate", True),
    "wave": ("wave", False),
    "jump": ("jump", False),
}
TWIN: dict[str, str] = {a: b for a, b in PAIRS} | {b: a for a, b in PAIRS}

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

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in canvas pixels
Region = tuple[float, float, float, float]  # x, y, width, height of the actor's area

# --------------------------------------------------------------------------- scenes


@dataclass(frozen=True)
class Look:
    """How an actor looks: shared by the clips of a group so a group is one 'person'."""

    shape: str
    fill: tuple[int, int, int]
    edge: tuple[int, int, int]
    accent: tuple[int, int, int]
    size: float  # multiplier on the motion's nominal size


@dataclass(frozen=True)
class Scene:
    """A group's background and actor look; clips of one group vary it only slightly."""

    width: int
    height: int
    margin: int  # extra canvas border that camera jitter can reveal
    texture: str
    colors: tuple[tuple[int, int, int], ...]
    angle: float  # texture orientation, radians
    period: float  # texture scale, pixels
    phase: float
    look: Look

    @property
    def canvas_size(self) -> tuple[int, int]:
        return self.width + 2 * self.margin, self.height + 2 * self.margin


TEXTURES = ("gradient", "stripes", "checker", "blobs")
# Background colours are pulled this far towards their mean (1 = full contrast). Faint textures
# keep the actor the strongest thing in the frame, so nets trained from scratch on a few hundred
# clips learn its motion rather than the backgrounds of the training scenes (measured with
# early fusion on unseen scenes: 85% at full contrast, 93% at 0.4).
TEXTURE_CONTRAST = 0.4
SHAPES = ("rect", "circle", "triangle", "diamond", "star", "hexagon")


def _color(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))  # type: ignore[return-value]


def _distance(a: Sequence[int], b: Sequence[int]) -> float:
    return float(np.linalg.norm(np.subtract(a, b, dtype=float)))


def sample_scene(rng: np.random.Generator, width: int, height: int) -> Scene:
    """Draw a group's scene: a textured background and an actor that stands out from it."""
    colors = tuple(_color(rng) for _ in range(3))
    mean = np.mean(colors, axis=0)
    # keep the actor visible: the most distinct of a few random colours
    candidates = [_color(rng) for _ in range(12)]
    fill = max(candidates, key=lambda f: min(_distance(f, c) for c in (*colors[:2], mean)))
    edge = tuple(int(v * 0.45) for v in fill)
    accent = tuple(255 - v for v in fill)
    look = Look(
        shape=str(rng.choice(SHAPES)),
        fill=fill,
        edge=edge,  # type: ignore[arg-type]
        accent=accent,  # type: ignore[arg-type]
        # Actors fill a good part of the frame: with small ones, nets trained from scratch on a
        # few hundred clips learn the textures instead of the motion (measured: 72% vs 93%).
        size=float(rng.uniform(1.4, 2.0)),
    )
    return Scene(
        width=width,
        height=height,
        margin=max(2, round(0.03 * min(width, height))),
        texture=str(rng.choice(TEXTURES)),
        colors=colors,
        angle=float(rng.uniform(0, math.pi)),
        period=float(rng.uniform(0.08, 0.4) * min(width, height)),
        phase=float(rng.uniform(0, 2 * math.pi)),
        look=look,
    )


def _nudge(rng: np.random.Generator, color: Sequence[int], amount: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.normal(0, amount), 0, 255)) for c in color)  # type: ignore[return-value]


def vary_scene(scene: Scene, rng: np.random.Generator) -> Scene:
    """A clip's version of its group's scene: same texture and actor, slightly shifted."""
    look = scene.look
    look = replace(
        look,
        fill=_nudge(rng, look.fill, 6),
        size=look.size * float(rng.uniform(0.93, 1.07)),
    )
    return replace(
        scene,
        colors=tuple(_nudge(rng, c, 6) for c in scene.colors),
        angle=scene.angle + float(rng.normal(0, 0.05)),
        period=scene.period * float(rng.uniform(0.95, 1.05)),
        phase=float(rng.uniform(0, 2 * math.pi)),
        look=look,
    )


def render_background(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """The static background canvas (with jitter margin), uint8 RGB."""
    cw, ch = scene.canvas_size
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    u = xx * math.cos(scene.angle) + yy * math.sin(scene.angle)
    v = -xx * math.sin(scene.angle) + yy * math.cos(scene.angle)
    if scene.texture == "gradient":
        w = (u - u.min()) / max(float(u.max() - u.min()), 1.0)
    elif scene.texture == "stripes":
        w = 0.5 + 0.5 * np.sin(2 * math.pi * u / scene.period + scene.phase)
        w = np.clip((w - 0.5) * 3 + 0.5, 0, 1)  # soft-edged stripes
    elif scene.texture == "checker":
        cells = np.floor(u / scene.period) + np.floor(v / scene.period)
        w = (cells % 2).astype(np.float32)
    else:  # blobs: smooth low-frequency noise
        gw = max(2, round(cw / scene.period) + 2)
        gh = max(2, round(ch / scene.period) + 2)
        grid = rng.random((gh, gw), dtype=np.float32)
        w = cv2.resize(grid, (cw, ch), interpolation=cv2.INTER_CUBIC)
        w = np.clip((w - w.min()) / max(float(w.max() - w.min()), 1e-6), 0, 1)
    a, b, c = (np.array(col, np.float32) for col in scene.colors)
    image = a * (1 - w[..., None]) + b * w[..., None]
    # a faint third-colour vignette along v so flat textures are not perfectly flat
    ramp = ((v - v.min()) / max(float(v.max() - v.min()), 1.0))[..., None]
    image = image * (1 - 0.25 * ramp) + c * 0.25 * ramp
    mean = image.reshape(-1, 3).mean(axis=0)
    image = mean + TEXTURE_CONTRAST * (image - mean)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- drawing helpers

_SHIFT = 4  # cv2 fixed-point bits: sub-pixel positions give smooth motion
_SCALE = 1 << _SHIFT


def _fill(canvas: np.ndarray, points: np.ndarray, color: Sequence[int]) -> None:
    pts = np.round(points * _SCALE).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(canvas, [pts], tuple(int(c) for c in color), cv2.LINE_AA, _SHIFT)


def _outline(canvas: np.ndarray, points: np.ndarray, color: Sequence[int], width: int) -> None:
    pts = np.round(points * _SCALE).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [pts], True, tuple(int(c) for c in color), width, cv2.LINE_AA, _SHIFT)


def _disc(canvas: np.ndarray, x: float, y: float, r: float, color: Sequence[int]) -> None:
    center = (round(x * _SCALE), round(y * _SCALE))
    radius = max(1, round(r * _SCALE))
    cv2.circle(canvas, center, radius, tuple(int(c) for c in color), -1, cv2.LINE_AA, _SHIFT)


def _bar(
    canvas: np.ndarray, p0: Sequence[float], p1: Sequence[float], width: float, color: Sequence[int]
) -> np.ndarray:
    """A thick line as a polygon, so it is anti-aliased at sub-pixel positions."""
    d = np.subtract(p1, p0, dtype=float)
    n = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-6) * width / 2
    poly = np.array([p0 + n, p1 + n, p1 - n, p0 - n])
    _fill(canvas, poly, color)
    return poly


def shape_polygon(shape: str, cx: float, cy: float, r: float, angle: float = 0.0) -> np.ndarray:
    """Vertices (N, 2) of a named shape of radius r centred at (cx, cy), rotated by angle."""
    if shape == "circle":
        a = np.linspace(0, 2 * math.pi, 24, endpoint=False)
        radii = np.ones_like(a)
    elif shape == "star":
        a = np.linspace(0, 2 * math.pi, 10, endpoint=False)
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
    else:
        n = {"triangle": 3, "diamond": 4, "rect": 4, "hexagon": 6}[shape]
        a = np.linspace(0, 2 * math.pi, n, endpoint=False) - math.pi / 2
        if shape == "rect":
            a = a + math.pi / 4
        radii = np.ones_like(a)
    a = a + angle
    return np.stack([cx + r * radii * np.cos(a), cy + r * radii * np.sin(a)], axis=1)


def _box(*polys: np.ndarray) -> Box:
    pts = np.concatenate(polys)
    return (
        float(pts[:, 0].min()),
        float(pts[:, 1].min()),
        float(pts[:, 0].max()),
        float(pts[:, 1].max()),
    )


def _draw_actor(
    canvas: np.ndarray, look: Look, cx: float, cy: float, r: float, angle: float = 0.0
) -> np.ndarray:
    """The generic actor: filled shape, dark edge and an off-centre accent dot (breaks symmetry)."""
    poly = shape_polygon(look.shape, cx, cy, r, angle)
    _fill(canvas, poly, look.fill)
    _outline(canvas, poly, look.edge, max(1, round(r / 10)))
    _disc(
        canvas, cx + 0.5 * r * math.cos(angle), cy + 0.5 * r * math.sin(angle), r / 4, look.accent
    )
    return poly


def _progress(params: dict[str, Any], t: float) -> float:
    """Monotonic progress in [0, 1] over the active window, with a random easing mix."""
    t0, t1 = params["window"]
    u = min(max((t - t0) / (t1 - t0), 0.0), 1.0)
    smooth = u * u * (3 - 2 * u)
    return (1 - params["ease"]) * u + params["ease"] * smooth


def _common(rng: np.random.Generator) -> dict[str, Any]:
    """Parameters every motion has: the active window covers most of the clip."""
    return {
        "window": (float(rng.uniform(0.0, 0.08)), float(rng.uniform(0.92, 1.0))),
        "ease": float(rng.uniform(0, 1)),
    }


# --------------------------------------------------------------------------- motions
#
# Each motion: sample(rng, look, region, steps) -> params; draw(canvas, params, t) -> Box.
# `region` is the actor's area in canvas pixels (the whole frame for single clips); `steps`
# is the number of frames, for motions that must bound their per-frame change.


def _sample_door(
    rng: np.random.Generator, look: Look, region: Region, steps: int
) -> dict[str, Any]:
    x, y, w, h = region
    dh = h * rng.uniform(0.6, 0.8) * min(look.size, 1.1)
    dw = dh * rng.uniform(0.4, 0.55)
    dx = x + rng.uniform(0.1 * w, max(0.1 * w, w - dw - 0.1 * w))
    dy = y + rng.uniform(0.05 * h, max(0.05 * h, h - dh - 0.02 * h))
    behind = tuple(int(v) for v in np.clip(255 - np.array(look.fill) * 0.6 + 40, 0, 255))
    return _common(rng) | {
        "rect": (dx, dy, dw, dh),
        "hinge_left": bool(rng.random() < 0.5),
        "max_angle": math.radians(rng.uniform(70, 85)),
        "behind": behind,
    }


def _draw_door(canvas: np.ndarray, params: dict[str, Any], look: Look, t: float) -> Box:
    """A door in its frame swinging open about its hinge: visible width shrinks monotonically."""
    dx, dy, dw, dh = params["rect"]
    angle = params["max_angle"] * _progress(params, t)
    frame = np.array([[dx, dy], [dx + dw, dy], [dx + dw, dy + dh], [dx, dy + dh]])
    _fill(canvas, frame, params["behind"])
    hinge_x, sign = (dx, 1.0) if params["hinge_left"] else (dx + dw, -1.0)
    free_x = hinge_x + sign * dw * math.cos(angle)
    grow = 0.12 * dh * math.sin(angle)  # the free edge swings towards the camera
    panel = np.array(
        [[hinge_x, dy], [free_x, dy - grow], [free_x, dy + dh + grow], [hinge_x, dy + dh]]
    )
    _fill(canvas, panel, look.fill)
    _outline(canvas, panel, look.edge, 1)
    knob_x = free_x - sign * 0.15 * dw * math.cos(angle)
    _disc(canvas, knob_x, dy + 0.55 * dh, max(1.0, 0.05 * dw), look.accent)
    _outline(canvas, frame, look.edge, max(1, round(dw / 20)))
    return _box(frame, panel)


def _sample_slide(
    rng: np.random.Generator, look: Look, region: Region, steps: int
) -> dict[str, Any]:
    x, y, w, h = region
    r = min(w, h) * rng.uniform(0.1, 0.15) * look.size
    return _common(rng) | {
        "r": r,
        "x": (x + w * rng.uniform(0.12, 0.3), x + w * rng.uniform(0.7, 0.88)),
        "y": y + h * rng.uniform(0.3, 0.7),
        "angle": rng.uniform(0, 2 * math.pi),
    }


def _draw_slide(canvas: np.ndarray, params: dict[str, Any], look: Look, t: float) -> Box:
    """Moving right (the reversed twin moves left)."""
    x0, x1 = params["x"]
    cx = x0 + (x1 - x0) * _progress(params, t)
    return _box(_draw_actor(canvas, look, cx, params["y"], params["r"], params["angle"]))


def _sample_rise(
    rng: np.random.Generator, look: Look, region: Region, steps: int
) -> dict[str, Any]:
    x, y, w, h = region
    r = min(w, h) * rng.uniform(0.1, 0.15) * look.size
    return _common(rng) | {
        "r": r,
        "x": x + w * rng.uniform(0.25, 0.75),
        "y": (y + h * rng.uniform(0.72, 0.85), y + h * rng.uniform(0.15, 0.28)),
        "angle": rng.uniform(0, 2 * math.pi),
    }


def _draw_rise(canvas: np.ndarray, params: dict[str, Any], look: Look, t: float) -> Box:
    """Moving up (the reversed twin falls)."""
    y0, y1 = params["y"]
    cy = y0 + (y1 - y0) * _progress(params, t)
    return _box(_draw_actor(canvas, look, params["x"], cy, params["r"], params["angle"]))


def _sample_grow(
    rng: np.random.Generator, look: Look, region: Region, steps: int
) -> dict[str, Any]:
    x, y, w, h = region
    s = min(w, h)
    return _common(rng) | {
        "r": (s * rng.uniform(0.05, 0.08) * look.size, s * rng.uniform(0.24, 0.32) * look.size),
        "center": (x + w * rng.uniform(0.35, 0.65), y + h * rng.uniform(0.35, 0.65)),
        "angle": rng.uniform(0, 2 * math.pi),
    }


def _draw_grow(canvas: np.ndarray, params: dict[str, Any], look: Look, t: float) -> Box:
    """Growing in place (the reversed twin shrinks)."""
    r0, r1 = params["r"]
    r = r0 + (r1 - r0) * _progress(params, t)
    cx, cy = params["center"]
    return _box(_draw_actor(canvas, look, cx, cy, r, params["angle"]))


def _sample_rotate(
    rng: np.random.Generator, look: Look, region: Region, steps: int
) -> dict[str, Any]:
    x, y, w, h = region
    # at most ~30 degrees a frame so the direction is never ambiguous
    turn = min(math.radians(rng.uniform(150, 300)), math.radians(30) * max(steps - 1, 1) * 0.8)
    return _common(rng) | {
        "r": min(w, h) * rng.uniform(0.2, 0.3) * look.size,
        "center": (x + w * rng.uniform(0.35, 0.65), y + h * rng.uniform(0.35, 0.65)),
        "angle": (a0 := rng.uniform(0, 2 * math.pi), a0 + turn),
    }


def _draw_rotate(canvas: np.ndarray, params: dict[str, Any], look: Look, t: float) -> Box:
    """Turning clockwise on screen (image y points down, so increasing angle is clockwise)."""
    a0, a1 = params["angle"]
    angle = a0 + (a1 - a0) * _progress(params, t)
    cx, cy = params["center"]
    r = params["r"]
    tip = (cx + r * math.cos(angle), cy + r * math.sin(angle))
    arm = _bar(canvas, (cx, cy), tip, max(2.0, 0.35 * r), look.fill)
    head = shape_polygon(look.shape, tip[0], tip[1], 0.3 * r, angle)
    _fill(canvas, head, look.accent)
    _disc(canvas, cx, cy, 0.22 * r, look.edge)
    return _box(arm, head)


def _sample_wave(
    rng: np.random.Generator, look: Look, region: Region, steps: int
) -> dict[str, Any]:
    x, y, w, h = region
    s = min(w, h) * look.size * rng.uniform(0.15, 0.2)
    # the figure spans from the raised hand (~2.2 s above) to the feet (s below)
    return _common(rng) | {
        "body": (
            x + w * rng.uniform(0.3, 0.7),
            y + rng.uniform(2.2 * s, max(2.2 * s, h - 1.1 * s)),
        ),
        "size": s,
        "cycles": rng.uniform(1.5, 3.0),
        "amplitude": math.radians(rng.uniform(25, 45)),
        "phase": rng.uniform(0, 2 * math.pi),
        "side": 1.0 if rng.random() < 0.5 else -1.0,
    }


def _draw_wave(canvas: np.ndarray, params: dict[str, Any], look: Look, t: float) -> Box:
    """A body with one arm swinging back and forth."""
    bx, by = params["body"]
    s = params["size"]
    body = np.array(
        [
            [bx - 0.35 * s, by - s],
            [bx + 0.35 * s, by - s],
            [bx + 0.4 * s, by + s],
            [bx - 0.4 * s, by + s],
        ]
    )
    _fill(canvas, body, look.fill)
    _outline(canvas, body, look.edge, 1)
    head = shape_polygon("circle", bx, by - 1.35 * s, 0.32 * s)
    _fill(canvas, head, look.fill)
    shoulder = np.array([bx + params["side"] * 0.3 * s, by - 0.85 * s])
    swing = params["amplitude"] * math.sin(2 * math.pi * params["cycles"] * t + params["phase"])
    up = -math.pi / 2 + params["side"] * math.radians(35) + swing
    hand = shoulder + 1.1 * s * np.array([math.cos(up), math.sin(up)])
    arm = _bar(canvas, shoulder, hand, max(2.0, 0.2 * s), look.edge)
    _disc(canvas, hand[0], hand[1], max(1.5, 0.16 * s), look.accent)
    return _box(body, head, arm)


def _sample_jump(
    rng: np.random.Generator, look: Look, region: Region, steps: int
) -> dict[str, Any]:
    x, y, w, h = region
    r = min(w, h) * rng.uniform(0.1, 0.14) * look.size
    ground = y + h * rng.uniform(0.78, 0.9)
    return _common(rng) | {
        "r": r,
        "x": x + w * rng.uniform(0.25, 0.75),
        "ground": ground,
        "height": (ground - y - 2 * r) * rng.uniform(0.55, 0.85),
        "jumps": int(rng.integers(1, 3)),
        "angle": rng.uniform(0, 2 * math.pi),
    }


def _draw_jump(canvas: np.ndarray, params: dict[str, Any], look: Look, t: float) -> Box:
    """One or two hops off a ground line."""
    x, ground, r = params["x"], params["ground"], params["r"]
    lift = params["height"] * abs(math.sin(math.pi * params["jumps"] * _progress(params, t)))
    line = np.array([[x - 3 * r, ground], [x + 3 * r, ground]])
    _bar(canvas, line[0], line[1], max(1.5, 0.12 * r), look.edge)
    return _box(_draw_actor(canvas, look, x, ground - r - lift, r, params["angle"]))


@dataclass(frozen=True)
class Motion:
    """A motion renderer: random parameters, then the actor drawn at any time t in [0, 1]."""

    sample: Callable[[np.random.Generator, Look, Region, int], dict[str, Any]]
    draw: Callable[[np.ndarray, dict[str, Any], Look, float], Box]


MOTIONS: dict[str, Motion] = {
    "door": Motion(_sample_door, _draw_door),
    "slide": Motion(_sample_slide, _draw_slide),
    "rise": Motion(_sample_rise, _draw_rise),
    "grow": Motion(_sample_grow, _draw_grow),
    "rotate": Motion(_sample_rotate, _draw_rotate),
    "wave": Motion(_sample_wave, _draw_wave),
    "jump": Motion(_sample_jump, _draw_jump),
}

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


def _rng(seed: int, *keys: int | str) -> np.random.Generator:
    """An RNG fixed by (seed, keys): independent of worker count and job order."""
    words = [int(seed) & 0xFFFFFFFF, (int(seed) >> 32) & 0xFFFFFFFF]
    words += [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(words)


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
    scene = sample_scene(_rng(job.seed, "scene", job.group), job.width, job.height)
    rng = _rng(job.seed, job.label, job.group, job.clip)
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


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_index(out: Path, rows: list[dict[str, Any]], classes: list[str]) -> None:
    """`metadata.csv` (one row per clip, by path) and `classes.json` (classes and pairs): what
    `prepare` reads beside the class folders."""
    buffer = io.StringIO()
    fields = ["path", "label", "group", "pair", "num_frames", "fps", "seed"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda r: r["path"]))
    _atomic_text(out / "metadata.csv", buffer.getvalue())
    _atomic_text(
        out / "classes.json",
        json.dumps({"classes": classes, "pairs": [list(p) for p in PAIRS]}, indent=2) + "\n",
    )


def _check_out(out: Path) -> None:
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
    `synthetic_long.generate_long`, on the same scene/motion renderers.
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
    _check_out(out)
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
