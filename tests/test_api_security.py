"""REST API security: the token guard on every state-changing route (401/403), CORS limited to the
configured origins, and no secret (database password, token) in any response or log line."""

from __future__ import annotations

import logging
import uuid

import pytest
from api_support import AUTH, PREFIX, TOKEN, database, service_settings, with_password
from fastapi.testclient import TestClient

from backend.api.main import create_app

pytestmark = pytest.mark.postgres

PASSWORD = "s3cr3t-pw-Zq9"
CANDLES_PASSWORD = "candl3s-pw-Xy7"
JOB = "0" * 32
WRITES = [
    ("/train", {"epochs": 1}),
    ("/retrain", {"trigger": "manual"}),
    (f"/jobs/{JOB}/cancel", None),
    ("/models/some_model/promote", {"version": 1}),
    ("/models/some_model/rollback", None),
]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api_security")
    with database() as url:
        secret_url = with_password(url, PASSWORD)  # the server trusts loopback: any password connects
        settings = service_settings(
            secret_url,
            tmp,
            candles_database_url=f"postgresql://bot:{CANDLES_PASSWORD}@db.internal:5432/candles",
            cors_origins="http://localhost:8501",
        )
        app = create_app(settings)
        with TestClient(app) as client:
            mlflow = app.state.services.runs.client
            exp = mlflow.create_experiment("secrets", artifact_location=(tmp / "artifacts").as_uri())
            run = mlflow.create_run(exp, run_name="leaky")
            mlflow.log_param(run.info.run_id, "data_source", secret_url)
            mlflow.set_tag(run.info.run_id, "note", f"copied from {secret_url}")
            mlflow.create_registered_model("leaky_model", description=f"trained on {secret_url}")
            mlflow.create_model_version(
                "leaky_model", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id, tags={"source_db": secret_url}
            )
            yield {"client": client, "url": url, "secret_url": secret_url, "tmp": tmp, "run_id": run.info.run_id}


def assert_clean(text: str) -> None:
    for secret in (PASSWORD, CANDLES_PASSWORD, TOKEN):
        assert secret not in text


@pytest.mark.parametrize("path,body", WRITES)
def test_every_write_route_needs_the_token(env, path, body):
    client = env["client"]
    r = client.post(PREFIX + path, json=body)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    wrong = "wrong-token-" + uuid.uuid4().hex
    r = client.post(PREFIX + path, json=body, headers={"Authorization": f"Bearer {wrong}"})
    assert r.status_code == 401 and wrong not in r.text
    assert client.post(PREFIX + path, json=body, headers={"X-API-Token": wrong}).status_code == 401
    assert client.post(PREFIX + path, json=body, headers=AUTH).status_code not in (401, 403)


@pytest.mark.parametrize("path,body", WRITES)
def test_without_a_configured_token_the_api_is_read_only(env, path, body):
    with TestClient(create_app(service_settings(env["url"], env["tmp"], token=None))) as client:
        for headers in ({}, AUTH):
            r = client.post(PREFIX + path, json=body, headers=headers)
            assert r.status_code == 403
            assert r.json() == {"detail": "the API is read-only: set ML_API_TOKEN", "code": "forbidden"}
        assert client.get(f"{PREFIX}/health").json()["read_only"] is True


def test_reads_need_no_token(env):
    client = env["client"]
    for path in ("/models", "/experiments", "/mlflow/runs", "/jobs", "/health"):
        assert client.get(PREFIX + path).status_code == 200, path


def test_no_secret_in_any_response_or_log_line(env, caplog):
    client = env["client"]
    caplog.set_level(logging.DEBUG)
    paths = [
        "/models",
        "/models/leaky_model",
        "/models/leaky_model/versions/1",
        "/experiments",
        "/mlflow/runs",
        f"/mlflow/runs/{env['run_id']}",
        "/jobs",
        "/health",
    ]
    texts = [client.get(PREFIX + p).text for p in paths]
    texts.append(client.get("/openapi.json").text)
    r = client.post(f"{PREFIX}/train", json={"data_source": "database", "epochs": 1}, headers=AUTH)
    assert r.status_code == 202
    texts.append(r.text)
    texts.append(client.post(f"{PREFIX}/train", json={"epochs": 1}, headers={"X-API-Token": "nope"}).text)
    for text in texts:
        assert_clean(text)
    run = client.get(f"{PREFIX}/mlflow/runs/{env['run_id']}").json()
    assert run["params"]["data_source"] == with_password(env["url"], "***")
    health = client.get(f"{PREFIX}/health").json()
    assert health["tracking_store"]["location"] == with_password(env["url"], "***")
    assert health["jobs_store"]["location"] == with_password(env["url"], "***")
    for record in caplog.records:
        assert_clean(record.getMessage())


def test_unreachable_store_errors_are_masked(env, caplog):
    caplog.set_level(logging.DEBUG)
    missing = with_password(env["url"].rsplit("/", 1)[0] + f"/no_such_db_{uuid.uuid4().hex[:6]}", PASSWORD)
    settings = service_settings(missing, env["tmp"], jobs_database_url=env["secret_url"])
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        health = client.get(f"{PREFIX}/health")
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "degraded" and body["tracking_store"]["reachable"] is False
        assert "does not exist" in body["tracking_store"]["error"]
        texts = [health.text]
        for path in ("/models", "/mlflow/runs", "/experiments"):
            r = client.get(PREFIX + path)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert "does not exist" in r.json()["detail"]
            texts.append(r.text)
        for text in texts:
            assert_clean(text)
    jobs_missing = service_settings(env["secret_url"], env["tmp"], jobs_database_url=missing)
    with TestClient(create_app(jobs_missing), raise_server_exceptions=False) as client:
        for method, path in (("GET", "/jobs"), ("POST", "/train"), ("GET", f"/jobs/{JOB}")):
            r = client.request(method, PREFIX + path, json={} if method == "POST" else None, headers=AUTH)
            assert r.status_code == 503, (path, r.text)
            assert r.json()["detail"].startswith("jobs store unavailable") and "does not exist" in r.text
            assert_clean(r.text)
        health = client.get(f"{PREFIX}/health").json()
        assert health["jobs_store"]["reachable"] is False and health["tracking_store"]["reachable"] is True
        assert_clean(str(health))
    for record in caplog.records:
        assert_clean(record.getMessage())


def test_cors_allows_only_the_configured_origins(env):
    client = env["client"]
    ok = client.get(f"{PREFIX}/models", headers={"Origin": "http://localhost:8501"})
    assert ok.headers["access-control-allow-origin"] == "http://localhost:8501"
    other = client.get(f"{PREFIX}/models", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    pre = client.options(
        f"{PREFIX}/train",
        headers={
            "Origin": "http://localhost:8501",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert pre.status_code == 200 and "POST" in pre.headers["access-control-allow-methods"]
    bad = client.options(
        f"{PREFIX}/train", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert bad.status_code == 400
    with TestClient(create_app(service_settings(env["url"], env["tmp"]))) as plain:
        r = plain.get(f"{PREFIX}/models", headers={"Origin": "http://localhost:8501"})
        assert "access-control-allow-origin" not in r.headers


def test_settings_errors_never_echo_the_token(monkeypatch):
    from backend.services import ServiceSettings

    monkeypatch.setenv("ML_API_TOKEN", "short-Q7")
    with pytest.raises(Exception) as err:
        ServiceSettings()
    assert "ML_API_TOKEN" in str(err.value) and "short-Q7" not in str(err.value)
    monkeypatch.setenv("ML_API_TOKEN", TOKEN)
    monkeypatch.setenv("ML_CORS_ORIGINS", "http://a.example, https://b.example/")
    s = ServiceSettings()
    assert s.cors_origins == ["http://a.example", "https://b.example"] and not s.read_only
    assert TOKEN not in repr(s) and TOKEN not in str(s.model_dump())


def test_openapi_lists_every_route_and_docs_are_served(env):
    client = env["client"]
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    routes = {(m.upper(), p[len(PREFIX) :]) for p, ops in spec["paths"].items() for m in ops}
    assert routes >= {
        ("GET", "/models"),
        ("GET", "/models/{name}"),
        ("GET", "/models/{name}/versions/{version}"),
        ("GET", "/models/{name}/history"),
        ("POST", "/models/{name}/promote"),
        ("POST", "/models/{name}/rollback"),
        ("GET", "/experiments"),
        ("GET", "/mlflow/runs"),
        ("GET", "/mlflow/runs/{run_id}"),
        ("POST", "/train"),
        ("GET", "/jobs"),
        ("GET", "/jobs/{job_id}"),
        ("POST", "/jobs/{job_id}/cancel"),
        ("POST", "/retrain"),
        ("GET", "/drift"),
        ("POST", "/predict"),
        ("GET", "/health"),
    }
    schemes = spec["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    train = spec["paths"][f"{PREFIX}/train"]["post"]
    assert train["security"] and "202" in train["responses"]
