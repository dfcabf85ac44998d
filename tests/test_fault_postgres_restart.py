"""PostgreSQL restarted mid-training: the training finishes and no metric point is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from backend.ml_engine.mlflow_integration import resolve_tracking_uri

EPOCHS = 8


def _cluster() -> list[str]:
    versions = sorted(os.listdir("/etc/postgresql")) if Path("/etc/postgresql").is_dir() else []
    if not versions:
        pytest.skip("no local PostgreSQL cluster to restart (pg_ctlcluster)")
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main"]


def _pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]).returncode == 0


def test_postgres_restart_mid_training_loses_no_metric_point(tmp_path, pg_url):
    cluster = _cluster()
    env = {**os.environ, "MLFLOW_TRACKING_URI": pg_url, "MLFLOW_ARTIFACT_LOCATION": str(tmp_path / "artifacts")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backend.ml_engine.training_orchestrator",
            "--run-name",
            "survives",
            "--epochs",
            str(EPOCHS),
            "--window",
            "16",
            "--horizon",
            "4",
            "--date-range",
            "6",
            "--symbol",
            "ETH/BTC",
            "--symbol",
            "LTC/BTC",
            "--batch-size",
            "64",
            "--seed",
            "1",
            "--no-onnx",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ckpt = tmp_path / "outputs" / "survives" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 240
    while not ckpt.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    try:
        subprocess.run([*cluster, "stop", "-m", "fast"], check=True, capture_output=True)
        time.sleep(4)  # several epoch flushes fall into the outage
    finally:
        subprocess.run([*cluster, "start"], check=True, capture_output=True)
        for _ in range(60):
            if _pg_ready():
                break
            time.sleep(0.5)
    _out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert "keeping" in err or "retrying" in err, "the outage was not noticed: the test proves nothing"

    client = MlflowClient(tracking_uri=resolve_tracking_uri(pg_url))
    run = client.search_runs(
        [client.get_experiment_by_name("model_training").experiment_id], "attributes.run_name = 'survives'"
    )[0]
    assert run.info.status == "FINISHED"
    for key in ("train_loss", "val_loss", "val_accuracy", "val_f1", "learning_rate"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        assert sorted(steps) == list(range(1, EPOCHS + 1)), key
    assert "test_accuracy" in run.data.metrics
