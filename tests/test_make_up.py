"""`make up` (issue 13, point 8): the repository's Procfile, run by honcho, starts the API, a worker,
the scheduler and the dashboard; one Ctrl-C (SIGINT to honcho) stops every one of them.

honcho runs here as `make up` runs it (the interpreter's bin/ first on PATH, the real Procfile), in
a temporary working directory whose environment points every store, output and HOME there, with
the API and the dashboard on free ports (``API_PORT``, ``DASHBOARD_PORT``, which the Procfile
reads). About 20-40 s on 2 cores.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.api_support import PREFIX, free_port
from tests.worker_support import pid_gone

REPO = Path(__file__).resolve().parents[1]
PROCFILE = REPO / "Procfile"
BIN = Path(sys.executable).parent
NAMES = ("api", "worker", "scheduler", "dashboard")


def descendants(root: int) -> set[int]:
    """Every live process below ``root`` (read from /proc: honcho's children are session leaders)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def started_pids(log: Path) -> dict[str, int]:
    """{process: pid} from honcho's "api.1 started (pid=N)" lines."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return {m[1]: int(m[2]) for m in re.finditer(r"\b(\w+)\.1 started \(pid=(\d+)\)", text)}


def test_make_up_starts_api_worker_scheduler_dashboard_and_ctrl_c_stops_them_all(tmp_path: Path) -> None:
    honcho = BIN / "honcho"
    assert honcho.exists(), f"{honcho} is missing: `make install-test` installs honcho (the api extra)"
    api_port, dashboard_port = free_port(), free_port()
    while dashboard_port == api_port:  # pragma: no cover
        dashboard_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ML_", "MLFLOW_"))}
    (tmp_path / "home").mkdir()
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",  # honcho's own output reaches the log as it happens
        HOME=str(tmp_path / "home"),
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db",
        MLFLOW_ARTIFACT_LOCATION=str(tmp_path / "artifacts"),
        ML_JOBS_DATABASE_URL=f"sqlite:///{tmp_path}/jobs.db",
        ML_HUEY_SQLITE_PATH=str(tmp_path / "huey.db"),
        ML_OUTPUT_DIR=str(tmp_path / "outputs"),
        ML_CACHE_DIR=str(tmp_path / "cache"),
        ML_DEVICE="cpu",
        API_HOST="127.0.0.1",
        API_PORT=str(api_port),
        DASHBOARD_PORT=str(dashboard_port),
    )
    log = tmp_path / "honcho.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        # -d: honcho reads tmp/.env (none), not the repository's .env; the processes run in cwd
        proc = subprocess.Popen(
            [str(honcho), "start", "-f", str(PROCFILE), "-d", str(tmp_path), "--no-colour"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    children: set[int] = set()

    def tail() -> str:
        return log.read_text(errors="replace")[-4000:] if log.exists() else ""

    def wait_for(probe, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"honcho exited ({proc.returncode}) waiting for {what}\n{tail()}"
            value = probe()
            if value:
                return value
            time.sleep(0.3)
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}\n{tail()}")

    try:
        pids = wait_for(lambda: set(p := started_pids(log)) == set(NAMES) and p, 20, "four processes")

        def one_live_worker() -> dict | None:
            try:
                health = httpx.get(f"http://127.0.0.1:{api_port}{PREFIX}/health", timeout=5).json()
            except (httpx.HTTPError, ValueError):
                return None
            return health if [w for w in health.get("workers", []) if w["alive"]] else None

        health = wait_for(one_live_worker, 50, "the API's /health listing a live worker")
        live = [w for w in health["workers"] if w["alive"]]
        # the Procfile execs: the pid honcho started is the worker itself
        assert [w["pid"] for w in live] == [pids["worker"]], (health["workers"], pids)
        assert health["queue"]["kind"] == "sqlite" and health["queue"]["location"] == str(tmp_path / "huey.db")

        def dashboard_answers() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{dashboard_port}/_stcore/health", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(dashboard_answers, 30, "the dashboard to answer HTTP")
        wait_for(lambda: re.search(r"scheduler\.1 .*leads: retrain:", tail()), 20, "the scheduler to lead")
        children = descendants(proc.pid)
        assert set(pids.values()) <= children, (pids, children)
        print(f"up in {time.monotonic() - started:.1f} s: {pids}, {len(children)} processes below honcho")

        # -- Ctrl-C: honcho gets SIGINT and stops everything --------------------------------------
        os.kill(proc.pid, signal.SIGINT)
        stopping = time.monotonic()
        rc = proc.wait(timeout=20)
        left = lambda: sorted(p for p in children if not pid_gone(p))  # noqa: E731
        while left() and time.monotonic() - stopping < 20:
            time.sleep(0.2)
        assert not left(), f"still running 20 s after Ctrl-C: {left()}\n{tail()}"
        text = log.read_text(errors="replace")
        assert rc == 130, f"honcho exit {rc}\n{tail()}"
        for name in NAMES:
            assert re.search(rf"{name}\.1 stopped \(rc=", text), f"{name} not reported stopped\n{tail()}"
        assert "SIGKILL" not in text, f"honcho had to SIGKILL a process\n{tail()}"
        print(f"all stopped {time.monotonic() - stopping:.1f} s after SIGINT")
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        # each Procfile process leads its own session (honcho starts them so): stop what is left
        for pid in started_pids(log).values():
            if not pid_gone(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
