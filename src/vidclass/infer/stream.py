"""Decode a video or live source on a background thread, sampled at the model's frame rate.

The decoder thread keeps FFmpeg busy while the model runs on the main thread; a bounded
queue between them holds at most a few frames (only the sampled ones, unless every frame is
asked for), so memory does not grow with the length of
the video. Sampled frames arrive resized for the model; with `keep_frames`, every original
frame arrives too (for the annotated copy).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from vidclass.data.decode import frame_to_array
from vidclass.data.probe import open_container
from vidclass.errors import VideoError


@dataclass
class StreamFrame:
    """One decoded frame: its time, the model input if sampled, the picture if kept."""

    index: int
    t: float
    sample: np.ndarray | None  # uint8 (size, size, 3) when this frame is sampled
    image: np.ndarray | None  # uint8 (H, W, 3) RGB when keep_frames


@dataclass
class SourceInfo:
    """What the stream is: a file has a duration, a live source does not."""

    path: str
    fps: float
    width: int
    height: int
    duration_s: float | None
    live: bool


_END = object()


def is_live_source(source: str | os.PathLike) -> bool:
    """A device or network address rather than a regular file."""
    text = str(source)
    return "://" in text or text.startswith("/dev/")


def open_source(source: str | os.PathLike) -> tuple[av.container.InputContainer, SourceInfo]:
    """Open a file or a live source; VideoError with a reason when it can't be used."""
    live = is_live_source(source)
    if live:
        try:
            container = av.open(str(source), metadata_errors="ignore", timeout=10.0)
        except av.error.FFmpegError as exc:
            raise VideoError(source, f"cannot open the live source ({exc})") from None
    else:
        container = open_container(source)
    if not container.streams.video:
        container.close()
        raise VideoError(source, "has no video stream; not a video")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    duration = None
    if not live:
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000
    info = SourceInfo(
        str(source), fps, stream.codec_context.width, stream.codec_context.height, duration, live
    )
    return container, info


def iter_frames(
    source: str | os.PathLike,
    size: int,
    sample_fps: float,
    keep_frames: bool = False,
    max_queue: int = 32,
    sample: bool = True,
) -> tuple[SourceInfo, Iterator[StreamFrame]]:
    """(info, frames): decoding runs ahead on a thread; frames are sampled every 1/sample_fps s.

    File timestamps come from the frame index and the stream's frame rate (robust to the odd
    timestamps of real AVI files); live sources use the frames' own timestamps.
    """
    container, info = open_source(source)
    q: queue.Queue = queue.Queue(maxsize=max_queue)
    stop = threading.Event()

    def produce() -> None:
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            step = 1.0 / sample_fps
            next_t = 0.0
            first_pts: float | None = None
            skipped: StreamFrame | None = None
            for i, frame in enumerate(container.decode(stream)):
                if stop.is_set():
                    return
                if info.live or info.fps <= 0:
                    ft = frame.time or 0.0
                    first_pts = ft if first_pts is None else first_pts
                    t = ft - first_pts
                else:
                    t = i / info.fps
                picked = None
                if sample and t + 1e-9 >= next_t:
                    # Converted by the consumer: the decoder thread only decodes, so decoding
                    # and the rest of the work overlap on two cores.
                    picked = frame
                    next_t += step * max(1, int((t - next_t) // step) + 1)
                image = frame.to_ndarray(format="rgb24") if keep_frames else None
                if picked is None and image is None:
                    skipped = StreamFrame(i, t, None, None)  # nothing to hand over
                    continue
                skipped = None
                q.put(StreamFrame(i, t, picked, image))
            if skipped is not None:
                q.put(skipped)  # the last frame tells the consumer where the video ends
        except av.error.FFmpegError as exc:
            q.put(VideoError(info.path, f"decoding failed ({exc}); re-encode the video"))
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, never lost
            q.put(exc)
        finally:
            q.put(_END)

    thread = threading.Thread(target=produce, name="vidclass-decode", daemon=True)
    thread.start()

    def consume() -> Iterator[StreamFrame]:
        got_any = False
        try:
            while True:
                item = q.get()
                if item is _END:
                    break
                if isinstance(item, Exception):
                    if isinstance(item, VideoError) and got_any:
                        break  # a damaged tail: keep what decoded
                    raise item
                got_any = True
                if item.sample is not None:
                    item.sample = frame_to_array(item.sample, size)
                yield item
            if not got_any:
                raise VideoError(info.path, "no frame could be decoded (corrupt or empty video)")
        finally:
            stop.set()
            while thread.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q.get(timeout=0.05)
                except queue.Empty:
                    pass
            thread.join()
            container.close()

    return info, consume()
