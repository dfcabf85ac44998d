"""Plotly figures of the dashboard: pure functions, data and already translated labels in, figure out."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from backend.services.schemas import MetricPoint

__all__ = [
    "KS_PVALUE_FLOOR",
    "drift_ks_figure",
    "drift_psi_figure",
    "history_figure",
    "neg_log10_pvalue",
    "series_figure",
]

_LAYOUT: dict[str, Any] = {
    "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
    "height": 340,
    "title": {"x": 0, "xanchor": "left", "font": {"size": 15}},
    "legend": {"orientation": "h", "yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0},
    "hovermode": "x unified",
}
#: Chart toolbar: no Plotly logo, no "send to cloud".
CONFIG: dict[str, Any] = {"displaylogo": False, "modeBarButtonsToRemove": ["sendDataToCloud", "toImage"]}


def history_figure(series: Mapping[str, Sequence[MetricPoint]], *, title: str, x_title: str, y_title: str) -> go.Figure:
    """One line per entry of ``series`` (a metric of one run, or one metric of several runs) against step."""
    fig = go.Figure()
    for name, points in series.items():
        fig.add_trace(
            go.Scatter(
                x=[p.step for p in points],
                y=[p.value for p in points],
                mode="lines+markers",
                name=name,
            )
        )
    fig.update_layout(**_LAYOUT)
    fig.update_layout(title_text=title, xaxis_title=x_title, yaxis_title=y_title)
    steps = {p.step for points in series.values() for p in points}
    if steps and max(steps) - min(steps) <= 20:
        fig.update_xaxes(dtick=1)  # whole epochs, not 1.5
    return fig


def series_figure(
    x: Sequence[Any], ys: Mapping[str, Sequence[float | None]], *, title: str, x_title: str, y_title: str
) -> go.Figure:
    """Lines over a shared categorical x axis (e.g. formatted start times of retraining runs)."""
    fig = go.Figure()
    for name, values in ys.items():
        fig.add_trace(go.Scatter(x=list(x), y=list(values), mode="lines+markers", name=name))
    fig.update_layout(**_LAYOUT)
    fig.update_layout(title_text=title, xaxis_title=x_title, yaxis_title=y_title)
    fig.update_xaxes(type="category")
    return fig


#: Colours of a feature's bar on both drift charts: drifted (PSI over its limit and KS under its
#: threshold) or stable.
DRIFTED_COLOR, STABLE_COLOR = "#d62728", "#1f77b4"
#: Smallest p-value drawn: ``-log10`` of anything smaller is capped here (a KS test on thousands of
#: rows reaches p = 1e-234; a bar 117 times the threshold's height hides every other bar). The hover
#: keeps the real p-value.
KS_PVALUE_FLOOR = 1e-20
#: Room for feature names under the bars, rotated: a name is never clipped (``volatility_10``).
_DRIFT_LAYOUT: dict[str, Any] = {
    **_LAYOUT,
    "height": 420,
    "hovermode": "closest",
    "margin": {"l": 60, "r": 10, "t": 50, "b": 10},
    "bargap": 0.25,
}


def neg_log10_pvalue(pvalue: float | None, floor: float = KS_PVALUE_FLOOR) -> float | None:
    """``-log10(p)`` of a KS p-value, capped at ``-log10(floor)`` (the chart's cap by default; a table
    passes ``1e-300``): taller = more drift, like PSI. ``None`` (no test) stays ``None``."""
    if pvalue is None or not math.isfinite(float(pvalue)):
        return None
    return -math.log10(max(float(pvalue), floor))


def _drift_axes(fig: go.Figure, names: Sequence[str]) -> None:
    # Category axis in the report's order (the same on both charts), every name shown, margins grown
    # to fit the rotated names (Plotly's automargin) rather than cut at the plot's edge.
    fig.update_xaxes(
        type="category",
        categoryorder="array",
        categoryarray=list(names),
        tickangle=-45,
        automargin=True,
        tickmode="array",
        tickvals=list(names),
    )
    fig.update_yaxes(automargin=True, rangemode="tozero")


def _threshold_line(fig: go.Figure, y: float, label: str) -> None:
    fig.add_hline(
        y=y,
        line={"dash": "dash", "color": "#333", "width": 1.5},
        annotation_text=label,
        annotation_position="top left",
        annotation_font_size=12,
    )


def drift_psi_figure(
    features: Sequence[Mapping[str, Any]],
    *,
    title: str,
    psi_name: str,
    limit_name: str,
    drifted_name: str,
    stable_name: str,
    threshold: float | None = None,
    threshold_name: str | None = None,
) -> go.Figure:
    """PSI of each feature (bars, red where the feature drifted; taller = more drift), each feature's own
    limit (a dash over its bar; a triangle at the top when it is above the axis) and the global PSI
    threshold (a dashed line, e.g. 0.2)."""
    names = [str(f["feature"]) for f in features]
    colors = [DRIFTED_COLOR if f.get("drifted") else STABLE_COLOR for f in features]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=names,
            y=[f.get("psi") for f in features],
            name=psi_name,
            marker_color=colors,
            customdata=[drifted_name if f.get("drifted") else stable_name for f in features],
            hovertemplate="%{x}: %{y:.3f} (%{customdata})<extra></extra>",
        )
    )
    # The axis is scaled to the PSI bars and the threshold, not to the calibrated limits (a quiet feature's
    # limit can be 20 times its PSI and would flatten every bar): a limit above the top is drawn at the
    # top as a triangle, its value in the hover.
    psis = [float(f["psi"]) for f in features if f.get("psi") is not None and math.isfinite(float(f["psi"]))]
    top = 1.5 * max([*psis, float(threshold) if threshold is not None else 0.0, 1e-3])
    limits = [f.get("psi_limit") for f in features]
    fig.add_trace(
        go.Scatter(
            x=names,
            y=[None if lim is None else min(float(lim), top) for lim in limits],
            mode="markers",
            name=limit_name,
            customdata=limits,
            marker={
                "symbol": ["triangle-up" if lim is not None and lim > top else "line-ew-open" for lim in limits],
                "size": 14,
                "color": "#333",
                "line": {"width": 3, "color": "#333"},
            },
            cliponaxis=False,
            hovertemplate="%{x}: %{customdata:.3f}<extra></extra>",
        )
    )
    fig.update_layout(**_DRIFT_LAYOUT)
    fig.update_layout(title_text=title, yaxis_title=psi_name)
    if threshold is not None:
        _threshold_line(fig, float(threshold), threshold_name or f"{threshold:g}")
    _drift_axes(fig, names)
    fig.update_yaxes(range=[0, top])
    return fig


def drift_ks_figure(
    features: Sequence[Mapping[str, Any]],
    threshold: float | None,
    *,
    title: str,
    pvalue_name: str,
    threshold_name: str,
    value_name: str | None = None,
    drifted_name: str | None = None,
    stable_name: str | None = None,
) -> go.Figure:
    """The KS test of each feature as ``-log10(p)`` on a linear axis (taller = more drift, as on the PSI
    chart beside it), capped at ``-log10(KS_PVALUE_FLOOR)``; the p-value threshold as a dashed line at
    ``-log10(threshold)`` (0.01 -> 2). The hover shows the real p-value."""
    names = [str(f["feature"]) for f in features]
    pvalues = [f.get("ks_pvalue") for f in features]
    heights = [neg_log10_pvalue(p) for p in pvalues]
    colors = [DRIFTED_COLOR if f.get("drifted") else STABLE_COLOR for f in features]
    state = [(drifted_name if f.get("drifted") else stable_name) or "" for f in features]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=names,
            y=heights,
            name=value_name or pvalue_name,
            marker_color=colors,
            customdata=[[p if p is not None else float("nan"), s] for p, s in zip(pvalues, state)],
            hovertemplate=f"%{{x}}: {pvalue_name} %{{customdata[0]:.2e}} %{{customdata[1]}}<extra></extra>",
        )
    )
    fig.update_layout(**_DRIFT_LAYOUT)
    fig.update_layout(title_text=title, yaxis_title=value_name or pvalue_name)
    if threshold is not None and 0 < float(threshold) <= 1:
        _threshold_line(fig, -math.log10(float(threshold)), threshold_name)
    _drift_axes(fig, names)
    return fig
