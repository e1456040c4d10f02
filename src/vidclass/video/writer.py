"""The one H.264 writer: RGB frames in, an MP4 (yuv420p) out, appearing only when complete.

`VideoWriter` takes frames one at a time (the annotated copies of `predict` and `detect`,
written while a video is decoded); `write_video` encodes a whole array with the deterministic
settings of the embedded datasets. Both write to a temporary name beside the target and rename
it when the file is complete, so a reader never sees a half-written video.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

# Constant-QP intra-only H.264: every frame is coded on its own, so
# (1) decoding the reversed twin gives exactly the reversed frames of the forward clip: no
#     I/P/B-frame quality pattern that a single-frame model could tie to the start state, and
# (2) seeking to any frame is one decode. x264 is also bit-exact run to run this way
#     (its macroblock-tree lookahead, used by CRF with inter frames, was not).
X264_OPTIONS = {"preset": "veryfast", "qp": "20", "threads": "1"}
# Constant quality with inter frames: small files for people to watch (annotated copies).
X264_VIEWING = {"preset": "veryfast", "crf": "23"}


class VideoWriter:
    """H.264 (yuv420p) writer that takes RGB frames and renames the file when closed.

    Frames smaller than the (even-rounded) size are padded by repeating their edge; `fps` <= 0
    (unknown) is written as 25. `gop` None keeps x264's keyframe interval; `container_format`
    None takes the muxer from the file's extension. As a context manager it closes on success
    and aborts (removes the temporary) on an exception.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        width: int,
        height: int,
        *,
        options: dict[str, str] = X264_VIEWING,
        gop: int | None = None,
        container_format: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # without a named format the muxer is guessed from the extension, so the temp keeps it
        tail = ".part" if container_format else f".tmp{self.path.suffix}"
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}{tail}")
        self.width, self.height = width + width % 2, height + height % 2  # yuv420p: even
        self.container = av.open(str(self.tmp), mode="w", format=container_format)
        rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(25)
        self.stream = self.container.add_stream("libx264", rate=rate, options=dict(options))
        self.stream.width, self.stream.height = self.width, self.height
        self.stream.pix_fmt = "yuv420p"
        if gop is not None:
            self.stream.gop_size = max(1, gop)
        self.count = 0

    def write(self, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        if (w, h) != (self.width, self.height):
            rgb = cv2.copyMakeBorder(
                rgb, 0, self.height - h, 0, self.width - w, cv2.BORDER_REPLICATE
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.count
        self.container.mux(self.stream.encode(frame))
        self.count += 1

    def close(self) -> Path:
        self.container.mux(self.stream.encode(None))
        self.container.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self.container.close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(path: Path | str, frames: np.ndarray, fps: int, gop: int = 1) -> None:
    """Encode uint8 RGB frames (T, H, W, 3) to an H.264 yuv420p MP4, atomically, with the
    deterministic `X264_OPTIONS`.

    H and W must be even (yuv420p). `gop` > 1 gives smaller files with inter frames (still
    deterministic with constant QP).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(
            f"frames must be non-empty uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}"
        )
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f"H.264 yuv420p needs even width and height, got {width}x{height}")
    with VideoWriter(
        path, fps, width, height, options=X264_OPTIONS, gop=gop, container_format="mp4"
    ) as writer:
        for image in frames:
            writer.write(image)
