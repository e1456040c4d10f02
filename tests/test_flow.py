"""Optical flow: direction and scale of a known translation, shapes, padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidclass.data.flow import FLOW_BOUND, compute_flow, flow_from_video
from vidclass.errors import UserError

T, H, W, SPEED = 10, 112, 112, 2


def moving_square(t: int = T) -> np.ndarray:
    """A textured 24 px square on a flat background moving right by SPEED px per frame."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    frames = np.full((t, H, W, 3), 90, dtype=np.uint8)
    for i in range(t):
        x0 = 20 + SPEED * i
        frames[i, 44:68, x0 : x0 + 24] = texture
    return frames


@pytest.mark.parametrize("method", ["farneback", "dis"])
def test_translation_gives_rightward_flow(method: str) -> None:
    flow = compute_flow(moving_square(), method=method)
    assert flow.shape == (2, T - 1, H, W)
    assert flow.dtype == np.float16
    inside = np.zeros((T - 1, H, W), dtype=bool)
    for i in range(T - 1):  # interior of the square in frame i
        inside[i, 48:64, 24 + SPEED * i : 40 + SPEED * i] = True
    fx = flow[0][inside].astype(np.float32).mean()
    fy = flow[1][inside].astype(np.float32).mean()
    assert fx == pytest.approx(SPEED / FLOW_BOUND, abs=0.2 / FLOW_BOUND)
    assert abs(fy) < 0.2 / FLOW_BOUND
    assert np.abs(flow).max() <= 1.0


def test_padding_frames_give_zero_flow() -> None:
    frames = moving_square()
    frames[6:] = 0  # padding after 6 real frames
    flow = compute_flow(frames, num_real=6)
    assert flow.shape == (2, T - 1, H, W)
    assert np.abs(flow[:, :5]).max() > 0
    assert not flow[:, 5:].any()
    assert not compute_flow(frames, num_real=1).any()


def test_unknown_method_and_bad_shape() -> None:
    with pytest.raises(UserError):
        compute_flow(moving_square(), method="horn_schunck")
    with pytest.raises(UserError):
        compute_flow(np.zeros((4, 8, 8), dtype=np.uint8))


def test_flow_from_normalized_video_matches_uint8() -> None:
    frames = moving_square()
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    video = (frames.astype(np.float32) / 255 - mean) / std  # (T, H, W, 3)
    video_t = torch.from_numpy(video).permute(3, 0, 1, 2)[None]  # (1, 3, T, H, W)
    mask = torch.ones(1, T, dtype=torch.bool)
    flow = flow_from_video(video_t, mask)
    assert flow.shape == (1, 2, T - 1, H, W) and flow.dtype == torch.float32
    ref = compute_flow(frames).astype(np.float32)
    assert np.abs(flow[0].numpy() - ref).max() < 1e-2
