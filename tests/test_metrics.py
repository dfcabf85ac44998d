"""``GET /metrics`` (Prometheus text format): the jobs, queue and workers of a real PostgreSQL jobs
database and a SQLite huey queue, read at scrape time; the predictions served by this app; a jobs
database or a queue that does not answer is a 0 in ``ml_jobs_store_up`` / ``ml_queue_up`` and a 200.

Jobs move through the real :class:`JobStore` (create, claim, finish, cancel); predictions go
through the real ``POST /predict`` route and :class:`PredictionService` with a stand-in predictor
(what is measured is the route, not a model).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_support import PREFIX, free_port, service_settings
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from backend.api.main import create_app
from backend.services import PredictionService, Services
from backend.services.job_store import JobStore, host_identity, jobs_table
from backend.services.metrics import UNRESOLVED_MODEL

pytestmark = pytest.mark.postgres

PID, HOST_ID = os.getpid(), host_identity()
PASSWORD = "metrics-Secret-9f8e7d"


def scrape(client: TestClient) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """{sample name: {sorted labels: value}} of one ``GET /metrics``."""
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def value(samples: dict[str, Any], name: str, **labels: str) -> float:
    return samples[name][tuple(sorted(labels.items()))]


def claim(store: JobStore, job_id: str) -> None:
    """Move ``job_id`` (the oldest queued job) to running, as a worker does."""
    result, job = store.claim_next(host="test-host", pid=PID, host_id=HOST_ID)
    assert result == "claimed" and job is not None and job.id == job_id


@pytest.fixture
def app_for(tmp_path: Path):
    """Builds apps over given settings (and services); every client is closed afterwards."""
    clients: list[TestClient] = []

    def build(settings: Any, services: Services | None = None) -> TestClient:
        client = TestClient(create_app(settings, services))
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for c in clients:
        c.__exit__(None, None, None)


def test_jobs_by_kind_and_status_failures_durations_queue_and_workers(pg_url: str, tmp_path: Path, app_for) -> None:
    settings = service_settings(f"sqlite:///{tmp_path}/mlflow.db", tmp_path, jobs_database_url=pg_url)
    client = app_for(settings)
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    store = services.jobs.store

    empty = scrape(client)
    assert value(empty, "ml_jobs_store_up") == 1 and value(empty, "ml_queue_up") == 1
    assert value(empty, "ml_queue_depth") == 0 and value(empty, "ml_workers_alive") == 0
    assert value(empty, "ml_jobs", kind="train", status="queued") == 0  # every series exists from the start

    ids = [store.create(kind, {}, "hybrid_cnn_lstm", 1).id for kind in ("train", "train", "train", "retrain")]
    later = [store.create(kind, {}, "hybrid_cnn_lstm", 1).id for kind in ("train", "retrain", "train")]
    claim(store, ids[0])
    assert store.finish(ids[0], "finished", pid=PID, host_id=HOST_ID)
    claim(store, ids[1])
    assert store.finish(ids[1], "failed", pid=PID, host_id=HOST_ID, error="boom")
    claim(store, ids[2])  # stays running
    claim(store, ids[3])
    assert store.finish(ids[3], "failed", pid=PID, host_id=HOST_ID, error="boom")
    store.request_cancel(later[2])  # cancelled before it started: no duration
    with store.engine.begin() as conn:  # the first training ran 90 s
        conn.execute(
            jobs_table.update()
            .where(jobs_table.c.id == ids[0])
            .values(started_at=jobs_table.c.finished_at - timedelta(seconds=90))
        )
    for job_id in later[:2]:
        services.jobs.queue.enqueue(job_id)
    store.register_worker("host-a:1", host="host-a", pid=1, host_id="host-a/ns")
    store.register_worker("host-b:2", host="host-b", pid=2, host_id="host-b/ns")
    with store.engine.begin() as conn:  # host-b's heartbeat is older than the timeout (30 s): not alive
        workers = sa.table("ml_job_workers", sa.column("id"), sa.column("heartbeat_at"))
        conn.execute(
            workers.update()
            .where(workers.c.id == "host-b:2")
            .values(heartbeat_at=datetime.now(UTC) - timedelta(seconds=120))
        )

    m = scrape(client)
    expected = {
        ("train", "queued"): 1,
        ("train", "running"): 1,
        ("train", "finished"): 1,
        ("train", "failed"): 1,
        ("train", "cancelled"): 1,
        ("retrain", "queued"): 1,
        ("retrain", "running"): 0,
        ("retrain", "finished"): 0,
        ("retrain", "failed"): 1,
        ("retrain", "cancelled"): 0,
    }
    for (kind, status), n in expected.items():
        assert value(m, "ml_jobs", kind=kind, status=status) == n, (kind, status)
    assert value(m, "ml_job_failures_total", kind="train") == 1
    assert value(m, "ml_job_failures_total", kind="retrain") == 1
    # finished + failed trainings (the cancelled one never started); the retraining that failed
    assert value(m, "ml_job_duration_seconds_count", kind="train") == 2
    assert value(m, "ml_job_duration_seconds_count", kind="retrain") == 1
    assert value(m, "ml_job_duration_seconds_bucket", kind="train", le="60.0") == 1  # the failed one: ~0 s
    assert value(m, "ml_job_duration_seconds_bucket", kind="train", le="120.0") == 2
    assert value(m, "ml_job_duration_seconds_bucket", kind="train", le="+Inf") == 2
    assert 90 <= value(m, "ml_job_duration_seconds_sum", kind="train") < 100
    assert value(m, "ml_queue_depth") == services.jobs.queue.pending_count() == 2
    assert value(m, "ml_workers_alive") == 1
    assert value(m, "ml_jobs_store_up") == 1 and value(m, "ml_queue_up") == 1


def test_a_jobs_database_or_queue_that_does_not_answer_is_a_zero_not_an_error(
    tmp_path: Path, app_for, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/jobs"
    settings = service_settings(f"sqlite:///{tmp_path}/mlflow.db", tmp_path, jobs_database_url=down)
    client = app_for(settings)
    with caplog.at_level("WARNING", logger="backend.services.metrics"):
        m = scrape(client)
        scrape(client)  # logged once, not at every scrape
    assert value(m, "ml_jobs_store_up") == 0
    assert "ml_jobs" not in m and "ml_workers_alive" not in m and "ml_job_failures_total" not in m
    assert value(m, "ml_queue_up") == 1 and value(m, "ml_queue_depth") == 0  # SQLite queue: still there
    lines = [r.getMessage() for r in caplog.records if "jobs database does not answer" in r.getMessage()]
    assert len(lines) == 1 and PASSWORD not in caplog.text

    no_queue = service_settings(
        f"sqlite:///{tmp_path}/mlflow.db",
        tmp_path,
        jobs_database_url=f"sqlite:///{tmp_path}/jobs.db",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    m = scrape(app_for(no_queue))
    assert value(m, "ml_queue_up") == 0 and "ml_queue_depth" not in m
    assert value(m, "ml_jobs_store_up") == 1  # the jobs database is another matter


class StandInPrediction:
    def __init__(self, name: str) -> None:
        self.name = name

    def to_dict(self) -> dict[str, Any]:
        return {
            "probabilities": {"down": 0.2, "flat": 0.5, "up": 0.3},
            "signal": "hold",
            "confidence": 0.5,
            "model_name": self.name,
            "model_version": 1,
            "backend": "stand-in",
            "candle_time": "2024-01-01T00:00:00+00:00",
        }


class StandInPredictor:
    """Predicts from at least 3 candles; fewer is the predictor's data error (a 422)."""

    def __init__(self, name: str) -> None:
        from backend.ml_engine.predictor import ModelNotAvailableError

        if name != "hybrid_cnn_lstm":
            raise ModelNotAvailableError(f"registered model {name!r} has no production version")
        self.name = name

    def predict(self, frame: Any, source: str = "request") -> StandInPrediction:
        from backend.ml_engine.data import DataValidationError

        if len(frame) < 3:
            raise DataValidationError(source, None, "too_few_rows", "need 3 candles")
        return StandInPrediction(self.name)

    def close(self) -> None:
        pass


def candles(n: int) -> list[dict[str, Any]]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [
        {
            "timestamp": (start + timedelta(minutes=5 * i)).isoformat(),
            "open": 1.0,
            "high": 1.1,
            "low": 0.9,
            "close": 1.05,
            "volume": 10.0,
        }
        for i in range(n)
    ]


def test_predictions_served_and_their_latency(pg_url: str, tmp_path: Path, app_for) -> None:
    settings = service_settings(f"sqlite:///{tmp_path}/mlflow.db", tmp_path, jobs_database_url=pg_url)
    services = Services.from_settings(settings)
    services.predictions = PredictionService(settings, factory=StandInPredictor)
    client = app_for(settings, services)
    other = app_for(settings, Services.from_settings(settings))  # a second app in the same process

    n = 4
    for _ in range(n):
        r = client.post(f"{PREFIX}/predict", json={"candles": candles(5)})
        assert r.status_code == 200, r.text
    assert client.post(f"{PREFIX}/predict", json={"candles": candles(2)}).status_code == 422
    nobody = {"candles": candles(5), "model_name": "nobody-knows-me"}
    assert client.post(f"{PREFIX}/predict", json=nobody).status_code == 404
    assert client.post(f"{PREFIX}/predict", json={"candles": []}).status_code == 422  # refused before the route

    m = scrape(client)
    assert value(m, "ml_predictions_total", model="hybrid_cnn_lstm", status="ok") == n
    assert value(m, "ml_predictions_total", model="hybrid_cnn_lstm", status="invalid") == 1
    assert value(m, "ml_predictions_total", model=UNRESOLVED_MODEL, status="not_found") == 1
    assert sum(m["ml_predictions_total"].values()) == n + 2  # the body refused by validation is not counted
    assert value(m, "ml_prediction_latency_seconds_count", model="hybrid_cnn_lstm") == n
    assert value(m, "ml_prediction_latency_seconds_bucket", model="hybrid_cnn_lstm", le="+Inf") == n
    assert 0 < value(m, "ml_prediction_latency_seconds_sum", model="hybrid_cnn_lstm") < n * 1.0
    assert all("nobody" not in str(labels) for labels in m["ml_predictions_total"])  # bounded labels

    assert "ml_predictions_total" not in scrape(other)  # its own registry: nothing predicted there


def test_metrics_is_at_the_root_without_a_token_and_documented_as_text(tmp_path: Path, app_for) -> None:
    settings = service_settings(
        f"sqlite:///{tmp_path}/mlflow.db", tmp_path, jobs_database_url=f"sqlite:///{tmp_path}/jobs.db"
    )
    client = app_for(settings)
    assert client.get("/metrics").status_code == 200  # no Authorization header
    assert client.get(f"{PREFIX}/metrics").status_code == 404
    spec = client.get("/openapi.json").json()
    assert "text/plain" in spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert "ml_jobs_store_up 1.0" in client.get("/metrics").text
