"""Helpers of the REST API tests (tests/test_api_*.py): databases, settings, seeded registry.

Module-scoped PostgreSQL databases (MLflow's schema costs seconds to create) hold both the MLflow
tracking store and the jobs table, as in production with one database server.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("TEST_PG_USER", "postgres")

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PREFIX = "/api/ml-management"

#: The smallest real training: one epoch on two days of one bundled series, a tiny network.
TINY_TRAINING: dict[str, Any] = {
    "epochs": 1,
    "date_range": 2,
    "window": 16,
    "batch_size": 256,
    "symbols": ["ETH/BTC"],
    "data_source": "sample",
    "model": {"conv_channels": [16], "lstm_hidden": 16, "lstm_layers": 1},
}


def _admin():
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5)
    conn.autocommit = True
    return conn


@contextlib.contextmanager
def database(prefix: str = "test_api") -> Iterator[str]:
    """A fresh PostgreSQL database for as long as the block runs; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        conn = _admin()
    except Exception as exc:  # noqa: BLE001 - not reachable is a real failure, with its reason  # pragma: no cover - .ci/run starts the server
        pytest.fail(f"PostgreSQL on {PG_HOST}:{PG_PORT} is not reachable: {exc}")
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    try:
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        conn = _admin()
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.close()


def with_password(url: str, password: str) -> str:
    """``url`` with a password (PostgreSQL here trusts loopback, so any password connects)."""
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{password}@{host}"


def service_settings(url: str, tmp: Path, token: str | None = TOKEN, **extra: Any):
    """ServiceSettings over one database for tracking and jobs, files under ``tmp``."""
    from backend.services import ServiceSettings

    values: dict[str, Any] = dict(
        mlflow_tracking_uri=url,
        mlflow_artifact_location=str(tmp / "artifacts"),
        jobs_database_url=url,
        huey_sqlite_path=str(tmp / "huey.db"),
        output_dir=str(tmp / "outputs"),
        cache_dir=str(tmp / "cache"),
        api_token=token,
        job_heartbeat_interval_s=0.5,
        job_heartbeat_timeout_s=30.0,
        job_retry_delay_s=0.5,
        device="cpu",
    )
    values.update(extra)
    return ServiceSettings(**values)


def save_tiny_models(root: Path) -> Path:
    """An MLflow PyTorch model folder with a signature (``model``) and one without (``model_nosig``)."""
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    x = np.random.default_rng(0).random((2, 4), dtype=np.float32)
    signature = infer_signature(x, model(torch.from_numpy(x)).detach().numpy())
    kw = dict(serialization_format="pickle", pip_requirements=[])
    mlflow.pytorch.save_model(model, str(root / "model"), signature=signature, input_example=x, **kw)
    mlflow.pytorch.save_model(model, str(root / "model_nosig"), **kw)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
