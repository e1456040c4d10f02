"""Decode chosen frames of a video with PyAV, resized and fitted to a square, as uint8 RGB.

Decoding is sequential with FFmpeg's frame threading: on the short, sparse-keyframe videos
of action datasets, seeking costs more than it saves (see DESIGN.md). Only the frames that
are kept are converted to RGB, and decoding stops after the last one.
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

from vidclass.errors import VideoError
from vidclass.video.probe import open_container

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# How a decoded frame is fitted for the model (`vidclass.data.crop` chooses it from the crop
# mode): `center` short side to the size, the centre square; `full` long side to the size,
# the whole frame zero-padded to a square; `source` no crop, scaled down only so its short side
# is at most SOURCE_SCALE x the size (a person crop is cut from it once the clip is known).
FITS = ("center", "full", "source")
SOURCE_SCALE = 2


def resized_shape(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) after scaling the short side to `size`, keeping the aspect ratio."""
    if width <= height:
        return size, max(size, round(height * size / width))
    return max(size, round(width * size / height)), size


def frame_to_array(frame: av.VideoFrame, size: int | None, fit: str = "center") -> np.ndarray:
    """One decoded frame → uint8 RGB: `(size, size, 3)` for `center` and `full`, the frame at
    most SOURCE_SCALE x `size` on its short side for `source` (see FITS).

    With `size=None`, the frame at its own resolution.
    """
    if size is None:
        return frame.to_ndarray(format="rgb24")
    if fit == "source":
        short = min(frame.width, frame.height)
        if short <= SOURCE_SCALE * size:
            return frame.to_ndarray(format="rgb24")
        w, h = resized_shape(frame.width, frame.height, SOURCE_SCALE * size)
        return frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
    if fit == "full":
        scale = size / max(frame.width, frame.height)
        w = max(1, min(size, round(frame.width * scale)))
        h = max(1, min(size, round(frame.height * scale)))
        rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
        out = np.zeros((size, size, 3), np.uint8)
        top, left = (size - h) // 2, (size - w) // 2
        out[top : top + h, left : left + w] = rgb
        return out
    if fit != "center":
        raise ValueError(f"unknown fit {fit!r}; choose one of {', '.join(FITS)}")
    w, h = resized_shape(frame.width, frame.height, size)
    rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
    top, left = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(rgb[top : top + size, left : left + size])


def read_frames(
    path: str | os.PathLike, indices: list[int], size: int | None, fit: str = "center"
) -> tuple[np.ndarray, int]:
    """Decode the frames at `indices` (increasing) → (uint8 `(N, size, size, 3)`, frames seen).

    N < len(indices) when the video holds fewer frames than its header announced; the second
    value is how many frames were decoded, so the caller can tell. `fit`: see FITS.
    """
    with open_container(path) as container:
        return decode_indices(path, container, indices, size, fit)


def decode_indices(
    path: str | os.PathLike,
    container: av.container.InputContainer,
    indices: list[int],
    size: int | None,
    fit: str = "center",
) -> tuple[np.ndarray, int]:
    """`read_frames` on an already open container (positioned at the start)."""
    p = Path(path)
    if not indices:
        raise VideoError(p, "no frames to sample")
    wanted = set(indices)
    last = indices[-1]
    kept: list[np.ndarray] = []
    seen = 0
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    try:
        for frame in container.decode(stream):
            if seen in wanted:
                kept.append(frame_to_array(frame, size, fit))
            seen += 1
            if seen > last:
                break
    except av.error.FFmpegError as exc:
        if not kept:
            raise VideoError(p, f"decoding failed at frame {seen} ({exc}); re-encode it") from None
        # A damaged tail: keep what decoded; the caller sees the short count.
    if not kept:
        raise VideoError(p, "no frame could be decoded (corrupt or truncated video stream)")
    return np.stack(kept), seen
