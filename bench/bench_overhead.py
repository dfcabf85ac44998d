"""Benchmark: what share of `train_model`'s wall time is not forward/backward passes.

One `TrainingOrchestrator.train_model` with the default configuration on the bundled candles and
the embedded SQLite tracking store (what `make demo` uses, at the default model size): data
loading and validation, features, windows, the training loop, evaluation, baselines, backtest,
ONNX export and parity, plots, metadata, and MLflow (run, params, dataset inputs, metrics,
artifacts, log_model, registry version). The anchor, measured in the same run on the same
batches: the bare passes that training cannot avoid, i.e. forward + backward + optimiser step
for every training batch of every epoch that ran, and forward passes over the validation split
every epoch and over the test split once. Overhead = 1 - passes / wall. Target: at most 15 %.

    .venv/bin/python bench/bench_overhead.py --epochs 5
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch
from common import write_report

from backend.ml_engine.config import SAMPLE_DATA_DIR, Settings
from backend.ml_engine.data import load_candles
from backend.ml_engine.dataset import prepare_dataset
from backend.ml_engine.model import HybridCNNLSTM
from backend.ml_engine.trainer import compute_class_weights
from backend.ml_engine.training_orchestrator import TrainingOrchestrator, TrainingRequest


def bare_passes(request: TrainingRequest, epochs: int) -> float:
    """Seconds of the passes alone, same data, model, batch size and thread count as training."""
    spec = request.data
    series = load_candles(spec.path, symbols=spec.symbols or None, timeframe=spec.timeframe,
                          max_fill_gap=spec.max_fill_gap, min_rows=request.window + request.labels.horizon + 1)
    prepared = prepare_dataset(series, request.features, request.labels, request.split, request.window)
    model = HybridCNNLSTM(request.model)
    opt = torch.optim.AdamW(model.parameters(), lr=request.trainer.learning_rate,
                            weight_decay=request.trainer.weight_decay)
    weights = torch.tensor(compute_class_weights(prepared.train.labels, 3), dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    bs = request.trainer.batch_size
    gen = torch.Generator().manual_seed(0)
    seconds = 0.0
    for _ in range(epochs):
        model.train()
        for xb, yb in prepared.train.batches(bs, shuffle=True, generator=gen):
            t = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), request.trainer.grad_clip_norm)
            opt.step()
            seconds += time.perf_counter() - t
        model.eval()
        with torch.no_grad():
            for xb, _ in prepared.val.batches(bs):
                t = time.perf_counter()
                model(xb)
                seconds += time.perf_counter() - t
    with torch.no_grad():
        for xb, _ in prepared.test.batches(bs):
            t = time.perf_counter()
            model(xb)
            seconds += time.perf_counter() - t
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=None, help="default: the settings' default (ML_EPOCHS, 20)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(mlflow_tracking_uri=f"sqlite:///{tmp}/mlflow.db", mlflow_artifact_location=f"{tmp}/artifacts",
                            output_dir=f"{tmp}/outputs", data_path=str(SAMPLE_DATA_DIR))
        overrides = {"epochs": args.epochs} if args.epochs else {}
        request = TrainingRequest.from_settings(settings, **overrides)
        orchestrator = TrainingOrchestrator(settings)
        t = time.perf_counter()
        result = orchestrator.train_model_sync(run_name="overhead", request=request)
        wall = time.perf_counter() - t
        if not result["success"]:
            raise SystemExit(result["error"])
        epochs_run = len(result["history"])
        saved = TrainingRequest.from_dict(__import__("json").loads(
            (Path(result["output_dir"]) / "request.json").read_text()))
        # The trainer's thread count, so the anchor runs under the same conditions.
        cpus = __import__("os").cpu_count() or 1
        torch.set_num_threads(saved.trainer.num_threads or max(1, min(torch.get_num_threads(), cpus // 2)))
        passes = bare_passes(saved, epochs_run)

    share = 1 - passes / wall
    body = f"""
`train_model` with the default configuration ({epochs_run} epochs ran; window {saved.window}, batch {saved.trainer.batch_size},
default `ModelConfig`, the four bundled pairs; rows train/val/test = {result['rows']['train']}/{result['rows']['val']}/{result['rows']['test']}),
embedded SQLite tracking store, against the bare passes on the same batches in the same run.

| what | seconds |
|---|---:|
| `train_model` wall time (everything) | {wall:.2f} |
| of which the trainer's `fit` | {result['fit_seconds']:.2f} |
| bare forward + backward + optimiser steps, and validation/test forwards (anchor) | {passes:.2f} |
| **overhead: everything that is not a pass** | **{wall - passes:.2f} ({100 * share:.1f} %)** |

Target: overhead at most 15 % of wall time -> {'met' if share <= 0.15 else 'NOT met'}.
"""
    path = write_report("overhead", "End-to-end train_model overhead (everything but forward/backward passes)", body)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
