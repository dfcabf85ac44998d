"""Plotly figures of the dashboard: pure functions, data and already translated labels in, figure out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from backend.services.schemas import MetricPoint

__all__ = ["drift_ks_figure", "drift_psi_figure", "history_figure", "series_figure"]

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


def drift_psi_figure(
    features: Sequence[Mapping[str, Any]],
    *,
    title: str,
    psi_name: str,
    limit_name: str,
    drifted_name: str,
    stable_name: str,
) -> go.Figure:
    """PSI of each feature (bars, red where the feature drifted) against its limit (markers)."""
    names = [f["feature"] for f in features]
    colors = ["#d62728" if f.get("drifted") else "#1f77b4" for f in features]
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
    fig.add_trace(
        go.Scatter(
            x=names,
            y=[f.get("psi_limit") for f in features],
            mode="markers",
            name=limit_name,
            marker={"symbol": "line-ew-open", "size": 18, "color": "#333", "line": {"width": 3}},
        )
    )
    fig.update_layout(**{**_LAYOUT, "height": 400, "hovermode": "closest"})
    fig.update_layout(title_text=title)
    fig.update_xaxes(tickangle=-45)
    return fig


def drift_ks_figure(
    features: Sequence[Mapping[str, Any]], threshold: float | None, *, title: str, pvalue_name: str, threshold_name: str
) -> go.Figure:
    """KS p-value of each feature on a log axis, with the threshold below which a feature may drift."""
    names = [f["feature"] for f in features]
    values = [max(float(f["ks_pvalue"]), 1e-300) if f.get("ks_pvalue") is not None else None for f in features]
    colors = ["#d62728" if f.get("drifted") else "#1f77b4" for f in features]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(x=names, y=values, name=pvalue_name, marker_color=colors, hovertemplate="%{x}: %{y:.2e}<extra></extra>")
    )
    if threshold is not None:
        fig.add_trace(
            go.Scatter(
                x=names,
                y=[threshold] * len(names),
                mode="lines",
                name=threshold_name,
                line={"dash": "dash", "color": "#333"},
            )
        )
    fig.update_layout(**{**_LAYOUT, "height": 400, "hovermode": "closest"})
    fig.update_layout(title_text=title)
    fig.update_yaxes(type="log", exponentformat="e")
    fig.update_xaxes(tickangle=-45)
    return fig
