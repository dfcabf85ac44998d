"""The job queue: huey, an existing task queue, carrying job ids from the API to the worker.

* ``ML_REDIS_URL`` set: ``RedisHuey`` (several machines may run workers);
* otherwise ``SqliteHuey`` in ``ML_HUEY_SQLITE_PATH`` (``./mlruns/huey.db``): API and worker on one machine.

Both sides build the queue with :func:`build_queue` so that the one task (``run_job``) is
registered under the same name; only the worker passes a ``runner`` to execute it. Job state is
never kept in huey (results are off): it lives in the jobs table (:mod:`.job_store`).
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

__all__ = ["JobQueue", "build_queue"]

logger = logging.getLogger(__name__)

#: What the runner answers for a job: done (whatever its outcome), busy (no free slot: retry), gone.
Outcome = Literal["done", "busy", "gone"]
TASK_NAME = "run_job"


class JobQueue:
    """A huey instance with the ``run_job(job_id)`` task registered."""

    def __init__(self, settings: ServiceSettings, runner: Callable[[str], Outcome] | None = None) -> None:
        from huey import RedisHuey, SqliteHuey
        from huey.exceptions import RetryTask

        self.settings = settings
        self.runner = runner
        if settings.redis_url is not None:
            url = settings.redis_url.get_secret_value()
            self.kind = "redis"
            self.location = mask_uri(url)
            self.huey: Huey = RedisHuey(settings.huey_name, url=url, results=False, utc=True)
        else:
            path = Path(settings.huey_sqlite_path).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            self.kind = "sqlite"
            self.location = str(path)
            self.huey = SqliteHuey(settings.huey_name, filename=str(path), results=False, utc=True)
        retry_delay = settings.job_retry_delay_s

        def run_job(job_id: str) -> None:
            """Run job ``job_id`` (the worker's side); wait and retry while every training slot is taken."""
            if self.runner is None:
                raise RuntimeError("this queue has no runner: jobs run in `python -m backend.services.worker`")
            outcome = self.runner(job_id)
            if outcome == "busy":
                logger.info("job %s: every training slot is taken; retrying in %g s", job_id, retry_delay)
                raise RetryTask(delay=retry_delay)

        self._task = self.huey.task(name=TASK_NAME)(run_job)

    def enqueue(self, job_id: str) -> str:
        """Put a job on the queue; returns huey's task id."""
        task = self._task.s(job_id)
        self.huey.enqueue(task)
        return str(task.id)

    def pending_count(self) -> int:
        """Tasks waiting in the queue (also a reachability check)."""
        return int(self.huey.pending_count())


def build_queue(settings: ServiceSettings, runner: Callable[[str], Outcome] | None = None) -> JobQueue:
    return JobQueue(settings, runner)
