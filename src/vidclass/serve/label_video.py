"""How the labelling page plays each clip: the file itself when browsers play it, else its
H.264 preview (`vidclass.serve.preview`), made at most one at a time and cached in a folder
of bounded size, the least recently used previews deleted first.

A preview covers at most the first `PreviewParams.max_seconds` (30 s) of a clip; the clip's
JSON says so (`preview_note`) whenever the preview is shorter than the clip, so the page
can show it instead of letting a cut-off clip pass for a whole one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse

from vidclass.errors import VideoError
from vidclass.serve.errors import RequestError
from vidclass.serve.label_session import Clip, LabelSession
from vidclass.serve.preview import BuildSlots, PreviewCache, browser_plays
from vidclass.video.reader import open_source

PREVIEWS_AT_ONCE = 1  # previews made at a time; 2 more wait for a turn, others get 503
PREVIEWS_WAITING = 2


def default_cache_dir() -> Path:
    """Previews are kept across runs in the user's cache folder."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vidclass" / "previews"


class ClipVideos:
    """Which clips browsers play as they are, how long each is, and their previews."""

    def __init__(self, previews: PreviewCache, slots: BuildSlots | None = None) -> None:
        self.previews = previews
        self.slots = slots or BuildSlots(PREVIEWS_AT_ONCE, PREVIEWS_WAITING)
        self._known: dict[str, tuple[bool, float | None]] = {}  # id → (plays, duration)
        self._lock = threading.Lock()

    def facts(self, clip: Clip) -> tuple[bool, float | None]:
        """(browsers play the file as it is, its duration in seconds or None), once a clip."""
        with self._lock:
            known = self._known.get(clip.id)
        if known is None:
            known = (browser_plays(clip.key), _duration(clip.key))
            with self._lock:
                self._known[clip.id] = known
        return known

    def describe(self, clip: Clip) -> dict:
        """The clip JSON's video fields: played as is, duration, and what a preview covers."""
        plays, duration = self.facts(clip)
        limit = self.previews.params.max_seconds
        note = None
        if duration is not None and duration > limit + 0.05:
            note = (
                f"preview: the first {limit:g} s of this {duration:.1f} s clip (previews "
                "stop there); open the file itself to see the rest"
            )
        return {"plays_as_is": plays, "duration_s": duration, "preview_note": note}

    def preview(self, clip: Clip) -> Path:
        """The clip's preview, made now (one slot at a time) if it is not cached."""
        try:
            path = self.previews.cached(clip.key)
            if path is None:
                with self.slots.take():
                    path = self.previews.get(clip.key)
        except VideoError as exc:
            raise RequestError(422, f"{clip.name}: {exc.reason}") from None
        except OSError as exc:
            raise RequestError(404, f"{clip.name}: cannot be read ({exc.strerror})") from None
        return path


def _duration(path: str) -> float | None:
    try:
        container, info = open_source(path)
    except VideoError:
        return None
    container.close()
    return info.duration_s


def add_video_routes(app: FastAPI, session: LabelSession, videos: ClipVideos) -> None:
    """`/v1/clips/{id}/video`: the file if browsers play it, else its preview; `/preview`."""

    @app.get("/v1/clips/{clip_id}/video", summary="The clip as the browser can play it")
    def video(clip_id: str) -> FileResponse:
        c = session.get(clip_id)
        if videos.facts(c)[0] and Path(c.key).is_file():
            return FileResponse(c.key)
        return FileResponse(videos.preview(c), media_type="video/mp4")

    @app.get("/v1/clips/{clip_id}/preview", summary="A small H.264 preview of the clip")
    def preview(clip_id: str) -> FileResponse:
        return FileResponse(videos.preview(session.get(clip_id)), media_type="video/mp4")
