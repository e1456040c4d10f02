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

from vidclass.errors import VideoError
from vidclass.video.decode import frame_to_array
from vidclass.video.probe import open_container


@dataclass
class StreamFrame:
    """One decoded frame: its time, the model input if sampled, the picture if kept."""

    index: int
    t: float
    sample: np.ndarray | None  # uint8 (size, size, 3) when this frame is sampled (fit "source":
    # the uncropped frame)
    image: np.ndarray | None  # uint8 (H, W, 3) RGB when keep_frames


@dataclass
class SourceInfo:
    """What the stream is: a file has a duration, a live source does not.

    The last three fields are filled in once the frames have all been read, so a caller can
    tell a whole video from one whose decoding stopped early (a damaged or cut-off file):
    results for part of a video must say so.
    """

    path: str
    fps: float
    width: int
    height: int
    duration_s: float | None
    live: bool
    frames_announced: int = 0  # the header's frame count (0: not given)
    decoded_duration_s: float | None = None  # time covered by the frames that decoded
    truncated: bool = False  # decoding stopped before the end of the video
    truncated_reason: str | None = None

    def result_fields(self) -> dict:
        """The `truncated` / `decoded_duration_s` / `truncated_reason` entries of a result."""
        decoded = self.decoded_duration_s
        return {
            "truncated": self.truncated,
            "decoded_duration_s": None if decoded is None else round(decoded, 3),
            "truncated_reason": self.truncated_reason,
        }


_END = object()
# A file whose frames stop this far short of the duration its header announces was cut off
# (a partial download or copy) even when FFmpeg reports no error, which is the usual case:
# its frame-threaded decoder drops the error of a cut frame, and a demuxer reaching the end
# of a cut file sees an ordinary end of file. The larger of 0.5 s and 5 %: whole real clips
# stop within a frame or two of their header's duration.
SHORT_BY_S, SHORT_BY_SHARE = 0.5, 0.05


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
        str(source),
        fps,
        stream.codec_context.width,
        stream.codec_context.height,
        duration,
        live,
        frames_announced=int(stream.frames or 0),
    )
    return container, info


def iter_frames(
    source: str | os.PathLike,
    size: int,
    sample_fps: float,
    keep_frames: bool = False,
    max_queue: int = 32,
    sample: bool = True,
    fit: str = "center",
) -> tuple[SourceInfo, Iterator[StreamFrame]]:
    """(info, frames): decoding runs ahead on a thread; frames are sampled every 1/sample_fps s
    and fitted for the model as `prepare` fits them (`fit`, see `decode.FITS`).

    File timestamps come from the frame index and the stream's frame rate (robust to the odd
    timestamps of real AVI files); live sources use the frames' own timestamps.
    """
    container, info = open_source(source)
    decoder = _Decoder(container, info, max_queue)
    thread = threading.Thread(
        target=decoder.produce,
        args=(sample_fps, keep_frames, sample),
        name="vidclass-decode",
        daemon=True,
    )
    thread.start()
    return info, decoder.consume(thread, size, fit)


class _Decoder:
    """The two ends of `iter_frames`' queue: the decoder thread puts frames (or the error that
    stopped it) in, the caller's iterator takes them out and resizes the sampled ones."""

    def __init__(
        self, container: av.container.InputContainer, info: SourceInfo, max_queue: int
    ) -> None:
        self.container, self.info = container, info
        self.q: queue.Queue = queue.Queue(maxsize=max_queue)
        self.stop = threading.Event()
        self.last_t: float | None = None  # the time of the last decoded frame (decoder thread)

    def produce(self, sample_fps: float, keep_frames: bool, sample: bool) -> None:
        """The decoder thread: times every frame; hands over the sampled ones (as PyAV frames)
        and, with `keep_frames`, every picture."""
        container, info, q = self.container, self.info, self.q
        # Set before the try: an error raised before the first frame must still reach the
        # consumer, not fail again in the handler and end the stream as if the video had.
        skipped: StreamFrame | None = None
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            step = 1.0 / sample_fps
            next_t = 0.0
            first_pts: float | None = None
            for i, frame in enumerate(container.decode(stream)):
                if self.stop.is_set():
                    return
                if info.live or info.fps <= 0:
                    ft = frame.time or 0.0
                    first_pts = ft if first_pts is None else first_pts
                    t = ft - first_pts
                else:
                    t = i / info.fps
                self.last_t = t
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
            if skipped is not None:
                q.put(skipped)  # where the decoded part ends
            q.put(VideoError(info.path, f"decoding failed ({exc}); re-encode the video"))
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, never lost
            q.put(exc)
        finally:
            q.put(_END)

    def consume(self, thread: threading.Thread, size: int, fit: str) -> Iterator[StreamFrame]:
        """The caller's side; closing it (or its end) stops the thread and the container."""
        info, q = self.info, self.q
        got_any = False
        try:
            while True:
                item = q.get()
                if item is _END:
                    break
                if isinstance(item, Exception):
                    if isinstance(item, VideoError) and got_any:
                        # A damaged tail: keep what decoded, and say so.
                        info.truncated, info.truncated_reason = True, item.reason
                        break
                    raise item
                got_any = True
                if item.sample is not None:
                    item.sample = frame_to_array(item.sample, size, fit)
                yield item
            if not got_any:
                raise VideoError(info.path, "no frame could be decoded (corrupt or empty video)")
            _note_decoded(info, self.last_t)
        finally:
            self.stop.set()
            while thread.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q.get(timeout=0.05)
                except queue.Empty:
                    pass
            thread.join()
            self.container.close()


def _note_decoded(info: SourceInfo, last_t: float | None) -> None:
    """Record how much of the video decoded; a file that stops well short of what its header
    announces (duration, or frame count: FFmpeg re-estimates a cut AVI's duration from what
    is left of it, not its frame count) was cut off, error or not."""
    if last_t is None:
        return
    frame_s = 1.0 / info.fps if info.fps > 0 and not info.live else 0.0
    info.decoded_duration_s = last_t + frame_s
    expected = max(info.duration_s or 0.0, info.frames_announced * frame_s)
    if info.truncated or info.live or not expected:
        return
    if info.decoded_duration_s < expected - max(SHORT_BY_S, SHORT_BY_SHARE * expected):
        info.truncated = True
        info.truncated_reason = (
            f"the frames stop at {info.decoded_duration_s:.1f} s of the "
            f"{expected:.1f} s its header announces (cut off?)"
        )
