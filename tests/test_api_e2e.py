"""End to end: a real uvicorn process and a real huey worker process on loopback.

POST /train -> the worker trains -> the job finishes with a registered version, while the API
keeps answering. Then the fault test: the worker is killed (SIGKILL) mid-training -> the job ends
failed ("worker died") instead of running forever, its MLflow run FAILED; a new worker runs the
next job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from api_support import AUTH, PREFIX, TINY_TRAINING, TOKEN, database, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]


class Stack:
    """The API and worker processes over one database; logs under ``tmp``."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}{PREFIX}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ML_", "MLFLOW_"))},
            "PYTHONPATH": str(REPO),
            "MLFLOW_TRACKING_URI": url,
            "MLFLOW_ARTIFACT_LOCATION": str(tmp / "artifacts"),
            "ML_JOBS_DATABASE_URL": url,
            "ML_HUEY_SQLITE_PATH": str(tmp / "huey.db"),
            "ML_OUTPUT_DIR": str(tmp / "outputs"),
            "ML_CACHE_DIR": str(tmp / "cache"),
            "ML_API_TOKEN": TOKEN,
            "ML_DEVICE": "cpu",
            "ML_JOB_HEARTBEAT_INTERVAL_S": "0.5",
            "ML_JOB_HEARTBEAT_TIMEOUT_S": "20",
            "ML_JOB_RETRY_DELAY_S": "0.5",
        }
        self.procs: list[subprocess.Popen] = []
        self.api = self._start(
            "api",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "backend.api.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
        )
        self.http = httpx.Client(base_url=self.base, timeout=30)
        self._wait_api()
        self.worker = self.start_worker()

    def _start(self, name: str, cmd: list[str]) -> subprocess.Popen:
        with open(self.tmp / f"{name}-{len(self.procs)}.log", "w") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(cmd, cwd=self.tmp, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def start_worker(self) -> subprocess.Popen:
        return self._start("worker", [sys.executable, "-m", "backend.services.worker"])

    def _wait_api(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.api.poll() is None, self.logs()
            try:
                if self.http.get("/health").status_code in (200, 503):
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("the API did not start\n" + self.logs())

    def wait_job(self, job_id: str, until: set[str], timeout: float = 240, min_epoch: int = 0) -> dict:
        deadline = time.monotonic() + timeout
        job: dict = {}
        while time.monotonic() < deadline:
            job = self.http.get(f"/jobs/{job_id}").json()
            if job["status"] in until and job["epoch"] >= min_epoch:
                return job
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} still {job.get('status')} after {timeout} s\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.tmp.glob("*.log")))

    def close(self) -> None:
        self.http.close()
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api_e2e")
    with database() as url:
        s = Stack(url, tmp)
        try:
            yield s
        finally:
            s.close()


def test_train_through_the_worker_registers_a_version(stack):
    r = stack.http.post("/train", json=TINY_TRAINING, headers=AUTH)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    latencies = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # the API answers while the worker trains
        t0 = time.perf_counter()
        job = stack.http.get(f"/jobs/{job_id}").json()
        latencies.append(time.perf_counter() - t0)
        if job["status"] in {"finished", "failed", "cancelled"}:
            break
        time.sleep(0.2)
    assert job["status"] == "finished", (job, stack.logs())
    assert job["version"] >= 1 and job["run_id"] and job["epoch"] == 1
    assert job["worker"].endswith(f":{stack.worker.pid}")
    assert max(latencies) < 2.0, latencies
    version = stack.http.get(f"/models/hybrid_cnn_lstm/versions/{job['version']}")
    assert version.status_code == 200 and version.json()["signature"]["inputs"]
    health = stack.http.get("/health").json()
    assert health["status"] == "ok" and any(w["pid"] == stack.worker.pid and w["alive"] for w in health["workers"])


def test_a_killed_worker_fails_its_job_and_a_new_worker_runs_the_next(stack):
    long = {**TINY_TRAINING, "epochs": 1000, "early_stopping_patience": 0}
    job_id = stack.http.post("/train", json=long, headers=AUTH).json()["id"]
    running = stack.wait_job(job_id, {"running"}, min_epoch=1)
    assert running["worker"].endswith(f":{stack.worker.pid}")
    stack.worker.send_signal(signal.SIGKILL)
    stack.worker.wait()

    failed = stack.wait_job(job_id, {"failed"}, timeout=30)
    assert failed["error"] == f"worker died: process {stack.worker.pid} is gone"
    assert 1 <= failed["epoch"] < 1000 and failed["finished_at"]
    run = stack.http.get(f"/mlflow/runs/{failed['run_id']}").json()
    assert run["status"] == "KILLED" and run["tags"]["failure_reason"].startswith("worker died")

    next_id = stack.http.post("/train", json=TINY_TRAINING, headers=AUTH).json()["id"]
    stack.worker = stack.start_worker()
    done = stack.wait_job(next_id, {"finished", "failed"})
    assert done["status"] == "finished", (done, stack.logs())
    assert done["worker"].endswith(f":{stack.worker.pid}")
    assert stack.http.get(f"/jobs/{job_id}").json()["status"] == "failed"  # still failed, never re-run
