"""The leaderboard's numbers: per-row scores, batched metrics, block-bootstrap intervals and paired tests.

Every metric is computed on the out-of-sample rows of all folds together, in one order (series
after series, each in time order), and its 95 % interval comes from the same circular block
bootstrap (:mod:`backend.ml_engine.bootstrap`): one seed, so every metric of every model is
measured on the SAME resampled rows.

Block length = ``max(horizon, ceil(n ** (1/3)))`` rows. At least the label horizon, because
neighbouring labels overlap by ``horizon - 1`` bars and their errors are correlated that far;
and growing like ``n^(1/3)``, the rate that balances the bias and the variance of a block
bootstrap of a mean (Hall, Horowitz and Jing 1995), so a long out-of-sample series gets longer
blocks even when the horizon is short.

Trading metrics come from one per-bar net-return series (``evaluation.backtest`` with the
signal policy's fee and slippage, fills at the next open): ``total_return`` compounds it,
``sharpe`` is its annualised mean / std, ``max_drawdown`` is that of its equity curve. With one
series (and no gap) these equal ``evaluation.backtest``'s numbers; with several they are those
of the series laid end to end (one slice of capital trading them in turn), not backtest's
equal-weight mean of per-series numbers. ``n_trades`` is backtest's count.

Two intervals need care. ``max_drawdown`` depends on the order of the whole path: a resample lays
blocks end to end in random order, which breaks losing streaks longer than a block, so its
interval is biased low and may not contain the point value (read it as the spread of drawdowns of
paths with the same short-range dependence). ``ece`` is biased upwards on small samples (sampling
noise adds to every bin's gap), so its interval may lie above the point value.

Paired tests (``paired_block_test``): each family against each baseline on the same rows, on
ACCURACY (the primary metric) and on the mean net return per bar. Accuracy, not macro F1,
because a constant prediction (the majority baseline) has a low macro F1 by construction: any
model that spreads its predictions over the classes "beats" it on macro F1 even on a random walk,
while on accuracy the majority class is the best constant guess and a family beats it only
by knowing something. A family *beats* a baseline when its difference is positive and the
two-sided p-value is below ``alpha`` (``significant`` in the results).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import bootstrap as bs

__all__ = [
    "METRICS",
    "ModelScores",
    "block_length",
    "brier_rows",
    "ece_binned",
    "interval_metrics",
    "log_loss_rows",
    "max_drawdown",
    "net_returns",
    "paired_tests",
    "total_return",
]

#: Probabilities are clipped to [LOG_LOSS_EPS, 1] in the log loss (a one-hot baseline's wrong
#: row costs -log(1e-15) = 34.5).
LOG_LOSS_EPS = 1e-15
#: Equal-width confidence bins of the ECE (as ``calibration.expected_calibration_error``).
ECE_BINS = 15


@dataclass(frozen=True)
class MetricSpec:
    key: str
    label: str
    higher_is_better: bool
    kind: str
    """'class' (classification, calibration) or 'trade' (after fees)."""


#: Every bootstrapped metric, in the order of the tables.
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("accuracy", "accuracy", True, "class"),
    MetricSpec("f1_macro", "macro F1", True, "class"),
    MetricSpec("log_loss", "log loss", False, "class"),
    MetricSpec("brier", "Brier", False, "class"),
    MetricSpec("ece", "ECE", False, "class"),
    MetricSpec("sharpe", "Sharpe", True, "trade"),
    MetricSpec("total_return", "total return", True, "trade"),
    MetricSpec("max_drawdown", "max drawdown", False, "trade"),
    MetricSpec("mean_net_return", "net return / bar", True, "trade"),
)


def block_length(n: int, horizon: int) -> int:
    """``max(horizon, ceil(n ** (1/3)))`` rows, at most ``n`` (module docstring)."""
    return int(max(1, min(int(n), max(int(horizon), math.ceil(int(n) ** (1.0 / 3.0) - 1e-9)))))


# --------------------------------------------------------------------------------------------
# per-row scores and batched metrics ((N,) -> float, (B, N) -> (B,))
# --------------------------------------------------------------------------------------------


def log_loss_rows(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """-log p(true class) per row, probabilities clipped to [LOG_LOSS_EPS, 1]."""
    p = np.asarray(proba, dtype=np.float64)
    picked = p[np.arange(p.shape[0]), np.asarray(y, dtype=np.int64)]
    out: np.ndarray = -np.log(np.clip(picked, LOG_LOSS_EPS, 1.0))
    return out


def brier_rows(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Multi-class Brier score per row: sum over classes of (p_c - [y == c])^2 (0 best, 2 worst)."""
    p = np.asarray(proba, dtype=np.float64)
    onehot = np.eye(p.shape[1])[np.asarray(y, dtype=np.int64)]
    out: np.ndarray = ((p - onehot) ** 2).sum(axis=1)
    return out


def ece_binned(confidence: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS) -> Any:
    """Top-label ECE of rows with these confidences and correctness (equal-width bins, as
    ``calibration.expected_calibration_error``): ``sum_i |sum correct_i - sum confidence_i| / N``."""
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=np.float64)
    flat = conf.ndim == 1
    if flat:
        conf, ok = conf[None, :], ok[None, :]
    b, n = conf.shape
    bins = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    codes = (np.arange(b, dtype=np.int64)[:, None] * n_bins + bins).ravel()
    sum_conf = np.bincount(codes, weights=conf.ravel(), minlength=b * n_bins).reshape(b, n_bins)
    sum_ok = np.bincount(codes, weights=ok.ravel(), minlength=b * n_bins).reshape(b, n_bins)
    out = np.abs(sum_ok - sum_conf).sum(axis=1) / n
    return float(out[0]) if flat else out


def total_return(net: np.ndarray) -> Any:
    """Compounded return of per-bar net returns (last axis)."""
    r = np.asarray(net, dtype=np.float64)
    out = np.expm1(np.log1p(r).sum(axis=-1))
    return float(out) if np.ndim(out) == 0 else out


def max_drawdown(net: np.ndarray) -> Any:
    """Largest fall from a peak of the equity ``cumprod(1 + net)`` started at 1 (a positive fraction)."""
    r = np.asarray(net, dtype=np.float64)
    flat = r.ndim == 1
    if flat:
        r = r[None, :]
    equity = np.concatenate([np.ones((r.shape[0], 1)), np.cumprod(1.0 + r, axis=1)], axis=1)
    peak = np.maximum.accumulate(equity, axis=1)
    out = np.max(1.0 - equity / peak, axis=1)
    return float(out[0]) if flat else out


def net_returns(
    positions: np.ndarray,
    close: np.ndarray,
    open_: np.ndarray,
    run_ids: np.ndarray,
    *,
    fee: float,
    slippage: float,
    timeframe: str,
) -> tuple[np.ndarray, dict[str, Any]]:
    """(per-row net return, ``evaluation.backtest`` result) of ``positions`` filled at the next open."""
    from ..evaluation import backtest

    bt = backtest(
        None, close, run_ids, fee=fee, timeframe=timeframe, open_=open_, positions=positions, slippage=slippage
    )
    net = np.zeros(len(positions), dtype=np.float64)
    for key, curves in bt["equity"].items():
        rows = np.flatnonzero(run_ids == key)
        eq = np.asarray(curves["strategy"], dtype=np.float64)
        prev = np.concatenate([[1.0], eq[:-1]])
        net[rows] = np.divide(eq, prev, out=np.full(eq.shape, np.nan), where=prev > 0) - 1.0
    return net, bt


# --------------------------------------------------------------------------------------------
# one model's scores, intervals and tests
# --------------------------------------------------------------------------------------------


@dataclass
class ModelScores:
    """What a model predicted on the out-of-sample rows (all folds, leaderboard order)."""

    name: str
    kind: str
    """'family' or 'baseline'."""
    proba: np.ndarray
    """(N, 3) probabilities (one-hot for a baseline)."""
    pred: np.ndarray
    net: np.ndarray
    """(N,) net return per bar after fees of the policy's positions."""
    n_trades: int


def interval_metrics(
    scores: ModelScores,
    y: np.ndarray,
    *,
    block: int,
    n_boot: int,
    alpha: float,
    seed: int,
    periods_per_year: float,
) -> dict[str, dict[str, float]]:
    """``{metric: {"value", "low", "high"}}`` of :data:`METRICS` (the same resamples for all)."""
    proba = scores.proba
    conf = proba.max(axis=1)
    correct = (scores.pred == y).astype(np.float64)
    calls: dict[str, tuple[Callable[..., Any], tuple[np.ndarray, ...], dict[str, Any]]] = {
        "accuracy": (bs.accuracy, (y, scores.pred), {}),
        "f1_macro": (bs.macro_f1, (y, scores.pred), {}),
        "log_loss": (bs.mean, (log_loss_rows(proba, y),), {}),
        "brier": (bs.mean, (brier_rows(proba, y),), {}),
        "ece": (ece_binned, (conf, correct), {}),
        "sharpe": (bs.sharpe_ratio, (scores.net,), {"periods_per_year": periods_per_year}),
        "total_return": (total_return, (scores.net,), {}),
        "max_drawdown": (max_drawdown, (scores.net,), {}),
        "mean_net_return": (bs.mean, (scores.net,), {}),
    }
    out: dict[str, dict[str, float]] = {}
    for spec in METRICS:
        fn, arrays, kwargs = calls[spec.key]
        iv = bs.bootstrap_metric(
            fn, *arrays, block=block, n_boot=n_boot, alpha=alpha, seed=seed, batched=True, metric_kwargs=kwargs
        )
        out[spec.key] = {"value": iv.point, "low": iv.low, "high": iv.high}
    return out


def _test_dict(metric: str, t: bs.PairedTest, alpha: float) -> dict[str, Any]:
    significant = bool(math.isfinite(t.p_value) and t.p_value < alpha and t.diff > 0)
    return {
        "metric": metric,
        "diff": t.diff,
        "low": t.low,
        "high": t.high,
        "p_value": t.p_value,
        "significant": significant,
    }


def paired_tests(
    family: ModelScores,
    baselines: list[ModelScores],
    y: np.ndarray,
    *,
    block: int,
    n_boot: int,
    alpha: float,
    seed: int,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(accuracy tests, mean-net-return tests) of ``family`` against each baseline, by baseline name."""
    acc: dict[str, dict[str, Any]] = {}
    ret: dict[str, dict[str, Any]] = {}
    for base in baselines:
        t = bs.paired_block_test(
            bs.accuracy, y, family.pred, base.pred, block=block, n_boot=n_boot, alpha=alpha, seed=seed
        )
        acc[base.name] = _test_dict("accuracy", t, alpha)
        r = bs.paired_block_test(
            bs.mean, None, family.net, base.net, block=block, n_boot=n_boot, alpha=alpha, seed=seed
        )
        ret[base.name] = _test_dict("mean_net_return", r, alpha)
    return acc, ret
