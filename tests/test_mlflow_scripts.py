"""The repo-root scripts of the user's guide: ``start_mlflow_ui.py`` and ``test_mlflow_postgres.py``.

They run as subprocesses, as a user would run them. (That ``start_mlflow_ui.py`` really starts a
working server is checked in ``test_mlflow_stores.py``, whose session server it launches.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

REPO = Path(__file__).resolve().parents[1]
START_UI = REPO / "start_mlflow_ui.py"
CHECK_PG = REPO / "test_mlflow_postgres.py"
GUIDE_URI = "postgresql://trading_bot:robocop@localhost:5432/mlflow_tracking"


def run_script(
    script: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=full_env, cwd=cwd or REPO, timeout=180
    )


def test_start_ui_help() -> None:
    proc = run_script(START_UI, "--help")
    assert proc.returncode == 0
    for flag in ("--host", "--port", "--dry-run", "--proxy-artifacts"):
        assert flag in proc.stdout


def test_start_ui_dry_run_builds_the_command_with_masked_password(tmp_path: Path) -> None:
    env = {"MLFLOW_TRACKING_URI": GUIDE_URI, "MLFLOW_ARTIFACT_LOCATION": str(tmp_path / "artifacts")}
    proc = run_script(START_UI, "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "robocop" not in out + proc.stderr
    assert "--backend-store-uri postgresql://trading_bot:***@localhost:5432/mlflow_tracking" in out
    assert f"--default-artifact-root {(tmp_path / 'artifacts').resolve().as_uri()}" in out
    assert "--host 127.0.0.1 --port 5000" in out
    assert "http://127.0.0.1:5000" in out

    proc = run_script(START_UI, "--dry-run", "--host", "0.0.0.0", "--port", "5123", "--proxy-artifacts", env=env)
    assert proc.returncode == 0
    assert "--artifacts-destination" in proc.stdout and "--default-artifact-root" not in proc.stdout
    assert "--host 0.0.0.0 --port 5123" in proc.stdout and "http://localhost:5123" in proc.stdout


def test_start_ui_defaults_to_embedded_sqlite(tmp_path: Path) -> None:
    proc = run_script(START_UI, "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "--backend-store-uri sqlite:///mlruns/mlflow.db" in proc.stdout
    assert f"--default-artifact-root {(tmp_path / 'mlruns' / 'artifacts').resolve().as_uri()}" in proc.stdout


def test_start_ui_refuses_unreachable_store_in_one_line() -> None:
    env = {"MLFLOW_TRACKING_URI": "postgresql://trading_bot:robocop@127.0.0.1:1/mlflow_tracking"}
    proc = run_script(START_UI, "--port", "1", env=env)
    assert proc.returncode == 1
    assert "robocop" not in proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "connection refused" in errors[0] and "trading_bot:***@127.0.0.1:1" in errors[0]


def test_check_help() -> None:
    proc = run_script(CHECK_PG, "--help")
    assert proc.returncode == 0 and "--uri" in proc.stdout


@pytest.mark.postgres
def test_check_diagnoses_missing_database() -> None:
    proc = run_script(CHECK_PG, "--uri", "postgresql://postgres:sekret@127.0.0.1:5432/no_such_mlflow_db")
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "sekret" not in out
    assert "postgresql://postgres:***@127.0.0.1:5432/no_such_mlflow_db" in out
    assert "database 'no_such_mlflow_db' does not exist" in out
    assert "RESULT: FAILED" in out


def test_check_diagnoses_server_down() -> None:
    proc = run_script(CHECK_PG, "--uri", "postgresql://postgres:sekret@127.0.0.1:1/mlflow_tracking")
    assert proc.returncode == 1
    assert "sekret" not in proc.stdout + proc.stderr
    assert "connection refused" in proc.stdout


@pytest.mark.postgres
def test_check_diagnoses_authentication() -> None:
    # the test server trusts every known role; an unknown role is the authentication failure it can show
    proc = run_script(CHECK_PG, "--uri", "postgresql://no_such_role_xyz:sekret@127.0.0.1:5432/postgres")
    assert proc.returncode == 1
    assert "authentication failed" in proc.stdout and "sekret" not in proc.stdout + proc.stderr


@pytest.mark.postgres
def test_check_on_fresh_database_then_current_then_outdated_schema(pg_url: str) -> None:
    proc = run_script(CHECK_PG, "--uri", pg_url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "empty (fresh)" in out and "MLflow creates its tables" in out
    assert "written and read back" in out and "RESULT: OK" in out

    proc = run_script(CHECK_PG, "--uri", pg_url)  # second time: the schema is there and current
    assert proc.returncode == 0 and "up to date" in proc.stdout

    dbname = pg_url.rsplit("/", 1)[1]
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=dbname)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT name FROM experiments")
        assert [r[0] for r in cur.fetchall()] == ["Default"]  # the throw-away experiments are gone
        cur.execute("SELECT count(*) FROM runs")
        assert cur.fetchone()[0] == 0
        cur.execute("UPDATE alembic_version SET version_num = 'an_old_revision'")
    conn.close()

    proc = run_script(CHECK_PG, "--uri", pg_url)
    assert proc.returncode == 1
    assert "an_old_revision" in proc.stdout and "mlflow db upgrade" in proc.stdout


def test_check_is_not_collected_by_pytest() -> None:
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert config["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]
    source = CHECK_PG.read_text()
    assert "\ndef test_" not in source and "\nclass Test" not in source
