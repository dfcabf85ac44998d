"""Hostile and arbitrary input: filter strings cannot inject SQL or cause a 5xx, arbitrary files give a
clear error or a clean frame, and a training run never records the database password."""

from __future__ import annotations

import string

import pytest
from api_support import PREFIX, database, service_settings, with_password
from conftest import SAMPLE_DATA, TINY_TRAINING, make_settings
from corrupt_files import real_candles
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings, strategies as st

from backend.api.main import create_app
from backend.ml_engine.data import DataValidationError, load_candle_file
from backend.ml_engine.training_orchestrator import TrainingOrchestrator

HOSTILE_FILTERS = [
    "metrics.val_accuracy > 0.7; DROP TABLE runs; --",
    "params.trainer_epochs = '' OR '1'='1'",
    "params.trainer_epochs = '50' OR 1=1",
    "tags.training_mode = 'manual'; DELETE FROM experiments",
    "tags.`x'; DROP TABLE metrics; --` = 'a'",
    "attributes.run_name = 'a' UNION SELECT * FROM runs --",
    "metrics.val_accuracy > (SELECT 1)",
    "params.x = '\\'; DROP TABLE params; --'",
    'metrics."val_accuracy" > 0',
    "run_name LIKE '%' ESCAPE '\\'",
    "\x00",
    "a" * 5000,
]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    with database() as url:
        settings_ = service_settings(url, tmp)
        app = create_app(settings_)
        with TestClient(app) as client:
            mlflow = app.state.services.runs.client
            exp = mlflow.get_experiment_by_name("model_training")
            exp_id = exp.experiment_id if exp else mlflow.create_experiment("model_training")
            for i in range(3):
                run = mlflow.create_run(exp_id, run_name=f"r{i}")
                mlflow.log_param(run.info.run_id, "trainer_epochs", "50")
                mlflow.log_metric(run.info.run_id, "val_accuracy", 0.5 + 0.1 * i)
                mlflow.set_tag(run.info.run_id, "training_mode", "manual")
            yield client, mlflow, exp_id


def _runs(client, filter_string):
    return client.get(
        f"{PREFIX}/mlflow/runs",
        params={"experiment": "model_training", "filter_string": filter_string, "max_results": 50},
    )


@pytest.mark.parametrize("hostile", HOSTILE_FILTERS)
def test_hostile_filter_strings_are_parsed_not_executed(api, hostile):
    client, mlflow, exp_id = api
    resp = _runs(client, hostile)
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 400:
        assert resp.json()["detail"]  # the parser's message, not a traceback
    else:  # a string the parser accepted is a filter, never more rows than the table has
        assert len(resp.json()["data"]) <= 3
    # Nothing was dropped or deleted: every table the strings aimed at still answers.
    ok = _runs(client, "params.trainer_epochs = '50'")
    assert ok.status_code == 200 and len(ok.json()["data"]) == 3
    assert len(mlflow.search_runs([exp_id])) == 3


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=string.printable + "ЁёЖж'\"`;%\\", max_size=120))
def test_arbitrary_filter_strings_never_cause_a_server_error(api, text):
    client, _, _ = api
    resp = _runs(client, text)
    assert resp.status_code in (200, 400), (text, resp.status_code, resp.text[:300])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_arbitrarily_damaged_csv_files_give_a_clear_error_or_clean_candles(tmp_path, data):
    lines = real_candles().iloc[:200].to_csv(index=False).splitlines()
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(st.sampled_from(["garbage", "drop", "dup", "swap", "truncate", "empty"]))
        if op == "garbage":
            lines[i] = data.draw(st.text(alphabet=string.printable, max_size=60)).replace("\n", " ")
        elif op == "drop" and len(lines) > 1:
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "truncate":
            lines[i] = lines[i][: data.draw(st.integers(0, max(0, len(lines[i]) - 1)))]
        elif op == "empty":
            lines[i] = ""
    path = tmp_path / "ETH_BTC-5m.csv"
    path.write_text("\n".join(lines) + "\n")
    try:
        series = load_candle_file(path, min_rows=2)
    except DataValidationError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "\n" not in message
        return
    frame = series.frame
    assert not frame[["open", "high", "low", "close", "volume"]].isna().any().any()
    assert frame["timestamp"].is_monotonic_increasing and frame["timestamp"].is_unique
    assert (frame["high"] >= frame["low"]).all() and (frame["low"] > 0).all()


def test_training_never_records_the_database_password(tmp_path, caplog, capsys):
    password = "pw-Never-Logged-42"
    with database("test_secret") as url:
        secret = with_password(url, password)  # the local server trusts loopback: any password connects
        settings_ = make_settings(tmp_path, tracking_uri=secret, data_path=str(SAMPLE_DATA))
        with caplog.at_level("DEBUG"):
            result = TrainingOrchestrator(settings_).train_model_sync(run_name="secret", **TINY_TRAINING)
        assert result["success"], result.get("error")
        from mlflow import MlflowClient

        from backend.ml_engine.mlflow_integration import resolve_tracking_uri

        client = MlflowClient(tracking_uri=resolve_tracking_uri(secret))
        run = client.get_run(result["run_id"])
        recorded = [
            *run.data.params.values(),
            *run.data.tags.values(),
            *(d.dataset.source for d in run.inputs.dataset_inputs),
        ]
        mv = client.get_model_version("hybrid_cnn_lstm", result["version"])
        recorded += [*mv.tags.values(), mv.description or ""]
        out = capsys.readouterr()
        for text in (*recorded, caplog.text, out.out, out.err, str(result)):
            assert password not in text
