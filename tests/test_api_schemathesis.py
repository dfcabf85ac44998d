"""Property-based run of the OpenAPI schema (schemathesis): generated requests for every route,
valid and invalid, with the token; no answer may be a server error (5xx), and every answer, errors
included, must have a documented status and match its documented schema (the one error shape).

The database holds a real tiny production model, so /predict, /drift and the version routes get
past "not found" with some of the generated inputs. Bounded: a few examples per route, no deadline.
"""

from __future__ import annotations

import pytest
from api_support import AUTH, PREFIX, TINY_TRAINING, database, service_settings
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance  # noqa: E402

from backend.api.main import create_app  # noqa: E402
from backend.services.job_runner import JobRunner  # noqa: E402

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MAX_EXAMPLES = 10


@pytest.fixture(scope="module")
def api_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api_schemathesis")
    with database() as url:
        cfg = service_settings(url, tmp, cors_origins="http://localhost:8501")
        app = create_app(cfg)
        with TestClient(app) as client:
            body = {**TINY_TRAINING, "auto_promote": True, "min_accuracy_for_promotion": 0.0}
            job = client.post(f"{PREFIX}/train", json=body, headers=AUTH).json()
            assert JobRunner(cfg, app.state.services.jobs.store)(job["id"]) == "done"
            assert client.get(f"{PREFIX}/jobs/{job['id']}").json()["status"] == "finished"
            yield app


def _schema_only_app():
    """The app with settings that point nowhere: serving /openapi.json touches no store."""
    from backend.services import ServiceSettings

    nowhere = ServiceSettings(
        mlflow_tracking_uri="sqlite:////nonexistent/mlflow.db",
        jobs_database_url="sqlite:////nonexistent/jobs.db",
        huey_sqlite_path="/nonexistent/huey.db",
        api_token=None,
    )
    return create_app(nowhere)


# Loaded at collection from the same routes; the cases run against the real app (``app=`` below).
# (schemathesis.pytest.from_fixture would be the natural fit but breaks on pytest 9's Function nodes.)
schema = schemathesis.openapi.from_asgi("/openapi.json", _schema_only_app())


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_no_server_errors(case, api_app):
    case.call_and_validate(
        app=api_app,
        headers=AUTH,
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )
