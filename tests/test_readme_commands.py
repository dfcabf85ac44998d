"""Every shell command in README.md's ``bash`` blocks either runs here, on the bundled data, or is in
`NOT_RUN` with the reason (a long-running server, your own data, the whole suite).

A command added to the README that is in neither fails `test_every_readme_command_is_accounted_for`,
so a broken example cannot slip in unnoticed: run it in `RUN` or say in `NOT_RUN` why not.

The commands in `RUN` run as written, in README order, in a temporary folder whose environment
points every store and output there (``MLFLOW_TRACKING_URI``, ``ML_OUTPUT_DIR``...), with
``ML_EPOCHS=1 ML_WINDOW=16 ML_SYMBOLS=ETH/BTC`` so that the retraining commands, which take their
sizes from the settings, stay at seconds. ``python`` is this interpreter, ``tbml`` its console
script, a ``*.py`` script the repository's, ``localhost:8000`` an API started here on a free port.
About 60 s on 2 cores.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from api_support import TOKEN, free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
TRAIN = "python -m backend.ml_engine.training_orchestrator"
RETRAIN = "python -m backend.ml_engine.retraining_pipeline"

#: Commands not run here, each with the reason.
NOT_RUN: dict[str, str] = {
    # the two commands of the Quick start
    "make demo": "creates .venv and installs '.[all]' (minutes on a fresh clone); its training "
    "(`--demo`, ~20 s) has the same code path as the trainings run here",
    "make test": "the whole suite, this test included",
    # packaging
    "pip install '.[serve]'": "tests/test_packaging.py installs it into a fresh virtual environment and checks it",
    "pip install -e '.[all]'": "what `make demo` installs; this environment has it",
    # training on your own data
    "python -m backend.ml_engine.training_orchestrator --data candles.csv --symbol ETH/BTC --timeframe 5m --seed 7": (
        "needs your own candles.csv (CSV loading: tests/test_data_files.py)"
    ),
    "python -m backend.ml_engine.leaderboard": "about 4 minutes on 2 cores (docs/leaderboard.md; bench/bench_families.py "
    "times it); `--quick` runs here and tests/test_leaderboard.py runs it on planted and random-walk data",
    # long-running processes
    "python -m backend.ml_engine.retraining_pipeline serve --cron '0 3 * * *'": "a scheduler that runs until stopped "
    "(tests/test_scheduler.py runs it; tests/test_retraining_pipeline.py drives the in-process one)",
    "make api": "a server that runs until stopped (the API is started here for the curl examples, "
    "and by tests/test_api_e2e.py)",
    "make worker": "runs until stopped (tests/test_logging_console.py and tests/test_api_e2e.py start it)",
    "make up": "tests/test_make_up.py runs the Procfile",
    "python -m backend.ml_engine.tuning run --trials 20 --parallel 2 --family lightgbm --no-wait": "queues trial "
    "jobs for workers that this test does not start (tests/test_tuning_study.py queues, stops and resumes them; "
    "tests/test_tuning_workers.py runs them on two workers)",
    "python -m backend.services.scheduler --cron '0 3 * * *'": "runs until stopped (tests/test_scheduler.py "
    "starts two and kills the leader)",
    "make dashboard": "a Streamlit server that runs until stopped (tests/test_dashboard_e2e.py starts it)",
    "python start_mlflow_ui.py": "an MLflow server that runs until stopped (tests/test_mlflow_stores.py starts it)",
    "mlflow models serve -m models:/hybrid_cnn_lstm@production --env-manager local -p 5001": "a server that runs "
    "until stopped (tests/test_pyfunc.py starts it and posts candles; tests/test_packaging.py from a serving install)",
}


@dataclass
class Outcome:
    returncode: int = 0  # the exit code the README promises
    contains: str = ""  # a text the output must contain


#: Commands run here, in README order, with what they must give.
RUN: dict[str, Outcome] = {
    "tbml --help": Outcome(contains="check-store"),
    f"{TRAIN} --epochs 2 --date-range 3 --symbol ETH/BTC --run-name first_try --auto-promote --min-accuracy 0": Outcome(
        contains="(promoted to production)"
    ),
    f"{TRAIN} --run-name first_try --resume": Outcome(contains="Registry: hybrid_cnn_lstm version 2"),
    f"{TRAIN} --model lightgbm --date-range 3 --symbol ETH/BTC --model-name eth_trees": Outcome(
        contains="Registry: eth_trees version 1"
    ),
    f"{TRAIN} --model logreg --calibrate --signal-mode threshold --threshold 0.45 --long-only --date-range 3 "
    "--symbol ETH/BTC --model-name eth_logreg": Outcome(contains="threshold 0.45, long only"),
    "python -m backend.ml_engine.leaderboard --quick": Outcome(contains="Verdict"),
    "python -m backend.ml_engine.tuning run --trials 3 --family logreg --study readme --quick": Outcome(
        contains="readme"
    ),
    "python -m backend.ml_engine.tuning best --study readme": Outcome(contains="PBO"),
    f"{TRAIN} --help": Outcome(contains="--date-range"),
    # the guide's command: the bundled sample holds 20 days, not 60; bad input exits 2, saying so
    f"{TRAIN} --epochs 100 --batch-size 128 --lr 0.0005 --date-range 60": Outcome(2, "60 days"),
    "python test_mlflow_postgres.py": Outcome(contains="RESULT: OK"),
    f"{RETRAIN} run --trigger manual": Outcome(contains="retrained on trigger manual"),
    f"{RETRAIN} run --trigger drift": Outcome(),
    f"{RETRAIN} check-drift": Outcome(contains="features drifted"),  # 0, or 3 on drift: see _drift_ok
    "curl http://localhost:8000/api/ml-management/models": Outcome(contains="hybrid_cnn_lstm"),
    "curl http://localhost:8000/api/ml-management/mlflow/runs": Outcome(contains="first_try"),
    "curl -X POST http://localhost:8000/api/ml-management/train -H 'Authorization: Bearer $ML_API_TOKEN' "
    "-H 'Content-Type: application/json' -d '{\"epochs\": 50, \"batch_size\": 64}'": Outcome(contains='"queued"'),
}


def readme_lines() -> dict[str, str]:
    """{normalised command: the line as written} of every ```bash block (continuations joined).

    Normalised: comments dropped and quoting made uniform (``shlex``), the form RUN and NOT_RUN
    are compared in; a command runs from its line as written (its quotes decide what bash expands).
    """
    lines: dict[str, str] = {}
    for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            if tokens:
                lines.setdefault(shlex.join(tokens), line.strip())
    return lines


def readme_commands() -> list[str]:
    return list(readme_lines())


def _key(command: str) -> str:
    return shlex.join(shlex.split(command))


def test_every_readme_command_is_accounted_for() -> None:
    commands = readme_commands()
    assert len(commands) > 15, commands
    run, not_run = {_key(c) for c in RUN}, {_key(c) for c in NOT_RUN}
    assert not run & not_run
    unaccounted = [c for c in commands if c not in run and c not in not_run]
    assert not unaccounted, (
        "README commands neither run by this test nor listed with a reason in NOT_RUN: "
        f"{unaccounted}; add each to RUN (it must work on the bundled data) or to NOT_RUN"
    )
    stale = sorted((run | not_run) - set(commands))
    assert not stale, f"no longer in README.md (remove them here): {stale}"


# ------------------------------------------------------------------------------------------------
# running them
# ------------------------------------------------------------------------------------------------


def _env(tmp: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ML_", "MLFLOW_"))}
    return {
        **base,
        "PYTHONPATH": str(REPO),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlruns/mlflow.db",
        "MLFLOW_ARTIFACT_LOCATION": str(tmp / "mlruns" / "artifacts"),
        "ML_OUTPUT_DIR": str(tmp / "outputs"),
        "ML_CACHE_DIR": str(tmp / "cache"),
        "ML_JOBS_DATABASE_URL": f"sqlite:///{tmp}/mlruns/jobs.db",
        "ML_HUEY_SQLITE_PATH": str(tmp / "mlruns" / "huey.db"),
        "ML_API_TOKEN": TOKEN,
        "ML_EPOCHS": "1",
        "ML_WINDOW": "16",
        "ML_SYMBOLS": "ETH/BTC",
    }


def _argv(command: str) -> list[str]:
    """The command's argv with this interpreter, its tbml and the repository's scripts."""
    argv = shlex.split(command)
    if argv[0] == "python":
        argv[0] = sys.executable
        if argv[1].endswith(".py"):
            argv[1] = str(REPO / argv[1])
    elif argv[0] == "tbml":
        tbml = Path(sys.executable).parent / "tbml"
        argv[:1] = [str(tbml)] if tbml.exists() else [sys.executable, "-m", "backend.cli"]
    return argv


class Api:
    """``uvicorn backend.api.main:app`` on a free port for the curl examples; always stopped."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log = tmp / "api.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "backend.api.main:app", "--port", str(self.port)],
                cwd=tmp,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/api/ml-management/health", timeout=5)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("the API did not start:\n" + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _run_curl(command: str, api: Api, tmp: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # as written, through bash (it expands $ML_API_TOKEN), at the test's port; --fail: 4xx/5xx exit 22
    line = readme_lines()[command]
    line = line.replace("localhost:8000", f"127.0.0.1:{api.port}").replace("curl ", "curl --silent --fail ", 1)
    return subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=60, cwd=tmp, env=env)


def _drift_ok(out: subprocess.CompletedProcess[str]) -> bool:
    return out.returncode in (0, 3)  # 3: drift found, as the README says


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_commands_run_on_the_bundled_data(tmp_path: Path) -> None:
    env = _env(tmp_path)
    wanted = {_key(c): o for c, o in RUN.items()}
    order = [c for c in readme_commands() if c in wanted]
    assert sorted(order) == sorted(wanted), "every command of RUN is in the README (see the test above)"
    failures: list[str] = []
    api: Api | None = None
    try:
        for command in order:
            outcome = wanted[command]
            started = time.perf_counter()
            if command.startswith("curl"):
                api = api or Api(tmp_path, env)
                out = _run_curl(command, api, tmp_path, env)
            else:
                out = subprocess.run(_argv(command), capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
            text = out.stdout + out.stderr
            ok_code = _drift_ok(out) if "check-drift" in command else out.returncode == outcome.returncode
            if not ok_code or outcome.contains not in text:
                failures.append(
                    f"$ {command}\n  exit {out.returncode} (wanted {outcome.returncode}), "
                    f"{outcome.contains!r} {'missing' if outcome.contains not in text else 'found'}\n"
                    f"  {text[-1500:]}"
                )
            print(f"{time.perf_counter() - started:5.1f} s  {command}")
    finally:
        if api is not None:
            api.stop()
    assert not failures, "\n\n".join(failures)
