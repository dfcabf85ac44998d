"""The job worker: a huey consumer whose slots each run one job at a time, every job in its own
OS process (:mod:`.job_process`).

    python -m backend.services.worker                # slots = ML_WORKER_SLOTS (default: cores / 2)
    python -m backend.services.worker --slots 2 -v   # each job gets cores / 2 threads

On start it refuses a jobs database migrated by a newer release (exit 2, one line), upgrades an
older one, fails the running jobs a dead worker on this machine left behind, registers itself in
``ml_job_workers`` (host, pid, slots, threads per job, queue) and writes a heartbeat there, then
consumes the queue until a signal stops it:

* SIGINT (Ctrl-C): finish the running jobs, then stop (a second Ctrl-C stops at once);
* SIGTERM: stop now: the job processes are killed and their jobs failed ("worker stopped"), their
  MLflow runs end KILLED;
* SIGKILL: the job processes die with the worker; the reaper (the API, any other worker) fails
  their jobs once their heartbeat is stale, or at once on the same machine.
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

from .job_runner import JobRunner
from .job_store import JobStore, host_identity
from .migrations import SchemaTooNew
from .queue import build_queue
from .reaper import end_runs_of_dead_jobs
from .settings import ServiceSettings, available_cores

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


def run_worker(settings: ServiceSettings, slots: int | None = None) -> None:
    """Consume the job queue in this process until a signal stops it (blocks; main thread only).

    Raises :class:`~.migrations.SchemaTooNew` when the jobs database is newer than this code.
    """
    n_slots = int(slots or settings.slots)
    threads = max(1, available_cores() // n_slots)
    store = JobStore(settings.jobs_database_url.get_secret_value())
    host, pid, host_id = socket.gethostname(), os.getpid(), host_identity()
    reaped = store.reap(settings.job_heartbeat_timeout_s, host_id=host_id)
    if reaped:
        logger.warning("failed %d job(s) left running by a dead worker: %s", len(reaped), ", ".join(reaped))
        end_runs_of_dead_jobs(settings, store, reaped)
    runner = JobRunner(settings, store, threads_per_job=threads)
    queue = build_queue(settings, runner=runner)
    worker_id = f"{host}:{pid}"
    store.register_worker(
        worker_id,
        host=host,
        pid=pid,
        host_id=host_id,
        slots=n_slots,
        threads_per_job=threads,
        queue=f"{queue.kind} {queue.location}",
    )
    beat = _WorkerHeartbeat(store, worker_id, settings.job_heartbeat_interval_s)
    beat.start()
    cap = settings.max_concurrent_trainings
    logger.info(
        "worker %s: %d slot(s), %d thread(s) per job, queue %s (%s), jobs in %s, schema %s%s",
        worker_id,
        n_slots,
        threads,
        queue.kind,
        queue.location,
        store.display_url,
        store.revision,
        f", cluster cap {cap} training(s)" if cap else "",
    )
    consumer = queue.huey.create_consumer(
        workers=n_slots,
        worker_type="thread",
        periodic=False,
        initial_delay=0.05,
        backoff=1.15,
        max_delay=0.5,
        check_worker_health=True,
    )
    try:
        consumer.run()
    finally:
        stopped = runner.stop_all("worker stopped")
        if stopped:
            logger.warning("stopped %d running job(s): %s", len(stopped), ", ".join(stopped))
        beat.stopped.set()
        store.unregister_worker(worker_id)
        store.close()
        logger.info("worker %s stopped", worker_id)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backend.services.worker",
        description="Run queued jobs (trainings, retrainings), each in its own process.",
    )
    parser.add_argument(
        "--slots",
        "--workers",
        dest="slots",
        type=int,
        default=None,
        help="jobs run at once (default: ML_WORKER_SLOTS, else half the cores); each gets cores / slots threads",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.slots is not None and args.slots < 1:
        parser.error("--slots must be >= 1")
    # backend.* and huey (task start/finish) on the console; ML_LOG_LEVEL (default INFO), -v: DEBUG
    setup_logging("DEBUG" if args.verbose else None, loggers=("backend", "huey"))
    try:
        settings = ServiceSettings()
    except Exception as exc:  # noqa: BLE001 - invalid .env: say which field, never its value
        logger.error("invalid settings: %s", one_line(exc))
        return 2
    level = "DEBUG" if args.verbose else settings.log_level  # ML_LOG_LEVEL / ML_LOG_FORMAT from .env too
    setup_logging(level, loggers=("backend", "huey"), fmt=settings.log_format)
    try:
        run_worker(settings, args.slots)
    except SchemaTooNew as exc:
        logger.error("refusing to start: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
