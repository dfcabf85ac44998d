"""Benchmark: the REST API under a concurrent read load while a training job runs in the worker.

A real uvicorn process and a real job worker over one PostgreSQL database (created for the run,
dropped afterwards) with 2,000 runs in `model_training`. The same bounded read load (a mix of
`GET /mlflow/runs` with a filter, `GET /models`, `GET /jobs`, `GET /health`; concurrency 8, at most
1,500 requests or 60 s) runs twice: with the worker idle (the anchor) and while `POST /train`
trains the default model on the bundled candles. Reports throughput, p50/p99 and errors of each,
and whether the training finished. Target: zero errors.

    .venv/bin/python bench/bench_api_load.py
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
from bench_api import FILTER, TOKEN, Server, bulk_insert_runs, create_database, drop_database, free_port, run_load
from common import REPO, write_report
from mlflow import MlflowClient

from backend.ml_engine.mlflow_integration import ensure_project_experiments, resolve_tracking_uri

logger = logging.getLogger("bench_api_load")


def make_requests(base: str, job_id: str | None):
    paths = itertools.cycle(
        [
            ("/mlflow/runs", {"experiment": "model_training", "filter_string": FILTER, "max_results": 50}),
            ("/models", None),
            ("/jobs", None),
            ("/health", None),
            *([(f"/jobs/{job_id}", None)] if job_id else []),
        ]
    )

    async def request(client: httpx.AsyncClient) -> httpx.Response:
        path, params = next(paths)
        return await client.get(base + path, params=params)

    return request


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--requests", type=int, default=1500)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    db = create_database()
    url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    tmp = Path(tempfile.mkdtemp(prefix="bench_api_load_"))
    servers: list[Server] = []
    try:
        client = MlflowClient(tracking_uri=resolve_tracking_uri(url))
        exp_id = ensure_project_experiments(client, str(tmp / "artifacts"))["model_training"]
        bulk_insert_runs(url, exp_id, (tmp / "artifacts").as_uri(), args.runs, seed=3)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ML_", "MLFLOW_"))}
        env.update(
            {
                "PYTHONPATH": str(REPO),
                "MLFLOW_TRACKING_URI": url,
                "MLFLOW_ARTIFACT_LOCATION": str(tmp / "artifacts"),
                "ML_JOBS_DATABASE_URL": url,
                "ML_HUEY_SQLITE_PATH": str(tmp / "huey.db"),
                "ML_API_TOKEN": TOKEN,
                "ML_OUTPUT_DIR": str(tmp / "outputs"),
                "ML_DEVICE": "cpu",
            }
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}/api/ml-management"
        servers.append(
            Server(
                "api",
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "backend.api.main:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                env,
                tmp,
                f"{base}/experiments",
            )
        )
        servers.append(Server("worker", [sys.executable, "-m", "backend.services.worker"], env, tmp, f"{base}/health"))

        logger.info("anchor: read load with the worker idle")
        idle = run_load("idle", make_requests(base, None), args.concurrency, args.requests, args.duration)

        http = httpx.Client(timeout=30)
        resp = http.post(
            f"{base}/train",
            json={"epochs": args.epochs, "data_source": "sample"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        resp.raise_for_status()
        job_id = resp.json()["id"]
        deadline = time.monotonic() + 120
        while http.get(f"{base}/jobs/{job_id}").json()["status"] != "running":
            if time.monotonic() > deadline:
                raise RuntimeError("the training job did not start within 120 s")
            time.sleep(0.5)
        logger.info("read load while job %s trains", job_id)
        busy = run_load("training", make_requests(base, job_id), args.concurrency, args.requests, args.duration)
        job = http.get(f"{base}/jobs/{job_id}").json()
        logger.info("job after the load: %s epoch %s", job["status"], job.get("epoch"))
        deadline = time.monotonic() + 900
        while job["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(2)
            job = http.get(f"{base}/jobs/{job_id}").json()
    finally:
        for s in servers:
            s.stop()
        drop_database(db)

    rows = []
    for r in (idle, busy):
        rows.append(
            f"| {'worker idle (anchor)' if r is idle else 'training job running'} | {args.concurrency} | "
            f"{r.requests} | {r.errors} | {r.rps:.1f} | {r.pct(0.5):.1f} | {r.pct(0.99):.1f} | "
            f"{max(r.latencies_ms):.1f} |"
        )
    body = f"""
One uvicorn process and one job worker over one PostgreSQL database with {args.runs:,} runs. Read load: a
cycle of `GET /mlflow/runs` (filter `{FILTER}`, `max_results=50`), `GET /models`, `GET /jobs`,
`GET /health` (and `GET /jobs/<id>` while training); Python asyncio + httpx on loopback, concurrency
{args.concurrency}, at most {args.requests} requests or {args.duration:.0f} s per phase. The training: `POST /train`
with {args.epochs} epochs of the default model on the bundled candles, in the worker process.

| phase | concurrency | requests | errors | requests/s | p50 ms | p99 ms | max ms |
|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Target: zero errors -> {"met" if idle.errors == 0 and busy.errors == 0 else "NOT met: " + (busy.first_error or idle.first_error)}.
The training job ended `{job["status"]}` (epoch {job.get("epoch")} of {job.get("epochs") or args.epochs}).
Two CPU cores serve the API, PostgreSQL, the load generator and the training at once, so the
training phase's latencies include competing for the CPU with the training itself.
"""
    path = write_report("api_load", "REST API under read load while a training job runs", body)
    print(path.read_text())
    return 0 if idle.errors == 0 and busy.errors == 0 and job["status"] == "finished" else 1


if __name__ == "__main__":
    raise SystemExit(main())
