"""Trials of one study as jobs on two worker processes, for real (issue 15, acceptance 2).

PostgreSQL holds everything a cluster shares: the jobs table, the queue (huey's PostgresHuey), the
locks and the Optuna storage. Two workers with one slot each pull the trial jobs of one study; one of
them is SIGKILLed while it runs a trial. Expected: trial numbers unique and contiguous, no trial lost
(the killed one ends FAIL on its missed heartbeat and is retried once with the same parameters), the
surviving worker runs the next trials, and the study is finalized (holdout, DSR, PBO) by the last job.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from api_support import database, service_settings
from worker_support import start_worker, stop, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

#: A small TCN search: each trial trains for a few seconds, long enough to be killed mid-way.
SPACE = """
[search]
family = "tcn"

[common]
window = 30

[tcn]
channels = { choices = [16, 32] }
levels = { low = 2, high = 3 }
learning_rate = { low = 1e-3, high = 1e-2, log = true }
"""

TRIALS = 6


def test_two_workers_run_one_study_and_a_sigkilled_trial_is_retried(tmp_path):
    from backend.services.jobs import JobService
    from backend.services.schemas import TuneParams
    from backend.services.tuning import TuningService

    with database("test_tuning_workers") as url:
        settings = service_settings(
            url,
            tmp_path,
            mlflow_tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
            queue_url=url,
            huey_name="tuning_workers_test",
            job_heartbeat_interval_s=1.0,
            job_heartbeat_timeout_s=15.0,
            tuning_storage=url,
            tuning_heartbeat_s=1,
        )
        extra = {"ML_TUNING_STORAGE": url, "ML_TUNING_HEARTBEAT_S": "1"}
        workers = [start_worker(settings, tmp_path / f"worker{i}", slots=1, **extra) for i in range(2)]
        logs = [tmp_path / f"worker{i}" / "worker.log" for i in range(2)]
        jobs = JobService(settings)
        service = TuningService(settings, jobs)
        try:
            study = service.submit(
                TuneParams(
                    trials=TRIALS,
                    parallel=2,
                    study="two-workers",
                    space=SPACE,
                    data_source="sample",
                    date_range=4.0,
                    folds=2,
                    epochs=2,
                    pruner="none",
                    seed=7,
                )
            )
            assert study.jobs_queued + study.jobs_running == 2 and study.target == TRIALS

            # both workers take a trial at once: two trials RUNNING together
            def two_running():
                s = service.study("two-workers")
                running = [t for t in s.trials if t.state == "RUNNING"]
                return running if len(running) == 2 else None

            wait_for(two_running, 180, "two trials running at once", logs[0])

            # kill the worker whose trial has been running for more than a heartbeat
            def victim():
                for job in jobs.list_jobs(status="running", kind="tune").data:
                    started = job.started_at.timestamp() if job.started_at else time.time()
                    if time.time() - started > 6 and job.worker:
                        return job
                return None

            job = wait_for(victim, 120, "a trial job running for a few seconds", logs[0])
            worker_pid = int(job.worker.rsplit(":", 1)[1])
            killed = next(w for w in workers if w.pid == worker_pid)
            running_before = {t.number for t in service.study("two-workers").trials if t.state == "RUNNING"}
            killed_at = time.time()
            os.kill(killed.pid, signal.SIGKILL)
            killed.wait(10)

            def finished():
                s = service.study("two-workers")
                return s if s.finalized and not s.jobs_queued and not s.jobs_running else None

            survivor_log = logs[workers.index(next(w for w in workers if w is not killed))]
            final = wait_for(finished, 420, "the study to be finalized", survivor_log)
        finally:
            for w in workers:
                stop(w)
            jobs.close()

    numbers = sorted(t.number for t in final.trials)
    assert numbers == list(range(len(numbers))), "trial numbers must be unique and contiguous"
    states = {t.number: t.state for t in final.trials}
    assert not [n for n, s in states.items() if s in ("RUNNING", "WAITING")], states

    # the killed trial failed on its heartbeat and was retried once, with the same parameters
    failed = [t for t in final.trials if t.state == "FAIL"]
    retries = [t for t in final.trials if t.retry_of is not None]
    assert len(failed) == 1 and failed[0].number in running_before, states
    assert len(retries) == 1 and retries[0].retry_of == failed[0].number
    assert retries[0].params == failed[0].params
    assert retries[0].state in ("COMPLETE", "PRUNED")

    # no trial lost: the target counts every trial but the retried one
    counted = [t for t in final.trials if not (t.state == "FAIL" and t.number == retries[0].retry_of)]
    assert len(counted) == TRIALS
    assert final.remaining == 0

    # the survivor ran the next trials after the kill
    after = [t for t in final.trials if t.started_at is not None and t.started_at.timestamp() > killed_at]
    assert len(after) >= 2 and all(t.state in ("COMPLETE", "PRUNED") for t in after)

    # the last job finalized the study: the holdout read once for the best trial, DSR and PBO
    assert final.holdout is not None and final.holdout["trial"] in numbers
    assert final.dsr is not None and 0.0 <= final.dsr <= 1.0
    assert final.pbo is not None and 0.0 <= final.pbo <= 1.0
