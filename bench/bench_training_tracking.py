"""Benchmark: what full MLflow tracking adds to a real training, on PostgreSQL.

The same training (default model, bundled real candles, same seed) runs with tracking off,
with per-epoch logging, and with every batch logging its loss; each mode twice, in the order
off, epoch, batch, batch, epoch, off, so slow drift of a shared machine cancels out; the
faster of the two is kept. Beside it, the cost of naive one-call-per-value logging
(``MlflowClient.log_metric``) is measured in the same run and applied to the number of values
the per-batch run logged.

Targets (issue 3): at most 3 % extra wall time with per-epoch logging, at most 5 % when every
batch logs its loss.

    .venv/bin/python bench/bench_training_tracking.py --epochs 3
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from common import temp_postgres_database, write_report

from backend.ml_engine.config import SAMPLE_DATA_DIR, Settings
from backend.ml_engine.training_orchestrator import TrainingOrchestrator


def train(settings: Settings, mode: str, epochs: int, run_name: str) -> dict:
    every = {"off": 10**9, "epoch": 10**9, "batch": 1}[mode]
    orchestrator = TrainingOrchestrator(settings, tracking=mode != "off")
    t = time.perf_counter()
    result = orchestrator.train_model_sync(
        run_name=run_name,
        epochs=epochs,
        seed=7,
        trainer_kwargs={"log_every_n_steps": every, "early_stopping_patience": 10**6},
    )
    result["wall"] = time.perf_counter() - t
    if not result["success"]:
        raise RuntimeError(result["error"])
    return result


def naive_cost_per_value(uri: str, n: int = 300) -> float:
    from mlflow import MlflowClient

    from backend.ml_engine.mlflow_integration import resolve_tracking_uri

    client = MlflowClient(tracking_uri=resolve_tracking_uri(uri))
    exp = client.create_experiment("naive_logging_probe")
    run = client.create_run(exp)
    t = time.perf_counter()
    for i in range(n):
        client.log_metric(run.info.run_id, "batch_loss", 1.0 / (i + 1), step=i)
    per_value = (time.perf_counter() - t) / n
    client.set_terminated(run.info.run_id)
    return per_value


def count_logged(uri: str, run_id: str) -> int:
    from mlflow import MlflowClient

    from backend.ml_engine.mlflow_integration import resolve_tracking_uri

    client = MlflowClient(tracking_uri=resolve_tracking_uri(uri))
    run = client.get_run(run_id)
    return sum(len(client.get_metric_history(run_id, k)) for k in run.data.metrics)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)

    with temp_postgres_database("bench_train") as uri, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            mlflow_tracking_uri=uri,
            mlflow_artifact_location=str(Path(tmp) / "artifacts"),
            output_dir=str(Path(tmp) / "outputs"),
            data_path=str(SAMPLE_DATA_DIR),
        )
        train(settings, "epoch", 1, "warmup")  # creates the MLflow schema and warms caches; not counted
        walls: dict[str, list[float]] = {"off": [], "epoch": [], "batch": []}
        fits: dict[str, list[float]] = {"off": [], "epoch": [], "batch": []}
        last: dict[str, dict] = {}
        for i, mode in enumerate(["off", "epoch", "batch", "batch", "epoch", "off"]):
            r = train(settings, mode, args.epochs, f"{mode}_{i}")
            walls[mode].append(r["wall"])
            fits[mode].append(r["fit_seconds"])
            last[mode] = r
            print(f"{mode:6s} wall {r['wall']:.2f} s  fit {r['fit_seconds']:.2f} s", flush=True)
        values_batch = count_logged(uri, last["batch"]["run_id"])
        values_epoch = count_logged(uri, last["epoch"]["run_id"])
        naive = naive_cost_per_value(uri)

    base = min(walls["off"])
    rows = []
    for mode in ("off", "epoch", "batch"):
        w = min(walls[mode])
        rows.append(f"| {mode} | {w:.2f} | {min(fits[mode]):.2f} | {100 * (w - base) / base:+.1f} % |")
    extra_naive = naive * values_batch
    body = f"""
Same training three ways: default `ModelConfig`, window 60, the four bundled pairs, {args.epochs} epochs,
seed 7, on PostgreSQL (database created for the run). Each mode ran twice (order off, epoch, batch,
batch, epoch, off); the faster run is shown. Wall time is the whole `train_model` call: data,
features, training, evaluation, ONNX export, plots, and for tracked modes the MLflow run, params,
dataset inputs, metrics, artifacts, `log_model` and the registry version.

| tracking | wall s | fit s | extra wall time vs off |
|---|---:|---:|---:|
{chr(10).join(rows)}

Targets: per-epoch at most +3 %, per-batch at most +5 %.

Values logged: {values_epoch} with per-epoch logging, {values_batch} with every batch logging its loss.
Naive one-call-per-value `MlflowClient.log_metric`, measured in the same run on the same database:
{naive * 1000:.2f} ms per value, so the per-batch run's {values_batch} values would have cost
{extra_naive:.1f} s more on their own ({100 * extra_naive / base:.1f} % of the untracked wall time),
against the buffered tracker's measured total above.

Raw wall times (s): off {walls["off"]}, epoch {walls["epoch"]}, batch {walls["batch"]}.
"""
    path = write_report("training_tracking", "MLflow tracking overhead on a real training (PostgreSQL)", body)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
