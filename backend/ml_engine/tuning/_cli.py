"""The command line: ``python -m backend.ml_engine.tuning run|status|best|stop|resume|register`` (exit 0 ok,
2 bad input, 1 failure). ``run --parallel N`` runs the trials as jobs on the workers
(:mod:`backend.services.tuning`); without it they run in this process, one after another."""

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
        epilog=f"Example: {PROG} run --trials 20 --family lightgbm --quick\n"
        f"         {PROG} run --trials 50 --parallel 4      # trials as jobs on the workers\n"
        f"         {PROG} status\n         {PROG} best --study NAME\n"
        f"         {PROG} stop --study NAME\n         {PROG} resume --study NAME [--trials 10]\n"
        f"         {PROG} register --study NAME\n"
        "With --parallel the trials are jobs (python -m backend.services.worker on any host pulls them; the study "
        "lives in ML_TUNING_STORAGE, which every worker must share); a worker killed mid-trial fails that trial, "
        "which is retried once, and the study goes on.",
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
    run.add_argument(
        "--parallel",
        type=positive_int,
        metavar="N",
        help="run the trials as jobs on the workers, N at once (default: in this process, one at a time)",
    )
    run.add_argument(
        "--no-wait", action="store_true", help="with --parallel: queue the trials and return (follow with status)"
    )

    for name, text in (
        ("status", "the studies in the storage: trials by state, best value"),
        ("best", "the best trial: params, validation value, holdout value, DSR, PBO"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("--study", metavar="NAME", help="the study (default: the only one in the storage)")
        s.add_argument("--storage", metavar="URL", help="Optuna storage URL (default: ML_TUNING_STORAGE)")
    stop = sub.add_parser("stop", help="start no more trials of a study; its queued trial jobs are cancelled")
    stop.add_argument("--study", metavar="NAME", help="the study (default: the only one in the storage)")
    res = sub.add_parser(
        "resume", help="clear a stop and queue trial jobs up to the study's target (--trials: raise it first)"
    )
    res.add_argument("--study", metavar="NAME", help="the study (default: the only one in the storage)")
    res.add_argument("--trials", type=positive_int, default=0, help="trials to add to the target")
    res.add_argument("--parallel", type=positive_int, metavar="N", help="trial jobs at once (default: as before)")
    res.add_argument("--no-wait", action="store_true", help="queue the trials and return")
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
        if args.command in ("stop", "resume") or (args.command == "run" and args.parallel):
            return _jobs_command(args)
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


def _jobs_command(args: argparse.Namespace) -> int:
    """``run --parallel``, ``stop`` and ``resume``: through the job system (``backend.services.tuning``)."""
    import importlib

    services = importlib.import_module("backend.services")
    tuning_mod = importlib.import_module("backend.services.tuning")
    schemas = importlib.import_module("backend.services.schemas")
    try:
        settings = services.ServiceSettings()
    except Exception as exc:
        raise TuningInputError(f"invalid settings: {one_line(exc)}") from exc
    jobs = services.JobService(settings)
    service = tuning_mod.TuningService(settings, jobs)
    try:
        if args.command == "run":
            if args.storage:
                raise TuningInputError(
                    "--storage does not go with --parallel: the workers use ML_TUNING_STORAGE; set it instead"
                )
            if args.data:
                raise TuningInputError(
                    "--data does not go with --parallel: the workers read ML_DATA_PATH (or "
                    "ML_CANDLES_DATABASE_URL); set it instead"
                )
            fields = {
                "trials": args.trials,
                "parallel": args.parallel,
                "family": args.family,
                "objective": args.objective,
                "pruner": args.pruner,
                "study": args.study,
                "space": _read_space(args.space),
                "symbols": args.symbol,
                "timeframe": args.timeframe,
                "date_range": args.date_range if args.date_range is not None else (4.0 if args.quick else None),
                "window": args.window,
                "horizon": args.horizon,
                "folds": args.folds if args.folds is not None else (2 if args.quick else None),
                "holdout_frac": args.holdout_frac,
                "epochs": args.epochs if args.epochs is not None else (1 if args.quick else None),
                "seed": args.seed,
            }
            options: dict[str, dict[str, Any]] = {}
            for family, key, value in args.model_option:
                options.setdefault(family, {})[key] = value
            if options:
                fields["model_options"] = options
            try:
                params = schemas.TuneParams(**{k: v for k, v in fields.items() if v is not None})
            except Exception as exc:
                raise TuningInputError(one_line(exc)) from exc
            study = _service_call(lambda: service.submit(params))
            print(f"study       {study.name}: {study.remaining} trial(s) to run, {study.parallel} at a time as jobs")
        else:
            name = _study_name(args, service.storage)
            if args.command == "stop":
                study = _service_call(lambda: service.stop(name))
                print(f"study       {study.name}: stop requested; {study.jobs_running} trial job(s) asked to stop")
                return EXIT_OK
            study = _service_call(lambda: service.resume(name, parallel=args.parallel, more_trials=args.trials))
            print(f"study       {study.name}: {study.remaining} trial(s) to run, {study.parallel} at a time as jobs")
        if args.no_wait:
            print(f"follow      {PROG} status --study {study.name}")
            return EXIT_OK
        return _follow(service, study.name)
    finally:
        jobs.close()


def _read_space(path: str | None) -> str | None:
    if path is None:
        return None
    from pathlib import Path

    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TuningInputError(f"{path}: cannot read the search-space file: {exc}") from None


def _service_call(call: Any) -> Any:
    """A service call with its InvalidRequest / NotFound / Conflict errors as bad input (exit 2)."""
    import importlib

    errors = importlib.import_module("backend.services.errors")
    try:
        return call()
    except (errors.InvalidRequestError, errors.NotFoundError, errors.ConflictError) as exc:
        raise TuningInputError(str(exc)) from exc


def _follow(service: Any, name: str, poll_s: float = 5.0) -> int:
    """Print the study's progress until it is finalized (Ctrl-C: stop following; the trials go on)."""
    import time

    last = ""
    try:
        while True:
            s = service.study(name)
            states = ", ".join(f"{k.lower()} {v}" for k, v in sorted(s.states.items())) or "none yet"
            best = "n/a" if s.best_value is None else f"{s.best_value:.4f} (trial #{s.best_trial})"
            line = (
                f"{s.n_trials}/{s.target} trials ({states}); jobs: {s.jobs_queued} queued, {s.jobs_running} running; "
                f"best {best}"
            )
            if line != last:
                print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)
                last = line
            if s.finalized and not s.jobs_queued and not s.jobs_running:
                break
            time.sleep(poll_s)
    except KeyboardInterrupt:
        print(f"\nstopped following; the trials go on. {PROG} status --study {name}", file=sys.stderr)
        return EXIT_OK
    from ._study import load_study, study_summary

    print("\n".join(study_summary(load_study(name, service.storage)).lines()))
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

    from ._study import _open_storage, default_storage, load_study, study_progress, study_summary

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = args.storage or default_storage(settings)
    summaries = optuna.get_all_study_summaries(_open_storage(url), include_best_trial=False)
    if args.command == "status" and args.study is None:
        if not summaries:
            print(f"no studies in {_masked(url)}")
        for s in summaries:
            study = load_study(s.study_name, url)
            summary, progress = study_summary(study), study_progress(study)
            states = ", ".join(f"{k.lower()} {v}" for k, v in sorted(summary.states.items()))
            best = "n/a" if summary.best_value is None else f"{summary.best_value:.4f} (trial #{summary.best_trial})"
            flags = "; stop requested" if progress.stop_requested else ""
            flags += "; finalized" if progress.finalized else f"; {progress.remaining} to run"
            print(
                f"{s.study_name}: {summary.n_trials} trials ({states}); target {progress.target}{flags}; "
                f"best {summary.direction[:3]} {best}"
            )
        return EXIT_OK
    name = args.study
    if name is None:
        if len(summaries) != 1:
            names = ", ".join(s.study_name for s in summaries) or "none"
            raise TuningInputError(f"--study is needed: the storage has {len(summaries)} studies ({names})")
        name = summaries[0].study_name
    print("\n".join(study_summary(load_study(name, url)).lines()))
    return EXIT_OK
