"""The whole tracking flow against the three stores, for real: embedded SQLite, the PostgreSQL
server (``pg_url``: a fresh database per test) and an MLflow tracking server on a loopback port.

The tracking server is started once per session by ``start_mlflow_ui.py --proxy-artifacts``
(which runs ``mlflow server --backend-store-uri sqlite:///... --artifacts-destination ...``), so
this module also checks that the script starts a working UI with the guide's experiments. It is
launched when this module starts and waited for only by the first test that needs it.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient
from mlflow.models import Model
from torch import nn

from backend.ml_engine.config import EXPERIMENT_DEFAULT, EXPERIMENT_RETRAINING, EXPERIMENT_TRAINING, Settings
from backend.ml_engine.mlflow_integration import MLflowTracker, get_mlflow_tracker, resolve_tracking_uri

REPO = Path(__file__).resolve().parents[1]
T, F = 8, 5
SERVER_START_TIMEOUT_S = 120


def tiny_model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(T * F, 3))


def example_batch(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, T, F)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# the MLflow tracking server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``start_mlflow_ui.py`` running ``mlflow server`` in its own process group."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = root / "server.db"
        self.artifacts = root / "artifacts"
        self.log_path = root / "server.log"
        env = dict(os.environ)
        env.update(
            MLFLOW_TRACKING_URI=f"sqlite:///{self.db}",
            MLFLOW_ARTIFACT_LOCATION=str(self.artifacts),
            MLFLOW_DISABLE_TELEMETRY="true",
        )
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - the server's log while it runs; closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "start_mlflow_ui.py"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--proxy-artifacts",
            ],
            cwd=root,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._ready = False

    def wait_ready(self) -> str:
        if self._ready:
            return self.url
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"MLflow server exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as resp:
                    if resp.status == 200:
                        self._ready = True
                        return self.url
            except OSError:
                pass
            time.sleep(0.2)
        pytest.fail(f"MLflow server not healthy after {SERVER_START_TIMEOUT_S} s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        else:  # the script exited; make sure nothing of its group is left
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


@pytest.fixture(scope="session")
def _server_process(tmp_path_factory: pytest.TempPathFactory):
    server = ServerProcess(tmp_path_factory.mktemp("mlflow_server"))
    yield server
    server.stop()


@pytest.fixture(scope="module", autouse=True)
def _launch_server_early(request: pytest.FixtureRequest) -> None:
    """Start the server (~15 s to become healthy) as soon as this module starts, if any selected
    test needs it, so that the SQLite and PostgreSQL cases run while it boots."""
    if any("server" in item.name for item in request.session.items if item.module is request.module):
        request.getfixturevalue("_server_process")


@pytest.fixture(scope="session")
def mlflow_server(_server_process: ServerProcess) -> str:
    return _server_process.wait_ready()


@pytest.fixture(params=["sqlite", "postgres", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """tracking URI and artifact root of one of the three store kinds."""
    kind = request.param
    artifacts = str(tmp_path / "artifacts")
    if kind == "sqlite":
        return {"kind": kind, "uri": f"sqlite:///{tmp_path}/mlflow.db", "artifacts": artifacts}
    if kind == "postgres":
        return {"kind": kind, "uri": request.getfixturevalue("pg_url"), "artifacts": artifacts}
    return {"kind": kind, "uri": request.getfixturevalue("mlflow_server"), "artifacts": artifacts}


def _settings(store: dict[str, str]) -> Settings:
    return Settings(mlflow_tracking_uri=store["uri"], mlflow_artifact_location=store["artifacts"])


def _client(store: dict[str, str]) -> MlflowClient:
    uri = resolve_tracking_uri(store["uri"])
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _unique(name: str) -> str:
    """The server is shared by the session: names stay unique there."""
    return f"{name}_{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------------------------


def test_full_training_flow(store: dict[str, str], tmp_path: Path) -> None:
    """params -> buffered metrics -> dataset -> model (ONNX, metadata) -> registry -> load by every URI kind."""
    import mlflow.artifacts

    experiment = _unique(EXPERIMENT_TRAINING) if store["kind"] == "server" else EXPERIMENT_TRAINING
    model_name = _unique("hybrid_cnn_lstm")
    tracker = get_mlflow_tracker(experiment_name=experiment, settings=_settings(store))
    model = tiny_model()
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\x08\x07onnx")
    meta = tmp_path / "metadata.json"
    meta.write_text('{"window": 8, "features": 5}')
    frame = pd.DataFrame(
        {"timestamp": pd.date_range("2024-01-01", periods=50, freq="5min", tz="UTC"), "close": np.arange(50.0)}
    )

    with tracker.run(run_name="flow", tags={"training_mode": "manual"}, description="full flow") as run_id:
        tracker.log_params({"model": {"hidden_size": 16}, "trainer": {"epochs": 50, "batch_size": 128}})
        tracker.log_input(frame, name="ETH/BTC 5m", source="/data/ETH_BTC-5m.feather")
        for epoch in range(1, 4):
            for step in range(10):
                tracker.log_metrics({"batch_loss": 1.0 / (epoch * 10 + step)}, step=(epoch - 1) * 10 + step)
            tracker.log_metrics(
                {"train_loss": 1.0 / epoch, "val_accuracy": 0.5 + epoch / 10, "val_f1": 0.4 + epoch / 10}, step=epoch
            )
            tracker.flush()
        tracker.log_metrics({"test_accuracy": 0.77, "test_sharpe": float("nan")})
        model_uri = tracker.log_model(
            model, "model", input_example=example_batch(16), onnx_path=onnx, artifacts={"metadata": meta}
        )
        version = tracker.register_model(
            model_uri,
            model_name,
            tags={"training_mode": "manual", "test_accuracy": "0.7700"},
            description="flow test version",
        )
    tracker.models.promote(model_name, version, reason="flow test", force=True)

    client = _client(store)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model_hidden_size"] == "16" and run.data.params["trainer_epochs"] == "50"
    assert run.data.tags["training_mode"] == "manual"
    assert [m.step for m in sorted(client.get_metric_history(run_id, "batch_loss"), key=lambda m: m.step)] == list(
        range(30)
    )
    assert sorted((m.step, m.value) for m in client.get_metric_history(run_id, "val_accuracy")) == [
        (1, 0.6),
        (2, 0.7),
        (3, 0.8),
    ]
    assert math.isnan(run.data.metrics["test_sharpe"]) and run.data.tags["nonfinite_metrics"] == "test_sharpe"
    assert run.inputs.dataset_inputs[0].dataset.name == "ETH/BTC 5m"
    assert {a.path for a in client.list_artifacts(run_id)} >= {"model.onnx", "metadata.json"}
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags["mlflow.note.content"]
    if store["kind"] == "server":
        assert run.info.artifact_uri.startswith("mlflow-artifacts:/")  # proxied through the server
    else:
        assert run.info.artifact_uri.startswith((Path(store["artifacts"]).resolve() / experiment).as_uri())

    # registry: tags, description, signature
    mv = client.get_model_version(model_name, version)
    assert mv.description == "flow test version"
    assert mv.tags["training_mode"] == "manual" and mv.tags["run_id"] == run_id
    assert mv.tags["model_id"] == model_uri.split("/")[-1] and mv.run_id == run_id
    assert client.get_registered_model(model_name).description
    assert (
        str(client.get_model_version_by_alias(model_name, "production").version) == version
    )  # int on SQL stores, str via REST
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=client.get_model_version_download_uri(model_name, version),
        dst_path=str(tmp_path / "registry_copy"),
        tracking_uri=resolve_tracking_uri(store["uri"]),
    )
    signature = Model.load(local).signature
    assert signature is not None and signature.inputs.inputs and signature.outputs.inputs
    assert tuple(signature.inputs.inputs[0].shape) == (-1, T, F)
    assert (Path(local) / "model.onnx").is_file() and (Path(local) / "artifacts" / "metadata.json").is_file()

    # load by every URI kind, same predictions as the original
    x = torch.from_numpy(example_batch(3, seed=5))
    with torch.no_grad():
        expected = model.eval()(x)
        for uri in (
            f"runs:/{run_id}/model",
            f"models:/{model_name}/latest",
            f"models:/{model_name}/{version}",
            f"models:/{model_name}@production",
            model_uri,
        ):
            loaded = tracker.load_model(uri)
            assert torch.allclose(loaded(x), expected), uri

    # best run, as the guide reads it
    best = get_mlflow_tracker(experiment_name=experiment, settings=_settings(store)).get_best_run(
        metric="val_accuracy", order="DESC"
    )
    assert best["run_id"] == run_id and best["metrics.val_accuracy"] == pytest.approx(0.8)


RUNS = {
    # name: (metrics, params, tags)
    "r1": (
        {"val_accuracy": 0.75, "accuracy": 0.85, "val_f1": 0.5},
        {"trainer": {"epochs": 50}, "model": {"hidden_size": 128}},
        {"training_mode": "manual"},
    ),
    "r2": (
        {"val_accuracy": 0.65, "accuracy": 0.90, "val_f1": 0.7},
        {"trainer": {"epochs": 50}, "model": {"hidden_size": 64}},
        {"trigger": "scheduled"},
    ),
    "r3": (
        {"val_accuracy": 0.80, "accuracy": 0.70, "val_f1": 0.9},
        {"trainer": {"epochs": 100}, "model": {"hidden_size": 128}},
        {"training_mode": "manual"},
    ),
    "r4": (
        {"val_accuracy": 0.72, "accuracy": 0.78, "val_f1": 0.3},
        {"trainer": {"epochs": 50}, "model": {"hidden_size": 64}},
        {"trigger": "drift"},
    ),
}


def test_guide_search_filters(store: dict[str, str]) -> None:
    tracker = get_mlflow_tracker(experiment_name=_unique("search"), settings=_settings(store))
    for name, (metrics, params, tags) in RUNS.items():
        with tracker.run(run_name=name, tags=tags):
            tracker.log_params(params)
            tracker.log_metrics(metrics)

    def names(filter_string: str, **kw: Any) -> set[str]:
        return {r["run_name"] for r in tracker.search_runs(filter_string=filter_string, **kw)}

    assert names("metrics.val_accuracy > 0.7") == {"r1", "r3", "r4"}
    assert names("params.trainer_epochs = '50'") == {"r1", "r2", "r4"}
    assert names("params.model_hidden_size = '128'") == {"r1", "r3"}
    assert names("tags.training_mode = 'manual'") == {"r1", "r3"}
    assert names("tags.trigger = 'scheduled'") == {"r2"}
    assert names("metrics.accuracy > 0.8 AND params.trainer_epochs = '50'") == {"r1", "r2"}
    assert names("metrics.accuracy > 0.85") == {"r2"}

    # the guide's example, verbatim
    runs = tracker.search_runs(
        filter_string="metrics.val_accuracy > 0.7", order_by=["metrics.val_f1 DESC"], max_results=10
    )
    assert [r["run_name"] for r in runs] == ["r3", "r1", "r4"]
    assert runs[0]["metrics.val_f1"] == 0.9 and runs[0]["params.trainer_epochs"] == "100"
    best = tracker.get_best_run(metric="val_accuracy", order="DESC")
    assert best["run_name"] == "r3" and best["metrics.val_accuracy"] == 0.8

    # the stock client sees the same (guide's "Example 2")
    found = _client(store).search_runs([tracker.experiment_id], "", order_by=["metrics.accuracy DESC"], max_results=20)
    assert [r.info.run_name for r in found] == ["r2", "r1", "r4", "r3"]


async def test_concurrent_trainings(store: dict[str, str]) -> None:
    import asyncio

    experiment = _unique("concurrent")
    a = get_mlflow_tracker(experiment_name=experiment, settings=_settings(store))
    b = get_mlflow_tracker(experiment_name=experiment, settings=_settings(store))

    def train(tracker: MLflowTracker, base: float) -> str:
        with tracker.run(run_name=f"t{base:.0f}") as run_id:
            for epoch in range(5):
                for step in range(10):
                    tracker.log_metrics({"loss": base + epoch * 10 + step}, step=epoch * 10 + step)
                tracker.flush()
        return run_id

    run_a, run_b = await asyncio.gather(asyncio.to_thread(train, a, 1000.0), asyncio.to_thread(train, b, 2000.0))
    client = _client(store)
    for run_id, base in ((run_a, 1000.0), (run_b, 2000.0)):
        values = sorted(m.value for m in client.get_metric_history(run_id, "loss"))
        assert values == [base + i for i in range(50)]


@pytest.mark.postgres
def test_two_processes_create_experiments_at_once(pg_url: str, tmp_path: Path) -> None:
    """ensure_experiment in two processes released at the same instant: both get the same ids."""
    go = tmp_path / "go"
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(REPO)!r})
        from mlflow import MlflowClient
        from backend.ml_engine.mlflow_integration import ensure_project_experiments, resolve_tracking_uri
        client = MlflowClient(tracking_uri=resolve_tracking_uri({pg_url!r}))
        client.search_experiments(max_results=1)  # schema ready before the race
        while not Path({str(go)!r}).exists():
            time.sleep(0.01)
        ids = ensure_project_experiments(client, {str(tmp_path / "art")!r})
        print(",".join(ids[k] for k in sorted(ids)))
        """
    )
    # one process creates the schema first, so the race is about the experiments only
    MlflowClient(tracking_uri=resolve_tracking_uri(pg_url)).search_experiments(max_results=1)
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    time.sleep(4)  # both imported and waiting
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    assert outs[0][0].strip() == outs[1][0].strip() != ""
    client = MlflowClient(tracking_uri=resolve_tracking_uri(pg_url))
    names = {e.name for e in client.search_experiments()}
    assert {EXPERIMENT_DEFAULT, EXPERIMENT_TRAINING, EXPERIMENT_RETRAINING} <= names


def test_ui_server_started_by_script_has_project_experiments(
    mlflow_server: str, _server_process: ServerProcess
) -> None:
    client = MlflowClient(tracking_uri=mlflow_server)
    by_name = {e.name: e for e in client.search_experiments()}
    for name in (EXPERIMENT_DEFAULT, EXPERIMENT_TRAINING, EXPERIMENT_RETRAINING):
        assert by_name[name].tags["mlflow.note.content"], name
        assert by_name[name].artifact_location == f"mlflow-artifacts:/{name}"
    log = _server_process.log_path.read_text()
    assert "--artifacts-destination" in log and f"--port {_server_process.port}" in log
    with urllib.request.urlopen(mlflow_server + "/", timeout=5) as resp:  # the UI itself
        assert resp.status == 200 and b"<html" in resp.read(2000).lower()
