"""The command line: ``python -m backend.ml_engine.tuning run|status|best|register`` (exit 0 ok, 2 bad input, 1 failure)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from ..cli_args import OneLineParser, add_data_arguments, family_option, positive_int
from ..config import EXPERIMENT_TUNING, Settings
from ..errors import one_line
from ._objective import OBJECTIVES
from ._study import PRUNERS, QUICK_OVERRIDES, TuningConfig, TuningInputError

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

PROG = "python -m backend.ml_engine.tuning"


def _fraction(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 0.9), got {v!r}") from None
    if not 0.0 < x < 0.9:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 0.9), got {v!r}")
    return x


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        description="Hyperparameter search with Optuna (RDB storage: ML_TUNING_STORAGE, else "
        "sqlite:///<ML_OUTPUT_DIR>/optuna.db). Trials are scored on walk-forward validation folds only; the final "
        "holdout is read once per study, for the best trial; the Deflated Sharpe Ratio and the Probability of "
        "Backtest Overfitting say how much of the winner's edge survives the search. MLflow: a parent run per study "
        f"in experiment {EXPERIMENT_TUNING}, a nested run per trial.",
        epilog=f"Example: {PROG} run --trials 20 --family lightgbm --quick\n         {PROG} status\n"
        f"         {PROG} best --study NAME\n         {PROG} register --study NAME\n"
        "Coming: --parallel N and trials as jobs on any number of workers (the execution layer); today the trials "
        "of one `run` execute in this process, one after another.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    run = sub.add_parser("run", help="create a study, or resume / extend it, and run N more trials")
    run.add_argument("--trials", type=positive_int, required=True, help="trials to add in this call")
    run.add_argument("--family", help="search this family only (default: the space's families)")
    run.add_argument("--space", metavar="FILE", help="a TOML search space laid over the bundled defaults")
    run.add_argument("--objective", choices=list(OBJECTIVES), help="what the search optimises (default accuracy)")
    run.add_argument("--pruner", choices=list(PRUNERS), help="stop poor trials after a fold (default median)")
    run.add_argument("--study", metavar="NAME", help="study name (default: <family>-<data digest>-<objective>)")
    run.add_argument("--storage", metavar="URL", help="Optuna storage URL (default: ML_TUNING_STORAGE)")
    run.add_argument("--holdout-frac", type=_fraction, help="final holdout share of the time range (default 0.2)")
    run.add_argument("--folds", type=positive_int, help="walk-forward validation folds (default 3)")
    run.add_argument(
        "--model-option",
        action="append",
        type=family_option,
        default=[],
        metavar="FAMILY.KEY=VALUE",
        help="a fixed (not searched) option of one family, e.g. lightgbm.n_estimators=100; repeat for several",
    )
    add_data_arguments(run, window_help="candles per input window when the space does not search it")
    run.add_argument("--seed", type=int, help="random seed of the sampler and the trainings")
    run.add_argument("--epochs", type=positive_int, help="most epochs of the networks (default 5)")
    run.add_argument("--no-mlflow", action="store_true", help="Optuna storage only, no MLflow runs")
    run.add_argument(
        "--quick", action="store_true", help="a tiny search to try it out: the last 4 days, 1 epoch, 2 folds"
    )

    for name, text in (
        ("status", "the studies in the storage: trials by state, best value"),
        ("best", "the best trial: params, validation value, holdout value, DSR, PBO"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("--study", metavar="NAME", help="the study (default: the only one in the storage)")
        s.add_argument("--storage", metavar="URL", help="Optuna storage URL (default: ML_TUNING_STORAGE)")
    reg = sub.add_parser(
        "register",
        help="retrain the best trial through the normal training path and register it (tagged with the study, "
        "the trial, DSR and PBO; not promoted)",
    )
    reg.add_argument("--study", metavar="NAME", help="the study (default: the only one in the storage)")
    reg.add_argument("--storage", metavar="URL", help="Optuna storage URL (default: ML_TUNING_STORAGE)")
    reg.add_argument("--model-name", metavar="NAME", help="registered model name (default: the best trial's family)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings()
    except Exception as exc:  # noqa: BLE001 - pydantic ValidationError: a bad .env value, said in one line
        print(f"error: invalid settings: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        if args.command == "run":
            return _run(args, settings)
        if args.command == "register":
            return _register(args, settings)
        return _show(args, settings)
    except TuningInputError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - a failed store or study: one line, exit 1
        print(f"error: {one_line(exc, typed=True)}", file=sys.stderr)
        return EXIT_FAILED


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from ._study import run_study

    overrides: dict[str, Any] = dict(QUICK_OVERRIDES) if args.quick else {}
    options: dict[str, dict[str, Any]] = {}
    for family, key, value in args.model_option:
        options.setdefault(family, {})[key] = value
    given = {
        "data": args.data,
        "symbols": args.symbol,
        "timeframe": args.timeframe,
        "date_range": args.date_range,
        "window": args.window,
        "horizon": args.horizon,
        "session": args.session,
        "seed": args.seed,
        "epochs": args.epochs,
        "folds": args.folds,
        "holdout_frac": args.holdout_frac,
        "space_path": args.space,
        "family": args.family,
        "objective": args.objective,
        "pruner": args.pruner,
        "study_name": args.study,
        "storage": args.storage,
        "n_trials": args.trials,
        "model_options": options or None,
    }
    overrides.update({k: v for k, v in given.items() if v is not None})
    try:
        config = TuningConfig.from_settings(settings, **overrides)
    except (ValueError, TypeError) as exc:
        raise TuningInputError(one_line(exc)) from exc

    def progress(message: str, fraction: float) -> None:
        print(f"[{fraction:4.0%}] {message}", flush=True)

    result = run_study(config, settings=settings, progress=progress, tracking=not args.no_mlflow)
    print("\n".join(result.lines()))
    for name, path in result.artifacts.items():
        print(f"plot        {path} ({name})")
    print(f"storage     {_masked(result.storage)}  ({result.wall_seconds:.1f} s)")
    return EXIT_OK


def _masked(url: str) -> str:
    from ..mlflow_integration.stores import mask_uri

    return mask_uri(url)


def _study_name(args: argparse.Namespace, url: str) -> str:
    """``--study``, else the only study in the storage."""
    import optuna

    from ._study import _open_storage

    if args.study is not None:
        return str(args.study)
    summaries = optuna.get_all_study_summaries(_open_storage(url), include_best_trial=False)
    if len(summaries) != 1:
        names = ", ".join(s.study_name for s in summaries) or "none"
        raise TuningInputError(f"--study is needed: the storage has {len(summaries)} studies ({names})")
    return summaries[0].study_name


def _register(args: argparse.Namespace, settings: Settings) -> int:
    from ._study import default_storage, register_best

    url = args.storage or default_storage(settings)
    registered = register_best(_study_name(args, url), settings=settings, model_name=args.model_name, storage=url)
    print("\n".join(registered.lines()))
    return EXIT_OK


def _show(args: argparse.Namespace, settings: Settings) -> int:
    import optuna

    from ._study import _open_storage, default_storage, load_study, study_summary

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = args.storage or default_storage(settings)
    summaries = optuna.get_all_study_summaries(_open_storage(url), include_best_trial=False)
    if args.command == "status" and args.study is None:
        if not summaries:
            print(f"no studies in {_masked(url)}")
        for s in summaries:
            summary = study_summary(load_study(s.study_name, url))
            states = ", ".join(f"{k.lower()} {v}" for k, v in sorted(summary.states.items()))
            best = "n/a" if summary.best_value is None else f"{summary.best_value:.4f} (trial #{summary.best_trial})"
            print(f"{s.study_name}: {summary.n_trials} trials ({states}); best {summary.direction[:3]} {best}")
        return EXIT_OK
    name = args.study
    if name is None:
        if len(summaries) != 1:
            names = ", ".join(s.study_name for s in summaries) or "none"
            raise TuningInputError(f"--study is needed: the storage has {len(summaries)} studies ({names})")
        name = summaries[0].study_name
    print("\n".join(study_summary(load_study(name, url)).lines()))
    return EXIT_OK
