"""Сравнение: two to five runs side by side: what data each was tested on (a warning when it differs),
params and metrics with only meaningful differences highlighted (``tables.REL_DIFF_THRESHOLD``),
metric histories overlaid in interactive charts."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from backend.dashboard import charts, context, tables
from backend.dashboard.i18n import t
from backend.dashboard.widgets import fmt_duration, fmt_time, show_error, term
from backend.services.errors import ServiceError
from backend.services.schemas import RunDetailPublic

MIN_RUNS, MAX_RUNS = 2, 5
#: Candidates offered in the picker: the newest runs of the chosen experiment.
POOL_SIZE = 200
CURVE_METRICS: tuple[str, ...] = ("train_loss", "val_loss", "val_accuracy", "val_f1")
HIGHLIGHT = "background-color: rgba(255, 196, 0, 0.35)"
#: Rows of a side-by-side table shown without scrolling inside it.
ROWS_SHOWN = 20
_STATE = "compare."


def render() -> None:
    st.title(t("compare.title"))
    st.caption(t("compare.caption"))
    services = context.services()
    try:
        experiments = services.runs.list_experiments().data
    except ServiceError as exc:
        show_error(exc)
        return
    names = [e.name for e in experiments]
    if not names:
        st.info(t("runs.no_experiments"))
        return
    requested = [r for r in (st.query_params.get("runs") or "").split(",") if r]
    default = names.index("model_training") if "model_training" in names else 0
    experiment = st.selectbox(
        t("runs.experiment"), names, index=default, key=_STATE + "experiment", help=term("experiment")
    )
    try:
        pool = services.runs.search_runs(
            [experiment], "", order_by=["attributes.start_time DESC"], max_results=POOL_SIZE
        ).data
    except ServiceError as exc:
        show_error(exc)
        return
    labels = {r.run_id: f"{r.run_name or '—'} · {r.run_id[:8]}" for r in pool}
    options = [r.run_id for r in pool] + [r for r in requested if r not in labels]
    if requested and st.session_state.get(_STATE + "applied") != requested:
        # A link from the runs page (?runs=a,b,c) chooses the runs once; the picker owns them after.
        st.session_state[_STATE + "applied"] = requested
        st.session_state[_STATE + "runs"] = requested[:MAX_RUNS]
    chosen = st.multiselect(
        t("compare.runs"),
        options,
        key=_STATE + "runs",
        max_selections=MAX_RUNS,
        format_func=lambda rid: labels.get(rid, rid),
        placeholder=t("common.choose"),
        help=term("run"),
    )
    if len(chosen) < MIN_RUNS:
        st.info(t("compare.pick", min=MIN_RUNS, max=MAX_RUNS))
        return
    try:
        runs = [services.runs.get_run(rid) for rid in chosen]
    except ServiceError as exc:
        show_error(exc)
        return
    columns = _column_names(runs)

    st.header(t("compare.summary"))
    st.dataframe(
        pd.DataFrame(
            {
                col: {
                    t("col.status"): t(f"run.status.{r.status}"),
                    t("col.started"): fmt_time(r.start_time),
                    t("col.duration"): fmt_duration(r.start_time, r.end_time),
                    t("col.run_id"): r.run_id,
                }
                for col, r in zip(columns, runs)
            }
        )
    )
    _data_check(columns, runs)

    st.header(t("compare.params"), help=term("parameter"))
    only_diff = st.checkbox(t("tables.only_meaningful"), key=_STATE + "only_diff")
    _side_by_side({col: r.params for col, r in zip(columns, runs)}, only_diff, t("col.param"))

    st.header(t("compare.metrics"), help=term("metric"))
    _side_by_side({col: r.metrics for col, r in zip(columns, runs)}, only_diff, t("col.metric"), fmt=tables.fmt_metric)

    st.header(t("compare.curves"))
    stepwise = sorted({k for r in runs for k, pts in r.metric_history.items() if len(pts) >= 2})
    if not stepwise:
        st.info(t("run.no_curves"))
        return
    picked = st.multiselect(
        t("run.curve_metrics"),
        stepwise,
        key=_STATE + "curves",
        default=[k for k in CURVE_METRICS if k in stepwise] or stepwise[:2],
        placeholder=t("common.choose"),
    )
    grid = st.columns(2)
    for i, key in enumerate(picked):
        series = {col: r.metric_history[key] for col, r in zip(columns, runs) if key in r.metric_history}
        fig = charts.history_figure(series, title=key, x_title=t("chart.step"), y_title=t("chart.value"))
        with grid[i % 2]:
            st.plotly_chart(fig, config=charts.CONFIG, key=f"{_STATE}chart.{key}")


def _column_names(runs: list[RunDetailPublic]) -> list[str]:
    """One unique, short column title per run."""
    out: list[str] = []
    for r in runs:
        name = f"{r.run_name or '—'} · {r.run_id[:6]}"
        out.append(name if name not in out else f"{name} · {r.run_id[6:10]}")
    return out


def _data_check(columns: list[str], runs: list[RunDetailPublic]) -> None:
    """What each run was tested on (data hash, rows, bars), and a warning when the runs differ there:
    their metrics then measure different things."""
    fingerprints = {col: tables.data_fingerprint(r) for col, r in zip(columns, runs)}
    names = [name for _, name in tables.DATA_KEYS if any(name in fp for fp in fingerprints.values())]
    if not names:
        return
    differ = tables.different_data(fingerprints)
    st.subheader(t("tables.data_heading"))
    if differ:
        st.warning(t("tables.different_data", what=", ".join(differ)))
    else:
        st.success(t("tables.same_data"))
    frame = pd.DataFrame(
        {col: [fp.get(name, "—") for name in names] for col, fp in fingerprints.items()},
        index=pd.Index(names, name=t("tables.data_key")),
    )
    st.dataframe(frame.style.apply(lambda row: [HIGHLIGHT if row.name in differ else "" for _ in row], axis=1))


def differing(values: dict[str, dict[str, object]]) -> dict[str, bool]:
    """For each key of any run: do the runs disagree on it at all (a missing value counts as a value)?
    The page highlights :func:`tables.meaningful_differences` only."""
    keys = sorted({k for v in values.values() for k in v})
    return {k: len({repr(v.get(k)) for v in values.values()}) > 1 for k in keys}


def _side_by_side(
    values: dict[str, dict[str, object]],
    only_diff: bool,
    key_title: str,
    fmt: Callable[[str, object], str] = lambda _key, value: str(value),
) -> None:
    diff = tables.meaningful_differences(values)
    # Meaningful differences first (they are what a comparison is for), then what every run has, then
    # what only some recorded.
    partial = {k for k in diff if any(k not in v for v in values.values())}
    keys = sorted((k for k in diff if diff[k] or not only_diff), key=lambda k: (not diff[k], k in partial, k))
    if not keys:
        st.info(t("compare.no_diff"))
        return
    frame = pd.DataFrame(
        {col: [fmt(k, v[k]) if k in v else "—" for k in keys] for col, v in values.items()},
        index=pd.Index(keys, name=key_title),
    )
    styled = frame.style.apply(lambda row: [HIGHLIGHT if diff[row.name] else "" for _ in row], axis=1)
    st.caption(
        t(
            "tables.legend",
            pct=f"{tables.REL_DIFF_THRESHOLD * 100:g}",
            n=sum(diff[k] for k in keys),
            total=len(keys),
        )
    )
    st.dataframe(styled, height=35 * (min(len(keys), ROWS_SHOWN) + 1) + 3)


if __name__ == "__main__":
    render()
