"""The command line: ``python -m backend.ml_engine.retraining_pipeline run|check-drift|check-performance|serve``."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..cli_args import OneLineParser, non_negative_float, positive_float, positive_int
from ..config import DEFAULT_MODEL_NAME, EXPERIMENT_RETRAINING, Settings
from ..drift import DriftConfig
from ..errors import one_line
from ..walk_forward import WalkForwardConfig
from ._config import TRIGGERS, RetrainingConfig
from ._pipeline import RetrainingPipeline, _is_bad_input
from ._results import STATUS_COMPLETED, STATUS_REFUSED, STATUS_SKIPPED, RetrainingResult

if TYPE_CHECKING:  # pragma: no cover
    from ..trainer import Callback

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_DRIFT",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "CliProgress",
    "build_parser",
    "config_from_args",
    "main",
]


EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_DRIFT, EXIT_REFUSED = 0, 1, 2, 3, 4


_Parser = OneLineParser
_positive_float, _non_negative_float, _positive_int = positive_float, non_negative_float, positive_int


class CliProgress:
    """Progress on stderr: one line per stage, a progress bar per training (fold, final model)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.monotonic()

    def stage(self, message: str) -> None:
        elapsed = int(time.monotonic() - self.started)
        print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {message}", file=self.stream, flush=True)

    def training(self, label: str) -> list[Callback]:
        from ..trainer import ProgressBarCallback

        return [ProgressBarCallback(desc=label, file=self.stream, leave=True)]


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data and model")
    g.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="registered model (default: hybrid_cnn_lstm)")
    g.add_argument("--data", help="live candles: file, folder or postgresql:// URL (default: ML_DATA_PATH)")
    g.add_argument(
        "--symbol",
        action="append",
        help="symbol, e.g. ETH/BTC; repeat for several (default: ML_SYMBOLS, else the production model's)",
    )
    g.add_argument("--timeframe", help="candle timeframe, e.g. 5m")
    g.add_argument("--recent-days", type=_positive_float, help="recent window of the checks in days (default 3)")
    g.add_argument("--reference-data", help="drift reference candles instead of the production model's training data")
    d = p.add_argument_group("drift thresholds")
    d.add_argument("--psi-threshold", type=_non_negative_float, help="minimal PSI of a drifting feature (default 0.2)")
    d.add_argument(
        "--ks-pvalue", type=_positive_float, help="KS p-value below which a feature may drift (default 0.01)"
    )
    d.add_argument(
        "--null-margin",
        type=_non_negative_float,
        help="PSI must exceed this times the reference's own chunk PSI (default 1.25; 0 = off)",
    )
    d.add_argument(
        "--min-drift-share", type=_positive_float, help="share of drifting features that means drift (default 0.25)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="info logging (-v) of every step")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress lines or bars on stderr (cron); the result is printed either way",
    )


def _training(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("retraining")
    g.add_argument("--train-days", type=_positive_float, help="train on the last N days (default 30)")
    g.add_argument("--folds", type=_positive_int, help="walk-forward folds K (default 5)")
    g.add_argument(
        "--fold-mode", choices=["expanding", "sliding"], help="walk-forward training windows (default expanding)"
    )
    g.add_argument("--epochs", type=_positive_int, help="epochs per training (default: ML_EPOCHS)")
    g.add_argument("--batch-size", type=_positive_int, help="batch size (default: ML_BATCH_SIZE)")
    g.add_argument("--lr", type=_positive_float, help="learning rate (default: ML_LEARNING_RATE)")
    g.add_argument("--cooldown-hours", type=_non_negative_float, help="minimal hours between retrainings (default 6)")
    g.add_argument(
        "--performance-margin",
        type=_non_negative_float,
        help="performance_drop: allowed fall of accuracy / macro F1 (default 0.05)",
    )
    g.add_argument("--min-accuracy", type=_non_negative_float, help="promotion gate: minimal walk-forward accuracy")
    g.add_argument(
        "--min-improvement",
        type=_non_negative_float,
        help="promotion gate: the candidate must beat production's macro F1 by more than this (default 0)",
    )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m backend.ml_engine.retraining_pipeline",
        description="Automatic retraining of the trading model: drift / performance / schedule triggers, "
        "walk-forward validation against the production model, gated promotion. Runs are logged to the "
        "MLflow experiment auto_retraining (tag trigger). Defaults come from .env / the environment.",
        epilog="Exit codes: 0 done (or nothing to do), 1 retraining failed, 2 bad input, 3 check-drift found drift, "
        "4 another retraining of the model is running.",
    )
    sub = p.add_subparsers(dest="command", metavar="{run,check-drift,check-performance,serve}", parser_class=_Parser)
    sub.required = True
    r = sub.add_parser(
        "run",
        help="one retraining attempt (cron-friendly)",
        description="One retraining attempt. drift / performance_drop check first and retrain only "
        "when triggered; manual / scheduled always retrain. Lock and cooldown apply.",
    )
    r.add_argument("--trigger", required=True, choices=TRIGGERS, help="why this retraining runs (run tag trigger)")
    r.add_argument("--force", action="store_true", help="skip the trigger check and the cooldown (never the lock)")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    _common(r)
    _training(r)
    c = sub.add_parser(
        "check-drift",
        help="drift report only: per-feature PSI / KS table; exit 3 on drift",
        description="Compare the recent candles with the production model's training data; print the "
        "per-feature table. Exit 0: no drift, 3: drift (0 with --exit-zero).",
    )
    c.add_argument(
        "--output", help="folder for drift_report.json/.csv/.png (default: <output_dir>/drift_checks/<time>)"
    )
    c.add_argument("--json", action="store_true", help="print the report as JSON instead of the table")
    c.add_argument("--log-run", action="store_true", help="also log the report as a run in auto_retraining")
    c.add_argument("--exit-zero", action="store_true", help="exit 0 also when drift is found")
    _common(c)
    pc = sub.add_parser(
        "check-performance",
        help="production accuracy / F1 on recent realised labels",
        description="Evaluate the production model on the recent candles whose horizon has passed.",
    )
    pc.add_argument("--performance-margin", type=_non_negative_float, help="allowed fall (default 0.05)")
    pc.add_argument("--json", action="store_true", help="print the report as JSON")
    _common(pc)
    s = sub.add_parser(
        "serve",
        help="long-lived scheduler (interval or cron) that also checks drift / performance",
        description="Run the retraining scheduler in the foreground (Ctrl-C stops it). Each tick checks "
        "drift, then performance, then retrains on schedule; --check-interval adds check-only ticks. "
        "Ticks are submitted as jobs to the job system (python -m backend.services.scheduler): workers run "
        "them, they show in /jobs and the dashboard, and one scheduler fires however many are started. "
        "--in-process runs them in this process instead (one machine, no worker, not in /jobs).",
    )
    s.add_argument(
        "--in-process",
        action="store_true",
        help="run the ticks in this process (APScheduler) instead of submitting jobs to the workers",
    )
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--interval", type=_positive_float, metavar="MINUTES", help="scheduled retraining every N minutes")
    g.add_argument("--cron", metavar="EXPR", help='crontab expression in UTC, e.g. "0 3 * * *"')
    s.add_argument(
        "--check-interval",
        type=_positive_float,
        metavar="MINUTES",
        help="check drift and performance every N minutes between scheduled retrainings",
    )
    _common(s)
    _training(s)
    return p


def config_from_args(args: argparse.Namespace) -> RetrainingConfig:
    """A RetrainingConfig from parsed CLI arguments (unset flags keep the defaults)."""
    drift_kw = {
        k: v
        for k, v in {
            "psi_threshold": getattr(args, "psi_threshold", None),
            "ks_pvalue_threshold": getattr(args, "ks_pvalue", None),
            "null_margin": getattr(args, "null_margin", None),
            "min_drift_share": getattr(args, "min_drift_share", None),
        }.items()
        if v is not None
    }
    wf_kw = {
        k: v
        for k, v in {"n_folds": getattr(args, "folds", None), "mode": getattr(args, "fold_mode", None)}.items()
        if v is not None
    }
    kw: dict[str, Any] = {
        "model_name": args.model_name,
        "data": args.data,
        "symbols": args.symbol or [],
        "timeframe": args.timeframe,
        "reference_data": args.reference_data,
        "drift": DriftConfig(**drift_kw),
        "walk_forward": WalkForwardConfig(**wf_kw),
    }
    for attr, key in (
        ("recent_days", "recent_days"),
        ("train_days", "train_days"),
        ("epochs", "epochs"),
        ("batch_size", "batch_size"),
        ("lr", "learning_rate"),
        ("cooldown_hours", "cooldown_hours"),
        ("performance_margin", "performance_margin"),
        ("min_accuracy", "min_accuracy_for_promotion"),
        ("min_improvement", "min_improvement"),
    ):
        value = getattr(args, attr, None)
        if value is not None:
            kw[key] = value
    if getattr(args, "interval", None) is not None:
        kw["schedule_interval_minutes"] = args.interval
    if getattr(args, "cron", None) is not None:
        kw["schedule_cron"] = args.cron
    if getattr(args, "check_interval", None) is not None:
        kw["check_interval_minutes"] = args.check_interval
    return RetrainingConfig(**kw)


def _print_result(result: RetrainingResult, stream: TextIO | None = None) -> None:
    stream = stream if stream is not None else sys.stdout
    print(f"{result.status}: {result.reason}", file=stream)
    if result.run_id:
        print(
            f"MLflow run {result.run_id} in experiment '{EXPERIMENT_RETRAINING}' (tag trigger={result.trigger})",
            file=stream,
        )
    wf = result.walk_forward or {}
    if wf.get("walk_forward_accuracy_mean") is not None:
        line = (
            f"walk-forward ({int(wf['walk_forward_folds'])} folds): accuracy {wf['walk_forward_accuracy_mean']:.4f} "
            f"+- {wf['walk_forward_accuracy_std']:.4f}, macro F1 {wf['walk_forward_f1_macro_mean']:.4f} "
            f"+- {wf['walk_forward_f1_macro_std']:.4f}"
        )
        if wf.get("walk_forward_production_accuracy_mean") is not None:
            line += (
                f"; production: accuracy {wf['walk_forward_production_accuracy_mean']:.4f}, "
                f"macro F1 {wf['walk_forward_production_f1_macro_mean']:.4f}"
            )
        print(line, file=stream)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, one line already printed)
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # cron mail stays readable
    if not args.verbose:  # MLflow logs store creation at INFO through its own handler, set up on import
        import mlflow  # noqa: F401

        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if args.command == "serve" and not args.in_process:
        return _serve_through_jobs(args)
    try:
        settings = Settings()
        config = config_from_args(args)
        progress = None if args.no_progress or args.command in ("check-drift", "check-performance") else CliProgress()
        pipeline = RetrainingPipeline(settings, config, progress=progress)
    except Exception as exc:  # noqa: BLE001 - bad settings or arguments: one line and an exit code
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT

    try:
        if args.command == "run":
            result = pipeline.run(args.trigger, force=args.force)
            if args.json:
                print(json.dumps(result.to_dict(), indent=2, default=str))
            else:
                _print_result(result, sys.stdout if result.status in (STATUS_COMPLETED, STATUS_SKIPPED) else sys.stderr)
            if result.status in (STATUS_COMPLETED, STATUS_SKIPPED):
                return EXIT_OK
            if result.status == STATUS_REFUSED:
                return EXIT_REFUSED
            return (
                EXIT_BAD_INPUT
                if result.run_id is None and result.error_type and _is_bad_input_name(result.error_type)
                else EXIT_FAILED
            )
        if args.command == "check-drift":
            report = pipeline.check_drift()
            directory = (
                Path(args.output)
                if args.output
                else Path(settings.output_dir) / "drift_checks" / datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
            )
            paths = report.write(directory)
            if args.json:
                print(json.dumps(report.to_dict(), indent=2, default=str))
            else:
                print(report.format_table())
                print()
                print(report.summary)
                if report.current.get("timeframe_mismatch"):
                    print(f"note: {report.current['timeframe_mismatch']}")
                print(f"report: {', '.join(str(p) for p in paths.values())}")
            if args.log_run:
                run_id = pipeline.log_drift_check(report)
                print(
                    f"MLflow run {run_id} in experiment '{EXPERIMENT_RETRAINING}'",
                    file=sys.stderr if args.json else sys.stdout,
                )
            return EXIT_DRIFT if report.drifted and not args.exit_zero else EXIT_OK
        if args.command == "check-performance":
            performance = pipeline.check_performance()
            print(json.dumps(performance.to_dict(), indent=2, default=str) if args.json else performance.summary)
            return EXIT_OK
        if args.command == "serve":
            pipeline.serve(interval_minutes=args.interval, cron=args.cron, check_interval_minutes=args.check_interval)
            return EXIT_OK
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - every failure: one line and an exit code, no traceback
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT if _is_bad_input(exc) else EXIT_FAILED
    return EXIT_BAD_INPUT


#: serve flags only the in-process scheduler honours: the job system's workers take them from their settings.
_IN_PROCESS_ONLY = {
    "data": "--data",
    "reference_data": "--reference-data",
    "psi_threshold": "--psi-threshold",
    "ks_pvalue": "--ks-pvalue",
    "null_margin": "--null-margin",
    "min_drift_share": "--min-drift-share",
    "fold_mode": "--fold-mode",
    "cooldown_hours": "--cooldown-hours",
    "performance_margin": "--performance-margin",
    "min_improvement": "--min-improvement",
}


def _serve_through_jobs(args: argparse.Namespace) -> int:
    """``serve`` as the job system's scheduler (:mod:`backend.services.scheduler`)."""
    given = [flag for attr, flag in _IN_PROCESS_ONLY.items() if getattr(args, attr, None) is not None]
    if given:
        print(
            f"error: {', '.join(given)} apply to the in-process scheduler only (add --in-process); "
            "through the job system the workers read them from their settings",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:  # the engine never imports the services layer; this CLI only hands over to it
        scheduler = importlib.import_module("backend.services.scheduler")
    except ImportError as exc:
        print(
            f"error: the job system is not installed ({exc.name}): pip install '.[api]', or use --in-process",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    argv = ["--cron", args.cron] if args.cron else ["--interval", str(args.interval)]
    for attr, flag in (
        ("check_interval", "--check-interval"),
        ("timeframe", "--timeframe"),
        ("train_days", "--train-days"),
        ("recent_days", "--recent-days"),
        ("folds", "--folds"),
        ("epochs", "--epochs"),
        ("batch_size", "--batch-size"),
        ("lr", "--lr"),
        ("min_accuracy", "--min-accuracy"),
    ):
        value = getattr(args, attr, None)
        if value is not None:
            argv += [flag, str(value)]
    argv += ["--model-name", args.model_name]
    for symbol in args.symbol or []:
        argv += ["--symbol", symbol]
    if args.verbose:
        argv.append("-v")
    return int(scheduler.main(argv))


def _is_bad_input_name(name: str) -> bool:
    return name in (
        "DataValidationError",
        "DriftReferenceError",
        "NoProductionModel",
        "ValueError",
        "TrackingStoreUnavailable",
        "ModelNotAvailableError",
    )


if __name__ == "__main__":
    sys.exit(main())
