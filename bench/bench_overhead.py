"""Benchmark: what share of `train_model`'s wall time is not forward/backward passes.

One `TrainingOrchestrator.train_model` with the default configuration on the bundled candles and
the embedded SQLite tracking store (what `make demo` uses, at the default model size): data
loading and validation, features, windows, the training loop, evaluation, baselines, backtest,
ONNX export and parity, plots, metadata, and MLflow (run, params, dataset inputs, metrics,
artifacts, log_model, registry version). Inside that very call the passes are timed with global
PyTorch hooks: every forward of the HybridCNN-LSTM (training, validation, test, export), every
backward, every optimiser step. Overhead = 1 - passes / wall, from one run, so the machine's
noise between runs does not enter the ratio. Target: at most 15 %.

    .venv/bin/python bench/bench_overhead.py --epochs 5
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time

import torch
import torch.optim.optimizer as optim_hooks
from common import write_report

from backend.ml_engine.config import SAMPLE_DATA_DIR, Settings
from backend.ml_engine.model import HybridCNNLSTM
from backend.ml_engine.training_orchestrator import TrainingOrchestrator, TrainingRequest


class PassClock:
    """Seconds spent in model forwards, backwards and optimiser steps, via global hooks."""

    def __init__(self) -> None:
        self.seconds = {"forward": 0.0, "backward": 0.0, "optimizer step": 0.0}
        self._starts: dict[str, float] = {}
        self._handles = [
            torch.nn.modules.module.register_module_forward_pre_hook(self._fwd_pre),
            torch.nn.modules.module.register_module_forward_hook(self._fwd_post),
            optim_hooks.register_optimizer_step_pre_hook(lambda *a: self._start("optimizer step")),
            optim_hooks.register_optimizer_step_post_hook(lambda *a: self._stop("optimizer step")),
        ]
        self._backward = torch.Tensor.backward
        clock = self

        def timed_backward(tensor, *args, **kwargs):
            t = time.perf_counter()
            try:
                return clock._backward(tensor, *args, **kwargs)
            finally:
                clock.seconds["backward"] += time.perf_counter() - t

        torch.Tensor.backward = timed_backward

    def _start(self, key: str) -> None:
        self._starts[key] = time.perf_counter()

    def _stop(self, key: str) -> None:
        self.seconds[key] += time.perf_counter() - self._starts.pop(key)

    def _fwd_pre(self, module, args) -> None:
        if isinstance(module, HybridCNNLSTM):
            self._start("forward")

    def _fwd_post(self, module, args, output) -> None:
        if isinstance(module, HybridCNNLSTM) and "forward" in self._starts:
            self._stop("forward")

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        torch.Tensor.backward = self._backward

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=None, help="default: the settings' default (ML_EPOCHS, 20)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            mlflow_tracking_uri=f"sqlite:///{tmp}/mlflow.db",
            mlflow_artifact_location=f"{tmp}/artifacts",
            output_dir=f"{tmp}/outputs",
            data_path=str(SAMPLE_DATA_DIR),
        )
        overrides = {"epochs": args.epochs} if args.epochs else {}
        request = TrainingRequest.from_settings(settings, **overrides)
        orchestrator = TrainingOrchestrator(settings)
        clock = PassClock()
        t = time.perf_counter()
        try:
            result = orchestrator.train_model_sync(run_name="overhead", request=request)
        finally:
            wall = time.perf_counter() - t
            clock.close()
        if not result["success"]:
            raise SystemExit(result["error"])
        epochs_run = len(result["history"])
        passes = clock.total

    share = 1 - passes / wall
    body = f"""
`train_model` with the default configuration ({epochs_run} epochs ran; window {request.window}, batch {request.trainer.batch_size},
default `ModelConfig`, the four bundled pairs; windows train/val/test = {result["rows"]["train"]}/{result["rows"]["val"]}/{result["rows"]["test"]}),
embedded SQLite tracking store; the passes timed inside the same call.

| what | seconds |
|---|---:|
| `train_model` wall time (everything) | {wall:.2f} |
| of which the trainer's `fit` | {result["fit_seconds"]:.2f} |
| passes: model forwards (train, validation, test, export) | {clock.seconds["forward"]:.2f} |
| passes: backwards | {clock.seconds["backward"]:.2f} |
| passes: optimiser steps | {clock.seconds["optimizer step"]:.2f} |
| passes in all (anchor) | {passes:.2f} |
| **overhead: everything that is not a pass** | **{wall - passes:.2f} ({100 * share:.1f} %)** |

Target: overhead at most 15 % of wall time -> {"met" if share <= 0.15 else "NOT met"}.
"""
    path = write_report("overhead", "End-to-end train_model overhead (everything but forward/backward passes)", body)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
