"""REST API over a real training: POST /train, the job run by the worker's runner (in this process),
then the trained version's schema, the run's details, /health, /predict, /drift, /retrain, and
cancelling a running training.

The tiny training (one epoch, two days of ETH/BTC, a 16-unit network) is real: it goes through
the orchestrator, MLflow on PostgreSQL, the registry and the promotion gate.
"""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest
import sqlalchemy as sa
from api_support import AUTH, PREFIX, TINY_TRAINING, database, service_settings
from fastapi.testclient import TestClient
from pydantic import SecretStr

from backend.api.main import create_app
from backend.ml_engine.config import SAMPLE_DATA_DIR
from backend.ml_engine.prediction_log import predictions_table
from backend.services.job_runner import JobRunner

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api_training")
    with database() as url:
        settings = service_settings(url, tmp)
        app = create_app(settings)
        with TestClient(app) as client:
            services = app.state.services
            runner = JobRunner(settings, services.jobs.store)
            body = {**TINY_TRAINING, "auto_promote": True, "min_accuracy_for_promotion": 0.0}
            r = client.post(f"{PREFIX}/train", json=body, headers=AUTH)
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            t0 = time.perf_counter()
            assert runner(job_id) == "done"
            seconds = time.perf_counter() - t0
            yield {
                "client": client,
                "settings": settings,
                "runner": runner,
                "job_id": job_id,
                "seconds": seconds,
                "services": services,
            }


def candles(n: int, end: int | None = None) -> list[dict]:
    frame = pd.read_feather(SAMPLE_DATA_DIR / "ETH_BTC-5m.feather")
    frame = frame.iloc[:end] if end else frame
    tail = frame.tail(n)
    return [
        {
            "timestamp": row.date.isoformat(),
            "open": row.open,
            "high": row.high,
            "low": row.low,
            "close": row.close,
            "volume": row.volume,
        }
        for row in tail.itertuples()
    ]


def test_the_job_finished_with_a_promoted_version(env):
    job = env["client"].get(f"{PREFIX}/jobs/{env['job_id']}").json()
    assert job["status"] == "finished", job
    assert job["epoch"] == 1 and job["epochs"] == 1 and job["progress"] == 1.0
    assert {"train_loss", "val_loss", "val_accuracy"} <= set(job["metrics"])
    assert job["version"] == 1 and len(job["run_id"]) == 32
    assert job["result"]["promoted"] is True and "accuracy" in job["result"]["test_metrics"]
    assert job["worker"].endswith(f":{__import__('os').getpid()}") and job["error"] is None
    assert job["started_at"] <= job["finished_at"]


def test_the_run_is_linked_and_detailed(env):
    job = env["client"].get(f"{PREFIX}/jobs/{env['job_id']}").json()
    run = env["client"].get(f"{PREFIX}/mlflow/runs/{job['run_id']}").json()
    assert run["tags"]["job_id"] == env["job_id"] and run["tags"]["training_mode"] == "manual"
    assert run["params"]["trainer_epochs"] == "1" and run["params"]["trainer_batch_size"] == "256"
    assert len(run["metric_history"]["val_accuracy"]) == 1
    assert "metadata.json" in {a["path"] for a in run["artifacts"]}
    assert run["datasets"] and run["datasets"][0]["context"] == "training"
    found = (
        env["client"]
        .get(
            f"{PREFIX}/mlflow/runs",
            params={
                "experiment": "model_training",
                "filter_string": "tags.training_mode = 'manual' AND params.trainer_epochs = '1'",
            },
        )
        .json()
    )
    assert job["run_id"] in [r["run_id"] for r in found["data"]]


def test_the_trained_version_has_its_input_and_output_schema(env):
    detail = env["client"].get(f"{PREFIX}/models/hybrid_cnn_lstm/versions/1").json()
    # the candle pyfunc's signature (backend/ml_engine/predictor/_pyfunc.py): raw candles in, probabilities out
    assert detail["signature"]["inputs"] == [
        {"type": "any", "name": "timestamp", "required": True},
        *({"type": "double", "name": c, "required": True} for c in ("open", "high", "low", "close", "volume")),
        {"type": "string", "name": "symbol", "required": False},
    ]
    assert detail["signature"]["outputs"] == [
        {"type": "string", "name": "symbol", "required": False},
        *({"type": "double", "name": c, "required": True} for c in ("down", "flat", "up")),
        {"type": "string", "name": "signal", "required": True},
        {"type": "double", "name": "confidence", "required": True},
        {"type": "string", "name": "candle_time", "required": True},
    ]
    assert {"python_function", "pytorch"} <= set(detail["flavors"]) and detail["has_input_example"] is True
    assert detail["aliases"] == ["production"] and detail["metrics"]["test_accuracy"] >= 0
    models = env["client"].get(f"{PREFIX}/models").json()["data"]
    assert models[0]["name"] == "hybrid_cnn_lstm" and models[0]["production_version"] == 1


def test_health_reports_stores_and_the_production_model(env):
    r = env["client"].get(f"{PREFIX}/health")
    assert r.status_code == 200, r.text
    health = r.json()
    # the stores answer (200, api_ready) but no worker runs here: degraded, and it says why
    assert health["api_ready"] is True and health["read_only"] is False
    assert health["status"] == "degraded" and health["workers"] == []
    assert health["problems"] == [
        "no live worker: queued jobs wait until one starts (python -m backend.services.worker)"
    ]
    assert health["tracking_store"] == {
        "kind": "database",
        "location": env["settings"].mlflow_tracking_uri,
        "reachable": True,
        "error": None,
    }
    assert health["jobs_store"]["kind"] == "postgresql" and health["queue"]["kind"] == "sqlite"
    assert {"name": "hybrid_cnn_lstm", "production_version": 1, "latest_version": 1} in health["models"]
    assert health["jobs"]["finished"] >= 1


def test_predict_from_raw_candles(env):
    client = env["client"]
    r = client.post(f"{PREFIX}/predict", json={"candles": candles(300)})
    assert r.status_code == 200, r.text
    p = r.json()
    assert set(p["probabilities"]) == {"down", "flat", "up"}
    assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert p["signal"] in {"buy", "hold", "sell"} and p["model_version"] == "1"
    assert p["model_name"] == "hybrid_cnn_lstm" and p["backend"] in {"onnxruntime", "torch"}

    few = client.post(f"{PREFIX}/predict", json={"candles": candles(5)})
    assert few.status_code == 422 and "too_few_rows" in few.json()["detail"]
    bad = candles(300)
    bad[-1]["high"] = bad[-1]["low"] / 2
    assert client.post(f"{PREFIX}/predict", json={"candles": bad}).status_code == 422
    assert client.post(f"{PREFIX}/predict", json={"candles": candles(300), "model_name": "nobody"}).status_code == 404
    for body in (
        {"candles": []},
        {},
        {"candles": [{"timestamp": "x"}]},
        {"candles": [{**candles(1)[0], "close": -1}]},
        {"candles": [{**candles(1)[0], "volume": "lots"}]},
    ):
        assert client.post(f"{PREFIX}/predict", json=body).status_code == 422


def test_predict_several_symbols_in_one_model_call(env, tmp_path):
    import dataclasses

    client = env["client"]
    series = {"ETH/BTC": candles(300), "LTC/BTC": candles(300, end=-700), "BTC/USDT:USDT": candles(250, end=-2000)}
    predictor = env["services"].predictions._predictor("hybrid_cnn_lstm")
    bundle, calls = predictor._bundle, []
    predictor._bundle = dataclasses.replace(bundle, runner=lambda x: calls.append(x.shape[0]) or bundle.runner(x))
    try:
        r = client.post(f"{PREFIX}/predict", json={"model_name": "hybrid_cnn_lstm", "symbols": series})
    finally:
        predictor._bundle = bundle
    assert r.status_code == 200, r.text
    assert calls == [3]  # three windows, one model call
    answers = r.json()["predictions"]
    assert list(answers) == list(series)  # in the order sent
    for symbol, body in series.items():
        alone = client.post(f"{PREFIX}/predict", json={"candles": body, "symbol": symbol}).json()
        # a batch of windows may differ from one window in the last bits (ONNX Runtime kernels)
        assert answers[symbol]["probabilities"] == pytest.approx(alone["probabilities"], abs=1e-6), symbol
        assert answers[symbol]["confidence"] == pytest.approx(alone["confidence"], abs=1e-6), symbol
        exact = ("signal", "model_name", "model_version", "backend", "candle_time")
        assert {k: answers[symbol][k] for k in exact} == {k: alone[k] for k in exact}, symbol

    # bad candles of one symbol: 422 naming it, nothing predicted
    bad = {**series, "LTC/BTC": candles(5)}
    r = client.post(f"{PREFIX}/predict", json={"symbols": bad})
    assert r.status_code == 422 and r.json()["code"] == "invalid_data"
    assert "LTC/BTC" in r.json()["detail"] and "too_few_rows" in r.json()["detail"]
    one = {"ETH/BTC": candles(300)}
    for body in (
        {"candles": candles(300), "symbols": one},  # both forms
        {"model_name": "hybrid_cnn_lstm"},  # neither
        {"symbols": {}},
        {"symbols": {f"S{i}/BTC": candles(1) for i in range(201)}},  # over 200 symbols
        {"symbols": one, "symbol": "ETH/BTC"},  # symbol goes with candles
        {"symbols": {"not a symbol": candles(300)}},
        {"symbols": {"ETH/BTC": []}},
        {"candles": candles(300), "symbol": "x" * 65},
    ):
        r = client.post(f"{PREFIX}/predict", json=body)
        assert r.status_code == 422 and r.json()["code"] == "validation_error", (list(body), r.text[:300])
    assert client.post(f"{PREFIX}/predict", json={"symbols": one, "model_name": "nobody"}).status_code == 404

    # the symbol reaches the prediction log (source api), one row per symbol of a batch
    from backend.services.predictions import PredictionService

    url = f"sqlite:///{tmp_path}/log.db"
    settings = env["settings"].model_copy(update={"prediction_log": True, "prediction_log_url": SecretStr(url)})
    service = PredictionService(settings)
    try:
        from backend.services.schemas import CandleIn

        typed = {s: [CandleIn.model_validate(c) for c in body] for s, body in series.items()}
        service.predict("hybrid_cnn_lstm", typed["ETH/BTC"], symbol="ETH/BTC")
        service.predict("hybrid_cnn_lstm", typed["ETH/BTC"])
        many = service.predict_many("hybrid_cnn_lstm", typed)
        assert list(many.predictions) == list(series)
        assert service.prediction_log is not None and service.prediction_log.flush(30)
    finally:
        service.close()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(predictions_table).order_by(predictions_table.c.id)).mappings().all()
    finally:
        engine.dispose()
    assert [r["symbol"] for r in rows] == ["ETH/BTC", "unknown", *series]
    assert {r["source"] for r in rows} == {"api"}


def test_drift_against_the_production_training_data(env):
    r = env["client"].get(f"{PREFIX}/drift", params={"data_source": "sample", "recent_days": 1})
    assert r.status_code == 200, r.text
    drift = r.json()
    assert drift["version"] == 1 and isinstance(drift["drifted"], bool) and "features drifted" in drift["summary"]
    assert drift["report"]["features"] and drift["report"]["n_reference"] > 0
    assert env["client"].get(f"{PREFIX}/drift", params={"model_name": "nobody"}).status_code == 404
    assert env["client"].get(f"{PREFIX}/drift", params={"recent_days": 0}).status_code == 422


def test_retrain_is_a_job_run_by_the_pipeline(env):
    client = env["client"]
    body = {
        "trigger": "manual",
        "force": True,
        "data_source": "sample",
        "symbols": ["ETH/BTC"],
        "train_days": 2.0,
        "epochs": 1,
        "batch_size": 256,
        "n_folds": 1,
        "model": {"conv_channels": [16], "lstm_hidden": 16, "lstm_layers": 1},
    }
    assert client.post(f"{PREFIX}/retrain", json=body).status_code == 401
    for bad in ({"trigger": "whenever"}, {"n_folds": 0}, {"force": "true"}, {"train_days": -1}, {"x": 1}):
        assert client.post(f"{PREFIX}/retrain", json=bad, headers=AUTH).status_code == 422
    r = client.post(f"{PREFIX}/retrain", json=body, headers=AUTH)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["kind"] == "retrain" and job["status"] == "queued"
    assert env["runner"](job["id"]) == "done"
    done = client.get(f"{PREFIX}/jobs/{job['id']}").json()
    assert done["status"] == "finished", done
    result = done["result"]
    assert result["trigger"] == "manual" and result["status"] == "completed" and result["walk_forward"]
    assert done["version"] == 2 and done["run_id"] == result["run_id"]
    assert isinstance(result["promoted"], bool) and result["promotion_reason"]
    run = client.get(f"{PREFIX}/mlflow/runs/{done['run_id']}").json()
    assert run["tags"]["trigger"] == "manual"
    exp = next(e for e in client.get(f"{PREFIX}/experiments").json()["data"] if e["name"] == "auto_retraining")
    assert run["experiment_id"] == exp["experiment_id"]


def test_cancel_a_running_training(env):
    client = env["client"]
    body = {**TINY_TRAINING, "epochs": 200, "early_stopping_patience": 0}
    job = client.post(f"{PREFIX}/train", json=body, headers=AUTH).json()
    worker = threading.Thread(target=env["runner"], args=(job["id"],))
    worker.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = client.get(f"{PREFIX}/jobs/{job['id']}").json()
        if state["status"] == "running" and state["epoch"] >= 1:
            break
        assert state["status"] in {"queued", "running"}, state
        time.sleep(0.1)
    r = client.post(f"{PREFIX}/jobs/{job['id']}/cancel", headers=AUTH)
    assert r.status_code == 202 and r.json()["cancel_requested"] is True
    worker.join(timeout=120)
    assert not worker.is_alive()
    done = client.get(f"{PREFIX}/jobs/{job['id']}").json()
    assert done["status"] == "cancelled" and "cancelled by request" in done["error"]
    assert 1 <= done["epoch"] < 200 and done["version"] is None
    run = client.get(f"{PREFIX}/mlflow/runs/{done['run_id']}").json()
    assert run["status"] == "KILLED"
    versions = client.get(f"{PREFIX}/models/hybrid_cnn_lstm").json()["versions"]
    assert all(v["run_id"] != done["run_id"] for v in versions)
    assert client.post(f"{PREFIX}/jobs/{job['id']}/cancel", headers=AUTH).status_code == 409


def test_a_failing_training_ends_failed_with_the_reason(env):
    client = env["client"]
    job = client.post(f"{PREFIX}/train", json={**TINY_TRAINING, "symbols": ["NOPE/BTC"]}, headers=AUTH).json()
    assert env["runner"](job["id"]) == "done"
    done = client.get(f"{PREFIX}/jobs/{job['id']}").json()
    assert done["status"] == "failed" and "NOPE/BTC" in done["error"]


def test_model_families_are_listed_and_bad_family_input_is_422(env):
    client = env["client"]
    families = client.get(f"{PREFIX}/families").json()
    assert [f["name"] for f in families] == ["hybrid_cnn_lstm", "tcn", "lightgbm", "logreg"]
    lgbm = next(f for f in families if f["name"] == "lightgbm")
    assert lgbm["input"] == "tabular" and {"num_leaves", "learning_rate"} <= {o["name"] for o in lgbm["options"]}
    jobs_before = client.get(f"{PREFIX}/jobs").json()["count"]
    for bad, words in (
        ({"model": "xgboost"}, "choose one of: hybrid_cnn_lstm, tcn, lightgbm, logreg"),
        ({"model": {"family": "lightgbm", "lstm_hidden": 8}}, "unknown option lstm_hidden"),
        ({"model": {"family": "lightgbm", "linear_tree": True}}, "cannot be exported to ONNX"),
        ({"model": "logreg", "export_onnx": False}, "served from its ONNX export only"),
        ({"policy": {"mode": "threshold", "threshold": 1.5}}, "threshold"),
    ):
        r = client.post(f"{PREFIX}/train", json=bad, headers=AUTH)
        assert r.status_code == 422, (bad, r.text)
        assert words in r.text, (bad, r.text)
    assert client.get(f"{PREFIX}/jobs").json()["count"] == jobs_before  # nothing submitted
    # a bare family name and the old option object both still work
    for good in ({"model": "lightgbm"}, {"model": {"lstm_hidden": 16}}, {"model": {"family": "tcn", "levels": 2}}):
        from backend.services.schemas import TrainingParams

        params = TrainingParams.model_validate(good)
        assert params.model is not None and params.model.family in ("lightgbm", "hybrid_cnn_lstm", "tcn")
