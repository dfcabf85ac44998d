"""Переобучение и дрейф: retraining runs with their trigger and decision, the drift report as
charts (the latest recorded one, or a check run now), and a form to queue a retraining."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from backend.dashboard import charts, context
from backend.dashboard.i18n import current_language, in_language, t
from backend.dashboard.widgets import (
    act,
    cancel_box,
    feedback,
    fmt_num,
    fmt_time,
    follow_job,
    job_panel,
    jobs_frame,
    keep,
    show_error,
    term,
    validation_messages,
    write_allowed,
)
from backend.ml_engine.config import DEFAULT_MODEL_NAME
from backend.services.data_sources import DATA_SOURCES
from backend.services.errors import ServiceError
from backend.services.overview import RetrainingRunPublic
from backend.services.schemas import RetrainParams

_STATE = "retraining."
DRIFT_KEY = _STATE + "drift"
JOB_KEY = _STATE + "job"
TRIGGERS: tuple[str, ...] = ("manual", "scheduled", "drift", "performance_drop")


def render() -> None:
    st.title(t("retraining.title"))
    st.caption(t("retraining.caption"))
    services = context.services()
    overview = context.overview()
    try:
        names = [m.name for m in services.models.list_models().data]
    except ServiceError as exc:
        show_error(exc)
        names = []
    names = names or [DEFAULT_MODEL_NAME]
    wanted = st.query_params.get("model")
    name = st.selectbox(
        t("models.model"), names, index=names.index(wanted) if wanted in names else 0, help=term("registry")
    )

    st.header(t("retraining.runs"), help=term("run"))
    try:
        runs = overview.retraining_runs(name, max_results=100).data
    except ServiceError as exc:
        show_error(exc)
        runs = []
    if runs:
        _runs_table(runs)
        _runs_chart(runs)
    else:
        st.info(t("retraining.no_runs"))

    st.header(t("retraining.drift"))
    _drift(name)

    st.header(t("retraining.start"))
    _start_form(name)

    st.header(t("retraining.jobs"))
    _jobs(name)


def _jobs(name: str) -> None:
    """Recent retraining jobs of this model, by hand and by the schedule; follow or cancel one."""
    st.caption(t("retraining.jobs_caption"))
    try:
        recent = [j for j in context.services().jobs.list_jobs(kind="retrain", limit=50).data if j.model_name == name]
    except ServiceError as exc:
        show_error(exc)
        return
    if not recent:
        st.info(t("retraining.no_jobs"))
        return
    st.dataframe(jobs_frame(recent), hide_index=True)
    follow_job(recent, JOB_KEY, key=_STATE + "follow")
    cancel_box(next((j for j in recent if j.id == st.session_state.get(JOB_KEY)), None), _STATE)


def _runs_table(runs: list[RetrainingRunPublic]) -> None:
    def yes_no(value: bool | None) -> str:
        return "—" if value is None else t("common.yes") if value else t("common.no")

    st.dataframe(
        pd.DataFrame(
            [
                {
                    t("col.started"): fmt_time(r.start_time),
                    t("col.status"): t(f"run.status.{r.status}"),
                    t("col.trigger"): t(f"trigger.{r.trigger}") if r.trigger in TRIGGERS else (r.trigger or "—"),
                    t("col.decision"): t(f"decision.{r.decision}") if r.decision in ("promoted", "refused") else "—",
                    t("col.candidate"): f"v{r.candidate_version}" if r.candidate_version else "—",
                    t("col.production_before"): f"v{r.production_before}" if r.production_before else "—",
                    t("col.drift"): yes_no(r.drift_detected),
                    "walk_forward_accuracy_mean": fmt_num(r.metrics.get("walk_forward_accuracy_mean")),
                    t("col.reason"): _reason(r),
                    t("col.run_id"): r.run_id,
                }
                for r in runs
            ]
        ),
        hide_index=True,
    )


def _reason(run: RetrainingRunPublic) -> str:
    """The gate's verdict rendered from its codes in the page's language (the candidate's numbers named
    as the walk-forward means they are); a failure, or a reason recorded only in English, as a pointer."""
    text = run.decision_text(current_language())
    if text and in_language(text):
        return text
    if text:
        return t("yard.reason_tag")
    return t("yard.failed_tag") if run.failure_reason else "—"


def _runs_chart(runs: list[RetrainingRunPublic]) -> None:
    if len(runs) < 2:
        return  # one point is no trend
    ordered = sorted(runs, key=lambda r: r.start_time.timestamp() if r.start_time else 0.0)
    keys = ("walk_forward_accuracy_mean", "walk_forward_production_accuracy_mean", "drift_share")
    ys = {k: [r.metrics.get(k) for r in ordered] for k in keys if any(k in r.metrics for r in ordered)}
    if ys:
        x = [f"{fmt_time(r.start_time)} · {r.run_id[:6]}" for r in ordered]
        fig = charts.series_figure(
            x, ys, title=t("retraining.chart"), x_title=t("chart.time"), y_title=t("chart.value")
        )
        st.plotly_chart(fig, config=charts.CONFIG, key=_STATE + "runs_chart")


def _drift(name: str) -> None:
    overview = context.overview()
    try:
        status = overview.latest_drift(name)
    except ServiceError as exc:
        show_error(exc)
        status = None
    fresh: dict[str, Any] = st.session_state.get(DRIFT_KEY) or {}
    report: dict[str, Any] | None = fresh.get(name)
    source = t("retraining.drift_fresh") if report is not None else None
    if report is None and status is not None:
        try:
            report = overview.drift_report(status.run_id)
        except ServiceError as exc:
            show_error(exc)
        source = t(
            "retraining.drift_recorded", run=status.run_name or status.run_id[:12], when=fmt_time(status.checked_at)
        )
        if report is None:  # the run recorded its verdict but no readable report
            text = t(
                "overview.drift_yes" if status.drifted else "overview.drift_no",
                name=name,
                when=fmt_time(status.checked_at),
                share=fmt_num(status.drift_share, 2),
            )
            (st.error if status.drifted else st.success)(text)
    elif report is None:
        st.info(t("overview.drift_none", name=name))
    if report:
        _drift_report(report, source)

    with st.expander(t("retraining.recheck")):
        _drift_form(name, fresh)


def _drift_form(name: str, fresh: dict[str, Any]) -> None:
    """Check drift now; an error stays under the button, a fresh report replaces the one above."""
    with st.form(_STATE + "drift_form"):
        c1, c2 = st.columns(2)
        recent_days = c1.number_input(
            t("retraining.recent_days"),
            min_value=0.1,
            max_value=365.0,
            value=None,
            step=1.0,
            key=_STATE + "recent_days",
            placeholder=t("retraining.pipeline_default"),
        )
        data_source = c2.selectbox(
            t("training.field.data_source"),
            DATA_SOURCES,
            key=_STATE + "drift_source",
            format_func=lambda s: t(f"training.source.{s}"),
        )
        checked = st.form_submit_button(t("retraining.check_now"), key=_STATE + "check_now")
    if checked:
        with st.spinner(t("retraining.checking")):
            outcome = act(
                _STATE,
                "check",
                lambda: context.services().retraining.check_drift(
                    name, recent_days=recent_days, data_source=data_source
                ),
                scope=name,
            )
        if outcome.status == "ok":
            st.session_state[DRIFT_KEY] = {**fresh, name: outcome.payload.report}
            st.rerun()
    feedback(_STATE, "check", lambda _result: st.success(t("retraining.checked")), scope=name)


def _drift_report(report: dict[str, Any], source: str | None) -> None:
    features = [f for f in report.get("features") or [] if isinstance(f, dict) and "feature" in f]
    drifted = bool(report.get("drifted"))
    (st.error if drifted else st.success)(
        t(
            "retraining.verdict_yes" if drifted else "retraining.verdict_no",
            n=report.get("n_drifted", 0),
            total=report.get("n_features", len(features)),
            share=fmt_num(report.get("drift_share"), 2),
        )
    )
    if source:
        st.caption(source)
    if report.get("n_current") is not None and report.get("n_reference") is not None:
        st.caption(t("retraining.rows", current=report["n_current"], reference=report["n_reference"]))
    if report.get("drifted_features"):
        st.markdown(t("retraining.drifted_list", features=", ".join(f"`{f}`" for f in report["drifted_features"])))
    if not features:
        return
    config = report.get("config") or {}
    _drift_charts(features, config)
    st.caption(
        t(
            "retraining.drift_rule",
            psi=fmt_num(config.get("psi_threshold"), 2),
            ks=fmt_num(config.get("ks_pvalue_threshold"), 3),
            share=fmt_num(config.get("min_drift_share"), 2),
        )
    )
    with st.expander(t("retraining.feature_table")):
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        t("col.feature"): f["feature"],
                        t("retraining.psi"): f.get("psi"),
                        t("retraining.psi_limit"): f.get("psi_limit"),
                        t("retraining.ks_stat"): f.get("ks_statistic"),
                        t("retraining.ks_pvalue"): f.get("ks_pvalue"),
                        t("drift.neg_log10_p"): charts.neg_log10_pvalue(f.get("ks_pvalue"), floor=1e-300),
                        t("col.drift"): t("common.yes") if f.get("drifted") else t("common.no"),
                    }
                    for f in features
                ]
            ),
            hide_index=True,
            column_config={  # p-values as 1.2e-09, not 0.0000
                t("retraining.ks_pvalue"): st.column_config.NumberColumn(format="%.2e"),
                t("drift.neg_log10_p"): st.column_config.NumberColumn(format="%.1f"),
            },
        )


def _drift_charts(features: list[dict[str, Any]], config: dict[str, Any]) -> None:
    """PSI and the KS test's -log10 p per feature, read the same way: taller = more drift, the
    thresholds (PSI 0.2, p 0.01 -> 2) as dashed lines, drifted features in red."""
    psi_threshold = config.get("psi_threshold")
    ks_threshold = config.get("ks_pvalue_threshold")
    st.plotly_chart(
        charts.drift_psi_figure(
            features,
            title=t("drift.psi_chart"),
            psi_name=t("retraining.psi"),
            limit_name=t("retraining.psi_limit"),
            drifted_name=t("retraining.feature_drifted"),
            stable_name=t("retraining.feature_stable"),
            threshold=psi_threshold,
            threshold_name=t("drift.psi_line", value=fmt_num(psi_threshold, 2)),
        ),
        config=charts.CONFIG,
        key=_STATE + "psi",
    )
    height = charts.neg_log10_pvalue(ks_threshold)
    st.plotly_chart(
        charts.drift_ks_figure(
            features,
            ks_threshold,
            title=t("drift.ks_chart"),
            pvalue_name=t("retraining.ks_pvalue"),
            threshold_name=t("drift.ks_line", p=fmt_num(ks_threshold, 3), height=fmt_num(height, 1)),
            value_name=t("drift.neg_log10_p"),
            drifted_name=t("retraining.feature_drifted"),
            stable_name=t("retraining.feature_stable"),
        ),
        config=charts.CONFIG,
        key=_STATE + "ks",
    )
    st.caption(
        t(
            "drift.charts_caption",
            floor=f"{charts.KS_PVALUE_FLOOR:.0e}",
            cap=f"{charts.neg_log10_pvalue(charts.KS_PVALUE_FLOOR):g}",
        )
    )


def _start_form(name: str) -> None:
    allowed = write_allowed()
    if not allowed:
        st.info(t("access.read_only"))
    with st.form(_STATE + "retrain_form"):
        c1, c2, c3 = st.columns(3)
        trigger = c1.selectbox(
            t("retraining.field.trigger"), TRIGGERS, key=_STATE + "trigger", format_func=lambda s: t(f"trigger.{s}")
        )
        data_source = c2.selectbox(
            t("training.field.data_source"),
            DATA_SOURCES,
            key=_STATE + "source",
            format_func=lambda s: t(f"training.source.{s}"),
        )
        n_folds = c3.number_input(
            t("retraining.field.n_folds"),
            min_value=1,
            max_value=20,
            value=None,
            step=1,
            key=_STATE + "n_folds",
            placeholder=t("retraining.pipeline_default"),
        )
        epochs = c1.number_input(
            t("training.field.epochs"),
            min_value=1,
            max_value=1000,
            value=None,
            step=1,
            key=_STATE + "epochs",
            placeholder=t("retraining.pipeline_default"),
        )
        force = c2.checkbox(t("retraining.field.force"), key=_STATE + "force", help=t("retraining.force_help"))
        reason = st.text_input(t("retraining.field.reason"), key=_STATE + "reason", max_chars=1000)
        if allowed:
            st.text_input(t("access.token"), type="password", key=_STATE + "token", help=t("access.token_help"))
        submitted = st.form_submit_button(
            t("retraining.submit"), type="primary", disabled=not allowed, key=_STATE + "submit"
        )
    if submitted:
        body: dict[str, Any] = {
            "model_name": name,
            "trigger": trigger,
            "force": force,
            "data_source": data_source,
            "reason": reason.strip(),
        }
        if n_folds is not None:
            body["n_folds"] = n_folds
        if epochs is not None:
            body["epochs"] = epochs
        try:
            params = RetrainParams.model_validate(body)
        except ValidationError as exc:
            keep(_STATE, "submit", "invalid", validation_messages(exc, "retraining.field"), scope=name)
        else:
            outcome = act(
                _STATE,
                "submit",
                lambda: context.services().retraining.submit(params),
                token_key=_STATE + "token",
                action_name="retrain",
                scope=name,
            )
            if outcome.status == "ok":
                st.session_state[JOB_KEY] = outcome.payload.id
    feedback(_STATE, "submit", lambda job: st.success(t("training.queued", id=job.id[:12])), scope=name)
    if st.session_state.get(JOB_KEY):
        job_panel(st.session_state[JOB_KEY])


if __name__ == "__main__":
    render()
