"""The job worker: a huey consumer that runs trainings outside the API process.

    python -m backend.services.worker            # workers = ML_MAX_CONCURRENT_TRAININGS
    python -m backend.services.worker --workers 2 -v

On start it fails the running jobs a dead worker left behind (see :meth:`JobStore.reap`),
registers itself in ``ml_job_workers`` and writes a heartbeat there, then consumes the queue
until SIGINT/SIGTERM (huey finishes the running tasks on SIGINT, not on SIGTERM).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading
from collections.abc import Sequence

from backend.logging_setup import setup_logging
from backend.ml_engine.errors import one_line

from .job_runner import JobRunner, fail_runs_of_reaped_jobs
from .job_store import JobStore, host_identity
from .queue import build_queue
from .settings import ServiceSettings

__all__ = ["main", "run_worker"]

# not __name__: run as `python -m backend.services.worker` that is "__main__", outside "backend"
logger = logging.getLogger("backend.services.worker")


class _WorkerHeartbeat(threading.Thread):
    def __init__(self, store: JobStore, worker_id: str, interval_s: float) -> None:
        super().__init__(name="worker-heartbeat", daemon=True)
        self.store, self.worker_id, self.interval_s = store, worker_id, interval_s
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            try:
                self.store.worker_heartbeat(self.worker_id)
            except Exception as exc:  # noqa: BLE001 - keep consuming through a database blip
                logger.warning("worker heartbeat not written: %s", type(exc).__name__)


def run_worker(settings: ServiceSettings, workers: int | None = None) -> None:
    """Consume the job queue in this process until a signal stops it (blocks; main thread only)."""
    n_workers = int(workers or settings.max_concurrent_trainings)
    store = JobStore(settings.jobs_database_url.get_secret_value())
    host, pid, host_id = socket.gethostname(), os.getpid(), host_identity()
    reaped = store.reap(settings.job_heartbeat_timeout_s, host_id=host_id)
    if reaped:
        logger.warning("failed %d job(s) left running by a dead worker: %s", len(reaped), ", ".join(reaped))
        fail_runs_of_reaped_jobs(settings, store, reaped)
    worker_id = f"{host}:{pid}"
    store.register_worker(worker_id, host=host, pid=pid, host_id=host_id)
    beat = _WorkerHeartbeat(store, worker_id, settings.job_heartbeat_interval_s)
    beat.start()
    queue = build_queue(settings, runner=JobRunner(settings, store))
    logger.info(
        "worker %s: %d thread(s), queue %s (%s), jobs in %s, at most %d training(s) at once",
        worker_id,
        n_workers,
        queue.kind,
        queue.location,
        store.display_url,
        settings.max_concurrent_trainings,
    )
    consumer = queue.huey.create_consumer(
        workers=n_workers,
        worker_type="thread",
        periodic=False,
        initial_delay=0.1,
        backoff=1.15,
        max_delay=1.0,
        check_worker_health=True,
    )
    try:
        consumer.run()
    finally:
        beat.stopped.set()
        store.unregister_worker(worker_id)
        store.close()
        logger.info("worker %s stopped", worker_id)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backend.services.worker", description="Run queued trainings (huey consumer)."
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="worker threads (default: ML_MAX_CONCURRENT_TRAININGS)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    # backend.* and huey (task start/finish) on the console; ML_LOG_LEVEL (default INFO), -v: DEBUG
    setup_logging("DEBUG" if args.verbose else None, loggers=("backend", "huey"))
    try:
        settings = ServiceSettings()
    except Exception as exc:  # noqa: BLE001 - invalid .env: say which field, never its value
        logger.error("invalid settings: %s", one_line(exc))
        return 2
    if not args.verbose:
        setup_logging(settings.log_level, loggers=("backend", "huey"))  # ML_LOG_LEVEL from .env too
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be >= 1")
    run_worker(settings, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
