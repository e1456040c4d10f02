"""Which frames of a video make a clip, and how a short clip is padded to the common length.

Two ways to sample, as the field does: every K-th frame (or F frames per second) from the
start until the clip is full, or frames spread evenly over the whole video (`sample_indices`'
default). `vidclass prepare` takes `REAL_FPS` frames per second by default: on real people
held out by actor a fixed rate beat frames spread over each clip (docs/benchmarks.md, "Frames
at a fixed rate"), and it is the rate `predict` samples windows at, so a window of a long video
spans what a training clip spans.
"""

from __future__ import annotations

import math

import numpy as np

from vidclass.errors import UserError

PAD_MODES = ("zeros", "repeat")
# `vidclass prepare`'s sampling: 32 frames at 12.5 a second (2.6 s from the start).
REAL_FRAMES, REAL_FPS = 32, 12.5


def sample_indices(
    num_frames: int,
    max_frames: int,
    interval: int | None = None,
    video_fps: float | None = None,
    sample_fps: float | None = None,
) -> list[int]:
    """Frame indices to keep, at most `max_frames` of them, increasing.

    - `interval=K`: frames 0, K, 2K, ... that exist.
    - `sample_fps=F` (needs `video_fps`): the frame nearest each instant 0, 1/F, 2/F, ...
    - neither: `max_frames` frames evenly spread over the whole video (the centre of each of
      `max_frames` equal segments, as in TSN), or every frame of a shorter video.
    """
    if num_frames <= 0:
        return []
    if max_frames <= 0:
        raise UserError(f"max_frames must be positive, got {max_frames}")
    if interval is not None and sample_fps is not None:
        raise UserError("give either --interval or --fps, not both")
    if sample_fps is not None:
        if video_fps is None or video_fps <= 0 or sample_fps <= 0:
            raise UserError("sampling by --fps needs a positive video frame rate and --fps value")
        step = video_fps / sample_fps
        count = min(max_frames, math.floor((num_frames - 1) / step) + 1)
        indices = [min(num_frames - 1, round(i * step)) for i in range(count)]
        return sorted(set(indices))
    if interval is None:
        if num_frames <= max_frames:
            return list(range(num_frames))
        return [math.floor((i + 0.5) * num_frames / max_frames) for i in range(max_frames)]
    if interval <= 0:
        raise UserError(f"interval must be positive, got {interval}")
    return list(range(0, num_frames, interval))[:max_frames]


def sampled_length(
    num_frames: int,
    max_frames: int,
    interval: int | None = None,
    video_fps: float | None = None,
    sample_fps: float | None = None,
) -> int:
    """How many frames `sample_indices` keeps (for `--frames auto`)."""
    return len(sample_indices(num_frames, max_frames, interval, video_fps, sample_fps))


def pad_clip(frames: np.ndarray, length: int, mode: str = "zeros") -> tuple[np.ndarray, np.ndarray]:
    """Pad (or cut) `(T, ...)` frames at the end to `length`; return (frames, mask of real frames).

    `zeros` pads with zero arrays (call it after normalization so buffer frames are 0 there);
    `repeat` repeats the last real frame.
    """
    if mode not in PAD_MODES:
        raise UserError(f"unknown pad mode {mode!r}; choose one of {', '.join(PAD_MODES)}")
    real = min(len(frames), length)
    if real == 0:
        raise UserError("cannot pad a clip with no frames")
    mask = np.zeros(length, dtype=bool)
    mask[:real] = True
    if real == length:
        return frames[:length], mask
    out = np.empty((length, *frames.shape[1:]), dtype=frames.dtype)
    out[:real] = frames[:real]
    out[real:] = 0 if mode == "zeros" else frames[real - 1]
    return out, mask
