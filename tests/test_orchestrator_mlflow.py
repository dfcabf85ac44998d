"""train_model against PostgreSQL, checked with the stock MlflowClient, and the guide's code as written."""
from __future__ import annotations

import asyncio
import math
import textwrap
import uuid

import pytest
from mlflow import MlflowClient
import mlflow
from mlflow.models import Model

from backend.ml_engine.training_orchestrator import TrainingOrchestrator, main
from conftest import PG_HOST, PG_PORT, PG_USER, SAMPLE_DATA, TINY_TRAINING, _admin_connect, make_settings

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
    result = asyncio.run(orchestrator.train_model(model_name="hybrid_cnn_lstm", run_name="acceptance",
                                                  **TINY_TRAINING))
    assert result["success"], result.get("error")
    return settings, result, MlflowClient(tracking_uri=pg_module_url)


def test_stock_client_sees_params_metrics_tags_inputs_artifacts(trained):
    settings, result, client = trained
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
    for key in ("test_f1_macro", "test_precision_up", "test_recall_down", "baseline_majority_accuracy",
                "baseline_previous_direction_f1_macro", "backtest_sharpe", "backtest_total_return",
                "backtest_buy_and_hold_total_return", "backtest_max_drawdown"):
        assert key in metrics, key

    tags = run.data.tags
    assert tags["training_mode"] == "manual"
    assert tags["model_name"] == "hybrid_cnn_lstm"
    assert tags["symbol"] == "ETH/BTC,LTC/BTC" and tags["timeframe"] == "5m"
    assert tags["code_version"] and len(tags["data_hash"]) == 32

    inputs = run.inputs.dataset_inputs
    assert {d.dataset.name for d in inputs} == {"ETH/BTC 5m", "LTC/BTC 5m"}
    assert all(d.dataset.digest for d in inputs)

    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    names |= {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"model.onnx", "metadata.json", "plots/confusion_matrix.png", "plots/learning_curves.png",
            "plots/equity_curve.png"} <= names


def test_registered_version_has_tags_description_and_signature(trained):
    settings, result, client = trained
    mv = client.get_model_version("hybrid_cnn_lstm", result["version"])
    assert mv.description and "test accuracy" in mv.description
    for key in ("test_accuracy", "test_f1_macro", "run_id", "data_hash", "symbol", "timeframe",
                "onnx_parity_max_abs_diff"):
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
    exec(textwrap.dedent('''
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
    '''), {})
    out = capsys.readouterr().out
    assert f"Лучший run: {result['run_id']}" in out

    # Practical example 2, verbatim: experiment "2" is model_training on a fresh store.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    exec(textwrap.dedent('''
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
    '''), {})
    out = capsys.readouterr().out
    assert result["run_id"][:8] in out and "acceptance" in out


def test_guide_filters_find_the_training(trained):
    settings, result, client = trained
    from backend.ml_engine.mlflow_integration import get_mlflow_tracker

    tracker = get_mlflow_tracker(experiment_name="model_training", settings=settings)
    ids = lambda f: {r["run_id"] for r in tracker.search_runs(filter_string=f)}  # noqa: E731
    assert result["run_id"] in ids(f"params.trainer_epochs = '{EPOCHS}'")
    assert result["run_id"] in ids("tags.training_mode = 'manual'")
    assert result["run_id"] not in ids("tags.training_mode = 'auto'")
    assert result["run_id"] not in ids(f"params.trainer_epochs = '{EPOCHS + 1}'")


def test_two_concurrent_trainings_never_mix_their_metrics(pg_module_url, tmp_path):
    settings = make_settings(tmp_path, tracking_uri=pg_module_url, data_path=str(SAMPLE_DATA))
    orchestrator = TrainingOrchestrator(settings)

    async def both():
        return await asyncio.gather(
            orchestrator.train_model(run_name="concurrent_a", **{**TINY_TRAINING, "epochs": 2, "lr": 1e-3}),
            orchestrator.train_model(run_name="concurrent_b", **{**TINY_TRAINING, "epochs": 3, "lr": 5e-3,
                                                               "symbols": ["XMR/BTC"]}),
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


def test_failed_training_ends_failed_with_the_reason(pg_module_url, tmp_path):
    settings = make_settings(tmp_path, tracking_uri=pg_module_url, data_path=str(SAMPLE_DATA))
    result = TrainingOrchestrator(settings).train_model_sync(
        run_name="fails", **{**TINY_TRAINING, "date_range": 400})
    assert result["success"] is False and "asked for 400 days" in result["error"]
    run = MlflowClient(tracking_uri=pg_module_url).get_run(result["run_id"])
    assert run.info.status == "FAILED"
    assert "asked for 400 days" in run.data.tags["failure_reason"]


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

    tracker = get_mlflow_tracker(experiment_name="model_training",
                                 settings=make_settings(tmp_path, tracking_uri=pg_module_url))
    run_id = tracker.start_run(run_name="nan")
    tracker.log_metrics({"val_loss": float("nan")}, step=1)
    tracker.end_run()
    run = MlflowClient(tracking_uri=pg_module_url).get_run(run_id)
    assert math.isnan(run.data.metrics["val_loss"])
    assert run.data.tags["nonfinite_metrics"] == "val_loss"
