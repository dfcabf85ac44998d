"""REST API: registered models, versions with their schema, history, promote, rollback.

Versions are created with the stock MlflowClient from one run holding a tiny signed model (no
training needed); the registry and the API run against a real PostgreSQL database.
"""

from __future__ import annotations

import uuid

import pytest
from api_support import AUTH, PREFIX, TOKEN, database, save_tiny_models, service_settings
from fastapi.testclient import TestClient

from backend.api.main import create_app

pytestmark = pytest.mark.postgres

GOOD = {"test_accuracy": "0.61", "test_f1_macro": "0.52", "onnx_parity_max_abs_diff": "1e-06"}
BETTER = {"test_accuracy": "0.66", "test_f1_macro": "0.60", "onnx_parity_max_abs_diff": "1e-06"}
POOR = {"test_accuracy": "0.20", "test_f1_macro": "0.10", "onnx_parity_max_abs_diff": "1e-06"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api_models")
    models = save_tiny_models(tmp / "saved")
    with database() as url:
        settings = service_settings(url, tmp)
        app = create_app(settings)
        with TestClient(app) as client:
            mlflow_client = app.state.services.models.store.client
            exp = mlflow_client.create_experiment("api_models", artifact_location=(tmp / "artifacts").as_uri())
            run = mlflow_client.create_run(exp, run_name="tiny")
            mlflow_client.log_artifacts(run.info.run_id, str(models / "model"), "model")
            mlflow_client.log_artifacts(run.info.run_id, str(models / "model_nosig"), "model_nosig")
            mlflow_client.set_terminated(run.info.run_id)
            yield {"client": client, "mlflow": mlflow_client, "run_id": run.info.run_id, "url": url, "tmp": tmp}


def make_model(env, *specs: dict, signed: bool = True) -> str:
    name = f"m_{uuid.uuid4().hex[:8]}"
    client = env["mlflow"]
    client.create_registered_model(name, tags={"team": "quant"}, description="tiny test model")
    for tags in specs:
        source = f"runs:/{env['run_id']}/{'model' if signed else 'model_nosig'}"
        client.create_model_version(name, source, run_id=env["run_id"], tags=dict(tags))
    return name


def test_list_models_shows_versions_aliases_tags_and_metrics(env):
    name = make_model(env, GOOD, BETTER)
    env["mlflow"].set_registered_model_alias(name, "production", "1")
    r = env["client"].get(f"{PREFIX}/models")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == len(body["data"])
    model = next(m for m in body["data"] if m["name"] == name)
    assert model["aliases"] == {"production": 1}
    assert model["production_version"] == 1 and model["latest_version"] == 2
    assert model["tags"] == {"team": "quant"}
    assert [v["version"] for v in model["versions"]] == [2, 1]
    v1 = model["versions"][1]
    assert v1["aliases"] == ["production"]
    assert v1["metrics"]["test_accuracy"] == pytest.approx(0.61)
    assert v1["model_uri"] == f"models:/{name}/1"

    one = env["client"].get(f"{PREFIX}/models/{name}")
    assert one.status_code == 200 and one.json()["name"] == name
    assert env["client"].get(f"{PREFIX}/models/no_such_model").status_code == 404


def test_version_detail_has_the_signature_schema(env):
    name = make_model(env, GOOD)
    r = env["client"].get(f"{PREFIX}/models/{name}/versions/1")
    assert r.status_code == 200, r.text
    detail = r.json()
    assert detail["signature"]["inputs"][0]["type"] == "tensor"
    assert detail["signature"]["inputs"][0]["tensor-spec"]["shape"] == [-1, 4]
    assert detail["signature"]["outputs"][0]["tensor-spec"]["shape"] == [-1, 3]
    assert "pytorch" in detail["flavors"] and detail["has_input_example"] is True
    assert detail["mlmodel_error"] is None

    unsigned = make_model(env, GOOD, signed=False)
    d2 = env["client"].get(f"{PREFIX}/models/{unsigned}/versions/1").json()
    assert d2["signature"] is None and "pytorch" in d2["flavors"]

    assert env["client"].get(f"{PREFIX}/models/{name}/versions/9").status_code == 404
    assert env["client"].get(f"{PREFIX}/models/{name}/versions/0").status_code == 422
    assert env["client"].get(f"{PREFIX}/models/{name}/versions/abc").status_code == 422


def test_promote_refuse_force_rollback_and_history(env):
    client = env["client"]
    name = make_model(env, GOOD, BETTER, POOR)
    r = client.post(f"{PREFIX}/models/{name}/promote", json={"version": 1, "reason": "first"}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["promoted"] is True and r.json()["to_version"] == 1

    r = client.post(f"{PREFIX}/models/{name}/promote", json={"version": 3, "reason": "worse"}, headers=AUTH)
    assert r.status_code == 200
    refused = r.json()
    assert refused["promoted"] is False and "test_accuracy 0.2000 < min" in refused["reason"]

    r = client.post(
        f"{PREFIX}/models/{name}/promote", json={"version": 2, "reason": "better"}, headers={"X-API-Token": TOKEN}
    )
    assert r.json()["promoted"] is True and r.json()["from_version"] == 1

    r = client.post(
        f"{PREFIX}/models/{name}/rollback", json={"reason": "live PnL dropped", "actor": "ops"}, headers=AUTH
    )
    assert r.status_code == 200, r.text
    assert r.json()["from_version"] == 2 and r.json()["to_version"] == 1

    r = client.post(f"{PREFIX}/models/{name}/promote", json={"version": 3, "force": True}, headers=AUTH)
    assert r.json()["promoted"] is True and r.json()["forced"] is True

    history = client.get(f"{PREFIX}/models/{name}/history").json()
    assert [e["decision"] for e in history["data"]] == ["promoted", "rolled_back", "promoted", "refused", "promoted"]
    assert history["data"][1]["actor"] == "ops" and history["data"][1]["reason"] == "live PnL dropped"
    only = client.get(f"{PREFIX}/models/{name}/history", params={"decision": "refused"}).json()
    assert only["count"] == 1
    assert client.get(f"{PREFIX}/models/{name}/history", params={"decision": "nope"}).status_code == 422
    assert client.get(f"{PREFIX}/models/unknown_x/history").status_code == 404


def test_verdicts_come_as_codes_and_in_the_language_asked_for(env):
    client = env["client"]
    name = make_model(env, GOOD, BETTER, POOR)
    first = client.post(f"{PREFIX}/models/{name}/promote", json={"version": 1}, headers=AUTH).json()
    assert first["promoted"] is True and first["lang"] == "en" and first["gate"] is True
    assert first["message"] == first["reason"] and first["message"].startswith("gate passed: ")
    assert {c["code"] for c in first["checks"]} >= {"accuracy_ok", "first_version", "signature_ok", "onnx_parity_ok"}
    assert [n["code"] for n in first["notes"]] == ["no_evaluator"]

    r = client.post(f"{PREFIX}/models/{name}/promote", params={"lang": "ru"}, json={"version": 3}, headers=AUTH)
    assert r.status_code == 200, r.text
    refused = r.json()
    assert refused["promoted"] is False and refused["lang"] == "ru"
    assert refused["reason"].startswith("refused: test_accuracy 0.2000 < min 0.5")  # English, as MLflow keeps it
    assert refused["message"].startswith("отказано: test_accuracy 0.2000 < минимума 0.5; ")
    low = next(c for c in refused["checks"] if c["code"] == "accuracy_below_min")
    assert low == {
        "code": "accuracy_below_min",
        "passed": False,
        "text": "test_accuracy 0.2000 < минимума 0.5",
        "params": {"metric": "test_accuracy", "value": pytest.approx(0.2), "min": 0.5},
    }
    assert all(c["text"] for c in refused["checks"] + refused["notes"])
    assert refused["event"]["decision"] == "refused" and refused["event"]["message"] == refused["message"]

    back = client.post(f"{PREFIX}/models/{name}/rollback", params={"lang": "ru"}, headers=AUTH)
    assert back.status_code == 409  # only one production version so far
    client.post(f"{PREFIX}/models/{name}/promote", json={"version": 2}, headers=AUTH)
    back = client.post(f"{PREFIX}/models/{name}/rollback", params={"lang": "ru"}, headers=AUTH).json()
    assert back["message"] == "откат с v2 на v1" and back["reason"] == "rolled back from v2 to v1"
    assert back["checks"] == [
        {
            "code": "rolled_back",
            "passed": True,
            "params": {"from_version": 2, "to_version": 1},
            "text": "откат с v2 на v1",
        }
    ]

    ru = client.get(f"{PREFIX}/models/{name}/history", params={"lang": "ru"}).json()["data"]
    en = client.get(f"{PREFIX}/models/{name}/history").json()["data"]
    assert [e["decision"] for e in ru] == ["rolled_back", "promoted", "refused", "promoted"]
    assert ru[0]["message"] == "откат с v2 на v1" and en[0]["message"] == en[0]["detail"] == "rolled back from v2 to v1"
    assert ru[1]["message"].startswith("проверки пройдены: ") and en[1]["message"].startswith("gate passed: ")
    assert ru[2]["message"] == refused["message"] and ru[2]["detail"] == en[2]["detail"] == refused["reason"]
    assert [c["code"] for c in ru[2]["checks"]] == [c["code"] for c in en[2]["checks"]]
    assert [c["text"] for c in en[2]["checks"] if c["code"] == "accuracy_below_min"] == [
        "test_accuracy 0.2000 < min 0.5"
    ]
    assert client.get(f"{PREFIX}/models/{name}/history", params={"lang": "de"}).status_code == 422
    r = client.post(f"{PREFIX}/models/{name}/promote", params={"lang": "de"}, json={"version": 2}, headers=AUTH)
    assert r.status_code == 422


def test_history_entries_recorded_before_verdicts_are_shown_as_recorded(env):
    import json

    name = make_model(env, GOOD)
    old = {
        "seq": 1,
        "decision": "promoted",
        "version": 1,
        "from_version": None,
        "to_version": 1,
        "reason": "first",
        "detail": "gate passed: signature present",
        "actor": "api",
        "forced": False,
        "timestamp": "2025-06-01T10:00:00+00:00",
        "metrics": {},
    }
    env["mlflow"].set_registered_model_tag(name, "history.000001", json.dumps(old))
    entry = env["client"].get(f"{PREFIX}/models/{name}/history", params={"lang": "ru"}).json()["data"][0]
    assert entry["message"] == entry["detail"] == "gate passed: signature present"
    assert entry["checks"] == [] and entry["notes"] == [] and entry["reason_check"] is None and entry["lang"] == "ru"


def test_rollback_without_a_previous_version_is_409_and_body_is_optional(env):
    name = make_model(env, GOOD)
    r = env["client"].post(f"{PREFIX}/models/{name}/rollback", headers=AUTH)
    assert r.status_code == 409
    assert "no previous production version" in r.json()["detail"]


def test_promote_errors(env):
    client = env["client"]
    name = make_model(env, GOOD)
    assert client.post(f"{PREFIX}/models/{name}/promote", json={"version": 7}, headers=AUTH).status_code == 404
    assert client.post(f"{PREFIX}/models/nobody/promote", json={"version": 1}, headers=AUTH).status_code == 404
    for body in (
        {},
        {"version": 0},
        {"version": "1"},
        {"version": 1, "force": "yes"},
        {"version": 1, "extra": 1},
        {"version": 1, "actor": "has space"},
        {"version": 1, "reason": "x" * 1001},
    ):
        r = client.post(f"{PREFIX}/models/{name}/promote", json=body, headers=AUTH)
        assert r.status_code == 422, (body, r.text)
    assert client.post(f"{PREFIX}/models/{name}/rollback", json={"nope": 1}, headers=AUTH).status_code == 422
    assert client.post(f"{PREFIX}/models/bad%20name/promote", json={"version": 1}, headers=AUTH).status_code == 422


def test_writes_need_the_token(env):
    client = env["client"]
    name = make_model(env, GOOD)
    url = f"{PREFIX}/models/{name}/promote"
    r = client.post(url, json={"version": 1})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in r.text
    wrong = {"Authorization": "Bearer wrong-token-123456"}
    assert client.post(url, json={"version": 1}, headers=wrong).status_code == 401
    assert client.post(url, json={"version": 1}, headers={"X-API-Token": "wrong"}).status_code == 401
    assert client.post(url, json={"version": 1}, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.post(f"{PREFIX}/models/{name}/rollback").status_code == 401
    # nothing changed
    assert env["mlflow"].get_registered_model(name).aliases == {}


def test_read_only_api_refuses_writes_with_403(env):
    settings = service_settings(env["url"], env["tmp"], token=None)
    name = make_model(env, GOOD)
    with TestClient(create_app(settings)) as client:
        assert client.get(f"{PREFIX}/models").status_code == 200
        for path, body in ((f"/models/{name}/promote", {"version": 1}), (f"/models/{name}/rollback", None)):
            r = client.post(PREFIX + path, json=body, headers=AUTH)
            assert r.status_code == 403
            assert r.json() == {"detail": "the API is read-only: set ML_API_TOKEN", "code": "forbidden"}
