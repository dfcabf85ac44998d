"""INFO records of ``backend.*`` reach the console of the real processes: the API under uvicorn and
the job worker (``backend.logging_setup.setup_logging``; uvicorn alone configures only its own
loggers, so they used to be dropped). Both run as subprocesses on SQLite stores in a temporary
folder and are always stopped; a few seconds each.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import AUTH, PREFIX, TOKEN, free_port

REPO = Path(__file__).resolve().parents[1]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ML_", "MLFLOW_"))}
    return {
        **base,
        "PYTHONPATH": str(REPO),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
        "MLFLOW_ARTIFACT_LOCATION": str(tmp / "artifacts"),
        "ML_JOBS_DATABASE_URL": f"sqlite:///{tmp}/jobs.db",
        "ML_HUEY_SQLITE_PATH": str(tmp / "huey.db"),
        "ML_OUTPUT_DIR": str(tmp / "outputs"),
        "ML_CACHE_DIR": str(tmp / "cache"),
        "ML_API_TOKEN": TOKEN,
        **extra,
    }


class Process:
    """A subprocess whose stdout and stderr go to one file; stopped with SIGINT, then killed."""

    def __init__(self, cmd: list[str], tmp: Path, env: dict[str, str], name: str) -> None:
        self.log_path = tmp / f"{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, text: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            if text in out:
                return out
            assert self.proc.poll() is None, f"exited with {self.proc.returncode}:\n{out[-4000:]}"
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not in the output after {timeout} s:\n{self.output()[-4000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for p in started:
        p.stop()


def test_api_under_uvicorn_logs_backend_info_lines(tmp_path: Path, processes: list[Process]) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "backend.api.main:app", "--host", "127.0.0.1", "--port", str(port)]
    api = Process(cmd, tmp_path, _env(tmp_path), "api")
    processes.append(api)
    api.wait_for("Uvicorn running")
    # the app's startup line (backend.api.main) is there before uvicorn says it runs
    assert "INFO backend.api.main: ML API: tracking store" in api.output()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}{PREFIX}", timeout=60) as http:
        r = http.post("/train", json={"epochs": 1}, headers=AUTH)  # queued only: no worker runs here
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
    out = api.wait_for(f"job {job_id} (train, model")
    assert f"INFO backend.services.jobs: job {job_id} (train, model" in out
    assert TOKEN not in out


def test_worker_logs_its_startup_line(tmp_path: Path, processes: list[Process]) -> None:
    worker = Process([sys.executable, "-m", "backend.services.worker"], tmp_path, _env(tmp_path), "worker")
    processes.append(worker)
    out = worker.wait_for("INFO backend.services.worker: worker ")
    assert "slot(s)" in out and "thread(s) per job" in out and "schema 0002" in out
    worker.stop()
    assert "INFO backend.services.worker: worker " in worker.output().split("per job", 1)[1]  # "... stopped"


# ------------------------------------------------------------------------------------------------
# setup_logging itself, in fresh interpreters (pytest configures the root logger of this one)
# ------------------------------------------------------------------------------------------------

PROBE = r"""
import logging, sys
from backend.logging_setup import setup_logging
configured = sys.argv[1] == "configured"
if configured:
    logging.basicConfig(level=logging.WARNING, format="HOST %(name)s %(message)s")
print(setup_logging(), setup_logging(), len(logging.getLogger().handlers), flush=True)
logging.getLogger("backend.x").info("backend info")
logging.getLogger("backend.x").debug("backend debug")
logging.getLogger("somelib").info("library info")
logging.getLogger("somelib").warning("library warning")
"""


def _probe(mode: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ML_")}
    return subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**base, "PYTHONPATH": str(REPO), **env},
    )


def test_setup_logging_adds_one_handler_and_keeps_libraries_quiet() -> None:
    out = _probe("bare")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "1"]  # idempotent: one handler after two calls
    assert "INFO backend.x: backend info" in out.stderr
    assert "backend debug" not in out.stderr and "library info" not in out.stderr
    assert "WARNING somelib: library warning" in out.stderr


def test_setup_logging_honours_ml_log_level() -> None:
    out = _probe("bare", ML_LOG_LEVEL="debug")
    assert "DEBUG backend.x: backend debug" in out.stderr
    out = _probe("bare", ML_LOG_LEVEL="WARNING")
    assert "backend info" not in out.stderr
    out = _probe("bare", ML_LOG_LEVEL="LOUD")  # invalid: INFO meanwhile (Settings() names the error)
    assert "INFO backend.x: backend info" in out.stderr


def test_setup_logging_leaves_a_configured_process_alone() -> None:
    out = _probe("configured")
    assert out.stdout.split() == ["False", "False", "1"]
    assert "backend info" not in out.stderr  # the host said WARNING
    assert "HOST somelib library warning" in out.stderr


def test_ml_log_level_is_validated_by_the_settings() -> None:
    from pydantic import ValidationError

    from backend.ml_engine.config import Settings

    assert Settings(log_level="debug").log_level == "DEBUG"
    with pytest.raises(ValidationError, match="unknown log level"):
        Settings(log_level="LOUD")


# ------------------------------------------------------------------------------------------------
# JSON lines (ML_LOG_FORMAT=json / setup_logging(fmt="json")) for a log collector
# ------------------------------------------------------------------------------------------------

JSON_PROBE = r"""
import logging, sys
from backend.logging_setup import setup_logging
fmt = None if sys.argv[1] == "env" else sys.argv[1]
print(setup_logging(fmt=fmt), flush=True)
log = logging.getLogger("backend.x")
log.info("first line\nsecond line")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("it failed: %s", "division")
setup_logging(fmt="text")  # again, with another format: the same handler, the other format
log.warning("back to text")
print(len(logging.getLogger().handlers), flush=True)
"""


def _json_probe(fmt: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ML_")}
    return subprocess.run(
        [sys.executable, "-c", JSON_PROBE, fmt],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**base, "PYTHONPATH": str(REPO), **env},
    )


def _json_records(stderr: str) -> list[dict]:
    import json

    lines = stderr.splitlines()
    assert lines and lines[-1].startswith("20") and lines[-1].endswith("WARNING backend.x: back to text")
    return [json.loads(line) for line in lines[:-1]]  # every other line is one JSON object


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_json_format_one_object_per_line_with_the_exception(how: str) -> None:
    from datetime import UTC, datetime, timedelta

    out = _json_probe("json") if how == "argument" else _json_probe("env", ML_LOG_FORMAT="JSON")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "1"]  # one handler, its format replaced
    info, error = _json_records(out.stderr)
    assert set(info) == {"time", "level", "logger", "message", "process", "pid"}
    assert info["level"] == "INFO" and info["logger"] == "backend.x"
    assert info["message"] == "first line\nsecond line" and info["process"] == "MainProcess"
    assert isinstance(info["pid"], int) and info["pid"] > 0
    when = datetime.fromisoformat(info["time"])
    assert when.utcoffset() == timedelta(0) and abs(datetime.now(UTC) - when) < timedelta(minutes=5)
    assert error["level"] == "ERROR" and error["message"] == "it failed: division"
    assert error["exc_info"].startswith("Traceback (most recent call last):")
    assert error["exc_info"].endswith("ZeroDivisionError: division by zero")


def test_invalid_ml_log_format_is_text_meanwhile_and_refused_by_the_settings(monkeypatch) -> None:
    from pydantic import ValidationError

    from backend.ml_engine.config import Settings

    out = _json_probe("env", ML_LOG_FORMAT="xml")
    assert out.returncode == 0, out.stderr
    assert "INFO backend.x: first line" in out.stderr
    assert Settings(log_format=" JSON ").log_format == "json" and Settings().log_format == "text"
    monkeypatch.setenv("ML_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="unknown log format 'xml': use text or json") as err:
        Settings()
    assert "ML_LOG_FORMAT" in str(err.value)


def test_worker_logs_json_lines_with_ml_log_format_from_dotenv(tmp_path: Path, processes: list[Process]) -> None:
    import json

    (tmp_path / ".env").write_text("ML_LOG_FORMAT=json\n")  # read by the worker's settings, not the environment
    worker = Process([sys.executable, "-m", "backend.services.worker"], tmp_path, _env(tmp_path), "worker")
    processes.append(worker)
    out = worker.wait_for('"logger": "backend.services.worker"')
    line = next(x for x in out.splitlines() if '"logger": "backend.services.worker"' in x)
    record = json.loads(line)
    assert record["level"] == "INFO" and record["message"].startswith("worker ")
    assert record["pid"] == worker.proc.pid


def test_api_logs_json_lines_with_ml_log_format(tmp_path: Path, processes: list[Process]) -> None:
    import json

    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "backend.api.main:app", "--host", "127.0.0.1", "--port", str(port)]
    api = Process(cmd, tmp_path, _env(tmp_path, ML_LOG_FORMAT="json"), "api")
    processes.append(api)
    out = api.wait_for("Uvicorn running")
    line = next(x for x in out.splitlines() if '"logger": "backend.api.main"' in x)
    record = json.loads(line)
    assert record["level"] == "INFO" and record["message"].startswith("ML API: tracking store")
