"""Helpers of the tests that run real worker processes (tests/test_workers.py, tests/test_scheduler.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def worker_env(settings: Any, **extra: str) -> dict[str, str]:
    """Environment variables reproducing ``settings`` (the fields the worker needs) for a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ML_", "MLFLOW_"))}
    values = {
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "MLFLOW_ARTIFACT_LOCATION": settings.mlflow_artifact_location,
        "ML_JOBS_DATABASE_URL": settings.jobs_database_url.get_secret_value(),
        "ML_HUEY_SQLITE_PATH": settings.huey_sqlite_path,
        "ML_HUEY_NAME": settings.huey_name,
        "ML_OUTPUT_DIR": settings.output_dir,
        "ML_CACHE_DIR": settings.cache_dir,
        "ML_DEVICE": "cpu",
        "ML_JOB_HEARTBEAT_INTERVAL_S": str(settings.job_heartbeat_interval_s),
        "ML_JOB_HEARTBEAT_TIMEOUT_S": str(settings.job_heartbeat_timeout_s),
        "ML_JOB_RETRY_DELAY_S": str(settings.job_retry_delay_s),
    }
    if settings.queue_url is not None:
        values["ML_QUEUE_URL"] = settings.queue_url.get_secret_value()
    if settings.redis_url is not None:
        values["ML_REDIS_URL"] = settings.redis_url.get_secret_value()
    env.update(values)
    env.update(extra)
    return env


def start(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """A process in its own session (so that its whole group can be stopped), output in ``log``."""
    cwd.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def start_worker(settings: Any, home: Path, slots: int = 1, **extra: str) -> subprocess.Popen[bytes]:
    env = worker_env(settings, HOME=str(home), **extra)
    return start(["-m", "backend.services.worker", "--slots", str(slots)], env, home, home / "worker.log")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
    """Stop a process started by :func:`start` and everything in its group."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            return proc.wait(timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        return proc.wait(10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        return None


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, log: Path | None = None) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` and the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}\n{tail}")


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True
