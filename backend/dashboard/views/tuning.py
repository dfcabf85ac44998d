"""Подбор гиперпараметров: the Optuna studies (trials by state, best value, DSR, PBO), one study in detail
(its trials live while they run, Optuna's optimization history and parameter importances, DSR and PBO
explained, the holdout read once, the MLflow runs), the best trial promoted through the gate and a study
stopped (API token as for every change), and a form that starts a search as trial jobs on the workers
(validated by the API's own schema, :class:`~backend.services.schemas.TuneParams`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from backend.dashboard import charts, context
from backend.dashboard.i18n import current_language, has_text, t
from backend.dashboard.widgets import (
    PAGE_PATHS,
    act,
    feedback,
    fmt_num,
    form_body,
    job_panel,
    jobs_frame,
    keep,
    mlflow_run_url,
    recorded,
    show_error,
    token_input,
    validation_messages,
    write_allowed,
)
from backend.services.data_sources import DATA_SOURCES
from backend.services.errors import ServiceError
from backend.services.schemas import (
    JobPublic,
    PromotionDecisionPublic,
    StudyPublic,
    StudySummaryPublic,
    TrialPublic,
    TuneParams,
)
from backend.services.tuning import TUNE_KIND, TuningService

_STATE = "tuning."
TOKEN_KEY = _STATE + "token"
FORM_TOKEN_KEY = _STATE + "form_token"
#: The promote job of each study (study name -> job id), followed next to the button.
PROMOTE_JOBS_KEY = _STATE + "promote_jobs"
#: Seconds between two looks at a study whose trials run.
TRIALS_POLL_S = 5.0
#: Optuna's trial states, in the order the tables show them.
STATES: tuple[str, ...] = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
OBJECTIVES: tuple[str, ...] = ("accuracy", "f1_macro", "log_loss", "net_return")
#: Holdout metrics that are counts, shown without decimals.
COUNTS = frozenset({"n_trades", "windows"})
ALL_FAMILIES = ""
CLI_RUN = "python -m backend.ml_engine.tuning run --trials 20 --parallel 2"
#: DSR at or above this reads as "the best trial's edge is unlikely to be luck" when no gate threshold is set.
DSR_GOOD = 0.95
#: PBO at or above this: the selection is no better than a coin.
PBO_COIN = 0.5


def render() -> None:
    st.title(t("tuning.title"))
    st.caption(t("tuning.caption"))
    services = context.services()
    service = TuningService(services.settings, services.jobs)
    try:
        studies = service.studies().data
    except ServiceError as exc:
        show_error(exc)
        studies = None
    if studies is not None and not studies:
        _empty_state()
    elif studies:
        st.header(t("tuning.studies"))
        st.dataframe(studies_frame(studies), hide_index=True)
        name = _study_picker(studies)
        if name is not None:
            _study(service, name)

    st.header(t("tuning.start"))
    _form()
    _recent_jobs()


def _empty_state() -> None:
    st.info(t("tuning.none"))
    st.markdown(t("tuning.none_cli"))
    st.code(CLI_RUN, language="bash")


def _study_picker(studies: Sequence[StudySummaryPublic]) -> str | None:
    names = [s.name for s in studies]
    wanted = st.query_params.get("study")
    name = st.selectbox(
        t("tuning.pick"),
        names,
        index=names.index(wanted) if wanted in names else 0,
        format_func=lambda n: _study_label(next(s for s in studies if s.name == n)),
    )
    if name and name != wanted:
        st.query_params["study"] = name
    return name


def _study_label(s: StudySummaryPublic) -> str:
    return t("tuning.pick_label", name=s.name, family=s.family or "—", n=s.n_trials)


# -- tables ------------------------------------------------------------------------------------


def state_label(state: str) -> str:
    """An Optuna trial state in the page's language (COMPLETE -> "завершён")."""
    key = f"tuning.state.{state}"
    return t(key) if has_text(key) else state


def objective_label(objective: str) -> str:
    key = f"tuning.objective.{objective}"
    return t(key) if has_text(key) else objective


def states_text(states: Mapping[str, int]) -> str:
    """``{"COMPLETE": 3, "FAIL": 1}`` -> "завершён 3 · ошибка 1" (the known states first, in order)."""
    order = [s for s in STATES if states.get(s)] + sorted(s for s in states if s not in STATES and states[s])
    return " · ".join(f"{state_label(s)} {states[s]}" for s in order) or "—"


def _yes_no(value: bool) -> str:
    return t("common.yes") if value else t("common.no")


def studies_frame(studies: Sequence[StudySummaryPublic]) -> pd.DataFrame:
    """One line per study (newest first, as the service lists them)."""
    return pd.DataFrame(
        [
            {
                t("tuning.col.study"): s.name,
                t("tuning.col.family"): s.family or "—",
                t("tuning.col.objective"): objective_label(s.objective) if s.objective else "—",
                t("tuning.col.trials"): states_text(s.states),
                t("tuning.col.target"): s.target,
                t("tuning.col.jobs"): f"{s.jobs_queued} / {s.jobs_running}",
                t("tuning.col.best"): fmt_num(s.best_value),
                "DSR": fmt_num(s.dsr, 3),
                "PBO": fmt_num(s.pbo, 3),
                t("tuning.col.finalized"): _yes_no(s.finalized),
                t("tuning.col.created"): (s.created_at or "—")[:19].replace("T", " "),
            }
            for s in studies
        ]
    )


def _param(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_param(v)}" for k, v in sorted(params.items())) or "—"


def trials_frame(trials: Sequence[TrialPublic]) -> pd.DataFrame:
    """One line per trial: its number, state in words, value, params, time, host, the trial it retries, error."""
    return pd.DataFrame(
        [
            {
                t("tuning.col.number"): tr.number,
                t("tuning.col.state"): state_label(tr.state),
                t("tuning.col.value"): _trial_value(tr),
                t("tuning.col.params"): _params_text(tr.params),
                t("tuning.col.sharpe"): fmt_num(tr.sharpe, 3),
                t("tuning.col.seconds"): fmt_num(tr.seconds, 1),
                t("tuning.col.host"): tr.host or "—",
                t("tuning.col.retry_of"): "—" if tr.retry_of is None else f"#{tr.retry_of}",
                t("tuning.col.error"): tr.error or "—",
            }
            for tr in trials
        ],
        columns=[
            t(f"tuning.col.{c}")
            for c in ("number", "state", "value", "params", "sharpe", "seconds", "host", "retry_of", "error")
        ],
    )


def _trial_value(trial: TrialPublic) -> str:
    """The trial's value; a pruned trial's is the last one it reported (an epoch, a fold), marked as such."""
    if trial.state == "PRUNED" and trial.value is not None:
        return t("tuning.intermediate", value=fmt_num(trial.value))
    return fmt_num(trial.value)


def is_live(study: StudySummaryPublic) -> bool:
    """Trials run or are queued: the trials table refreshes itself."""
    return bool(study.jobs_queued or study.jobs_running or study.states.get("RUNNING"))


# -- one study ---------------------------------------------------------------------------------


def _study(service: TuningService, name: str) -> None:
    try:
        study = service.study(name)
    except ServiceError as exc:
        show_error(exc)
        return
    st.header(t("tuning.study", name=study.name))
    config = study.config or {}
    st.caption(
        t(
            "tuning.study_caption",
            family=study.family or "—",
            objective=objective_label(study.objective),
            direction=_direction(study.direction),
            target=study.target,
            parallel=study.parallel,
            folds=config.get("folds", "—"),
        )
    )
    _best_and_holdout(study)
    _overfitting(study)
    _mlflow(study)
    _actions(service, study)

    st.subheader(t("tuning.trials"))
    if is_live(study):
        st.caption(t("tuning.live", s=int(TRIALS_POLL_S)))
        _live_trials(name)
    else:
        _trials(service, study)


def _direction(direction: str) -> str:
    key = f"tuning.direction.{direction}"
    return t(key) if has_text(key) else direction


@st.fragment(run_every=TRIALS_POLL_S)
def _live_trials(name: str) -> None:
    services = context.services()
    service = TuningService(services.settings, services.jobs)
    try:
        study = service.study(name)
    except ServiceError as exc:
        show_error(exc)
        return
    _trials(service, study)
    if not is_live(study):
        st.rerun()  # the whole page: the study is finalized, DSR, PBO and the holdout are new


def _trials(service: TuningService, study: StudyPublic) -> None:
    st.markdown(t("tuning.progress", states=states_text(study.states), target=study.target, left=study.remaining))
    if study.stop_requested:
        st.warning(t("tuning.stop_requested"))
    if not study.trials:
        st.info(t("tuning.no_trials"))
        return
    st.dataframe(trials_frame(study.trials), hide_index=True)
    st.caption(t("tuning.trials_legend"))
    try:
        figures = service.figures(study.name)
    except ServiceError as exc:
        show_error(exc)
        return
    history, importances = st.columns(2)
    with history:
        fig = figures.get("optimization_history")
        if fig is None:
            st.caption(t("tuning.no_history"))
        else:
            st.plotly_chart(
                localize_figure(fig, "optimization_history", study.objective),
                config=charts.CONFIG,
                key=_STATE + "history",
            )
    with importances:
        fig = figures.get("param_importances")
        if fig is None:
            st.caption(t("tuning.no_importances"))
        else:
            st.plotly_chart(
                localize_figure(fig, "param_importances", study.objective),
                config=charts.CONFIG,
                key=_STATE + "importances",
            )
            st.caption(t("tuning.importances_caption"))


#: Optuna's own trace names and what the page calls them.
_TRACE_KEYS = {
    "Objective Value": "tuning.chart.objective_value",
    "Best Value": "tuning.chart.best_value",
    "Infeasible Trial": "tuning.chart.infeasible",
}


def localize_figure(fig: Any, which: str, objective: str) -> Any:
    """Optuna's figure with the page's words for its title, axes and trace names."""
    for trace in fig.data:
        key = _TRACE_KEYS.get(getattr(trace, "name", None) or "")
        if key:
            trace.name = t(key)
    layout: dict[str, Any] = {
        "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
        "height": 360,
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0},
    }
    if which == "optimization_history":
        layout |= {
            "title": {"text": t("tuning.chart.history"), "x": 0, "xanchor": "left", "font": {"size": 15}},
            "xaxis_title": t("tuning.chart.trial"),
            "yaxis_title": objective_label(objective),
        }
    else:
        layout |= {
            "title": {"text": t("tuning.chart.importances"), "x": 0, "xanchor": "left", "font": {"size": 15}},
            "xaxis_title": t("tuning.chart.importance"),
            "yaxis_title": t("tuning.chart.param"),
        }
    fig.update_layout(**layout)
    return fig


def _num(value: Any, digits: int = 4) -> str:
    return fmt_num(float(value), digits) if isinstance(value, (int, float)) and not isinstance(value, bool) else "—"


def _best_and_holdout(study: StudyPublic) -> None:
    best, holdout_tile, trials = st.columns(3)
    best.metric(
        t("tuning.best_value", objective=objective_label(study.objective)),
        fmt_num(study.best_value),
        help=t("tuning.best_value_help"),
    )
    if study.best_trial is not None:
        best.caption(t("tuning.best_trial", n=study.best_trial))
    holdout = study.holdout or None
    metrics = (holdout or {}).get("metrics") or {}
    holdout_tile.metric(
        t("tuning.holdout_value", objective=objective_label(study.objective)),
        _num(metrics.get(study.objective)),
        help=t("tuning.holdout_help"),
    )
    if holdout is None:
        holdout_tile.caption(t("tuning.no_holdout"))
    else:
        read_for = holdout.get("trial")
        holdout_tile.caption(t("tuning.holdout_trial", n=read_for if read_for is not None else "—"))
        if read_for is not None and study.best_trial is not None and read_for != study.best_trial:
            holdout_tile.warning(t("tuning.holdout_stale", read=read_for, best=study.best_trial))
    trials.metric(t("tuning.trials_done"), f"{study.n_trials} / {study.target}", help=t("tuning.trials_help"))
    trials.caption(states_text(study.states))
    if holdout is not None:
        with st.expander(t("tuning.holdout_all")):
            st.dataframe(holdout_frame(holdout), hide_index=True)
    if study.best_params:
        with st.expander(t("tuning.best_params")):
            st.dataframe(
                pd.DataFrame(
                    [
                        {t("tuning.col.param"): k, t("tuning.col.value"): _param(v, 6)}
                        for k, v in sorted(study.best_params.items())
                    ]
                ),
                hide_index=True,
            )


def holdout_frame(holdout: Mapping[str, Any]) -> pd.DataFrame:
    """The holdout's metrics (the objectives, trades, windows), its rows and how long the read took."""
    metrics = holdout.get("metrics") or {}
    rows = [
        {t("tuning.col.metric"): objective_label(k), t("tuning.col.value"): _count(v) if k in COUNTS else _num(v)}
        for k, v in metrics.items()
    ]
    rows.append(
        {t("tuning.col.metric"): t("tuning.holdout_rows"), t("tuning.col.value"): str(holdout.get("rows", "—"))}
    )
    rows.append(
        {t("tuning.col.metric"): t("tuning.holdout_seconds"), t("tuning.col.value"): _num(holdout.get("seconds"), 1)}
    )
    return pd.DataFrame(rows)


def _overfitting(study: StudyPublic) -> None:
    st.subheader(t("tuning.overfitting"))
    settings = context.settings()
    dsr_col, pbo_col = st.columns(2, gap="large")
    with dsr_col, st.container(border=True):
        st.metric(t("tuning.dsr"), fmt_num(study.dsr, 3))
        st.markdown(t("tuning.dsr_explained"))
        detail = study.dsr_detail or {}
        if study.dsr is None:
            st.caption(t("tuning.dsr_none"))
        else:
            st.caption(
                t(
                    "tuning.dsr_detail",
                    n=_count(detail.get("n_trials")),
                    sharpe=_num(detail.get("sharpe"), 4),
                    sr0=_num(detail.get("sr0"), 4),
                    obs=_count(detail.get("n_obs")),
                )
            )
            floor = settings.gate_min_dsr
            good = study.dsr >= (floor if floor is not None else DSR_GOOD)
            bar = fmt_num(floor if floor is not None else DSR_GOOD, 2)
            if good:
                st.success(t("tuning.dsr_good", floor=bar))
            else:
                st.warning(t("tuning.dsr_low", floor=bar))
        st.caption(
            t("tuning.gate_dsr", value=fmt_num(settings.gate_min_dsr, 2))
            if settings.gate_min_dsr is not None
            else t("tuning.gate_dsr_unset")
        )
    with pbo_col, st.container(border=True):
        st.metric(t("tuning.pbo"), fmt_num(study.pbo, 3))
        st.markdown(t("tuning.pbo_explained"))
        detail = study.pbo_detail or {}
        if study.pbo is None:
            st.caption(t("tuning.pbo_none"))
        else:
            st.caption(
                t(
                    "tuning.pbo_detail",
                    n=_count(detail.get("n_trials")),
                    splits=_count(detail.get("n_splits")),
                    obs=_count(detail.get("n_obs")),
                    loss=_num(detail.get("probability_of_loss"), 3),
                )
            )
            if study.pbo >= PBO_COIN:
                st.warning(t("tuning.pbo_coin"))
            elif settings.gate_max_pbo is not None and study.pbo > settings.gate_max_pbo:
                st.warning(t("tuning.pbo_above_gate", value=fmt_num(settings.gate_max_pbo, 2)))
            else:
                st.success(t("tuning.pbo_good"))
        st.caption(
            t("tuning.gate_pbo", value=fmt_num(settings.gate_max_pbo, 2))
            if settings.gate_max_pbo is not None
            else t("tuning.gate_pbo_unset")
        )
    if not study.finalized:
        st.caption(t("tuning.not_finalized"))


def _count(value: Any) -> str:
    return str(int(value)) if isinstance(value, (int, float)) and math.isfinite(float(value)) else "—"


def _mlflow(study: StudyPublic) -> None:
    st.subheader(t("tuning.mlflow"))
    best = next((tr for tr in study.trials if tr.number == study.best_trial), None)
    child = best.mlflow_run_id if best is not None else None
    if not study.mlflow_run_id and not child:
        st.caption(t("tuning.no_mlflow"))
        return
    for label_key, run_id in (("tuning.parent_run", study.mlflow_run_id), ("tuning.best_run", child)):
        if not run_id:
            continue
        st.markdown(t(label_key, n=study.best_trial if study.best_trial is not None else "—"))
        st.code(run_id, language=None)
        st.page_link(
            PAGE_PATHS["runs"],
            label=t("tuning.open_run", run=run_id[:12]),
            icon=":material/science:",
            query_params={"run": run_id},
        )
        st.markdown(t("leaderboard.mlflow_link", url=mlflow_run_url(run_id)))


# -- actions: promote the best trial, stop ---------------------------------------------------------


def _actions(service: TuningService, study: StudyPublic) -> None:
    st.subheader(t("tuning.actions"))
    allowed = write_allowed()
    token_input(TOKEN_KEY)
    promote, stop = st.columns(2, gap="large")
    with promote, st.container(border=True):
        st.markdown(t("tuning.promote_heading"))
        st.caption(t("tuning.promote_text"))
        has_best = study.best_trial is not None
        if not has_best:
            st.caption(t("tuning.nothing_to_promote"))
        st.button(
            t("tuning.promote_button"),
            key=_STATE + "promote_button",
            type="primary",
            disabled=not (allowed and has_best),
            on_click=_promote,
            args=(study.name,),
        )
        feedback(_STATE, "promote", _promote_queued, scope=study.name)
        job_id = (st.session_state.get(PROMOTE_JOBS_KEY) or {}).get(study.name)
        if job_id:
            job_panel(job_id, view=_promote_view)
    with stop, st.container(border=True):
        st.markdown(t("tuning.stop_heading"))
        st.caption(t("tuning.stop_text"))
        can_stop = not study.stop_requested and bool(study.remaining or study.jobs_queued or study.jobs_running)
        st.button(
            t("tuning.stop_button"),
            key=_STATE + "stop_button",
            disabled=not (allowed and can_stop),
            on_click=_stop,
            args=(study.name,),
        )
        shown = feedback(_STATE, "stop", _stopped, scope=study.name)
        if not shown and not can_stop:
            st.caption(t("tuning.stop_requested") if study.stop_requested else t("tuning.nothing_to_stop"))


def _promote(name: str) -> None:
    def call() -> JobPublic:
        services = context.services()
        job = TuningService(services.settings, services.jobs).promote_best(name)
        st.session_state[PROMOTE_JOBS_KEY] = {**(st.session_state.get(PROMOTE_JOBS_KEY) or {}), name: job.id}
        return job

    act(_STATE, "promote", call, token_key=TOKEN_KEY, action_name="tune-promote", scope=name)


def _stop(name: str) -> None:
    def call() -> StudyPublic:
        services = context.services()
        return TuningService(services.settings, services.jobs).stop(name)

    act(_STATE, "stop", call, token_key=TOKEN_KEY, action_name="tune-stop", scope=name)


def _promote_queued(job: JobPublic) -> None:
    st.success(t("tuning.promote_queued", id=job.id[:12]))


def _stopped(_study: StudyPublic) -> None:
    st.success(t("tuning.stopped"))


def _promote_view(job: JobPublic) -> None:
    st.markdown(t("job.heading", kind=t(f"job.kind.{job.kind}"), id=job.id[:12], status=t(f"job.status.{job.status}")))
    st.caption(t("tuning.follow", id=job.id))
    if job.status == "queued":
        st.info(t("job.queued_hint"))
    elif job.status == "failed":
        st.error(t("job.failed"))
        recorded(job.error)
    elif job.status == "cancelled":
        st.warning(t("job.cancelled"))
    elif job.status == "finished":
        result = job.result or {}
        name, version = result.get("model_name"), result.get("version")
        if name and version:
            st.page_link(
                PAGE_PATHS["models"],
                label=t("job.open_version", name=name, version=version),
                icon=":material/inventory_2:",
                query_params={"model": str(name), "version": str(version)},
            )
        promotion = result.get("promotion")
        if isinstance(promotion, Mapping):
            try:
                decision = PromotionDecisionPublic.model_validate(promotion)
            except ValidationError:
                decision = None
            if decision is not None and decision.promoted:
                st.success(t("tuning.promoted", name=name or "—", version=version or "—"))
            elif decision is not None:
                st.warning(t("tuning.refused"))
                recorded(decision.reason_text(current_language()))
        else:
            st.success(t("tuning.registered", name=name or "—", version=version or "—"))


# -- a new search ------------------------------------------------------------------------------


def _families() -> list[str]:
    from backend.ml_engine.families import family_names

    return family_names()


def _form() -> None:
    st.markdown(t("tuning.cli"))
    st.code(CLI_RUN, language="bash")
    allowed = write_allowed()
    if not allowed:
        st.info(t("access.read_only"))
    with st.form(_STATE + "form"):
        c1, c2, c3 = st.columns(3)
        c1.selectbox(
            t("tuning.field.family"),
            [ALL_FAMILIES, *_families()],
            key=_STATE + "family",
            format_func=lambda f: f or t("tuning.all_families"),
        )
        c2.number_input(t("tuning.field.trials"), min_value=1, max_value=1000, value=20, step=1, key=_STATE + "trials")
        c3.number_input(
            t("tuning.field.parallel"),
            min_value=1,
            max_value=64,
            value=2,
            step=1,
            key=_STATE + "parallel",
            help=t("tuning.parallel_help"),
        )
        c1.selectbox(t("tuning.field.objective"), OBJECTIVES, key=_STATE + "objective", format_func=objective_label)
        c2.selectbox(
            t("tuning.field.data_source"),
            DATA_SOURCES,
            key=_STATE + "data_source",
            format_func=lambda s: t(f"training.source.{s}"),
        )
        c3.number_input(
            t("tuning.field.date_range"),
            min_value=0.0,
            max_value=3650.0,
            value=None,
            step=1.0,
            key=_STATE + "date_range",
            placeholder=t("training.all_data"),
        )
        c1.text_input(t("tuning.field.study"), key=_STATE + "study", placeholder=t("tuning.study_auto"))
        if allowed:
            st.text_input(t("access.token"), type="password", key=FORM_TOKEN_KEY, help=t("access.token_help"))
        st.form_submit_button(
            t("tuning.submit"), type="primary", disabled=not allowed, key=_STATE + "submit", on_click=_submit
        )
    _submit_outcome()


def tune_request(values: Mapping[str, Any]) -> dict[str, Any]:
    """The form's fields as the body ``POST /tuning/studies`` would get (empty fields and "all families" left out)."""
    body = form_body(dict(values))
    for key in ("trials", "parallel"):
        if key in body:
            body[key] = int(body[key])
    if "date_range" in body:
        body["date_range"] = float(body["date_range"])
    return body


def _submit() -> None:
    state = st.session_state
    values = {
        k: state.get(_STATE + k)
        for k in ("family", "trials", "parallel", "objective", "data_source", "date_range", "study")
    }
    try:
        params = TuneParams.model_validate(tune_request(values))
    except ValidationError as exc:
        keep(_STATE, "submit", "invalid", validation_messages(exc, "tuning.field"))
        return

    def call() -> StudyPublic:
        services = context.services()
        return TuningService(services.settings, services.jobs).submit(params)

    outcome = act(_STATE, "submit", call, token_key=FORM_TOKEN_KEY, action_name="tune")
    if outcome.status == "ok":
        st.query_params["study"] = outcome.payload.name


def _submit_outcome() -> None:
    feedback(_STATE, "submit", _submitted, invalid_key="tuning.invalid")


def _submitted(study: StudyPublic) -> None:
    st.success(
        t(
            "tuning.submitted",
            name=study.name,
            jobs=study.jobs_queued + study.jobs_running,
            target=study.target,
        )
    )


def _recent_jobs() -> None:
    st.header(t("tuning.recent"))
    try:
        recent = context.services().jobs.list_jobs(kind=TUNE_KIND, limit=20).data
    except ServiceError as exc:
        show_error(exc)
        return
    if not recent:
        st.info(t("tuning.no_jobs"))
        return
    frame = jobs_frame(recent)
    frame.insert(
        2,
        t("tuning.col.study"),
        [str(j.params.get("study") or "—") for j in recent],
    )
    frame.insert(
        3,
        t("tuning.col.action"),
        [
            t("tuning.action.register") if j.params.get("action") == "register" else t("tuning.action.trial")
            for j in recent
        ],
    )
    st.dataframe(frame, hide_index=True)
    st.caption(t("tuning.recent_caption"))


if __name__ == "__main__":
    render()
