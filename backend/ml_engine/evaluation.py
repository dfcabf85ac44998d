"""Evaluation: classification metrics, naive baselines, and a fee-aware backtest (pure numpy).

No I/O here; the PNG plots live in :mod:`backend.ml_engine.plots`.

Classes are 0 = down, 1 = flat, 2 = up (see ``labels.py``).

Backtest conventions (documented once, used everywhere):

- Positions: up -> +1 (long), down -> -1 (short), flat -> 0; or the caller's ``positions``
  (e.g. from a :class:`~backend.ml_engine.signal_policy.SignalPolicy`: thresholds, long only).
- Fill at the NEXT OPEN (``fill = "next_open"``, when ``open_`` is given; the honest one): the
  signal of row t is decided at close[t], filled at open[t+1] and held until the next fill at
  open[t+2], so it earns ``r[t] = open[t+2] / open[t+1] - 1``. The last TWO rows of each series
  have no such pair of opens: their position is 0 (a held position is closed at the last open,
  open[n-1], paying the fee) and they earn nothing.
- Fill at the close (``fill = "close"``, when ``open_`` is None; kept for callers without
  opens): the position of row t is held from close[t] to close[t+1], ``r[t] = close[t+1] /
  close[t] - 1``; it trades at the very price the signal was computed from, which no live bot
  can do. The last row of each series has no next close: its position is 0.
- Rows of one ``series_id`` must be consecutive bars in time order. Pass an id that changes
  at segment breaks too (e.g. ``series * 100000 + segment``) so no return spans a gap.
- Costs: ``|pos[t] - pos[t-1]| * (fee + slippage)`` is charged at row t's fill (pos before the
  first row = 0), so a long -> short flip pays twice. Net return = ``pos[t] * r[t] - cost_t``.
- Equity: ``cumprod(1 + net)``, starting at 1.0 (compounded per bar).
- sharpe: mean(net) / std(net, ddof=1) * sqrt(periods_per_year), periods_per_year =
  365 * 24 * 60 / timeframe minutes (crypto trades 24/7) unless the caller passes its own
  (e.g. 252 for daily stock bars); 0.0 when std is 0.
- max_drawdown: a POSITIVE fraction, ``max_t(1 - equity_t / max_{s<=t} equity_s)`` (0.25 = -25 %).
- win_rate: share of BARS spent in a position (pos != 0) whose net return is > 0.
  ``n_trades``: number of position changes (entry, exit, flip each count 1; the forced exit at
  the end of a series counts).
- ``too_few_trades``: ``n_trades < MIN_TRADES`` (30). With fewer trades the return and Sharpe
  are decided by a handful of outcomes: the standard error of a mean over n trades is
  sigma / sqrt(n), still > 18 % of sigma at n = 30, and about 30 is where the mean of trade
  returns is close enough to normal for a Sharpe ratio to mean anything. Show such results as
  :func:`format_sharpe` does ("too few trades (4 < 30)"), not as a number.
- Buy and hold: long from the first to the last fill of each series, same costs on entry and exit.
- Several series: each series is backtested on its own; the headline metrics are the
  EQUAL-WEIGHT MEAN over series of total_return, sharpe, max_drawdown (i.e. one equal slice
  of capital per series), win_rate is pooled over all in-position bars, n_trades and n_bars
  are summed. Per-series metrics are in ``result["per_series"]``, equity curves in
  ``result["equity"]`` (or :func:`backtest_equity`).
"""

from __future__ import annotations

import math
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
    "MIN_TRADES",
    "backtest",
    "backtest_equity",
    "format_sharpe",
    "scalar_metrics",
    "probability_metrics",
    "net_returns",
    "sharpe_interval",
]

CLASS_NAMES: tuple[str, ...] = ("down", "flat", "up")
DOWN, FLAT, UP = 0, 1, 2
#: Below this many trades a backtest's return and Sharpe are not meaningful (module docstring).
MIN_TRADES = 30


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


def _run_positions(pos: np.ndarray, r: np.ndarray, cost: float, tail: int) -> dict[str, Any]:
    """pos, r: one series; the last ``tail`` rows have no return: their position is forced to 0."""
    pos = pos.astype(np.float64).copy()
    r = r.copy()
    pos[max(pos.size - tail, 0) :] = 0.0
    r[max(r.size - tail, 0) :] = 0.0
    dpos = np.abs(np.diff(np.concatenate([[0.0], pos])))
    net = pos * r - dpos * cost
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


def _prices(a: ArrayLike, name: str, n: int) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{name} has shape {arr.shape}, expected ({n},) like the predictions")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"backtest: {name} must be finite and > 0")
    return arr


def _positions(pred_class: ArrayLike | None, positions: ArrayLike | None) -> np.ndarray:
    if (pred_class is None) == (positions is None):
        raise ValueError("backtest: pass either pred_class or positions (exactly one)")
    if pred_class is not None:
        pred = _as_labels(pred_class, "pred_class", 3)
        out: np.ndarray = np.array([-1.0, 0.0, 1.0])[pred]
        return out
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 1:
        raise ValueError(f"positions must be 1-D, got shape {pos.shape}")
    if not np.all(np.isfinite(pos)) or np.any(np.abs(pos) > 1.0):
        raise ValueError("positions must be finite and within [-1, 1]")
    return pos


def _cost(name: str, value: float) -> float:
    v = float(value)
    if isinstance(value, bool) or not 0.0 <= v < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return v


def backtest(
    pred_class: ArrayLike | None,
    close: ArrayLike,
    series_id: ArrayLike | None = None,
    fee: float = 0.001,
    timeframe: str = "5m",
    *,
    open_: ArrayLike | None = None,
    positions: ArrayLike | None = None,
    slippage: float = 0.0,
    periods_per_year: float | None = None,
) -> dict[str, Any]:
    """Trade the predicted classes (up long, down short, flat out), or given positions, with costs.

    Args:
        pred_class: (N,) predicted class ids (0 down, 1 flat, 2 up); None when ``positions`` is given.
        close: (N,) close price at each row's bar (the returns when ``open_`` is None).
        series_id: (N,) id of the series (and segment) of each row; None = one series.
            Rows of one id must be consecutive bars in time order (see the module docstring).
        fee: proportional cost per unit of position change (0.001 = 10 bp).
        timeframe: bar length, for annualising the Sharpe ratio (24/7 market).
        open_: (N,) open price of each row's bar: fills at the next open (module docstring);
            None = the close-to-close convention.
        positions: (N,) positions in [-1, 1] (e.g. ``SignalPolicy.positions(proba)``) instead of
            ``pred_class``.
        slippage: proportional cost per unit of position change, added to ``fee``.
        periods_per_year: bars per year for the Sharpe ratio; None = from ``timeframe`` (24/7);
            e.g. 252 for daily stock bars.

    Returns a dict with scalars ``total_return``, ``sharpe``, ``max_drawdown`` (positive
    fraction), ``win_rate``, ``n_trades``, ``too_few_trades`` (bool: ``n_trades < MIN_TRADES``),
    ``exposure`` (share of bars in a position), ``buy_and_hold_total_return``,
    ``buy_and_hold_sharpe``, ``buy_and_hold_max_drawdown``, ``n_series``, ``n_bars``, ``fee``,
    ``slippage``, ``periods_per_year``; ``fill`` ("next_open" or "close"); ``per_series``
    ({id: same scalars}); and ``equity`` ({id: {"strategy": (n,) array, "buy_and_hold": (n,)
    array}}, value after each row). :func:`scalar_metrics` keeps only the numbers (for MLflow).
    """
    fee_f = _cost("fee", fee)
    slip_f = _cost("slippage", slippage)
    cost = fee_f + slip_f
    if cost >= 1.0:
        raise ValueError(f"fee + slippage must be < 1, got {cost}")
    pos_all = _positions(pred_class, positions)
    n = pos_all.size
    if n == 0:
        raise ValueError("backtest: no rows")
    c = _prices(close, "close", n)
    o = None if open_ is None else _prices(open_, "open_", n)
    sid = np.zeros(n, dtype=np.int64) if series_id is None else np.asarray(series_id)
    if sid.shape != (n,):
        raise ValueError(f"series_id has shape {sid.shape}, expected ({n},)")
    if periods_per_year is None:
        ppy = _periods_per_year(timeframe)
    else:
        ppy = float(periods_per_year)
        if isinstance(periods_per_year, bool) or not (math.isfinite(ppy) and ppy > 0):
            raise ValueError(f"periods_per_year must be a number > 0, got {periods_per_year!r}")
    fill = "close" if o is None else "next_open"
    tail = 1 if o is None else 2

    per_series: dict[Any, dict[str, Any]] = {}
    equity: dict[Any, dict[str, np.ndarray]] = {}
    wins = bars_in_pos = trades = n_bars = 0
    for key, rows in _group_rows(sid):
        r = np.zeros(rows.size)
        if o is None:
            cs = c[rows]
            r[:-1] = cs[1:] / cs[:-1] - 1.0
        elif rows.size > 2:
            os_ = o[rows]
            r[:-2] = os_[2:] / os_[1:-1] - 1.0
        strat = _run_positions(pos_all[rows], r, cost, tail)
        bh = _run_positions(np.ones(rows.size), r, cost, tail)
        per_series[key] = {
            "total_return": float(strat["equity"][-1] - 1.0),
            "sharpe": _sharpe(strat["net"], ppy),
            "max_drawdown": _max_drawdown(strat["equity"]),
            "win_rate": float(strat["wins"] / strat["bars_in_position"]) if strat["bars_in_position"] else 0.0,
            "n_trades": strat["n_trades"],
            "too_few_trades": strat["n_trades"] < MIN_TRADES,
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
        "too_few_trades": trades < MIN_TRADES,
        "exposure": float(bars_in_pos / n_bars),
        "buy_and_hold_total_return": mean("buy_and_hold_total_return"),
        "buy_and_hold_sharpe": mean("buy_and_hold_sharpe"),
        "buy_and_hold_max_drawdown": mean("buy_and_hold_max_drawdown"),
        "n_series": len(per_series),
        "n_bars": int(n_bars),
        "fee": fee_f,
        "slippage": slip_f,
        "periods_per_year": ppy,
        "fill": fill,
        "per_series": per_series,
        "equity": equity,
    }


_periods_per_year = periods_per_year  # backtest's argument of the same name hides the function


def backtest_equity(
    pred_class: ArrayLike | None,
    close: ArrayLike,
    series_id: ArrayLike | None = None,
    fee: float = 0.001,
    *,
    open_: ArrayLike | None = None,
    positions: ArrayLike | None = None,
    slippage: float = 0.0,
) -> dict[Any, dict[str, np.ndarray]]:
    """Only the equity curves of :func:`backtest`: {series id: {"strategy", "buy_and_hold"}}."""
    res = backtest(pred_class, close, series_id, fee=fee, open_=open_, positions=positions, slippage=slippage)
    curves: dict[Any, dict[str, np.ndarray]] = res["equity"]
    return curves


def _trades_ru(n: int) -> str:
    if n % 10 == 1 and n % 100 != 11:
        return "сделка"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return "сделки"
    return "сделок"


def format_sharpe(sharpe: float, n_trades: int, lang: str = "en") -> str:
    """A Sharpe ratio for people: "1.23 (57 trades)", or "too few trades (4 < 30)" below
    ``MIN_TRADES``; ``lang="ru"``: "1.23 (57 сделок)", "слишком мало сделок (4 < 30)"."""
    if lang not in ("en", "ru"):
        raise ValueError(f"lang must be 'en' or 'ru', got {lang!r}")
    n = int(n_trades)
    if n < MIN_TRADES:
        if lang == "ru":
            return f"слишком мало сделок ({n} < {MIN_TRADES})"
        return f"too few trades ({n} < {MIN_TRADES})"
    if lang == "ru":
        return f"{float(sharpe):.2f} ({n} {_trades_ru(n)})"
    return f"{float(sharpe):.2f} ({n} trade{'' if n == 1 else 's'})"


def probability_metrics(y_true: ArrayLike, proba: ArrayLike, n_classes: int = 3) -> dict[str, float]:
    """``log_loss`` (natural log, probabilities clipped to [1e-15, 1]) and the multi-class ``brier``
    score (mean over rows of the squared distance to the one-hot label; 0 perfect, 2 worst)."""
    y = _as_labels(y_true, "y_true", n_classes)
    p = np.asarray(proba, dtype=np.float64)
    if p.shape != (y.size, n_classes):
        raise ValueError(f"proba must have shape ({y.size}, {n_classes}), got {p.shape}")
    if y.size == 0:
        raise ValueError("probability_metrics: empty y_true")
    picked = np.clip(p[np.arange(y.size), y], 1e-15, 1.0)
    onehot = np.eye(n_classes)[y]
    return {
        "log_loss": float(-np.mean(np.log(picked))),
        "brier": float(np.mean(np.sum((p - onehot) ** 2, axis=1))),
    }


def net_returns(result: dict[str, Any]) -> np.ndarray:
    """The strategy's per-bar net returns of a :func:`backtest` result, series after series."""
    parts = []
    for curves in result["equity"].values():
        eq = np.concatenate([[1.0], np.asarray(curves["strategy"], dtype=np.float64)])
        parts.append(eq[1:] / eq[:-1] - 1.0)
    return np.concatenate(parts) if parts else np.zeros(0)


def sharpe_interval(
    result: dict[str, Any], *, block: int, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> dict[str, float]:
    """95% block-bootstrap interval of the annualised Sharpe of the pooled per-bar net returns of a
    :func:`backtest` result (blocks of ``block`` bars: at least the label horizon), as
    ``sharpe_low`` / ``sharpe_high``; NaN with fewer than two bars."""
    from .bootstrap import bootstrap_metric, sharpe_ratio

    net = net_returns(result)
    if net.size < 2:
        return {"sharpe_low": float("nan"), "sharpe_high": float("nan")}
    iv = bootstrap_metric(
        sharpe_ratio,
        net,
        block=max(1, min(int(block), net.size)),
        n_boot=n_boot,
        alpha=alpha,
        seed=seed,
        metric_kwargs={"periods_per_year": float(result["periods_per_year"])},
    )
    return {"sharpe_low": float(iv.low), "sharpe_high": float(iv.high)}


def scalar_metrics(result: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Top-level int/float entries of a metrics dict as floats (drops lists, dicts, arrays), keys prefixed."""
    return {
        f"{prefix}{k}": float(v)
        for k, v in result.items()
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
    }
