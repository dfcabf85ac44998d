"""Block bootstrap: index schemes, metrics vs evaluation, coverage on dependent data, paired test size and power."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.signal import lfilter

from backend.ml_engine.bootstrap import (
    Interval,
    accuracy,
    block_bootstrap_ci,
    block_indices,
    bootstrap_metric,
    macro_f1,
    mean,
    paired_block_test,
    sharpe_ratio,
)
from backend.ml_engine.evaluation import classification_metrics

MU = 0.3


def overlapping(rng: np.random.Generator, n: int, h: int) -> np.ndarray:
    """Values like returns over overlapping label horizons: each is the sum of h shared shocks."""
    e = rng.normal(size=n + h - 1)
    out: np.ndarray = MU + np.convolve(e, np.ones(h) / np.sqrt(h), mode="valid")
    return out


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    e = rng.normal(size=n + 300)
    out: np.ndarray = MU + lfilter([1.0], [1.0, -phi], e)[300:]
    return out


def persistent_classes(rng: np.random.Generator, n: int, h: int) -> np.ndarray:
    """Class ids constant over runs of h rows (as labels and predictions of overlapping horizons are)."""
    runs = np.repeat(rng.integers(0, 3, n // h + 2), h)
    out: np.ndarray = runs[rng.integers(0, h) :][:n]
    return out


def coverage(gen, block: int, reps: int = 200, n_boot: int = 400) -> float:
    hits = 0
    for rep in range(reps):
        values = gen(np.random.default_rng(rep))
        iv = block_bootstrap_ci(values, block=block, n_boot=n_boot, seed=rep)
        hits += iv.low <= MU <= iv.high
    return hits / reps


# --------------------------------------------------------------------------------------------
# indices and metrics
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["circular", "moving", "stationary"])
def test_block_indices_shape_range_and_blocks(method: str) -> None:
    idx = block_indices(103, block=10, n_boot=50, seed=1, method=method)
    assert idx.shape == (50, 103) and idx.min() >= 0 and idx.max() < 103
    steps = np.diff(idx, axis=1)
    contiguous = (steps == 1) | (steps == -102)  # the next row, or a wrap to row 0
    if method == "stationary":
        assert 0.85 < contiguous.mean() < 0.95  # new block with probability 1/10
    else:
        # within each block of 10 the rows are consecutive: only every 10th step may jump
        assert contiguous[:, np.arange(102) % 10 != 9].all()
    if method == "moving":
        assert not (steps == -102).any()  # moving blocks never wrap
    np.testing.assert_array_equal(idx, block_indices(103, block=10, n_boot=50, seed=1, method=method))


def test_circular_rows_equally_likely() -> None:
    counts = np.bincount(block_indices(50, block=7, n_boot=4000, seed=0).ravel(), minlength=50)
    assert counts.min() / counts.max() > 0.9


def test_batched_metrics_match_evaluation_and_loops() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, (6, 300))
    p = np.where(rng.random((6, 300)) < 0.4, y, rng.integers(0, 3, (6, 300)))
    p[2][p[2] == 1] = 0  # a class never predicted
    f1 = macro_f1(y, p)
    for b in range(6):
        ref = classification_metrics(y[b], p[b])
        assert f1[b] == pytest.approx(ref["f1_macro"])
        assert macro_f1(y[b], p[b]) == pytest.approx(ref["f1_macro"])
        assert accuracy(y, p)[b] == pytest.approx(ref["accuracy"])
    r = rng.normal(0.001, 0.01, (4, 200))
    np.testing.assert_allclose(sharpe_ratio(r, 252), r.mean(1) / r.std(1, ddof=1) * np.sqrt(252))
    assert sharpe_ratio(np.zeros(5)) == 0.0
    np.testing.assert_allclose(mean(r), r.mean(1))


def test_batched_and_looped_paths_agree_and_seed_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 700)
    p = np.where(rng.random(700) < 0.5, y, rng.integers(0, 3, 700))
    fast = bootstrap_metric(macro_f1, y, p, block=12, n_boot=300, seed=4)
    slow = bootstrap_metric(lambda t, q: classification_metrics(t, q)["f1_macro"], y, p, block=12, n_boot=300, seed=4)
    assert fast.low == pytest.approx(slow.low) and fast.high == pytest.approx(slow.high)
    assert fast == bootstrap_metric(macro_f1, y, p, block=12, n_boot=300, seed=4)
    assert fast != bootstrap_metric(macro_f1, y, p, block=12, n_boot=300, seed=5)
    assert fast.low < fast.point < fast.high and fast.block == 12 and fast.n_boot == 300
    assert fast.point == pytest.approx(classification_metrics(y, p)["f1_macro"])


def test_block_bootstrap_ci_mean_and_custom_statistic() -> None:
    v = np.random.default_rng(2).normal(1.0, 1.0, 500)
    iv = block_bootstrap_ci(v, block=5, n_boot=500, seed=0)
    assert isinstance(iv, Interval) and iv.mean == iv.point == pytest.approx(v.mean())
    assert iv.std_error == pytest.approx(1 / np.sqrt(500), rel=0.25)
    med = block_bootstrap_ci(v, block=5, n_boot=200, seed=0, statistic=np.median)
    assert med.point == pytest.approx(np.median(v)) and med.low < med.point < med.high
    assert set(iv.to_dict()) >= {"point", "low", "high", "block", "n_boot"}


def test_macro_f1_speed_2000_resamples_of_5000_rows() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 5000)
    p = np.where(rng.random(5000) < 0.5, y, rng.integers(0, 3, 5000))
    t0 = time.perf_counter()
    bootstrap_metric(macro_f1, y, p, block=20, n_boot=2000)
    assert time.perf_counter() - t0 < 2.0  # ~0.1 s on one core


def test_validation() -> None:
    v = np.arange(10.0)
    with pytest.raises(ValueError, match="block"):
        block_bootstrap_ci(v, block=0)
    with pytest.raises(ValueError, match="block"):
        block_bootstrap_ci(v, block=11)
    with pytest.raises(ValueError, match="alpha"):
        block_bootstrap_ci(v, block=2, alpha=1.5)
    with pytest.raises(ValueError, match="method"):
        block_bootstrap_ci(v, block=2, method="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rows"):
        bootstrap_metric(accuracy, v, v[:5], block=2)
    with pytest.raises(ValueError, match="rows"):
        paired_block_test(accuracy, v, v, v[:5], block=2)


# --------------------------------------------------------------------------------------------
# coverage on dependent data: the reason for blocks
# --------------------------------------------------------------------------------------------


def test_block_of_one_under_covers_overlapping_labels_and_block_of_horizon_does_not() -> None:
    h = 10

    def gen(rng: np.random.Generator) -> np.ndarray:
        return overlapping(rng, 1000, h)

    naive = coverage(gen, block=1)
    at_h = coverage(gen, block=h)
    at_2h = coverage(gen, block=2 * h)
    # A 95 % interval: rows resampled alone cover about half the time (the variance of the mean is
    # h times the iid one); blocks of the horizon come close to nominal (finite-sample block
    # bootstrap is a little narrow: about 0.89 at block = h, 0.91 at 2h here).
    assert naive < 0.65
    assert at_h >= 0.85
    assert at_2h >= 0.87


def test_block_of_one_under_covers_ar1_and_long_blocks_do_not() -> None:
    def gen(rng: np.random.Generator) -> np.ndarray:
        return ar1(rng, 1000, 0.8)  # integrated autocorrelation time (1 + phi) / (1 - phi) = 9

    assert coverage(gen, block=1, reps=150) < 0.65
    assert coverage(gen, block=30, reps=150) >= 0.87


# --------------------------------------------------------------------------------------------
# paired test
# --------------------------------------------------------------------------------------------


def test_paired_test_finds_a_planted_difference() -> None:
    rng = np.random.default_rng(3)
    y = persistent_classes(rng, 2000, 10)
    skilled = np.where(rng.random(2000) < 0.15, y, persistent_classes(rng, 2000, 10))
    random = persistent_classes(rng, 2000, 10)
    res = paired_block_test(macro_f1, y, skilled, random, block=20, n_boot=1000, seed=0)
    assert res.diff == pytest.approx(res.metric_a - res.metric_b)
    assert res.diff > 0 and res.low > 0 and res.p_value < 0.05
    swapped = paired_block_test(macro_f1, y, random, skilled, block=20, n_boot=1000, seed=0)
    assert swapped.diff == pytest.approx(-res.diff) and swapped.high < 0 and swapped.p_value < 0.05
    same = paired_block_test(macro_f1, y, skilled, skilled, block=20, n_boot=200, seed=0)
    assert same.diff == 0.0 and same.p_value == 1.0


def test_paired_test_false_positive_rate_near_nominal_under_the_null() -> None:
    p_values = []
    for s in range(60):
        rng = np.random.default_rng(100 + s)
        y, a, b = (rng.integers(0, 3, 600) for _ in range(3))
        p_values.append(paired_block_test(macro_f1, y, a, b, block=5, n_boot=400, seed=s).p_value)
    ps = np.array(p_values)
    assert (ps < 0.05).mean() <= 0.10
    assert np.median(ps) > 0.3


def test_paired_test_needs_blocks_on_overlapping_labels() -> None:
    """No-skill models on persistent labels: single-row resampling rejects far too often."""

    def rejections(block: int) -> float:
        hits = 0
        for s in range(40):
            rng = np.random.default_rng(700 + s)
            y, a, b = (persistent_classes(rng, 800, 10) for _ in range(3))
            hits += paired_block_test(accuracy, y, a, b, block=block, n_boot=300, seed=s).p_value < 0.05
        return hits / 40

    assert rejections(1) > 0.2
    assert rejections(20) <= 0.10


def test_paired_sharpe_of_two_return_series() -> None:
    rng = np.random.default_rng(9)
    market = rng.normal(0, 0.01, 3000)
    good = market * np.sign(market + rng.normal(0, 0.02, 3000))  # some foresight
    bad = market * np.sign(rng.normal(size=3000))
    res = paired_block_test(sharpe_ratio, None, good, bad, block=10, n_boot=500, seed=0)
    assert res.metric_a == pytest.approx(sharpe_ratio(good)) and res.p_value < 0.05
