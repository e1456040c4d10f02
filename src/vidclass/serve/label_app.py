"""The labelling page of `vidclass label`: `create_label_app(...)` returns its FastAPI app.

Routes: `GET /` (the page), `GET /v1/state` (the queue, progress, scoring), `GET
/v1/clips/{id}` (one clip, its label and the model's suggestion with the top-3 scores),
`GET /v1/clips/{id}/video` (the file when browsers play it, else its preview),
`GET /v1/clips/{id}/preview`, `POST /v1/clips/{id}/label` (`{"label": CLASS}`),
`POST /v1/clips/{id}/skip`, `POST /v1/undo`, `POST /v1/rescore`.

Safety as `vidclass serve`: 127.0.0.1 by default; clips are named by ids the server made, a
request never names a file (no query parameters are taken, the body is `{"label": CLASS}`
and nothing else), so nothing outside the labelled clips can be read or written; every
write is JSON from no page or this one, under a Host of this server (`serve.guard`).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from vidclass.errors import UserError
from vidclass.serve import CACHE_MB, serve_app
from vidclass.serve.errors import RequestError, error_response
from vidclass.serve.guard import guarded_app
from vidclass.serve.label_session import LabelSession, folder_clips, make_clip, review_rows
from vidclass.serve.label_store import ChangeLog, LabelStore, changes_path
from vidclass.serve.label_video import ClipVideos, add_video_routes, default_cache_dir
from vidclass.serve.preview import PreviewCache
from vidclass.serve.service import load_classifier

log = logging.getLogger("vidclass.label")

STATIC = Path(__file__).with_name("static")
MAX_BODY = 4096


def build_session(
    folder: str | os.PathLike | None,
    classes: list[str] | None,
    out_csv: str | os.PathLike | None,
    model: str | os.PathLike | Any = None,
    review: str | os.PathLike | None = None,
    group_regex: str | None = None,
) -> LabelSession:
    """The session of `vidclass label` (see `create_label_app`)."""
    if (folder is None) == (review is None):
        raise UserError("give a FOLDER of clips to label, or --review DATA_OR_CSV (not both)")
    if group_regex is not None:
        try:
            re.compile(group_regex)
        except re.error as exc:
            raise UserError(f"--group-regex {group_regex!r} is not a valid regex: {exc}") from None
    reload: Callable[[], Any] | None = None
    if isinstance(model, (str, os.PathLike)):
        run = model
        model = load_classifier(run)
        reload = lambda: load_classifier(run)  # noqa: E731 - rescore picks up a retrained run
    if review is not None:
        if model is None:
            raise UserError("--review needs --model RUN: the model points at likely label errors")
        rows, root = review_rows(review)
        if not rows:
            raise UserError(f"{review}: no labelled clips to review")
        if out_csv is None:  # a reviewed CSV is corrected in place
            out_csv = review if Path(review).is_file() else "labels.csv"
        out = Path(out_csv)
        store = LabelStore(out, group_regex)  # the CSV's lock: released on any error below
        with store.closed_on_error():
            store.seed(rows)
            clips = [make_clip(r.key, root) for r in rows]
            found = list(dict.fromkeys([*model.classes, *(r.label for r in store.rows.values())]))
            return LabelSession(
                clips, classes or found, store, model, reload, ChangeLog(changes_path(out))
            )
    clips = folder_clips(folder)
    if classes is None and model is not None:
        classes = list(model.classes)
    store = LabelStore(Path(out_csv or "labels.csv"), group_regex)
    with store.closed_on_error():
        return LabelSession(clips, classes or [], store, model, reload)


def create_label_app(
    folder: str | os.PathLike | None,
    classes: list[str] | None,
    out_csv: str | os.PathLike | None = None,
    model: str | os.PathLike | Any = None,
    review: str | os.PathLike | None = None,
    group_regex: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    cache_mb: float = CACHE_MB,
    allow_hosts: Sequence[str] = (),
) -> FastAPI:
    """The labelling page for the clips under `folder`, written to `out_csv` (labels.csv).

    `model`: a run folder or a loaded Classifier, to suggest labels and order the clips by
    uncertainty; `review`: a labels CSV, prepared folder or class folders to review instead
    of `folder` (the CSV itself is corrected unless `out_csv` is given; decisions are logged
    to `<out>.changes.csv`). Previews of clips browsers cannot play go to `cache_dir`
    (default `~/.cache/vidclass/previews`), at most `cache_mb` of them (least recently
    used deleted first). Requests are answered under localhost, IP addresses and the
    `allow_hosts` names (e.g. the `--host` bound to).
    """
    session = build_session(folder, classes, out_csv, model, review, group_regex)

    app = guarded_app(
        "vidclass label",
        "Label video clips into the CSV that `vidclass prepare` reads.",
        session.close,
        allow_hosts,
        json_writes=True,
    )
    app.state.session = session
    _add_guards(app)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "label.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/v1/state", summary="The queue, progress and scoring")
    def state() -> dict:
        return session.state()

    previews = PreviewCache(cache_dir or default_cache_dir(), max_bytes=int(cache_mb * 1e6))
    videos = ClipVideos(previews)

    @app.get("/v1/clips/{clip_id}", summary="One clip: its label and the model's suggestion")
    def clip(clip_id: str) -> dict:
        return {**session.clip(clip_id), **videos.describe(session.get(clip_id))}

    add_video_routes(app, session, videos)

    @app.post("/v1/clips/{clip_id}/label", summary='Label a clip: {"label": CLASS}')
    async def label(clip_id: str, request: Request) -> dict:
        session.get(clip_id)  # 404 before the body is read
        body = await read_body(request)
        return await run_in_threadpool(session.label, clip_id, body["label"])

    @app.post("/v1/clips/{clip_id}/skip", summary="Skip a clip for now")
    def skip(clip_id: str) -> dict:
        return session.skip(clip_id)

    @app.post("/v1/undo", summary="Undo the newest label of this session")
    def undo() -> dict:
        return session.undo()

    @app.post("/v1/rescore", summary="Score every clip again (the run reloaded)")
    def rescore() -> dict:
        return session.rescore()

    return app


def _add_guards(app: FastAPI) -> None:
    """Refusals with a message: a query parameter, a session error, a route that is not one."""

    @app.middleware("http")
    async def no_query(request: Request, call_next):
        # Nothing here takes a query parameter; one that names a file is refused, not ignored.
        if request.url.path.startswith("/v1/") and request.query_params:
            names = ", ".join(sorted(request.query_params.keys()))[:80]
            return error_response(422, f"this API takes no query parameters (got: {names})")
        return await call_next(request)

    @app.exception_handler(RequestError)
    async def request_error(_: Request, exc: RequestError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:  # e.g. a path where a clip id belongs
            return error_response(
                404,
                f"no such route {request.url.path[:80]!r}: clips are named by the ids of "
                "GET /v1/state, never by a path",
            )
        return error_response(exc.status_code, str(exc.detail))


async def read_body(request: Request) -> dict:
    """The label request's body, `{"label": CLASS}` exactly; RequestError 4xx otherwise."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise RequestError(413, f'the body is {{"label": CLASS}}, at most {MAX_BODY} bytes')
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise RequestError(400, 'the body must be JSON: {"label": CLASS}') from None
    if not isinstance(body, dict) or "label" not in body:
        raise RequestError(422, 'the body must be {"label": CLASS}')
    extra = sorted(set(body) - {"label"})
    if extra:
        names = ", ".join(repr(e[:40]) for e in extra[:5])
        raise RequestError(422, f'unexpected field {names}: the body is {{"label": CLASS}} only')
    return body


def run(
    folder: str | os.PathLike | None,
    classes: list[str] | None,
    out_csv: str | os.PathLike | None = None,
    model: str | os.PathLike | None = None,
    review: str | os.PathLike | None = None,
    group_regex: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    log: Callable[[str], None] = print,
    cache_mb: float = CACHE_MB,
    allow_hosts: Sequence[str] = (),
) -> None:
    """Serve the labelling page with uvicorn until interrupted (Ctrl-C)."""
    app = create_label_app(
        folder, classes, out_csv, model, review, group_regex, cache_dir, cache_mb,
        allow_hosts=[host, *allow_hosts],
    )  # fmt: skip
    session: LabelSession = app.state.session
    what = "reviewing" if session.review else "labelling"
    serve_app(
        app, f"{what} {len(session.clips)} clips into {session.store.csv_path}", host, port, log
    )


def parse_classes(text: str | None) -> list[str] | None:
    """`a,b,c` → ["a", "b", "c"]; None stays None (the model's classes)."""
    if text is None:
        return None
    names = [c.strip() for c in text.split(",")]
    if not all(names):
        raise UserError(f"--classes {text!r}: give names separated by commas, e.g. walk,run,jump")
    return names
