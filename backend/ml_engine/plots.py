"""PNG plots for training reports (matplotlib, Agg canvas; no pyplot global state, no display needed)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from .evaluation import CLASS_NAMES

__all__ = ["plot_confusion_matrix", "plot_learning_curves", "plot_equity_curve", "plot_reliability"]

logger = logging.getLogger(__name__)


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(out, format="png", dpi=110)
    logger.debug("wrote plot %s", out)
    return out


def plot_confusion_matrix(
    cm: ArrayLike,
    path: str | os.PathLike[str],
    class_names: Sequence[str] = CLASS_NAMES,
    title: str = "Confusion matrix",
) -> Path:
    """Heatmap of a confusion matrix (rows = true, columns = predicted), counts and row-% in each cell."""
    m = np.asarray(cm, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(class_names):
        raise ValueError(f"cm must be square with {len(class_names)} rows, got shape {m.shape}")
    row = m.sum(axis=1, keepdims=True)
    frac = np.divide(m, row, out=np.zeros_like(m), where=row > 0)
    fig = Figure(figsize=(4.8, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, labels=list(class_names))
    ax.set_yticks(ticks, labels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                f"{int(m[i, j])}\n{frac[i, j]:.0%}",
                ha="center",
                va="center",
                color="white" if frac[i, j] > 0.5 else "black",
                fontsize=9,
            )
    return _save(fig, path)


def plot_learning_curves(history: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Train/val loss and val accuracy/F1 per epoch from ``TrainResult.history``."""
    if not history:
        raise ValueError("plot_learning_curves: empty history")
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(9, 3.6))
    ax1 = fig.add_subplot(1, 2, 1)
    for key in ("train_loss", "val_loss"):
        if key in history[0]:
            ax1.plot(epochs, [h[key] for h in history], marker="o", label=key)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2 = fig.add_subplot(1, 2, 2)
    for key in ("val_accuracy", "val_f1"):
        if key in history[0]:
            ax2.plot(epochs, [h[key] for h in history], marker="o", label=key)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("score")
    ax2.legend()
    ax2.grid(alpha=0.3)
    return _save(fig, path)


def plot_equity_curve(
    equity: Mapping[Any, Mapping[str, Any]] | Mapping[str, Any],
    path: str | os.PathLike[str],
    title: str = "Backtest equity",
) -> Path:
    """Strategy vs buy-and-hold equity curves.

    ``equity`` is ``backtest(...)["equity"]`` ({series id: {"strategy": arr, "buy_and_hold": arr}})
    or a single {"strategy": arr, "buy_and_hold": arr}. One line pair per series.
    """
    if "strategy" in equity:
        equity = {"": equity}
    if not equity:
        raise ValueError("plot_equity_curve: no curves")
    fig = Figure(figsize=(9, 4))
    ax = fig.add_subplot(1, 1, 1)
    for i, (key, curves) in enumerate(equity.items()):
        color = f"C{i % 10}"
        suffix = f" {key}" if key != "" else ""
        ax.plot(np.asarray(curves["strategy"]), color=color, label=f"strategy{suffix}")
        if "buy_and_hold" in curves:
            ax.plot(
                np.asarray(curves["buy_and_hold"]), color=color, linestyle="--", alpha=0.6, label=f"buy & hold{suffix}"
            )
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xlabel("bar")
    ax.set_ylabel("equity (start = 1)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_reliability(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike, ArrayLike]],
    path: str | os.PathLike[str],
    title: str = "Reliability",
) -> Path:
    """Reliability diagram: accuracy against mean confidence per bin, one line per model, the
    diagonal = perfect calibration; below, the share of rows in each bin.

    ``curves`` maps a name to ``calibration.reliability_curve(...)`` = (bin_confidence,
    bin_accuracy, bin_count), each (n_bins,) over equal-width bins of [0, 1]; empty bins (NaN)
    are skipped.
    """
    if not curves:
        raise ValueError("plot_reliability: no curves")
    fig = Figure(figsize=(5.6, 6.2))
    grid = fig.add_gridspec(2, 1, height_ratios=(3, 1))
    ax = fig.add_subplot(grid[0])
    hist = fig.add_subplot(grid[1], sharex=ax)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="perfect")
    width = 0.8 / len(curves)
    for i, (name, (conf, acc, count)) in enumerate(curves.items()):
        c = np.asarray(conf, dtype=np.float64)
        a = np.asarray(acc, dtype=np.float64)
        n = np.asarray(count, dtype=np.float64)
        if not (c.shape == a.shape == n.shape) or c.ndim != 1:
            raise ValueError(
                f"plot_reliability: {name!r} needs three (n_bins,) arrays, got {c.shape}, {a.shape}, {n.shape}"
            )
        ok = np.isfinite(c) & np.isfinite(a) & (n > 0)
        color = f"C{i % 10}"
        ax.plot(c[ok], a[ok], marker="o", markersize=3, color=color, label=str(name))
        n_bins = c.size
        centers = (np.arange(n_bins) + 0.5) / n_bins
        total = n.sum()
        share = n / total if total > 0 else n
        hist.bar(centers + (i - (len(curves) - 1) / 2) * width / n_bins, share, width=width / n_bins, color=color)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    hist.set_xlabel("confidence (top-label probability)")
    hist.set_ylabel("share of rows")
    hist.grid(alpha=0.3)
    return _save(fig, path)
