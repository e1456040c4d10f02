"""A small H.264 preview of any video a browser cannot play (AVI, MKV, GIF, ...).

Browsers play H.264/VP8/VP9/AV1 in MP4 or WebM and little else; UCF101's AVIs show "cannot
play this video format". The server decodes such a file once, in bounded memory (frames are
streamed one at a time, never the whole video) and bounded time (at most `max_seconds` of it,
at most `max_fps`, at most `max_width` pixels wide), and writes it with the one H.264 writer
(`vidclass.video.writer.VideoWriter`). Previews are cached on disk under a name made of
everything that determines them (the source's path, size and mtime, and the preview
parameters), so a changed source gets a new preview and an unchanged one is never encoded
twice.

`preview_router` adds `POST /v1/preview` to the `vidclass serve` app: an upload in, the mp4
out (the page asks for it when its <video> cannot play the chosen file).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import cv2
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from vidclass.errors import VideoError
from vidclass.serve.errors import RequestError, error_response
from vidclass.serve.upload import receive_upload
from vidclass.video.reader import open_source
from vidclass.video.writer import VideoWriter

# What <video> plays in Chromium, Firefox and Safari alike, by container and codec.
PLAYABLE_SUFFIXES = (".mp4", ".m4v", ".webm", ".mov")
PLAYABLE_CODECS = ("h264", "vp8", "vp9", "av1")
PLAYABLE_PIXEL_FORMATS = ("yuv420p", "yuvj420p")


@dataclass(frozen=True)
class PreviewParams:
    """How small a preview is; part of its cache key."""

    max_width: int = 320
    max_seconds: float = 30.0
    max_fps: float = 15.0
    crf: int = 28


def browser_plays(path: str | os.PathLike) -> bool:
    """Whether browsers play the file as it is (so it needs no preview)."""
    if Path(path).suffix.lower() not in PLAYABLE_SUFFIXES:
        return False
    try:
        container, _ = open_source(path)
    except VideoError:
        return False
    with container:
        ctx = container.streams.video[0].codec_context
        return ctx.name in PLAYABLE_CODECS and (
            ctx.format is None or ctx.format.name in PLAYABLE_PIXEL_FORMATS
        )


def preview_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """Even (yuv420p) size at most `max_width` wide, the aspect kept."""
    scale = min(1.0, max_width / max(1, width))
    w = max(2, int(round(width * scale / 2)) * 2)
    h = max(2, int(round(height * scale / 2)) * 2)
    return w, h


def make_preview(
    source: str | os.PathLike, out: str | os.PathLike, params: PreviewParams = PreviewParams()
) -> Path:
    """Encode the preview of `source` to `out` (renamed into place when complete).

    VideoError when nothing decodes; a file whose decoding fails part way gets the part that
    decoded, as `predict` does."""
    container, info = open_source(source)
    width, height = preview_size(info.width, info.height, params.max_width)
    fps = min(info.fps, params.max_fps) if info.fps > 0 else params.max_fps
    step = 1.0 / fps
    options = {"preset": "veryfast", "crf": str(params.crf)}
    writer = None
    next_t = 0.0
    try:
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            try:
                for i, frame in enumerate(container.decode(stream)):
                    # file time from the index (robust to odd AVI timestamps), as the reader does
                    t = i / info.fps if info.fps > 0 else (frame.time or 0.0)
                    if t >= params.max_seconds:
                        break
                    if t + 1e-9 < next_t:
                        continue  # dropped: only the kept frames are converted
                    next_t += step * max(1, int((t - next_t) // step) + 1)
                    rgb = frame.to_ndarray(format="rgb24")
                    if rgb.shape[1] != width or rgb.shape[0] != height:
                        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
                    if writer is None:
                        writer = VideoWriter(out, fps, width, height, options=options)
                    writer.write(rgb)
            except av.error.FFmpegError as exc:
                if writer is None:
                    raise VideoError(
                        source, f"decoding failed ({exc}); re-encode the video"
                    ) from None
        if writer is None:
            raise VideoError(source, "no frame could be decoded (corrupt or empty video)")
        return writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise


class PreviewCache:
    """Previews of files on disk, made once each and kept in `folder`.

    A preview is named `<digest of the path>-<digest of path, size, mtime and params>.mp4`;
    when a source changes, its new preview replaces the old one. One lock per source: two
    requests for the same clip encode it once. The folder is bounded by `max_bytes` and
    `max_entries` (None: unbounded): the least recently used previews go first (a preview's
    mtime is its last use), when one is made and when the cache is opened.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        params: PreviewParams = PreviewParams(),
        max_entries: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.params = params
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.trim()  # a cache left over its bound (or from before it had one) shrinks now

    def path_for(self, source: str | os.PathLike, identity: str | None = None) -> Path:
        """Where the preview of `source` is (or will be). `identity` replaces the file's
        path, size and mtime in the key (e.g. an upload's content digest)."""
        source = Path(source).resolve()
        if identity is None:
            st = source.stat()
            identity = json.dumps([str(source), st.st_size, st.st_mtime_ns])
            prefix = _digest(str(source))
        else:
            prefix = _digest(identity)
        key = _digest(json.dumps([identity, asdict(self.params)]))
        return self.folder / f"{prefix}-{key}.mp4"

    def cached(self, source: str | os.PathLike, identity: str | None = None) -> Path | None:
        """The preview of `source` if it is made already (and now the most recently used)."""
        target = self.path_for(source, identity)
        try:
            os.utime(target)
        except OSError:
            return None
        return target

    def get(self, source: str | os.PathLike, identity: str | None = None) -> Path:
        """The preview of `source`, made now if it is not cached."""
        target = self.path_for(source, identity)
        with self._guard:
            lock = self._locks.setdefault(target.name.split("-")[0], threading.Lock())
        with lock:
            if self.cached(source, identity) is not None:
                return target
            self.folder.mkdir(parents=True, exist_ok=True)
            make_preview(source, target, self.params)
            prefix = target.name.split("-")[0]
            for stale in self.folder.glob(f"{prefix}-*.mp4"):
                if stale != target:
                    stale.unlink(missing_ok=True)  # the preview of the source as it was
            self.trim(keep=target)
            return target

    def trim(self, keep: Path | None = None) -> None:
        """Delete the least recently used previews beyond `max_entries` / `max_bytes`."""
        if self.max_entries is None and self.max_bytes is None:
            return
        entries = []
        for path in self.folder.glob("*.mp4"):
            if path.name.startswith("."):
                continue  # a preview being written
            try:
                st = path.stat()
            except OSError:
                continue
            entries.append((st.st_mtime_ns, st.st_size, path))
        entries.sort(key=lambda e: e[0], reverse=True)  # most recently used first
        total, kept = 0, 0
        for _, size, path in entries:
            total, kept = total + size, kept + 1
            over = (self.max_bytes is not None and total > self.max_bytes) or (
                self.max_entries is not None and kept > self.max_entries
            )
            if over and path != keep:
                path.unlink(missing_ok=True)
                total, kept = total - size, kept - 1


class BuildSlots:
    """At most `at_once` previews are made at a time; up to `waiting` more requests wait up
    to `wait_s` for a turn (each holding a thread), and any beyond are refused with a 503
    and Retry-After at once, so a burst of requests never queues without bound."""

    def __init__(self, at_once: int = 1, waiting: int = 0, wait_s: float = 60.0) -> None:
        self.at_once, self.waiting, self.wait_s = at_once, waiting, wait_s
        self._slots = threading.BoundedSemaphore(at_once)
        self._lock = threading.Lock()
        self._holders = 0  # making one, or waiting for a turn

    @contextmanager
    def take(self) -> Iterator[None]:
        with self._lock:
            full = self._holders >= self.at_once + self.waiting
            if not full:
                self._holders += 1
        if full:
            raise busy()
        try:
            if not self._slots.acquire(timeout=self.wait_s if self.waiting else 0):
                raise busy()
            try:
                yield
            finally:
                self._slots.release()
        finally:
            with self._lock:
                self._holders -= 1


def busy() -> RequestError:
    return RequestError(
        503, "the server is making other previews; retry in 2 s", {"Retry-After": "2"}
    )


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def file_digest(path: str | os.PathLike) -> str:
    """The content digest of a file, read in chunks."""
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def preview_router(
    folder: str | os.PathLike,
    max_bytes: int,
    max_at_once: int = 1,
    params: PreviewParams = PreviewParams(max_seconds=120.0),
) -> APIRouter:
    """`POST /v1/preview` for the serve page: the uploaded video in (multipart field `video`
    or a raw body), its H.264 preview out (`video/mp4`). Uploads and previews live in
    `folder` (the server's private temp dir, removed at shutdown); at most 8 previews are
    kept, and at most `max_at_once` are made at a time (others get 503 + Retry-After). A
    result's timeline is longer than a label clip, so the preview covers 120 s."""
    folder = Path(folder)
    cache = PreviewCache(folder / "previews", params, max_entries=8)
    slots = BuildSlots(max_at_once)
    router = APIRouter()

    @router.post(
        "/v1/preview",
        summary="A small H.264 preview of an uploaded video, for browsers that cannot play it",
        response_class=FileResponse,
        responses={200: {"content": {"video/mp4": {}}}},
    )
    async def preview(request: Request):
        """The upload as a small H.264 MP4 (at most 320 px wide, 120 s, 15 fps).
        415/422 when it is not a decodable video, 413 over the size limit."""
        upload = None
        try:
            with slots.take():  # taken before the upload is read: bounds the disk too
                upload = await receive_upload(request, folder, max_bytes)
                digest = await run_in_threadpool(file_digest, upload.path)
                path = await run_in_threadpool(cache.get, upload.path, digest)
        except RequestError as exc:
            return exc.response()
        except VideoError as exc:
            name = upload.filename if upload is not None else "the upload"
            return error_response(422, f"{name}: {exc.reason}")
        finally:
            if upload is not None:
                upload.delete()
        return FileResponse(path, media_type="video/mp4")

    return router
