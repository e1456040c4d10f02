"""Open a video, read what it is, and say in one line why it cannot be used if it cannot.

Probing is cheap (container header, a packet count, one decoded frame) so a whole folder
can be checked before any real decoding starts; a bad file becomes a `VideoError` with a
reason the user can act on, never a crash of the whole run.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import av

from vidclass.errors import VideoError

# The one list of what a folder scan takes as a video (prepare, predict, localize, detect,
# the server's upload names): the containers PyAV opens that users have.
VIDEO_EXTENSIONS = (
    ".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg",
    ".gif", ".3gp", ".ts", ".wmv", ".flv",
)  # fmt: skip
SIDECAR_EXTENSIONS = (".json", ".csv", ".txt")  # ground truth and indexes beside videos

# PyAV ignores FFmpeg's log by default, and we keep it so: installing a Python log callback
# (av.logging.set_level) deadlocks frame-threaded decoders when a container is closed.


@dataclass(frozen=True)
class VideoInfo:
    """What a video is, as far as its container and a first decoded frame tell."""

    path: str
    width: int
    height: int
    fps: float
    num_frames: int
    duration_s: float
    codec: str

    def to_dict(self) -> dict:
        return asdict(self)


def open_container(path: str | os.PathLike) -> av.container.InputContainer:
    """Open with the options that real-world files need; raise VideoError if it can't be opened."""
    p = Path(path)
    if not p.exists():
        raise VideoError(p, "file not found; check the path")
    if p.is_dir():
        raise VideoError(p, "is a folder, not a video file")
    if p.stat().st_size == 0:
        raise VideoError(p, "file is empty (0 bytes); re-copy or re-download it")
    try:
        # Some real AVI files carry broken metadata that PyAV would otherwise raise on.
        return av.open(str(p), metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise VideoError(
            p,
            "not a readable video (invalid data: corrupt, truncated or not a video file); "
            "re-download it or re-encode it with ffmpeg",
        ) from None
    except av.error.FFmpegError as exc:
        raise VideoError(
            p, f"cannot be opened ({_ffmpeg_reason(exc)}); re-encode it with ffmpeg"
        ) from None


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read size, frame rate, frame count and duration; prove that a frame decodes."""
    p = Path(path)
    with open_container(p) as container:
        info = read_info(p, container, count_packets=True)
    if _first_frame_size(p) is None:
        raise VideoError(p, "no frame could be decoded (corrupt or truncated video stream)")
    return info


def read_info(
    path: str | os.PathLike, container: av.container.InputContainer, count_packets: bool = False
) -> VideoInfo:
    """Stream metadata of an open container; raise VideoError when it holds no usable video.

    The frame count is the header's when it has one, else (or with `count_packets`) the
    number of video packets, which costs a demux pass but no decoding; the container is
    rewound afterwards so it can be decoded from the start.
    """
    p = Path(path)
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise VideoError(p, f"has no video stream (only {', '.join(kinds)}); not a video")
    stream = container.streams.video[0]
    fps = _frame_rate(stream)
    if fps <= 0:
        raise VideoError(p, "video stream has no frame rate; re-encode it with ffmpeg")
    num_frames = stream.frames or 0
    if count_packets or num_frames <= 0:
        try:
            num_frames = sum(1 for pkt in container.demux(stream) if pkt.size > 0)
            container.seek(0)
        except av.error.FFmpegError as exc:
            raise VideoError(
                p, f"corrupt container ({_ffmpeg_reason(exc)}); re-encode it"
            ) from None
    if num_frames <= 0:
        raise VideoError(p, "video stream has zero frames")
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        raise VideoError(p, "video stream has no frame size; re-encode it with ffmpeg")
    return VideoInfo(
        path=str(p),
        width=width,
        height=height,
        fps=round(fps, 4),
        num_frames=num_frames,
        duration_s=round(_duration(container, stream, num_frames, fps), 4),
        codec=stream.codec_context.name,
    )


def _first_frame_size(path: Path) -> tuple[int, int] | None:
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            for frame in container.decode(video=0):
                return frame.width, frame.height
    except av.error.FFmpegError:
        return None
    return None


def _frame_rate(stream: av.video.stream.VideoStream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and float(rate) > 0:
            return float(rate)
    return 0.0


def _duration(container, stream, num_frames: int, fps: float) -> float:
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
        if seconds > 0:
            return seconds
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    return num_frames / fps


def _ffmpeg_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(":")[0].strip() or type(exc).__name__


# ---------------------------------------------------------------------- folder scans


def is_video_name(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def scan_folder(folder: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """The video files under `folder` (recursive, sorted) and the other files, which are
    skipped. Hidden folders (.git, .cache) are not entered; hidden files count as skipped."""
    videos: list[Path] = []
    skipped: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            path = Path(root) / name
            hidden = name.startswith(".")
            (skipped if hidden or not is_video_name(path) else videos).append(path)
    return sorted(videos), sorted(skipped)


def skipped_summary(skipped: Sequence[str | os.PathLike], hint: str = "", examples: int = 3) -> str:
    """One line for the files a scan skipped: how many of which kind, a few names (unusual
    ones first, then ground-truth sidecars such as .json, then hidden files) and `hint`."""
    paths = [Path(p) for p in skipped]

    def kind(p: Path) -> str:
        return "hidden" if p.name.startswith(".") else (p.suffix.lower() or "no extension")

    def rank(p: Path) -> tuple:
        return (p.name.startswith("."), p.suffix.lower() in SIDECAR_EXTENSIONS, str(p))

    counts = ", ".join(f"{n} {k}" for k, n in Counter(map(kind, paths)).most_common())
    named = ", ".join(p.name for p in sorted(paths, key=rank)[:examples])
    more = ", ..." if len(paths) > examples else ""
    files = "file" if len(paths) == 1 else "files"
    line = f"skipped {len(paths)} {files} ({counts}; e.g. {named}{more})"
    return f"{line}; {hint}" if hint else line
