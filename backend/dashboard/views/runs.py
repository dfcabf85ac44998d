"""Эксперименты и запуски: the experiment picker with each experiment's purpose, the runs table
(MLflow filter, sort, page tokens) and one run in detail (params, metrics, tags, artifacts,
learning curves)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from backend.dashboard import charts, context, tables
from backend.dashboard.i18n import has_text, pick_language, t
from backend.dashboard.widgets import (
    PAGE_PATHS,
    escape_markdown,
    fmt_duration,
    fmt_time,
    recorded,
    show_error,
    term,
)
from backend.services.errors import InvalidRequestError, ServiceError
from backend.services.runs import FilterError
from backend.services.schemas import ExperimentPublic, RunDetailPublic, RunPublic

#: Sort keys offered; attributes get a translated label, metrics keep their MLflow name.
SORT_KEYS: tuple[str, ...] = (
    "attributes.start_time",
    "attributes.end_time",
    "attributes.run_name",
    "metrics.val_accuracy",
    "metrics.val_f1",
    "metrics.val_loss",
    "metrics.test_accuracy",
    "metrics.test_f1_macro",
    "metrics.backtest_sharpe",
)
PAGE_SIZES: tuple[int, ...] = (25, 50, 100, 200)
#: The guide's examples of MLflow filters ("Фильтры поиска MLflow").
FILTER_EXAMPLES: tuple[str, ...] = (
    "metrics.accuracy > 0.85",
    "metrics.val_loss < 0.5",
    "params.model_hidden_size = '128'",
    "params.trainer_epochs = '50'",
    "tags.training_mode = 'manual'",
    "tags.trigger = 'scheduled'",
    "metrics.accuracy > 0.8 AND params.trainer_epochs = '50'",
)
#: Epoch-wise metrics plotted by default.
CURVE_METRICS: tuple[str, ...] = ("train_loss", "val_loss", "val_accuracy", "val_f1")
NOTE_TAG = "mlflow.note.content"
#: Metric groups shown open on a run's page (the rest are folded).
OPEN_GROUPS: frozenset[str] = frozenset({"test", "backtest"})
_STATE = "runs."


def experiment_purpose(exp: ExperimentPublic) -> str:
    """The experiment's description (its ``mlflow.note.content``) in the page's language."""
    if exp.description:
        return pick_language(exp.description)
    key = f"experiment.purpose.{exp.name}"
    return t(key) if has_text(key) else t("experiment.no_description")


def render() -> None:
    st.title(t("runs.title"))
    services = context.services()
    try:
        experiments = services.runs.list_experiments().data
    except ServiceError as exc:
        show_error(exc)
        return
    if not experiments:
        st.info(t("runs.no_experiments"))
        return

    names = [e.name for e in experiments]
    by_name = {e.name: e for e in experiments}
    purposes = {e.name: _short(experiment_purpose(e)) for e in experiments}
    default = names.index("model_training") if "model_training" in names else 0
    # Each experiment with its purpose, in the list itself; the full description under the table.
    experiment = st.selectbox(
        t("runs.experiment"),
        names,
        index=default,
        key=_STATE + "experiment",
        format_func=lambda n: f"{n} — {purposes[n]}",
        help=term("experiment"),
    )
    c0, c1, c2, c3 = st.columns([4, 2, 2, 1])
    filter_string = c0.text_input(
        t("runs.filter"), key=_STATE + "filter", placeholder=FILTER_EXAMPLES[3], help=t("runs.filter_help")
    )
    sort_key = c1.selectbox(t("runs.sort"), SORT_KEYS, key=_STATE + "sort", format_func=_sort_label)
    direction = c2.selectbox(
        t("runs.direction"), ("DESC", "ASC"), key=_STATE + "direction", format_func=lambda d: t(f"runs.direction.{d}")
    )
    size = c3.selectbox(t("runs.page_size"), PAGE_SIZES, index=1, key=_STATE + "size")
    with st.expander(t("runs.filter_guide")):
        st.markdown(t("runs.filter_guide_text"))
        st.code("\n".join(FILTER_EXAMPLES), language="sql")
        st.markdown(t("runs.filter_guide_more"))
        st.page_link(PAGE_PATHS["glossary"], label=t("runs.filter_examples_link"), icon=":material/help:")

    order_by = [f"{sort_key} {direction}"]
    tokens, page_no = _pages((experiment, filter_string.strip(), order_by[0], size))
    try:
        page = services.runs.search_runs(
            [experiment], filter_string.strip(), order_by=order_by, max_results=size, page_token=tokens[page_no]
        )
    except FilterError as exc:
        _filter_error(exc)
        return
    except InvalidRequestError as exc:
        show_error(exc, "runs.bad_filter")
        return
    except ServiceError as exc:
        show_error(exc)
        return

    st.subheader(t("runs.table", experiment=experiment))
    st.caption(escape_markdown(experiment_purpose(by_name[experiment])))
    # An empty page says why: no runs yet, nothing matches, or names no run here carries.
    selected = _runs_table(page.data) if page.data else _no_runs(experiment, filter_string.strip(), page_no)
    _pager(page_no, len(page.data), page.next_page_token)

    if 2 <= len(selected) <= 5:
        if st.button(t("runs.compare_selected", n=len(selected)), key=_STATE + "compare", type="primary"):
            st.switch_page(PAGE_PATHS["compare"], query_params={"runs": ",".join(selected)})
    elif len(selected) > 5:
        st.warning(t("runs.compare_too_many"))
    if selected != st.session_state.get(_STATE + "last_selection"):
        st.session_state[_STATE + "last_selection"] = selected
        if len(selected) == 1:  # a newly selected row opens that run
            st.query_params["run"] = selected[0]

    st.divider()
    run_id = _run_picker(page.data)
    if run_id:
        render_run(run_id, {e.experiment_id: e.name for e in experiments})


def _filter_error(exc: FilterError) -> None:
    """A refused filter in the page's language (:class:`~backend.services.runs.FilterHint`), the corrected
    filter when there is one (with a button that puts it into the field), MLflow's own message folded."""
    hint = exc.hint
    key = f"runs.filter_error.{hint.code}"
    st.error(
        t(
            key if has_text(key) else "runs.filter_error.other",
            name=hint.key,
            prefix=hint.prefix,
            value=hint.value,
            allowed=hint.allowed,
        )
    )
    if hint.fix:
        st.markdown(t("runs.filter_fix"))
        st.code(hint.fix, language="sql")
        st.button(t("runs.filter_fix_apply"), key=_STATE + "apply_fix", on_click=_set_filter, args=(hint.fix,))
    with st.expander(t("runs.filter_mlflow_message")):
        st.code(exc.mlflow_message, language=None, wrap_lines=True)


def _set_filter(value: str) -> None:
    st.session_state[_STATE + "filter"] = value


def _no_runs(experiment: str, filter_string: str, page_no: int) -> list[str]:
    """Why the page of runs is empty (returns no selection): the experiment has no runs, nothing matches
    the filter, or the filter asks for names no run of the experiment carries."""
    if not filter_string:
        if page_no == 0:
            st.info(t("runs.empty_experiment"))
        return []
    st.info(t("runs.empty"))
    try:
        missing = context.services().runs.unknown_filter_keys([experiment], filter_string)
    except ServiceError:
        missing = []
    if missing:
        st.warning(t("runs.filter_unknown_keys", experiment=experiment, keys=", ".join(missing)))
    return []


def _short(text: str, limit: int = 90) -> str:
    """The first clause of a description: up to its first colon or full stop."""
    first = text.strip().split("\n", 1)[0]
    cut = min((i for i in (first.find(": "), first.find(". ")) if i > 0), default=len(first))
    first = first[:cut].rstrip(".")
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def _sort_label(key: str) -> str:
    if key.startswith("attributes."):
        return t(f"runs.sort.{key.split('.', 1)[1]}")
    return key


def _pages(signature: tuple[Any, ...]) -> tuple[list[str | None], int]:
    """Page tokens seen so far for this query (reset when the query changes) and the page shown."""
    state = st.session_state
    if state.get(_STATE + "signature") != signature:
        state[_STATE + "signature"] = signature
        state[_STATE + "tokens"] = [None]
        state[_STATE + "page"] = 0
    return state[_STATE + "tokens"], state[_STATE + "page"]


def _go_next(token: str) -> None:
    state = st.session_state
    page = state[_STATE + "page"]
    tokens = state[_STATE + "tokens"][: page + 1]
    tokens.append(token)
    state[_STATE + "tokens"] = tokens
    state[_STATE + "page"] = page + 1


def _go_prev() -> None:
    st.session_state[_STATE + "page"] = max(0, st.session_state[_STATE + "page"] - 1)


def _pager(page_no: int, count: int, next_token: str | None) -> None:
    c1, c2, c3 = st.columns([1, 2, 1])
    c1.button(t("runs.prev"), key=_STATE + "prev", on_click=_go_prev, disabled=page_no == 0)
    c2.markdown(t("runs.page_info", page=page_no + 1, count=count))
    c3.button(t("runs.next"), key=_STATE + "next", on_click=_go_next, args=(next_token,), disabled=not next_token)


def _runs_table(runs: list[RunPublic]) -> list[str]:
    """The page of runs as a table with row selection; returns the selected run ids. The key columns
    (:func:`tables.runs_frame`) fit a 1400 px window; more metrics, params, the duration and the run id
    are picked in an expander and go after them."""
    if not runs:
        st.info(t("runs.empty"))
        return []
    keys = set(tables.key_metric_columns(runs))
    metric_keys = sorted({k for r in runs for k in r.metrics} - keys)
    param_keys = sorted({k for r in runs for k in r.params})
    with st.expander(t("tables.more_columns")):
        st.caption(t("tables.more_columns_help"))
        c1, c2 = st.columns(2)
        metric_cols = c1.multiselect(
            t("runs.metric_columns"),
            metric_keys,
            key=_STATE + "metric_cols",
            placeholder=t("common.choose"),
            help=term("metric"),
        )
        param_cols = c2.multiselect(
            t("runs.param_columns"),
            param_keys,
            key=_STATE + "param_cols",
            placeholder=t("common.choose"),
            help=term("parameter"),
        )
        details = st.checkbox(t("tables.show_details"), key=_STATE + "details")
    frame = tables.runs_frame(runs, metric_cols, param_cols, details=details)
    st.caption(t("runs.select_hint"))
    event = st.dataframe(
        frame,
        hide_index=True,
        on_select="rerun",
        selection_mode="multi-row",
        key=_STATE + "table",
        column_config=_number_formats(frame),
    )
    chosen = getattr(getattr(event, "selection", None), "rows", None) or []
    return [runs[i].run_id for i in chosen if 0 <= i < len(runs)]


def _number_formats(frame: pd.DataFrame) -> dict[str, Any]:
    """Four decimals for metric columns of floats (counts are integers already)."""
    return {
        col: st.column_config.NumberColumn(format="%.4f")
        for col in frame.columns
        if pd.api.types.is_float_dtype(frame[col].dtype)
    }


def _run_picker(runs: list[RunPublic]) -> str | None:
    """The run shown in detail: ``?run=<id>`` (links from other pages), a selected row, or this box."""
    current = st.query_params.get("run")
    options = [r.run_id for r in runs]
    labels = {r.run_id: f"{r.run_name or '—'} · {r.run_id[:12]}" for r in runs}
    if current and current not in options:
        options.insert(0, current)
        labels[current] = current
    choice = st.selectbox(
        t("runs.open"),
        options,
        index=options.index(current) if current in options else None,
        format_func=lambda rid: labels.get(rid, rid),
        placeholder=t("runs.open_placeholder"),
        help=term("run"),
    )
    if choice and choice != current:
        st.query_params["run"] = choice
    return choice


def render_run(run_id: str, experiment_names: dict[str, str]) -> None:
    """One run: summary, learning curves, metrics, params, tags, artifacts."""
    try:
        run = context.services().runs.get_run(run_id)
    except ServiceError as exc:
        show_error(exc)
        return
    st.header(t("run.heading", name=run.run_name or run.run_id[:12]))
    st.markdown(
        t(
            "run.summary",
            status=t(f"run.status.{run.status}"),
            experiment=experiment_names.get(run.experiment_id, run.experiment_id),
            started=fmt_time(run.start_time),
            duration=fmt_duration(run.start_time, run.end_time),
        ),
        help=term("run"),
    )
    st.caption(t("run.ids", run_id=run.run_id, uri=run.artifact_uri or "—"))
    if run.tags.get(NOTE_TAG):
        recorded(pick_language(run.tags[NOTE_TAG]))

    curves, metrics, params, tags, artifacts = st.tabs(
        [
            t("run.tab.curves"),
            t("run.tab.metrics"),
            t("run.tab.params"),
            t("run.tab.tags"),
            t("run.tab.artifacts"),
        ]
    )
    with curves:
        _curves(run)
    with metrics:
        st.caption(term("metric"))
        _metric_groups(run)
    with params:
        st.caption(term("parameter"))
        st.dataframe(
            pd.DataFrame([{t("col.param"): k, t("col.value"): v} for k, v in sorted(run.params.items())]),
            hide_index=True,
        )
    with tags:
        st.caption(term("tag"))
        show_system = st.checkbox(t("run.system_tags"), key=f"{_STATE}system_tags")
        shown = {k: v for k, v in run.tags.items() if show_system or not k.startswith("mlflow.")}
        st.dataframe(
            pd.DataFrame([{t("col.tag"): k, t("col.value"): v} for k, v in sorted(shown.items())]), hide_index=True
        )
    with artifacts:
        st.caption(term("artifact"))
        if run.artifacts:
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            t("col.path"): a.path,
                            t("col.kind"): t("run.folder") if a.is_dir else t("run.file"),
                            t("col.size"): str(a.file_size) if a.file_size is not None else "—",
                        }
                        for a in run.artifacts
                    ]
                ),
                hide_index=True,
            )
            if run.artifacts_truncated:
                st.caption(t("run.artifacts_truncated"))
        else:
            st.info(t("run.no_artifacts"))
        if run.datasets:
            st.markdown(t("run.datasets"))
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            t("col.name"): d.name,
                            t("col.digest"): d.digest,
                            t("col.context"): d.context or "—",
                        }
                        for d in run.datasets
                    ]
                ),
                hide_index=True,
            )


def _metric_groups(run: RunDetailPublic) -> None:
    """The run's metrics in groups (:func:`tables.metric_groups`), each table as tall as its rows: the
    test beside the naive baselines and the backtest beside buy-and-hold open, the rest folded."""
    if not run.metrics:
        st.info(t("tables.no_metrics"))
        return
    st.caption(t("tables.metrics_caption"))
    points = {k: len(v) for k, v in run.metric_history.items()}
    for group, frame in tables.metric_groups(run.metrics, points):
        with st.expander(t(f"tables.group.{group.id}", n=len(frame)), expanded=group.id in OPEN_GROUPS):
            st.dataframe(frame, hide_index=True, height=_height(len(frame)))


def _height(rows: int) -> int:
    """Pixels of a table showing ``rows`` rows without its own scroll bar (Streamlit's 35 px rows)."""
    return 35 * (rows + 1) + 3


def _curves(run: RunDetailPublic) -> None:
    history = run.metric_history
    stepwise = sorted(k for k, points in history.items() if len(points) >= 2)
    if not stepwise:
        st.info(t("run.no_curves"))
        return
    default = [k for k in CURVE_METRICS if k in stepwise] or stepwise[:4]
    chosen = st.multiselect(
        t("run.curve_metrics"), stepwise, default=default, key=f"{_STATE}curves", placeholder=t("common.choose")
    )
    losses = [k for k in chosen if "loss" in k]
    others = [k for k in chosen if "loss" not in k]
    for keys, title in ((losses, t("run.chart.loss")), (others, t("run.chart.quality"))):
        if keys:
            fig = charts.history_figure(
                {k: history[k] for k in keys}, title=title, x_title=t("chart.step"), y_title=t("chart.value")
            )
            st.plotly_chart(fig, config=charts.CONFIG)


if __name__ == "__main__":
    render()
