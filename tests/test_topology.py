"""Several machines, tested on this one (issue 13, point 6).

A topology whose processes share nothing but network services:

* PostgreSQL: one fresh database for the MLflow tracking store of the server, one for the jobs table;
* Redis: the job queue, under a queue name of this run only;
* ``mlflow server`` with proxied artifact storage (``--serve-artifacts``): every other process talks
  to it over http, so artifacts travel through it (``mlflow-artifacts:/``) and no process reads
  another's disk;
* two workers (``python -m backend.services.worker --slots 1``), the API (uvicorn) and, once a
  version is promoted, a predictor, each in its own directory with its own HOME, caches and
  outputs (its working directory too).

Four trainings go through ``POST /train``: one long (many epochs on all the candles), three of one
epoch. Once both workers have taken jobs and the long job has done an epoch, its worker is
SIGKILLed: its job process dies with it, the reaper fails the job ("worker died") and marks its
MLflow run KILLED, while the other worker runs the three short jobs to the end. ``/health`` lists
the live worker and stays ``ok``; the predictor serves the version at ``@production``, registered
by one of the finished jobs.

Every process writes its output to ``<its directory>/<name>.log``; assertion messages carry the
tails of the relevant logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.api_support import PREFIX, TINY_TRAINING, database, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

T = TypeVar("T")

REDIS_URL = "redis://127.0.0.1:6379/0"
TOKEN = "topology-token-0123456789abcdef"
MODEL_NAME = "hybrid_cnn_lstm"
HEARTBEAT_INTERVAL_S, HEARTBEAT_TIMEOUT_S = 1, 6

SHORT = {**TINY_TRAINING, "auto_promote": True, "min_accuracy_for_promotion": 0.0}
#: Surely mid-training when its worker is killed: all 20 days of candles in small batches (about
#: 60 steps an epoch) and 200 epochs; early stopping (patience 5) needs at least 6 of them.
LONG = {**SHORT, "epochs": 200, "date_range": 20, "batch_size": 64}


# --------------------------------------------------------------------------------------------
# processes


class Proc:
    """A process of the topology: its own directory, HOME, caches, log; its own session."""

    def __init__(self, name: str, root: Path, args: list[str], env: dict[str, str]) -> None:
        self.name, self.dir = name, root
        self.log = root / f"{name}.log"
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, *args],
                cwd=root,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, chars: int = 3000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} (pid {self.pid}, exit {self.popen.poll()}) {self.log}\n{text[-chars:]}"

    def terminate(self) -> None:
        """SIGTERM the whole group (does not wait)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)

    def stop(self, deadline: float) -> None:
        """Wait until ``deadline`` (monotonic) for a :meth:`terminate`, then SIGKILL what is left of the group."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):  # the leader gone, maybe not its children
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)


def own_dirs(root: Path) -> dict[str, str]:
    """HOME, caches, temporary files, outputs of one process, all under ``root``."""
    for sub in ("home", "cache", "tmp", "outputs", "data_cache"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return {
        "HOME": str(root / "home"),
        "XDG_CACHE_HOME": str(root / "cache"),
        "TMPDIR": str(root / "tmp"),
        "ML_OUTPUT_DIR": str(root / "outputs"),
        "ML_CACHE_DIR": str(root / "data_cache"),
    }


def base_env() -> dict[str, str]:
    """This environment without any setting of the engine (ours come explicitly)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ML_", "MLFLOW_"))}
    env.update(PYTHONUNBUFFERED="1", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    return env


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, logs: Callable[[], str]) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` and the logs' tails."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}\n{logs()}")
        time.sleep(0.2)


def process_gone(pid: int) -> bool:
    """No process ``pid`` (a zombie counts as gone: dead, waiting for whoever reaps orphans here)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


# --------------------------------------------------------------------------------------------
# the topology


class Topology:
    def __init__(self, root: Path, tracking_db: str, jobs_db: str, huey_name: str) -> None:
        self.root = root
        self.procs: dict[str, Proc] = {}
        self.huey_name = huey_name
        self.tracking_db, self.jobs_db = tracking_db, jobs_db

        server_dir = self.directory("mlflow_server")
        self.mlflow_port, self.api_port = free_port(), free_port()
        while self.api_port == self.mlflow_port:  # pragma: no cover - two free ports in a row
            self.api_port = free_port()
        self.mlflow_url = f"http://127.0.0.1:{self.mlflow_port}"
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.server_artifacts = server_dir / "artifacts"

    def start(self) -> None:
        """The MLflow server, two workers and the API, all at once (each waits for what it needs)."""
        server_dir = self.directory("mlflow_server")
        self._start(
            "mlflow_server",
            server_dir,
            [
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                self.tracking_db,
                "--serve-artifacts",
                "--artifacts-destination",
                str(self.server_artifacts),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.mlflow_port),
                "--workers",
                "1",
            ],
            # without the server's own job runner (seven huey consumer processes: GenAI jobs, unused here)
            {**base_env(), **own_dirs(server_dir), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
        for name in ("worker_a", "worker_b"):
            work = self.directory(name)
            self._start(
                name, work, ["-m", "backend.services.worker", "--slots", "1"], self.service_env(work, token=None)
            )
        api_dir = self.directory("api")
        self._start(
            "api",
            api_dir,
            ["-m", "uvicorn", "backend.api.main:app", "--host", "127.0.0.1", "--port", str(self.api_port)],
            self.service_env(api_dir, token=TOKEN),
        )

    def directory(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _start(self, name: str, root: Path, args: list[str], env: dict[str, str]) -> Proc:
        self.procs[name] = Proc(name, root, args, env)
        return self.procs[name]

    def service_env(self, root: Path, token: str | None) -> dict[str, str]:
        env = {**base_env(), **own_dirs(root)}
        env.update(
            MLFLOW_TRACKING_URI=self.mlflow_url,
            # a local folder with an http store: the server's artifact root is used (checked below)
            MLFLOW_ARTIFACT_LOCATION=str(root / "artifacts"),
            ML_JOBS_DATABASE_URL=self.jobs_db,
            ML_QUEUE_URL=REDIS_URL,
            ML_HUEY_NAME=self.huey_name,
            ML_DEVICE="cpu",
            ML_JOB_HEARTBEAT_INTERVAL_S=str(HEARTBEAT_INTERVAL_S),
            ML_JOB_HEARTBEAT_TIMEOUT_S=str(HEARTBEAT_TIMEOUT_S),
        )
        if token:
            env["ML_API_TOKEN"] = token
        return env

    @property
    def workers(self) -> dict[int, Proc]:
        return {p.pid: p for n, p in self.procs.items() if n.startswith("worker_")}

    def logs(self, *names: str, chars: int = 2500) -> str:
        chosen = names or tuple(self.procs)
        return "\n".join(self.procs[n].tail(chars) for n in chosen if n in self.procs)

    def close(self) -> None:
        """Stop every process: the server last, the others may talk to it on their way out."""
        server = [p for n, p in self.procs.items() if n == "mlflow_server"]
        others = [p for n, p in self.procs.items() if n != "mlflow_server"]
        for group in (others, server):
            for proc in group:
                proc.terminate()
            deadline = time.monotonic() + 20
            for proc in group:
                proc.stop(deadline)


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:  # refused or timed out: redis-py raises its ConnectionError
        pytest.skip("no Redis on 127.0.0.1:6379")
    huey_name = f"test_topology_{uuid.uuid4().hex[:10]}"
    with contextlib.ExitStack() as stack:
        tracking_db = stack.enter_context(database("test_topo_mlflow"))
        jobs_db = stack.enter_context(database("test_topo_jobs"))

        @stack.callback
        def _flush_queue() -> None:
            keys = list(client.scan_iter(match=f"*{huey_name}*"))
            if keys:
                client.delete(*keys)
            client.close()

        topo = Topology(tmp_path, tracking_db, jobs_db, huey_name)
        stack.callback(topo.close)  # before the databases are dropped and the queue flushed
        topo.start()
        yield topo


# --------------------------------------------------------------------------------------------


@pytest.fixture
def api(topology: Topology) -> Iterator[httpx.Client]:
    """An HTTP client of the API (closed before the processes are stopped)."""
    with httpx.Client(base_url=topology.api_url + PREFIX, timeout=30) as client:
        yield client


def test_two_workers_one_killed_the_other_finishes_and_the_predictor_serves_over_http(
    topology: Topology, api: httpx.Client
) -> None:
    from mlflow import MlflowClient

    topo = topology
    started = time.monotonic()
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def get(path: str) -> Any:
        r = api.get(path)
        assert r.status_code in (200, 503), f"GET {path}: {r.status_code} {r.text[:500]}\n{topo.logs('api')}"
        return r.json()

    # -- everything up: the server healthy, the API answering, both workers alive ------------
    def server_ready() -> bool:
        for proc in topo.procs.values():
            assert proc.popen.poll() is None, f"{proc.name} exited\n{proc.tail()}"
        try:
            return httpx.get(topo.mlflow_url + "/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(server_ready, 150, "the MLflow server", lambda: topo.logs())

    def both_workers_alive() -> dict[str, Any] | None:
        for proc in topo.procs.values():
            assert proc.popen.poll() is None, f"{proc.name} exited\n{proc.tail()}"
        try:
            health = api.get("/health").json()
        except (httpx.HTTPError, ValueError):
            return None
        alive = {w["pid"] for w in health.get("workers", []) if w["alive"]}
        return health if alive == set(topo.workers) else None

    health = wait_for(both_workers_alive, 120, "the API and both workers", lambda: topo.logs())
    assert health["queue"]["kind"] == "redis" and health["queue"]["reachable"], health
    assert health["tracking_store"]["kind"] == "http" and health["tracking_store"]["reachable"], health
    assert health["status"] == "ok", health
    print(f"topology up in {time.monotonic() - started:.0f} s")

    # -- four trainings through the API: the long one first, at the head of the line ----------
    bodies = [LONG, SHORT, SHORT, SHORT]
    ids = []
    for body in bodies:
        r = api.post("/train", json=body, headers=auth)
        assert r.status_code == 202, f"{r.status_code} {r.text[:500]}\n{topo.logs('api')}"
        ids.append(r.json()["id"])
    long_id, short_ids = ids[0], ids[1:]

    def jobs() -> dict[str, dict[str, Any]]:
        return {j["id"]: j for j in get("/jobs?limit=50")["data"] if j["id"] in ids}

    def worker_pid(job: dict[str, Any]) -> int | None:
        return int(job["worker"].rsplit(":", 1)[1]) if job.get("worker") else None

    # -- both workers have taken jobs, the long one is past its first epoch -------------------
    def ready_to_kill() -> dict[str, dict[str, Any]] | None:
        now = jobs()
        long = now[long_id]
        assert long["status"] in ("queued", "running"), f"long job ended before the kill: {long}\n{topo.logs()}"
        pids = {worker_pid(j) for j in now.values()} - {None}
        return now if len(pids) == 2 and long["status"] == "running" and long["epoch"] >= 1 else None

    before = wait_for(ready_to_kill, 150, "both workers busy and the long job past epoch 1", lambda: topo.logs())
    assert {worker_pid(j) for j in before.values()} - {None} == set(topo.workers), before
    long = before[long_id]
    victim = topo.workers[worker_pid(long)]
    survivor = next(p for pid, p in topo.workers.items() if pid != victim.pid)
    job_pid = long["process_pid"]
    assert job_pid and job_pid != victim.pid, long
    print(f"killing {victim.name} (pid {victim.pid}) at epoch {long['epoch']} of the long job, job process {job_pid}")

    os.kill(victim.pid, signal.SIGKILL)  # the worker only: its job process must die with it
    victim.popen.wait(timeout=10)

    # -- the job process died with its worker -------------------------------------------------
    wait_for(lambda: process_gone(job_pid), 10, f"job process {job_pid} to die with its worker", lambda: victim.tail())

    # -- the long job ends failed (the API reaps when it reads jobs), its run KILLED -----------
    def long_failed() -> dict[str, Any] | None:
        job = get(f"/jobs/{long_id}")
        return job if job["status"] != "running" else None

    failed = wait_for(long_failed, 30, "the long job to be reaped", lambda: topo.logs("api", survivor.name))
    assert failed["status"] == "failed", f"{failed}\n{topo.logs('api', survivor.name)}"
    assert "worker died" in (failed["error"] or ""), failed
    assert failed["run_id"], f"the long job has no MLflow run: {failed}\n{victim.tail()}"

    mlflow = MlflowClient(tracking_uri=topo.mlflow_url, registry_uri=topo.mlflow_url)

    def run_killed() -> str | None:
        status = mlflow.get_run(failed["run_id"]).info.status
        return status if status != "RUNNING" else None

    status = wait_for(run_killed, 20, "the long job's run to end", lambda: topo.logs("api", survivor.name))
    run = mlflow.get_run(failed["run_id"])
    assert status == "KILLED", f"run {failed['run_id']} {status} {run.data.tags}\n{topo.logs('api', survivor.name)}"
    assert "worker died" in run.data.tags.get("failure_reason", ""), run.data.tags

    # -- the surviving worker runs the three short trainings to the end ------------------------
    def shorts_ended() -> dict[str, dict[str, Any]] | None:
        now = jobs()
        shorts = [now[i] for i in short_ids]
        return now if all(j["status"] in ("finished", "failed", "cancelled") for j in shorts) else None

    after = wait_for(shorts_ended, 180, "the three short trainings", lambda: topo.logs("api", survivor.name))
    for job_id in short_ids:
        job = after[job_id]
        assert job["status"] == "finished", f"{job}\n{topo.logs(survivor.name, victim.name)}"
        # the victim claimed the head of the line (the long job) and held its only slot until killed
        assert worker_pid(job) == survivor.pid, job
        assert job["version"] is not None and job["run_id"], job
    assert after[long_id]["status"] == "failed"

    # -- /health: the live worker with its slot; ok while one is alive -------------------------
    def victim_not_alive() -> dict[str, Any] | None:
        report = get("/health")
        by_pid = {w["pid"]: w for w in report["workers"]}
        return report if victim.pid not in by_pid or not by_pid[victim.pid]["alive"] else None

    health = wait_for(
        victim_not_alive, 3 * HEARTBEAT_TIMEOUT_S, "the dead worker not alive in /health", lambda: topo.logs("api")
    )
    live = [w for w in health["workers"] if w["alive"]]
    assert [w["pid"] for w in live] == [survivor.pid], health["workers"]
    assert live[0]["slots"] == 1 and live[0]["running_jobs"] == [], live
    assert health["status"] == "ok" and health["problems"] == [], health
    assert health["jobs"].get("failed") == 1 and health["jobs"].get("finished") == 3, health["jobs"]

    # -- artifacts went through the server, never a worker's own folder ------------------------
    production = mlflow.get_model_version_by_alias(MODEL_NAME, "production")
    finished_versions = {str(after[i]["version"]) for i in short_ids}
    assert production.version in finished_versions, (production.version, finished_versions)
    promoted_job = next(after[i] for i in short_ids if str(after[i]["version"]) == production.version)
    assert production.run_id == promoted_job["run_id"], (production.run_id, promoted_job)
    artifact_uri = mlflow.get_run(production.run_id).info.artifact_uri
    assert artifact_uri.startswith("mlflow-artifacts:"), artifact_uri
    # the version's source is its logged model, models:/m-... (model_id is not set on the version)
    model_id = production.model_id or production.source.removeprefix("models:/")
    assert model_id.startswith("m-"), production.source
    location = mlflow.get_logged_model(model_id).artifact_location
    assert location.startswith(("mlflow-artifacts:", "http")), location
    assert any(topo.server_artifacts.rglob("model.onnx")), f"no model.onnx under {topo.server_artifacts}"
    for name in ("worker_a", "worker_b", "api"):
        assert not (topo.root / name / "artifacts").exists(), f"{name} wrote artifacts to its own disk"

    # -- a predictor in a fourth directory serves @production over http -----------------------
    predictor_dir = topo.directory("predictor")
    env = {**base_env(), **own_dirs(predictor_dir), "MLFLOW_TRACKING_URI": topo.mlflow_url}
    script = textwrap.dedent(
        f"""
        import json
        from backend.ml_engine.config import SAMPLE_DATA_DIR
        from backend.ml_engine.data import load_candles
        from backend.ml_engine.predictor import Predictor

        frame = load_candles(str(SAMPLE_DATA_DIR), symbols=["ETH/BTC"], timeframe="5m")[0].frame
        candles = frame[["timestamp", "open", "high", "low", "close", "volume"]].tail(300).reset_index(drop=True)
        predictor = Predictor({MODEL_NAME!r}, refresh_interval_s=0)
        pred = predictor.predict(candles)
        print(json.dumps({{"version": predictor.version, "model_uri": predictor.model_uri,
                           "backend": predictor.backend, "prediction": pred.to_dict()}}))
        predictor.close()
        """
    )
    log = predictor_dir / "predictor.log"
    with open(log, "wb") as err:
        out = subprocess.run(
            [sys.executable, "-c", script],
            cwd=predictor_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            timeout=120,
            start_new_session=True,
        )
    detail = f"exit {out.returncode}\n{log.read_text(errors='replace')[-3000:]}"
    assert out.returncode == 0, detail
    served = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert served["version"] == production.version, (served, production.version)
    assert served["prediction"]["model_version"] == production.version, served
    probabilities = served["prediction"]["probabilities"]
    assert set(probabilities) == {"down", "flat", "up"} and abs(sum(probabilities.values()) - 1) < 1e-4, served
    assert served["prediction"]["signal"] in ("sell", "hold", "buy"), served
    assert not (predictor_dir / "artifacts").exists()
    assert any(predictor_dir.rglob("model.onnx")), "the predictor's model is not in its own cache"
    print(f"predictor serves version {served['version']} ({served['backend']}); {time.monotonic() - started:.0f} s")
