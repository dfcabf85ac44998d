"""REST API of hyperparameter studies (issue 15, interfaces): POST /tune prepares a study and queues its
trial jobs (kind ``tune``); GET /studies and GET /studies/{name} read it; stop cancels the queued trial
jobs, resume queues them again; promote queues a job that retrains and registers the best trial.

No worker runs here: the API's side only (what is queued, what is refused, with which status). Bad
input (a search space with an unknown parameter, an empty or inverted range, a parameter of another
family, a study name taken by another space) answers 422 with one line and queues nothing. A study
with a completed trial, for promote, is run in this process (two logistic-regression trials).
"""

from __future__ import annotations

from typing import Any

import pytest
from api_support import AUTH, PREFIX, TOKEN, database, service_settings
from fastapi.testclient import TestClient

from backend.api.main import create_app

pytestmark = [pytest.mark.postgres]

#: Four days of the bundled candles, two folds: a second or so to prepare.
BODY: dict[str, Any] = {
    "family": "logreg",
    "trials": 3,
    "parallel": 2,
    "data_source": "sample",
    "date_range": 4.0,
    "folds": 2,
}


#: A logistic-regression fit in a fraction of a second: short windows, strong regularization (few lbfgs steps),
#: at most 100 of them (the bundled space's window 90 and C up to 10 take seconds a fit).
SMALL_SPACE = """
[common]
window = { choices = [16] }

[logreg]
C = { low = 0.01, high = 0.1, log = true }
max_iter = 100
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api_tuning")
    with database("test_api_tuning") as url:
        settings = service_settings(url, tmp, tuning_storage=f"sqlite:///{tmp}/optuna.db")
        app = create_app(settings)
        with TestClient(app) as client:
            yield {"client": client, "settings": settings, "services": app.state.services}


@pytest.fixture(scope="module")
def api_study(env) -> dict[str, Any]:
    """Study ``api-study``: 3 trials, 2 trial jobs queued (no worker takes them)."""
    r = env["client"].post(f"{PREFIX}/tune", json={**BODY, "study": "api-study"}, headers=AUTH)
    assert r.status_code == 202, r.text
    return {"study": r.json(), "location": r.headers["Location"]}


def tune_jobs(env, study: str | None = None, action: str | None = None) -> list[dict]:
    """Jobs of kind ``tune`` (of ``study``, with params ``action``: trial, register, finalize)."""
    jobs = env["client"].get(f"{PREFIX}/jobs", params={"kind": "tune", "limit": 500}).json()["data"]
    return [
        j
        for j in jobs
        if (study is None or j["params"].get("study") == study)
        and (action is None or j["params"].get("action", "trial") == action)
    ]


def study_names(env) -> set[str]:
    return {s["name"] for s in env["client"].get(f"{PREFIX}/studies").json()["data"]}


def test_writing_needs_the_api_token(env):
    client = env["client"]
    r = client.post(f"{PREFIX}/tune", json={**BODY, "study": "no-token"})
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    wrong = client.post(f"{PREFIX}/tune", json={**BODY, "study": "no-token"}, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401 and TOKEN not in wrong.text
    for action in ("stop", "resume", "promote"):
        assert client.post(f"{PREFIX}/studies/no-token/{action}").status_code == 401, action
    assert tune_jobs(env, "no-token") == [] and "no-token" not in study_names(env)


def test_a_study_is_prepared_and_its_trial_jobs_queued(env, api_study):
    study = api_study["study"]
    assert study["name"] == "api-study" and study["family"] == "logreg" and study["objective"] == "accuracy"
    assert study["target"] == 3 and study["remaining"] == 3 and study["parallel"] == 2
    assert study["jobs_queued"] == 2 and study["jobs_running"] == 0 and study["n_trials"] == 0
    assert not study["stop_requested"] and not study["finalized"] and study["trials"] == []
    assert study["config"]["data"]["date_range_days"] == 4.0
    assert api_study["location"].endswith(f"{PREFIX}/studies/api-study")

    jobs = tune_jobs(env, "api-study")
    assert len(jobs) == 2
    assert all(j["status"] == "queued" and j["params"] == {"study": "api-study", "action": "trial"} for j in jobs)


def test_studies_are_listed_and_read(env, api_study):
    client = env["client"]
    listed = client.get(f"{PREFIX}/studies")
    assert listed.status_code == 200, listed.text
    rows = {s["name"]: s for s in listed.json()["data"]}
    assert listed.json()["count"] == len(rows)
    assert rows["api-study"]["target"] == 3 and rows["api-study"]["jobs_queued"] == 2
    assert "trials" not in rows["api-study"]  # the list is the summaries

    one = client.get(api_study["location"])
    assert one.status_code == 200, one.text
    assert one.json()["name"] == "api-study" and one.json()["jobs_queued"] == 2

    missing = client.get(f"{PREFIX}/studies/nope")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert "\n" not in missing.json()["detail"]
    bad = client.get(f"{PREFIX}/studies/-bad")
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["path", "name"]


@pytest.mark.parametrize(
    ("case", "extra", "code"),
    [
        ("unknown-param", {"space": "[logreg]\nfoo = { low = 1, high = 2 }"}, "invalid_data"),
        ("inverted-range", {"space": "[logreg]\nC = { low = 10.0, high = 1.0 }"}, "invalid_data"),
        ("empty-range", {"space": "[logreg]\nC = { low = 1.0, high = 1.0 }"}, "invalid_data"),
        ("empty-choices", {"space": "[logreg]\nC = { choices = [] }"}, "invalid_data"),
        ("other-family", {"space": "[logreg]\nnum_leaves = { low = 8, high = 16 }"}, "invalid_data"),
        ("not-toml", {"space": "[logreg\nC = "}, "invalid_data"),
        ("unknown-family", {"family": "transformer_xl"}, "validation_error"),
        ("no-trials", {"trials": 0}, "validation_error"),
        ("parallel-65", {"parallel": 65}, "validation_error"),
    ],
)
def test_bad_input_is_422_with_one_line_and_nothing_queued(env, case, extra, code):
    before = len(tune_jobs(env))
    name = f"bad-{case}"
    r = env["client"].post(f"{PREFIX}/tune", json={**BODY, "study": name, **extra}, headers=AUTH)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == code and body["detail"] and "\n" not in body["detail"], body
    assert "transformer_xl" not in r.text  # an error never repeats the request
    assert len(tune_jobs(env)) == before
    assert env["client"].get(f"{PREFIX}/studies/{name}").status_code == 404


def test_an_existing_study_name_with_another_space_is_422(env, api_study):
    before = len(tune_jobs(env))
    other = {**BODY, "study": "api-study", "space": "[logreg]\nC = { low = 0.5, high = 2.0 }"}
    r = env["client"].post(f"{PREFIX}/tune", json=other, headers=AUTH)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_data" and "different search space" in r.json()["detail"]
    assert "\n" not in r.json()["detail"]
    assert len(tune_jobs(env)) == before
    study = env["client"].get(f"{PREFIX}/studies/api-study").json()
    assert study["target"] == 3 and study["jobs_queued"] == 2  # untouched


def test_promote_is_409_without_a_completed_trial_and_404_without_the_study(env, api_study):
    client = env["client"]
    r = client.post(f"{PREFIX}/studies/api-study/promote", headers=AUTH)
    assert r.status_code == 409 and r.json()["code"] == "conflict", r.text
    assert client.post(f"{PREFIX}/studies/nope/promote", headers=AUTH).status_code == 404
    bad = client.post(f"{PREFIX}/studies/api-study/promote", json={"model_name": "x y"}, headers=AUTH)
    assert bad.status_code == 422
    assert tune_jobs(env, "api-study", "register") == []


def test_stop_cancels_the_queued_trial_jobs_and_resume_queues_again(env):
    client = env["client"]
    r = client.post(f"{PREFIX}/tune", json={**BODY, "study": "stop-study"}, headers=AUTH)
    assert r.status_code == 202, r.text
    queued = [j["id"] for j in tune_jobs(env, "stop-study", "trial")]
    assert len(queued) == 2

    stopped = client.post(f"{PREFIX}/studies/stop-study/stop", headers=AUTH)
    assert stopped.status_code == 200, stopped.text
    study = stopped.json()
    assert study["stop_requested"] is True and study["remaining"] == 0 and study["jobs_queued"] == 0
    for job_id in queued:
        assert client.get(f"{PREFIX}/jobs/{job_id}").json()["status"] == "cancelled"
    assert client.post(f"{PREFIX}/studies/nope/stop", headers=AUTH).status_code == 404

    assert client.post(f"{PREFIX}/studies/stop-study/resume", json={"parallel": 0}, headers=AUTH).status_code == 422
    assert client.post(f"{PREFIX}/studies/stop-study/resume", json={"trials": -1}, headers=AUTH).status_code == 422
    assert client.post(f"{PREFIX}/studies/nope/resume", headers=AUTH).status_code == 404
    resumed = client.post(f"{PREFIX}/studies/stop-study/resume", json={"trials": 1, "parallel": 3}, headers=AUTH)
    assert resumed.status_code == 200, resumed.text
    study = resumed.json()
    assert study["stop_requested"] is False and study["target"] == 4 and study["parallel"] == 3
    assert study["jobs_queued"] == 3
    again = [j for j in tune_jobs(env, "stop-study", "trial") if j["status"] == "queued"]
    assert len(again) == 3 and not set(queued) & {j["id"] for j in again}


def test_the_best_trial_of_a_finished_study_is_promoted_as_a_job(env):
    from threadpoolctl import threadpool_limits

    from backend.ml_engine.config import SAMPLE_DATA_DIR
    from backend.ml_engine.tuning import TuningConfig, run_study

    settings = env["settings"]
    config = TuningConfig.from_settings(
        settings,
        data=str(SAMPLE_DATA_DIR),
        family="logreg",
        n_trials=2,
        date_range=4.0,
        folds=2,
        study_name="done-study",
        space_toml=SMALL_SPACE,
        storage=settings.tuning_storage.get_secret_value(),
    )
    with threadpool_limits(limits=1):  # BLAS threads on a busy machine spin: seconds a fit instead of a fraction
        run_study(config, settings=settings, tracking=False)

    client = env["client"]
    study = client.get(f"{PREFIX}/studies/done-study").json()
    assert study["n_trials"] == 2 and study["finalized"] and study["best_trial"] is not None
    assert study["states"].get("COMPLETE") == 2 and study["best_params"] and study["holdout"]

    r = client.post(f"{PREFIX}/studies/done-study/promote", json={"model_name": "tuned_logreg"}, headers=AUTH)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["kind"] == "tune" and job["status"] == "queued"
    assert job["params"] == {"study": "done-study", "action": "register", "promote": True, "model_name": "tuned_logreg"}
    assert r.headers["Location"].endswith(f"/jobs/{job['id']}")
    assert client.get(r.headers["Location"]).json()["id"] == job["id"]


def test_the_routes_are_documented(env):
    paths = env["client"].get("/openapi.json").json()["paths"]
    tune = paths[f"{PREFIX}/tune"]["post"]
    assert {"202", "401", "403", "422"} <= set(tune["responses"])
    assert tune["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/StudyPublic")
    assert {"200", "404", "422"} <= set(paths[f"{PREFIX}/studies/{{name}}"]["get"]["responses"])
    assert "200" in paths[f"{PREFIX}/studies"]["get"]["responses"]
    for action, ok in (("stop", "200"), ("resume", "200"), ("promote", "202")):
        assert {ok, "401", "403", "404", "409", "422"} <= set(
            paths[f"{PREFIX}/studies/{{name}}/{action}"]["post"]["responses"]
        )
