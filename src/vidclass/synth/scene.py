"""Scenes of the embedded datasets: a group's textured background and the look of its actor,
sampled once per group and varied slightly per clip, and the seeded RNG every renderer
draws from (fixed by seed and keys, so output does not depend on worker count or order).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in canvas pixels
Region = tuple[float, float, float, float]  # x, y, width, height of the actor's area


def seeded_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """An RNG fixed by (seed, keys): independent of worker count and job order."""
    words = [int(seed) & 0xFFFFFFFF, (int(seed) >> 32) & 0xFFFFFFFF]
    words += [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(words)


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


def random_color(rng: np.random.Generator) -> tuple[int, int, int]:
    """A uniformly random RGB colour."""
    return tuple(int(v) for v in rng.integers(0, 256, 3))  # type: ignore[return-value]


def color_distance(a: Sequence[int], b: Sequence[int]) -> float:
    """Euclidean distance of two RGB colours."""
    return float(np.linalg.norm(np.subtract(a, b, dtype=float)))


def sample_scene(rng: np.random.Generator, width: int, height: int) -> Scene:
    """Draw a group's scene: a textured background and an actor that stands out from it."""
    colors = tuple(random_color(rng) for _ in range(3))
    mean = np.mean(colors, axis=0)
    # keep the actor visible: the most distinct of a few random colours
    candidates = [random_color(rng) for _ in range(12)]
    fill = max(candidates, key=lambda f: min(color_distance(f, c) for c in (*colors[:2], mean)))
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
