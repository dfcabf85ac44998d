"""MLflowTracker behaviour on an embedded SQLite store: params, buffered metrics, NaN policy,
failures, nested and concurrent runs, models, datasets, search, experiments, store errors.

Every assertion about what was stored reads it back with the stock ``MlflowClient``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from torch import nn

from backend.ml_engine.config import (
    EXPERIMENT_DEFAULT,
    EXPERIMENT_RETRAINING,
    EXPERIMENT_TRAINING,
    Settings,
)
from backend.ml_engine.mlflow_integration import (
    NONFINITE_TAG,
    MLflowCallback,
    MLflowTracker,
    TrackingStoreUnavailable,
    dataset_digest,
    ensure_experiment,
    ensure_project_experiments,
    get_mlflow_tracker,
    mask_uri,
)
from backend.ml_engine.mlflow_integration.experiments import NOTE_TAG

T, F = 8, 5


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(T * F, 3))


def example_batch(n: int = 4) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, T, F)).astype(np.float32)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One SQLite store per module (creating MLflow's schema costs ~2 s); tests use their own experiments."""
    root = tmp_path_factory.mktemp("mlflow_sqlite")
    return {"uri": f"sqlite:///{root}/db/mlflow.db", "artifacts": str(root / "artifacts")}


@pytest.fixture
def make_tracker(store: dict[str, str]):
    def make(experiment: str | None = None, **kwargs: Any) -> MLflowTracker:
        settings = Settings(mlflow_tracking_uri=store["uri"], mlflow_artifact_location=store["artifacts"])
        return get_mlflow_tracker(
            experiment_name=experiment or f"exp_{uuid.uuid4().hex[:10]}", settings=settings, **kwargs
        )

    return make


@pytest.fixture
def client(store: dict[str, str]) -> MlflowClient:
    return MlflowClient(tracking_uri=store["uri"])


class BatchSpy:
    """Counts MlflowClient.log_batch calls of one tracker (and the metric values in them)."""

    def __init__(self, tracker: MLflowTracker, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[dict[str, int]] = []
        real = tracker.client.log_batch

        def spy(run_id: str, metrics=(), params=(), tags=(), synchronous=None):
            self.calls.append({"metrics": len(metrics), "params": len(params), "tags": len(tags)})
            return real(run_id, metrics=metrics, params=params, tags=tags, synchronous=synchronous)

        monkeypatch.setattr(tracker.client, "log_batch", spy)

    @property
    def metric_calls(self) -> list[int]:
        return [c["metrics"] for c in self.calls if c["metrics"]]

    @property
    def param_calls(self) -> list[int]:
        return [c["params"] for c in self.calls if c["params"]]


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


# --------------------------------------------------------------------------------------------
# contract


def test_guide_import_and_method_names() -> None:
    from backend.ml_engine.mlflow_integration import get_mlflow_tracker as factory

    assert "experiment_name" in inspect.signature(factory).parameters
    assert "settings" in inspect.signature(factory).parameters
    for name in (
        "start_run",
        "log_params",
        "log_metrics",
        "log_model",
        "register_model",
        "end_run",
        "get_best_run",
        "search_runs",
        "load_model",
        "flush",
        "log_artifact",
        "log_dict",
        "log_figure",
        "log_image",
        "set_tags",
        "log_input",
        "log_dataset",
        "run",
    ):
        assert callable(getattr(MLflowTracker, name)), name
    params = inspect.signature(MLflowTracker.start_run).parameters
    assert list(params)[1:] == ["run_name", "tags", "nested", "description"]
    assert inspect.signature(MLflowTracker.get_best_run).parameters["metric"].default == "val_accuracy"


def test_mask_uri() -> None:
    assert mask_uri("postgresql://trading_bot:robocop@localhost:5432/mlflow_tracking") == (
        "postgresql://trading_bot:***@localhost:5432/mlflow_tracking"
    )
    assert mask_uri("sqlite:///mlruns/mlflow.db") == "sqlite:///mlruns/mlflow.db"
    assert mask_uri("postgresql://u@h/db") == "postgresql://u@h/db"
    assert "pw" not in mask_uri("postgresql://u@h/db?password=pw&sslmode=require")
    assert mask_uri("http://user:tok@mlflow:5000") == "http://user:***@mlflow:5000"


# --------------------------------------------------------------------------------------------
# experiments and the default store


def test_default_sqlite_store_and_project_experiments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()  # defaults: sqlite:///mlruns/mlflow.db, ./mlruns/artifacts, trading_bot_ml
    tracker = get_mlflow_tracker(settings=settings)
    assert (tmp_path / "mlruns").is_dir() and (tmp_path / "mlruns" / "mlflow.db").is_file()
    assert tracker.experiment_name == EXPERIMENT_DEFAULT

    client = MlflowClient(tracking_uri=tracker.tracking_uri)
    ids = ensure_project_experiments(client, settings.mlflow_artifact_location)
    assert set(ids) == {EXPERIMENT_DEFAULT, EXPERIMENT_TRAINING, EXPERIMENT_RETRAINING}
    assert ids[EXPERIMENT_DEFAULT] == tracker.experiment_id
    for name, experiment_id in ids.items():
        exp = client.get_experiment(experiment_id)
        assert len(exp.tags[NOTE_TAG]) > 40, name  # the UI shows this as the description
        assert exp.artifact_location == (tmp_path / "mlruns" / "artifacts" / name).resolve().as_uri()
    assert "trigger" in client.get_experiment(ids[EXPERIMENT_RETRAINING]).tags[NOTE_TAG]
    # idempotent
    assert ensure_project_experiments(client, settings.mlflow_artifact_location) == ids


def test_ensure_experiment_lost_race_rereads(
    client: MlflowClient, store: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"race_{uuid.uuid4().hex[:8]}"
    first = ensure_experiment(client, name, store["artifacts"])
    real = client.get_experiment_by_name
    calls = {"n": 0}

    def stale_then_real(n: str):  # another process created it between our read and our create
        calls["n"] += 1
        return None if calls["n"] == 1 else real(n)

    monkeypatch.setattr(client, "get_experiment_by_name", stale_then_real)
    assert ensure_experiment(client, name, store["artifacts"]) == first
    assert calls["n"] == 2


def test_ensure_experiment_concurrent_threads(store: dict[str, str]) -> None:
    name = f"concurrent_{uuid.uuid4().hex[:8]}"
    barrier = threading.Barrier(4)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        c = MlflowClient(tracking_uri=store["uri"])
        barrier.wait()
        try:
            results.append(ensure_experiment(c, name, store["artifacts"]))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(results)) == 1


def test_deleted_experiment_is_restored(make_tracker, client: MlflowClient) -> None:
    tracker = make_tracker()
    client.delete_experiment(tracker.experiment_id)
    again = make_tracker(tracker.experiment_name)
    assert again.experiment_id == tracker.experiment_id
    assert client.get_experiment(tracker.experiment_id).lifecycle_stage == "active"


# --------------------------------------------------------------------------------------------
# params


def test_log_params_flattens_truncates_and_batches(
    make_tracker, client: MlflowClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from pydantic import SecretStr

    tracker = make_tracker()
    spy = BatchSpy(tracker, monkeypatch)
    params: dict[str, Any] = {
        "model": {"hidden": 64, "layers": {"n": 2}},
        "trainer": {"epochs": 50, "lr": 0.0005},
        "long_text": "x" * 7000,
        "db_password": SecretStr("robocop"),
        "candles_url": "postgresql://bot:robocop@db:5432/candles",
        **{f"p{i:03d}": i for i in range(120)},
    }
    with caplog.at_level(logging.WARNING), tracker.run(run_name="params") as run_id:
        logged = tracker.log_params(params)
    assert len(logged) == 127
    assert spy.param_calls == [100, 27]
    data = client.get_run(run_id).data.params
    assert data["model_hidden"] == "64" and data["model_layers_n"] == "2"
    assert data["trainer_epochs"] == "50" and data["trainer_lr"] == "0.0005"
    assert len(data["long_text"]) == 6000
    assert "robocop" not in "".join(data.values())
    assert data["candles_url"] == "postgresql://bot:***@db:5432/candles"
    assert any("long_text" in r.getMessage() and "truncated" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------------------------
# metrics


def test_metrics_are_buffered_and_sent_once_per_epoch(
    make_tracker, client: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = make_tracker()
    spy = BatchSpy(tracker, monkeypatch)
    epochs, steps = 4, 25
    with tracker.run(run_name="buffered") as run_id:
        for epoch in range(epochs):
            for s in range(steps):
                tracker.log_metrics({"train_loss": 1.0 / (1 + epoch * steps + s)}, step=epoch * steps + s)
            if epoch == 0:
                assert spy.metric_calls == [] and tracker.buffered == steps  # nothing sent yet
            tracker.log_metrics({"val_accuracy": 0.5 + epoch / 10}, step=epoch)
            assert tracker.flush() == steps + 1
    assert spy.metric_calls == [steps + 1] * epochs  # one log_batch per epoch
    loss = history(client, run_id, "train_loss")
    assert [s for s, _ in loss] == list(range(epochs * steps))  # one point per step
    assert [v for _, v in history(client, run_id, "val_accuracy")] == pytest.approx([0.5, 0.6, 0.7, 0.8])


def test_auto_flush_every_n_values_and_at_end(
    make_tracker, client: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = make_tracker(flush_every=7)
    spy = BatchSpy(tracker, monkeypatch)
    with tracker.run(run_name="auto") as run_id:
        for step in range(20):
            tracker.log_metrics({"loss": float(step)}, step=step)
        assert spy.metric_calls == [7, 7] and tracker.buffered == 6
    assert spy.metric_calls == [7, 7, 6]  # end of run flushed the rest
    assert len(history(client, run_id, "loss")) == 20


def test_same_key_and_step_twice_last_value_wins(make_tracker, client: MlflowClient) -> None:
    tracker = make_tracker()
    with tracker.run(run_name="dupes") as run_id:
        tracker.log_metrics({"loss": 1.0, "acc": 0.1}, step=3)
        tracker.log_metrics({"loss": 2.0}, step=3)
        tracker.log_metrics({"loss": 5.0}, step=4)
        assert tracker.flush() == 3
        tracker.log_metrics({"acc": 0.2}, step=3)  # a later batch: MLflow keeps both points
    assert history(client, run_id, "loss") == [(3, 2.0), (4, 5.0)]
    assert client.get_run(run_id).data.metrics["loss"] == 5.0


def test_non_numeric_metric_is_refused_at_once(make_tracker) -> None:
    tracker = make_tracker()
    with tracker.run(run_name="typed"):
        tracker.log_metrics({"np": np.float32(0.5), "tensor": torch.tensor(0.25), "int": 3})
        with pytest.raises(TypeError, match="'name'"):
            tracker.log_metrics({"name": "abc"})
        assert tracker.buffered == 3


def test_nan_stays_nan_inf_is_clamped_and_tagged(
    make_tracker, client: MlflowClient, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = make_tracker()
    with caplog.at_level(logging.WARNING), tracker.run(run_name="nan") as run_id:
        tracker.log_metrics({"val_loss": float("nan"), "acc": 0.5, "grad_norm": float("inf")}, step=0)
        tracker.log_metrics({"val_loss": float("nan"), "neg": float("-inf")}, step=1)
    run = client.get_run(run_id)
    assert math.isnan(run.data.metrics["val_loss"])
    assert all(math.isnan(v) for _, v in history(client, run_id, "val_loss"))
    assert run.data.metrics["grad_norm"] == 1.7976931348623157e308
    assert run.data.metrics["neg"] == -1.7976931348623157e308
    assert run.data.metrics["acc"] == 0.5
    assert run.data.tags[NONFINITE_TAG] == "grad_norm,neg,val_loss"
    warned = [r.getMessage() for r in caplog.records if "val_loss" in r.getMessage()]
    assert len(warned) == 1  # once per key and run, not per value


# --------------------------------------------------------------------------------------------
# run lifecycle


def test_exception_in_run_flushes_and_ends_failed(make_tracker, client: MlflowClient) -> None:
    tracker = make_tracker()
    with pytest.raises(ValueError, match="boom"), tracker.run(run_name="fails") as run_id:
        tracker.log_metrics({"train_loss": 0.7}, step=1)
        raise ValueError("boom")
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"] == "ValueError: boom"
    assert history(client, run_id, "train_loss") == [(1, 0.7)]
    assert tracker.run_id is None and tracker.last_run_id == run_id


def test_keyboard_interrupt_ends_killed(make_tracker, client: MlflowClient) -> None:
    tracker = make_tracker()
    with pytest.raises(KeyboardInterrupt), tracker.run(run_name="interrupted") as run_id:
        raise KeyboardInterrupt
    assert client.get_run(run_id).info.status == "KILLED"


def test_end_run_flushes_and_nested_runs(make_tracker, client: MlflowClient) -> None:
    tracker = make_tracker()
    parent = tracker.start_run(run_name="parent", tags={"trigger": "scheduled"}, description="walk-forward")
    with pytest.raises(RuntimeError, match="still active"):
        tracker.start_run(run_name="second")
    tracker.log_metrics({"m": 1.0}, step=0)
    child = tracker.start_run(run_name="fold_1", nested=True)
    assert tracker.run_id == child
    tracker.log_metrics({"m": 2.0}, step=0)
    tracker.end_run()
    assert tracker.run_id == parent
    tracker.log_metrics({"m": 3.0}, step=1)
    tracker.end_run()
    assert tracker.run_id is None
    tracker.end_run()  # no active run: a warning, not an error

    child_run, parent_run = client.get_run(child), client.get_run(parent)
    assert child_run.data.tags["mlflow.parentRunId"] == parent
    assert parent_run.data.tags["mlflow.note.content"] == "walk-forward"
    assert parent_run.data.tags["trigger"] == "scheduled"
    assert history(client, parent, "m") == [(0, 1.0), (1, 3.0)]
    assert history(client, child, "m") == [(0, 2.0)]
    assert parent_run.info.status == child_run.info.status == "FINISHED"


def test_log_metrics_without_run_is_an_error(make_tracker) -> None:
    with pytest.raises(RuntimeError, match="no active run"):
        make_tracker().log_metrics({"x": 1.0})


async def test_two_concurrent_trainings_never_mix(make_tracker, client: MlflowClient) -> None:
    """Two trainings in one process at once: one in a worker thread, one interleaving on the loop."""
    experiment = f"concurrent_{uuid.uuid4().hex[:8]}"
    a, b = make_tracker(experiment), make_tracker(experiment)

    def train_in_thread(tracker: MLflowTracker, base: float) -> str:
        with tracker.run(run_name=f"thread_{base:.0f}") as run_id:
            for step in range(40):
                tracker.log_metrics({"loss": base + step}, step=step)
                if step % 10 == 9:
                    tracker.flush()
        return run_id

    async def train_interleaved(tracker: MLflowTracker, base: float) -> str:
        with tracker.run(run_name=f"loop_{base:.0f}") as run_id:
            for step in range(40):
                tracker.log_metrics({"loss": base + step}, step=step)
                await asyncio.sleep(0)
                if step % 10 == 9:
                    await asyncio.to_thread(tracker.flush)
        return run_id

    run_a, run_b = await asyncio.gather(asyncio.to_thread(train_in_thread, a, 1000.0), train_interleaved(b, 2000.0))
    assert run_a != run_b
    assert [v for _, v in history(client, run_a, "loss")] == [1000.0 + s for s in range(40)]
    assert [v for _, v in history(client, run_b, "loss")] == [2000.0 + s for s in range(40)]


def test_trainer_callback_logs_batches_and_epochs(make_tracker, client: MlflowClient) -> None:
    tracker = make_tracker()
    cb = MLflowCallback(tracker)
    with tracker.run(run_name="callback") as run_id:
        for epoch in (1, 2):
            for step in (1, 2):
                cb.on_batch_end((epoch - 1) * 2 + step, {"batch_loss": 0.5, "learning_rate": 1e-3, "epoch": epoch})
            cb.on_epoch_end(
                epoch, {"epoch": epoch, "train_loss": 1.0 / epoch, "val_accuracy": 0.4 + epoch / 10, "note": "x"}
            )
            assert tracker.buffered == 0
        cb.on_train_end(type("R", (), {"best_epoch": 2, "best_metric": 0.3, "monitor": "val_loss"})())
    metrics = client.get_run(run_id).data.metrics
    assert {"batch_loss", "batch_learning_rate", "train_loss", "val_accuracy", "best_epoch", "best_val_loss"} <= set(
        metrics
    )
    assert "epoch" not in metrics and "note" not in metrics
    assert [s for s, _ in history(client, run_id, "batch_loss")] == [1, 2, 3, 4]
    assert [s for s, _ in history(client, run_id, "val_accuracy")] == [1, 2]


# --------------------------------------------------------------------------------------------
# artifacts, datasets


def test_artifact_helpers(make_tracker, client: MlflowClient, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tracker = make_tracker()
    f = tmp_path / "report.txt"
    f.write_text("hello")
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with tracker.run(run_name="artifacts") as run_id:
        tracker.log_artifact(f, artifact_path="reports")
        tracker.log_dict({"a": 1}, "config/pipeline.json")
        tracker.log_text("text", "notes.txt")
        tracker.log_figure(fig, "plots/loss.png")
        tracker.log_image(np.zeros((4, 4, 3), dtype=np.uint8), "plots/image.png")
    plt.close(fig)
    listed = {a.path for a in client.list_artifacts(run_id)}
    assert {"reports", "config", "notes.txt", "plots"} <= listed
    assert {a.path for a in client.list_artifacts(run_id, "plots")} == {"plots/loss.png", "plots/image.png"}


def test_dataset_lineage_with_whole_frame_digest(make_tracker, client: MlflowClient) -> None:
    n = 12_000
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC"),
            "close": np.linspace(1.0, 2.0, n),
            "label": np.arange(n) % 3,
        }
    )
    changed = frame.copy()
    changed.loc[11_500, "close"] = 9.0  # beyond MLflow's default 10,000-row digest window
    shifted = frame.copy()
    shifted["timestamp"] = shifted["timestamp"] + pd.Timedelta(minutes=5)  # datetime column only
    digest = dataset_digest(frame)
    assert len(digest) <= 36
    assert len({digest, dataset_digest(changed), dataset_digest(shifted)}) == 3

    tracker = make_tracker()
    with tracker.run(run_name="dataset") as run_id:
        got = tracker.log_input(
            frame, name="ETH/BTC 5m", source="postgresql://bot:robocop@db:5432/market#candles", targets="label"
        )
        tracker.log_input(frame.iloc[:100], name="val", source="/data/eth.feather", context="validation")
    assert got == digest
    inputs = client.get_run(run_id).inputs.dataset_inputs
    by_name = {i.dataset.name: i for i in inputs}
    training = by_name["ETH/BTC 5m"]
    assert training.dataset.digest == digest
    assert "robocop" not in training.dataset.source and "db:5432/market#candles" in training.dataset.source
    assert {t.key: t.value for t in training.tags}["mlflow.data.context"] == "training"
    assert {t.key: t.value for t in by_name["val"].tags}["mlflow.data.context"] == "validation"


# --------------------------------------------------------------------------------------------
# models


def test_log_model_refuses_without_input_example(make_tracker) -> None:
    tracker = make_tracker()
    with tracker.run(run_name="no_example"), pytest.raises(ValueError, match="input_example"):
        tracker.log_model(tiny_model(), "model")


def test_log_model_signature_requirements_and_files(make_tracker, client: MlflowClient, tmp_path: Path) -> None:
    import mlflow.artifacts

    model = tiny_model().train()
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"onnx-bytes")
    meta = tmp_path / "metadata.json"
    meta.write_text('{"window": 8}')
    tracker = make_tracker()
    with tracker.run(run_name="model") as run_id:
        uri = tracker.log_model(
            model,
            "model",
            input_example=torch.from_numpy(example_batch(32)),
            onnx_path=onnx,
            artifacts={"metadata": meta},
        )
    assert uri.startswith("models:/m-")
    assert model.training  # the caller's module is untouched

    logged = client.get_logged_model(uri.split("/")[-1])
    assert logged.source_run_id == run_id and logged.status == LoggedModelStatus.READY
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=logged.artifact_location, dst_path=str(tmp_path / "dl"), tracking_uri=tracker.tracking_uri
    )
    mlmodel = Model.load(local)
    (inp,), (out,) = mlmodel.signature.inputs.inputs, mlmodel.signature.outputs.inputs
    assert (str(inp.type), tuple(inp.shape)) == ("float32", (-1, T, F))
    assert (str(out.type), tuple(out.shape)) == ("float32", (-1, 3))
    assert mlmodel.saved_input_example_info is not None
    assert mlmodel.model_id == logged.model_id and mlmodel.run_id == run_id
    assert mlmodel.flavors["pytorch"]["model_data"] == "data" and (Path(local) / "data" / "model.pth").is_file()
    reqs = (Path(local) / "requirements.txt").read_text().split()
    names = {r.split("==")[0] for r in reqs}
    assert {"torch", "numpy", "onnxruntime", "mlflow", "cloudpickle"} <= names
    assert all("==" in r for r in reqs)
    assert (Path(local) / "model.onnx").read_bytes() == b"onnx-bytes"
    assert (Path(local) / "artifacts" / "metadata.json").is_file()
    assert {a.path for a in client.list_artifacts(run_id)} >= {"model.onnx", "metadata.json"}
    assert [o.model_id for o in client.get_run(run_id).outputs.model_outputs] == [logged.model_id]

    loaded = tracker.load_model(f"runs:/{run_id}/model")
    x = torch.from_numpy(example_batch(3))
    with torch.no_grad():
        assert torch.allclose(loaded(x), model.eval()(x))


def test_log_model_pt2_format(make_tracker) -> None:
    tracker = make_tracker()
    with tracker.run(run_name="pt2"):
        uri = tracker.log_model(tiny_model(), "model", input_example=example_batch(4), serialization_format="pt2")
    loaded = tracker.load_model(uri)
    x = torch.from_numpy(example_batch(2))
    with torch.no_grad():
        assert torch.allclose(loaded(x), tiny_model().eval()(x), atol=1e-6)


# --------------------------------------------------------------------------------------------
# search


def test_get_best_run_skips_nan_and_missing(make_tracker) -> None:
    tracker = make_tracker()
    for name, value in [("low", 0.6), ("high", 0.9), ("nan", float("nan")), ("missing", None)]:
        with tracker.run(run_name=name):
            if value is not None:
                tracker.log_metrics({"val_accuracy": value})
            tracker.log_metrics({"other": 1.0})
    best = tracker.get_best_run(metric="val_accuracy", order="DESC")
    assert best is not None and best["run_name"] == "high" and best["metrics.val_accuracy"] == 0.9
    assert tracker.get_best_run(metric="val_accuracy", order="ASC")["run_name"] == "low"
    assert tracker.get_best_run(metric="never_logged") is None
    with pytest.raises(ValueError):
        tracker.get_best_run(order="sideways")


def test_search_runs_pages(make_tracker) -> None:
    tracker = make_tracker()
    for i in range(5):
        with tracker.run(run_name=f"r{i}"):
            tracker.log_metrics({"val_f1": i / 10})
    seen: list[str] = []
    token = None
    while True:
        page = tracker.search_runs_page(order_by=["metrics.val_f1 DESC"], max_results=2, page_token=token)
        seen += [r["run_name"] for r in page.runs]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["r4", "r3", "r2", "r1", "r0"]
    assert len(tracker.search_runs(max_results=3)) == 3


# --------------------------------------------------------------------------------------------
# unreachable stores


def test_unreachable_postgres_fails_before_training_with_masked_password() -> None:
    settings = Settings(mlflow_tracking_uri="postgresql://trading_bot:robocop@127.0.0.1:1/mlflow_tracking")
    with pytest.raises(TrackingStoreUnavailable) as info:
        get_mlflow_tracker(experiment_name="model_training", settings=settings)
    message = str(info.value)
    assert "\n" not in message
    assert "robocop" not in message
    assert "postgresql://trading_bot:***@127.0.0.1:1/mlflow_tracking" in message
    assert "connection refused" in message


def test_unreachable_tracking_server() -> None:
    settings = Settings(mlflow_tracking_uri="http://127.0.0.1:1")
    with pytest.raises(TrackingStoreUnavailable, match="connection refused"):
        get_mlflow_tracker(settings=settings)


@pytest.mark.postgres
def test_missing_database_is_named() -> None:
    settings = Settings(mlflow_tracking_uri="postgresql://postgres:sekret@127.0.0.1:5432/no_such_db_for_mlflow")
    with pytest.raises(TrackingStoreUnavailable) as info:
        get_mlflow_tracker(settings=settings)
    message = str(info.value)
    assert "database 'no_such_db_for_mlflow' does not exist" in message
    assert "sekret" not in message and "\n" not in message


def test_mlflow_rejects_changing_a_param(make_tracker) -> None:
    tracker = make_tracker()
    with tracker.run(run_name="immutable"):
        tracker.log_params({"trainer": {"epochs": 50}})
        tracker.log_params({"trainer": {"epochs": 50}})  # same value: fine
        with pytest.raises(MlflowException):
            tracker.log_params({"trainer": {"epochs": 60}})
