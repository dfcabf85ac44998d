"""Benchmark: the cost of logging metrics to MLflow, naive vs buffered, and of log_model formats.

1. Metrics, on PostgreSQL (a database created for the run and dropped afterwards; psycopg2 as
   user ``postgres`` on 127.0.0.1:5432) and, with ``--sqlite``, on SQLite too. One simulated
   training = ``--epochs`` x (``--steps`` per-step values of one metric + 5 epoch metrics):

   * naive: ``MlflowClient.log_metric`` once per value;
   * buffered: ``MLflowTracker.log_metrics`` per step + ``flush()`` once per epoch (one
     ``log_batch`` per epoch).

   Each is repeated ``--repeats`` times (a new run each time); the median is reported as total
   seconds and milliseconds per value. Every value is read back and counted.

2. ``MLflowTracker.log_model`` of the project's HybridCNNLSTM (window 60, 22 features, default
   ModelConfig) with ``serialization_format="pickle"`` and ``"pt2"``, on SQLite, explicit pip
   requirements in both cases.

    .venv/bin/python bench/bench_tracking.py --sqlite          # writes bench/results/tracking.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import admin_connection as _admin, create_database as _create_database, drop_database  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from backend.ml_engine.config import Settings  # noqa: E402
from backend.ml_engine.mlflow_integration import MLflowTracker, resolve_tracking_uri  # noqa: E402

EPOCH_METRICS = ("train_loss", "val_loss", "val_accuracy", "val_f1", "learning_rate")


def postgres_version() -> str:
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0]
    conn.close()
    return version


def naive(client: MlflowClient, experiment_id: str, epochs: int, steps: int) -> tuple[float, str]:
    run_id = client.create_run(experiment_id, run_name="naive").info.run_id
    started = time.perf_counter()
    for epoch in range(epochs):
        for s in range(steps):
            step = epoch * steps + s
            client.log_metric(run_id, "batch_loss", 1.0 / (1 + step), step=step)
        for i, key in enumerate(EPOCH_METRICS):
            client.log_metric(run_id, key, 0.1 * i + epoch, step=epoch)
    elapsed = time.perf_counter() - started
    client.set_terminated(run_id)
    return elapsed, run_id


def buffered(tracker: MLflowTracker, epochs: int, steps: int) -> tuple[float, str]:
    run_id = tracker.start_run(run_name="buffered")
    started = time.perf_counter()
    for epoch in range(epochs):
        for s in range(steps):
            step = epoch * steps + s
            tracker.log_metrics({"batch_loss": 1.0 / (1 + step)}, step=step)
        tracker.log_metrics({key: 0.1 * i + epoch for i, key in enumerate(EPOCH_METRICS)}, step=epoch)
        tracker.flush()
    elapsed = time.perf_counter() - started
    tracker.end_run()
    return elapsed, run_id


def count_values(client: MlflowClient, run_id: str) -> int:
    return sum(len(client.get_metric_history(run_id, key)) for key in ("batch_loss", *EPOCH_METRICS))


def bench_store(label: str, uri: str, artifacts: str, epochs: int, steps: int, repeats: int) -> list[dict[str, object]]:
    settings = Settings(mlflow_tracking_uri=uri, mlflow_artifact_location=artifacts)
    tracker = MLflowTracker("bench_tracking", settings=settings)
    client = MlflowClient(tracking_uri=resolve_tracking_uri(uri))
    # warm-up: connections, store caches
    warm = client.create_run(tracker.experiment_id).info.run_id
    client.log_metric(warm, "warm", 1.0)
    client.set_terminated(warm)

    values = epochs * (steps + len(EPOCH_METRICS))
    rows = []
    methods: list[tuple[str, Callable[[], tuple[float, str]]]] = [
        ("naive: `MlflowClient.log_metric` per value", lambda: naive(client, tracker.experiment_id, epochs, steps)),
        ("buffered: `log_metrics` per step + `flush()` per epoch", lambda: buffered(tracker, epochs, steps)),
    ]
    for name, fn in methods:
        times = []
        for _ in range(repeats):
            elapsed, run_id = fn()
            stored = count_values(client, run_id)
            if stored != values:
                raise AssertionError(f"{name}: {stored} values stored, expected {values}")
            times.append(elapsed)
        median = statistics.median(times)
        rows.append(
            {
                "store": label,
                "method": name,
                "values": values,
                "total_s": median,
                "ms_per_value": median / values * 1000,
                "runs": ", ".join(f"{t:.2f}" for t in times),
            }
        )
        print(f"{label:<10} {name:<55} {median:7.2f} s  {median / values * 1000:7.3f} ms/value", flush=True)
    return rows


def bench_log_model(tmp: Path, repeats: int) -> list[dict[str, object]]:
    from backend.ml_engine.model import HybridCNNLSTM, ModelConfig

    cfg = ModelConfig(n_features=22, window=60)
    model = HybridCNNLSTM(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    example = np.random.default_rng(0).standard_normal((8, 60, 22)).astype(np.float32)
    settings = Settings(
        mlflow_tracking_uri=f"sqlite:///{tmp}/models.db", mlflow_artifact_location=str(tmp / "artifacts")
    )
    tracker = MLflowTracker("bench_log_model", settings=settings)
    rows = []
    for fmt in ("pickle", "pt2"):
        times, loads = [], []
        for _ in range(repeats):
            with tracker.run(run_name=fmt):
                started = time.perf_counter()
                uri = tracker.log_model(model, "model", input_example=example, serialization_format=fmt)  # type: ignore[arg-type]
                times.append(time.perf_counter() - started)
            started = time.perf_counter()
            loaded = tracker.load_model(uri)
            loads.append(time.perf_counter() - started)
        with torch.no_grad():
            x = torch.from_numpy(example)
            diff = float((loaded(x) - model.eval()(x)).abs().max())
        rows.append(
            {
                "format": fmt,
                "params": n_params,
                "log_s": statistics.median(times),
                "load_s": statistics.median(loads),
                "runs": ", ".join(f"{t:.2f}" for t in times),
                "loaded_type": type(loaded).__name__,
                "max_abs_diff": diff,
            }
        )
        print(
            f"log_model {fmt:<7} {statistics.median(times):6.2f} s, load {statistics.median(loads):5.2f} s ({type(loaded).__name__})",
            flush=True,
        )
    return rows


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpus} CPUs, {cpu}, {platform.system()} {platform.release()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=50, help="per-step values per epoch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sqlite", action="store_true", help="also measure the embedded SQLite store")
    parser.add_argument("--skip-models", action="store_true", help="skip the log_model format comparison")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "tracking.md"))
    args = parser.parse_args()

    logging.basicConfig(level=logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    started_at = dt.datetime.now(dt.UTC)
    load_before = os.getloadavg()
    rows: list[dict[str, object]] = []
    dbname = _create_database("bench_tracking")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
            rows += bench_store(
                "PostgreSQL",
                f"postgresql://postgres@127.0.0.1:5432/{dbname}",
                f"{tmp}/pg-art",
                args.epochs,
                args.steps,
                args.repeats,
            )
            if args.sqlite:
                rows += bench_store(
                    "SQLite", f"sqlite:///{tmp}/bench.db", f"{tmp}/sqlite-art", args.epochs, args.steps, args.repeats
                )
            model_rows = [] if args.skip_models else bench_log_model(Path(tmp), args.repeats)
    finally:
        drop_database(dbname)
    load_after = os.getloadavg()

    values = args.epochs * (args.steps + len(EPOCH_METRICS))
    cmd = " ".join([".venv/bin/python", "bench/bench_tracking.py", *map(shlex.quote, sys.argv[1:])])
    lines = [
        "# Tracking benchmark: metric logging and log_model cost",
        "",
        f"- command: `{cmd}`",
        f"- date: {started_at:%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}",
        f"- load average (1/5/15 min) at start: {'/'.join(f'{x:.2f}' for x in load_before)}, at end: "
        f"{'/'.join(f'{x:.2f}' for x in load_after)} (other work on the machine slows the timings)",
        f"- software: Python {platform.python_version()}, MLflow {mlflow.__version__}, torch {torch.__version__}, "
        f"PostgreSQL {postgres_version()} on 127.0.0.1 (fresh database, dropped afterwards)",
        f"- workload: {args.epochs} epochs x ({args.steps} per-step values of `batch_loss` + "
        f"{len(EPOCH_METRICS)} epoch metrics) = {values} values per run; median of {args.repeats} runs; "
        "every value read back and counted",
        "",
        "## Metrics: one call per value vs buffered",
        "",
        "| store | method | values | total s (median) | ms per value | runs (s) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['store']} | {r['method']} | {r['values']} | {r['total_s']:.2f} | {r['ms_per_value']:.3f} | {r['runs']} |"
        )
    by_store: dict[str, dict[str, float]] = {}
    for r in rows:
        by_store.setdefault(str(r["store"]), {})["naive" if str(r["method"]).startswith("naive") else "buffered"] = (
            float(r["total_s"])  # type: ignore[arg-type]
        )
    lines.append("")
    for store, t in by_store.items():
        if "naive" in t and "buffered" in t and t["buffered"] > 0:
            lines.append(
                f"- {store}: buffered logging is {t['naive'] / t['buffered']:.0f}x faster "
                f"({t['naive']:.2f} s -> {t['buffered']:.2f} s per training of {values} values; "
                f"{args.epochs} `log_batch` calls instead of {values} `log_metric` calls)."
            )
    if model_rows:
        lines += [
            "",
            "## log_model: pickle vs pt2 (HybridCNNLSTM, default ModelConfig, T=60, F=22, SQLite store)",
            "",
            "| serialization_format | parameters | log_model s (median) | load_model s (median) | log runs (s) | loaded as | max abs diff vs original |",
            "|---|---:|---:|---:|---|---|---:|",
        ]
        for r in model_rows:
            lines.append(
                f"| {r['format']} | {r['params']:,} | {r['log_s']:.2f} | {r['load_s']:.2f} | {r['runs']} | "
                f"`{r['loaded_type']}` | {r['max_abs_diff']:.1e} |"
            )
        lines += [
            "",
            "`MLflowTracker.log_model` defaults to pickle (see the module docstring of "
            "`backend/ml_engine/mlflow_integration/mlflow_tracker.py`): pt2 runs `torch.export` on every "
            "log and loads back as a graph module, not the model class; the ONNX file is the serving format.",
        ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
