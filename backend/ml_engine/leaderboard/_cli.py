"""The command line: ``python -m backend.ml_engine.leaderboard`` (exit 0 ok, 2 bad input, 1 failure)."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..cli_args import (
    OneLineParser,
    add_data_arguments,
    add_policy_arguments,
    family_option,
    policy_from_args,
    positive_int,
)
from ..config import EXPERIMENT_COMPARISON, Settings
from ..errors import one_line
from ._config import QUICK_OVERRIDES, LeaderboardConfig

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

PROG = "python -m backend.ml_engine.leaderboard"


def build_parser() -> argparse.ArgumentParser:
    from ..families import family_names

    p = OneLineParser(
        prog=PROG,
        description="Compare every model family (default configs) with the naive baselines (majority class, "
        "previous direction) on the same walk-forward folds: metrics with 95%% block-bootstrap intervals, paired "
        "tests, a Markdown table, a chart, JSON and an MLflow run in experiment model_comparison.",
        epilog=f"Example: {PROG} --quick\n         {PROG} --families lightgbm,logreg --folds 3 --fee 0.0005\n"
        f"Families: {', '.join(family_names())}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_arguments(p)
    p.add_argument("--seed", type=int, help="random seed; CPU runs with the same seed are repeatable")
    p.add_argument(
        "--epochs", type=positive_int, help="most epochs of the networks, early stopping applies (default 5)"
    )
    p.add_argument("--batch-size", type=positive_int, help="batch size (default: 256)")
    # the comparison
    p.add_argument("--families", help="families to compare, comma-separated (default: all)")
    p.add_argument(
        "--model-option",
        action="append",
        type=family_option,
        default=[],
        metavar="FAMILY.KEY=VALUE",
        help="an option of one family, e.g. lightgbm.num_leaves=15; repeat for several (default configs otherwise)",
    )
    p.add_argument("--folds", type=positive_int, help="walk-forward folds (default 3)")
    p.add_argument("--n-boot", type=positive_int, help="bootstrap resamples (default 1000)")
    add_policy_arguments(p)
    p.add_argument("--output", metavar="DIR", help="where the files go (default: <ML_OUTPUT_DIR>/leaderboard/<time>)")
    p.add_argument("--no-mlflow", action="store_true", help="write local files only, no MLflow run")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a tiny comparison to try it out: the last 4 days, 1 epoch, 2 folds, 200 resamples",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings()
    except Exception as exc:  # noqa: BLE001 - pydantic ValidationError: a bad .env value, said in one line
        print(f"error: invalid settings: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT

    overrides: dict[str, Any] = dict(QUICK_OVERRIDES) if args.quick else {}
    options: dict[str, dict[str, Any]] = {}
    for family, key, value in args.model_option:
        options.setdefault(family, {})[key] = value
    overrides.update(
        {
            k: v
            for k, v in {
                "data": args.data,
                "symbols": args.symbol,
                "timeframe": args.timeframe,
                "date_range": args.date_range,
                "window": args.window,
                "horizon": args.horizon,
                "session": args.session,
                "seed": args.seed,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "families": args.families,
                "folds": args.folds,
                "n_boot": args.n_boot,
                "policy": policy_from_args(args),
                "model_options": options or None,
            }.items()
            if v is not None
        }
    )
    from .. import families as fam
    from ._run import LeaderboardInputError, run_leaderboard

    try:
        config = LeaderboardConfig.from_settings(settings, **overrides)
        config.validate()  # an unknown family or option: one line before anything is read
    except (fam.FamilyError, ValueError, TypeError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT

    def progress(message: str, fraction: float) -> None:
        print(f"[{fraction:4.0%}] {message}", flush=True)

    command = " ".join([PROG, *(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))])
    try:
        result = run_leaderboard(
            config,
            settings=settings,
            output_dir=Path(args.output) if args.output else None,
            tracking=not args.no_mlflow,
            progress=progress,
            command=command,
        )
    except LeaderboardInputError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - a failed training or store: one line, exit 1
        print(f"error: {one_line(exc, typed=True)}", file=sys.stderr)
        return EXIT_FAILED

    print(result.markdown())
    for key in ("markdown", "png", "json", "reliability"):
        if key in result.artifacts:
            print(f"{key:12s} {result.artifacts[key]}")
    if result.run_id:
        from ..mlflow_integration.stores import mask_uri

        print(
            f"MLflow:      run {result.run_id} in experiment '{EXPERIMENT_COMPARISON}' at "
            f"{mask_uri(settings.mlflow_tracking_uri)}"
        )
    return EXIT_OK
