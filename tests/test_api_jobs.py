"""REST API: queue trainings, list/read/cancel jobs; the jobs table's claim, limit and reaper.

No worker runs here (the end-to-end test has one): jobs stay queued unless a test claims them
itself, which is how the reaper and the concurrency limit are exercised.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from api_support import AUTH, PREFIX, TINY_TRAINING, database, service_settings
from fastapi.testclient import TestClient

from backend.api.main import create_app
from backend.services.job_store import JobStore, host_identity

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api_jobs")
    with database() as url:
        settings = service_settings(url, tmp)
        app = create_app(settings)
        with TestClient(app) as client:
            yield {
                "client": client,
                "app": app,
                "settings": settings,
                "url": url,
                "tmp": tmp,
                "store": app.state.services.jobs.store,
                "queue": app.state.services.jobs.queue,
            }


def clear_line(store: JobStore) -> None:
    """Cancel every queued job the module's earlier tests left, so the next claim takes ours."""
    for j in store.list(status="queued", limit=1000):
        store.request_cancel(j.id)


def claim_mine(store: JobStore, job_id: str, **who) -> None:
    claim, job = store.claim_next(**who)
    assert claim == "claimed" and job is not None and job.id == job_id


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_train_queues_a_job_with_the_guide_body(env):
    client = env["client"]
    before = env["queue"].pending_count()
    r = client.post(f"{PREFIX}/train", json={"epochs": 50, "batch_size": 64}, headers=AUTH)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "queued" and job["kind"] == "train" and job["model_name"] == "hybrid_cnn_lstm"
    assert job["epochs"] == 50 and job["epoch"] == 0 and job["progress"] == 0.0
    assert job["params"]["batch_size"] == 64 and job["params"]["data_source"] == "default"
    assert r.headers["location"].endswith(f"{PREFIX}/jobs/{job['id']}")
    assert env["queue"].pending_count() == before + 1

    got = client.get(f"{PREFIX}/jobs/{job['id']}").json()
    assert got["id"] == job["id"] and got["status"] == "queued"
    listed = client.get(f"{PREFIX}/jobs", params={"status": "queued", "kind": "train"}).json()
    assert job["id"] in [j["id"] for j in listed["data"]]
    defaults = client.post(f"{PREFIX}/train", json={}, headers=AUTH).json()
    assert defaults["epochs"] == defaults["params"]["epochs"] == env["settings"].epochs


@pytest.mark.parametrize(
    "body",
    [
        {"epochs": 0},
        {"epochs": 1001},
        {"epochs": "50"},
        {"epochs": 5.5},
        {"epochs": True},
        {"batch_size": 0},
        {"batch_size": 10**6},
        {"lr": 0},
        {"lr": -0.1},
        {"lr": 2.0},
        {"lr": "0.001"},
        {"date_range": 0},
        {"date_range": 10_000},
        {"data_source": "/etc/passwd"},
        {"data_source": "postgresql://x"},
        {"model_name": "bad name"},
        {"model_name": ""},
        {"symbols": ["eth/btc"]},
        {"timeframe": "5 minutes"},
        {"window": 1},
        {"model": {"lstm_hidden": 0}},
        {"model": {"kernel_size": 4}},
        {"model": {"unknown": 1}},
        {"auto_promote": "yes"},
        {"min_accuracy_for_promotion": 1.5},
        {"unknown_field": 1},
        [],
        "text",
    ],
)
def test_invalid_training_bodies_are_422(env, body):
    r = env["client"].post(f"{PREFIX}/train", json=body, headers=AUTH)
    assert r.status_code == 422, r.text


def test_database_source_needs_a_configured_url(env):
    r = env["client"].post(f"{PREFIX}/train", json={"data_source": "database"}, headers=AUTH)
    assert r.status_code == 400 and "ML_CANDLES_DATABASE_URL" in r.json()["detail"]


def test_train_and_cancel_need_the_token(env):
    client = env["client"]
    n = len(client.get(f"{PREFIX}/jobs").json()["data"])
    assert client.post(f"{PREFIX}/train", json={"epochs": 5}).status_code == 401
    assert client.post(f"{PREFIX}/train", json={"epochs": 5}, headers={"X-API-Token": "nope"}).status_code == 401
    assert len(client.get(f"{PREFIX}/jobs").json()["data"]) == n
    job = client.post(f"{PREFIX}/train", json={"epochs": 5}, headers=AUTH).json()
    assert client.post(f"{PREFIX}/jobs/{job['id']}/cancel").status_code == 401
    with TestClient(create_app(service_settings(env["url"], env["tmp"], token=None))) as ro:
        r = ro.post(f"{PREFIX}/train", json={"epochs": 5}, headers=AUTH)
        assert r.status_code == 403 and r.json()["detail"] == "the API is read-only: set ML_API_TOKEN"
        assert ro.post(f"{PREFIX}/jobs/{job['id']}/cancel", headers=AUTH).status_code == 403
        assert ro.get(f"{PREFIX}/jobs/{job['id']}").status_code == 200


def test_cancel_a_queued_job(env):
    client = env["client"]
    job = client.post(f"{PREFIX}/train", json=TINY_TRAINING, headers=AUTH).json()
    r = client.post(f"{PREFIX}/jobs/{job['id']}/cancel", headers=AUTH)
    assert r.status_code == 202 and r.json()["status"] == "cancelled"
    assert r.json()["error"] == "cancelled before it started"
    again = client.post(f"{PREFIX}/jobs/{job['id']}/cancel", headers=AUTH)
    assert again.status_code == 409 and "already ended (cancelled)" in again.json()["detail"]
    # the worker that picks the task up later finds nothing to run
    from backend.services.job_runner import JobRunner

    clear_line(env["store"])
    assert JobRunner(env["settings"], env["store"])(job["id"]) == "gone"
    assert client.get(f"{PREFIX}/jobs/{job['id']}").json()["status"] == "cancelled"


def test_unknown_and_malformed_job_ids(env):
    client = env["client"]
    assert client.get(f"{PREFIX}/jobs/{uuid.uuid4().hex}").status_code == 404
    assert client.post(f"{PREFIX}/jobs/{uuid.uuid4().hex}/cancel", headers=AUTH).status_code == 404
    assert client.get(f"{PREFIX}/jobs/not-a-job").status_code == 422
    assert client.get(f"{PREFIX}/jobs", params={"status": "lost"}).status_code == 422
    assert client.get(f"{PREFIX}/jobs", params={"limit": 0}).status_code == 422


def test_reaper_fails_a_job_whose_worker_process_is_gone(env):
    store: JobStore = env["store"]
    clear_line(store)
    job = store.create("train", {}, "m", 3)
    pid = dead_pid()
    claim_mine(store, job.id, host="here", pid=pid, host_id=host_identity())
    r = env["client"].get(f"{PREFIX}/jobs/{job.id}").json()
    assert r["status"] == "failed" and r["error"] == f"worker died: process {pid} is gone"
    assert r["finished_at"] is not None


def test_reaper_fails_a_job_whose_heartbeat_is_stale(env):
    import sqlalchemy as sa

    from backend.services.job_store import jobs_table

    store: JobStore = env["store"]
    clear_line(store)
    job = store.create("train", {}, "m", 3)
    # another machine: its pid cannot be checked from here, only its heartbeat
    claim_mine(store, job.id, host="elsewhere", pid=1, host_id="elsewhere|pid:[1]")
    assert env["client"].get(f"{PREFIX}/jobs/{job.id}").json()["status"] == "running"
    old = datetime.now(UTC) - timedelta(seconds=env["settings"].job_heartbeat_timeout_s + 5)
    with store.engine.begin() as conn:
        conn.execute(sa.update(jobs_table).where(jobs_table.c.id == job.id).values(heartbeat_at=old))
    listed = env["client"].get(f"{PREFIX}/jobs").json()["data"]
    mine = next(j for j in listed if j["id"] == job.id)
    assert mine["status"] == "failed" and mine["error"].startswith("worker died: no heartbeat")


def _clean_slate(store: JobStore) -> None:
    for j in store.list(status="running", limit=500):  # a clean slate for the count
        store.finish(j.id, "failed", pid=j.worker_pid, host_id=j.host_id, error="test cleanup")
    clear_line(store)


def test_claims_respect_the_cluster_cap(env):
    from backend.services.job_runner import JobRunner

    store: JobStore = env["store"]
    me, hid = os.getpid(), host_identity()
    _clean_slate(store)
    first, second = store.create("train", {}, "m", 1), store.create("retrain", {}, "m", None)
    assert store.claim_next(host="h", pid=me, host_id=hid, limit=1)[1].id == first.id
    assert store.claim_next(host="h", pid=me, host_id=hid, limit=1) == ("busy", None)
    capped = service_settings(env["url"], env["tmp"], max_concurrent_trainings=1)
    assert JobRunner(capped, store)(second.id) == "busy"  # the huey task asks again later
    assert store.claim_next(host="h", pid=me, host_id=hid, limit=2)[1].id == second.id
    assert store.claim_next(host="h", pid=me, host_id=hid, limit=2) == ("gone", None)
    store.finish(first.id, "finished", pid=me, host_id=hid)
    store.finish(second.id, "finished", pid=me, host_id=hid)
    assert store.get(first.id).status == "finished"


def test_concurrent_claims_never_exceed_the_cap(env):
    from concurrent.futures import ThreadPoolExecutor

    store: JobStore = env["store"]
    me, hid = os.getpid(), host_identity()
    _clean_slate(store)
    jobs = [store.create("train", {}, "m", 1) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: store.claim_next(host="h", pid=me, host_id=hid, limit=2)[0], jobs))
    assert results.count("claimed") == 2 and results.count("busy") == 6
    for j in jobs:
        store.finish(j.id, "cancelled", pid=me, host_id=hid)


def test_concurrent_claims_take_each_job_once_in_submission_order(env):
    from concurrent.futures import ThreadPoolExecutor

    store: JobStore = env["store"]
    me, hid = os.getpid(), host_identity()
    _clean_slate(store)
    jobs = [store.create("train", {}, "m", 1) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        claimed = list(pool.map(lambda _: store.claim_next(host="h", pid=me, host_id=hid), jobs))
    ids = [job.id for status, job in claimed if status == "claimed"]
    assert sorted(ids) == sorted(j.id for j in jobs)  # each job exactly once
    by_start = sorted((store.get(i) for i in ids), key=lambda j: (j.started_at, j.id))
    assert [j.created_at for j in by_start] == sorted(j.created_at for j in by_start)
    for j in jobs:
        store.finish(j.id, "cancelled", pid=me, host_id=hid)


def test_waiting_jobs_start_by_priority_then_in_submission_order(env):
    client, store = env["client"], env["store"]
    me, hid = os.getpid(), host_identity()
    _clean_slate(store)
    low = client.post(f"{PREFIX}/train", json={"epochs": 1, "priority": -1}, headers=AUTH).json()
    a = client.post(f"{PREFIX}/train", json={"epochs": 1}, headers=AUTH).json()
    b = client.post(f"{PREFIX}/retrain", json={"trigger": "manual"}, headers=AUTH).json()
    urgent = client.post(f"{PREFIX}/train", json={"epochs": 1, "priority": 5}, headers=AUTH).json()
    c = client.post(f"{PREFIX}/train", json={"epochs": 1}, headers=AUTH).json()
    assert urgent["priority"] == 5 and a["priority"] == 0 and a["origin"] == "api"
    order = [store.claim_next(host="h", pid=me, host_id=hid)[1].id for _ in range(5)]
    assert order == [urgent["id"], a["id"], b["id"], c["id"], low["id"]]
    for job_id in order:
        store.finish(job_id, "cancelled", pid=me, host_id=hid)


def test_unreachable_queue_is_503_and_the_job_is_failed(env):
    settings = service_settings(env["url"], env["tmp"], redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings)) as client:
        r = client.post(f"{PREFIX}/train", json={"epochs": 2}, headers=AUTH)
        assert r.status_code == 503 and "job queue (redis) is unavailable" in r.json()["detail"]
        failed = client.get(f"{PREFIX}/jobs", params={"status": "failed"}).json()["data"]
        assert failed[0]["error"].startswith("not queued:")


def test_redis_queue_when_configured(env):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=2).ping()
    except redis.RedisError:  # refused or timed out: redis-py raises its ConnectionError
        pytest.skip("no Redis on 127.0.0.1:6379")
    name = f"test_api_{uuid.uuid4().hex[:8]}"
    settings = service_settings(env["url"], env["tmp"], redis_url="redis://127.0.0.1:6379/0", huey_name=name)
    with TestClient(create_app(settings)) as client:
        queue = client.app.state.services.jobs.queue
        try:
            assert client.post(f"{PREFIX}/train", json={"epochs": 2}, headers=AUTH).status_code == 202
            assert queue.kind == "redis" and queue.pending_count() == 1
            health = client.get(f"{PREFIX}/health").json()
            assert health["queue"]["kind"] == "redis" and health["queue"]["reachable"]
        finally:
            queue.huey.storage.flush_queue()


def test_job_store_on_sqlite(tmp_path):
    """The default jobs database: claim within the limit, progress, cancel flag, reaper."""
    import sqlalchemy as sa

    from backend.services.job_store import jobs_table

    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        me, hid = os.getpid(), host_identity()
        a, b = store.create("train", {"epochs": 2}, "m", 2), store.create("train", {}, "m", 2)
        assert store.claim_next(host="h", pid=me, host_id=hid, limit=1)[1].id == a.id
        assert store.claim_next(host="h", pid=me, host_id=hid, limit=1) == ("busy", None)
        assert store.progress(a.id, 1, {"val_accuracy": 0.5}, pid=me, host_id=hid) is False
        assert store.request_cancel(a.id).cancel_requested is True
        assert store.heartbeat(a.id, pid=me, host_id=hid) is True
        got = store.get(a.id)
        assert got.epoch == 1 and got.metrics == {"val_accuracy": 0.5} and got.heartbeat_at.tzinfo is not None
        old = datetime.now(UTC) - timedelta(seconds=120)
        with store.engine.begin() as conn:
            conn.execute(sa.update(jobs_table).where(jobs_table.c.id == a.id).values(heartbeat_at=old))
        assert store.reap(60.0) == [a.id]
        assert store.get(a.id).status == "failed"
        assert store.claim_next(host="h", pid=me, host_id=hid, limit=1)[1].id == b.id
        assert store.finish(b.id, "finished", pid=me, host_id=hid, version=3) is True
        assert store.finish(b.id, "finished", pid=me + 1, host_id=hid) is False  # not its job
        assert store.counts() == {"failed": 1, "finished": 1}
    finally:
        store.close()
