"""Benchmark: job workers. Eight short trainings by one worker process with 2 threads per job vs two
worker processes with 1 thread each; dispatch latency from submit to running with an idle worker,
on the SQLite, PostgreSQL and Redis queues.

Real worker processes (``python -m backend.services.worker``), each job in its own process, jobs
submitted through :class:`JobService` (the code path of ``POST /train``), trainings tracked in an
embedded SQLite store in a temporary folder. The training is the tests' tiny one
(``tests/api_support.py`` ``TINY_TRAINING``: one epoch on two days of ETH/BTC, a tiny network).

* Throughput: all the trainings submitted at once, wall time from the first submit to the last
  finish (job rows' ``created_at`` / ``finished_at``), on the SQLite queue and jobs table (one
  machine). Threads per job = the worker's cores / slots (``available_cores()`` reads the affinity
  mask), so "two workers, 1 thread each" pins each worker, and its job processes, to one core
  (``sched_setaffinity``, as ``taskset -c 0`` / ``taskset -c 1``): two one-core machines.
  A third row, one worker ``--slots 2`` (two jobs at once, 1 thread each, not pinned), is the
  one-process way to the same split.
* Dispatch latency: one worker ``--slots 1``, idle; a job is submitted 1-2 s (random) after the
  previous one ended, so the worker's queue polling has backed off; latency = the job row's
  ``started_at`` (the worker's claim) minus its ``created_at`` (the submit). As soon as it runs,
  its job process is killed (the job fails "job process died"): only the dispatch is measured.

    .venv/bin/python bench/bench_workers.py
    .venv/bin/python bench/bench_workers.py --jobs 4 --samples 10 --queues sqlite
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import REPO, RETRIES, temp_postgres_database, with_retry, write_report

from backend.services import ServiceSettings
from backend.services.jobs import JobService
from backend.services.schemas import TrainingParams
from tests.api_support import TINY_TRAINING

logger = logging.getLogger("bench_workers")

REDIS_URL = "redis://127.0.0.1:6379/0"
ENDED = ("finished", "failed", "cancelled")


# --------------------------------------------------------------------------------------------
# a stack: settings, the job service, worker processes


class Stack:
    """Settings over one folder (tracking store, outputs) plus the given jobs table and queue."""

    def __init__(self, root: Path, jobs_url: str, queue_url: str | None = None, huey_name: str = "bench") -> None:
        self.root = root
        self.settings = ServiceSettings(
            mlflow_tracking_uri=f"sqlite:///{root}/mlflow.db",
            mlflow_artifact_location=str(root / "artifacts"),
            jobs_database_url=jobs_url,
            queue_url=queue_url,
            huey_sqlite_path=str(root / "huey.db"),
            huey_name=huey_name,
            output_dir=str(root / "outputs"),
            cache_dir=str(root / "cache"),
            device="cpu",
            job_heartbeat_interval_s=1.0,
            job_heartbeat_timeout_s=30.0,
        )
        from backend.ml_engine.mlflow_integration import ensure_project_experiments
        from backend.services._mlflow import make_client

        # the tracking store's schema now, not in the first timed job
        ensure_project_experiments(make_client(self.settings.mlflow_tracking_uri), str(root / "artifacts"))
        self.service = JobService(self.settings)
        self.workers: list[subprocess.Popen[bytes]] = []

    def env(self) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ML_", "MLFLOW_", "OMP_", "MKL_"))}
        env.update(
            PYTHONPATH=str(REPO),
            MLFLOW_TRACKING_URI=s.mlflow_tracking_uri,
            MLFLOW_ARTIFACT_LOCATION=s.mlflow_artifact_location,
            ML_JOBS_DATABASE_URL=s.jobs_database_url.get_secret_value(),
            ML_HUEY_SQLITE_PATH=s.huey_sqlite_path,
            ML_HUEY_NAME=s.huey_name,
            ML_OUTPUT_DIR=s.output_dir,
            ML_CACHE_DIR=s.cache_dir,
            ML_DEVICE="cpu",
            ML_JOB_HEARTBEAT_INTERVAL_S=str(s.job_heartbeat_interval_s),
            ML_JOB_HEARTBEAT_TIMEOUT_S=str(s.job_heartbeat_timeout_s),
        )
        if s.queue_url is not None:
            env["ML_QUEUE_URL"] = s.queue_url.get_secret_value()
        return env

    def start_worker(self, slots: int, cpus: set[int] | None = None) -> subprocess.Popen[bytes]:
        n = len(self.workers)
        log = self.root / f"worker{n}.log"

        def pin() -> None:
            if cpus is not None:
                os.sched_setaffinity(0, cpus)

        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "backend.services.worker", "--slots", str(slots)],
                cwd=self.root,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=pin,  # only sched_setaffinity, before exec
            )
        self.workers.append(proc)
        return proc

    def wait_workers(self, timeout: float = 120) -> None:
        """Until every started worker is registered (its consumer starts right after)."""
        pids = {p.pid for p in self.workers}
        deadline = time.monotonic() + timeout
        while {w.pid for w in self.service.store.workers() if w.stopped_at is None} & pids != pids:
            for p in self.workers:
                if p.poll() is not None:
                    raise RuntimeError(f"worker {p.pid} exited ({p.returncode}); see {self.root}/worker*.log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not registered within {timeout:g} s; see {self.root}/worker*.log")
            time.sleep(0.2)
        time.sleep(0.5)

    def submit(self, run_name: str) -> str:
        return self.service.submit_training(TrainingParams(**TINY_TRAINING, run_name=run_name)).id

    def close(self) -> None:
        for proc in self.workers:  # idle by now: SIGTERM stops at once
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.service.close()
        shutil.rmtree(self.root, ignore_errors=True)


def wait_until(probe: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


# --------------------------------------------------------------------------------------------
# throughput


@dataclass
class Throughput:
    name: str
    workers: str
    threads: int
    wall_s: float
    job_s: list[float]
    finished: int
    jobs: int

    @property
    def per_hour(self) -> float:
        return self.finished / self.wall_s * 3600


def throughput(
    name: str, workers: str, layout: list[tuple[int, set[int] | None]], jobs: int, warmup: bool
) -> Throughput:
    root = Path(tempfile.mkdtemp(prefix="bench_workers_"))
    stack = Stack(root, f"sqlite:///{root}/jobs.db")
    try:
        for slots, cpus in layout:
            stack.start_worker(slots, cpus)
        stack.wait_workers()
        store = stack.service.store
        if warmup:  # the first training of the machine compiles and caches (numba); not timed
            job_id = stack.submit("warmup")
            wait_until(lambda: (j := store.get(job_id)) and j.status in ENDED, 600, "the warm-up training")
            logger.info("warm-up training: %s", store.get(job_id).status)
        logger.info("%s: %d trainings", name, jobs)
        ids = [stack.submit(f"{name}_{i}") for i in range(jobs)]

        def all_ended() -> list[Any] | None:
            rows = [store.get(i) for i in ids]
            return rows if all(r is not None and r.status in ENDED for r in rows) else None

        records = wait_until(all_ended, 1800, f"{name}: {jobs} trainings")
        failed = [r for r in records if r.status != "finished"]
        for r in failed:
            logger.warning("job %s %s: %s", r.id, r.status, r.error)
        wall = max(r.finished_at for r in records) - min(r.created_at for r in records)
        threads = {r.threads for r in records}
        return Throughput(
            name,
            workers,
            threads.pop() if len(threads) == 1 else -1,
            wall.total_seconds(),
            [(r.finished_at - r.started_at).total_seconds() for r in records if r.started_at],
            len(records) - len(failed),
            jobs,
        )
    finally:
        stack.close()


# --------------------------------------------------------------------------------------------
# dispatch latency


@dataclass
class Dispatch:
    queue: str
    jobs_table: str
    latencies_s: list[float]

    def pct(self, q: float) -> float:
        """The sample at rank ``q`` (nearest rank)."""
        values = sorted(self.latencies_s)
        return values[min(len(values) - 1, round(q * (len(values) - 1)))]


@contextlib.contextmanager
def queue_stack(kind: str) -> Iterator[tuple[Stack, str]]:
    root = Path(tempfile.mkdtemp(prefix=f"bench_dispatch_{kind}_"))
    if kind == "sqlite":
        stack = Stack(root, f"sqlite:///{root}/jobs.db")
        try:
            yield stack, "SQLite"
        finally:
            stack.close()
        return
    with temp_postgres_database("bench_workers") as url:
        if kind == "postgresql":
            stack = Stack(root, url, queue_url=url)
            try:
                yield stack, "PostgreSQL (the same database)"
            finally:
                stack.close()
            return
        import redis

        name = f"bench_workers_{uuid.uuid4().hex[:8]}"
        client = redis.Redis.from_url(REDIS_URL)
        stack = Stack(root, url, queue_url=REDIS_URL, huey_name=name)
        try:
            yield stack, "PostgreSQL"
        finally:
            stack.close()
            keys = list(client.scan_iter(match=f"*{name}*"))
            if keys:
                client.delete(*keys)
            client.close()


def one_dispatch(stack: Stack, run_name: str) -> float:
    """Submit one job to the idle worker; seconds from its submit to its claim. Then end it."""
    store = stack.service.store
    job_id = stack.submit(run_name)
    job = wait_until(lambda: (j := store.get(job_id)) and j.started_at and j, 60, f"job {job_id} to start")
    latency = (job.started_at - job.created_at).total_seconds()
    # only the dispatch is measured: end the job now (its process would boot for seconds)
    job = wait_until(lambda: (j := store.get(job_id)) and (j.job_pid or j.status in ENDED) and j, 30, "its process")
    if job.job_pid and job.status not in ENDED:
        with contextlib.suppress(ProcessLookupError):
            os.kill(job.job_pid, signal.SIGKILL)
    wait_until(lambda: (j := store.get(job_id)) and j.status in ENDED, 60, f"job {job_id} to end")
    return latency


def dispatch(kind: str, samples: int, rng: random.Random) -> Dispatch:
    with queue_stack(kind) as (stack, jobs_table):
        stack.start_worker(1)
        stack.wait_workers()
        latencies = []
        for i in range(samples):
            time.sleep(rng.uniform(1.0, 2.0))  # idle: the consumer's polling has backed off to its slowest
            latencies.append(one_dispatch(stack, f"dispatch_{kind}_{i}"))
        result = Dispatch(kind, jobs_table, latencies)
        logger.info("%s: p50 %.3f s, p95 %.3f s", kind, result.pct(0.5), result.pct(0.95))
        return result


# --------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=8, help="trainings per throughput layout (default 8)")
    ap.add_argument("--samples", type=int, default=20, help="dispatch samples per queue (default 20)")
    ap.add_argument(
        "--queues", default="sqlite,postgresql,redis", help="comma-separated: sqlite, postgresql, redis (default all)"
    )
    ap.add_argument("--no-one-worker-two-slots", action="store_true", help="skip the --slots 2 row")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("backend").setLevel(logging.WARNING)  # not a line per submitted job
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    if set(queues) - {"sqlite", "postgresql", "redis"}:
        ap.error(f"unknown queue in {args.queues!r}")

    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        ap.error("needs at least 2 cores")
    two = set(cores[:2])
    started = time.perf_counter()
    layouts: list[tuple[str, str, list[tuple[int, set[int] | None]]]] = [
        ("one_worker", "1 worker `--slots 1`", [(1, two)]),
        ("two_workers", "2 workers `--slots 1`, pinned to core 0 / core 1", [(1, {cores[0]}), (1, {cores[1]})]),
    ]
    if not args.no_one_worker_two_slots:
        layouts.append(("one_worker_two_slots", "1 worker `--slots 2`", [(2, two)]))
    results = [
        with_retry(n, lambda n=n, w=w, lay=lay, i=i: throughput(n, w, lay, args.jobs, warmup=i == 0))
        for i, (n, w, lay) in enumerate(layouts)
    ]
    rng = random.Random(0)
    dispatches = [with_retry(f"dispatch {k}", lambda k=k: dispatch(k, args.samples, rng)) for k in queues]
    elapsed = time.perf_counter() - started

    base = results[0]
    rows = []
    for r in results:
        mean_job = statistics.mean(r.job_s) if r.job_s else float("nan")
        rows.append(
            f"| {r.workers} | {r.threads if r.threads > 0 else 'mixed'} | {r.finished}/{r.jobs} | {r.wall_s:.1f} | "
            f"{r.per_hour:.0f} | {base.wall_s / r.wall_s:.2f}x | {mean_job:.1f} |"
        )
    drows = []
    for d in dispatches:
        drows.append(
            f"| {d.queue} | {d.jobs_table} | {len(d.latencies_s)} | {d.pct(0.5) * 1000:.0f} | "
            f"{d.pct(0.95) * 1000:.0f} | {max(d.latencies_s) * 1000:.0f} | "
            f"{'met' if d.pct(0.95) < 1.0 else 'NOT met'} |"
        )
    tiny = ", ".join(f"{k}={v}" for k, v in TINY_TRAINING.items())
    body = f"""
Real worker processes (`python -m backend.services.worker`), every job in its own process; jobs
submitted through `JobService` (what `POST /train` calls); trainings tracked in an embedded SQLite
store in a temporary folder. The training is the tests' tiny one ({tiny}); each job also boots a
fresh interpreter (torch, MLflow) and registers a version.

### Throughput: {args.jobs} trainings submitted at once (SQLite queue and jobs table)

Threads per job = the worker's cores / slots; the two one-thread workers are pinned to one core
each (`sched_setaffinity`, as `taskset -c 0` / `taskset -c 1`), so each sees one core: two
one-core machines. The anchor is the first row. A warm-up training ran before the first row.

| workers | threads per job | finished | wall s | trainings/hour | speed-up | mean job s |
|---|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

### Dispatch latency: submit to running, one idle worker `--slots 1`

Latency = the job row's `started_at` (the worker claims it) minus its `created_at` (the submit); each
submit comes 1-2 s (random) after the previous job ended, and the job's process is killed as soon
as it runs (only the dispatch is measured). Target: p95 under 1 s.

| queue | jobs table | samples | p50 ms | p95 ms | max ms | target |
|---|---|---:|---:|---:|---:|---|
{chr(10).join(drows)}

{"Measured again after an error: " + "; ".join(RETRIES) + "." if RETRIES else ""}
Whole benchmark: {elapsed:.0f} s. Two CPU cores run the workers, the job processes, PostgreSQL,
Redis and this script at once; other users of the machine add noise.
"""
    path = write_report("workers", "Job workers: throughput and dispatch latency", body)
    print(path.read_text())
    ok = all(r.finished == r.jobs for r in results) and all(d.pct(0.95) < 1.0 for d in dispatches)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
