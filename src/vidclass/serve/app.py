"""The HTTP service and web page: `create_app(run)` returns a FastAPI app serving one model.

Routes: `GET /` (the page), `GET /healthz`, `GET /v1/model`, `POST /v1/predict` (and
`/v1/localize`, `/v1/detect` when the model has them), `POST /v1/jobs` + `GET /v1/jobs/{id}`
for long videos, `POST /v1/preview` (an H.264 copy of an upload the browser cannot play),
OpenAPI docs at `/docs`.

Every inference runs on one bounded `JobPool` (a direct request waits for its job), so the
server holds at most `workers + max_queue` videos; beyond that it answers 503 with
Retry-After. Uploads stream to a private temp dir under generated names, are checked with
`probe` before they are queued and are deleted as soon as their job ends. This module holds
the routes only; what they do is `vidclass.serve.service.Service`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from vidclass.serve import JOB_TIMEOUT_S
from vidclass.serve.errors import RequestError
from vidclass.serve.guard import guarded_app
from vidclass.serve.jobs import JobPool
from vidclass.serve.options import TASKS, ServedDetectors, form_fields, request_models
from vidclass.serve.preview import preview_router
from vidclass.serve.service import Service, check_video, load_classifier
from vidclass.serve.upload import FILE_FIELD

__all__ = ["RequestError", "check_video", "create_app", "load_classifier"]

STATIC = Path(__file__).with_name("static")


def _upload_body(fields: dict[str, dict]) -> dict:
    """OpenAPI description of the multipart body (the route reads the stream itself)."""
    props = {FILE_FIELD: {"type": "string", "format": "binary", "description": "the video"}}
    props.update(fields)
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": [FILE_FIELD], "properties": props}
                },
                "video/mp4": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }


_TASK_FIELD = {"task": {"type": "string", "enum": list(TASKS), "default": "predict"}}
_OPTIONS_FIELD = {
    "options": {"type": "string", "description": "the options as one JSON object instead"}
}


def create_app(
    run: str | os.PathLike | Any,
    max_upload_mb: float = 200,
    workers: int = 1,
    max_queue: int = 4,
    result_ttl_s: float = 600.0,
    temp_dir: str | os.PathLike | None = None,
    detector: str | None = None,
    job_timeout_s: float = JOB_TIMEOUT_S,
    allow_hosts: Sequence[str] = (),
) -> FastAPI:
    """A FastAPI app serving the run folder `run` (or an already loaded `Classifier`).

    Only `model.safetensors` + `config.json` are loaded, never a pickle. `workers` threads
    run inference (keep it at 1-2 on a small machine: each uses torch's threads) and at
    most `max_queue` more jobs wait, each for at most `job_timeout_s` once it runs; `temp_dir`
    is where the private upload folder is made. `detector` (motion, hog or a
    `train-detector` folder) is /v1/detect's default; clients may choose it or a built-in
    one by name, never name a path themselves. Requests are answered under localhost, IP
    addresses and the `allow_hosts` names only, writes only from no page or this one's
    (`vidclass.serve.guard`).
    """
    clf = load_classifier(run) if isinstance(run, (str, os.PathLike)) else run
    detectors = ServedDetectors(detector)
    if detector is not None:
        from vidclass.detect.detect import load_detector

        load_detector(detector)  # a wrong name or folder fails at startup, not per request
    models = request_models(detectors)
    pool = JobPool(workers, max_queue, result_ttl_s, job_timeout_s=job_timeout_s)
    # mkdtemp makes the folder readable by this user only (0700).
    uploads = Path(tempfile.mkdtemp(prefix="vidclass-serve-", dir=temp_dir))
    service = Service(clf, detectors, models, pool, uploads, int(max_upload_mb * 1e6))

    app = guarded_app(
        "vidclass",
        "Video classification of uploaded videos with one trained model.",
        service.close,
        allow_hosts,
        version=_version(),
    )
    app.state.classifier, app.state.pool, app.state.upload_dir = clf, pool, uploads
    _info_routes(app, service)
    _task_routes(app, service)
    return app


def _info_routes(app: FastAPI, service: Service) -> None:
    """The page, its static files, health and the served model."""

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # POST /v1/preview: an H.264 preview of an upload the page's <video> cannot play (AVI...)
    app.include_router(preview_router(service.upload_dir, service.max_bytes))

    @app.get("/healthz", summary="Liveness and the pool's load")
    async def healthz() -> dict:
        return {"status": "ok", **service.pool.counts()}

    @app.get("/v1/model", summary="The served model: classes, method, input, tasks")
    async def model_info() -> dict:
        return service.model_info()


def _task_routes(app: FastAPI, service: Service) -> None:
    """Inference: one direct route per task, and jobs for long videos."""
    models = service.models

    @app.post(
        "/v1/predict",
        summary="Label an uploaded video: label, top-k, per-window timeline",
        openapi_extra=_upload_body({**form_fields([models["predict"]]), **_OPTIONS_FIELD}),
    )
    async def predict(request: Request) -> JSONResponse:
        """The predict JSON of `vidclass predict`; waits for the result (see /v1/jobs for long
        videos). 413 over the size limit, 415/422 for a non-video or corrupt file, 503 when
        the server is full."""
        return await service.direct(request, "predict")

    @app.post(
        "/v1/localize",
        summary="Temporal localization: labelled segments of an uploaded video",
        openapi_extra=_upload_body({**form_fields([models["localize"]]), **_OPTIONS_FIELD}),
    )
    async def localize(request: Request) -> JSONResponse:
        """`{"segments": [{"label","t_start","t_end","score"}], ...}`; 501 when the model has
        no localization."""
        return await service.direct(request, "localize")

    @app.post(
        "/v1/detect",
        summary="Spatio-temporal detection: tracks with boxes and action segments",
        openapi_extra=_upload_body({**form_fields([models["detect"]]), **_OPTIONS_FIELD}),
    )
    async def detect(request: Request) -> JSONResponse:
        """`{"tracks": [{"track_id","boxes":[[t,x1,y1,x2,y2]],"segments":[...]}]}`; 501 when
        the model has no detection."""
        return await service.direct(request, "detect")

    @app.post(
        "/v1/jobs",
        status_code=202,
        summary="Start a job on an uploaded video; poll GET /v1/jobs/{id}",
        openapi_extra=_upload_body(
            {**_TASK_FIELD, **form_fields(list(models.values())), **_OPTIONS_FIELD}
        ),
    )
    async def create_job(request: Request) -> JSONResponse:
        """202 with the job id at once (after the upload); the work runs in the background."""
        return await service.start_job(request)

    @app.get("/v1/jobs/{job_id}", summary="A job's status and progress; its result once done")
    async def job_status(job_id: str) -> JSONResponse:
        """`status` is queued, running, done or failed; `progress` goes from 0 to 1. A done
        job's `result` is returned once, then forgotten; unfetched results expire."""
        return service.job_status(job_id)


def _version() -> str:
    from vidclass import __version__

    return __version__
