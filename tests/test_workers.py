"""Worker processes, for real: each job in its own OS process, slots and threads, jobs whose
process or worker dies, a worker stopped with SIGTERM or Ctrl-C, /health.

The queue here is PostgreSQL (huey's PostgresHuey, ``ML_QUEUE_URL=postgresql://...``): a
deployment on PostgreSQL alone. Two Redis-fed workers on separate "machines" are in
tests/test_topology.py; claims by several workers at once (order, each job once, the cap) in
tests/test_api_jobs.py.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from api_support import AUTH, PREFIX, TINY_TRAINING, database, service_settings
from fastapi.testclient import TestClient
from worker_support import pid_gone, start_worker, stop, wait_for

from backend.api.main import create_app
from backend.services._mlflow import make_client

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ENDED = ("finished", "failed", "cancelled")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The API (in-process) and one worker process with two slots, over PostgreSQL jobs and queue."""
    tmp = tmp_path_factory.mktemp("workers")
    with database("test_workers") as url:
        settings = service_settings(
            url,
            tmp,
            mlflow_tracking_uri=f"sqlite:///{tmp}/mlflow.db",
            queue_url=url,
            huey_name="workers_test",
            job_heartbeat_interval_s=1.0,
            job_heartbeat_timeout_s=10.0,
        )
        app = create_app(settings)
        with TestClient(app) as client:
            worker = start_worker(settings, tmp / "worker", slots=2)
            try:
                yield {"client": client, "settings": settings, "tmp": tmp, "worker": worker, "url": url}
            finally:
                stop(worker)


def submit(client: TestClient, **overrides) -> dict:
    r = client.post(f"{PREFIX}/train", json={**TINY_TRAINING, **overrides}, headers=AUTH)
    assert r.status_code == 202, r.text
    return r.json()


def job(client: TestClient, job_id: str) -> dict:
    return client.get(f"{PREFIX}/jobs/{job_id}").json()


def wait_ended(stack, job_id: str, timeout: float = 180) -> dict:
    log = stack["tmp"] / "worker" / "worker.log"
    return wait_for(
        lambda: (j := job(stack["client"], job_id))["status"] in ENDED and j, timeout, f"job {job_id} to end", log
    )


def wait_epoch(stack, job_id: str, epoch: int = 1, timeout: float = 120) -> dict:
    log = stack["tmp"] / "worker" / "worker.log"
    return wait_for(
        lambda: (j := job(stack["client"], job_id))["status"] == "running" and j["epoch"] >= epoch and j,
        timeout,
        f"job {job_id} to reach epoch {epoch}",
        log,
    )


def weights(stack, run_name: str) -> dict[str, torch.Tensor]:
    path = Path(stack["settings"].output_dir) / run_name / "model.pt"
    return torch.load(path, weights_only=False)["state_dict"]


def test_two_concurrent_trainings_with_one_seed_give_the_weights_of_each_alone(stack):
    client = stack["client"]
    alone = wait_ended(stack, submit(client, seed=7, run_name="seed7_alone")["id"])
    assert alone["status"] == "finished", alone["error"]
    b, c = submit(client, seed=7, run_name="seed7_b"), submit(client, seed=7, run_name="seed7_c")
    b, c = wait_ended(stack, b["id"]), wait_ended(stack, c["id"])
    assert b["status"] == c["status"] == "finished", (b["error"], c["error"])
    # they did run at the same time, each in a fresh process of the same worker, with cores / slots threads
    assert b["started_at"] < c["finished_at"] and c["started_at"] < b["finished_at"]
    worker_pid = stack["worker"].pid
    assert all(j["worker"].endswith(f":{worker_pid}") for j in (alone, b, c))
    pids = {alone["process_pid"], b["process_pid"], c["process_pid"]}
    assert None not in pids and worker_pid not in pids and len(pids) == 3
    assert alone["threads"] == b["threads"] == c["threads"] == max(1, len(os.sched_getaffinity(0)) // 2)
    reference = weights(stack, "seed7_alone")
    for name in ("seed7_b", "seed7_c"):
        got = weights(stack, name)
        assert got.keys() == reference.keys()
        for key, tensor in reference.items():
            assert torch.equal(got[key], tensor), f"{name}: {key} differs from the training run alone"


def test_a_job_whose_process_dies_fails_and_the_worker_goes_on(stack):
    client = stack["client"]
    long = submit(client, epochs=300, early_stopping_patience=0, run_name="killed_process")
    running = wait_epoch(stack, long["id"])
    os.kill(running["process_pid"], signal.SIGKILL)
    ended = wait_ended(stack, long["id"], timeout=60)
    assert ended["status"] == "failed" and ended["error"] == "job process died: killed by SIGKILL", ended["error"]
    assert ended["run_id"]
    run = make_client(stack["settings"].mlflow_tracking_uri).get_run(ended["run_id"])
    assert run.info.status == "KILLED" and "job process died" in run.data.tags["failure_reason"]
    assert stack["worker"].poll() is None  # the worker goes on (the next tests' jobs run on it)


def test_health_lists_the_live_worker_with_its_slots_and_running_jobs(stack):
    client = stack["client"]
    long = submit(client, epochs=300, early_stopping_patience=0, run_name="health_probe")
    running = wait_epoch(stack, long["id"])
    assert running["worker"].endswith(f":{stack['worker'].pid}")  # the worker that lost a job process
    health = client.get(f"{PREFIX}/health").json()
    assert health["status"] == "ok", health["problems"]
    mine = [w for w in health["workers"] if w["pid"] == stack["worker"].pid]
    assert len(mine) == 1 and mine[0]["alive"] and mine[0]["slots"] == 2
    assert mine[0]["threads_per_job"] >= 1 and long["id"] in mine[0]["running_jobs"]
    assert mine[0]["queue"].startswith("postgresql ")
    r = client.post(f"{PREFIX}/jobs/{long['id']}/cancel", headers=AUTH)
    assert r.status_code == 202 and r.json()["cancel_requested"] is True
    ended = wait_ended(stack, long["id"], timeout=60)
    assert ended["status"] == "cancelled"
    assert make_client(stack["settings"].mlflow_tracking_uri).get_run(ended["run_id"]).info.status == "KILLED"
    again = client.post(f"{PREFIX}/jobs/{long['id']}/cancel", headers=AUTH)
    assert again.status_code == 409 and "already ended (cancelled)" in again.json()["detail"]


def test_a_worker_stopped_with_sigterm_fails_its_running_job_and_kills_its_run(stack):
    client = stack["client"]
    long = submit(client, epochs=300, early_stopping_patience=0, run_name="sigterm")
    running = wait_epoch(stack, long["id"])
    worker = stack["worker"]
    assert stop(worker, signal.SIGTERM) == 0
    ended = job(client, long["id"])
    assert ended["status"] == "failed" and ended["error"] == "worker stopped", ended["error"]
    assert make_client(stack["settings"].mlflow_tracking_uri).get_run(ended["run_id"]).info.status == "KILLED"
    assert wait_for(lambda: pid_gone(running["process_pid"]), 10, "the job process to end")
    health = client.get(f"{PREFIX}/health").json()
    assert health["status"] == "degraded" and any("no live worker" in p for p in health["problems"])


def test_ctrl_c_lets_the_running_job_finish(stack):
    """SIGINT to the worker's process group, as Ctrl-C in its terminal: the job process is in its own
    group and the worker waits for it (huey's graceful stop), so the job ends finished."""
    client, tmp = stack["client"], stack["tmp"]
    worker = start_worker(stack["settings"], tmp / "ctrl_c_worker", slots=1)
    try:
        job_id = submit(client, run_name="ctrl_c")["id"]
        running = wait_for(
            lambda: (j := job(client, job_id))["status"] == "running" and j,
            120,
            "the job to run",
            tmp / "ctrl_c_worker" / "worker.log",
        )
        assert running["worker"].endswith(f":{worker.pid}")
        os.killpg(worker.pid, signal.SIGINT)
        assert worker.wait(180) == 0
        ended = job(client, job_id)
        assert ended["status"] == "finished", ended["error"]
    finally:
        stop(worker)
