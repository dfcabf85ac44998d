"""train_model against PostgreSQL, checked with the stock MlflowClient, and the guide's code as written."""

from __future__ import annotations

import asyncio
import math
import textwrap
import uuid

import mlflow
import pytest
from conftest import PG_HOST, PG_PORT, PG_USER, SAMPLE_DATA, TINY_TRAINING, _admin_connect, make_settings
from mlflow import MlflowClient
from mlflow.models import Model

from backend.ml_engine.training_orchestrator import TrainingOrchestrator, main

EPOCHS = TINY_TRAINING["epochs"]


@pytest.fixture(scope="module")
def pg_module_url():
    """One PostgreSQL database for the module (MLflow's schema costs seconds to create)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    conn = _admin_connect()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    conn = _admin_connect()
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    conn.close()


@pytest.fixture(scope="module")
def trained(pg_module_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("orch")
    settings = make_settings(tmp, tracking_uri=pg_module_url, data_path=str(SAMPLE_DATA))
    orchestrator = TrainingOrchestrator(settings)
    result = asyncio.run(orchestrator.train_model(model_name="hybrid_cnn_lstm", run_name="acceptance", **TINY_TRAINING))
    assert result["success"], result.get("error")
    return settings, result, MlflowClient(tracking_uri=pg_module_url)


def test_stock_client_sees_params_metrics_tags_inputs_artifacts(trained):
    _settings, result, client = trained
    exp = client.get_experiment_by_name("model_training")
    assert exp.tags.get("mlflow.note.content")  # the UI shows what the experiment holds
    run = client.get_run(result["run_id"])
    assert run.info.experiment_id == exp.experiment_id
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["trainer_epochs"] == str(EPOCHS)
    assert params["model_lstm_hidden"] == "16"
    assert params["data_window"] == "16" and params["data_symbols"] == "ETH/BTC,LTC/BTC"
    assert any(k.startswith("model_") for k in params) and any(k.startswith("data_") for k in params)

    for key in ("train_loss", "val_loss", "val_accuracy", "val_f1", "learning_rate"):
        history = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in history] == list(range(1, EPOCHS + 1)), key
    metrics = run.data.metrics
    assert metrics["test_accuracy"] == pytest.approx(result["test_metrics"]["accuracy"])
    for key in (
        "test_f1_macro",
        "test_precision_up",
        "test_recall_down",
        "baseline_majority_accuracy",
        "baseline_previous_direction_f1_macro",
        "backtest_sharpe",
        "backtest_total_return",
        "backtest_buy_and_hold_total_return",
        "backtest_max_drawdown",
    ):
        assert key in metrics, key

    tags = run.data.tags
    assert tags["training_mode"] == "manual"
    assert tags["model_name"] == "hybrid_cnn_lstm"
    assert tags["symbol"] == "ETH/BTC,LTC/BTC" and tags["timeframe"] == "5m"
    assert tags["code_version"] and len(tags["data_hash"]) == 32

    # lineage: one dataset input per split, each with its own context and digest
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {f"ETH/BTC,LTC/BTC 5m {split}" for split in ("train", "val", "test")}
    contexts = {
        name.rsplit(" ", 1)[1]: {t.key: t.value for t in d.tags}["mlflow.data.context"] for name, d in inputs.items()
    }
    assert contexts == {"train": "training", "val": "validation", "test": "testing"}
    digests = {name: d.dataset.digest for name, d in inputs.items()}
    assert len(set(digests.values())) == 3 and all(digests.values())
    assert digests["ETH/BTC,LTC/BTC 5m test"] == result["datasets"]["test"]

    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    names |= {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {
        "model.onnx",
        "metadata.json",
        "plots/confusion_matrix.png",
        "plots/learning_curves.png",
        "plots/equity_curve.png",
    } <= names


def test_test_metrics_belong_to_the_logged_model_and_the_test_dataset(trained):
    _settings, result, client = trained
    model = client.get_logged_model(result["model_id"])
    assert model.source_run_id == result["run_id"]
    by_key = {m.key: m for m in model.metrics}
    for key in ("test_accuracy", "test_f1_macro", "accuracy", "test_f1", "backtest_sharpe"):
        assert key in by_key, key
    assert by_key["test_accuracy"].value == pytest.approx(result["test_metrics"]["accuracy"])
    assert by_key["test_accuracy"].dataset_name == "ETH/BTC,LTC/BTC 5m test"
    assert by_key["test_accuracy"].dataset_digest == result["datasets"]["test"]
    # search_logged_models filters and orders by them
    exp = client.get_experiment_by_name("model_training")
    found = client.search_logged_models(
        experiment_ids=[exp.experiment_id],
        filter_string=f"metrics.test_accuracy >= {result['test_metrics']['accuracy'] - 1e-9}",
        order_by=[{"field_name": "metrics.test_accuracy", "ascending": False}],
    )
    assert result["model_id"] in [m.model_id for m in found]


def test_registered_version_has_tags_description_and_signature(trained):
    settings, result, client = trained
    mv = client.get_model_version("hybrid_cnn_lstm", result["version"])
    assert mv.description and "test accuracy" in mv.description
    for key in (
        "test_accuracy",
        "test_f1_macro",
        "run_id",
        "data_hash",
        "symbol",
        "timeframe",
        "onnx_parity_max_abs_diff",
    ):
        assert mv.tags.get(key), key
    assert mv.run_id == result["run_id"]
    local = mlflow.artifacts.download_artifacts(artifact_uri=mv.source, tracking_uri=settings.mlflow_tracking_uri)
    sig = Model.load(local).signature
    assert sig is not None and sig.inputs is not None and sig.outputs is not None
    assert sig.inputs.to_dict() and sig.outputs.to_dict()


def test_guide_code_examples_run_as_written(trained, monkeypatch, capsys):
    settings, result, client = trained
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    monkeypatch.setenv("MLFLOW_ARTIFACT_LOCATION", settings.mlflow_artifact_location)
    # "Через код" from the guide, verbatim.
    exec(
        textwrap.dedent("""
        from backend.ml_engine.mlflow_integration import get_mlflow_tracker

        tracker = get_mlflow_tracker(experiment_name="model_training")

        # Получить лучший run по метрике
        best_run = tracker.get_best_run(metric="val_accuracy", order="DESC")
        print(f"Лучший run: {best_run['run_id']}")
        print(f"Accuracy: {best_run['metrics.val_accuracy']}")

        # Поиск runs по фильтру
        runs = tracker.search_runs(
            filter_string="metrics.val_accuracy > 0.7",
            order_by=["metrics.val_f1 DESC"],
            max_results=10
        )

        # Загрузить модель
        model = tracker.load_model("models:/hybrid_cnn_lstm/latest")
    """),
        {},
    )
    out = capsys.readouterr().out
    best = max(
        (
            r
            for r in client.search_runs([client.get_experiment_by_name("model_training").experiment_id])
            if "val_accuracy" in r.data.metrics
        ),
        key=lambda r: r.data.metrics["val_accuracy"],
    )
    assert f"Лучший run: {best.info.run_id}" in out
    assert f"Accuracy: {best.data.metrics['val_accuracy']}" in out

    # Practical example 2, verbatim: experiment "2" is model_training on a fresh store.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    exec(
        textwrap.dedent("""
        from mlflow.tracking import MlflowClient
        import pandas as pd

        client = MlflowClient()

        # Получить все runs из model_training
        runs = client.search_runs(
            experiment_ids=["2"],  # model_training ID
            filter_string="",
            order_by=["metrics.test_accuracy DESC"],
            max_results=20
        )

        # Создать сводную таблицу
        data = []
        for run in runs:
            data.append({
                "run_id": run.info.run_id[:8],
                "name": run.info.run_name,
                "accuracy": run.data.metrics.get("test_accuracy", 0),
                "f1": run.data.metrics.get("test_f1", 0),
                "epochs": run.data.params.get("trainer_epochs", "?"),
                "lr": run.data.params.get("trainer_learning_rate", "?")
            })

        df = pd.DataFrame(data)
        print(df.to_string())
    """),
        {},
    )
    out = capsys.readouterr().out
    # the values it prints are the run's: accuracy and f1 read names the runs carry (f1 was 0 before)
    row = next(line.split() for line in out.splitlines() if result["run_id"][:8] in line)
    assert "acceptance" in row
    run = client.get_run(result["run_id"])
    accuracy, f1, epochs, lr = row[-4:]
    assert float(accuracy) == pytest.approx(result["test_metrics"]["accuracy"], abs=1e-6)
    assert float(f1) == pytest.approx(result["test_metrics"]["f1_macro"], abs=1e-6) and float(f1) > 0
    assert run.data.metrics["test_f1"] == pytest.approx(result["test_metrics"]["f1_macro"])
    assert epochs == str(EPOCHS) and lr == run.data.params["trainer_learning_rate"]


def test_guide_filters_find_the_training(trained):
    settings, result, _client = trained
    from backend.ml_engine.mlflow_integration import get_mlflow_tracker

    tracker = get_mlflow_tracker(experiment_name="model_training", settings=settings)
    ids = lambda f: {r["run_id"] for r in tracker.search_runs(filter_string=f)}  # noqa: E731
    assert result["run_id"] in ids(f"params.trainer_epochs = '{EPOCHS}'")
    assert result["run_id"] in ids("tags.training_mode = 'manual'")
    assert result["run_id"] not in ids("tags.training_mode = 'auto'")
    assert result["run_id"] not in ids(f"params.trainer_epochs = '{EPOCHS + 1}'")
    assert result["run_id"] in ids(f"params.model_hidden_size = '{TINY_TRAINING['model_kwargs']['lstm_hidden']}'")

    # The guide's metric filters use names the runs carry: each answers exactly the runs it describes.
    runs = {r["run_id"]: r for r in tracker.search_runs(max_results=1000)}
    acc = result["test_metrics"]["accuracy"]
    assert result["run_id"] in ids(f"metrics.accuracy > {acc - 1e-6}")
    assert result["run_id"] in ids(f"metrics.accuracy > {acc - 1e-6} AND params.trainer_epochs = '{EPOCHS}'")
    assert result["run_id"] not in ids(f"metrics.accuracy > {acc + 1e-6}")
    for guide_filter, keep in (
        ("metrics.accuracy > 0.85", lambda r: r.get("metrics.accuracy", -1) > 0.85),
        (
            "metrics.accuracy > 0.8 AND params.trainer_epochs = '50'",
            lambda r: r.get("metrics.accuracy", -1) > 0.8 and r.get("params.trainer_epochs") == "50",
        ),
        ("metrics.val_loss < 0.5", lambda r: r.get("metrics.val_loss", 9) < 0.5),
    ):
        assert ids(guide_filter) == {rid for rid, r in runs.items() if keep(r)}, guide_filter
    assert all(
        runs[rid]["metrics.accuracy"] == pytest.approx(runs[rid]["metrics.test_accuracy"])
        for rid in runs
        if "metrics.accuracy" in runs[rid]
    )


def test_two_concurrent_trainings_never_mix_their_metrics(pg_module_url, tmp_path):
    settings = make_settings(tmp_path, tracking_uri=pg_module_url, data_path=str(SAMPLE_DATA))
    orchestrator = TrainingOrchestrator(settings)

    async def both():
        return await asyncio.gather(
            orchestrator.train_model(run_name="concurrent_a", **{**TINY_TRAINING, "epochs": 2, "lr": 1e-3}),
            orchestrator.train_model(
                run_name="concurrent_b", **{**TINY_TRAINING, "epochs": 3, "lr": 5e-3, "symbols": ["XMR/BTC"]}
            ),
        )

    a, b = asyncio.run(both())
    assert a["success"] and b["success"]
    client = MlflowClient(tracking_uri=pg_module_url)
    for res, epochs in ((a, 2), (b, 3)):
        losses = client.get_metric_history(res["run_id"], "val_loss")
        assert [m.step for m in losses] == list(range(1, epochs + 1))
        assert [m.value for m in losses] == pytest.approx([h["val_loss"] for h in res["history"]])
        run = client.get_run(res["run_id"])
        assert run.data.metrics["test_accuracy"] == pytest.approx(res["test_metrics"]["accuracy"])
    assert client.get_run(a["run_id"]).data.tags["symbol"] == "ETH/BTC,LTC/BTC"
    assert client.get_run(b["run_id"]).data.tags["symbol"] == "XMR/BTC"


def test_refused_data_leaves_no_run(pg_module_url, tmp_path, capsys, monkeypatch):
    """Bad data or a --date-range longer than the data is refused before an MLflow run exists."""
    settings = make_settings(tmp_path, tracking_uri=pg_module_url, data_path=str(SAMPLE_DATA))
    client = MlflowClient(tracking_uri=pg_module_url)
    result = TrainingOrchestrator(settings).train_model_sync(
        run_name="refused_range", **{**TINY_TRAINING, "date_range": 400}
    )
    assert result["success"] is False and "asked for 400 days" in result["error"]
    assert result["run_id"] is None and result["error_type"] == "DataValidationError"
    # the guide's CLI command on the bundled 20 days: one line, exit 2, no run
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", pg_module_url)
    monkeypatch.setenv("ML_DATA_PATH", str(SAMPLE_DATA))
    code = main(
        ["--epochs", "100", "--batch-size", "128", "--lr", "0.0005", "--date-range", "60", "--run-name", "refused_cli"]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "asked for 60 days" in err
    exp = client.get_experiment_by_name("model_training")
    names = {r.info.run_name for r in client.search_runs([exp.experiment_id], max_results=1000)}
    assert not names & {"refused_range", "refused_cli"}


def test_failure_after_the_run_started_marks_it_failed(pg_module_url, tmp_path):
    from backend.ml_engine.trainer import BaseCallback

    class DiskFull(BaseCallback):
        def on_epoch_end(self, epoch, metrics):
            raise OSError("No space left on device")

    settings = make_settings(tmp_path, tracking_uri=pg_module_url, data_path=str(SAMPLE_DATA))
    result = TrainingOrchestrator(settings).train_model_sync(run_name="fails", callbacks=[DiskFull()], **TINY_TRAINING)
    assert result["success"] is False and result["run_id"] is not None
    assert result["error"] == "No space left on device" and result["version"] is None
    run = MlflowClient(tracking_uri=pg_module_url).get_run(result["run_id"])
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"] == result["error"]


def test_nan_loss_fails_the_run_instead_of_producing_a_model(pg_module_url, tmp_path):
    settings = make_settings(tmp_path, tracking_uri=pg_module_url, data_path=str(SAMPLE_DATA))
    result = TrainingOrchestrator(settings).train_model_sync(run_name="diverges", **{**TINY_TRAINING, "lr": 1e30})
    assert result["success"] is False and result["version"] is None
    assert result["error_type"] == "TrainingDivergedError"
    run = MlflowClient(tracking_uri=pg_module_url).get_run(result["run_id"])
    assert run.info.status == "FAILED"


def test_unreachable_postgres_is_a_clear_error_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://trading_bot:robocop@127.0.0.1:1/mlflow_tracking")
    monkeypatch.setenv("ML_DATA_PATH", str(SAMPLE_DATA))
    code = main(["--epochs", "1", "--window", "16", "--date-range", "2", "--symbol", "ETH/BTC"])
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "127.0.0.1:1" in err and "robocop" not in err
    assert not (tmp_path / "outputs").exists()  # nothing trained


def test_nan_metric_is_stored_as_nan_not_zero(pg_module_url, tmp_path):
    from backend.ml_engine.mlflow_integration import get_mlflow_tracker

    tracker = get_mlflow_tracker(
        experiment_name="model_training", settings=make_settings(tmp_path, tracking_uri=pg_module_url)
    )
    run_id = tracker.start_run(run_name="nan")
    tracker.log_metrics({"val_loss": float("nan")}, step=1)
    tracker.end_run()
    run = MlflowClient(tracking_uri=pg_module_url).get_run(run_id)
    assert math.isnan(run.data.metrics["val_loss"])
    assert run.data.tags["nonfinite_metrics"] == "val_loss"
