"""The HTTP service and web page: `create_app(run)` returns a FastAPI app serving one model.

Routes: `GET /` (the page), `GET /healthz`, `GET /v1/model`, `POST /v1/predict` (and
`/v1/localize`, `/v1/detect` when the model has them), `POST /v1/jobs` + `GET /v1/jobs/{id}`
for long videos, OpenAPI docs at `/docs`.

Every inference runs on one bounded `JobPool` (a direct request waits for its job), so the
server holds at most `workers + max_queue` videos; beyond that it answers 503 with
Retry-After. Uploads stream to a private temp dir under generated names, are checked with
`probe` before they are queued and are deleted as soon as their job ends.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import shutil
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from vidclass.errors import UserError, VideoError
from vidclass.serve.jobs import FAILED, JobPool, PoolFull
from vidclass.serve.options import (
    TASKS,
    ServedDetectors,
    form_fields,
    raw_options,
    request_models,
    validate_options,
)
from vidclass.serve.preview import preview_router
from vidclass.serve.upload import FILE_FIELD, Upload, UploadError, receive_upload
from vidclass.video.probe import VIDEO_EXTENSIONS, open_container, probe

log = logging.getLogger("vidclass.serve")

STATIC = Path(__file__).with_name("static")


class JobError(Exception):
    """A job that failed for a reason the client can act on, with its HTTP status."""

    def __init__(self, http_status: int, message: str) -> None:
        self.http_status = http_status
        super().__init__(message)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


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
) -> FastAPI:
    """A FastAPI app serving the run folder `run` (or an already loaded `Classifier`).

    Only `model.safetensors` + `config.json` are loaded, never a pickle. `workers` threads
    run inference (keep it at 1-2 on a small machine: each uses torch's threads) and at
    most `max_queue` more jobs wait; `temp_dir` is where the private upload folder is made.
    `detector` (motion, hog or a `train-detector` folder) is /v1/detect's default; clients
    may choose it or a built-in one by name, never name a path themselves.
    """
    if isinstance(run, (str, os.PathLike)):
        clf = load_classifier(run)
    else:
        clf = run
    detectors = ServedDetectors(detector)
    if detector is not None:
        from vidclass.detect.detect import load_detector

        load_detector(detector)  # a wrong name or folder fails at startup, not per request
    models = request_models(detectors)
    max_bytes = int(max_upload_mb * 1e6)
    pool = JobPool(workers=workers, max_queue=max_queue, result_ttl_s=result_ttl_s)
    # mkdtemp makes the folder readable by this user only (0700).
    uploads = Path(tempfile.mkdtemp(prefix="vidclass-serve-", dir=temp_dir))

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        try:
            yield
        finally:
            pool.shutdown()
            shutil.rmtree(uploads, ignore_errors=True)

    app = FastAPI(
        title="vidclass",
        summary="Video classification of uploaded videos with one trained model.",
        version=_version(),
        lifespan=lifespan,
    )
    app.state.classifier, app.state.pool, app.state.upload_dir = clf, pool, uploads

    def available() -> dict[str, bool]:
        return {t: t == "predict" or callable(getattr(clf, t, None)) for t in TASKS}

    # ------------------------------------------------------------------ page, health, model

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # POST /v1/preview: an H.264 preview of an upload the page's <video> cannot play (AVI...)
    app.include_router(preview_router(uploads, max_bytes))

    @app.get("/healthz", summary="Liveness and the pool's load")
    async def healthz() -> dict:
        return {"status": "ok", **pool.counts()}

    @app.get("/v1/model", summary="The served model: classes, method, input, tasks")
    async def model_info() -> dict:
        cfg = clf.config
        return {
            "model": cfg.get("model"),
            "classes": list(clf.classes),
            "num_classes": len(clf.classes),
            "input": {
                "frames": clf.frames,
                "size": [clf.size, clf.size],
                "sample_fps": clf.sample_fps,
                "normalize": cfg.get("normalize"),
            },
            "backend": getattr(clf, "backend", "torch"),
            "tasks": available(),
            "video_extensions": list(VIDEO_EXTENSIONS),
            "detectors": list(detectors.specs),
            "detector": detectors.default,
            "max_upload_mb": max_bytes / 1e6,
            "workers": pool.workers,
            "max_queue": pool.max_queue,
        }

    # ------------------------------------------------------------------ inference

    def options_for(task: str, fields: dict[str, str], query: dict[str, str]) -> dict:
        """Form fields and query parameters → validated keyword options of the method."""
        opts = validate_options(task, models[task], raw_options(fields, query))
        if task == "predict":
            window = opts.get("window")
            if window is not None and window > clf.frames:
                raise UploadError(
                    422, f"window={window}: at most the model's {clf.frames} frames per window"
                )
            if opts.get("top_k", 1) > len(clf.classes):
                opts["top_k"] = len(clf.classes)
        return opts

    def make_work(task: str, upload: Upload, opts: dict):
        """The job body: run the method on the uploaded file; errors named by the upload."""

        def work(progress) -> dict:
            method = clf.predict if task == "predict" else getattr(clf, task)
            kwargs = dict(opts)
            if task == "detect":  # the public name → what it means here (maybe a folder)
                kwargs["detector"] = detectors.specs[opts.get("detector", detectors.default)]
            if "progress" in inspect.signature(method).parameters:
                kwargs["progress"] = progress
            try:
                result = method(str(upload.path), **kwargs)
            except UserError as exc:
                text = str(exc).replace(str(upload.path), upload.filename)
                raise JobError(422, text) from None
            except Exception as exc:
                log.exception("%s failed on %s", task, upload.filename)
                text = f"{task} failed on {upload.filename}: {type(exc).__name__}: {exc}"
                raise JobError(500, text.replace(str(upload.path), upload.filename)) from None
            if isinstance(result, dict):
                result = {**result, "video": upload.filename, "task": task}
                if task == "detect":  # the public name, never the server's folder
                    result["detector"] = opts.get("detector", detectors.default)
                for key in ("annotated", "plot"):
                    result.pop(key, None)
            return result

        return work

    def task_error(task: str) -> UploadError | None:
        if task not in TASKS:
            return UploadError(422, f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        if not available()[task]:
            return UploadError(
                501,
                f"{task} is not available for this model ({clf.config.get('model')}): this "
                f"vidclass version or model has no {task}; use /v1/predict, or see "
                "GET /v1/model for what is available",
            )
        return None

    async def accept(request: Request, task: str | None):
        """Receive, check and queue one upload: the Job, or the error response to send.

        `task` None: it comes from the form field `task` (default predict)."""
        if task is not None and (err := task_error(task)):
            return _error(err.status, err.message)
        try:
            pool.reserve()  # refused before the upload is read; bounds uploads on disk too
        except PoolFull as exc:
            return _busy(exc.retry_after_s, str(exc))
        submitted = False
        try:
            upload = await receive_upload(request, uploads, max_bytes)
        except UploadError as exc:
            pool.unreserve()
            return _error(exc.status, exc.message)
        except BaseException:
            pool.unreserve()
            raise
        try:
            form_task = upload.fields.pop("task", "")
            if task is None:
                task = form_task or "predict"
                if err := task_error(task):
                    raise err
            opts = options_for(task, upload.fields, dict(request.query_params))
            await run_in_threadpool(check_video, upload)
            job = pool.submit(task, make_work(task, upload, opts), upload.delete, reserved=True)
            submitted = True
            return job
        except UploadError as exc:
            return _error(exc.status, exc.message)
        finally:
            if not submitted:
                upload.delete()
                pool.unreserve()

    async def direct(request: Request, task: str) -> JSONResponse:
        job = await accept(request, task)
        if isinstance(job, JSONResponse):
            return job
        try:
            # shield: a cancelled request (client gone) must not cancel the queued job
            # under the pool's feet; the job finishes and its result is dropped below.
            await asyncio.shield(asyncio.wrap_future(job.future))
        finally:
            pool.discard(job.id)
        if job.status == FAILED:
            return _error(job.error_status, job.error or "failed")
        return JSONResponse(job.result)

    @app.post(
        "/v1/predict",
        summary="Label an uploaded video: label, top-k, per-window timeline",
        openapi_extra=_upload_body({**form_fields([models["predict"]]), **_OPTIONS_FIELD}),
    )
    async def predict(request: Request) -> JSONResponse:
        """The predict JSON of `vidclass predict`; waits for the result (see /v1/jobs for long
        videos). 413 over the size limit, 415/422 for a non-video or corrupt file, 503 when
        the server is full."""
        return await direct(request, "predict")

    @app.post(
        "/v1/localize",
        summary="Temporal localization: labelled segments of an uploaded video",
        openapi_extra=_upload_body({**form_fields([models["localize"]]), **_OPTIONS_FIELD}),
    )
    async def localize(request: Request) -> JSONResponse:
        """`{"segments": [{"label","t_start","t_end","score"}], ...}`; 501 when the model has
        no localization."""
        return await direct(request, "localize")

    @app.post(
        "/v1/detect",
        summary="Spatio-temporal detection: tracks with boxes and action segments",
        openapi_extra=_upload_body({**form_fields([models["detect"]]), **_OPTIONS_FIELD}),
    )
    async def detect(request: Request) -> JSONResponse:
        """`{"tracks": [{"track_id","boxes":[[t,x1,y1,x2,y2]],"segments":[...]}]}`; 501 when
        the model has no detection."""
        return await direct(request, "detect")

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
        job = await accept(request, request.query_params.get("task"))
        if isinstance(job, JSONResponse):
            return job
        return JSONResponse(
            {"id": job.id, "task": job.task, "status": job.status, "url": f"/v1/jobs/{job.id}"},
            status_code=202,
            headers={"Location": f"/v1/jobs/{job.id}"},
        )

    @app.get("/v1/jobs/{job_id}", summary="A job's status and progress; its result once done")
    async def job_status(job_id: str) -> JSONResponse:
        """`status` is queued, running, done or failed; `progress` goes from 0 to 1. A done
        job's `result` is returned once, then forgotten; unfetched results expire."""
        job = pool.pop_finished(job_id)
        if job is None:
            return _error(
                404,
                f"no job {job_id!r}: it never existed, its result was already fetched, or it "
                f"expired ({pool.result_ttl_s:.0f} s after finishing)",
            )
        body = job.to_dict()
        if job.status == FAILED:
            body["error_status"] = job.error_status
        return JSONResponse(body)

    return app


def _busy(retry_after_s: int, message: str | None = None) -> JSONResponse:
    return _error(
        503,
        message
        or f"the server is busy (all workers and the queue are full); retry in {retry_after_s} s",
        headers={"Retry-After": str(retry_after_s)},
    )


def check_video(upload: Upload) -> None:
    """415 when the file is not a video at all, 422 when it is one but cannot be decoded."""
    try:
        container = open_container(upload.path)
    except VideoError as exc:
        raise UploadError(415, f"{upload.filename}: {exc.reason}") from None
    with container:
        has_video = bool(container.streams.video)
    if not has_video:
        raise UploadError(
            415, f"{upload.filename}: has no video stream; not a video (send an MP4, AVI, ...)"
        )
    try:
        probe(upload.path)
    except VideoError as exc:
        raise UploadError(422, f"{upload.filename}: {exc.reason}") from None


def load_classifier(run: str | os.PathLike):
    """The run's Classifier, from safetensors only; a UserError naming what is missing."""
    from vidclass.models.run import MODEL_FILE
    from vidclass.predict.classifier import Classifier

    folder = Path(run)
    weights = folder / MODEL_FILE
    if not (folder / "config.json").is_file() or not weights.is_file():
        raise UserError(
            f"{folder}: not a run folder (needs config.json and {MODEL_FILE}); "
            "train one with `vidclass train` or point to its output folder"
        )
    return Classifier.load(folder, backend="torch")


def _version() -> str:
    from vidclass import __version__

    return __version__
