"""``tbml``: one console command for the engine's tools, installed with the package.

    tbml train --epochs 20 --date-range 14     # = python -m backend.ml_engine.training_orchestrator ...
    tbml retrain run --trigger manual          # = python -m backend.ml_engine.retraining_pipeline ...
    tbml worker                                # = python -m backend.services.worker
    tbml scheduler --cron "0 3 * * *"          # = python -m backend.services.scheduler ...
    tbml api --port 8000                       # = uvicorn backend.api.main:app --port 8000
    tbml dashboard --port 8501                 # = python -m backend.dashboard --port 8501
    tbml ui --dry-run                          # = python start_mlflow_ui.py --dry-run
    tbml check-store                           # = python test_mlflow_postgres.py
    tbml <command> --help                      # that command's own options

Everything after the command name goes to that command unchanged, so the flags are the ones the
guide's ``python -m`` paths take. Each target is imported only when its command runs: ``tbml
--help`` imports none of them (no MLflow, torch or Streamlit). The exit code is the command's.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["COMMANDS", "main"]


@dataclass(frozen=True)
class Command:
    target: str  # "module:function"; the function takes argv (and returns an exit code)
    summary: str
    equivalent: str
    needs: str  # the extra to install when the target's imports are missing
    takes_prog: bool = False  # main(argv, prog=...): its usage line then reads "tbml <name>"


COMMANDS: dict[str, Command] = {
    "train": Command(
        "backend.ml_engine.training_orchestrator:main",
        "train a model, register it, optionally promote it",
        "python -m backend.ml_engine.training_orchestrator",
        "train",
    ),
    "retrain": Command(
        "backend.ml_engine.retraining_pipeline:main",
        "retraining: run, check-drift, serve (scheduler)",
        "python -m backend.ml_engine.retraining_pipeline",
        "train",
    ),
    "worker": Command(
        "backend.services.worker:main",
        "job worker (huey): runs the trainings queued by the API and dashboard",
        "python -m backend.services.worker",
        "api",
    ),
    "scheduler": Command(
        "backend.services.scheduler:main",
        "scheduled retrainings submitted as jobs (cron or interval); one leader per cluster",
        "python -m backend.services.scheduler",
        "api",
    ),
    "api": Command(
        "backend.cli:run_api",
        "REST API (uvicorn) on --host/--port, default 127.0.0.1:8000",
        "uvicorn backend.api.main:app",
        "api",
        takes_prog=True,
    ),
    "dashboard": Command(
        "backend.dashboard.__main__:main",
        "Russian dashboard (Streamlit) on --port, default 8501",
        "python -m backend.dashboard",
        "dashboard",
    ),
    "ui": Command(
        "backend.tools.mlflow_ui:main",
        "MLflow UI (mlflow server) over the configured store, default :5000",
        "python start_mlflow_ui.py",
        "train",
        takes_prog=True,
    ),
    "check-store": Command(
        "backend.tools.check_store:main",
        "check the tracking store: connection, schema, a write and a read",
        "python test_mlflow_postgres.py",
        "serve",
        takes_prog=True,
    ),
}


def run_api(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``uvicorn backend.api.main:app`` with the usual flags."""
    parser = argparse.ArgumentParser(prog=prog, description="REST API of the ML engine (uvicorn).")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="uvicorn's own log level (backend.* follows ML_LOG_LEVEL)",
    )
    args = parser.parse_args(argv)
    import uvicorn

    uvicorn.run("backend.api.main:app", host=args.host, port=args.port, workers=args.workers, log_level=args.log_level)
    return 0


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        "usage: tbml <command> [options]    (tbml <command> --help: that command's options)",
        "",
        "ML engine of the trading bot: training, retraining, serving services and MLflow tools.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {cmd.summary}" for name, cmd in COMMANDS.items()]
    lines += ["", "Each is the same as the guide's command:"]
    lines += [f"  tbml {name:<{width}}  = {cmd.equivalent}" for name, cmd in COMMANDS.items()]
    return "\n".join(lines)


def _load(cmd: Command) -> Callable[..., int | None]:
    module, _, function = cmd.target.partition(":")
    return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    cmd = COMMANDS.get(name)
    if cmd is None:
        print(f"tbml: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    prog = f"tbml {name}"
    sys.argv = [prog, *rest]
    try:
        function = _load(cmd)
        # the others' usage lines keep the guide's `python -m ...` name
        result = function(rest, prog=prog) if cmd.takes_prog else function(rest)
    except ImportError as exc:
        missing = _missing_module(exc)
        if missing is None:
            raise
        print(
            f"tbml {name}: {missing} is not installed; this command needs the `{cmd.needs}` extra: "
            f"pip install 'trading-bot-ml-engine[{cmd.needs}]'",
            file=sys.stderr,
        )
        return 2
    return int(result or 0)


def _missing_module(exc: ImportError) -> str | None:
    """The top-level module an ImportError says is not installed (None: another import error)."""
    import importlib.util
    import re

    names = [exc.name] if exc.name else []
    names += re.findall(
        r"[Ii]mport (?:of )?'?`?([A-Za-z_][A-Za-z0-9_]*)", str(exc)
    )  # pandas: "`Import pyarrow` failed"
    for candidate in names:
        top = (candidate or "").split(".")[0]
        if top and importlib.util.find_spec(top) is None:
            return top
    return None


if __name__ == "__main__":
    sys.exit(main())
