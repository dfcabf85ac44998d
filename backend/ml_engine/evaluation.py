"""Evaluation: classification metrics, naive baselines, and a fee-aware backtest (pure numpy).

No I/O here; the PNG plots live in :mod:`backend.ml_engine.plots`.

Classes are 0 = down, 1 = flat, 2 = up (see ``labels.py``).

Backtest conventions (documented once, used everywhere):

- The prediction for row t sets the position held from close[t] to close[t+1]:
  up -> +1 (long), down -> -1 (short), flat -> 0.
- Rows of one ``series_id`` must be consecutive bars in time order. Pass an id that changes
  at segment breaks too (e.g. ``series * 100000 + segment``) so no return spans a gap.
  The last bar of each series has no next close: its position is 0 (a held position is
  closed there, paying the fee) and it earns nothing.
- Fee: ``|pos[t] - pos[t-1]| * fee`` is charged at bar t (pos before the first bar = 0), so a
  long -> short flip pays 2 * fee. Net bar return = ``pos[t] * r[t] - fee_t``.
- Equity: ``cumprod(1 + net)``, starting at 1.0 (compounded per bar).
- sharpe: mean(net) / std(net, ddof=1) * sqrt(periods_per_year), periods_per_year =
  365 * 24 * 60 / timeframe minutes (crypto trades 24/7); 0.0 when std is 0.
- max_drawdown: a POSITIVE fraction, ``max_t(1 - equity_t / max_{s<=t} equity_s)`` (0.25 = -25 %).
- win_rate: share of BARS spent in a position (pos != 0) whose net return is > 0.
  ``n_trades``: number of position changes (entry, exit, flip each count 1; the forced exit at
  the end of a series counts).
- Buy and hold: long from the first to the last bar of each series, same fee on entry and exit.
- Several series: each series is backtested on its own; the headline metrics are the
  EQUAL-WEIGHT MEAN over series of total_return, sharpe, max_drawdown (i.e. one equal slice
  of capital per series), win_rate is pooled over all in-position bars, n_trades and n_bars
  are summed. Per-series metrics are in ``result["per_series"]``, equity curves in
  ``result["equity"]`` (or :func:`backtest_equity`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "CLASS_NAMES",
    "classification_metrics",
    "direction_from_returns",
    "baseline_predictions",
    "baseline_metrics",
    "timeframe_minutes",
    "periods_per_year",
    "backtest",
    "backtest_equity",
    "scalar_metrics",
]

CLASS_NAMES: tuple[str, ...] = ("down", "flat", "up")
DOWN, FLAT, UP = 0, 1, 2


def _as_labels(a: ArrayLike, name: str, n_classes: int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer) and not np.all(np.equal(np.mod(arr, 1), 0)):
        raise ValueError(f"{name} must hold integer class ids")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(f"{name} must hold class ids in [0, {n_classes}), got range [{arr.min()}, {arr.max()}]")
    return arr


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int = 3) -> np.ndarray:
    """(n_classes, n_classes) int64 counts; rows = true class, columns = predicted class."""
    t = _as_labels(y_true, "y_true", n_classes)
    p = _as_labels(y_pred, "y_pred", n_classes)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape[0]} vs {p.shape[0]}")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


def classification_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    n_classes: int = 3,
    class_names: Sequence[str] = CLASS_NAMES,
) -> dict[str, Any]:
    """Accuracy, macro F1, per-class precision/recall/F1/support and the confusion matrix.

    Matches scikit-learn with ``labels=range(n_classes), zero_division=0``: a class never
    predicted has precision 0, a class never present has recall 0, and every class counts in
    the macro average.

    Returns a dict: ``accuracy``, ``f1_macro``, ``precision_<name>``, ``recall_<name>``,
    ``f1_<name>``, ``support_<name>`` (floats / ints), ``n`` and ``confusion_matrix``
    (list of lists, rows = true, columns = predicted).
    """
    if len(class_names) != n_classes:
        raise ValueError(f"class_names has {len(class_names)} names for {n_classes} classes")
    cm = confusion_matrix(y_true, y_pred, n_classes)
    n = int(cm.sum())
    if n == 0:
        raise ValueError("classification_metrics: empty y_true")
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)
    actual = cm.sum(axis=1)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, actual)
    f1 = _safe_div(2 * tp, predicted + actual)  # = 2PR/(P+R), 0 where undefined
    out: dict[str, Any] = {"n": n, "accuracy": float(tp.sum() / n), "f1_macro": float(f1.mean())}
    for i, name in enumerate(class_names):
        out[f"precision_{name}"] = float(precision[i])
        out[f"recall_{name}"] = float(recall[i])
        out[f"f1_{name}"] = float(f1[i])
        out[f"support_{name}"] = int(actual[i])
    out["confusion_matrix"] = cm.tolist()
    return out


def direction_from_returns(returns: ArrayLike, threshold: ArrayLike) -> np.ndarray:
    """Map returns to classes with the label rule: r > thr -> up, r < -thr -> down, else flat.

    ``threshold`` is a scalar or an array aligned with ``returns`` (volatility-scaled labels).
    NaN returns map to flat. Use it for the previous-direction baseline with the LAST REALISED
    return at t (e.g. close[t] / close[t - horizon] - 1) and the same threshold as the labels.
    """
    r = np.asarray(returns, dtype=np.float64)
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64), r.shape)
    out = np.full(r.shape, FLAT, dtype=np.int64)
    out[r > thr] = UP
    out[r < -thr] = DOWN
    return out


def baseline_predictions(
    y_true: ArrayLike,
    y_train: ArrayLike,
    prev_direction: ArrayLike | None = None,
    n_classes: int = 3,
) -> dict[str, np.ndarray]:
    """Naive predictions aligned with ``y_true``.

    - ``majority``: the most frequent class of the TRAIN labels ``y_train`` (ties -> lowest id),
      predicted for every row.
    - ``previous_direction`` (only if ``prev_direction`` is given): the caller's array of class
      ids of the last realised move at t (see :func:`direction_from_returns`), used as is.
    """
    t = _as_labels(y_true, "y_true", n_classes)
    train = _as_labels(y_train, "y_train", n_classes)
    if train.size == 0:
        raise ValueError("baseline_predictions: empty y_train")
    majority = int(np.argmax(np.bincount(train, minlength=n_classes)))
    out = {"majority": np.full(t.shape, majority, dtype=np.int64)}
    if prev_direction is not None:
        prev = _as_labels(prev_direction, "prev_direction", n_classes)
        if prev.shape != t.shape:
            raise ValueError(f"prev_direction has {prev.shape[0]} rows, y_true {t.shape[0]}")
        out["previous_direction"] = prev
    return out


def baseline_metrics(
    y_true: ArrayLike,
    y_train: ArrayLike,
    prev_direction: ArrayLike | None = None,
    n_classes: int = 3,
    class_names: Sequence[str] = CLASS_NAMES,
) -> dict[str, dict[str, Any]]:
    """:func:`classification_metrics` of each baseline of :func:`baseline_predictions`, by baseline name."""
    preds = baseline_predictions(y_true, y_train, prev_direction, n_classes)
    return {name: classification_metrics(y_true, p, n_classes, class_names) for name, p in preds.items()}


_TF_UNITS = {"m": 1, "h": 60, "d": 1440, "w": 10080}


def timeframe_minutes(timeframe: str) -> int:
    """'5m' -> 5, '1h' -> 60, '4h' -> 240, '1d' -> 1440, '1w' -> 10080."""
    m = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", str(timeframe))
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"unsupported timeframe {timeframe!r} (expected like '5m', '1h', '1d', '1w')")
    return int(m.group(1)) * _TF_UNITS[m.group(2)]


def periods_per_year(timeframe: str) -> float:
    """Bars per year for a 24/7 market: 365 * 24 * 60 / minutes."""
    return 365 * 24 * 60 / timeframe_minutes(timeframe)


def _max_drawdown(equity: np.ndarray) -> float:
    curve = np.concatenate([[1.0], equity])
    peak = np.maximum.accumulate(curve)
    return float(np.max(1.0 - curve / peak))


def _sharpe(net: np.ndarray, ppy: float) -> float:
    if net.size < 2:
        return 0.0
    sd = float(np.std(net, ddof=1))
    if not np.isfinite(sd) or sd <= 1e-15:
        return 0.0
    return float(np.mean(net) / sd * np.sqrt(ppy))


def _run_positions(pos: np.ndarray, r: np.ndarray, fee: float) -> dict[str, Any]:
    """pos, r: one series, r[-1] undefined; pos[-1] is forced to 0."""
    pos = pos.astype(np.float64).copy()
    pos[-1] = 0.0
    r = r.copy()
    r[-1] = 0.0
    dpos = np.abs(np.diff(np.concatenate([[0.0], pos])))
    net = pos * r - dpos * fee
    equity = np.cumprod(1.0 + net)
    in_pos = pos != 0
    return {
        "net": net,
        "equity": equity,
        "n_trades": int(np.count_nonzero(dpos)),
        "wins": int(np.count_nonzero(net[in_pos] > 0)),
        "bars_in_position": int(np.count_nonzero(in_pos)),
    }


def _group_rows(series_id: np.ndarray) -> list[tuple[Any, np.ndarray]]:
    ids, first = np.unique(series_id, return_index=True)
    order = np.argsort(first)  # series in order of first appearance
    return [(ids[k].item(), np.flatnonzero(series_id == ids[k])) for k in order]


def _prepare(
    pred_class: ArrayLike, close: ArrayLike, series_id: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pred = _as_labels(pred_class, "pred_class", 3)
    c = np.asarray(close, dtype=np.float64)
    if c.shape != pred.shape:
        raise ValueError(f"close has shape {c.shape}, pred_class {pred.shape}")
    if pred.size == 0:
        raise ValueError("backtest: no rows")
    if not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise ValueError("backtest: close must be finite and > 0")
    sid = np.zeros(pred.shape, dtype=np.int64) if series_id is None else np.asarray(series_id)
    if sid.shape != pred.shape:
        raise ValueError(f"series_id has shape {sid.shape}, pred_class {pred.shape}")
    return pred, c, sid


def backtest(
    pred_class: ArrayLike,
    close: ArrayLike,
    series_id: ArrayLike | None = None,
    fee: float = 0.001,
    timeframe: str = "5m",
) -> dict[str, Any]:
    """Trade the predicted classes (up long, down short, flat out) bar by bar, with fees.

    Args:
        pred_class: (N,) predicted class ids (0 down, 1 flat, 2 up).
        close: (N,) close price at each row's bar.
        series_id: (N,) id of the series (and segment) of each row; None = one series.
            Rows of one id must be consecutive bars in time order (see the module docstring).
        fee: proportional cost per unit of position change (0.001 = 10 bp).
        timeframe: bar length, for annualising the Sharpe ratio.

    Returns a dict with scalars ``total_return``, ``sharpe``, ``max_drawdown`` (positive
    fraction), ``win_rate``, ``n_trades``, ``exposure`` (share of bars in a position),
    ``buy_and_hold_total_return``, ``buy_and_hold_sharpe``, ``buy_and_hold_max_drawdown``,
    ``n_series``, ``n_bars``, ``fee``; ``per_series`` ({id: same scalars}); and ``equity``
    ({id: {"strategy": (n,) array, "buy_and_hold": (n,) array}}, value after each bar).
    Use :func:`scalar_metrics` to keep only the scalars (e.g. for MLflow).
    """
    if not (0.0 <= float(fee) < 1.0):
        raise ValueError(f"fee must be in [0, 1), got {fee}")
    pred, c, sid = _prepare(pred_class, close, series_id)
    ppy = periods_per_year(timeframe)
    position_of_class = np.array([-1.0, 0.0, 1.0])

    per_series: dict[Any, dict[str, Any]] = {}
    equity: dict[Any, dict[str, np.ndarray]] = {}
    wins = bars_in_pos = trades = n_bars = 0
    for key, rows in _group_rows(sid):
        cs = c[rows]
        r = np.empty(cs.shape)
        r[:-1] = cs[1:] / cs[:-1] - 1.0
        r[-1] = np.nan
        strat = _run_positions(position_of_class[pred[rows]], r, float(fee))
        bh = _run_positions(np.ones(cs.shape), r, float(fee))
        per_series[key] = {
            "total_return": float(strat["equity"][-1] - 1.0),
            "sharpe": _sharpe(strat["net"], ppy),
            "max_drawdown": _max_drawdown(strat["equity"]),
            "win_rate": float(strat["wins"] / strat["bars_in_position"]) if strat["bars_in_position"] else 0.0,
            "n_trades": strat["n_trades"],
            "exposure": float(strat["bars_in_position"] / rows.size),
            "buy_and_hold_total_return": float(bh["equity"][-1] - 1.0),
            "buy_and_hold_sharpe": _sharpe(bh["net"], ppy),
            "buy_and_hold_max_drawdown": _max_drawdown(bh["equity"]),
            "n_bars": int(rows.size),
        }
        equity[key] = {"strategy": strat["equity"], "buy_and_hold": bh["equity"]}
        wins += strat["wins"]
        bars_in_pos += strat["bars_in_position"]
        trades += strat["n_trades"]
        n_bars += int(rows.size)

    def mean(k: str) -> float:
        return float(np.mean([m[k] for m in per_series.values()]))

    return {
        "total_return": mean("total_return"),
        "sharpe": mean("sharpe"),
        "max_drawdown": mean("max_drawdown"),
        "win_rate": float(wins / bars_in_pos) if bars_in_pos else 0.0,
        "n_trades": int(trades),
        "exposure": float(bars_in_pos / n_bars),
        "buy_and_hold_total_return": mean("buy_and_hold_total_return"),
        "buy_and_hold_sharpe": mean("buy_and_hold_sharpe"),
        "buy_and_hold_max_drawdown": mean("buy_and_hold_max_drawdown"),
        "n_series": len(per_series),
        "n_bars": int(n_bars),
        "fee": float(fee),
        "per_series": per_series,
        "equity": equity,
    }


def backtest_equity(
    pred_class: ArrayLike, close: ArrayLike, series_id: ArrayLike | None = None, fee: float = 0.001
) -> dict[Any, dict[str, np.ndarray]]:
    """Only the equity curves of :func:`backtest`: {series id: {"strategy", "buy_and_hold"}}."""
    curves: dict[Any, dict[str, np.ndarray]] = backtest(pred_class, close, series_id, fee=fee)["equity"]
    return curves


def scalar_metrics(result: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Top-level int/float entries of a metrics dict as floats (drops lists, dicts, arrays), keys prefixed."""
    return {
        f"{prefix}{k}": float(v)
        for k, v in result.items()
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
    }
