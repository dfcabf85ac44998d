"""Мониторинг: how each served version does on live predictions, from the prediction log's outcomes
(:mod:`backend.ml_engine.monitoring`): a version picker (the default model's production version when it has
live days, else the newest that has), tiles for the newest day (accuracy against the test-time value in
words, PnL after fees, hit rate with its trades, coverage, pending and expired predictions, the newest
prediction's candle), the daily charts (accuracy and macro F1 beside their dashed test-time lines, PnL as
daily bars and a cumulative line, hit rate and coverage, ECE, latency p50/p95/p99), how outcomes are computed
and how ``performance_drop`` uses them, and the outcome job queued now behind the API token.

Versions deleted from the registry still show: their rows come from the log, not from MLflow."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backend.dashboard import charts, context
from backend.dashboard.i18n import t
from backend.dashboard.widgets import (
    act,
    feedback,
    fmt_time,
    job_panel,
    recorded,
    token_input,
    write_allowed,
)
from backend.ml_engine.config import DEFAULT_MODEL_NAME
from backend.ml_engine.errors import one_line
from backend.ml_engine.monitoring import MonitoringSnapshot, monitoring_snapshot
from backend.ml_engine.retraining import RetrainingConfig
from backend.services.errors import NotFoundError, ServiceError
from backend.services.redaction import redact
from backend.services.schemas import JobPublic

_STATE = "monitoring."
TOKEN_KEY = _STATE + "token"
MODEL_KEY = _STATE + "model"
VERSION_KEY = _STATE + "version"
RECOMPUTE_BUTTON = _STATE + "recompute"
#: The recompute button's slot: its outcome (``widgets.act``) is shown under it until the next action.
RECOMPUTE_SLOT = "recompute"
#: The job the recompute button queued (followed under the button).
JOB_KEY = _STATE + "job"
#: Live accuracy within this many percentage points of the test-time value reads "at the test's level".
LEVEL_PP = 1.0
#: Minutes between two runs of the outcome job the scheduler submits (``--monitor-interval``'s default).
MONITOR_EVERY_MIN = 15
#: The outcome job by hand, outside the job system (the same function the job runs).
CLI_RUN = (
    'python -c "from backend.ml_engine.config import Settings; '
    'from backend.ml_engine.monitoring import resolve_and_roll_up; print(resolve_and_roll_up(Settings()).summary)"'
)
_DAY = pd.Timedelta(days=1)
_LAYOUT: dict[str, Any] = {
    "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
    "height": 340,
    "title": {"x": 0, "xanchor": "left", "font": {"size": 15}},
    "legend": {"orientation": "h", "yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0},
    "hovermode": "x unified",
}


def render() -> None:
    st.title(t("monitoring.title"))
    st.caption(t("monitoring.caption"))
    settings = context.settings()
    snapshot = _snapshot()
    if snapshot is not None and is_empty(snapshot):
        _empty_state(bool(settings.prediction_log))
    elif snapshot is not None:
        if not settings.prediction_log:
            st.warning(t("monitoring.recording_off"))
        picked = _picker(snapshot)
        if picked is not None:
            _version(snapshot, *picked)
    _explanation()
    _recompute()


def _snapshot() -> MonitoringSnapshot | None:
    """The rolled-up live metrics and the per-version counts; None (with the reason shown) when the log's
    database cannot be read."""
    settings = context.settings()
    try:
        return monitoring_snapshot(settings)
    except Exception as exc:  # noqa: BLE001 - the database is down or refuses us: a message, the page goes on
        st.error(t("monitoring.unavailable"))
        recorded(redact(one_line(exc, typed=True), settings.secrets())[:2000])
        return None


def is_empty(snapshot: MonitoringSnapshot) -> bool:
    return snapshot.live.empty and snapshot.versions.empty


def _empty_state(recording: bool) -> None:
    st.info(t("monitoring.none"))
    st.markdown(t("monitoring.none_what"))
    st.markdown(t("monitoring.none_recording"))
    if not recording:
        st.warning(t("monitoring.recording_off"))
    st.markdown(t("monitoring.none_job", minutes=MONITOR_EVERY_MIN))


# -- the version picker ------------------------------------------------------------------------------


def version_key(version: str) -> tuple[int, int, str]:
    """Sort key of a version: numbers by value (v10 after v9), anything else after them by text."""
    text = str(version)
    return (0, int(text), text) if text.isdigit() else (1, 0, text)


def versions_by_model(snapshot: MonitoringSnapshot) -> dict[str, list[str]]:
    """Model name -> its versions in the log (recorded ones and ones with live days), newest first."""
    found: dict[str, set[str]] = {}
    for frame in (snapshot.versions, snapshot.live):
        if frame.empty:
            continue
        for name, version in zip(frame["model_name"], frame["model_version"], strict=True):
            found.setdefault(str(name), set()).add(str(version))
    return {name: sorted(versions, key=version_key, reverse=True) for name, versions in sorted(found.items())}


def live_versions(snapshot: MonitoringSnapshot, name: str) -> set[str]:
    """The versions of ``name`` with at least one rolled-up day."""
    live = snapshot.live
    if live.empty:
        return set()
    return {str(v) for v in live.loc[live["model_name"] == name, "model_version"]}


def default_version(versions: Sequence[str], with_live: set[str], production: str | None) -> str:
    """The production version when it has live days, else the newest version that has, else the newest."""
    if production is not None and production in with_live:
        return production
    return next((v for v in versions if v in with_live), versions[0])


def _registry(name: str) -> tuple[str | None, set[str] | None]:
    """(production version, every registered version) of ``name``; (None, set()) when the model is not
    registered, (None, None) when the registry cannot be asked (nothing is then said about the registry)."""
    try:
        model = context.services().models.get_model(name)
    except NotFoundError:
        return None, set()
    except ServiceError:
        return None, None
    production = None if model.production_version is None else str(model.production_version)
    return production, {str(v.version) for v in model.versions}


def _picker(snapshot: MonitoringSnapshot) -> tuple[str, str, str | None, set[str] | None] | None:
    models = versions_by_model(snapshot)
    if not models:
        return None
    names = sorted(models, key=lambda n: (n != DEFAULT_MODEL_NAME, n))
    wanted = st.query_params.get("model")
    left, right = st.columns(2)
    name = left.selectbox(
        t("monitoring.model"), names, index=names.index(wanted) if wanted in names else 0, key=MODEL_KEY
    )
    production, registered = _registry(name)
    versions = models[name]
    wanted_version = st.query_params.get("version")
    chosen = (
        wanted_version
        if wanted_version in versions and wanted == name
        else default_version(versions, live_versions(snapshot, name), production)
    )

    def label(version: str) -> str:
        if version == production:
            return t("monitoring.version_production", version=version)
        if registered is not None and version not in registered:
            return t("monitoring.version_deleted", version=version)
        return f"v{version}"

    version = right.selectbox(
        t("monitoring.version"),
        versions,
        index=versions.index(chosen),
        format_func=label,
        key=f"{VERSION_KEY}.{name}",
        help=t("monitoring.version_help"),
    )
    if name != wanted or version != wanted_version:
        st.query_params["model"] = name
        st.query_params["version"] = version
    return name, version, production, registered


# -- one version ---------------------------------------------------------------------------------


def version_days(snapshot: MonitoringSnapshot, name: str, version: str) -> pd.DataFrame:
    """The live rows of one version, oldest day first."""
    live = snapshot.live
    if live.empty:
        return live
    rows = live[(live["model_name"] == name) & (live["model_version"].astype(str) == version)]
    return rows.sort_values("day").reset_index(drop=True)


def version_info(snapshot: MonitoringSnapshot, name: str, version: str) -> dict[str, Any]:
    """The version's row of ``snapshot.versions`` (pending, expired, newest candle, test values), or {}."""
    frame = snapshot.versions
    if frame.empty:
        return {}
    rows = frame[(frame["model_name"] == name) & (frame["model_version"].astype(str) == version)]
    return {} if rows.empty else dict(rows.iloc[0])


def _version(
    snapshot: MonitoringSnapshot, name: str, version: str, production: str | None, registered: set[str] | None
) -> None:
    days = version_days(snapshot, name, version)
    info = version_info(snapshot, name, version)
    st.header(t("monitoring.version_heading", name=name, version=version))
    if version == production:
        st.caption(t("monitoring.is_production"))
    elif registered is not None and version not in registered:
        st.caption(t("monitoring.deleted_caption"))
    _tiles(days, info)
    if days.empty:
        st.info(t("monitoring.no_days"))
        return
    _charts(days, info)
    with st.expander(t("monitoring.days_table")):
        st.dataframe(days_frame(days), hide_index=True)


# -- numbers ---------------------------------------------------------------------------------------


def num(value: Any) -> float | None:
    """A finite float, or None (None, NaN, missing)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def pct(value: Any, digits: int = 1) -> str:
    """A share as percent: 0.6167 -> "61.7 %"."""
    v = num(value)
    return "—" if v is None else f"{100 * v:.{digits}f} %"


def signed_pct(value: Any, digits: int = 2) -> str:
    """A return as signed percent: 0.0123 -> "+1.23 %"."""
    v = num(value)
    return "—" if v is None else f"{100 * v:+.{digits}f} %"


def count(value: Any) -> str:
    v = num(value)
    return "—" if v is None else str(round(v))


def ms(value: Any) -> str:
    v = num(value)
    return "—" if v is None else f"{v:.1f}"


def utc_time(value: Any) -> dt.datetime | None:
    """A timestamp from the log (naive on SQLite, aware on PostgreSQL) as an aware UTC datetime."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if pd.isna(stamp):
        return None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def short_time(value: dt.datetime | None) -> str:
    """A UTC time for a tile (the label says UTC): "2026-03-03 23:50"."""
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "—"


def diff_pp(live: Any, test: Any) -> float | None:
    """Live minus test in percentage points, or None when either is missing."""
    a, b = num(live), num(test)
    return None if a is None or b is None else 100.0 * (a - b)


def accuracy_verdict(live: Any, test: Any) -> str:
    """The live accuracy against the test-time one in words: below / above by X p.p., or at the test's level."""
    if num(live) is None:
        return t("monitoring.verdict.no_live")
    diff = diff_pp(live, test)
    if diff is None:
        return t("monitoring.verdict.no_test")
    if diff <= -LEVEL_PP:
        return t("monitoring.verdict.below", pp=f"{-diff:.1f}", test=pct(test))
    if diff >= LEVEL_PP:
        return t("monitoring.verdict.above", pp=f"{diff:.1f}", test=pct(test))
    return t("monitoring.verdict.level", test=pct(test))


def _delta(live: Any, test: Any) -> str | None:
    diff = diff_pp(live, test)
    return None if diff is None else t("monitoring.pp", pp=f"{diff:+.1f}")


def _test_value(days: pd.DataFrame, info: Mapping[str, Any], key: str) -> float | None:
    """The version's test-time value: from the log's version record, else from the live rows."""
    value = num(info.get(key))
    if value is None and not days.empty and key in days.columns:
        value = next((v for v in (num(x) for x in days[key]) if v is not None), None)
    return value


# -- tiles -----------------------------------------------------------------------------------------


def _tiles(days: pd.DataFrame, info: Mapping[str, Any]) -> None:
    last = dict(days.iloc[-1]) if not days.empty else {}
    test_acc = _test_value(days, info, "test_accuracy")
    test_f1 = _test_value(days, info, "test_f1_macro")
    if last:
        st.subheader(t("monitoring.newest_day", day=str(last["day"])))
        st.caption(
            t(
                "monitoring.newest_day_caption",
                predictions=count(last.get("n_predictions")),
                resolved=count(last.get("n_resolved")),
                updated=fmt_time(utc_time(last.get("updated_at"))),
            )
        )
    acc, f1, pnl, hit = st.columns(4)
    acc.metric(
        t("monitoring.tile.accuracy"),
        pct(last.get("accuracy")),
        delta=_delta(last.get("accuracy"), test_acc),
        help=t("monitoring.tile.accuracy_help"),
    )
    acc.caption(accuracy_verdict(last.get("accuracy"), test_acc) if last else t("monitoring.verdict.no_live"))
    f1.metric(
        t("monitoring.tile.f1"),
        pct(last.get("f1_macro")),
        delta=_delta(last.get("f1_macro"), test_f1),
        help=t("monitoring.tile.f1_help"),
    )
    f1.caption(t("monitoring.test_value", value=pct(test_f1)))
    pnl.metric(t("monitoring.tile.pnl"), signed_pct(last.get("pnl")), help=t("monitoring.tile.pnl_help"))
    pnl.caption(t("monitoring.after_fees"))
    hit.metric(t("monitoring.tile.hit_rate"), pct(last.get("hit_rate")), help=t("monitoring.tile.hit_rate_help"))
    hit.caption(t("monitoring.trades", n=count(last.get("n_trades"))))

    coverage, pending, expired, newest = st.columns([1, 1, 1, 2])  # the candle's time needs the room
    coverage.metric(t("monitoring.tile.coverage"), pct(last.get("coverage")), help=t("monitoring.tile.coverage_help"))
    pending.metric(t("monitoring.tile.pending"), count(info.get("pending")), help=t("monitoring.tile.pending_help"))
    expired.metric(t("monitoring.tile.expired"), count(info.get("expired")), help=t("monitoring.tile.expired_help"))
    newest.metric(
        t("monitoring.tile.last_candle"),
        short_time(utc_time(info.get("last_candle_time"))),
        help=t("monitoring.tile.last_candle_help"),
    )


# -- charts ----------------------------------------------------------------------------------------


def _days(days: pd.DataFrame) -> list[str]:
    return [str(d) for d in days["day"]]


def _values(days: pd.DataFrame, key: str) -> list[float | None]:
    return [num(v) for v in days[key]] if key in days.columns else [None] * len(days)


def _span(x: Sequence[str]) -> list[str]:
    """The days' range widened by half a day each side: a reference line is visible even over one day."""
    first, last = pd.Timestamp(x[0]) - _DAY / 2, pd.Timestamp(x[-1]) + _DAY / 2
    return [first.isoformat(), last.isoformat()]


def _figure(title: str, y_title: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(**_LAYOUT)
    fig.update_layout(title_text=title, yaxis_title=y_title)
    fig.update_xaxes(type="date", tickformat="%Y-%m-%d", dtick=_DAY.total_seconds() * 1000)
    return fig


def quality_figure(
    x: Sequence[str],
    lines: Mapping[str, Sequence[float | None]],
    references: Mapping[str, float | None],
    *,
    title: str,
    y_title: str,
) -> go.Figure:
    """Live shares per day (lines), each beside its test-time value (a dashed line of the same color)."""
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")
    fig = _figure(title, y_title)
    for (name, values), color in zip(lines.items(), palette, strict=False):
        fig.add_trace(go.Scatter(x=list(x), y=list(values), mode="lines+markers", name=name, line={"color": color}))
    for (name, value), color in zip(references.items(), palette, strict=False):
        if value is None:
            continue
        fig.add_trace(
            go.Scatter(
                x=_span(x),
                y=[value, value],
                mode="lines",
                name=name,
                line={"dash": "dash", "color": color},
                hovertemplate="%{y:.1%}<extra>" + name + "</extra>",
            )
        )
    fig.update_yaxes(tickformat=".0%", hoverformat=".1%")
    return fig


def pnl_figure(
    x: Sequence[str], pnl: Sequence[float | None], *, title: str, y_title: str, daily_name: str, cumulative_name: str
) -> go.Figure:
    """Signal PnL after fees: each day's sum as a bar (green up, red down) and the running total as a line."""
    values = [0.0 if v is None else float(v) for v in pnl]
    total, cumulative = 0.0, []
    for v in values:
        total += v
        cumulative.append(total)
    fig = _figure(title, y_title)
    fig.add_trace(
        go.Bar(
            x=list(x),
            y=values,
            name=daily_name,
            marker_color=["#2ca02c" if v >= 0 else "#d62728" for v in values],
            width=_DAY.total_seconds() * 1000 * 0.6,
        )
    )
    fig.add_trace(go.Scatter(x=list(x), y=cumulative, mode="lines+markers", name=cumulative_name))
    fig.update_yaxes(tickformat=".2%", hoverformat=".3%")
    return fig


def lines_figure(
    x: Sequence[str], lines: Mapping[str, Sequence[float | None]], *, title: str, y_title: str, y_format: str
) -> go.Figure:
    """Plain lines per day (rates, ECE, latency) with the y axis' number format."""
    fig = _figure(title, y_title)
    for name, values in lines.items():
        fig.add_trace(go.Scatter(x=list(x), y=list(values), mode="lines+markers", name=name))
    fig.update_yaxes(tickformat=y_format, rangemode="tozero")
    return fig


def _charts(days: pd.DataFrame, info: Mapping[str, Any]) -> None:
    x = _days(days)
    st.subheader(t("monitoring.charts"))
    st.caption(t("monitoring.charts_caption"))
    quality = quality_figure(
        x,
        {
            t("monitoring.series.accuracy"): _values(days, "accuracy"),
            t("monitoring.series.f1"): _values(days, "f1_macro"),
        },
        {
            t("monitoring.series.test_accuracy"): _test_value(days, info, "test_accuracy"),
            t("monitoring.series.test_f1"): _test_value(days, info, "test_f1_macro"),
        },
        title=t("monitoring.chart.quality"),
        y_title=t("monitoring.axis.share"),
    )
    pnl = pnl_figure(
        x,
        _values(days, "pnl"),
        title=t("monitoring.chart.pnl"),
        y_title=t("monitoring.axis.return"),
        daily_name=t("monitoring.series.pnl_day"),
        cumulative_name=t("monitoring.series.pnl_total"),
    )
    rates = lines_figure(
        x,
        {
            t("monitoring.series.hit_rate"): _values(days, "hit_rate"),
            t("monitoring.series.coverage"): _values(days, "coverage"),
        },
        title=t("monitoring.chart.rates"),
        y_title=t("monitoring.axis.share"),
        y_format=".0%",
    )
    ece = lines_figure(
        x,
        {t("monitoring.series.ece"): _values(days, "ece")},
        title=t("monitoring.chart.ece"),
        y_title=t("monitoring.axis.ece"),
        y_format=".3f",
    )
    latency = lines_figure(
        x,
        {f"p{q}": _values(days, f"latency_p{q}_ms") for q in (50, 95, 99)},
        title=t("monitoring.chart.latency"),
        y_title=t("monitoring.axis.ms"),
        y_format=".1f",
    )
    left, right = st.columns(2)
    left.plotly_chart(quality, config=charts.CONFIG, key=_STATE + "quality")
    right.plotly_chart(pnl, config=charts.CONFIG, key=_STATE + "pnl")
    left.plotly_chart(rates, config=charts.CONFIG, key=_STATE + "rates")
    right.plotly_chart(ece, config=charts.CONFIG, key=_STATE + "ece")
    left.plotly_chart(latency, config=charts.CONFIG, key=_STATE + "latency")
    right.caption(t("monitoring.ece_caption"))
    right.caption(t("monitoring.pnl_caption"))


def days_frame(days: pd.DataFrame) -> pd.DataFrame:
    """One line per day, newest first, every number formatted (shares in %, counts whole, latency in ms)."""
    rows = []
    for r in days.iloc[::-1].to_dict("records"):
        rows.append(
            {
                t("monitoring.col.day"): str(r["day"]),
                t("monitoring.col.predictions"): count(r.get("n_predictions")),
                t("monitoring.col.resolved"): count(r.get("n_resolved")),
                t("monitoring.col.expired"): count(r.get("n_expired")),
                t("monitoring.col.trades"): count(r.get("n_trades")),
                t("monitoring.col.accuracy"): pct(r.get("accuracy")),
                t("monitoring.col.f1"): pct(r.get("f1_macro")),
                t("monitoring.col.ece"): "—" if num(r.get("ece")) is None else f"{num(r.get('ece')):.3f}",
                t("monitoring.col.pnl"): signed_pct(r.get("pnl")),
                t("monitoring.col.hit_rate"): pct(r.get("hit_rate")),
                t("monitoring.col.coverage"): pct(r.get("coverage")),
                t("monitoring.col.p50"): ms(r.get("latency_p50_ms")),
                t("monitoring.col.p95"): ms(r.get("latency_p95_ms")),
                t("monitoring.col.p99"): ms(r.get("latency_p99_ms")),
                t("monitoring.col.updated"): fmt_time(utc_time(r.get("updated_at"))),
            }
        )
    return pd.DataFrame(rows)


# -- how it is computed --------------------------------------------------------------------------


def _explanation() -> None:
    config = RetrainingConfig()
    st.header(t("monitoring.how"))
    st.markdown(t("monitoring.how_outcomes", minutes=MONITOR_EVERY_MIN))
    st.markdown(
        t(
            "monitoring.how_drop",
            days=f"{config.recent_days:g}",
            samples=config.min_performance_samples,
            margin=f"{100 * config.performance_margin:g}",
        )
    )


# -- recompute now ---------------------------------------------------------------------------------


def _recompute() -> None:
    st.header(t("monitoring.recompute"))
    st.caption(t("monitoring.recompute_text", minutes=MONITOR_EVERY_MIN))
    allowed = write_allowed()
    action, cli = st.columns(2, gap="large")
    with action, st.container(border=True):
        token_input(TOKEN_KEY)
        st.button(
            t("monitoring.recompute_button"),
            key=RECOMPUTE_BUTTON,
            type="primary",
            disabled=not allowed,
            on_click=_queue_monitoring,
        )
        feedback(_STATE, RECOMPUTE_SLOT, _show_queued)
        job_id = st.session_state.get(JOB_KEY)
        if job_id:
            job_panel(job_id, view=_job_view)
    with cli:
        st.markdown(t("monitoring.cli"))
        st.code(CLI_RUN, language="bash")


def _queue_monitoring() -> None:
    outcome = act(
        _STATE,
        RECOMPUTE_SLOT,
        lambda: context.services().jobs.submit_monitoring(),
        token_key=TOKEN_KEY,
        action_name="monitor",
    )
    if outcome.status == "ok":
        st.session_state[JOB_KEY] = outcome.payload.id


def _show_queued(job: JobPublic) -> None:
    """A queued outcome job, under the button (it stays until the next action)."""
    st.success(t("monitoring.queued", id=job.id[:12]))


def _job_view(job: JobPublic) -> None:
    st.markdown(t("job.heading", kind=t(f"job.kind.{job.kind}"), id=job.id[:12], status=t(f"job.status.{job.status}")))
    st.caption(t("monitoring.follow", id=job.id))
    if job.status == "queued":
        st.info(t("job.queued_hint"))
    elif job.status == "failed":
        st.error(t("job.failed"))
        recorded(job.error)
    elif job.status == "cancelled":
        st.warning(t("job.cancelled"))
    elif job.status == "finished":
        result = job.result or {}
        st.success(
            t(
                "monitoring.job_done",
                resolved=count(result.get("resolved")),
                expired=count(result.get("expired")),
                pending=count(result.get("pending")),
                days=count(result.get("versions_days")),
            )
        )
        for error in result.get("errors") or []:
            recorded(str(error))


if __name__ == "__main__":
    render()
