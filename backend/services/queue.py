"""The job queue: huey, an existing task queue, carrying job ids from the API to the workers.

Where it lives (``ML_QUEUE_URL``, else ``ML_REDIS_URL``, else a SQLite file):

* ``redis://...``: ``PriorityRedisHuey`` (workers on any host; a blocking pop, no polling);
* ``postgresql://...``: ``PostgresHuey`` (huey's PostgreSQL storage: ``FOR UPDATE SKIP LOCKED``
  and ``LISTEN/NOTIFY``), so a deployment can run on PostgreSQL alone; its tables are prefixed
  ``ml_queue_``;
* otherwise ``SqliteHuey`` in ``ML_HUEY_SQLITE_PATH`` (``./mlruns/huey.db``): API and workers on
  one machine, the embedded default.

Both sides build the queue with :func:`build_queue` so that the one task (``run_job``) is
registered under the same name; only the worker passes a ``runner`` to execute it. Job state is
never kept in huey (results are off): it lives in the jobs table (:mod:`.job_store`), and a
message only wakes a free slot up (see :mod:`.job_runner`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .redaction import mask_uri
from .settings import ServiceSettings

if TYPE_CHECKING:  # pragma: no cover
    from huey import Huey

__all__ = ["JobQueue", "Outcome", "build_queue", "queue_target"]

logger = logging.getLogger(__name__)

#: What the runner answers for a job: done (whatever its outcome), busy (cluster cap reached: retry), gone.
Outcome = Literal["done", "busy", "gone"]
TASK_NAME = "run_job"
QueueKind = Literal["redis", "postgresql", "sqlite"]


def queue_target(settings: ServiceSettings) -> tuple[QueueKind, str]:
    """(kind, location) of the configured queue; the location may hold a password."""
    url = settings.queue_url or settings.redis_url
    if url is None:
        return "sqlite", str(Path(settings.huey_sqlite_path).expanduser())
    text = url.get_secret_value().strip()
    scheme = text.split("://", 1)[0].split("+", 1)[0].lower() if "://" in text else ""
    if scheme in ("redis", "rediss", "unix"):
        return "redis", text
    if scheme in ("postgresql", "postgres"):
        return "postgresql", text
    if scheme == "sqlite":
        from sqlalchemy.engine import make_url

        return "sqlite", str(Path(make_url(text).database or "huey.db").expanduser())
    if scheme:
        raise ValueError(f"ML_QUEUE_URL: unsupported queue {scheme}:// (use redis://, postgresql:// or a SQLite file)")
    return "sqlite", str(Path(text).expanduser())


def _libpq_dsn(url: str) -> str:
    """``postgresql+psycopg2://...`` (SQLAlchemy) -> ``postgresql://...`` (libpq, what psycopg takes)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql://{rest}" if scheme.lower().startswith(("postgresql", "postgres")) else url


class JobQueue:
    """A huey instance with the ``run_job(job_id)`` task registered."""

    def __init__(self, settings: ServiceSettings, runner: Callable[[str], Outcome] | None = None) -> None:
        from huey import PostgresHuey, PriorityRedisHuey, SqliteHuey
        from huey.exceptions import RetryTask

        self.settings = settings
        self.runner = runner
        self.kind, target = queue_target(settings)
        name = settings.huey_name
        if self.kind == "redis":
            self.location = mask_uri(target)
            self.huey: Huey = PriorityRedisHuey(name, url=target, results=False, utc=True)
        elif self.kind == "postgresql":
            self.location = mask_uri(target)
            self.huey = PostgresHuey(
                name,
                dsn=_libpq_dsn(target),
                results=False,
                utc=True,
                table_prefix="ml_queue",
                connect_timeout=5,
            )
        else:
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.location = str(path)
            self.huey = SqliteHuey(name, filename=str(path), results=False, utc=True)
        retry_delay = settings.job_retry_delay_s

        def run_job(job_id: str) -> None:
            """Run the head of the line (the worker's side); wait and retry while the cluster cap is reached."""
            if self.runner is None:
                raise RuntimeError("this queue has no runner: jobs run in `python -m backend.services.worker`")
            outcome = self.runner(job_id)
            if outcome == "busy":
                logger.info("job %s: no capacity now; asking again in %g s", job_id, retry_delay)
                raise RetryTask(delay=retry_delay)

        self._task = self.huey.task(name=TASK_NAME)(run_job)

    def enqueue(self, job_id: str, priority: int = 0) -> str:
        """Put a job's message on the queue; returns huey's task id."""
        task = self._task.s(job_id, priority=priority or None)
        self.huey.enqueue(task)
        return str(task.id)

    def pending_count(self) -> int:
        """Messages waiting in the queue (also a reachability check)."""
        return int(self.huey.pending_count())


def build_queue(settings: ServiceSettings, runner: Callable[[str], Outcome] | None = None) -> JobQueue:
    return JobQueue(settings, runner)
