"""Shared fixtures: real PostgreSQL databases created and dropped per test, sample data paths."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

# Served predictions are recorded by default (ML_PREDICTION_LOG); the tests that check the prediction log turn
# it on for themselves. Set here, before anything reads the settings, so subprocesses inherit it too.
os.environ.setdefault("ML_PREDICTION_LOG", "0")

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO / "backend" / "ml_engine" / "sample_data"
SHARED_MARKET = REPO.parent / "shared" / "data" / "market"

PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("TEST_PG_USER", "postgres")


def _admin_connect():
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5)
    conn.autocommit = True
    return conn


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL database for one test; dropped afterwards. Yields its SQLAlchemy URL."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        conn = _admin_connect()
    except Exception as exc:  # noqa: BLE001 - not reachable is a real failure, with its reason  # pragma: no cover - .ci/run starts the server
        pytest.fail(f"PostgreSQL on {PG_HOST}:{PG_PORT} is not reachable: {exc}")
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    conn = _admin_connect()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    conn.close()


@pytest.fixture
def sample_data_dir() -> Path:
    return SAMPLE_DATA


#: A model small enough for tests; real sizes belong in bench/.
TINY_MODEL = {"conv_channels": (16,), "lstm_hidden": 16, "lstm_layers": 1, "attention_dim": 16, "head_hidden": 16}
#: Overrides for TrainingRequest.from_settings / train_model that keep a training to seconds.
TINY_TRAINING = {
    "epochs": 2,
    "date_range": 3,
    "window": 16,
    "horizon": 4,
    "batch_size": 256,
    "symbols": ["ETH/BTC", "LTC/BTC"],
    "model_kwargs": TINY_MODEL,
}


def tiny_production_model(settings, model_name: str) -> dict:
    """A tiny HybridCNN-LSTM (window 16, horizon 4, 1 epoch on 3 days of ETH/BTC) trained into ``settings`` and
    promoted to ``production``; the orchestrator's result."""
    from backend.ml_engine.training_orchestrator import TrainingOrchestrator

    result = TrainingOrchestrator(settings).train_model_sync(
        model_name=model_name,
        run_name="v1",
        window=16,
        epochs=1,
        date_range=3,
        horizon=4,
        symbols=["ETH/BTC"],
        model_kwargs=TINY_MODEL,
        data=str(SAMPLE_DATA),
        auto_promote=True,
        min_accuracy_for_promotion=0.0,
    )
    assert result["success"] and result["promoted"], result.get("error") or result.get("promotion_reason")
    return result


def make_settings(tmp_path: Path, tracking_uri: str | None = None, **overrides):
    """Settings with every path inside tmp_path; the tracking store is SQLite there unless given."""
    from backend.ml_engine.config import Settings

    return Settings(
        mlflow_tracking_uri=tracking_uri or f"sqlite:///{tmp_path}/mlflow.db",
        mlflow_artifact_location=str(tmp_path / "artifacts"),
        output_dir=str(tmp_path / "outputs"),
        cache_dir=str(tmp_path / "cache"),
        **overrides,
    )
