"""Labels: hand-computed examples, volatility threshold, segment ends, causality of the threshold."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.ml_engine.labels import DOWN, FLAT, UNDEFINED, UP, LabelConfig, label_threshold, make_labels

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "backend" / "ml_engine" / "sample_data"


def test_fixed_threshold_hand_computed_horizon_1():
    close = np.array([1.0, 1.01, 1.0, 0.98, 0.98, 0.99])
    labels, fut = make_labels(close, LabelConfig(horizon=1, threshold_mode="fixed", threshold=0.005))
    assert labels.dtype == np.int64 and fut.dtype == np.float64
    # returns: +0.00995, -0.00995, -0.0202, 0, +0.0101, undefined
    np.testing.assert_array_equal(labels, [UP, DOWN, DOWN, FLAT, UP, UNDEFINED])
    np.testing.assert_allclose(
        fut[:5], [math.log(1.01), math.log(1 / 1.01), math.log(0.98), 0.0, math.log(0.99 / 0.98)]
    )
    assert np.isnan(fut[5])


def test_fixed_threshold_hand_computed_horizon_2():
    close = pd.Series([1.0, 1.01, 1.0, 0.98, 0.98, 0.99])
    labels, fut = make_labels(close, LabelConfig(horizon=2, threshold_mode="fixed", threshold=0.005))
    # t=0: 1.0 -> 1.0 flat; t=1: 1.01 -> 0.98 down; t=2: 1.0 -> 0.98 down; t=3: 0.98 -> 0.99 up
    np.testing.assert_array_equal(labels, [FLAT, DOWN, DOWN, UP, UNDEFINED, UNDEFINED])
    np.testing.assert_allclose(fut[:4], np.log([1.0, 0.98 / 1.01, 0.98, 0.99 / 0.98]))


def test_threshold_boundary_is_flat():
    labels, _ = make_labels(
        np.array([1.0, 1.0, 2.0, 1.0]), LabelConfig(horizon=1, threshold_mode="fixed", threshold=0.0)
    )
    np.testing.assert_array_equal(labels, [FLAT, UP, DOWN, UNDEFINED])


def test_volatility_threshold_hand_computed():
    close = np.array([1.0, 1.01, 0.99, 1.0, 1.03, 1.0, 1.0, 1.002])
    cfg = LabelConfig(horizon=1, threshold_mode="volatility", vol_window=3, vol_multiplier=1.0)
    labels, _fut = make_labels(close, cfg)
    r = np.diff(np.log(close))  # r[i]: return into row i + 1
    expected = []
    for t in range(len(close)):
        if t < 3 or t + 1 >= len(close):
            expected.append(UNDEFINED)
            continue
        sigma = np.std(r[t - 3 : t], ddof=1)  # returns into rows t-2, t-1, t
        ret = math.log(close[t + 1] / close[t])
        expected.append(UP if ret > sigma else DOWN if ret < -sigma else FLAT)
    np.testing.assert_array_equal(labels, expected)
    # t=3: sigma of (-0.0200, +0.0100, +0.0296) ~ 0.025; next return log(1.03) = 0.0296 > sigma -> up
    assert labels[3] == UP
    # t=6: flat close, next return +0.002 is inside the band
    assert labels[6] == FLAT


def test_volatility_threshold_scales_with_sqrt_horizon():
    rng = np.random.default_rng(0)
    close = np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    t1 = label_threshold(close, LabelConfig(horizon=1, vol_window=20, vol_multiplier=0.5))
    t4 = label_threshold(close, LabelConfig(horizon=4, vol_window=20, vol_multiplier=0.5))
    assert np.isnan(t1[:20]).all() and np.isfinite(t1[20:]).all()
    np.testing.assert_allclose(t4[20:], 2.0 * t1[20:])
    sigma = pd.Series(np.log(close)).diff().rolling(20).std().to_numpy()
    np.testing.assert_allclose(t1[20:], 0.5 * sigma[20:])


@pytest.mark.parametrize("mode", ["fixed", "volatility"])
def test_labels_never_use_data_past_segment_end(mode: str):
    rng = np.random.default_rng(1)
    close = np.exp(np.cumsum(rng.normal(0, 0.01, 60)))
    segment = np.repeat([0, 1, 2], 20)
    cfg = LabelConfig(horizon=3, threshold_mode=mode, threshold=0.005, vol_window=5)
    labels, fut = make_labels(close, cfg, segment=segment)
    for start in (0, 20, 40):
        assert (labels[start + 17 : start + 20] == UNDEFINED).all()
        assert np.isnan(fut[start + 17 : start + 20]).all()
        np.testing.assert_allclose(
            fut[start : start + 17], np.log(close[start + 3 : start + 20] / close[start : start + 17])
        )
        if mode == "volatility":
            assert (labels[start : start + 5] == UNDEFINED).all()
            assert (labels[start + 5 : start + 17] != UNDEFINED).all()
    # change everything after the end of segment 0: its labels must not move
    changed = close.copy()
    changed[20:] = rng.uniform(0.1, 10.0, 40)
    labels2, fut2 = make_labels(changed, cfg, segment=segment)
    np.testing.assert_array_equal(labels2[:20], labels[:20])
    np.testing.assert_array_equal(fut2[:20], fut[:20])


def test_volatility_threshold_is_causal_on_real_data():
    close = pd.read_feather(SAMPLE_DATA / "ETH_BTC-5m.feather")["close"].to_numpy()
    cfg = LabelConfig(horizon=6, vol_window=60)
    base = label_threshold(close, cfg)
    rng = np.random.default_rng(3)
    for t in (100, 2000, 5000):
        changed = close.copy()
        changed[t + 1 :] = rng.uniform(0.01, 1.0, len(close) - t - 1)
        np.testing.assert_array_equal(label_threshold(changed, cfg)[: t + 1], base[: t + 1])


def test_real_data_classes_roughly_balanced_with_defaults():
    close = pd.read_feather(SAMPLE_DATA / "ETH_BTC-5m.feather")["close"]
    labels, _ = make_labels(close)
    share = np.bincount(labels[labels >= 0], minlength=3) / (labels >= 0).sum()
    assert (share > 0.2).all(), share
    assert (labels == UNDEFINED).sum() == 60 + 6  # vol warm-up + horizon


def test_config_validation():
    with pytest.raises(ValueError, match="horizon"):
        LabelConfig(horizon=0)
    with pytest.raises(ValueError, match="threshold_mode"):
        LabelConfig(threshold_mode="quantile")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threshold"):
        LabelConfig(threshold=-0.1)
    with pytest.raises(ValueError, match="vol_window"):
        LabelConfig(vol_window=1)
    cfg = LabelConfig(horizon=3, threshold_mode="fixed", threshold=0.01)
    assert LabelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="positive"):
        make_labels(np.array([1.0, 0.0, 1.0]))
