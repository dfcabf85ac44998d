"""The reaper: jobs whose worker died are failed, and their MLflow runs end KILLED.

Both sides reap: the worker before it claims a job (:class:`~.job_runner.JobRunner`) and when it
starts, the API whenever it reads jobs (:class:`~.jobs.JobService`). Neither imports the other for
it; both import this module::

    reaped = reap_dead_jobs(settings, store, host_id)     # job ids failed just now
"""

from __future__ import annotations

import logging

from ._mlflow import make_client
from .job_store import JobStore
from .settings import ServiceSettings

__all__ = ["end_runs_of_dead_jobs", "reap_dead_jobs"]

logger = logging.getLogger(__name__)


def reap_dead_jobs(settings: ServiceSettings, store: JobStore, host_id: str) -> list[str]:
    """Fail running jobs whose worker died (stale heartbeat, or its process on this machine gone)
    and end their MLflow runs KILLED; returns the ids of the jobs failed now."""
    reaped = store.reap(settings.job_heartbeat_timeout_s, host_id=host_id)
    end_runs_of_dead_jobs(settings, store, reaped)
    return reaped


def end_runs_of_dead_jobs(
    settings: ServiceSettings, store: JobStore, job_ids: list[str], reason: str | None = None
) -> None:
    """End the MLflow runs of jobs whose worker or job process died: KILLED (MLflow's status for a
    run stopped from outside), with the job's error as ``failure_reason`` (MLflow would otherwise
    show them RUNNING forever). Best effort."""
    if not job_ids:
        return
    try:
        client = make_client(settings.mlflow_tracking_uri)
    except Exception:  # noqa: BLE001
        return
    for job_id in job_ids:
        job = store.get(job_id)
        if job is None or not job.run_id:
            continue
        try:
            run = client.get_run(job.run_id)
            if run.info.status == "RUNNING":
                client.set_tag(job.run_id, "failure_reason", (reason or job.error or "worker died")[:4000])
                client.set_terminated(job.run_id, status="KILLED")
                logger.info("run %s of job %s marked KILLED (%s)", job.run_id, job_id, job.error or "worker died")
        except Exception as exc:  # noqa: BLE001 - the job's own record is what matters
            logger.warning("run %s of job %s not marked KILLED: %s", job.run_id, job_id, type(exc).__name__)
