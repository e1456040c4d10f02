"""A bounded pool of inference jobs: a few worker threads, a short queue, and a hard refusal
beyond it.

Every inference the server runs (a direct `/v1/predict` as well as a `/v1/jobs` job) goes
through one `JobPool`, so the number of videos being decoded or waiting on disk is bounded
by `workers + max_queue`. A request beyond that is refused at once (`PoolFull`, which the app
turns into 503 with Retry-After) instead of joining an unbounded queue whose wait nobody can
predict. Threads, not processes: torch has started its own threads by the time the model is
loaded, and forking then is unsafe (see `vidclass.parallel`).

Finished results are kept until they are fetched once or until `result_ttl_s` passes, and at
most `max_results` of them, so an API client that never comes back cannot fill the memory.

A job runs for at most `job_timeout_s` of wall time. A thread cannot be killed, so the limit
is kept where the work reports progress (predict and localize do, every window): the next
report past the limit stops it. Work that reports none (detect) is marked failed at the
limit all the same, its worker finishes in the background and its result is dropped.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from vidclass.serve import JOB_TIMEOUT_S
from vidclass.serve.errors import RequestError

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"

# A job's work: called with a progress callback taking a fraction in [0, 1].
Work = Callable[[Callable[[float], None]], Any]


class PoolFull(Exception):
    """Every worker is busy and the queue is full; try again after `retry_after_s`."""

    def __init__(self, retry_after_s: int, capacity: int) -> None:
        self.retry_after_s = retry_after_s
        self.capacity = capacity
        super().__init__(
            f"the server is busy: {capacity} videos are already being processed or queued; "
            f"retry in {retry_after_s} s"
        )


@dataclass
class Job:
    """One unit of work and what is known about it so far."""

    id: str
    task: str
    status: str = QUEUED
    progress: float = 0.0
    result: Any = None
    error: str | None = None
    error_status: int = 500
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    future: Future | None = field(default=None, repr=False)
    orphan: bool = False  # nobody will fetch it: drop the result when it ends
    deadline: float | None = None  # monotonic time past which it is stopped (set when it runs)

    def to_dict(self) -> dict:
        """The status JSON of `GET /v1/jobs/{id}` (the result only once it is done)."""
        now = time.monotonic()
        out: dict[str, Any] = {
            "id": self.id,
            "task": self.task,
            "status": self.status,
            "progress": round(self.progress, 4),
            "elapsed_s": round((self.finished or now) - self.created, 3),
        }
        if self.status == DONE:
            out["result"] = self.result
        if self.status == FAILED:
            out["error"] = self.error
        return out


class JobPool:
    """`workers` threads, at most `max_queue` jobs waiting; finished results kept a while."""

    def __init__(
        self,
        workers: int = 1,
        max_queue: int = 4,
        result_ttl_s: float = 600.0,
        max_results: int = 100,
        job_timeout_s: float = JOB_TIMEOUT_S,
    ) -> None:
        if workers < 1 or max_queue < 0 or job_timeout_s <= 0:
            raise ValueError("workers must be >= 1, max_queue >= 0 and job_timeout_s > 0")
        self.workers, self.max_queue = workers, max_queue
        self.result_ttl_s, self.max_results = result_ttl_s, max_results
        self.job_timeout_s = job_timeout_s
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vidclass-job")
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._active = 0  # queued + running
        self._busy = 0  # workers inside a job's work (a timed-out one may still be there)
        self._recent_s: list[float] = []  # durations of the last finished jobs

    @property
    def capacity(self) -> int:
        return self.workers + self.max_queue

    def counts(self) -> dict[str, int]:
        self._stop_overdue()
        with self._lock:
            running = self._busy
            return {
                "workers": self.workers,
                "max_queue": self.max_queue,
                "running": running,
                "queued": self._active - running,  # uploads being received count here too
                "results_waiting": sum(
                    1 for j in self._jobs.values() if j.status in (DONE, FAILED)
                ),
            }

    def retry_after_s(self) -> int:
        """Seconds until a slot is likely free: the queue ahead times the recent job time."""
        with self._lock:
            typical = sorted(self._recent_s)[len(self._recent_s) // 2] if self._recent_s else 1.0
            ahead = max(1, self._active - self.workers + 1)
        return max(1, math.ceil(typical * ahead / self.workers))

    def reserve(self) -> None:
        """Take a slot now (before the upload is received); `PoolFull` when there is none.

        Reserving first is what bounds the uploads on disk as well as the jobs: a request
        that gets no slot is refused before its body is read. Give the slot back with
        `unreserve` if no job follows, or pass `reserved=True` to `submit`."""
        self._expire()
        with self._lock:
            full = self._active >= self.capacity
            if not full:
                self._active += 1
        if full:
            raise PoolFull(self.retry_after_s(), self.capacity)

    def unreserve(self) -> None:
        with self._lock:
            self._active -= 1

    def submit(
        self,
        task: str,
        work: Work,
        on_done: Callable[[], None] | None = None,
        reserved: bool = False,
    ) -> Job:
        """Queue `work` in a reserved slot, or take one now (`PoolFull` when none is free).

        `on_done` runs on the worker thread after the work, whatever its outcome (the app
        deletes the uploaded file there); also at once if the pool is full.
        """
        if not reserved:
            try:
                self.reserve()
            except PoolFull:
                if on_done:
                    on_done()
                raise
        job = Job(id=uuid.uuid4().hex, task=task)
        with self._lock:
            self._jobs[job.id] = job
        job.future = self._executor.submit(self._run, job, work, on_done)
        job.future.add_done_callback(lambda f: self._cancelled(job, f, on_done))
        return job

    def _cancelled(self, job: Job, future: Future, on_done: Callable[[], None] | None) -> None:
        """A job cancelled before it ran (pool shutdown) still gives its slot back."""
        if not future.cancelled():
            return
        with self._lock:
            self._active -= 1
            self._jobs.pop(job.id, None)
        if on_done:
            on_done()

    def _run(self, job: Job, work: Work, on_done: Callable[[], None] | None) -> Any:
        with self._lock:
            self._busy += 1
            job.status, job.started = RUNNING, time.monotonic()
            job.deadline = job.started + self.job_timeout_s

        def progress(fraction: float) -> None:
            if time.monotonic() > job.deadline:  # type: ignore[operator]
                raise self._timeout()  # stops the work here, at its next report
            job.progress = min(1.0, max(job.progress, float(fraction)))

        try:
            result = work(progress)
            with self._lock:
                if job.status == RUNNING and time.monotonic() > job.deadline:
                    self._fail(job, self._timeout())
                elif job.status == RUNNING:  # not already failed past its deadline
                    job.result, job.progress, job.status = result, 1.0, DONE
        except BaseException as exc:  # the job records it; the worker thread lives on
            with self._lock:
                if job.status == RUNNING:
                    self._fail(job, exc)
        finally:
            with self._lock:
                self._active -= 1
                self._busy -= 1
                now = time.monotonic()
                job.finished = job.finished or now
                self._recent_s = [*self._recent_s[-19:], now - job.started]
                if job.orphan:
                    self._jobs.pop(job.id, None)
            if on_done:
                on_done()
        return job.result

    def _timeout(self) -> RequestError:
        return RequestError(
            504,
            f"the job ran past this server's limit of {self.job_timeout_s:g} s and was "
            "stopped; send a shorter video, or start the server with a larger --job-timeout-s",
        )

    @staticmethod
    def _fail(job: Job, exc: BaseException) -> None:
        """Record a failure (under the lock): the message and the HTTP status it answers."""
        job.error = str(exc) or type(exc).__name__
        job.error_status = exc.status if isinstance(exc, RequestError) else 500
        job.status, job.finished = FAILED, time.monotonic()

    def _stop_overdue(self) -> None:
        """Mark running jobs past their deadline failed (work that reports no progress)."""
        now = time.monotonic()
        with self._lock:
            for job in self._jobs.values():
                if job.status == RUNNING and job.deadline is not None and now > job.deadline:
                    self._fail(job, self._timeout())

    def get(self, job_id: str) -> Job | None:
        self._expire()
        with self._lock:
            return self._jobs.get(job_id)

    def pop_finished(self, job_id: str) -> Job | None:
        """The job, removed from the store if it is finished (a result is handed out once)."""
        self._expire()
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job.status in (DONE, FAILED):
                del self._jobs[job_id]
            return job

    def discard(self, job_id: str) -> None:
        """Forget a job whose result went out by another route (or whose client is gone:
        then it is forgotten as soon as it ends)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return
            if job.finished is not None:
                del self._jobs[job_id]
            else:
                job.orphan = True

    def _expire(self) -> None:
        """Stop overdue jobs; drop results older than the TTL, then the oldest beyond
        `max_results`."""
        self._stop_overdue()
        now = time.monotonic()
        with self._lock:
            finished = [j for j in self._jobs.values() if j.finished is not None]
            for job in finished:
                if now - job.finished > self.result_ttl_s:
                    del self._jobs[job.id]
            finished = [j for j in self._jobs.values() if j.finished is not None]
            for job in finished[: max(0, len(finished) - self.max_results)]:
                del self._jobs[job.id]

    def shutdown(self) -> None:
        """Stop taking work; let running jobs finish; drop queued ones."""
        self._executor.shutdown(wait=True, cancel_futures=True)
