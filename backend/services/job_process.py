"""One job in its own OS process: what a worker starts for every job it claims.

    python -m backend.services.job_process JOB_ID --owner-pid PID --threads N   # settings JSON on stdin

Nothing of one job's torch state (global RNG, ``set_num_threads``, allocator, threads) reaches
another: each training, retraining, comparison of model families (the leaderboard) or trial runs here, in a fresh interpreter, and ends with it.
The worker (:mod:`.job_runner`) claims the job, starts this process with the worker's own settings
on stdin (so a password never shows in ``ps``), sets ``OMP_NUM_THREADS`` to its share of the
cores, and waits. This process:

* dies with its worker: ``PR_SET_PDEATHSIG`` (Linux) plus a watcher of the parent pid, so a
  SIGKILLed worker leaves no orphan training behind;
* writes the job's heartbeat and progress (epoch, metrics) under the worker's identity (the row's
  ``worker_pid`` is the worker's; ``job_pid`` is this process's);
* stops a training whose job was cancelled (the trainer callback raises :class:`JobCancelled`
  after the current batch: no model is evaluated or registered; the run ends KILLED);
* records how the job ended (``finished``, ``failed``, ``cancelled``) with its run and version.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from backend.ml_engine.config import EXPERIMENT_COMPARISON, EXPERIMENT_TRAINING
from backend.ml_engine.errors import one_line

from ._mlflow import make_client
from .data_sources import resolve_data_source
from .job_store import CANCELLED, FAILED, FINISHED, RUNNING, JobRecord, JobStore, host_identity
from .leaderboard import leaderboard_config
from .redaction import redact, redact_tree
from .retraining import retraining_config
from .schemas import ComparisonParams, RetrainParams, TrainingParams, json_safe
from .settings import ServiceSettings

if TYPE_CHECKING:  # pragma: no cover
    from backend.ml_engine.trainer import Trainer, TrainResult

__all__ = [
    "JobCancelled",
    "JobExecution",
    "JobProgressCallback",
    "main",
    "settings_from_payload",
    "settings_payload",
    "training_overrides",
]

logger = logging.getLogger("backend.services.job_process")

_PR_SET_PDEATHSIG = 1


class JobCancelled(RuntimeError):
    """Raised inside a training whose job was cancelled; the job ends ``cancelled``."""


def settings_payload(settings: ServiceSettings) -> str:
    """The settings as JSON (secret values included) for a job process's stdin."""
    data: dict[str, Any] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        data[name] = value
    return json.dumps(data, default=str)


def settings_from_payload(text: str) -> ServiceSettings:
    """:func:`settings_payload` read back: exactly the worker's settings, whatever this process's
    environment or ``.env`` say."""
    return ServiceSettings(**json.loads(text))


def training_overrides(params: TrainingParams, settings: ServiceSettings) -> dict[str, Any]:
    """``TrainingOrchestrator.train_model_sync`` keyword overrides for validated params.

    The data source is resolved here, in the worker's job process, from its own settings
    (:func:`~.data_sources.resolve_data_source`): a database URL never travels through the queue or
    the jobs table.
    """
    out: dict[str, Any] = {
        "epochs": params.epochs,
        "batch_size": params.batch_size,
        "lr": params.lr,
        "date_range": params.date_range,
        "symbols": params.symbols or None,
        "timeframe": params.timeframe,
        "window": params.window,
        "horizon": params.horizon,
        "seed": params.seed,
        "data": resolve_data_source(params.data_source, settings),
    }
    if params.model is not None:
        out["family"] = params.model.family
        out["model_kwargs"] = params.model.to_kwargs()
    if params.policy is not None:
        out["policy"] = params.policy.model_dump()
    if params.calibrate:
        out["calibrate"] = True
    if params.early_stopping_patience is not None:
        out["trainer_kwargs"] = {"early_stopping_patience": params.early_stopping_patience or None}
    return {k: v for k, v in out.items() if v is not None}


class _Heartbeat(threading.Thread):
    """Writes a running job's heartbeat until stopped; sets ``cancel`` when one is requested."""

    def __init__(
        self, store: JobStore, job_id: str, interval_s: float, cancel: threading.Event, owner_pid: int
    ) -> None:
        super().__init__(name=f"heartbeat-{job_id[:8]}", daemon=True)
        self.store, self.job_id, self.interval_s, self.cancel = store, job_id, interval_s, cancel
        self.pid, self.host_id = owner_pid, host_identity()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            try:
                if self.store.heartbeat(self.job_id, pid=self.pid, host_id=self.host_id):
                    self.cancel.set()
            except Exception as exc:  # noqa: BLE001 - a database blip must not kill the training
                logger.warning("job %s: heartbeat not written: %s", self.job_id, type(exc).__name__)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


class JobProgressCallback:
    """Trainer callback: epoch and metrics into the job row; stops the training on cancellation."""

    def __init__(
        self,
        store: JobStore,
        job_id: str,
        cancel: threading.Event,
        *,
        run_name: str,
        settings: ServiceSettings,
        owner_pid: int | None = None,
    ) -> None:
        self.store, self.job_id, self.cancel = store, job_id, cancel
        self.run_name, self.settings = run_name, settings
        self.pid, self.host_id = owner_pid if owner_pid is not None else os.getpid(), host_identity()
        self.trainer: Trainer | None = None
        self.run_id: str | None = None
        self.epoch = 0

    def on_train_start(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self._attach_run()
        self._check()

    def on_batch_end(self, step: int, metrics: dict[str, float]) -> None:
        self._check()

    def on_epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None:
        self.epoch = int(epoch)
        numbers = {
            k: float(v)
            for k, v in metrics.items()
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        try:
            if self.store.progress(self.job_id, self.epoch, json_safe(numbers), pid=self.pid, host_id=self.host_id):
                self.cancel.set()
        except Exception as exc:  # noqa: BLE001 - progress is informative; the heartbeat reports liveness
            logger.warning("job %s: progress not written: %s", self.job_id, type(exc).__name__)
        self._check()

    def on_train_end(self, result: TrainResult) -> None:
        self._check()

    def _check(self) -> None:
        if self.cancel.is_set():
            if self.trainer is not None:
                self.trainer.stop_training = True
            raise JobCancelled(f"cancelled by request after epoch {self.epoch}")

    def _attach_run(self) -> None:
        """Find the MLflow run the orchestrator started (by its unique name) and link it to the job."""
        try:
            client = make_client(self.settings.mlflow_tracking_uri)
            exp = client.get_experiment_by_name(EXPERIMENT_TRAINING)
            if exp is None:
                return
            runs = client.search_runs([exp.experiment_id], f"attributes.run_name = '{self.run_name}'", max_results=1)
            if runs:
                self.run_id = runs[0].info.run_id
                client.set_tag(self.run_id, "job_id", self.job_id)
                self.store.set_run(self.job_id, self.run_id)
        except Exception as exc:  # noqa: BLE001 - the run id also comes with the result
            logger.warning("job %s: run not linked yet: %s", self.job_id, type(exc).__name__)


class _CancelCheck:
    """Trainer callback of a retraining's trainings (folds, final model): stops it on cancellation."""

    def __init__(self, cancel: threading.Event, label: str) -> None:
        self.cancel, self.label = cancel, label
        self.trainer: Trainer | None = None

    def on_train_start(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self._check()

    def on_batch_end(self, step: int, metrics: dict[str, float]) -> None:
        self._check()

    def on_epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None:
        self._check()

    def _check(self) -> None:
        if self.cancel.is_set():
            if self.trainer is not None:
                self.trainer.stop_training = True
            raise JobCancelled(f"cancelled by request during {self.label}")


class _RetrainProgress:
    """The retraining pipeline's progress in a job: stages logged, every training cancellable.

    Cancellation is checked inside the trainings only (walk-forward folds, the final model): once
    the final model is trained, registration and the promotion gate run to their end, so production
    never moves half-way."""

    def __init__(self, job_id: str, cancel: threading.Event) -> None:
        self.job_id, self.cancel = job_id, cancel

    def stage(self, message: str) -> None:
        logger.info("job %s: %s", self.job_id, message)

    def training(self, label: str) -> list[_CancelCheck]:
        return [_CancelCheck(self.cancel, label)]


class _LeaderboardProgress:
    """``progress(message, fraction)`` of a comparison into the job row (``stage`` and ``progress`` of the
    job); links the comparison's MLflow run to the job as soon as it exists (so a dead worker's run
    is ended KILLED by the reaper); raises :class:`JobCancelled` at the next step once a
    cancellation was requested."""

    def __init__(
        self, store: JobStore, job: JobRecord, cancel: threading.Event, owner_pid: int, settings: ServiceSettings
    ) -> None:
        self.store, self.job, self.cancel, self.settings = store, job, cancel, settings
        self.pid, self.host_id = owner_pid, host_identity()
        self.message = ""
        self.run_id: str | None = None
        self.calls = 0
        self.attach = True
        """Link the comparison's MLflow run to the job (a trial job links its own run)."""

    def __call__(self, message: str, fraction: float) -> None:
        self.message = str(message)
        self.calls += 1
        logger.info("job %s: %s (%.0f%%)", self.job.id, message, 100 * float(fraction))
        try:
            if self.store.stage(self.job.id, self.message, float(fraction), pid=self.pid, host_id=self.host_id):
                self.cancel.set()
        except Exception as exc:  # noqa: BLE001 - progress is informative; the heartbeat reports liveness
            logger.warning("job %s: progress not written: %s", self.job.id, type(exc).__name__)
        if self.attach and self.run_id is None and self.calls > 1:  # the first report comes before the run starts
            self._attach_run()
        if self.cancel.is_set() and float(fraction) < 1.0:  # at 1.0 the comparison is done and recorded
            raise JobCancelled(f"cancelled by request during: {self.message}")

    def _attach_run(self) -> None:
        """The running comparison run started after this job that no other job has claimed (tag ``job_id``)."""
        try:
            client = make_client(self.settings.mlflow_tracking_uri)
            exp = client.get_experiment_by_name(EXPERIMENT_COMPARISON)
            if exp is None or self.job.started_at is None:
                return
            since = int(self.job.started_at.timestamp() * 1000)
            runs = client.search_runs(
                [exp.experiment_id],
                f"attributes.start_time >= {since} AND attributes.status = 'RUNNING'",
                max_results=20,
            )
            free = [r for r in runs if "job_id" not in r.data.tags]
            if len(free) != 1:  # none yet, or several comparisons started at once: ask again at the next step
                return
            self.run_id = free[0].info.run_id
            client.set_tag(self.run_id, "job_id", self.job.id)
            self.store.set_run(self.job.id, self.run_id)
        except Exception as exc:  # noqa: BLE001 - the run id also comes with the result
            logger.warning("job %s: run not linked yet: %s", self.job.id, type(exc).__name__)


class JobExecution:
    """Runs one claimed job to its end in this process, under the worker's identity ``owner_pid``."""

    def __init__(self, settings: ServiceSettings, store: JobStore, owner_pid: int) -> None:
        self.settings = settings
        self.store = store
        self.pid = owner_pid
        self.host_id = host_identity()
        self._secrets = settings.secrets()

    def __call__(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is None or job.status != RUNNING or job.worker_pid != self.pid:
            logger.warning("job %s: not running under worker pid %d; nothing done", job_id, self.pid)
            return
        logger.info("job %s (%s) started in process %d on %s", job_id, job.kind, os.getpid(), socket.gethostname())
        cancel = threading.Event()
        heartbeat = _Heartbeat(self.store, job_id, self.settings.job_heartbeat_interval_s, cancel, self.pid)
        heartbeat.start()
        try:
            if job.kind == "train":
                self._train(job, cancel)
            elif job.kind == "retrain":
                self._retrain(job, cancel)
            elif job.kind == "leaderboard":
                self._leaderboard(job, cancel)
            elif job.kind == "tune":
                self._tune(job, cancel)
            elif job.kind == "monitor":
                self._monitor(job)
            else:
                self._finish(job_id, FAILED, error=f"unknown job kind {job.kind!r}")
        except Exception as exc:  # every failure ends the job, never silently
            logger.exception("job %s failed", job_id)
            self._finish(job_id, FAILED, error=redact(one_line(exc, typed=True), self._secrets)[:4000])
        finally:
            heartbeat.stop()

    def _finish(self, job_id: str, status: str, **fields: Any) -> None:
        if not self.store.finish(job_id, status, pid=self.pid, host_id=self.host_id, **fields):
            logger.warning("job %s: not ours any more; outcome %s not recorded", job_id, status)
        else:
            logger.info("job %s %s", job_id, status)

    def _train(self, job: JobRecord, cancel: threading.Event) -> None:
        from backend.ml_engine.training_orchestrator import TrainingOrchestrator

        params = TrainingParams.model_validate(job.params)
        run_name = params.run_name or f"{params.model_name}_job_{job.id[:12]}"
        callback = JobProgressCallback(
            self.store, job.id, cancel, run_name=run_name, settings=self.settings, owner_pid=self.pid
        )
        result = TrainingOrchestrator(self.settings).train_model_sync(
            model_name=params.model_name,
            run_name=run_name,
            export_onnx=params.export_onnx,
            auto_promote=params.auto_promote,
            min_accuracy_for_promotion=params.min_accuracy_for_promotion,
            training_mode="manual",
            callbacks=[callback],
            **training_overrides(params, self.settings),
        )
        run_id = result.get("run_id") or callback.run_id
        if result.get("success"):
            summary = {
                "run_name": result.get("run_name"),
                "model_uri": result.get("model_uri"),
                "test_metrics": {
                    k: v
                    for k, v in (result.get("test_metrics") or {}).items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)
                },
                "backtest": result.get("backtest") or {},
                "best_epoch": result.get("best_epoch"),
                "promoted": bool(result.get("promoted")),
                "promotion_reason": result.get("promotion_reason"),
            }
            version = result.get("version")
            self._finish(
                job.id,
                FINISHED,
                run_id=run_id,
                version=int(version) if version is not None else None,
                result=json_safe(summary),
            )
        elif result.get("error_type") == JobCancelled.__name__:
            self._mark_run_killed(run_id)
            self._finish(job.id, CANCELLED, run_id=run_id, error=redact(str(result.get("error")), self._secrets))
        else:
            error = f"{result.get('error_type', 'Error')}: {result.get('error')}"
            self._finish(job.id, FAILED, run_id=run_id, error=redact(error, self._secrets)[:4000])

    def _mark_run_killed(self, run_id: str | None) -> None:
        if not run_id:
            return
        try:
            make_client(self.settings.mlflow_tracking_uri).update_run(run_id, status="KILLED")
        except Exception as exc:  # noqa: BLE001 - the run stays FAILED with its failure_reason tag
            logger.warning("run %s not marked KILLED: %s", run_id, type(exc).__name__)

    def _retrain(self, job: JobRecord, cancel: threading.Event) -> None:
        from backend.ml_engine.retraining_pipeline import RetrainingPipeline

        params = RetrainParams.model_validate(job.params)
        pipeline = RetrainingPipeline(
            settings=self.settings,
            config=retraining_config(params, self.settings),
            progress=_RetrainProgress(job.id, cancel),
        )
        if params.checks_first:
            outcome = pipeline.tick(include_scheduled=params.trigger == "scheduled")
        else:
            outcome = pipeline.run(params.trigger, force=params.force)
        summary = json_safe(json.loads(json.dumps(outcome.to_dict(), default=str)))
        summary["reason"] = redact(str(summary.get("reason") or ""), self._secrets)
        version = int(outcome.version) if outcome.version is not None and str(outcome.version).isdigit() else None
        if outcome.status in ("completed", "skipped"):
            self._finish(job.id, FINISHED, run_id=outcome.run_id, version=version, result=summary)
        elif cancel.is_set() and outcome.error_type == JobCancelled.__name__:
            self._mark_run_killed(outcome.run_id)
            self._finish(job.id, CANCELLED, run_id=outcome.run_id, result=summary, error=summary["reason"][:4000])
        else:  # refused (another retraining holds the lock) or failed
            self._finish(
                job.id,
                FAILED,
                run_id=outcome.run_id,
                version=version,
                result=summary,
                error=f"retraining {outcome.status}: {summary['reason']}"[:4000],
            )

    def _leaderboard(self, job: JobRecord, cancel: threading.Event) -> None:
        """A comparison of model families: every training stops on cancellation (the trainer callback),
        and so does the comparison between its steps (the progress callback)."""
        from backend.ml_engine.leaderboard import run_leaderboard

        params = ComparisonParams.model_validate(job.params)
        config = leaderboard_config(params, self.settings)
        progress = _LeaderboardProgress(self.store, job, cancel, self.pid, self.settings)
        try:
            result = run_leaderboard(
                config,
                settings=self.settings,
                progress=progress,
                callbacks=[_CancelCheck(cancel, "the comparison")],
            )
        except JobCancelled as exc:
            run_id = progress.run_id or self._comparison_run(job)
            self._mark_run_killed(run_id)
            self._finish(job.id, CANCELLED, run_id=run_id, result={}, error=redact(str(exc), self._secrets)[:4000])
            return
        summary = redact_tree(json_safe(json.loads(json.dumps(result.to_dict(), default=str))), self._secrets)
        self._finish(job.id, FINISHED, run_id=result.run_id, result=summary)

    def _monitor(self, job: JobRecord) -> None:
        """The outcome job: resolve logged predictions, roll up the live metrics, prune old rows."""
        from backend.ml_engine.monitoring import resolve_and_roll_up

        summary = resolve_and_roll_up(self.settings)
        result = redact_tree(json_safe(summary.to_dict()), self._secrets)
        self._finish(job.id, FINISHED, result=result)

    def _tune(self, job: JobRecord, cancel: threading.Event) -> None:
        """One trial of a study (``action`` "trial"), then the next trial jobs or the study's end; or the best
        trial retrained, registered and put through the gate (``action`` "register")."""
        from backend.ml_engine.tuning import StudyHandle

        from .jobs import JobService
        from .tuning import TuningService

        name = str(job.params.get("study") or "")
        action = str(job.params.get("action") or "trial")
        tuning = TuningService(self.settings, JobService(self.settings, store=self.store))
        if action == "register":
            self._tune_register(job, name, bool(job.params.get("promote")), job.params.get("model_name"))
            return
        study = tuning._load(name)
        source = study.user_attrs.get("data_source")
        data_path = resolve_data_source(str(source), self.settings) if source and source != "default" else None
        handle = StudyHandle.attach(name, settings=self.settings, data_path=data_path)
        if action == "finalize":  # nothing ran the study's end (stopped while its trial jobs were queued)
            then = tuning.after_trial(handle, job.id)
            self._finish(job.id, FINISHED, result=json_safe({"study": name, "trials": [], "then": then}))
            return
        progress = _LeaderboardProgress(self.store, job, cancel, self.pid, self.settings)
        progress.attach = False
        from backend.ml_engine.locks import Locks

        locks = Locks.from_settings(self.settings)
        ran = handle.run_trials(  # the study's next trials while it has any (at most ML_TUNING_TRIALS_PER_JOB)
            self.settings.tuning_trials_per_job,
            callbacks=[_CancelCheck(cancel, f"a trial of study {name}")],
            progress=lambda message, fraction: progress(message, 0.0),
            claim=lambda: locks.hold("tuning", name, timeout_s=120.0),
        )
        trials = {t.number: t for t in handle.study.get_trials(deepcopy=False)}
        done = [
            {
                "number": n,
                "state": trials[n].state.name,
                "value": trials[n].value,
                "error": trials[n].user_attrs.get("error") or trials[n].user_attrs.get("note"),
            }
            for n in ran
            if n in trials
        ]
        then = tuning.after_trial(handle, job.id)
        summary = {"study": name, "trials": done, "then": then}
        if cancel.is_set():
            self._finish(job.id, CANCELLED, result=json_safe(summary), error="stopped: the study was stopped")
        else:
            run_id = trials[ran[0]].user_attrs.get("mlflow_run_id") if ran and ran[0] in trials else None
            self._finish(job.id, FINISHED, run_id=run_id, result=json_safe(summary))

    def _tune_register(self, job: JobRecord, name: str, promote: bool, model_name: Any) -> None:
        from backend.ml_engine.tuning import register_best

        registered = register_best(
            name, settings=self.settings, model_name=str(model_name) if model_name else None, storage=None
        )
        summary: dict[str, Any] = {
            "study": name,
            "trial": registered.trial,
            "model_name": registered.model_name,
            "version": registered.version,
            "tags": registered.tags,
            "test_metrics": registered.test_metrics,
        }
        if promote and registered.version is not None:
            from .models import ModelService

            outcome = ModelService(self.settings).promote(
                registered.model_name,
                int(registered.version),
                reason=f"best trial #{registered.trial} of study {name}",
                actor="tuning",
            )
            summary["promotion"] = json_safe(outcome.model_dump(mode="json"))
        version = int(registered.version) if registered.version and registered.version.isdigit() else None
        self._finish(
            job.id,
            FINISHED,
            run_id=registered.run_id,
            version=version,
            result=redact_tree(json_safe(summary), self._secrets),
        )

    def _comparison_run(self, job: JobRecord) -> str | None:
        """The run of a comparison that ended early: the run linked to the job (None before it started)."""
        current = self.store.get(job.id)
        return current.run_id if current is not None else None


def _prepare_tracking_store(settings: ServiceSettings) -> None:
    """Open the tracking store once under a cluster-wide lock before the job uses it: MLflow creates
    the schema of an empty SQLite or PostgreSQL store when it first opens it, and two job processes
    doing that at the same moment collide ("table ... already exists")."""
    from backend.ml_engine.locks import Locks
    from backend.ml_engine.mlflow_integration.stores import store_kind

    uri = settings.mlflow_tracking_uri
    if store_kind(uri) not in ("sqlite", "database"):
        return
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401 - ~3 s of imports outside the cluster-wide lock

    with Locks.from_settings(settings).hold("jobs", "tracking-store-schema", timeout_s=300.0):
        make_client(uri).search_experiments(max_results=1)


def _die_with_parent(owner_pid: int) -> None:
    """End this process when the worker that started it dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watcher below still works
            pass
    if os.getppid() != owner_pid:  # the worker died before prctl took effect
        os._exit(3)

    def watch() -> None:
        while True:
            if os.getppid() != owner_pid:
                os._exit(3)
            threading.Event().wait(1.0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backend.services.job_process",
        description="Run one claimed job in this process (started by the worker; settings JSON on stdin).",
    )
    parser.add_argument("job_id")
    parser.add_argument("--owner-pid", type=int, required=True, help="pid of the worker that claimed the job")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads this job may use")
    args = parser.parse_args(argv)
    # the worker started this process in its own process group, out of reach of Ctrl-C in the worker's
    # terminal: on SIGINT the worker finishes its running jobs; a SIGINT sent here on purpose is ignored too
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(args.owner_pid)
    settings = settings_from_payload(sys.stdin.read())
    from backend.logging_setup import setup_logging

    setup_logging(settings.log_level, loggers=("backend",), fmt=settings.log_format)
    import torch

    torch.set_num_threads(max(1, args.threads))
    store = JobStore(settings.jobs_database_url.get_secret_value(), migrate=False)
    try:
        try:
            _prepare_tracking_store(settings)
        except Exception as exc:  # noqa: BLE001 - the job says why; its training would fail the same way
            logger.warning("tracking store not prepared: %s", one_line(exc))
        JobExecution(settings, store, args.owner_pid)(args.job_id)
    finally:
        store.close()
    return 0


def _exit_now(code: int) -> NoReturn:
    """End the job process without the interpreter's teardown (~2 s of module and torch finalisation
    after the job has ended; its worker waits for the exit before it claims the next job): the
    non-daemon threads are joined and the atexit handlers run (logging, MLflow's async queues)
    exactly as a normal exit does, then ``os._exit``."""
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    try:
        status = main()
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int) and exc.code is not None:
            print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - printed as the interpreter would, then the same fast exit
        traceback.print_exc()
        status = 1
    _exit_now(status)
