"""Benchmark: every model family on the bundled candles: training throughput, serving latency from raw
candles through the Predictor, and the leaderboard's wall time.

For each family (default config, window 60, horizon 6, the four bundled pairs, seed 7):

* training: ``TrainingOrchestrator`` trains it with ``--epochs`` (networks; early stopping applies)
  into a temporary SQLite store and registers a version; throughput = training windows x epochs
  run / fit seconds for the networks, training windows / fit seconds for the tabular families
  (one fit over the rows; LightGBM's boosting rounds and early stopping inside it);
* serving: ``Predictor.from_model_uri("models:/bench_<family>/1")`` (the version's ONNX file in ONNX
  Runtime, 1 thread; the tabular families compute their columns in numpy first), ``predict`` on the
  last 300 raw ETH/BTC candles (validation, features, normalisation, model, softmax), ``--calls``
  timed calls after ``--warmup``, the families interleaved call by call (same machine noise for all).

Then ``python -m backend.ml_engine.leaderboard`` with its defaults on the bundled data (every family,
3 folds, 5 epochs, 1000 resamples; ``--leaderboard quick`` for ``--quick``, ``skip`` to leave it
out), tracked into the same temporary store: its wall time and where it goes.

    .venv/bin/python bench/bench_families.py            # writes bench/results/families.md
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

# E402: these imports come after the sys.path entry above, on purpose
from common import write_report  # noqa: E402

from backend.ml_engine.config import SAMPLE_DATA_DIR, Settings  # noqa: E402
from backend.ml_engine.data import load_candles  # noqa: E402
from backend.ml_engine.families import family_names, get_family  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3, help="most epochs of the networks (default 3)")
    ap.add_argument("--calls", type=int, default=500, help="timed predict calls per family (default 500)")
    ap.add_argument("--warmup", type=int, default=50, help="untimed calls first (default 50)")
    ap.add_argument("--rows", type=int, default=300, help="raw candles passed to predict (default 300)")
    ap.add_argument("--leaderboard", choices=["default", "quick", "skip"], default="default")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from backend.ml_engine.leaderboard import QUICK_OVERRIDES, LeaderboardConfig, run_leaderboard
    from backend.ml_engine.predictor import Predictor
    from backend.ml_engine.training import TrainingRequest
    from backend.ml_engine.training_orchestrator import TrainingOrchestrator

    t_all = time.perf_counter()
    families = family_names()
    train_rows: list[str] = []
    predictors: dict[str, Predictor] = {}
    with tempfile.TemporaryDirectory(prefix="bench-families-") as tmp:
        root = Path(tmp)
        settings = Settings(
            mlflow_tracking_uri=f"sqlite:///{root}/mlflow.db",
            mlflow_artifact_location=str(root / "artifacts"),
            output_dir=str(root / "outputs"),
            cache_dir=str(root / "cache"),
        )
        for name in families:
            request = TrainingRequest.from_settings(
                settings,
                family=name,
                epochs=args.epochs,
                data=str(SAMPLE_DATA_DIR),
                window=60,
                horizon=6,
                seed=7,
                batch_size=256,
            )
            t0 = time.perf_counter()
            result = TrainingOrchestrator(settings).train_model_sync(
                model_name=f"bench_{name}", run_name=f"bench_{name}", request=request
            )
            wall = time.perf_counter() - t0
            if not result["success"]:
                print(f"{name}: training failed: {result.get('error')}", file=sys.stderr)
                return 1
            n_train = int(result["rows"]["train"])
            network = get_family(name).input_kind == "window"
            epochs = len(result["history"]) if network else 1
            fit_s = float(result["fit_seconds"])
            unit = f"{epochs} epochs" if network else "one fit"
            train_rows.append(
                f"| {name} | {result.get('n_parameters') or 0:,} | {n_train:,} | {unit} | {fit_s:.1f} | "
                f"{n_train * epochs / fit_s:,.0f} | {wall:.1f} | {result['test_metrics']['accuracy']:.3f} |"
            )
            predictors[name] = Predictor.from_model_uri(
                f"models:/bench_{name}/{result['version']}", settings=settings, refresh_interval_s=0
            )
            print(f"{name}: trained in {wall:.1f} s (fit {fit_s:.1f} s)", flush=True)

        series = load_candles(str(SAMPLE_DATA_DIR), symbols=["ETH/BTC"], timeframe="5m")[0]
        candles = (
            series.frame[["timestamp", "open", "high", "low", "close", "volume"]].tail(args.rows).reset_index(drop=True)
        )
        backends = {name: p.backend for name, p in predictors.items()}
        for p in predictors.values():
            for _ in range(args.warmup):
                p.predict(candles)
        ms = {name: np.empty(args.calls) for name in families}
        clock = time.perf_counter_ns
        for i in range(args.calls):
            k = i % len(families)
            for name in families[k:] + families[:k]:
                t0 = clock()
                predictors[name].predict(candles)
                ms[name][i] = (clock() - t0) / 1e6
        latency_rows = [
            f"| {name} | {backends[name]} | {np.percentile(ms[name], 50):.3f} | {np.percentile(ms[name], 90):.3f} | "
            f"{np.percentile(ms[name], 99):.3f} | {ms[name].mean():.3f} |"
            for name in families
        ]
        predictors.clear()

        leaderboard_lines: list[str] = []
        if args.leaderboard != "skip":
            overrides = dict(QUICK_OVERRIDES) if args.leaderboard == "quick" else {}
            cfg = LeaderboardConfig.from_settings(settings, data=str(SAMPLE_DATA_DIR), **overrides)
            t0 = time.perf_counter()
            lb = run_leaderboard(cfg, settings=settings, output_dir=root / "leaderboard")
            lb_wall = time.perf_counter() - t0
            cli = "python -m backend.ml_engine.leaderboard" + (" --quick" if args.leaderboard == "quick" else "")
            leaderboard_lines = [
                "",
                "### The leaderboard's wall time",
                "",
                f"`{cli}` on the bundled data (families {', '.join(families)}; {cfg.folds} folds, at most "
                f"{cfg.epochs} epochs, {cfg.n_boot} resamples, MLflow run in a SQLite store): **{lb_wall:.0f} s** wall "
                f"({lb.n_predictions:,} out-of-sample predictions).",
                "",
                "| model | training s (all folds) | inference p50 ms (model alone) |",
                "|---|---:|---:|",
                *[
                    f"| {r['name']} | {r['train_seconds']:.1f} | "
                    f"{'n/a' if r['latency_p50_ms'] is None else format(r['latency_p50_ms'], '.3f')} |"
                    for r in lb.rows
                    if r["kind"] == "family"
                ],
                "",
                f"Verdict: {lb.verdict}",
            ]

    body = "\n".join(
        [
            f"Every family with its default config on the four bundled 5m pairs (window 60, horizon 6, seed 7, "
            f"at most {args.epochs} epochs for the networks), trained and registered by `TrainingOrchestrator` in a "
            f"temporary SQLite store; {time.perf_counter() - t_all:.0f} s in all.",
            "",
            "### Training throughput",
            "",
            "| family | parameters | training windows | passes | fit s | samples / s | train + log + register s | "
            "test accuracy |",
            "|---|---:|---:|---|---:|---:|---:|---:|",
            *train_rows,
            "",
            "samples / s = training windows x epochs run / fit seconds (networks, early stopping on val_f1); "
            "training windows / fit seconds for the tabular families (LightGBM: boosting with early stopping; "
            "logistic regression: lbfgs).",
            "",
            "### Serving latency from raw candles (Predictor)",
            "",
            f"`Predictor.from_model_uri('models:/bench_<family>/1').predict(candles)` on the last {args.rows} raw "
            f"ETH/BTC candles: validation, features, normalisation, model, softmax. {args.calls} timed calls per "
            f"family after {args.warmup} warm-up calls, the families interleaved call by call.",
            "",
            "| family | backend | p50 ms | p90 ms | p99 ms | mean ms |",
            "|---|---|---:|---:|---:|---:|",
            *latency_rows,
            *leaderboard_lines,
        ]
    )
    path = write_report("families", "Model families: training throughput, serving latency, leaderboard", body)
    print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
