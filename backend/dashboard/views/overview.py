"""Обзор: the production model of each name (version, key metrics beside their yardsticks, when and
why promoted), the latest runs, the running jobs and the drift status."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backend.dashboard import context
from backend.dashboard.i18n import current_language, t
from backend.dashboard.widgets import (
    PAGE_PATHS,
    fmt_duration,
    fmt_num,
    fmt_time,
    jobs_frame,
    recorded,
    show_error,
    term,
)
from backend.dashboard.yardsticks import fmt_actor, headline_tiles
from backend.services.errors import ServiceError
from backend.services.overview import DriftStatus, ProductionSummary

#: Runs listed under "latest runs".
LATEST_RUNS = 10


def render() -> None:
    st.title(t("overview.title"))
    st.caption(t("overview.caption"))
    overview = context.overview()

    st.header(t("overview.production"), help=term("alias"))
    try:
        production = overview.production(lang=current_language())
    except ServiceError as exc:
        show_error(exc)
        production = []
    if not production:
        st.info(t("overview.no_models"))
    for summary in production:
        _production_card(summary)

    st.header(t("overview.latest_runs"), help=term("run"))
    try:
        experiments = {e.experiment_id: e.name for e in context.services().runs.list_experiments().data}
        runs = overview.latest_runs(LATEST_RUNS).data
    except ServiceError as exc:
        show_error(exc)
        experiments, runs = {}, []
    if runs:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        t("col.run_name"): r.run_name or r.run_id[:12],
                        t("col.experiment"): experiments.get(r.experiment_id, r.experiment_id),
                        t("col.status"): t(f"run.status.{r.status}"),
                        t("col.started"): fmt_time(r.start_time),
                        t("col.duration"): fmt_duration(r.start_time, r.end_time),
                        "val_accuracy": fmt_num(r.metrics.get("val_accuracy")),
                        "test_accuracy": fmt_num(r.metrics.get("test_accuracy")),
                        t("col.run_id"): r.run_id,
                    }
                    for r in runs
                ]
            ),
            hide_index=True,
        )
        st.page_link(PAGE_PATHS["runs"], label=t("overview.all_runs"), icon=":material/science:")
    else:
        st.info(t("overview.no_runs"))

    st.header(t("overview.jobs"))
    try:
        jobs = overview.active_jobs()
    except ServiceError as exc:
        show_error(exc)
        jobs = []
    if jobs:
        st.dataframe(jobs_frame(jobs), hide_index=True)
    else:
        st.info(t("overview.no_jobs"))
    st.page_link(PAGE_PATHS["training"], label=t("overview.to_training"), icon=":material/model_training:")

    st.header(t("overview.drift"))
    if not production:
        st.info(t("overview.drift_no_models"))
    for summary in production:
        try:
            status = overview.latest_drift(summary.name)
        except ServiceError as exc:
            show_error(exc)
            continue
        _drift_line(summary.name, status)
    st.page_link(PAGE_PATHS["retraining"], label=t("overview.to_drift"), icon=":material/autorenew:")


def _production_card(summary: ProductionSummary) -> None:
    with st.container(border=True):
        st.subheader(summary.name)
        if summary.version is None:
            st.warning(t("overview.no_production", latest=summary.latest_version or "—"))
            return
        st.metric(t("overview.version"), f"v{summary.version}", help=term("version"))
        headline_tiles(summary.metrics, summary.yardstick)
        if summary.promoted_at is not None:
            how = t(f"decision.{summary.decision}") if summary.decision else "—"
            st.markdown(
                t(
                    "overview.promoted",
                    how=how,
                    when=fmt_time(summary.promoted_at),
                    actor=fmt_actor(summary.promoted_by),
                )
            )
            if summary.forced:
                st.warning(t("overview.forced"))
            if summary.reason:
                st.markdown(t("overview.reason"))
                recorded(summary.reason_text(current_language()))
            if summary.detail:
                with st.expander(t("overview.gate")):
                    recorded(summary.detail_text(current_language()))
        else:
            st.caption(t("overview.no_history"))
        if summary.newer_passed_version:  # only a version the gate let through is worth a hint
            st.caption(t("yard.newer", version=summary.newer_passed_version))
        st.page_link(
            PAGE_PATHS["models"],
            label=t("overview.open_model"),
            icon=":material/inventory_2:",
            query_params={"model": summary.name},
        )


def _drift_line(name: str, status: DriftStatus | None) -> None:
    if status is None:
        st.info(t("overview.drift_none", name=name))
        return
    text = t(
        "overview.drift_yes" if status.drifted else "overview.drift_no",
        name=name,
        when=fmt_time(status.checked_at),
        share=fmt_num(status.drift_share, 2),
    )
    (st.error if status.drifted else st.success)(text)


if __name__ == "__main__":
    render()
