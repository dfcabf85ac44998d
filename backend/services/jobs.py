"""Background jobs for front ends: submit a training, a retraining or a comparison of model families
(the leaderboard), list and read jobs, cancel.

    jobs = JobService(ServiceSettings())
    job = jobs.submit_training(TrainingParams(epochs=50, batch_size=64))   # status "queued"
    jobs.get_job(job.id).status                                          # "running", then "finished"
    jobs.cancel_job(job.id)

The job runs in the worker (``python -m backend.services.worker``), never in the caller's
process. Reading jobs first fails the running jobs whose worker died (heartbeat too old, or its
process on this machine gone), so a crash never leaves a job "running" forever.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from backend.ml_engine.errors import one_line

from ._mlflow import translate_errors
from .data_sources import resolve_data_source
from .errors import ConflictError, InvalidRequestError, NotFoundError, UnavailableError
from .job_store import RUNNING, TERMINAL_STATUSES, DuplicateJob, JobRecord, JobStore, WorkerRecord, host_identity
from .queue import JobQueue, build_queue
from .reaper import reap_dead_jobs
from .redaction import redact
from .schemas import (
    JOB_KINDS,
    JOB_STATUSES,
    ComparisonParams,
    JobPublic,
    JobsPublic,
    RetrainParams,
    TrainingParams,
    WorkerPublic,
)
from .settings import ServiceSettings

__all__ = ["JobService", "job_public"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def job_public(job: JobRecord) -> JobPublic:
    # a job without epochs (a comparison) reports {"stage", "fraction"} in its result while it runs
    staged = job.status not in TERMINAL_STATUSES and not job.epochs and "fraction" in job.result
    if job.status == "finished":
        progress = 1.0
    elif job.epochs:
        progress = min(1.0, max(0.0, job.epoch / job.epochs))
    elif staged:
        progress = min(1.0, max(0.0, float(job.result.get("fraction") or 0.0)))
    else:
        progress = 0.0
    return JobPublic(
        id=job.id,
        kind=job.kind,
        status=job.status,
        model_name=job.model_name,
        params=job.params,
        epoch=job.epoch,
        epochs=job.epochs,
        progress=progress,
        stage=(str(job.result.get("stage") or "") or None) if staged else None,
        metrics=job.metrics,
        run_id=job.run_id,
        version=job.version,
        result=job.result,
        error=job.error,
        cancel_requested=job.cancel_requested,
        worker=job.worker_id,
        priority=job.priority,
        origin=job.origin,
        process_pid=job.job_pid,
        threads=job.threads,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        heartbeat_at=job.heartbeat_at,
    )


def _jobs_db(method: Callable[..., T]) -> Callable[..., T]:
    """Report an unreachable jobs database as :class:`UnavailableError` (HTTP 503), password masked."""

    @functools.wraps(method)
    def wrapper(self: JobService, *args: Any, **kwargs: Any) -> T:
        with translate_errors(self._secrets, "jobs"):
            return method(self, *args, **kwargs)

    return wrapper


class JobService:
    """Jobs as the API and the dashboard see them; the jobs table is the truth, huey the transport."""

    def __init__(self, settings: ServiceSettings, store: JobStore | None = None, queue: JobQueue | None = None) -> None:
        self.settings = settings
        self._store = store
        self._queue = queue
        self._guard = threading.Lock()
        self._host_id = host_identity()
        self._secrets = settings.secrets()

    @property
    def store(self) -> JobStore:
        if self._store is None:
            with self._guard:
                if self._store is None:
                    self._store = JobStore(self.settings.jobs_database_url.get_secret_value())
        return self._store

    @property
    def queue(self) -> JobQueue:
        if self._queue is None:
            with self._guard:
                if self._queue is None:
                    self._queue = build_queue(self.settings)
        return self._queue

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    # -- submit ----------------------------------------------------------------------------

    @_jobs_db
    def submit_training(self, params: TrainingParams) -> JobPublic:
        """Record a training job (``queued``) and put it on the queue."""
        resolve_data_source(params.data_source, self.settings)  # refuse an unconfigured source now, not in the worker
        if params.epochs is None:  # recorded now, so the worker trains what the job says (its settings may differ)
            params = params.model_copy(update={"epochs": self.settings.epochs})
        return self._submit(
            "train",
            params.model_dump(mode="json", exclude_none=True),
            params.model_name,
            params.epochs,
            priority=params.priority,
        )

    @_jobs_db
    def submit_retraining(
        self, params: RetrainParams, *, origin: str = "api", dedupe_key: str | None = None
    ) -> JobPublic:
        """Record a retraining job by the retraining pipeline and put it on the queue.

        The scheduler submits through here too (``origin="schedule"``, ``dedupe_key`` = schedule
        and fire time: a second submission of the same fire raises :class:`ConflictError`)."""
        resolve_data_source(params.data_source, self.settings)  # refuse an unconfigured source now, not in the worker
        return self._submit(
            "retrain",
            params.model_dump(mode="json"),
            params.model_name,
            None,
            priority=params.priority,
            origin=origin,
            dedupe_key=dedupe_key,
        )

    @_jobs_db
    def submit_leaderboard(self, params: ComparisonParams) -> JobPublic:
        """Record a comparison of model families (the leaderboard) and put it on the queue; the worker
        runs :func:`backend.ml_engine.leaderboard.run_leaderboard` and the job's result is its table."""
        resolve_data_source(params.data_source, self.settings)  # refuse an unconfigured source now, not in the worker
        if params.families is not None and not params.families:
            params = params.model_copy(update={"families": None})
        return self._submit(
            "leaderboard",
            params.model_dump(mode="json", exclude_none=True),
            None,
            None,
            priority=params.priority,
        )

    @_jobs_db
    def submit_monitoring(self, *, origin: str = "api", dedupe_key: str | None = None) -> JobPublic:
        """Record the outcome job (kind ``monitor``: resolve logged predictions whose horizon has passed, roll
        up the live metrics, prune old rows) and put it on the queue. The scheduler submits it every
        ``--monitor-interval`` minutes."""
        return self._submit("monitor", {}, None, None, origin=origin, dedupe_key=dedupe_key)

    def _submit(
        self,
        kind: str,
        params: dict,
        model_name: str | None,
        epochs: int | None,
        *,
        priority: int = 0,
        origin: str = "api",
        dedupe_key: str | None = None,
    ) -> JobPublic:
        queue = self.queue  # built (and its settings checked) before anything is written
        try:
            job = self.store.create(
                kind, params, model_name, epochs, priority=priority, origin=origin, dedupe_key=dedupe_key
            )
        except DuplicateJob as exc:
            raise ConflictError(str(exc)) from None
        try:
            task_id = queue.enqueue(job.id, priority=priority)
        except Exception as exc:  # noqa: BLE001 - Redis down, SQLite file not writable
            reason = redact(one_line(exc, typed=True), self._secrets)
            self.store.fail_queued(job.id, f"not queued: {reason}")
            logger.error("job %s not queued: %s", job.id, reason)
            raise UnavailableError(f"the job queue ({queue.kind}) is unavailable: {reason}") from None
        self.store.set_queue_task(job.id, task_id)
        logger.info("job %s (%s, model %s, %s) queued", job.id, kind, model_name, origin)
        return self.get_job(job.id)

    # -- read ------------------------------------------------------------------------------

    def reap(self) -> list[str]:
        """Fail running jobs whose worker died (stale heartbeat, or process gone on this machine),
        and end their MLflow runs FAILED."""
        return reap_dead_jobs(self.settings, self.store, self._host_id)

    @_jobs_db
    def get_job(self, job_id: str) -> JobPublic:
        self.reap()
        job = self.store.get(job_id)
        if job is None:
            raise NotFoundError(f"job {job_id!r} not found")
        return job_public(job)

    @_jobs_db
    def list_jobs(self, status: str | None = None, kind: str | None = None, limit: int = 50) -> JobsPublic:
        """Jobs, newest first."""
        if status is not None and status not in JOB_STATUSES:
            raise InvalidRequestError(f"status must be one of {', '.join(JOB_STATUSES)}")
        if kind is not None and kind not in JOB_KINDS:
            raise InvalidRequestError(f"kind must be one of {', '.join(JOB_KINDS)}")
        self.reap()
        data = [job_public(j) for j in self.store.list(status=status, kind=kind, limit=limit)]
        return JobsPublic(data=data, count=len(data))

    @_jobs_db
    def counts(self) -> dict[str, int]:
        return self.store.counts()

    @_jobs_db
    def workers(self) -> list[WorkerPublic]:
        """Workers seen lately; ``alive`` when their heartbeat is fresh."""
        import datetime as _dt

        now = _dt.datetime.now(_dt.UTC)
        timeout = self.settings.job_heartbeat_timeout_s

        def alive(w: WorkerRecord) -> bool:
            return (now - w.heartbeat_at).total_seconds() <= timeout

        running: dict[str, list[str]] = {}
        for job in self.store.list(status=RUNNING, limit=1000):
            if job.worker_id:
                running.setdefault(job.worker_id, []).append(job.id)
        return [
            WorkerPublic(
                id=w.id,
                host=w.host,
                pid=w.pid,
                slots=w.slots,
                threads_per_job=w.threads_per_job,
                running_jobs=running.get(w.id, []),
                queue=w.queue,
                started_at=w.started_at,
                heartbeat_at=w.heartbeat_at,
                alive=alive(w),
            )
            for w in self.store.workers()
        ]

    # -- cancel ----------------------------------------------------------------------------

    @_jobs_db
    def cancel_job(self, job_id: str) -> JobPublic:
        """Cancel a queued job at once, or ask a running training to stop after the current epoch.

        A running retraining stops inside its current training (a walk-forward fold or the final
        model); once its final model is trained, registration and the promotion gate run to their
        end (production never moves half-way) and the job finishes. :class:`ConflictError` when the
        job has already ended.
        """
        self.reap()
        before = self.store.get(job_id)
        if before is None:
            raise NotFoundError(f"job {job_id!r} not found")
        if before.status in TERMINAL_STATUSES:
            raise ConflictError(f"job {job_id} has already ended ({before.status})")
        after = self.store.request_cancel(job_id)
        assert after is not None
        if after.status == RUNNING:
            logger.info("job %s: cancellation requested", job_id)
        return job_public(after)
