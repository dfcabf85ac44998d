"""Overfitting control for a search over many trials: Deflated Sharpe Ratio and PBO (numpy/scipy, no I/O).

Why
---
A hyperparameter search runs many backtests and keeps the best. The best of many is optimistic by
construction: among 100 strategies that have NO edge at all, one will still show a fine Sharpe ratio
by luck. The two statistics here say how much of the winner's edge survives that selection.

Deflated Sharpe Ratio (DSR)
---------------------------
Bailey, D. H. and López de Prado, M. (2014), "The Deflated Sharpe Ratio: Correcting for Selection
Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management 40(5), 94-107.

In plain words: the probability that the winner's true Sharpe ratio beats the Sharpe ratio that the
best of ``N`` skill-less trials would show by luck alone. First the luck benchmark: if the trials'
Sharpe ratios scatter with variance ``V`` around zero, the expected best of ``N`` of them is

    SR0 = E[max SR] = sqrt(V) * ((1 - g) * Z^-1[1 - 1/N] + g * Z^-1[1 - 1/(N e)])

(``g`` the Euler-Mascheroni constant, ``Z`` the standard normal CDF). Then the Probabilistic Sharpe
Ratio against that benchmark, which widens the Sharpe ratio's error for short records, negative
skew (rare large losses) and fat tails:

    PSR(SR0) = Z[(SR - SR0) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2)]

DSR = PSR(SR0). A DSR of 0.95 reads "95% confident the edge is more than search luck"; a DSR near
0.5 or below means the winner is about what the search would have found in pure noise.

All Sharpe ratios here are PER OBSERVATION (per candle, per day: mean / standard deviation of the
per-period returns), NOT annualised, and ``T`` counts those observations. Convert annualised ones
with :func:`per_period_sharpe` and :func:`per_period_sharpe_variance` first; passing annualised
Sharpe ratios with a per-period ``T`` makes the DSR meaninglessly close to 1. ``kurtosis`` is the
ordinary (non-excess) kurtosis: 3 for normal returns.

Probability of Backtest Overfitting (PBO)
-----------------------------------------
Bailey, D. H., Borwein, J., López de Prado, M. and Zhu, Q. J. (2015/2017), "The Probability of
Backtest Overfitting", Journal of Computational Finance 20(4), 39-69.

In plain words: how often the configuration that looks best on one half of the history is below
the median of all configurations on the other half. Combinatorially symmetric cross-validation
(CSCV): the ``T`` rows of the trials' out-of-sample returns are cut into ``S`` contiguous blocks;
every way of choosing ``S/2`` blocks as "in-sample" (the rest is "out-of-sample") is one experiment.
In each, the in-sample best trial is picked and its out-of-sample relative rank
``omega = rank / (N + 1)`` taken (rank 1 = worst of ``N``); its logit ``ln(omega / (1 - omega))``
is positive when the pick lands in the better half. PBO = the share of experiments with a logit
``<= 0``. PBO near 0.5: choosing by backtest is no better than choosing at random (the search
found noise); near 0: the backtest winner keeps winning on unseen data. The probability of loss
(the pick's out-of-sample metric below 0) and the in-sample/out-of-sample pairs of the pick
(performance degradation) come with it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import comb
from scipy.stats import norm

__all__ = [
    "DSRResult",
    "PBOResult",
    "deflated_sharpe_ratio",
    "dsr_of_trials",
    "expected_max_sharpe",
    "per_period_sharpe",
    "per_period_sharpe_variance",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "sample_stats",
]

PBOMetric = Literal["sharpe", "mean"]


# --------------------------------------------------------------------------- Deflated Sharpe Ratio


@dataclass(frozen=True)
class DSRResult:
    """The DSR of one selected trial with everything it was computed from (per-period units).

    ``dsr``: PSR against ``sr0``, the expected maximum Sharpe of ``n_trials`` skill-less trials.
    ``psr``: PSR against 0, the probability the true Sharpe is positive, ignoring the search.
    """

    dsr: float
    psr: float
    sr0: float
    sharpe: float
    n_trials: int
    sharpe_variance: float
    n_obs: int
    skewness: float
    kurtosis: float


def per_period_sharpe(annual_sharpe: float, periods_per_year: float) -> float:
    """An annualised Sharpe ratio as a per-period one: ``annual / sqrt(periods_per_year)``."""
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year}")
    return float(annual_sharpe) / math.sqrt(periods_per_year)


def per_period_sharpe_variance(annual_variance: float, periods_per_year: float) -> float:
    """A variance of annualised Sharpe ratios in per-period units: ``annual / periods_per_year``."""
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year}")
    return float(annual_variance) / periods_per_year


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum Sharpe of ``n_trials`` skill-less trials whose Sharpe ratios have this variance.

    The Bailey-López de Prado approximation (mean of the trials' Sharpe ratios taken as 0, the null).
    One trial has no selection, so its benchmark is 0.
    """
    if isinstance(n_trials, bool) or int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials}")
    variance = _finite("sharpe_variance", sharpe_variance)
    if variance < 0:
        raise ValueError(f"sharpe_variance must be >= 0, got {variance}")
    n = int(n_trials)
    if n == 1:
        return 0.0
    gamma = float(np.euler_gamma)
    z = (1.0 - gamma) * norm.ppf(1.0 - 1.0 / n) + gamma * norm.ppf(1.0 - 1.0 / (n * math.e))
    return math.sqrt(variance) * float(z)


def probabilistic_sharpe_ratio(
    sharpe: float, *, benchmark: float = 0.0, n_obs: int, skewness: float = 0.0, kurtosis: float = 3.0
) -> float:
    """Probability that the true per-period Sharpe exceeds ``benchmark``, given ``n_obs`` observations.

    ``kurtosis`` is non-excess (3 for normal returns).
    """
    sr = _finite("sharpe", sharpe)
    sr0 = _finite("benchmark", benchmark)
    skew = _finite("skewness", skewness)
    kurt = _finite("kurtosis", kurtosis)
    if isinstance(n_obs, bool) or int(n_obs) != n_obs or n_obs < 2:
        raise ValueError(f"n_obs must be an integer >= 2, got {n_obs}")
    denominator = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    if not denominator > 0:
        raise ValueError(f"1 - skewness*sharpe + (kurtosis-1)/4*sharpe^2 must be positive, got {denominator:.6g}")
    z = (sr - sr0) * math.sqrt(int(n_obs) - 1) / math.sqrt(denominator)
    return float(norm.cdf(z))


def deflated_sharpe_ratio(
    sharpe: float,
    *,
    n_trials: int,
    sharpe_variance: float,
    n_obs: int,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
) -> DSRResult:
    """Deflated Sharpe Ratio of the best of ``n_trials`` trials (Bailey and López de Prado, 2014).

    ``sharpe``: the selected trial's PER-PERIOD (not annualised) Sharpe ratio over ``n_obs`` returns;
    ``sharpe_variance``: the variance of the trials' per-period Sharpe ratios; ``skewness`` and
    ``kurtosis`` (non-excess, 3 for normal) of the selected trial's returns.
    """
    sr0 = expected_max_sharpe(n_trials, sharpe_variance)
    dsr = probabilistic_sharpe_ratio(sharpe, benchmark=sr0, n_obs=n_obs, skewness=skewness, kurtosis=kurtosis)
    psr = probabilistic_sharpe_ratio(sharpe, benchmark=0.0, n_obs=n_obs, skewness=skewness, kurtosis=kurtosis)
    return DSRResult(
        dsr=dsr,
        psr=psr,
        sr0=sr0,
        sharpe=float(sharpe),
        n_trials=int(n_trials),
        sharpe_variance=float(sharpe_variance),
        n_obs=int(n_obs),
        skewness=float(skewness),
        kurtosis=float(kurtosis),
    )


def _series(name: str, values: ArrayLike) -> NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} has NaN or infinite values")
    return array


def sample_stats(returns: ArrayLike) -> tuple[float, float, float, int]:
    """``(sharpe, skewness, kurtosis, n_obs)`` of a per-period return series, as the DSR takes them.

    Sharpe: mean / sample standard deviation (``ddof=1``), per period, no risk-free rate (crypto
    returns net of fees). Skewness and kurtosis: the biased (population, moment) estimators, as in
    the paper and its reference code (``scipy.stats.skew`` / ``kurtosis(fisher=False)`` defaults);
    kurtosis is non-excess (3 for normal). With hundreds of observations the bias is negligible.
    """
    r = _series("returns", returns)
    if r.size < 2:
        raise ValueError(f"returns needs at least 2 observations, got {r.size}")
    std = float(r.std(ddof=1))
    if not std > 0:
        raise ValueError("returns are constant: the Sharpe ratio is undefined")
    centred = r - r.mean()
    m2 = float(np.mean(centred**2))
    skewness = float(np.mean(centred**3)) / m2**1.5
    kurtosis = float(np.mean(centred**4)) / m2**2
    return float(r.mean()) / std, skewness, kurtosis, int(r.size)


def dsr_of_trials(winner_returns: ArrayLike, trial_sharpes: ArrayLike) -> DSRResult:
    """DSR of a search's winner from its per-period returns and the per-period Sharpe of EVERY trial.

    ``trial_sharpes`` holds all completed trials' per-period Sharpe ratios, the winner's included:
    ``N = len(trial_sharpes)``, the variance across them is the sample variance (``ddof=1``).
    """
    sharpes = _series("trial_sharpes", trial_sharpes)
    if sharpes.size < 1:
        raise ValueError("trial_sharpes is empty")
    sharpe, skewness, kurtosis, n_obs = sample_stats(winner_returns)
    variance = float(sharpes.var(ddof=1)) if sharpes.size > 1 else 0.0
    return deflated_sharpe_ratio(
        sharpe,
        n_trials=int(sharpes.size),
        sharpe_variance=variance,
        n_obs=n_obs,
        skewness=skewness,
        kurtosis=kurtosis,
    )


# --------------------------------------------------------------------- Probability of Backtest Overfitting


@dataclass(frozen=True)
class PBOResult:
    """CSCV result: one entry per in-sample/out-of-sample combination in the arrays.

    ``pbo``: share of combinations whose logit is <= 0. ``logits``: the ``lambda`` values (for a
    histogram). ``is_metric`` / ``oos_metric``: the in-sample best trial's metric in and out of
    sample (performance degradation pairs); ``degradation_slope``: the least-squares slope of
    ``oos_metric`` on ``is_metric`` (NaN when the in-sample values do not vary).
    ``probability_of_loss``: share of combinations where the pick's out-of-sample metric is < 0.
    ``chosen``: the in-sample best trial's column in each combination.
    """

    pbo: float
    logits: NDArray[np.float64]
    is_metric: NDArray[np.float64]
    oos_metric: NDArray[np.float64]
    chosen: NDArray[np.int64]
    probability_of_loss: float
    degradation_slope: float
    n_splits: int
    n_combinations: int
    n_combinations_total: int
    metric: str


_ENUMERATE_LIMIT = 2_000_000


def _combination_masks(n_splits: int, max_combinations: int | None, seed: int) -> tuple[NDArray[np.bool_], int]:
    """(C, S) in-sample masks: all C(S, S/2) combinations, or a seeded random subset of them."""
    half = n_splits // 2
    total = int(comb(n_splits, half, exact=True))
    wanted = total if max_combinations is None else min(total, max_combinations)
    rng = np.random.default_rng(seed)
    if total <= _ENUMERATE_LIMIT:
        rows = np.fromiter(
            itertools.chain.from_iterable(itertools.combinations(range(n_splits), half)),
            dtype=np.int64,
            count=total * half,
        ).reshape(total, half)
        if wanted < total:
            rows = rows[np.sort(rng.choice(total, size=wanted, replace=False))]
        masks = np.zeros((rows.shape[0], n_splits), dtype=bool)
        np.put_along_axis(masks, rows, True, axis=1)
        return masks, total
    # Too many to list: random halves (duplicates possible but vanishingly rare at this size).
    order = np.argsort(rng.random((wanted, n_splits)), axis=1)[:, :half]
    masks = np.zeros((wanted, n_splits), dtype=bool)
    np.put_along_axis(masks, order, True, axis=1)
    return masks, total


def _metric_from_sums(
    total: NDArray[np.float64],
    squares: NDArray[np.float64],
    count: NDArray[np.float64],
    shift: NDArray[np.float64],
    metric: PBOMetric,
) -> NDArray[np.float64]:
    """Per-trial metric from sums, sums of squares about ``shift`` and row counts."""
    mean = total / count
    if metric == "mean":
        return mean
    variance = np.maximum(squares - count * (mean - shift) ** 2, 0.0) / (count - 1.0)
    std = np.sqrt(variance)
    # A constant series (a trial that never trades) has Sharpe 0 when flat, +-inf otherwise.
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(std > 0, mean / np.where(std > 0, std, 1.0), np.sign(mean) * np.inf)
    return np.where((std > 0) | (mean != 0), sharpe, 0.0)


def probability_of_backtest_overfitting(
    returns: ArrayLike,
    *,
    n_splits: int = 16,
    metric: PBOMetric = "sharpe",
    max_combinations: int | None = None,
    seed: int = 0,
) -> PBOResult:
    """PBO by combinatorially symmetric cross-validation (Bailey, Borwein, López de Prado, Zhu, 2015).

    ``returns``: a (T, N) matrix, the per-period returns of N trials over the same T periods
    (time runs down the rows). The rows are cut into ``n_splits`` contiguous blocks (sizes differ by
    at most one row); every choice of ``n_splits / 2`` blocks is one in-sample set, the rest its
    out-of-sample set: C(16, 8) = 12,870 combinations for the default. ``metric``: ``"sharpe"``
    (per-period mean / std, ``ddof=1``) or ``"mean"`` (mean return), computed from per-block sums,
    so all combinations cost one matrix product. ``max_combinations``: evaluate only a random
    subset of that many combinations, drawn without replacement with ``seed`` (faster for large S,
    an estimate of the full PBO); None evaluates all. Ties in the in-sample best go to the first
    column; out-of-sample ties share an average rank.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"returns must be a (T, N) matrix, got shape {r.shape}")
    n_obs, n_trials = r.shape
    if isinstance(n_splits, bool) or int(n_splits) != n_splits or n_splits < 2 or n_splits % 2:
        raise ValueError(f"n_splits must be an even integer >= 2, got {n_splits}")
    n_splits = int(n_splits)
    if n_trials < 2:
        raise ValueError(f"returns needs at least 2 trials (columns), got {n_trials}")
    if n_obs < n_splits or (metric == "sharpe" and n_obs < 4):
        raise ValueError(f"returns needs at least n_splits={n_splits} rows (and 4 for the Sharpe), got {n_obs}")
    if metric not in ("sharpe", "mean"):
        raise ValueError(f"metric must be 'sharpe' or 'mean', got {metric!r}")
    if max_combinations is not None and (int(max_combinations) != max_combinations or max_combinations < 1):
        raise ValueError(f"max_combinations must be a positive integer or None, got {max_combinations}")
    if not np.isfinite(r).all():
        raise ValueError("returns has NaN or infinite values")

    # Per-block sufficient statistics: (S, N) sums and sums of squares (about each column's mean, to
    # keep the variance free of cancellation), (S,) row counts. Blocks are contiguous and non-empty.
    bounds = np.linspace(0, n_obs, n_splits + 1).round().astype(np.int64)
    shift = r.mean(axis=0)
    sums = np.add.reduceat(r, bounds[:-1], axis=0)
    squares = np.add.reduceat((r - shift) ** 2, bounds[:-1], axis=0)
    counts = np.diff(bounds).astype(np.float64)

    masks, total = _combination_masks(n_splits, max_combinations, seed)
    inside = masks.astype(np.float64)
    outside = 1.0 - inside
    is_values = _metric_from_sums(inside @ sums, inside @ squares, (inside @ counts)[:, None], shift, metric)
    oos_values = _metric_from_sums(outside @ sums, outside @ squares, (outside @ counts)[:, None], shift, metric)

    rows = np.arange(masks.shape[0])
    chosen = np.argmax(is_values, axis=1)
    picked_is = is_values[rows, chosen]
    picked_oos = oos_values[rows, chosen]
    below = (oos_values < picked_oos[:, None]).sum(axis=1)
    ties = (oos_values == picked_oos[:, None]).sum(axis=1) - 1
    rank = 1.0 + below + 0.5 * ties
    omega = rank / (n_trials + 1.0)
    logits = np.log(omega / (1.0 - omega))

    finite = np.isfinite(picked_is) & np.isfinite(picked_oos)
    slope = float("nan")
    if finite.sum() >= 2 and np.ptp(picked_is[finite]) > 0:
        slope = float(np.polyfit(picked_is[finite], picked_oos[finite], 1)[0])
    return PBOResult(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        is_metric=picked_is,
        oos_metric=picked_oos,
        chosen=chosen.astype(np.int64),
        probability_of_loss=float(np.mean(picked_oos < 0)),
        degradation_slope=slope,
        n_splits=n_splits,
        n_combinations=int(masks.shape[0]),
        n_combinations_total=total,
        metric=metric,
    )
