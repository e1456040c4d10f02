"""Shared fixtures: small synthetic videos made in the test, and the real clips if present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
REALCLIPS = Path(os.environ.get("VIDCLASS_REALCLIPS", REPO.parent / "shared" / "realclips"))


def moving_square_frames(n: int, width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    """uint8 (n, H, W, 3): a coloured square sliding right over a random background colour."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 255, size=3, dtype=np.uint8)
    fg = 255 - bg
    frames = np.empty((n, height, width, 3), np.uint8)
    frames[:] = bg
    for t in range(n):
        x = int((width - 12) * t / max(1, n - 1))
        frames[t, height // 2 - 6 : height // 2 + 6, x : x + 12] = fg
    return frames


@pytest.fixture
def make_video(tmp_path):
    """make_video(relpath, n_frames, fps=10, width=64, height=48, seed=0) → Path of an MP4."""
    from vidclass.data.synthetic import write_video

    def make(
        rel: str, n: int = 20, fps: int = 10, width: int = 64, height: int = 48, seed: int = 0
    ):
        path = tmp_path / rel
        write_video(path, moving_square_frames(n, width, height, seed), fps)
        return path

    return make


@pytest.fixture
def make_gif(tmp_path):
    """make_gif(relpath, n_frames, fps=10, width=64, height=48) → Path of an animated GIF."""
    from PIL import Image

    def make(rel: str, n: int = 20, fps: int = 10, width: int = 64, height: int = 48):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        images = [Image.fromarray(f) for f in moving_square_frames(n, width, height)]
        images[0].save(path, save_all=True, append_images=images[1:], duration=1000 // fps, loop=0)
        return path

    return make


@pytest.fixture
def realclips() -> Path:
    if not REALCLIPS.is_dir():
        pytest.skip(f"real clips folder {REALCLIPS} is absent (set VIDCLASS_REALCLIPS)")
    return REALCLIPS
