"""Schedules through the job system: a cron/interval schedule submits retraining jobs by the API's
path (they show in /jobs, wait their turn, can be cancelled), exactly one scheduler fires however
many run, and a standby takes over when the leader dies."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from api_support import AUTH, PREFIX, database, service_settings
from fastapi.testclient import TestClient
from worker_support import start, stop, wait_for, worker_env

from backend.api.main import create_app
from backend.services.jobs import JobService
from backend.services.scheduler import Scheduler, build_schedules
from backend.services.schemas import RetrainParams

pytestmark = pytest.mark.postgres


@pytest.fixture
def env(tmp_path):
    with database("test_scheduler") as url:
        settings = service_settings(url, tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
        yield {"settings": settings, "url": url, "tmp": tmp_path}


def scheduled(jobs: JobService) -> list:
    return [j for j in jobs.list_jobs(kind="retrain", limit=200).data if j.origin == "schedule"]


def test_interval_fire_times_are_aligned_to_the_clock_so_every_scheduler_agrees():
    params = RetrainParams()
    now = datetime(2026, 11, 30, 10, 7, 30, tzinfo=UTC)
    a, b = build_schedules(params, interval_minutes=15)[0], build_schedules(params, interval_minutes=15)[0]
    assert a.first_fire(now) == b.first_fire(now + timedelta(seconds=20)) == datetime(2026, 11, 30, 10, 15, tzinfo=UTC)
    nightly = build_schedules(params, cron="0 3 * * *", check_interval_minutes=30)
    assert [s.name for s in nightly] == ["retrain:hybrid_cnn_lstm", "checks:hybrid_cnn_lstm"]
    assert nightly[0].first_fire(now) == datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    assert nightly[0].params.trigger == "scheduled" and nightly[0].params.checks_first
    assert nightly[1].params.trigger == "drift" and nightly[1].params.checks_first
    # fires missed while down coalesce into the next one ahead
    assert a.after(datetime(2026, 11, 30, 9, 0, tzinfo=UTC), now) == datetime(2026, 11, 30, 10, 15, tzinfo=UTC)
    with pytest.raises(ValueError, match="invalid cron expression"):
        build_schedules(params, cron="not a cron")


def test_one_leader_submits_each_fire_once_and_a_standby_takes_over(env):
    settings = env["settings"]
    params = RetrainParams(epochs=1)
    first = Scheduler(settings, build_schedules(params, interval_minutes=10))
    second = Scheduler(settings, build_schedules(params, interval_minutes=10))
    t0 = datetime(2026, 11, 30, 10, 1, tzinfo=UTC)
    try:
        assert first.step(t0) == [] and first.leader
        assert second.step(t0) == [] and not second.leader
        fire = datetime(2026, 11, 30, 10, 10, tzinfo=UTC)
        submitted = first.step(fire + timedelta(seconds=1))
        assert len(submitted) == 1 and second.step(fire + timedelta(seconds=1)) == []
        # two leaders for a moment (a lease lost and taken over): the fire is still submitted once
        assert second._submit(second.schedules[0], fire) is None
        jobs = first.jobs
        mine = scheduled(jobs)
        assert [j.id for j in mine] == submitted
        job = mine[0]
        assert job.status == "queued" and job.kind == "retrain" and job.origin == "schedule"
        assert job.params["trigger"] == "scheduled" and job.params["checks_first"] is True
        # the leader dies: the standby leads at its next step and fires the next time
        first._release()
        assert second.step(fire + timedelta(minutes=5)) == [] and second.leader
        later = second.step(fire + timedelta(minutes=10, seconds=1))
        assert len(later) == 1 and len(scheduled(jobs)) == 2
    finally:
        first._release()
        second._release()
        first.jobs.close()
        second.jobs.close()


def test_scheduled_jobs_show_in_the_api_wait_their_turn_and_can_be_cancelled(env):
    settings = env["settings"]
    sched = Scheduler(settings, build_schedules(RetrainParams(), interval_minutes=10))
    try:
        sched.step(datetime(2026, 11, 30, 10, 1, tzinfo=UTC))
        (job_id,) = sched.step(datetime(2026, 11, 30, 10, 10, 5, tzinfo=UTC))
    finally:
        sched._release()
        sched.jobs.close()
    with TestClient(create_app(settings)) as client:
        listed = client.get(f"{PREFIX}/jobs", params={"kind": "retrain"}).json()["data"]
        assert [(j["id"], j["origin"], j["status"]) for j in listed] == [(job_id, "schedule", "queued")]
        store = client.app.state.services.jobs.store
        later = client.post(f"{PREFIX}/train", json={"epochs": 1}, headers=AUTH).json()
        # it is the head of the line: a free slot takes it before the training submitted after it
        claim, head = store.claim_next(host="h", pid=1, host_id="elsewhere|pid:[1]")
        assert claim == "claimed" and head.id == job_id
        store.request_cancel(later["id"])
    sched = Scheduler(settings, build_schedules(RetrainParams(), interval_minutes=10))
    try:
        sched.step(datetime(2026, 11, 30, 10, 11, tzinfo=UTC))
        (queued_id,) = sched.step(datetime(2026, 11, 30, 10, 20, 1, tzinfo=UTC))
    finally:
        sched._release()
        sched.jobs.close()
    with TestClient(create_app(settings)) as client:
        r = client.post(f"{PREFIX}/jobs/{queued_id}/cancel", headers=AUTH)
        assert r.status_code == 202 and r.json()["status"] == "cancelled"


def _leader_lines(log) -> list[str]:
    return [line for line in log.read_text().splitlines() if "queued by scheduler" in line]


@pytest.mark.slow
def test_two_scheduler_processes_fire_once_and_the_survivor_takes_over(env):
    settings, tmp = env["settings"], env["tmp"]
    penv = worker_env(settings)
    args = ["-m", "backend.services.scheduler", "--interval", "0.05", "--poll", "0.2", "--epochs", "1"]
    procs = [start(args, penv, tmp / f"s{i}", tmp / f"s{i}" / "scheduler.log") for i in range(2)]
    logs = [tmp / f"s{i}" / "scheduler.log" for i in range(2)]
    jobs = JobService(settings)
    try:
        wait_for(lambda: len(scheduled(jobs)) >= 3, 60, "three scheduled jobs", logs[0])
        leaders = [i for i in range(2) if _leader_lines(logs[i])]
        assert len(leaders) == 1, [log.read_text()[-2000:] for log in logs]
        leader, standby = leaders[0], 1 - leaders[0]
        keys = [j.id for j in scheduled(jobs)]
        assert len(keys) == len(set(keys))
        fired = len(scheduled(jobs))
        stop(procs[leader], signal.SIGKILL)
        wait_for(lambda: _leader_lines(logs[standby]), 30, "the standby to take over", logs[standby])
        assert len(scheduled(jobs)) > fired
        # one job per fire time, the fire times 3 s apart
        keys = sorted(jobs.store.get(j.id).dedupe_key for j in scheduled(jobs))
        fires = [datetime.fromisoformat(k.split("@", 1)[1]) for k in keys]
        assert all(k.startswith("retrain:hybrid_cnn_lstm@") for k in keys) and len(set(fires)) == len(fires)
        assert all((b - a).total_seconds() % 3 == 0 for a, b in itertools.pairwise(fires)), keys
    finally:
        for p in procs:
            stop(p)
        jobs.close()


def test_retraining_pipeline_serve_hands_over_to_the_job_system(env):
    settings, tmp = env["settings"], env["tmp"]
    penv = worker_env(settings)
    run = [sys.executable, "-m", "backend.ml_engine.retraining_pipeline", "serve"]
    refused = subprocess.run(
        [*run, "--interval", "1", "--data", "x.csv"], env=penv, cwd=tmp, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2 and "--data apply to the in-process scheduler only" in refused.stderr
    proc = start(
        ["-m", "backend.ml_engine.retraining_pipeline", "serve", "--interval", "0.05"],
        penv,
        tmp / "serve",
        tmp / "serve.log",
    )
    jobs = JobService(settings)
    try:
        wait_for(lambda: scheduled(jobs), 60, "serve to submit a job", tmp / "serve.log")
    finally:
        stop(proc, signal.SIGINT)
        jobs.close()
    assert proc.returncode == 0, (tmp / "serve.log").read_text()[-2000:]


def test_scheduler_help_and_bad_cron(env):
    out = subprocess.run(
        [sys.executable, "-m", "backend.services.scheduler", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "--cron" in out.stdout and "exactly one leads" in out.stdout.replace("\n", " ")
    bad = subprocess.run(
        [sys.executable, "-m", "backend.services.scheduler", "--cron", "61 * * * *"],
        env=worker_env(env["settings"]),
        cwd=env["tmp"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: invalid cron expression '61 * * * *'"), bad.stderr


def test_the_monitor_schedule_submits_the_outcome_job_and_a_job_process_runs_it(env, monkeypatch):
    """``--monitor-interval``: a fire queues one job of kind ``monitor``; run in a job process it resolves the
    prediction log (here empty) and records the summary as its result."""
    import os

    from backend.services.job_process import JobExecution
    from backend.services.job_store import host_identity

    settings = env["settings"]
    sched = Scheduler(settings, build_schedules(RetrainParams(), cron="0 3 * * *", monitor_interval_minutes=15))
    assert [s.name for s in sched.schedules] == ["retrain:hybrid_cnn_lstm", "monitor"]
    t0 = datetime(2026, 11, 30, 10, 1, tzinfo=UTC)
    try:
        assert sched.step(t0) == []
        submitted = sched.step(datetime(2026, 11, 30, 10, 15, 1, tzinfo=UTC))
        assert len(submitted) == 1
        job = sched.jobs.get_job(submitted[0])
        assert job.kind == "monitor" and job.origin == "schedule" and job.status == "queued"

        store = sched.jobs.store
        status, claimed = store.claim_next(host="test", pid=os.getpid(), host_id=host_identity())
        assert status == "claimed" and claimed is not None and claimed.id == job.id
        JobExecution(settings, store, os.getpid())(job.id)
        done = sched.jobs.get_job(job.id)
        assert done.status == "finished", done.error
        assert done.result["resolved"] == 0 and done.result["pending"] == 0 and done.result["errors"] == []
    finally:
        sched._release()
        sched.jobs.close()
