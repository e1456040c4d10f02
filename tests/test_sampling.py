"""Frame index selection and padding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidclass.data.sampling import pad_clip, sample_indices
from vidclass.errors import UserError


def test_interval_long_video_stops_at_max_frames():
    assert sample_indices(100, 5, interval=3) == [0, 3, 6, 9, 12]


def test_interval_short_video_keeps_what_exists():
    assert sample_indices(7, 16, interval=2) == [0, 2, 4, 6]


def test_interval_exact_fit():
    assert sample_indices(32, 16, interval=2) == list(range(0, 32, 2))


def test_default_spreads_over_whole_video():
    idx = sample_indices(160, 16)
    assert len(idx) == 16 and idx[0] == 5 and idx[-1] == 155
    assert np.all(np.diff(idx) == 10)


def test_default_short_video_takes_every_frame():
    assert sample_indices(5, 16) == [0, 1, 2, 3, 4]


def test_fps_sampling_uses_video_rate():
    # 30 fps video sampled at 5 fps: every 6th frame.
    assert sample_indices(90, 100, video_fps=30, sample_fps=5) == list(range(0, 90, 6))
    # 25 fps at 10 fps: instants 0, 0.1, 0.2 ... → frames 0, 2 (2.5 rounds to 2), 5, 8 (7.5→8)
    assert sample_indices(10, 100, video_fps=25, sample_fps=10)[:4] == [0, 2, 5, 8]


def test_interval_and_fps_together_rejected():
    with pytest.raises(UserError):
        sample_indices(10, 4, interval=2, video_fps=30, sample_fps=5)


@given(
    n=st.integers(1, 5000),
    t=st.integers(1, 64),
    k=st.one_of(st.none(), st.integers(1, 50)),
)
def test_indices_are_valid(n, t, k):
    idx = sample_indices(n, t, interval=k)
    assert 1 <= len(idx) <= t
    assert idx == sorted(set(idx))
    assert 0 <= idx[0] and idx[-1] < n


def test_pad_zeros_and_mask():
    frames = np.ones((3, 2, 2, 3), np.float32)
    out, mask = pad_clip(frames, 5, "zeros")
    assert out.shape == (5, 2, 2, 3)
    assert mask.tolist() == [True, True, True, False, False]
    assert np.all(out[3:] == 0) and np.all(out[:3] == 1)


def test_pad_repeat_last():
    frames = np.arange(3, dtype=np.float32).reshape(3, 1)
    out, mask = pad_clip(frames, 5, "repeat")
    assert out[:, 0].tolist() == [0, 1, 2, 2, 2]
    assert mask.sum() == 3


def test_pad_cuts_longer_clip():
    out, mask = pad_clip(np.zeros((8, 1)), 4)
    assert out.shape == (4, 1) and mask.all()


def test_pad_rejects_unknown_mode():
    with pytest.raises(UserError):
        pad_clip(np.zeros((2, 1)), 4, "mirror")
