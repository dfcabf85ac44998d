"""Сравнение моделей: the newest leaderboard (every model family and the naive baselines on the same
walk-forward folds, each metric with its block-bootstrap interval, paired tests against the
baselines, the verdict, the main metric as a chart), and a form that queues a new comparison as a job
(validated by the API's own schema, :class:`~backend.services.schemas.ComparisonParams`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from pydantic import ValidationError

from backend.dashboard import charts, context
from backend.dashboard.i18n import has_text, t
from backend.dashboard.widgets import (
    JOB_POLL_S,
    PAGE_PATHS,
    TERMINAL_JOB_STATUSES,
    act,
    cancel_box,
    feedback,
    fmt_num,
    follow_job,
    form_body,
    jobs_frame,
    keep,
    mlflow_run_url,
    policy_body,
    policy_fields,
    recorded,
    show_error,
    validation_messages,
    write_allowed,
)
from backend.services.data_sources import DATA_SOURCES
from backend.services.errors import NotFoundError, ServiceError
from backend.services.leaderboard import LeaderboardService
from backend.services.schemas import (
    ComparisonParams,
    JobPublic,
    LeaderboardPublic,
    LeaderboardRowPublic,
    MetricIntervalPublic,
    PairedTestPublic,
)

_STATE = "leaderboard."
JOB_KEY = _STATE + "job"
#: The table's metric columns, in order; other metrics a result carries follow them.
METRICS: tuple[str, ...] = (
    "accuracy",
    "f1_macro",
    "log_loss",
    "brier",
    "ece",
    "sharpe",
    "total_return",
    "max_drawdown",
    "mean_net_return",
)
#: Other names the engine may give the same metrics.
ALIASES: dict[str, str] = {"macro_f1": "f1_macro", "f1": "f1_macro", "brier_score": "brier", "logloss": "log_loss"}
#: Metrics where smaller is better (a model beats a baseline when its difference is negative).
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "ece", "max_drawdown"})
#: Metrics shown in percent, and in basis points.
PERCENT = frozenset({"total_return", "max_drawdown"})
BASIS_POINTS = frozenset({"mean_net_return"})
#: The main metric when the result names none (the engine's primary metric).
DEFAULT_MAIN_METRIC = "accuracy"
#: The tests' significance level when the result does not say.
DEFAULT_ALPHA = 0.05
MIN_TRADES_FALLBACK = 30


def render() -> None:
    st.title(t("leaderboard.title"))
    st.caption(t("leaderboard.caption"))
    services = context.services()
    service = LeaderboardService(services.settings, services.jobs)
    try:
        board: LeaderboardPublic | None = service.latest()
    except NotFoundError:
        board = None
        st.info(t("leaderboard.none"))
    except ServiceError as exc:
        board = None
        show_error(exc)
    if board is not None:
        _show(board)

    st.header(t("leaderboard.start"))
    _form(service)

    job_id = st.session_state.get(JOB_KEY)
    st.header(t("leaderboard.progress"))
    if job_id:
        _job_panel(job_id)
    else:
        st.info(t("leaderboard.no_job"))

    st.header(t("leaderboard.recent"))
    try:
        recent = services.jobs.list_jobs(kind="leaderboard", limit=20).data
    except ServiceError as exc:
        show_error(exc)
        return
    if not recent:
        st.info(t("leaderboard.no_jobs"))
        return
    st.dataframe(jobs_frame(recent), hide_index=True)
    follow_job(recent, JOB_KEY, key=_STATE + "follow")


# -- the result ----------------------------------------------------------------------------------


def _show(board: LeaderboardPublic) -> None:
    st.header(t("leaderboard.latest"))
    st.caption(
        t(
            "leaderboard.summary",
            n=board.n_predictions,
            folds=len(board.folds) or "—",
            block=board.block,
            seconds=fmt_num(board.wall_seconds, 0),
        )
    )
    main = canonical(board.primary_metric or "") or main_metric(board.rows)
    sentence, kind = verdict_text(board.rows, main)
    (st.success if kind == "success" else st.warning if kind == "warning" else st.info)(sentence)
    if board.verdict.strip():
        with st.expander(t("leaderboard.verdict_recorded")):
            recorded(board.verdict)

    alpha = alpha_of(board)
    level = f"{100 * (1 - alpha):g}"
    st.subheader(t("leaderboard.table"), help=t("leaderboard.interval_help", level=level))
    frame = leaderboard_frame(board.rows)
    baseline_rows = {i for i, r in enumerate(board.rows) if r.kind == "baseline"}
    styled = frame.style.apply(lambda row: ["color: #888888" if row.name in baseline_rows else "" for _ in row], axis=1)
    st.dataframe(styled, hide_index=True)
    st.caption(t("leaderboard.table_legend"))

    st.subheader(t("leaderboard.tests"), help=t("leaderboard.p_value_help", level=level, alpha=f"{alpha:g}"))
    tests = tests_frame(board.rows, alpha)
    if tests.empty:
        st.info(t("leaderboard.no_tests"))
    else:
        st.dataframe(tests, hide_index=True)
        st.caption(t("leaderboard.tests_legend"))

    fig = metric_figure(
        board.rows,
        main,
        title=t("leaderboard.chart_title", metric=metric_label(main)),
        y_title=metric_label(main),
    )
    st.plotly_chart(fig, config=charts.CONFIG, key=_STATE + "chart")
    st.caption(t("leaderboard.chart_caption"))

    st.markdown(t("leaderboard.policy", policy=policy_text(board)))
    if board.run_id:
        st.page_link(
            PAGE_PATHS["runs"],
            label=t("leaderboard.open_run", run=board.run_id[:12]),
            icon=":material/science:",
            query_params={"run": board.run_id},
        )
        st.markdown(t("leaderboard.mlflow_link", url=mlflow_run_url(board.run_id)))


def canonical(metric: str) -> str:
    return ALIASES.get(metric, metric)


def model_label(name: str) -> str:
    """A model's name; a baseline's with what it does in words (``majority`` -> "самый частый класс")."""
    key = f"leaderboard.baseline.{name}"
    return t(key) if has_text(key) else name


def metric_label(metric: str) -> str:
    key = f"leaderboard.metric.{canonical(metric)}"
    return t(key) if has_text(key) else metric


def _metric(row: LeaderboardRowPublic, metric: str) -> MetricIntervalPublic | None:
    for name, value in row.metrics.items():
        if canonical(name) == metric:
            return value
    return None


def _num(value: float | None, metric: str) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if metric in PERCENT:
        return f"{100 * value:.1f} %"
    if metric in BASIS_POINTS:
        return f"{1e4 * value:.2f}"
    return f"{value:.3f}"


def fmt_interval(value: MetricIntervalPublic | None, metric: str) -> str:
    """``0.532 [0.510, 0.551]``: the value and its interval (percent for returns and drawdowns)."""
    if value is None or value.value is None:
        return "—"
    if value.low is None or value.high is None:
        return _num(value.value, metric)
    return f"{_num(value.value, metric)} [{_num(value.low, metric)}, {_num(value.high, metric)}]"


def _metric_columns(rows: Sequence[LeaderboardRowPublic]) -> list[str]:
    present = {canonical(m) for r in rows for m in r.metrics}
    return [m for m in METRICS if m in present] + sorted(present - set(METRICS))


def _min_trades() -> int:
    try:
        from backend.ml_engine.evaluation import MIN_TRADES

        return int(MIN_TRADES)
    except ImportError:  # pragma: no cover
        return MIN_TRADES_FALLBACK


def leaderboard_frame(rows: Sequence[LeaderboardRowPublic]) -> pd.DataFrame:
    """One line per model: every metric as ``value [low, high]``, Sharpe replaced by a warning when the
    model made fewer trades than the minimum, then trades, training time, latency and size."""
    minimum = _min_trades()
    out = []
    for r in rows:
        family = r.kind == "family"
        line: dict[str, Any] = {
            t("leaderboard.col.model"): model_label(r.name),
            t("leaderboard.col.kind"): t(f"leaderboard.kind.{r.kind}"),
        }
        for metric in _metric_columns(rows):
            cell = fmt_interval(_metric(r, metric), metric)
            if metric == "sharpe" and r.too_few_trades and cell != "—":
                cell = t("leaderboard.too_few_trades", n=r.n_trades if r.n_trades is not None else 0, min=minimum)
            line[metric_label(metric)] = cell
        line[t("leaderboard.col.trades")] = "—" if r.n_trades is None else str(r.n_trades)
        line[t("leaderboard.col.train_seconds")] = fmt_num(r.train_seconds, 1) if family else "—"
        line[t("leaderboard.col.latency")] = fmt_num(r.latency_p50_ms, 3) if r.latency_p50_ms is not None else "—"
        line[t("leaderboard.col.parameters")] = (
            f"{r.n_parameters:,}".replace(",", " ") if family and r.n_parameters is not None else "—"
        )
        out.append(line)
    return pd.DataFrame(out)


def alpha_of(board: LeaderboardPublic) -> float:
    try:
        alpha = float(board.config.get("alpha", DEFAULT_ALPHA))
    except (TypeError, ValueError):
        return DEFAULT_ALPHA
    return alpha if 0.0 < alpha < 1.0 else DEFAULT_ALPHA


def better(test: PairedTestPublic) -> bool | None:
    """Is the model better than the baseline (None when the difference is unknown)?"""
    if test.diff is None:
        return None
    lower = canonical(test.metric) in LOWER_IS_BETTER
    return test.diff < 0 if lower else test.diff > 0


def conclusion(test: PairedTestPublic, alpha: float = DEFAULT_ALPHA) -> str:
    """The test's conclusion in the page's language: significantly better, significantly worse (p below
    ``alpha`` the other way: the engine's ``significant`` means "beats"), or no clear difference."""
    clear = test.p_value is not None and test.p_value < alpha
    if test.significant or (clear and better(test)):
        return t("leaderboard.mark.better")
    if clear and better(test) is False:
        return t("leaderboard.mark.worse")
    return t("leaderboard.mark.same")


def fmt_p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3g}"  # 0.0498, not a rounded 0.050 next to "p < 0.05"


def tests_frame(rows: Sequence[LeaderboardRowPublic], alpha: float = DEFAULT_ALPHA) -> pd.DataFrame:
    out = []
    for r in rows:
        for baseline, test in [*r.tests.items(), *r.return_tests.items()]:
            metric = canonical(test.metric)
            diff = MetricIntervalPublic(value=test.diff, low=test.low, high=test.high)
            out.append(
                {
                    t("leaderboard.col.model"): r.name,
                    t("leaderboard.col.baseline"): model_label(baseline),
                    t("leaderboard.col.metric"): metric_label(metric),
                    t("leaderboard.col.diff"): fmt_interval(diff, metric),
                    t("leaderboard.col.p_value"): fmt_p(test.p_value),
                    t("leaderboard.col.conclusion"): conclusion(test, alpha),
                }
            )
    return pd.DataFrame(out)


def main_metric(rows: Sequence[LeaderboardRowPublic]) -> str:
    """The metric the paired tests compare (the leaderboard's main metric), else Sharpe."""
    for r in rows:
        for test in r.tests.values():
            if test.metric:
                return canonical(test.metric)
    return DEFAULT_MAIN_METRIC


def _best(rows: Sequence[LeaderboardRowPublic], metric: str) -> LeaderboardRowPublic | None:
    scored = [
        (m.value, r)
        for r in rows
        if r.kind == "family" and (m := _metric(r, metric)) is not None and m.value is not None
    ]
    if not scored:
        return None
    lower = metric in LOWER_IS_BETTER
    return (min if lower else max)(scored, key=lambda pair: pair[0])[1]


def verdict_text(rows: Sequence[LeaderboardRowPublic], metric: str) -> tuple[str, str]:
    """The verdict in the page's language, from the numbers: the best family by ``metric`` and which
    baselines it beats significantly; ``(sentence, "success" | "warning" | "info")``."""
    best = _best(rows, metric)
    if best is None:
        return t("leaderboard.verdict.empty"), "info"
    value = fmt_interval(_metric(best, metric), metric)
    beaten = [model_label(b) for b, test in best.tests.items() if test.significant and better(test)]
    others = [model_label(b) for b in best.tests if model_label(b) not in beaten]
    if best.tests and not others:
        sentence, kind = (
            t("leaderboard.verdict.all", model=best.name, metric=metric_label(metric), value=value),
            "success",
        )
    elif beaten:
        sentence, kind = (
            t(
                "leaderboard.verdict.some",
                model=best.name,
                metric=metric_label(metric),
                value=value,
                beaten=", ".join(beaten),
                others=", ".join(others),
            ),
            "warning",
        )
    else:
        sentence, kind = (
            t("leaderboard.verdict.none", model=best.name, metric=metric_label(metric), value=value),
            "warning",
        )
    if best.too_few_trades:
        sentence += " " + t("leaderboard.verdict.few_trades", n=best.n_trades or 0, min=_min_trades())
        kind = "warning"
    return sentence, kind


def metric_figure(rows: Sequence[LeaderboardRowPublic], metric: str, *, title: str, y_title: str) -> go.Figure:
    """The families' ``metric`` with its interval as error bars; each baseline a dashed reference line."""
    families = [(r, m) for r in rows if r.kind == "family" and (m := _metric(r, metric)) and m.value is not None]
    scale = 100.0 if metric in PERCENT else 1.0

    def v(x: float | None) -> float:
        return scale * x if x is not None else math.nan

    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[r.name for r, _ in families],
            y=[v(m.value) for _, m in families],
            mode="markers",
            marker={"size": 12},
            name=y_title,
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [v(m.high) - v(m.value) if m.high is not None else 0.0 for _, m in families],
                "arrayminus": [v(m.value) - v(m.low) if m.low is not None else 0.0 for _, m in families],
            },
        )
    )
    baselines = [(r, m) for r in rows if r.kind == "baseline" and (m := _metric(r, metric)) and m.value is not None]
    for i, (r, m) in enumerate(baselines):  # labels on alternate sides: close lines must not overlap
        fig.add_hline(
            y=v(m.value),
            line_dash="dash",
            line_color="#888888",
            annotation_text=model_label(r.name),
            annotation_position="top left" if i % 2 == 0 else "bottom right",
        )
    fig.update_layout(
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        height=360,
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        yaxis_title=y_title + (", %" if metric in PERCENT else ""),
        showlegend=False,
    )
    fig.update_xaxes(type="category")
    return fig


def _policy_dict(board: LeaderboardPublic) -> Mapping[str, Any] | None:
    policy = board.config.get("policy")
    return policy if isinstance(policy, Mapping) else None


def describe_policy(policy: Mapping[str, Any]) -> str:
    """A signal policy in the page's language, e.g. "по максимуму вероятности, лонг и шорт, комиссия 0.10 %"."""
    if policy.get("mode") == "threshold":
        rule = t("leaderboard.policy.threshold", threshold=f"{float(policy.get('threshold', 0.5)):.2f}")
    else:
        rule = t("leaderboard.policy.argmax")
    side = t(f"leaderboard.policy.{'long_only' if policy.get('direction') == 'long_only' else 'long_short'}")
    costs = t(
        "leaderboard.policy.costs",
        fee=f"{100 * float(policy.get('fee', 0.001)):.2f}",
        slippage=f"{100 * float(policy.get('slippage', 0.0)):.2f}",
    )
    return f"{rule}, {side}, {costs}"


def policy_text(board: LeaderboardPublic) -> str:
    policy = _policy_dict(board)
    if policy is not None:
        return describe_policy(policy)
    return f"`{board.policy}`" if board.policy else "—"


# -- a new comparison ----------------------------------------------------------------------------


def _families() -> list[str]:
    from backend.ml_engine.families import family_names

    return family_names()


def _form(service: LeaderboardService) -> None:
    allowed = write_allowed()
    if not allowed:
        st.info(t("access.read_only"))
    settings = context.settings()
    families = _families()
    with st.form(_STATE + "form"):
        values: dict[str, Any] = {
            "families": st.multiselect(
                t("leaderboard.field.families"),
                families,
                default=families,
                key=_STATE + "families",
                placeholder=t("common.choose"),
                help=t("leaderboard.families_help"),
            )
        }
        c1, c2, c3 = st.columns(3)
        values["folds"] = c1.number_input(
            t("leaderboard.field.folds"),
            min_value=1,
            max_value=20,
            value=None,
            step=1,
            key=_STATE + "folds",
            placeholder=t("training.default", value=3),
            help=t("leaderboard.folds_help"),
        )
        values["epochs"] = c2.number_input(
            t("leaderboard.field.epochs"),
            min_value=1,
            max_value=1000,
            value=None,
            step=1,
            key=_STATE + "epochs",
            placeholder=t("training.default", value=5),
        )
        values["data_source"] = c3.selectbox(
            t("leaderboard.field.data_source"),
            DATA_SOURCES,
            key=_STATE + "data_source",
            format_func=lambda s: t(f"training.source.{s}"),
        )
        values["date_range"] = c1.number_input(
            t("leaderboard.field.date_range"),
            min_value=0.0,
            max_value=3650.0,
            value=None,
            step=1.0,
            key=_STATE + "date_range",
            placeholder=t("training.all_data"),
        )
        values["symbols"] = c2.text_input(
            t("leaderboard.field.symbols"), key=_STATE + "symbols", placeholder=settings.symbols or "ETH/BTC, LTC/BTC"
        )
        values["n_boot"] = c3.number_input(
            t("leaderboard.field.n_boot"),
            min_value=100,
            max_value=20_000,
            value=None,
            step=100,
            key=_STATE + "n_boot",
            placeholder=t("training.default", value=1000),
            help=t("leaderboard.n_boot_help"),
        )
        st.markdown(t("leaderboard.policy_heading"))
        policy = policy_fields(_STATE)
        if allowed:
            st.text_input(t("access.token"), type="password", key=_STATE + "token", help=t("access.token_help"))
        submitted = st.form_submit_button(
            t("leaderboard.submit"), type="primary", disabled=not allowed, key=_STATE + "submit"
        )
    if submitted:
        _submit(service, values, policy)
    feedback(_STATE, "submit", _show_queued, invalid_key="leaderboard.invalid")


def comparison_request(values: dict[str, Any], policy: dict[str, Any]) -> dict[str, Any]:
    """The form's fields as the body ``POST /leaderboard`` would get: unset fields left out, the fee and
    slippage typed in percent turned into fractions."""
    body = form_body(values)
    if "families" in body:
        body["families"] = list(body["families"])
    body["policy"] = policy_body(policy)
    return body


def _submit(service: LeaderboardService, values: dict[str, Any], policy: dict[str, Any]) -> None:
    """Check the form (a family chosen, the API's schema), then the token, and queue the comparison; the
    outcome is kept for :func:`feedback` under the form's button until the next action."""
    if not values.get("families"):
        keep(_STATE, "submit", "invalid", [t("leaderboard.pick_family")])
        return
    body = comparison_request(values, policy)
    try:
        params = ComparisonParams.model_validate(body)
    except ValidationError as exc:
        keep(_STATE, "submit", "invalid", validation_messages(exc, "leaderboard.field"))
        return
    outcome = act(
        _STATE, "submit", lambda: service.submit(params), token_key=_STATE + "token", action_name="leaderboard"
    )
    if outcome.status == "ok":
        st.session_state[JOB_KEY] = outcome.payload.id


def _show_queued(job: JobPublic) -> None:
    """A queued comparison, under the form's button (it stays until the next action)."""
    st.success(t("leaderboard.queued", id=job.id[:12]))


# -- the job -------------------------------------------------------------------------------------


def _job_panel(job_id: str) -> None:
    try:
        job = context.services().jobs.get_job(job_id)
    except ServiceError as exc:
        show_error(exc)
        return
    if job.status in TERMINAL_JOB_STATUSES:
        _job_view(job)
    else:
        _live_job(job_id)
    cancel_box(job, _STATE)


@st.fragment(run_every=JOB_POLL_S)
def _live_job(job_id: str) -> None:
    try:
        job = context.services().jobs.get_job(job_id)
    except ServiceError as exc:
        show_error(exc)
        return
    _job_view(job)
    if job.status in TERMINAL_JOB_STATUSES:
        st.rerun()  # the whole page: the table now shows the new comparison


def _job_view(job: JobPublic) -> None:
    st.markdown(t("job.heading", kind=t(f"job.kind.{job.kind}"), id=job.id[:12], status=t(f"job.status.{job.status}")))
    st.progress(job.progress, text=t("leaderboard.job_progress", pct=round(100 * job.progress)))
    if job.stage:
        st.caption(t("leaderboard.stage"))
        st.code(job.stage, language=None, wrap_lines=True)
    if job.status == "queued":
        st.info(t("job.queued_hint"))
    elif job.status == "running" and job.cancel_requested:
        st.warning(t("leaderboard.cancel_requested"))
    elif job.status == "finished":
        st.success(t("leaderboard.finished"))
    elif job.status == "failed":
        st.error(t("job.failed"))
        recorded(job.error)
    elif job.status == "cancelled":
        st.warning(t("job.cancelled"))


if __name__ == "__main__":
    render()
