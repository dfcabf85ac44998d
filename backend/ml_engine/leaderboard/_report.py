"""The leaderboard in words and pictures: the verdict sentence, the Markdown tables, the PNG chart.

Everything here reads the JSON-able dict of a result (``LeaderboardResult.to_dict()``), so a saved
``leaderboard.json`` renders the same Markdown as the run that wrote it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..evaluation import MIN_TRADES, format_sharpe
from ._stats import METRICS

__all__ = ["render_markdown", "plot_leaderboard", "verdict"]

_BASELINE_WORDS = {"majority": "the majority class", "previous_direction": "the previous direction"}


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{float(v):.{digits}f}"


def _ci(m: Mapping[str, Any] | None, digits: int = 3, scale: float = 1.0) -> str:
    if not m:
        return "n/a"

    def s(x: Any) -> Any:
        return None if x is None else float(x) * scale

    return f"{_fmt(s(m.get('value')), digits)} [{_fmt(s(m.get('low')), digits)}, {_fmt(s(m.get('high')), digits)}]"


def _p(p: Any) -> str:
    if p is None or (isinstance(p, float) and not math.isfinite(p)):
        return "n/a"
    return f"{float(p):.3f}"


def _names(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _beat_all(r: Mapping[str, Any], key: str) -> bool:
    tests = r.get(key) or {}
    return bool(tests) and all(t.get("significant") for t in tests.values())


def verdict(rows: Sequence[Mapping[str, Any]], alpha: float, metric: str = "accuracy") -> str:
    """One sentence: which families beat every baseline significantly on ``metric`` (or that none does),
    and then whether any does on the net return per bar after fees."""
    families = [r for r in rows if r.get("kind") == "family"]
    if not families:
        return "No model family was compared."
    level = f"p < {alpha:g}"
    winners = [r for r in families if _beat_all(r, "tests")]
    partial: list[tuple[str, list[str]]] = []
    if winners:
        best = max(winners, key=lambda r: r["metrics"][metric]["value"])
        base_best = max(
            (r for r in rows if r.get("kind") == "baseline"),
            key=lambda r: r["metrics"][metric]["value"],
            default=None,
        )
        detail = level
        if base_best is not None:
            detail += (
                f"; best {best['name']} {best['metrics'][metric]['value']:.3f} against "
                f"{base_best['metrics'][metric]['value']:.3f} for {base_best['name']}"
            )
        names = [r["name"] for r in winners]
        head = f"{_names(names)} {'beats' if len(names) == 1 else 'beat'} every naive baseline significantly on {metric} ({detail})"
    else:
        partial = [
            (r["name"], [b for b, t in r["tests"].items() if t.get("significant")])
            for r in families
            if r.get("tests") and any(t.get("significant") for t in r["tests"].values())
        ]
        if partial:
            beats = ", ".join(f"{n} beats only {_names([_BASELINE_WORDS.get(b, b) for b in bs])}" for n, bs in partial)
            head = f"No model family beats every naive baseline significantly on {metric} ({level}): {beats}"
        else:
            head = f"No model family beats the naive baselines significantly on {metric} ({level})"
    if not any(r.get("return_tests") for r in families):
        return head + "."
    earners = [r["name"] for r in families if _beat_all(r, "return_tests")]
    if earners:
        verb = "beats" if len(earners) == 1 else "beat"
        return f"{head}; on net return per bar after fees {_names(earners)} {verb} them all."
    if winners:
        return f"{head}, but none beats them all on net return per bar after fees."
    if partial:
        return f"{head}; none beats them all on net return per bar after fees."
    return f"{head}, nor on net return per bar after fees."


def render_markdown(d: Mapping[str, Any]) -> str:
    """The Markdown report of a result dict (``LeaderboardResult.to_dict()``)."""
    cfg = d.get("config") or {}
    rows: list[Mapping[str, Any]] = list(d.get("rows") or [])
    data = d.get("data") or {}
    alpha = float(cfg.get("alpha", 0.05))
    conf = f"{1 - alpha:.0%}"
    lines: list[str] = ["# Model leaderboard", ""]
    if d.get("command"):
        lines += [f"Command: `{d['command']}`", ""]
    lines += [f"**Verdict:** {d.get('verdict', '')}", ""]
    symbols = ", ".join(data.get("symbols") or [])
    lines.append(
        f"- Data: {symbols} {data.get('timeframe', '')}, {data.get('first', '?')} .. {data.get('last', '?')} "
        f"({data.get('candles', '?')} candles); window {cfg.get('window')}, label horizon {cfg.get('horizon')}."
    )
    lines.append(
        f"- Walk-forward: {len(d.get('folds') or [])} expanding folds (purged gap of window + horizon rows, "
        f"normaliser refit per fold), {d.get('n_predictions')} out-of-sample predictions from "
        f"{data.get('oos_first', '?')} to {data.get('oos_last', '?')}. Networks: at most {cfg.get('epochs')} epochs "
        f"(early stopping on the fold's validation tail), batch {cfg.get('batch_size')}, seed {cfg.get('seed')}; "
        "every family with its default config"
        + (f", options {cfg.get('model_options')}" if cfg.get("model_options") else "")
        + "."
    )
    lines.append(
        f"- Baselines: majority = the most frequent class of each fold's training labels; previous direction "
        f"= the label of row t - {cfg.get('horizon')} (the last move fully realised at t). They trade through "
        "the same policy with one-hot probabilities."
    )
    lines.append(f"- Signal policy: {d.get('policy', '')}; fills at the next candle's open.")
    lines.append(
        f"- Intervals: {conf} percentile intervals of a circular block bootstrap over the out-of-sample "
        f"predictions in time order (series after series), blocks of {d.get('block')} rows = "
        f"max(horizon, ceil(n^(1/3))), {cfg.get('n_boot')} resamples, the same resamples for every model."
    )
    lines.append(
        f"- Tests: each family against each baseline on the same resampled rows, on accuracy (the primary "
        f"metric: the majority class is the best constant guess, so beating it on accuracy takes skill; macro F1 "
        f"would reward any spread of predictions) and on the mean net return per bar; two-sided p-values of the "
        f"centred bootstrap distribution; *beats* = a positive difference with p < {alpha:g}."
    )
    lines.append(f"- Latency: {d.get('latency_note', '')}")
    lines.append("")

    lines += ["## Classification and calibration", ""]
    cls = [m for m in METRICS if m.kind == "class"]
    lines.append("| model | " + " | ".join(m.label for m in cls) + " |")
    lines.append("|---|" + "---:|" * len(cls))
    for r in rows:
        cells = [_ci(r["metrics"].get(m.key)) for m in cls]
        lines.append(f"| {_label(r)} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Higher is better for accuracy and macro F1, lower for log loss, Brier (sum over the 3 classes, 0..2) and "
        "ECE (top-label, 15 equal-width bins). A baseline's one-hot probabilities make its log loss "
        "-log(1e-15) = 34.5 on every wrong row: read it as 'no probabilities'."
    )
    lines.append("")

    lines += ["## Trading after fees", ""]
    lines.append("| model | Sharpe (annualised) | total return | max drawdown | net return / bar (bp) | trades |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        m = r["metrics"]
        n_trades = int(r.get("n_trades") or 0)
        if r.get("too_few_trades"):
            sharpe = format_sharpe(float(m["sharpe"]["value"]), n_trades)
        else:
            sharpe = _ci(m.get("sharpe"), 2)
        lines.append(
            f"| {_label(r)} | {sharpe} | {_ci(m.get('total_return'))} | {_ci(m.get('max_drawdown'))} | "
            f"{_ci(m.get('mean_net_return'), 2, 1e4)} | {n_trades} |"
        )
    lines.append("")
    lines.append(
        f"Below {MIN_TRADES} trades a Sharpe ratio is decided by a handful of outcomes and is not shown. The "
        "returns compound the per-bar net returns of the out-of-sample bars, series after series. A resample "
        "lays blocks end to end in random order and so breaks losing streaks longer than a block: the max "
        "drawdown's interval is biased low and may not contain the value."
    )
    lines.append("")

    lines += ["## Cost", ""]
    lines.append("| model | training s (all folds) | inference p50 ms (one window) | parameters |")
    lines.append("|---|---:|---:|---:|")
    for r in rows:
        lat = r.get("latency_p50_ms")
        lines.append(
            f"| {_label(r)} | {_fmt(r.get('train_seconds'), 1)} | {_fmt(lat, 3) if lat is not None else 'n/a'} | "
            f"{int(r.get('n_parameters') or 0):,} |"
        )
    lines.append("")

    lines += ["## Paired tests against the baselines", ""]
    lines.append(
        f"| family | baseline | accuracy diff [{conf}] | p | beats | net return / bar diff, bp [{conf}] | p | beats |"
    )
    lines.append("|---|---|---:|---:|:---:|---:|---:|:---:|")
    for r in rows:
        if r.get("kind") != "family":
            continue
        for base, t in (r.get("tests") or {}).items():
            rt = (r.get("return_tests") or {}).get(base, {})
            lines.append(
                f"| {r['name']} | {base} | {_fmt(t.get('diff'))} [{_fmt(t.get('low'))}, {_fmt(t.get('high'))}] | "
                f"{_p(t.get('p_value'))} | {'yes' if t.get('significant') else 'no'} | "
                f"{_ci({'value': rt.get('diff'), 'low': rt.get('low'), 'high': rt.get('high')}, 2, 1e4)} | "
                f"{_p(rt.get('p_value'))} | {'yes' if rt.get('significant') else 'no'} |"
            )
    lines.append("")

    lines += ["## Folds", ""]
    lines.append("| fold | train | val | test | test from | test to |")
    lines.append("|---:|---:|---:|---:|---|---|")
    for f in d.get("folds") or []:
        lines.append(
            f"| {int(f.get('fold', 0)) + 1} | {f.get('train')} | {f.get('val')} | {f.get('test')} | "
            f"{f.get('test_start', '')} | {f.get('test_end', '')} |"
        )
    lines.append("")
    lines.append(f"Wall time {_fmt(d.get('wall_seconds'), 0)} s.")
    return "\n".join(lines) + "\n"


def _label(r: Mapping[str, Any]) -> str:
    return f"{r['name']} (baseline)" if r.get("kind") == "baseline" else str(r["name"])


def plot_leaderboard(d: Mapping[str, Any], path: str | Path) -> Path:
    """Accuracy, macro F1 and net return per bar of every model with their intervals (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = list(d.get("rows") or [])
    panels = (
        ("accuracy", "accuracy", 1.0),
        ("f1_macro", "macro F1", 1.0),
        ("mean_net_return", "net return / bar (bp)", 1e4),
    )
    fig = Figure(figsize=(11, 0.45 * max(len(rows), 3) + 1.6))
    FigureCanvasAgg(fig)
    names = [_label(r) for r in rows][::-1]
    for i, (key, title, scale) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        vals, lo, hi, colors = [], [], [], []
        for r in rows[::-1]:
            m = r["metrics"][key]
            v = _finite(m["value"]) * scale
            vals.append(v)
            lo.append(max(v - _finite(m["low"], v / scale) * scale, 0.0))
            hi.append(max(_finite(m["high"], v / scale) * scale - v, 0.0))
            colors.append("#9e9e9e" if r.get("kind") == "baseline" else "#1f77b4")
        y = list(range(len(rows)))
        ax.barh(y, vals, xerr=[lo, hi], color=colors, capsize=3)
        ax.set_yticks(y)
        ax.set_yticklabels(names if i == 0 else [""] * len(names), fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.axvline(0.0, color="black", linewidth=0.6)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(
        f"Leaderboard: {d.get('n_predictions')} out-of-sample predictions, {1 - float((d.get('config') or {}).get('alpha', 0.05)):.0%} block-bootstrap intervals",
        fontsize=10,
    )
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=110)
    return out


def _finite(v: Any, default: float = 0.0) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return f if math.isfinite(f) else default
