"""The motions of the embedded datasets: each a pair of functions, ``sample(rng, look, region,
steps)`` drawing its random parameters inside a region of the canvas and ``draw(canvas,
params, look, t)`` drawing the actor at normalised time ``t`` in [0, 1] and returning its
bounding box; and ACTIONS, which motion renders each label (and whether it plays reversed).
Motions know nothing of files, noise or camera jitter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from vidclass.synth.scene import Box, Look, Region

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
