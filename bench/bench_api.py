"""Benchmark: ``GET /api/ml-management/mlflow/runs`` over 10,000 runs in PostgreSQL, beside MLflow's
own REST search (``mlflow server`` on the same database) under the same load.

1. A fresh PostgreSQL database (user ``postgres`` on 127.0.0.1:5432; dropped afterwards unless
   ``--keep``) gets MLflow's schema and the project's experiments, then ``--runs`` runs in
   ``model_training``, each with 10 params, 6 metrics and 6 tags like the orchestrator's:

   * most are bulk-inserted through MLflow's own SQLAlchemy models (``runs``, ``params``,
     ``metrics``, ``latest_metrics``, ``tags``), in chunks: that is how 10k runs take seconds;
   * ``--via-client`` of them are created the ordinary way (``MlflowClient.create_run`` +
     ``log_batch`` + ``set_terminated``) by ``--client-threads`` threads, to measure that rate too.

2. Three servers on loopback, each with ``--workers`` processes: this API
   (``uvicorn backend.api.main:app``) with identical-search coalescing on (the default) and off,
   and ``mlflow server``.

3. A load generator (Python asyncio + httpx; bounded by ``--requests`` per level and
   ``--duration`` seconds, in ``--rounds`` rounds alternating between the servers so both see the
   same background load) sends, at each concurrency in ``--concurrency``, the same search to both:
   filter ``metrics.val_accuracy > 0.7 AND params.trainer_epochs = '50'``, ``max_results=50``,
   experiment ``model_training`` (``GET /api/ml-management/mlflow/runs?experiment=model_training&...``
   and ``POST /api/2.0/mlflow/runs/search``). Both answers are checked to hold the same run ids.
   Reported: p50 / p95 / p99 / max latency and requests per second.

    .venv/bin/python bench/bench_api.py                      # writes bench/results/api.md
    .venv/bin/python bench/bench_api.py --runs 2000 --requests 200 --out /tmp/api.md
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import platform
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from common import admin_connection as _admin, create_database as _create_database, drop_database  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param, RunTag  # noqa: E402


def create_database() -> str:
    return _create_database("bench_api")


from backend.ml_engine.mlflow_integration import ensure_project_experiments, resolve_tracking_uri  # noqa: E402

logger = logging.getLogger("bench_api")

FILTER = "metrics.val_accuracy > 0.7 AND params.trainer_epochs = '50'"
MAX_RESULTS = 50
EXPERIMENT = "model_training"
TOKEN = "bench-token-0123456789abcdef"
API_PLAIN = "this API, coalescing off"
API = "this API"
MLFLOW = "mlflow server"
EPOCHS = ("10", "20", "50", "100")
METRICS = ("val_accuracy", "val_f1", "val_loss", "train_loss", "test_accuracy", "test_f1_macro")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------------
# data


def run_content(rng: random.Random, i: int) -> tuple[dict[str, str], dict[str, float], dict[str, str]]:
    """Params, metrics and tags of one synthetic training run, shaped like the orchestrator's."""
    acc = rng.uniform(0.3, 0.9)
    params = {
        "trainer_epochs": rng.choice(EPOCHS),
        "trainer_batch_size": rng.choice(("64", "128", "256")),
        "trainer_learning_rate": rng.choice(("0.001", "0.0005", "0.0001")),
        "model_lstm_hidden": rng.choice(("32", "64")),
        "model_conv_channels": "(64, 64)",
        "model_dropout": "0.2",
        "data_symbols": "ETH/BTC,LTC/BTC",
        "data_timeframe": "5m",
        "data_window": "60",
        "data_hash": f"{rng.getrandbits(128):032x}",
    }
    metrics = {
        "val_accuracy": acc,
        "val_f1": acc - rng.uniform(0.05, 0.2),
        "val_loss": rng.uniform(0.5, 1.1),
        "train_loss": rng.uniform(0.4, 1.0),
        "test_accuracy": acc - rng.uniform(-0.05, 0.05),
        "test_f1_macro": acc - rng.uniform(0.05, 0.25),
    }
    tags = {
        "training_mode": rng.choice(("manual", "auto_retraining")),
        "model_name": "hybrid_cnn_lstm",
        "symbol": "ETH/BTC,LTC/BTC",
        "timeframe": "5m",
        "mlflow.runName": f"hybrid_cnn_lstm_bench_{i:05d}",
        "mlflow.user": "bench",
    }
    return params, metrics, tags


def bulk_insert_runs(url: str, experiment_id: str, artifact_root: str, n: int, seed: int, chunk: int = 1000) -> float:
    """Insert ``n`` finished runs with MLflow's own table models, ``chunk`` runs per transaction."""
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag

    engine = sa.create_engine(resolve_tracking_uri(url))
    rng = random.Random(seed)
    base_ms = int(time.time() * 1000) - n * 60_000
    t0 = time.perf_counter()
    for start in range(0, n, chunk):
        runs, params, metrics, tags = [], [], [], []
        for i in range(start, min(n, start + chunk)):
            rid = uuid.uuid4().hex
            t_start = base_ms + i * 60_000
            p, m, t = run_content(rng, i)
            runs.append(
                {
                    "run_uuid": rid,
                    "name": t["mlflow.runName"],
                    "source_type": "LOCAL",
                    "source_name": "bench",
                    "entry_point_name": "",
                    "user_id": "bench",
                    "status": "FINISHED",
                    "start_time": t_start,
                    "end_time": t_start + 50_000,
                    "deleted_time": None,
                    "source_version": "",
                    "lifecycle_stage": "active",
                    "artifact_uri": f"{artifact_root}/{experiment_id}/{rid}/artifacts",
                    "experiment_id": int(experiment_id),
                }
            )
            params += [{"run_uuid": rid, "key": k, "value": v} for k, v in p.items()]
            tags += [{"run_uuid": rid, "key": k, "value": v} for k, v in t.items()]
            for k, v in m.items():
                row = {"run_uuid": rid, "key": k, "value": v, "timestamp": t_start + 40_000, "step": 0, "is_nan": False}
                metrics.append(row)
        with engine.begin() as conn:
            conn.execute(SqlRun.__table__.insert(), runs)
            conn.execute(SqlParam.__table__.insert(), params)
            conn.execute(SqlTag.__table__.insert(), tags)
            conn.execute(SqlMetric.__table__.insert(), metrics)
            conn.execute(SqlLatestMetric.__table__.insert(), metrics)
    seconds = time.perf_counter() - t0
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    return seconds


def client_create_runs(url: str, experiment_id: str, n: int, threads: int, seed: int) -> float:
    """Create ``n`` runs the ordinary way (create_run + log_batch + set_terminated), ``threads`` at once."""
    client = MlflowClient(tracking_uri=resolve_tracking_uri(url))
    rng = random.Random(seed)
    contents = [run_content(rng, 90_000 + i) for i in range(n)]

    def one(content: tuple[dict[str, str], dict[str, float], dict[str, str]]) -> None:
        p, m, t = content
        run = client.create_run(
            experiment_id, run_name=t["mlflow.runName"], tags={k: v for k, v in t.items() if k != "mlflow.runName"}
        )
        now = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in m.items()],
            params=[Param(k, v) for k, v in p.items()],
            tags=[RunTag("bench", "client")],
        )
        client.set_terminated(run.info.run_id)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, contents))
    return time.perf_counter() - t0


# --------------------------------------------------------------------------------------------
# servers and load


class Server:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path, probe: str) -> None:
        self.name, self.cmd = name, cmd
        self.log = open(cwd / f"{name}.log", "w")  # noqa: SIM115 - the server's log while it runs; closed in stop()
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited: see {self.log.name}")
            try:
                if httpx.get(probe, timeout=5).status_code < 500:
                    return
            except httpx.TransportError:
                time.sleep(0.3)
        raise RuntimeError(f"{name} did not start within 120 s: see {self.log.name}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of every process of the server (its process group)."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.proc.pid:  # pgrp
                total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


@dataclass
class LoadResult:
    target: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    rows_per_response: int
    cpu_s: float = 0.0
    first_error: str = ""

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        if not data:
            return float("nan")
        k = (len(data) - 1) * q
        lo, hi = int(k), min(int(k) + 1, len(data) - 1)
        return data[lo] + (data[hi] - data[lo]) * (k - lo)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else float("nan")


async def _load(
    make_request: Any, concurrency: int, total: int, duration: float
) -> tuple[list[float], int, int, float, int, str]:
    latencies: list[float] = []
    errors = 0
    first_error = ""
    sent = 0
    rows = -1
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        deadline = time.monotonic() + duration
        t0 = time.perf_counter()

        async def worker() -> None:
            nonlocal errors, sent, rows, first_error
            while sent < total and time.monotonic() < deadline:
                sent += 1
                start = time.perf_counter()
                try:
                    response = await make_request(client)
                    ok = response.status_code == 200
                    if ok and rows < 0:
                        body = response.json()
                        rows = len(body.get("data", body.get("runs", [])))
                    if not ok and not first_error:
                        first_error = f"HTTP {response.status_code}: {' '.join(response.text.split())[:200]}"
                except httpx.HTTPError as exc:
                    ok = False
                    first_error = first_error or f"{type(exc).__name__}: {exc}"
                latencies.append((time.perf_counter() - start) * 1000)
                errors += 0 if ok else 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return latencies, errors, len(latencies), elapsed, rows, first_error


def run_load(target: str, make_request: Any, concurrency: int, total: int, duration: float) -> LoadResult:
    latencies, errors, done, elapsed, rows, first_error = asyncio.run(_load(make_request, concurrency, total, duration))
    return LoadResult(target, concurrency, done, errors, elapsed, latencies, rows, first_error=first_error)


# --------------------------------------------------------------------------------------------
# report


def machine() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute("SHOW server_version")
        pg = cur.fetchone()[0]
    conn.close()
    from importlib.metadata import version

    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "mlflow": version("mlflow"),
        "fastapi": version("fastapi"),
        "uvicorn": version("uvicorn"),
        "postgres": pg,
    }


def write_report(
    path: Path,
    args: argparse.Namespace,
    info: dict[str, str],
    created: dict[str, float],
    n_matching: int,
    results: list[LoadResult],
    same_ids: bool,
    load_before: str,
    load_after: str,
) -> None:
    lines = [
        f"# API benchmark: run search over {args.runs:,} runs in PostgreSQL",
        "",
        f"- command: `{' '.join(shlex.quote(a) for a in [sys.executable.replace(str(REPO) + '/', ''), *sys.argv])}`",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {info['cpus']} CPUs, {info['cpu']}, {info['os']}; the servers, PostgreSQL and the load "
        "generator share these CPUs (and other work on the machine)",
        f"- load average (1/5/15 min) at start: {load_before}, at end: {load_after}",
        f"- software: Python {info['python']}, MLflow {info['mlflow']}, FastAPI {info['fastapi']}, "
        f"uvicorn {info['uvicorn']}, PostgreSQL {info['postgres']} on 127.0.0.1 (fresh database, dropped afterwards)",
        f"- data: {args.runs:,} runs in experiment `{EXPERIMENT}`, each with 10 params, 6 metrics, 6 tags; "
        f"{n_matching:,} match the filter",
        f"- query: filter `{FILTER}`, `max_results={MAX_RESULTS}`, default order (start time, newest first)",
        f"- servers, each with {args.workers} worker processes, on loopback over the same database: this API twice "
        f"(`uvicorn backend.api.main:app --workers {args.workers}`, with `ML_COALESCE_RUN_SEARCHES` on and off) "
        f"and `mlflow server --workers {args.workers}` (with `MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`: its job "
        "runner, seven polling huey consumers, has nothing to do with search and would load the CPUs throughout)",
        f"- load: Python asyncio + httpx, per server and level at most {args.requests} requests or "
        f"{args.duration:g} s, in {args.rounds} rounds alternating between the three servers (all see the same "
        f"background load), after {args.warmup} warm-up requests each; keep-alive connections",
        "",
        "## Creating the runs",
        "",
        "| method | runs | seconds | runs per second |",
        "|---|---:|---:|---:|",
        f"| bulk insert through MLflow's SQLAlchemy models (chunks of 1000 runs per transaction) | "
        f"{created['bulk_runs']:,} | {created['bulk_s']:.1f} | {created['bulk_runs'] / created['bulk_s']:,.0f} |",
    ]
    if created.get("client_runs"):
        lines.append(
            f"| `MlflowClient` create_run + log_batch + set_terminated, {args.client_threads} threads | "
            f"{created['client_runs']:,} | {created['client_s']:.1f} | "
            f"{created['client_runs'] / created['client_s']:,.0f} |"
        )
    lines += [
        "",
        "## Search latency and throughput",
        "",
        "| server | request | concurrency | requests | errors | runs per answer | p50 ms | p95 ms | p99 ms | max ms "
        "| requests/s | server CPU ms per request |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        request = "`POST /api/2.0/mlflow/runs/search`" if r.target == MLFLOW else "`GET /api/ml-management/mlflow/runs`"
        lines.append(
            f"| {r.target} | {request} | {r.concurrency} | {r.requests} | {r.errors} | "
            f"{r.rows_per_response} | {r.pct(0.5):.1f} | {r.pct(0.95):.1f} | {r.pct(0.99):.1f} | "
            f"{max(r.latencies_ms):.1f} | {r.rps:.1f} | "
            f"{1000 * r.cpu_s / max(r.requests, 1):.1f} |"
        )
    rows = max(r.rows_per_response for r in results)
    lines += [
        "",
        f"- This API and `mlflow server` returned the same {rows} run ids, in the same order: "
        f"{'yes' if same_ids else 'NO'}.",
    ]
    for r in results:
        if r.errors:
            lines.append(
                f"- {r.target}, concurrency {r.concurrency}: {r.errors} failed request(s); the first: {r.first_error}"
            )
    for target in (API_PLAIN, API, MLFLOW):
        rows = [r for r in results if r.target == target]
        met = [r.concurrency for r in rows if r.pct(0.95) <= 300]
        lines.append(
            f"- Target p95 <= 300 ms, {target}: met at concurrency {', '.join(map(str, met)) or 'none'}; "
            + ", ".join(f"c={r.concurrency}: p95 {r.pct(0.95):.0f} ms" for r in rows)
            + "."
        )
    lines += [
        "- The API process freezes its startup objects out of the garbage collector (`gc.freeze`, see",
        "  `backend/api/main.py`): before that, full collections over MLflow's and SQLAlchemy's objects",
        "  put 150-200 ms on about one search in twelve (p95 ~200 ms at concurrency 1 instead of ~55 ms).",
        "- Server CPU ms per request: user + system CPU time of the server's processes over the requests",
        "  (PostgreSQL's share, the same query for all three, is not included); it depends much less than",
        "  the latencies on how busy the machine is.",
        "- Every answer carries all params, metrics and tags of its 50 runs: MLflow's SQL store loads them in the",
        "  search itself (one query with the filter joins, then one per child table); this API calls the same",
        "  `MlflowClient.search_runs` and adds the experiment-name lookup (remembered for 30 s), password",
        "  masking of every value and pydantic validation.",
        f'- "{API}" shares one query among identical searches in flight at the same moment (single-flight,',
        "  `ML_COALESCE_RUN_SEARCHES`, on by default; no cache: an answer is never older than the query already",
        "  running when the request came in). The load here repeats one query, which is its best case;",
        f'  "{API_PLAIN}" is the like-for-like comparison with `mlflow server`.',
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--runs", type=int, default=10_000, help="runs in the database (default 10000)")
    p.add_argument("--via-client", type=int, default=300, help="of them, created through MlflowClient (default 300)")
    p.add_argument("--client-threads", type=int, default=4)
    p.add_argument("--workers", type=int, default=2, help="server processes of each server (default 2)")
    p.add_argument("--concurrency", default="1,4,8", help="comma-separated concurrency levels (default 1,4,8)")
    p.add_argument("--requests", type=int, default=400, help="requests per server and level (default 400)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds per server and level at most (default 60)")
    p.add_argument("--rounds", type=int, default=4, help="alternating rounds per level (default 4)")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "api.md")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    via_client = min(args.via_client, args.runs)

    load_before = "/".join(f"{x:.2f}" for x in os.getloadavg())
    info = machine()
    db = create_database()
    url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    tmp = Path(tempfile.mkdtemp(prefix="bench_api_"))
    servers: list[Server] = []
    try:
        client = MlflowClient(tracking_uri=resolve_tracking_uri(url))
        exp_id = ensure_project_experiments(client, str(tmp / "artifacts"))[EXPERIMENT]
        created: dict[str, float] = {"bulk_runs": args.runs - via_client}
        logger.info("inserting %d runs in bulk", args.runs - via_client)
        created["bulk_s"] = bulk_insert_runs(
            url, exp_id, (tmp / "artifacts").as_uri(), args.runs - via_client, args.seed
        )
        logger.info("  %.1f s", created["bulk_s"])
        if via_client:
            logger.info("creating %d runs through MlflowClient (%d threads)", via_client, args.client_threads)
            created["client_runs"] = via_client
            created["client_s"] = client_create_runs(url, exp_id, via_client, args.client_threads, args.seed + 1)
            logger.info("  %.1f s", created["client_s"])
        n_matching = len(client.search_runs([exp_id], FILTER, max_results=50_000))

        env = {k: v for k, v in os.environ.items() if not k.startswith(("ML_", "MLFLOW_"))}
        env.update(
            {
                "PYTHONPATH": str(REPO),
                "MLFLOW_TRACKING_URI": url,
                "MLFLOW_ARTIFACT_LOCATION": str(tmp / "artifacts"),
                "ML_JOBS_DATABASE_URL": url,
                "ML_HUEY_SQLITE_PATH": str(tmp / "huey.db"),
                "ML_API_TOKEN": TOKEN,
            }
        )
        api_port, plain_port, mlflow_port = free_port(), free_port(), free_port()
        api_base = f"http://127.0.0.1:{api_port}/api/ml-management"
        plain_base = f"http://127.0.0.1:{plain_port}/api/ml-management"
        mlflow_base = f"http://127.0.0.1:{mlflow_port}"
        for name, port, coalesce in (("api", api_port, "true"), ("api-no-coalescing", plain_port, "false")):
            servers.append(
                Server(
                    name,
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "backend.api.main:app",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--workers",
                        str(args.workers),
                        "--log-level",
                        "warning",
                        "--no-access-log",
                    ],
                    {**env, "ML_COALESCE_RUN_SEARCHES": coalesce},
                    tmp,
                    f"http://127.0.0.1:{port}/api/ml-management/experiments",
                )
            )
        mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
        servers.append(
            Server(
                "mlflow",
                [
                    mlflow_bin,
                    "server",
                    "--backend-store-uri",
                    resolve_tracking_uri(url),
                    "--default-artifact-root",
                    (tmp / "artifacts").as_uri(),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(mlflow_port),
                    "--workers",
                    str(args.workers),
                ],
                # Its job runner (7 polling huey consumers) would load the CPUs all along.
                {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                tmp,
                f"{mlflow_base}/health",
            )
        )

        params = {"experiment": EXPERIMENT, "filter_string": FILTER, "max_results": MAX_RESULTS}
        body = {"experiment_ids": [exp_id], "filter": FILTER, "max_results": MAX_RESULTS}

        async def ours(c: httpx.AsyncClient) -> httpx.Response:
            return await c.get(f"{api_base}/mlflow/runs", params=params)

        async def ours_plain(c: httpx.AsyncClient) -> httpx.Response:
            return await c.get(f"{plain_base}/mlflow/runs", params=params)

        async def theirs(c: httpx.AsyncClient) -> httpx.Response:
            return await c.post(f"{mlflow_base}/api/2.0/mlflow/runs/search", json=body)

        a = httpx.get(f"{api_base}/mlflow/runs", params=params, timeout=60).json()
        b = httpx.post(f"{mlflow_base}/api/2.0/mlflow/runs/search", json=body, timeout=60).json()
        same_ids = [r["run_id"] for r in a["data"]] == [r["info"]["run_id"] for r in b.get("runs", [])]
        results: list[LoadResult] = []
        targets = ((API_PLAIN, ours_plain), (API, ours), (MLFLOW, theirs))
        by_target = {API: servers[0], API_PLAIN: servers[1], MLFLOW: servers[2]}
        for target, make in targets:
            run_load(target, make, 2, args.warmup, 60)
        for level in levels:
            # Alternate short rounds so that every server sees the same background load.
            merged = {t: LoadResult(t, level, 0, 0, 0.0, [], -1) for t, _ in targets}
            per_round = max(1, args.requests // args.rounds)
            for _ in range(args.rounds):
                for target, make in targets:
                    cpu0 = by_target[target].cpu_seconds()
                    r = run_load(target, make, level, per_round, args.duration / args.rounds)
                    m = merged[target]
                    m.cpu_s += by_target[target].cpu_seconds() - cpu0
                    m.requests += r.requests
                    m.errors += r.errors
                    m.seconds += r.seconds
                    m.latencies_ms += r.latencies_ms
                    m.rows_per_response = max(m.rows_per_response, r.rows_per_response)
                    m.first_error = m.first_error or r.first_error
            for target, _ in targets:
                r = merged[target]
                logger.info(
                    "%-13s c=%-2d %4d req %d err  p50 %.1f  p95 %.1f  p99 %.1f ms  %.1f req/s",
                    target,
                    level,
                    r.requests,
                    r.errors,
                    r.pct(0.5),
                    r.pct(0.95),
                    r.pct(0.99),
                    r.rps,
                )
                results.append(r)
        load_after = "/".join(f"{x:.2f}" for x in os.getloadavg())
        write_report(args.out, args, info, created, n_matching, results, same_ids, load_before, load_after)
        logger.info("wrote %s", args.out)
    finally:
        for s in servers:
            s.stop()
        if args.keep:
            logger.info("kept database %s", db)
        else:
            drop_database(db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
