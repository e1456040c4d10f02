"""What the routes of `vidclass.serve.app` do: one `Service` holds the served model, the job
pool and the upload folder, and turns a request into a queued job or an error response.

Every inference runs on the bounded `JobPool` (a direct request waits for its job). A slot is
reserved before the upload is read, the upload is checked with `probe` before it is queued,
and it is deleted as soon as its job ends (or at once when no job follows).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from vidclass.errors import UserError, VideoError
from vidclass.serve.errors import RequestError, error_response
from vidclass.serve.jobs import FAILED, Job, JobPool, PoolFull, Work
from vidclass.serve.options import (
    TASKS,
    ServedDetectors,
    raw_options,
    validate_options,
)
from vidclass.serve.upload import Upload, receive_upload
from vidclass.video.probe import VIDEO_EXTENSIONS, open_container, probe

log = logging.getLogger("vidclass.serve")


def busy_response(retry_after_s: int, message: str | None = None) -> JSONResponse:
    return error_response(
        503,
        message
        or f"the server is busy (all workers and the queue are full); retry in {retry_after_s} s",
        headers={"Retry-After": str(retry_after_s)},
    )


class Service:
    """The served classifier `clf` and everything a request needs besides it."""

    def __init__(
        self,
        clf: Any,
        detectors: ServedDetectors,
        models: dict[str, type[BaseModel]],
        pool: JobPool,
        upload_dir: Path,
        max_bytes: int,
    ) -> None:
        self.clf, self.detectors, self.pool = clf, detectors, pool
        self.models = models  # the client options' model of each task (`request_models`)
        self.upload_dir, self.max_bytes = upload_dir, max_bytes

    def close(self) -> None:
        """At shutdown: let running jobs finish, drop queued ones, delete the uploads."""
        self.pool.shutdown()
        shutil.rmtree(self.upload_dir, ignore_errors=True)

    # ------------------------------------------------------------------ what is served

    def available(self) -> dict[str, bool]:
        clf = self.clf
        return {t: t == "predict" or callable(getattr(clf, t, None)) for t in TASKS}

    def model_info(self) -> dict:
        clf, cfg = self.clf, self.clf.config
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
            "tasks": self.available(),
            "video_extensions": list(VIDEO_EXTENSIONS),
            "detectors": list(self.detectors.specs),
            "detector": self.detectors.default,
            "max_upload_mb": self.max_bytes / 1e6,
            "workers": self.pool.workers,
            "max_queue": self.pool.max_queue,
        }

    def task_error(self, task: str) -> RequestError | None:
        if task not in TASKS:
            return RequestError(422, f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        if not self.available()[task]:
            return RequestError(
                501,
                f"{task} is not available for this model ({self.clf.config.get('model')}): this "
                f"vidclass version or model has no {task}; use /v1/predict, or see "
                "GET /v1/model for what is available",
            )
        return None

    def options_for(self, task: str, fields: dict[str, str], query: dict[str, str]) -> dict:
        """Form fields and query parameters → validated keyword options of the method."""
        clf = self.clf
        opts = validate_options(task, self.models[task], raw_options(fields, query))
        if task == "predict":
            window = opts.get("window")
            if window is not None and window > clf.frames:
                raise RequestError(
                    422, f"window={window}: at most the model's {clf.frames} frames per window"
                )
            if opts.get("top_k", 1) > len(clf.classes):
                opts["top_k"] = len(clf.classes)
        return opts

    # ------------------------------------------------------------------ the work of a job

    def work(self, task: str, upload: Upload, opts: dict) -> Work:
        """The job body: `run_task` with a progress callback."""
        return lambda progress: self.run_task(task, upload, opts, progress)

    def run_task(self, task: str, upload: Upload, opts: dict, progress) -> Any:
        """Run the method on the uploaded file; errors name the upload, never the temp path."""
        clf, detectors = self.clf, self.detectors
        method = clf.predict if task == "predict" else getattr(clf, task)
        kwargs = dict(opts)
        if task == "detect":  # the public name → what it means here (maybe a folder)
            kwargs["detector"] = detectors.specs[opts.get("detector", detectors.default)]
        if "progress" in inspect.signature(method).parameters:
            kwargs["progress"] = progress
        try:
            result = method(str(upload.path), **kwargs)
        except RequestError:  # e.g. the job's time limit, raised from `progress`
            raise
        except UserError as exc:
            text = str(exc).replace(str(upload.path), upload.filename)
            raise RequestError(422, text) from None
        except Exception as exc:
            log.exception("%s failed on %s", task, upload.filename)
            text = f"{task} failed on {upload.filename}: {type(exc).__name__}: {exc}"
            raise RequestError(500, text.replace(str(upload.path), upload.filename)) from None
        if isinstance(result, dict):
            result = {**result, "video": upload.filename, "task": task}
            if task == "detect":  # the public name, never the server's folder
                result["detector"] = opts.get("detector", detectors.default)
            for key in ("annotated", "plot"):
                result.pop(key, None)
        return result

    # ------------------------------------------------------------------ requests

    async def accept(self, request: Request, task: str | None) -> Job | JSONResponse:
        """Receive, check and queue one upload: the Job, or the error response to send.

        `task` None: it comes from the form field `task` (default predict)."""
        pool = self.pool
        if task is not None and (err := self.task_error(task)):
            return err.response()
        try:
            pool.reserve()  # refused before the upload is read; bounds uploads on disk too
        except PoolFull as exc:
            return busy_response(exc.retry_after_s, str(exc))
        try:
            upload = await receive_upload(request, self.upload_dir, self.max_bytes)
        except RequestError as exc:
            pool.unreserve()
            return exc.response()
        except BaseException:
            pool.unreserve()
            raise
        submitted = False
        try:
            form_task = upload.fields.pop("task", "")
            if task is None:
                task = form_task or "predict"
                if err := self.task_error(task):
                    raise err
            opts = self.options_for(task, upload.fields, dict(request.query_params))
            await run_in_threadpool(check_video, upload)
            job = pool.submit(task, self.work(task, upload, opts), upload.delete, reserved=True)
            submitted = True
            return job
        except RequestError as exc:
            return exc.response()
        finally:
            if not submitted:
                upload.delete()
                pool.unreserve()

    async def direct(self, request: Request, task: str) -> JSONResponse:
        """Queue the upload and wait for its result (the direct /v1/<task> routes)."""
        job = await self.accept(request, task)
        if isinstance(job, JSONResponse):
            return job
        done = asyncio.wrap_future(job.future)
        try:
            # asyncio.wait, not `await done`: a cancelled request (client gone) must not
            # cancel the queued job under the pool's feet; the job finishes and its result
            # is dropped below. Woken each second to see a job failed past its time limit.
            while not done.done() and job.status != FAILED:
                await asyncio.wait([done], timeout=1.0)
                self.pool.get(job.id)  # marks an overdue job failed
        finally:
            self.pool.discard(job.id)
        if job.status == FAILED:
            return error_response(job.error_status, job.error or "failed")
        return JSONResponse(job.result)

    async def start_job(self, request: Request) -> JSONResponse:
        """Queue the upload and answer 202 with where to poll (POST /v1/jobs)."""
        job = await self.accept(request, request.query_params.get("task"))
        if isinstance(job, JSONResponse):
            return job
        return JSONResponse(
            {"id": job.id, "task": job.task, "status": job.status, "url": f"/v1/jobs/{job.id}"},
            status_code=202,
            headers={"Location": f"/v1/jobs/{job.id}"},
        )

    def job_status(self, job_id: str) -> JSONResponse:
        """A job's status JSON; a finished job is handed out once, then forgotten."""
        job = self.pool.pop_finished(job_id)
        if job is None:
            return error_response(
                404,
                f"no job {job_id!r}: it never existed, its result was already fetched, or it "
                f"expired ({self.pool.result_ttl_s:.0f} s after finishing)",
            )
        body = job.to_dict()
        if job.status == FAILED:
            body["error_status"] = job.error_status
        return JSONResponse(body)


def check_video(upload: Upload) -> None:
    """415 when the file is not a video at all, 422 when it is one but cannot be decoded."""
    try:
        container = open_container(upload.path)
    except VideoError as exc:
        raise RequestError(415, f"{upload.filename}: {exc.reason}") from None
    with container:
        has_video = bool(container.streams.video)
    if not has_video:
        raise RequestError(
            415, f"{upload.filename}: has no video stream; not a video (send an MP4, AVI, ...)"
        )
    try:
        probe(upload.path)
    except VideoError as exc:
        raise RequestError(422, f"{upload.filename}: {exc.reason}") from None


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
