"""Hyperparameter studies for front ends: trials as jobs on any number of workers.

    service = TuningService(settings, jobs)
    service.submit(TuneParams(family="lightgbm", trials=20, parallel=2))   # the study, 2 trial jobs queued
    service.studies()                  # every study in ML_TUNING_STORAGE with its progress
    service.study(name)                # trials, best, holdout, DSR, PBO, MLflow run, plots as Plotly JSON
    service.stop(name)                 # no new trials; queued trial jobs cancelled, running ones stopped
    service.resume(name)               # trial jobs again up to the target
    service.promote_best(name)         # a job: retrain the best trial, register it, the promotion gate

The study is prepared in the caller (bad input is refused before anything is queued: a bad search
space, an unknown family, a study that exists with another space); then ``parallel`` trial jobs
(kind ``tune``, params ``{"study": name}``) go on the queue. Each trial job, in a worker's job
process, runs the study's next trials one after another (Optuna storage ``ML_TUNING_STORAGE``,
heartbeats on), each taken under the study's lock only while the target is not reached, at most
``ML_TUNING_TRIALS_PER_JOB`` of them (the process start is paid once for them); then, under the lock
(:meth:`TuningService.after_trial`), it tops the study up to ``parallel`` jobs in flight while trials
remain, or, when it was the last one, finalizes the study (the holdout read once, DSR, PBO, plots). A worker killed mid-trial: its job is reaped, its trial fails on a missed heartbeat
and is retried once by the next trial to start; the other jobs go on.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from backend.ml_engine.errors import one_line

from ._mlflow import translate_errors
from .data_sources import resolve_data_source
from .errors import ConflictError, InvalidRequestError, NotFoundError
from .job_store import QUEUED, RUNNING
from .jobs import JobService
from .redaction import redact, redact_tree
from .schemas import JobPublic, StudiesPublic, StudyPublic, StudySummaryPublic, TrialPublic, TuneParams, json_safe
from .settings import ServiceSettings

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from backend.ml_engine.tuning import StudyHandle, StudyProgress, TuningConfig

__all__ = ["TUNE_KIND", "TuningService", "tuning_config"]

logger = logging.getLogger(__name__)

TUNE_KIND = "tune"
#: Most seconds the last trial job waits for a trial whose worker died to fail its heartbeat.
ORPHAN_WAIT_FACTOR = 3


def tuning_config(params: TuneParams, settings: ServiceSettings) -> TuningConfig:
    """The engine's ``TuningConfig`` for validated params (unset fields from the settings)."""
    from backend.ml_engine.tuning import TuningConfig

    overrides: dict[str, Any] = {
        "data": resolve_data_source(params.data_source, settings),
        "symbols": list(params.symbols) if params.symbols else None,
        "timeframe": params.timeframe,
        "date_range": params.date_range,
        "window": params.window,
        "horizon": params.horizon,
        "seed": params.seed,
        "epochs": params.epochs,
        "folds": params.folds,
        "holdout_frac": params.holdout_frac,
        "space_toml": params.space,
        "family": params.family,
        "objective": params.objective,
        "pruner": params.pruner,
        "study_name": params.study,
        "n_trials": params.trials,
        "model_options": params.model_options or None,
    }
    return TuningConfig.from_settings(settings, **{k: v for k, v in overrides.items() if v is not None})


class TuningService:
    """Studies in the Optuna storage of the settings; trials as jobs through :class:`JobService`."""

    def __init__(self, settings: ServiceSettings, jobs: JobService) -> None:
        self.settings = settings
        self.jobs = jobs
        self._secrets = settings.secrets()

    @property
    def storage(self) -> str:
        from backend.ml_engine.tuning import default_storage

        return default_storage(self.settings)

    # -- submit ------------------------------------------------------------------------------------
    def submit(self, params: TuneParams) -> StudyPublic:
        """Prepare the study here (bad input: :class:`InvalidRequestError`, nothing queued), then queue
        ``parallel`` trial jobs. The data source's name is kept with the study, never its URL."""
        from backend.ml_engine.tuning import StudyHandle, TuningInputError

        try:
            config = tuning_config(params, self.settings)
        except (ValueError, TypeError) as exc:
            raise InvalidRequestError(redact(one_line(exc), self._secrets)) from None
        self.jobs.queue  # noqa: B018 - the queue's settings are checked before the study is written
        try:
            with translate_errors(self._secrets, "Optuna storage"):
                handle = StudyHandle.prepare(
                    config,
                    settings=self.settings,
                    tracking=True,
                    extra_attrs={"parallel": params.parallel, "data_source": params.data_source},
                )
        except TuningInputError as exc:
            raise InvalidRequestError(redact(one_line(exc), self._secrets)) from None
        self.top_up(handle.name)
        return self.study(handle.name)

    def top_up(self, name: str, *, exclude_job: str | None = None) -> list[JobPublic]:
        """Queue trial jobs of study ``name`` up to its ``parallel`` while trials remain (under the study's lock)."""
        from backend.ml_engine.locks import Locks

        with Locks.from_settings(self.settings).hold("tuning", name, timeout_s=120.0):
            study = self._load(name)
            return self._top_up_locked(study, exclude_job)

    def _top_up_locked(self, study: optuna.Study, exclude_job: str | None) -> list[JobPublic]:
        from backend.ml_engine.tuning import study_progress

        state = study_progress(study)
        queued, running = self._jobs_in_flight(study.study_name, exclude_job)
        parallel = max(1, int(study.user_attrs.get("parallel", 1)))
        need = state.remaining - len(queued)
        n_new = max(0, min(parallel - len(queued) - len(running), need))
        out = []
        for _ in range(n_new):
            out.append(self._submit_trial(study.study_name))
        if out:
            logger.info("study %s: %d trial job(s) queued (%s)", study.study_name, len(out), state.to_dict())
        return out

    def _submit_trial(self, name: str, *, action: str = "trial", **extra: Any) -> JobPublic:
        return self.jobs._submit(TUNE_KIND, {"study": name, "action": action, **extra}, None, None)

    def _jobs_in_flight(
        self, name: str, exclude_job: str | None = None, *, reap: bool = True
    ) -> tuple[list[str], list[str]]:
        """(queued, running) trial job ids of study ``name`` (``reap``: dead workers' jobs failed first)."""
        if reap:
            self.jobs.reap()
        store = self.jobs.store
        ids: dict[str, list[str]] = {QUEUED: [], RUNNING: []}
        for status in (QUEUED, RUNNING):
            for job in store.list(status=status, kind=TUNE_KIND, limit=10_000):
                mine = job.params.get("study") == name and job.params.get("action", "trial") == "trial"
                if mine and job.id != exclude_job:
                    ids[status].append(job.id)
        return ids[QUEUED], ids[RUNNING]

    # -- a trial job's end (in the worker's job process) --------------------------------------------
    def after_trial(self, handle: StudyHandle, job_id: str) -> str:
        """After trial job ``job_id`` ran its trial: queue the next ones, or finalize the study when this
        job was the last in flight and no trial remains. Returns what was done ("queued N",
        "finalized", "waiting", "nothing")."""
        from backend.ml_engine.locks import Locks

        locks = Locks.from_settings(self.settings)
        deadline = time.monotonic() + ORPHAN_WAIT_FACTOR * 2 * self.settings.tuning_heartbeat_s
        while True:
            with locks.hold("tuning", handle.name, timeout_s=300.0):
                study = self._load(handle.name)
                state = self._state(study)
                queued, running = self._jobs_in_flight(handle.name, job_id)
                if state.remaining > 0 and not state.stop_requested:
                    jobs = self._top_up_locked(study, job_id)
                    if jobs or queued or running:
                        return f"queued {len(jobs)}"
                in_flight = bool(queued or running)
                if in_flight:
                    return "nothing"
                if state.running > 0 and time.monotonic() < deadline:
                    orphans = True  # a dead worker's trial: wait for its heartbeat to go stale, then retry it
                else:
                    orphans = False
                    claim = study.user_attrs.get("finalizing")
                    claimed = bool(claim) and claim.get("job") != job_id
                    if claimed and claim.get("job") not in {j.id for j in self._active_jobs(handle.name)}:
                        claimed = False  # its job died mid-way: this one finalizes
                    if state.finalized or claimed:
                        return "nothing"
                    study.set_user_attr("finalizing", {"job": job_id, "at": time.time()})
            if orphans:
                time.sleep(max(1.0, self.settings.tuning_heartbeat_s))
                continue
            break
        try:
            handle.study = self._load(handle.name)
            handle.finalize()
        finally:
            self._load(handle.name).set_user_attr("finalizing", None)
        return "finalized"

    def _state(self, study: optuna.Study) -> StudyProgress:
        from backend.ml_engine.tuning import study_progress

        return study_progress(study)

    def _load(self, name: str) -> optuna.Study:
        from backend.ml_engine.tuning import TuningInputError, load_study

        try:
            with translate_errors(self._secrets, "Optuna storage"):
                return load_study(name, self.storage, self.settings)
        except TuningInputError as exc:
            raise NotFoundError(redact(one_line(exc), self._secrets)) from None

    # -- read --------------------------------------------------------------------------------------
    def studies(self) -> StudiesPublic:
        """Every study in the storage, newest first, with its progress and best value."""
        import optuna

        from backend.ml_engine.tuning import study_summary
        from backend.ml_engine.tuning._study import _open_storage

        with translate_errors(self._secrets, "Optuna storage"):
            store = _open_storage(self.storage, self.settings)
            summaries = optuna.get_all_study_summaries(store, include_best_trial=False)
            out = []
            for s in summaries:
                study = optuna.load_study(study_name=s.study_name, storage=store)
                out.append(self._summary(study, study_summary(study)))
        out.sort(key=lambda x: x.created_at or "", reverse=True)
        return StudiesPublic(data=out, count=len(out))

    def _summary(self, study: optuna.Study, result: Any) -> StudySummaryPublic:
        from backend.ml_engine.tuning import study_progress

        state = study_progress(study, fail_stale=False)  # a read writes nothing
        attrs = study.user_attrs
        queued, running = self._jobs_in_flight_safe(study.study_name)
        config = attrs.get("config") or {}
        return StudySummaryPublic(
            name=study.study_name,
            direction=result.direction,
            objective=str(attrs.get("objective", "")),
            family=_family_label(attrs),
            n_trials=result.n_trials,
            states=result.states,
            target=state.target,
            remaining=state.remaining,
            parallel=int(attrs.get("parallel", 1)),
            stop_requested=state.stop_requested,
            finalized=state.finalized,
            jobs_queued=len(queued),
            jobs_running=len(running),
            best_trial=result.best_trial,
            best_value=result.best_value,
            dsr=(result.dsr or {}).get("dsr"),
            pbo=(result.pbo or {}).get("pbo"),
            mlflow_run_id=result.run_id,
            created_at=attrs.get("created_at"),
            data_hash=attrs.get("data_hash"),
            timeframe=(config.get("data") or {}).get("timeframe"),
        )

    def _jobs_in_flight_safe(self, name: str) -> tuple[list[str], list[str]]:
        try:
            return self._jobs_in_flight(name, reap=False)
        except Exception as exc:  # noqa: BLE001 - the jobs database is down: the study is still readable
            logger.warning("jobs of study %s not read: %s", name, type(exc).__name__)
            return [], []

    def study(self, name: str) -> StudyPublic:
        """One study: its summary, every trial, the best trial's params, holdout, DSR and PBO (the plots:
        :meth:`figures`)."""
        from backend.ml_engine.tuning import study_summary

        study = self._load(name)
        result = study_summary(study)
        summary = self._summary(study, result)
        trials = [_trial_public(t) for t in study.get_trials(deepcopy=False)]
        return StudyPublic(
            **summary.model_dump(),
            best_params=json_safe(result.best_params),
            holdout=json_safe(result.holdout) if result.holdout else None,
            dsr_detail=json_safe(result.dsr) if result.dsr else None,
            pbo_detail=json_safe(result.pbo) if result.pbo else None,
            trials=trials,
            config=redact_tree(json_safe(study.user_attrs.get("config") or {}), self._secrets),
        )

    def figures(self, name: str) -> dict[str, Any]:
        """Optuna's optimization history and parameter importances as Plotly figures (``{name: figure}``);
        a figure Optuna cannot draw yet (importances need two completed trials) is left out."""
        from optuna import visualization as vis

        study = self._load(name)
        out: dict[str, Any] = {}
        for key, make in (
            ("optimization_history", vis.plot_optimization_history),
            ("param_importances", vis.plot_param_importances),
        ):
            try:
                out[key] = make(study)
            except Exception as exc:  # noqa: BLE001 - too few trials for this plot
                logger.debug("no %s for %s: %s", key, name, exc)
        return out

    # -- stop, resume, promote -----------------------------------------------------------------------
    def stop(self, name: str) -> StudyPublic:
        """No new trials: the study's stop flag is set, its queued trial jobs cancelled and its running trial
        jobs asked to stop (their trials end FAIL with "cancelled"). The last job to end finalizes the study."""
        from backend.ml_engine.tuning import request_stop

        self._load(name)  # 404 first
        with translate_errors(self._secrets, "Optuna storage"):
            request_stop(name, self.storage, self.settings)
        queued, running = self._jobs_in_flight(name)
        for job_id in [*queued, *running]:
            with contextlib.suppress(ConflictError):  # ended meanwhile
                self.jobs.cancel_job(job_id)
        self._finalize_if_idle(name)
        return self.study(name)

    def _finalize_if_idle(self, name: str) -> JobPublic | None:
        """Queue a job that finalizes study ``name`` when no trial job of it is running (none would) and it has
        trials the last finalization did not see."""
        queued, running = self._jobs_in_flight(name)
        study = self._load(name)
        state = self._state(study)
        if running or queued or state.finalized or (state.remaining > 0 and not state.stop_requested):
            return None
        if state.counted == 0:  # no trial ever ended: nothing to finalize
            return None
        if any(j.params.get("action") == "finalize" for j in self._active_jobs(name)):
            return None
        return self._submit_trial(name, action="finalize")

    def _active_jobs(self, name: str) -> list[Any]:
        out = []
        for status in (QUEUED, RUNNING):
            out += [
                j
                for j in self.jobs.store.list(status=status, kind=TUNE_KIND, limit=10_000)
                if j.params.get("study") == name
            ]
        return out

    def resume(self, name: str, *, parallel: int | None = None, more_trials: int = 0) -> StudyPublic:
        """Clear a stop request, optionally raise the target by ``more_trials`` and change ``parallel``, and
        queue trial jobs up to the target."""
        from backend.ml_engine.locks import Locks

        with Locks.from_settings(self.settings).hold("tuning", name, timeout_s=120.0):
            study = self._load(name)
            study.set_user_attr("stop_requested", False)
            if parallel is not None:
                study.set_user_attr("parallel", int(parallel))
            if more_trials:
                state = self._state(study)
                study.set_user_attr("target_trials", max(state.target, state.counted) + int(more_trials))
            self._top_up_locked(study, None)
        for job in self._active_jobs(name):  # a queued end of the stopped study is not needed any more
            if job.params.get("action") == "finalize" and job.status == QUEUED:
                with contextlib.suppress(ConflictError):
                    self.jobs.cancel_job(job.id)
        self._finalize_if_idle(name)
        return self.study(name)

    def promote_best(self, name: str, *, model_name: str | None = None) -> JobPublic:
        """Queue a job that retrains the study's best trial through the normal training path, registers it
        (tagged with the study, the trial, DSR and PBO) and puts it through the promotion gate."""
        from optuna.trial import TrialState

        from backend.ml_engine.tuning import study_progress

        study = self._load(name)
        if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
            raise ConflictError(f"study {name!r} has no completed trial yet")
        if not study_progress(study, fail_stale=False).finalized:
            raise ConflictError(
                f"study {name!r} is not finished: its holdout, DSR and PBO are computed when its last trial ends"
            )
        if any(j.params.get("action") == "register" for j in self._active_jobs(name)):
            raise ConflictError(f"the best trial of study {name!r} is being registered already")
        best = study.best_trial
        family = str(best.params.get("family") or (study.user_attrs.get("space") or {}).get("family", [""])[0])
        extra = {"promote": True, **({"model_name": model_name} if model_name else {})}
        return self.jobs._submit(
            TUNE_KIND, {"study": name, "action": "register", **extra}, model_name or family or None, None
        )


def _family_label(attrs: dict[str, Any]) -> str:
    space = attrs.get("space") or {}
    families = space.get("family") or []
    return "+".join(str(f) for f in families) if families else ""


def _trial_public(t: optuna.trial.FrozenTrial) -> TrialPublic:
    from backend.ml_engine.tuning import retried_trial_number

    attrs = t.user_attrs
    return TrialPublic(
        number=t.number,
        state=t.state.name,
        value=None if t.value is None else float(t.value),
        value_is_final=t.state.name == "COMPLETE",
        params=json_safe(dict(t.params)),
        seconds=attrs.get("seconds"),
        host=attrs.get("host"),
        sharpe=attrs.get("sharpe"),
        error=attrs.get("error") or attrs.get("note"),
        retry_of=retried_trial_number(t),
        mlflow_run_id=attrs.get("mlflow_run_id"),
        started_at=t.datetime_start,
        completed_at=t.datetime_complete,
    )
