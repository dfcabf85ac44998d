"""REST API of the leaderboard: POST /leaderboard queues a comparison of model families (job kind
``leaderboard``), the worker's runner runs it in its own process (a real, tiny comparison: two days
of ETH/BTC, logistic regression and a 1-epoch network, two folds), GET /leaderboard returns the
newest finished one; validation, the token, 404 before any, and cancelling a running comparison
(its MLflow run ends KILLED, the finished one stays the latest).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from api_support import AUTH, PREFIX, TOKEN, database, service_settings
from fastapi.testclient import TestClient

from backend.api.main import create_app
from backend.ml_engine.families import family_names
from backend.services.job_runner import JobRunner
from backend.services.leaderboard import NO_LEADERBOARD

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

#: A comparison small enough for tests (seconds once the job process has started).
TINY: dict[str, Any] = {
    "data_source": "sample",
    "symbols": ["ETH/BTC"],
    "date_range": 3.0,
    "window": 16,
    "horizon": 4,
    "families": ["logreg", "hybrid_cnn_lstm"],
    "folds": 2,
    "epochs": 1,
    "batch_size": 256,
    "n_boot": 200,
    "policy": {"mode": "threshold", "threshold": 0.4, "direction": "long_short", "fee": 0.001, "slippage": 0.0005},
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api_leaderboard")
    with database() as url:
        settings = service_settings(url, tmp)
        app = create_app(settings)
        with TestClient(app) as client:
            yield {"client": client, "settings": settings, "services": app.state.services}


def leaderboard_jobs(env) -> list[dict]:
    return env["client"].get(f"{PREFIX}/jobs", params={"kind": "leaderboard"}).json()["data"]


def test_get_is_404_until_a_comparison_has_finished(env):
    r = env["client"].get(f"{PREFIX}/leaderboard")
    assert r.status_code == 404
    assert r.json() == {"detail": NO_LEADERBOARD, "code": "not_found"}


def test_submitting_needs_the_api_token(env):
    client = env["client"]
    assert client.post(f"{PREFIX}/leaderboard", json=TINY).status_code == 401
    wrong = client.post(f"{PREFIX}/leaderboard", json=TINY, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "unauthorized"
    assert TOKEN not in wrong.text
    assert leaderboard_jobs(env) == []


def test_an_unknown_family_is_refused_with_the_known_names(env):
    r = env["client"].post(f"{PREFIX}/leaderboard", json={"families": ["logreg", "transformer_xl"]}, headers=AUTH)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "validation_error"
    [error] = body["errors"]
    assert error["loc"] == ["body", "families"]
    assert all(name in error["msg"] for name in family_names())
    assert "transformer_xl" not in r.text  # an error never repeats the request
    assert leaderboard_jobs(env) == []


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"policy": {"mode": "martingale"}}, ["body", "policy", "mode"]),
        ({"policy": {"threshold": 0}}, ["body", "policy", "threshold"]),
        ({"policy": {"threshold": 1.5}}, ["body", "policy", "threshold"]),
        ({"policy": {"direction": "short_only"}}, ["body", "policy", "direction"]),
        ({"policy": {"fee": -0.001}}, ["body", "policy", "fee"]),
        ({"policy": {"fee": 0.5}}, ["body", "policy", "fee"]),
        ({"policy": {"slippage": "0.1"}}, ["body", "policy", "slippage"]),
        ({"policy": {"leverage": 3}}, ["body", "policy", "leverage"]),
        ({"policy": "argmax"}, ["body", "policy"]),
        ({"folds": 0}, ["body", "folds"]),
        ({"n_boot": 5}, ["body", "n_boot"]),
        ({"data_source": "/etc/passwd"}, ["body", "data_source"]),
        ({"symbols": ["eth-btc"]}, ["body", "symbols", 0]),
        ({"model_name": "x"}, ["body", "model_name"]),
    ],
)
def test_bad_fields_are_422(env, body, loc):
    r = env["client"].post(f"{PREFIX}/leaderboard", json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    assert [e["loc"] for e in r.json()["errors"]] == [loc]


def test_an_unconfigured_database_source_is_refused_at_once(env):
    r = env["client"].post(f"{PREFIX}/leaderboard", json={"data_source": "database"}, headers=AUTH)
    assert r.status_code == 400 and "ML_CANDLES_DATABASE_URL" in r.json()["detail"]
    assert leaderboard_jobs(env) == []


def test_the_route_is_documented(env):
    spec = env["client"].get("/openapi.json").json()
    post = spec["paths"][f"{PREFIX}/leaderboard"]["post"]
    get = spec["paths"][f"{PREFIX}/leaderboard"]["get"]
    assert {"202", "401", "403", "422"} <= set(post["responses"])
    assert {"200", "404"} <= set(get["responses"])
    assert get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/LeaderboardPublic")


def test_a_comparison_runs_as_a_job_and_becomes_the_leaderboard(env):
    client = env["client"]
    r = client.post(f"{PREFIX}/leaderboard", json=TINY, headers=AUTH)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["kind"] == "leaderboard" and job["status"] == "queued" and job["model_name"] is None
    assert r.headers["Location"].endswith(f"/jobs/{job['id']}")
    assert job["params"]["families"] == ["logreg", "hybrid_cnn_lstm"] and job["params"]["policy"]["threshold"] == 0.4
    assert [j["id"] for j in leaderboard_jobs(env)] == [job["id"]]

    runner = JobRunner(env["settings"], env["services"].jobs.store)
    assert runner(job["id"]) == "done"  # in its own process, as the worker runs it
    done = client.get(f"{PREFIX}/jobs/{job['id']}").json()
    assert done["status"] == "finished", done["error"]
    assert done["progress"] == 1.0 and done["stage"] is None and len(done["run_id"]) == 32
    result = done["result"]
    assert result["run_id"] == done["run_id"]
    names = [row["name"] for row in result["rows"]]
    assert names == ["logreg", "hybrid_cnn_lstm", "majority", "previous_direction"]

    board = client.get(f"{PREFIX}/leaderboard")
    assert board.status_code == 200, board.text
    board = board.json()
    assert board["run_id"] == done["run_id"] and board["verdict"] == result["verdict"]
    assert board["primary_metric"] == "accuracy" and board["n_predictions"] > 100 and board["block"] >= 4
    assert board["config"]["policy"] == TINY["policy"] and board["config"]["folds"] == 2
    assert [row["name"] for row in board["rows"]] == names
    logreg = board["rows"][0]
    assert logreg["kind"] == "family" and logreg["n_parameters"] > 0 and logreg["train_seconds"] > 0
    accuracy = logreg["metrics"]["accuracy"]
    assert accuracy["low"] <= accuracy["value"] <= accuracy["high"]
    assert set(logreg["tests"]) == {"majority", "previous_direction"}
    test = logreg["tests"]["majority"]
    assert test["metric"] == "accuracy" and 0 < test["p_value"] <= 1 and isinstance(test["significant"], bool)
    assert board["rows"][2]["kind"] == "baseline" and board["rows"][2]["tests"] == {}

    run = client.get(f"{PREFIX}/mlflow/runs/{done['run_id']}").json()
    assert run["status"] == "FINISHED" and run["tags"]["job_id"] == job["id"]  # linked while it ran
    assert "leaderboard.json" in {a["path"] for a in run["artifacts"]}


def test_a_running_comparison_is_cancelled_between_steps_and_its_run_killed(env, monkeypatch):
    """The job process's own code, in this process: a cancellation requested once the comparison's run
    exists stops it at the next step; the job ends cancelled, its run KILLED; the stage and the
    progress were in the job while it ran; GET /leaderboard still answers the finished comparison."""
    from backend.services.job_process import JobExecution
    from backend.services.job_store import JobStore, host_identity

    services = env["services"]
    store = services.jobs.store
    before = env["client"].get(f"{PREFIX}/leaderboard").json()["run_id"]
    job = env["client"].post(f"{PREFIX}/leaderboard", json=TINY, headers=AUTH).json()
    status, claimed = store.claim_next(host="test-host", pid=os.getpid(), host_id=host_identity())
    assert status == "claimed" and claimed.id == job["id"]

    seen: list[dict] = []
    real = JobStore.stage

    def stage(self, job_id, message, fraction, *, pid, host_id):
        cancel = real(self, job_id, message, fraction, pid=pid, host_id=host_id)
        now = services.jobs.get_job(job_id)
        seen.append({"message": message, "stage": now.stage, "progress": now.progress, "run_id": now.run_id})
        if len(seen) == 3:  # the run has started (fold 1 of the first family is done)
            store.request_cancel(job_id)
        return cancel

    monkeypatch.setattr(JobStore, "stage", stage)
    JobExecution(env["settings"], store, os.getpid())(job["id"])

    ended = services.jobs.get_job(job["id"])
    assert ended.status == "cancelled", ended.error
    assert ended.error.startswith("cancelled by request during")
    assert [s["stage"] for s in seen] == [s["message"] for s in seen]
    assert seen[0]["progress"] == 0.0 and seen[2]["progress"] > seen[1]["progress"] >= 0.0
    assert len(seen) <= 4  # stopped inside the running training or at the next step
    assert ended.run_id and seen[1]["run_id"] is None and seen[2]["run_id"] == ended.run_id
    run = env["client"].get(f"{PREFIX}/mlflow/runs/{ended.run_id}").json()
    assert run["status"] == "KILLED" and run["tags"]["job_id"] == job["id"]
    assert env["client"].get(f"{PREFIX}/leaderboard").json()["run_id"] == before
