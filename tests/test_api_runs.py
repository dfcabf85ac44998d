"""REST API: experiments and MLflow runs (search with filters, paging, one run in detail).

Runs are created directly with MlflowClient (metrics with histories, params, tags, artifacts, a
dataset input) in a real PostgreSQL tracking store.
"""

from __future__ import annotations

import pytest
from api_support import PREFIX, database, service_settings
from fastapi.testclient import TestClient

from backend.api.main import create_app

pytestmark = pytest.mark.postgres

N_RUNS = 12


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag

    from backend.ml_engine.mlflow_integration import ensure_project_experiments

    tmp = tmp_path_factory.mktemp("api_runs")
    with database() as url:
        settings = service_settings(url, tmp)
        app = create_app(settings)
        with TestClient(app) as client:
            mlflow = app.state.services.runs.client
            ids = ensure_project_experiments(mlflow, str(tmp / "artifacts"))
            exp = ids["model_training"]
            run_ids = []
            for i in range(N_RUNS):
                mode = "manual" if i % 2 else "auto"
                run = mlflow.create_run(exp, run_name=f"run_{i:02d}", tags={"training_mode": mode})
                rid = run.info.run_id
                metrics = [Metric("val_accuracy", 0.5 + i / 100, 0, e) for e in range(3)]
                metrics += [Metric("train_loss", 1.0 / (e + 1), 0, e) for e in range(5)]
                mlflow.log_batch(
                    rid,
                    metrics=metrics,
                    params=[
                        Param("trainer_epochs", str(10 + i % 3)),
                        Param("data_source", "postgresql://bot:robocop@db:5432/candles#t"),
                    ],
                    tags=[RunTag("symbol", "ETH/BTC")],
                )
                run_ids.append(rid)
            first = run_ids[0]
            mlflow.log_metric(first, "val_f1", float("nan"))
            (tmp / "files" / "plots").mkdir(parents=True)
            (tmp / "files" / "metadata.json").write_text("{}")
            (tmp / "files" / "plots" / "equity.png").write_bytes(b"png")
            mlflow.log_artifacts(first, str(tmp / "files"))
            mlflow.log_inputs(
                first,
                datasets=[
                    DatasetInput(
                        Dataset(name="ETH_BTC-5m", digest="abc123", source_type="local", source='{"uri": "x"}'),
                        tags=[InputTag("mlflow.data.context", "training")],
                    )
                ],
            )
            for rid in run_ids:
                mlflow.set_terminated(rid)
            yield {"client": client, "mlflow": mlflow, "run_ids": run_ids, "exp": exp}


def test_experiments_have_descriptions(env):
    r = env["client"].get(f"{PREFIX}/experiments")
    assert r.status_code == 200
    by_name = {e["name"]: e for e in r.json()["data"]}
    assert {"trading_bot_ml", "model_training", "auto_retraining"} <= set(by_name)
    assert "TrainingOrchestrator" in by_name["model_training"]["description"]
    assert by_name["model_training"]["artifact_location"].endswith("model_training")


def test_runs_default_lists_everything_in_pages(env):
    client = env["client"]
    seen: list[str] = []
    token = None
    while True:
        params = {"max_results": 5, "experiment": "model_training"}
        if token:
            params["page_token"] = token
        page = client.get(f"{PREFIX}/mlflow/runs", params=params).json()
        seen += [r["run_id"] for r in page["data"]]
        assert page["count"] == len(page["data"]) <= 5
        token = page["next_page_token"]
        if not token:
            break
    assert sorted(seen) == sorted(env["run_ids"])
    plain = client.get(f"{PREFIX}/mlflow/runs")  # the guide's curl: no parameters
    assert plain.status_code == 200 and plain.json()["count"] == N_RUNS


def test_runs_filter_and_order(env):
    client = env["client"]
    r = client.get(
        f"{PREFIX}/mlflow/runs",
        params={
            "experiment": "model_training",
            "filter_string": "metrics.val_accuracy > 0.55 AND tags.training_mode = 'manual'",
            "order_by": "metrics.val_accuracy DESC",
            "max_results": 3,
        },
    )
    assert r.status_code == 200, r.text
    runs = r.json()["data"]
    accs = [x["metrics"]["val_accuracy"] for x in runs]
    assert len(runs) == 3 and accs == sorted(accs, reverse=True) and min(accs) > 0.55
    assert all(x["tags"]["training_mode"] == "manual" for x in runs)
    assert all(x["params"]["trainer_epochs"] in {"10", "11", "12"} for x in runs)
    by_param = client.get(f"{PREFIX}/mlflow/runs", params={"filter_string": "params.trainer_epochs = '11'"}).json()
    assert by_param["count"] == len([i for i in range(N_RUNS) if i % 3 == 1])
    by_id = client.get(f"{PREFIX}/mlflow/runs", params={"experiment": env["exp"], "max_results": 1}).json()
    assert by_id["count"] == 1


def test_malformed_filter_is_400_with_the_parser_message(env):
    client = env["client"]
    r = client.get(f"{PREFIX}/mlflow/runs", params={"filter_string": "metrics.val_accuracy >> 0.7"})
    assert r.status_code == 400
    assert "Invalid comparator" in r.json()["detail"]
    r = client.get(f"{PREFIX}/mlflow/runs", params={"filter_string": "params.trainer_epochs = 50"})
    assert r.status_code == 400 and "string" in r.json()["detail"].lower()
    r = client.get(f"{PREFIX}/mlflow/runs", params={"filter_string": "metrics.a > 1 OR metrics.b > 2"})
    assert r.status_code == 400
    r = client.get(f"{PREFIX}/mlflow/runs", params={"order_by": "metrics.val_accuracy SIDEWAYS"})
    assert r.status_code == 400
    r = client.get(f"{PREFIX}/mlflow/runs", params={"page_token": "not-a-token"})
    assert r.status_code == 400
    assert client.get(f"{PREFIX}/mlflow/runs", params={"experiment": "no_such_experiment"}).status_code == 404
    for bad in ({"max_results": 0}, {"max_results": 1001}, {"max_results": "many"}):
        assert client.get(f"{PREFIX}/mlflow/runs", params=bad).status_code == 422


def test_run_detail_has_histories_artifacts_datasets_and_no_password(env):
    first = env["run_ids"][0]
    r = env["client"].get(f"{PREFIX}/mlflow/runs/{first}")
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["run_name"] == "run_00" and run["status"] == "FINISHED"
    assert [p["step"] for p in run["metric_history"]["train_loss"]] == [0, 1, 2, 3, 4]
    assert run["metric_history"]["train_loss"][-1]["value"] == pytest.approx(0.2)
    assert run["metrics"]["val_f1"] is None  # NaN has no JSON form
    paths = {a["path"]: a for a in run["artifacts"]}
    assert paths["plots"]["is_dir"] and paths["plots/equity.png"]["file_size"] == 3
    assert "metadata.json" in paths and run["artifacts_truncated"] is False
    assert run["datasets"] == [
        {"name": "ETH_BTC-5m", "digest": "abc123", "source_type": "local", "context": "training"}
    ]
    assert run["params"]["data_source"] == "postgresql://bot:***@db:5432/candles#t"
    assert "robocop" not in r.text

    short = env["client"].get(f"{PREFIX}/mlflow/runs/{first}", params={"history_max_points": 2}).json()
    assert [p["step"] for p in short["metric_history"]["train_loss"]] == [0, 4]


def test_unknown_run_is_404(env):
    assert env["client"].get(f"{PREFIX}/mlflow/runs/{'0' * 32}").status_code == 404
    assert env["client"].get(f"{PREFIX}/mlflow/runs/bad%20id").status_code == 422


def test_identical_concurrent_searches_share_one_query(env):
    import threading
    import time as _time

    service = env["client"].app.state.services.runs
    real = service.client.search_runs
    calls = []

    def slow_search(*args, **kwargs):
        calls.append(kwargs.get("filter_string"))
        _time.sleep(0.3)
        return real(*args, **kwargs)

    service.client.search_runs = slow_search
    try:
        results = []

        def search():
            results.append(service.search_runs(["model_training"], "metrics.val_accuracy > 0.6"))

        threads = [threading.Thread(target=search) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 6 and len({tuple(r.run_id for r in page.data) for page in results}) == 1
        assert len(calls) < 6  # the ones that arrived while the first was running shared it
        calls.clear()
        service.search_runs(["model_training"], "metrics.val_accuracy > 0.6")
        assert len(calls) == 1  # nothing is cached afterwards
    finally:
        service.client.search_runs = real
