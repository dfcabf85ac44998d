"""backend/ml_engine/overfitting.py: the Deflated Sharpe Ratio reproduces the 2014 paper's example;
PBO is about 0.5 on noise, about 0 with one skilled trial, and matches a plain loop over the halves."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from scipy.stats import kurtosis as scipy_kurtosis, skew as scipy_skew

from backend.ml_engine.overfitting import (
    deflated_sharpe_ratio,
    dsr_of_trials,
    expected_max_sharpe,
    per_period_sharpe,
    per_period_sharpe_variance,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    sample_stats,
)

DAYS = 250


def test_paper_numerical_example() -> None:
    """Bailey & López de Prado (2014): annualised SR 2.5 over 5 years of daily returns (T=1250),
    N=100 trials whose annualised Sharpe ratios have variance 0.5, skewness -3, kurtosis 10:
    E[max SR] = 0.1132 per day (1.79 annualised), DSR = 0.9004."""
    sr0 = expected_max_sharpe(100, per_period_sharpe_variance(0.5, DAYS))
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    assert sr0 * math.sqrt(DAYS) == pytest.approx(1.79, abs=5e-3)
    result = deflated_sharpe_ratio(
        per_period_sharpe(2.5, DAYS),
        n_trials=100,
        sharpe_variance=per_period_sharpe_variance(0.5, DAYS),
        n_obs=1250,
        skewness=-3.0,
        kurtosis=10.0,
    )
    assert round(result.dsr, 2) == 0.90
    assert result.dsr == pytest.approx(0.9004, abs=5e-5)
    assert result.sr0 == sr0
    assert result.psr > result.dsr
    assert result.n_trials == 100 and result.n_obs == 1250


def test_dsr_basics() -> None:
    assert expected_max_sharpe(1, 0.3) == 0.0
    assert expected_max_sharpe(10, 0.0) == 0.0
    assert expected_max_sharpe(1000, 1.0) > expected_max_sharpe(10, 1.0) > 0
    # Normal returns, no search: PSR at the benchmark is 0.5.
    assert probabilistic_sharpe_ratio(0.1, benchmark=0.1, n_obs=100) == pytest.approx(0.5)
    more = deflated_sharpe_ratio(0.1, n_trials=1000, sharpe_variance=0.001, n_obs=500)
    fewer = deflated_sharpe_ratio(0.1, n_trials=10, sharpe_variance=0.001, n_obs=500)
    assert more.dsr < fewer.dsr < fewer.psr


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_trials": 0}, "n_trials"),
        ({"n_obs": 1}, "n_obs"),
        ({"sharpe_variance": -0.1}, "sharpe_variance"),
        ({"skewness": 50.0}, "must be positive"),
        ({"kurtosis": float("nan")}, "kurtosis"),
    ],
)
def test_dsr_refuses_bad_input(kwargs: dict[str, float], message: str) -> None:
    args: dict[str, float] = {"n_trials": 10, "sharpe_variance": 0.01, "n_obs": 100, "skewness": 0.0, "kurtosis": 3.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message) as info:
        deflated_sharpe_ratio(0.1, **args)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_sample_stats_and_dsr_of_trials() -> None:
    rng = np.random.default_rng(3)
    returns = rng.standard_t(5, size=2000) * 0.01 + 0.001
    sharpe, skewness, kurt, n_obs = sample_stats(returns)
    assert sharpe == pytest.approx(returns.mean() / returns.std(ddof=1))
    assert skewness == pytest.approx(scipy_skew(returns))
    assert kurt == pytest.approx(scipy_kurtosis(returns, fisher=False))
    assert n_obs == 2000
    trials = rng.normal(0, 0.03, size=49)
    all_sharpes = np.append(trials, sharpe)
    result = dsr_of_trials(returns, all_sharpes)
    expected = deflated_sharpe_ratio(
        sharpe,
        n_trials=50,
        sharpe_variance=float(all_sharpes.var(ddof=1)),
        n_obs=2000,
        skewness=skewness,
        kurtosis=kurt,
    )
    assert result == expected
    with pytest.raises(ValueError, match="constant"):
        sample_stats(np.ones(10))
    with pytest.raises(ValueError, match="NaN"):
        sample_stats([0.1, float("nan"), 0.2])


def _pbo_loop(returns: np.ndarray, n_splits: int) -> float:
    """The textbook CSCV, one combination at a time."""
    blocks = np.array_split(np.arange(returns.shape[0]), n_splits)
    n = returns.shape[1]
    logits = []
    for chosen in itertools.combinations(range(n_splits), n_splits // 2):
        inside = np.concatenate([blocks[i] for i in chosen])
        outside = np.concatenate([blocks[i] for i in range(n_splits) if i not in chosen])
        is_sr = returns[inside].mean(0) / returns[inside].std(0, ddof=1)
        oos_sr = returns[outside].mean(0) / returns[outside].std(0, ddof=1)
        best = int(np.argmax(is_sr))
        rank = 1 + np.sum(oos_sr < oos_sr[best])
        omega = rank / (n + 1)
        logits.append(math.log(omega / (1 - omega)))
    return float(np.mean(np.array(logits) <= 0))


def test_pbo_matches_a_plain_loop() -> None:
    rng = np.random.default_rng(7)
    returns = rng.normal(0, 1, size=(120, 9))  # 120 rows: array_split and ours cut the same blocks
    result = probability_of_backtest_overfitting(returns, n_splits=8)
    assert result.n_combinations == result.n_combinations_total == 70
    assert result.pbo == pytest.approx(_pbo_loop(returns, 8))


def test_pbo_noise_is_about_a_half() -> None:
    returns = np.random.default_rng(11).normal(0, 1, size=(1000, 50))
    result = probability_of_backtest_overfitting(returns, n_splits=16)
    assert 0.35 <= result.pbo <= 0.65
    assert result.n_combinations == 12_870
    assert result.logits.shape == result.is_metric.shape == result.oos_metric.shape == (12_870,)
    # The in-sample best of noise is optimistic: out of sample it falls back.
    assert result.oos_metric.mean() < result.is_metric.mean()


def test_pbo_one_skilled_trial_is_near_zero() -> None:
    # 0.1 std units per period needs T=4000 to be told from the best of 49 noise trials on 2000-row
    # halves (at T=1000 the search picks a lucky noise trial about half the time: PBO 0.05-0.5 by seed).
    rng = np.random.default_rng(12)
    returns = rng.normal(0, 1, size=(4000, 50))
    returns[:, 17] += 0.1
    result = probability_of_backtest_overfitting(returns, n_splits=16)
    assert result.pbo < 0.1
    assert result.probability_of_loss < 0.1
    assert np.mean(result.chosen == 17) > 0.9


def test_pbo_is_deterministic_and_subsets_are_seeded() -> None:
    returns = np.random.default_rng(5).normal(0, 1, size=(400, 20))
    full = probability_of_backtest_overfitting(returns)
    again = probability_of_backtest_overfitting(returns)
    assert full.pbo == again.pbo and np.array_equal(full.logits, again.logits)
    a = probability_of_backtest_overfitting(returns, max_combinations=500, seed=1)
    b = probability_of_backtest_overfitting(returns, max_combinations=500, seed=1)
    c = probability_of_backtest_overfitting(returns, max_combinations=500, seed=2)
    assert a.n_combinations == 500 and a.n_combinations_total == 12_870
    assert np.array_equal(a.logits, b.logits) and not np.array_equal(a.logits, c.logits)
    assert abs(a.pbo - full.pbo) < 0.1
    mean = probability_of_backtest_overfitting(returns, metric="mean", n_splits=4)
    assert mean.n_combinations == 6 and mean.metric == "mean"


def test_pbo_speed() -> None:
    returns = np.random.default_rng(1).normal(0, 1, size=(2000, 100))
    start = time.perf_counter()
    result = probability_of_backtest_overfitting(returns, n_splits=16)
    print(f"PBO S=16 T=2000 N=100: {result.n_combinations} combinations in {time.perf_counter() - start:.3f}s")
    assert result.n_combinations == 12_870


@pytest.mark.parametrize(
    ("returns", "kwargs", "message"),
    [
        (np.zeros((100, 1)), {}, "at least 2 trials"),
        (np.zeros((10, 5)), {"n_splits": 16}, "rows"),
        (np.zeros((100, 5)), {"n_splits": 5}, "even"),
        (np.zeros((100, 5)), {"n_splits": 0}, "even"),
        (np.zeros(100), {}, r"\(T, N\)"),
        (np.full((100, 5), np.nan), {}, "NaN"),
        (np.zeros((100, 5)), {"metric": "sortino"}, "metric"),
        (np.zeros((100, 5)), {"max_combinations": 0}, "max_combinations"),
    ],
)
def test_pbo_refuses_bad_input(returns: np.ndarray, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        probability_of_backtest_overfitting(returns, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
