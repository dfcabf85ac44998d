"""Benchmark: a K-fold walk-forward costs about the sum of its K trainings, not K feature builds.

Loads real 5-minute candles (the bundled four BTC pairs by default), then

1. builds the feature table ONCE (`walk_forward.build_feature_table`: features, labels, valid ends);
2. runs `walk_forward.run_walk_forward` with K folds (default 5, expanding) and the project's default
   HybridCNN-LSTM (window 60, horizon 6), timing per fold: normaliser refit + normalised copy of X
   ("prep"), training, prediction + metrics ("eval");
3. for comparison, times what a naive walk-forward would repeat per fold: `prepare_dataset`
   (features + labels + splits + normaliser) K times, measured, not estimated.

Reports total, sum of trainings, overhead = total - sum(trainings), and the naive K x feature cost.

    .venv/bin/python bench/bench_walk_forward.py                 # writes bench/results/walk_forward.md
    .venv/bin/python bench/bench_walk_forward.py --folds 5 --epochs 1 --days 20
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, write_report

from backend.ml_engine.data import load_candles
from backend.ml_engine.dataset import SplitConfig, prepare_dataset
from backend.ml_engine.features import FeatureConfig
from backend.ml_engine.labels import LabelConfig
from backend.ml_engine.model import HybridCNNLSTM, ModelConfig, count_parameters
from backend.ml_engine.trainer import TrainerConfig
from backend.ml_engine.walk_forward import WalkForwardConfig, build_feature_table, run_walk_forward


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO / "backend" / "ml_engine" / "sample_data"))
    p.add_argument("--days", type=float, default=None, help="last N days of each series (default: all)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--mode", default="expanding", choices=["expanding", "sliding"])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--window", type=int, default=60)
    p.add_argument("--horizon", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--no-report", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    load0 = os.getloadavg()
    t = time.perf_counter()
    series = load_candles(args.data, date_range_days=args.days)
    load_s = time.perf_counter() - t
    rows = sum(len(s.frame) for s in series)

    fcfg, lcfg = FeatureConfig(), LabelConfig(horizon=args.horizon)
    t_total = time.perf_counter()
    table = build_feature_table(series, fcfg, lcfg, args.window)
    model_cfg = ModelConfig(n_features=len(table.feature_names), window=args.window)
    trainer_cfg = TrainerConfig(epochs=args.epochs, batch_size=args.batch_size, early_stopping_patience=None, seed=7)
    wf = run_walk_forward(table, WalkForwardConfig(n_folds=args.folds, mode=args.mode), model_cfg, trainer_cfg)
    total_s = time.perf_counter() - t_total

    # the naive alternative: rebuild features/labels/splits/normaliser for every fold (measured)
    naive = []
    for _ in range(args.folds):
        t = time.perf_counter()
        prepare_dataset(series, fcfg, lcfg, SplitConfig(), args.window)
        naive.append(time.perf_counter() - t)
    load1 = os.getloadavg()

    train_sum = wf.train_seconds
    prep_sum = sum(f.prep_seconds for f in wf.folds)
    eval_sum = sum(f.eval_seconds for f in wf.folds)
    overhead = total_s - train_sum
    params = count_parameters(HybridCNNLSTM(model_cfg))

    lines = [
        f"- data: {len(series)} series ({', '.join(s.symbol for s in series)}), {rows:,} 5m candles "
        f"({args.data}{f', last {args.days:g} days' if args.days else ''}); {table.ends.size:,} valid window ends",
        f"- model: HybridCNN-LSTM defaults ({params:,} parameters), window {args.window}, horizon {args.horizon}, "
        f"{args.epochs} epoch(s) per fold, batch {args.batch_size}, torch threads: trainer default "
        f"(half the CPUs)",
        f"- walk-forward: {args.folds} folds, {args.mode}, purge gap {args.window + args.horizon} rows",
        f"- load average (1 min) at start {load0[0]:.2f}, at end {load1[0]:.2f} (2 shared cores: other "
        "work on the machine slows every timing)",
        "",
        "| fold | train windows | test windows | prep s (normaliser + copy) | train s | eval s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for f in wf.folds:
        lines.append(
            f"| {f.index + 1} | {f.info['train']:,} | {f.info['test']:,} | {f.prep_seconds:.3f} | "
            f"{f.train_seconds:.2f} | {f.eval_seconds:.2f} |"
        )
    lines += [
        "",
        "| quantity | seconds |",
        "|---|---:|",
        f"| loading the candle files (once, outside the walk-forward) | {load_s:.3f} |",
        f"| feature table, built once (features + labels + valid ends) | {table.build_seconds:.3f} |",
        f"| **total walk-forward** (feature table + {args.folds} folds) | **{total_s:.2f}** |",
        f"| **sum of the {args.folds} trainings** | **{train_sum:.2f}** |",
        f"| overhead = total - sum(trainings) | {overhead:.2f} ({100 * overhead / total_s:.1f} % of total) |",
        f"| of which: per-fold prep (normaliser refit + normalised copy of X), all folds | {prep_sum:.3f} |",
        f"| of which: prediction + metrics on the test windows, all folds | {eval_sum:.2f} |",
        f"| naive: `prepare_dataset` once (measured) | {naive[0]:.3f} |",
        f"| naive: {args.folds} x `prepare_dataset` (measured, what recomputing per fold would add) | "
        f"{sum(naive):.3f} |",
        "",
        f"Total / sum of trainings = {total_s / train_sum:.3f}. The walk-forward builds features once "
        f"({table.build_seconds:.3f} s); rebuilding them per fold would have cost {sum(naive):.3f} s "
        f"({args.folds} x {sum(naive) / len(naive):.3f} s). The overhead beyond the trainings is the "
        "one feature build, the cheap per-fold normaliser refit, and predicting the test windows.",
        "",
        "On this data the features are cheap next to training (the vectorised feature code does about "
        "0.8 M candles/s, `bench/results/windowing.md`), so rebuilding them per fold would add little here; "
        "building them once matters for long histories (1 M candles: ~1.3 s per rebuild) and guarantees "
        "that every fold and the production comparison see identical feature rows.",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_report:
        path = write_report("walk_forward", "Walk-forward benchmark: features once, K trainings", body)
        print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
