"""The artifact store read-only or full: a clear error, the run marked FAILED, production untouched."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from conftest import SAMPLE_DATA, TINY_TRAINING, make_settings
from mlflow import MlflowClient

from backend.ml_engine.model_registry import get_model_registry
from backend.ml_engine.training_orchestrator import TrainingOrchestrator


def _mount(args: list[str]) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount here (needs root): {proc.stderr.strip()}")


@pytest.fixture(params=["full", "read-only"])
def broken_store(request, tmp_path):
    settings = make_settings(tmp_path, data_path=str(SAMPLE_DATA))
    orchestrator = TrainingOrchestrator(settings)
    first = orchestrator.train_model_sync(
        run_name="v1", auto_promote=True, min_accuracy_for_promotion=0.0, **TINY_TRAINING
    )
    assert first["success"] and first["promoted"], first
    target = Path(settings.mlflow_artifact_location) / "model_training"
    assert target.is_dir()
    if request.param == "full":
        _mount(["-t", "tmpfs", "-o", "size=16k", "tmpfs", str(target)])
        (target / "filler").write_bytes(b"\0" * 12 * 1024)
    else:
        _mount(["--bind", str(target), str(target)])
        subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], check=True)
    yield request.param, settings, orchestrator, first
    subprocess.run(["umount", str(target)], check=False)


def test_training_fails_clearly_and_production_stays(broken_store):
    kind, settings, orchestrator, first = broken_store
    second = orchestrator.train_model_sync(
        run_name="v2", auto_promote=True, min_accuracy_for_promotion=0.0, **TINY_TRAINING
    )
    assert second["success"] is False
    expected = "No space left on device" if kind == "full" else "Read-only file system"
    assert expected in second["error"]
    assert "\n" not in second["error"]

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    run = client.get_run(second["run_id"])
    assert run.info.status == "FAILED"
    assert expected in run.data.tags["failure_reason"]

    registry = get_model_registry(settings)
    try:
        assert asyncio.run(registry.get_production_version("hybrid_cnn_lstm")).version == int(first["version"])
        assert [v.version for v in asyncio.run(registry.list_versions("hybrid_cnn_lstm"))] == [int(first["version"])]
    finally:
        registry.close()
