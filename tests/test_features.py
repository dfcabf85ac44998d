"""Features: causality (bit-identical past under a changed future), segments, warm-up, scale."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.ml_engine.features import (
    FeatureConfig,
    build_feature_matrix,
    build_features,
    feature_names,
    lookback_rows,
    run_ids,
    segment_features,
    segment_runs,
)

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "backend" / "ml_engine" / "sample_data"


def load_frame(name: str = "ETH_BTC-5m.feather") -> pd.DataFrame:
    frame = pd.read_feather(SAMPLE_DATA / name).rename(columns={"date": "timestamp"})
    frame["segment"] = 0
    return frame


def random_candles(rng: np.random.Generator, n: int, scale: float) -> dict[str, np.ndarray]:
    close = scale * np.exp(rng.normal(0.0, 0.3, n))
    open_ = scale * np.exp(rng.normal(0.0, 0.3, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.1, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.1, n)))
    volume = rng.exponential(1000.0, n)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def test_default_config_has_at_least_20_float32_features():
    frame = load_frame()
    cfg = FeatureConfig()
    feats = build_features(frame, cfg)
    assert list(feats.columns) == feature_names(cfg)
    assert len(feats.columns) >= 20
    assert all(dtype == np.float32 for dtype in feats.dtypes)
    assert feats.index.equals(frame.index)
    expected = {
        "log_ret_1",
        "volatility_10",
        "rsi_14",
        "macd_line",
        "macd_signal",
        "macd_hist",
        "bb_pctb",
        "bb_width",
        "atr_14",
        "volume_z_20",
        "hl_range",
        "close_ma_ratio_10",
    }
    assert expected <= set(feats.columns)
    # after the warm-up everything is finite
    assert np.isfinite(feats.iloc[lookback_rows(cfg) - 1 :].to_numpy()).all()


def test_build_feature_matrix_matches_dataframe():
    frame = load_frame()
    feats = build_features(frame)
    np.testing.assert_array_equal(build_feature_matrix(frame), feats.to_numpy())


@pytest.mark.parametrize("name", ["ETH_BTC-5m.feather", "ADA_BTC-5m.feather"])
def test_causal_past_rows_bit_identical_when_future_changes(name: str):
    frame = load_frame(name)
    n = len(frame)
    base = build_features(frame).to_numpy()
    rng = np.random.default_rng(7)
    for t in (0, 5, 79, 80, 500, 2345, n // 2, n - 2):
        changed = frame.copy()
        for col, values in random_candles(rng, n - t - 1, float(frame["close"].iloc[t])).items():
            changed.loc[t + 1 :, col] = values
        assert not np.allclose(changed["close"].to_numpy()[t + 1 :], frame["close"].to_numpy()[t + 1 :])
        new = build_features(changed).to_numpy()
        np.testing.assert_array_equal(new[: t + 1], base[: t + 1], err_msg=f"row <= {t} changed")
        assert not np.array_equal(new[t + 1 :], base[t + 1 :], equal_nan=True)


def test_no_value_crosses_segment_boundary():
    frame = load_frame()
    frame["segment"] = np.where(frame.index < 2000, 0, np.where(frame.index < 3000, 1, 2))
    feats = build_features(frame).to_numpy()
    for seg in range(3):
        part = frame[frame["segment"] == seg]
        alone = build_features(part.drop(columns="segment")).to_numpy()
        np.testing.assert_array_equal(feats[part.index.to_numpy()], alone)


def test_warmup_rows_are_nan_per_segment():
    frame = load_frame()
    frame["segment"] = (frame.index >= 3000).astype(np.int64)
    cfg = FeatureConfig()
    lb = lookback_rows(cfg)
    feats = build_features(frame, cfg).to_numpy()
    has_nan = np.isnan(feats).any(axis=1)
    for start in (0, 3000):
        assert has_nan[start : start + lb - 1].all()
        assert not has_nan[start + lb - 1 : start + lb + 200].any()
    # each feature: NaN exactly on its own warm-up
    assert np.isnan(feats[0, feature_names(cfg).index("log_ret_5")])
    assert np.isnan(feats[4, feature_names(cfg).index("log_ret_5")])
    assert np.isfinite(feats[5, feature_names(cfg).index("log_ret_5")])
    assert np.isfinite(feats[0, feature_names(cfg).index("hl_range")])


def test_short_segment_is_all_nan_for_slow_features():
    frame = load_frame().iloc[:30].copy()
    feats = build_features(frame)
    assert feats["macd_signal"].isna().all()
    assert feats["log_ret_1"].notna().sum() == 29


def test_finite_lookback_truncated_history_gives_same_features():
    # every value comes from its own lookback window only: any history of at least L rows gives
    # the training features bit for bit (what lets the predictor compute on a short tail)
    frame = load_frame()
    cfg = FeatureConfig()
    lb = lookback_rows(cfg)
    full = build_features(frame, cfg).to_numpy()
    for start in (1, 79, 1234, len(frame) - lb - 60):
        tail = build_features(frame.iloc[start:].reset_index(drop=True), cfg).to_numpy()
        np.testing.assert_array_equal(tail[lb - 1 :], full[start + lb - 1 :], err_msg=f"start {start}")
        assert np.isnan(tail[: lb - 1]).any(axis=1).all()


def test_segment_features_first_row_computes_the_same_bits_from_there():
    frame = load_frame()
    cfg = FeatureConfig()
    cols = [frame[c].to_numpy(dtype=np.float64)[-139:] for c in ("open", "high", "low", "close", "volume")]
    whole = segment_features(*cols, cfg=cfg)
    assert whole.dtype == np.float32 and whole.shape == (len(feature_names(cfg)), 139)
    for first in (0, 79, 138):
        part = segment_features(*cols, cfg=cfg, first_row=first)
        np.testing.assert_array_equal(part[:, first:], whole[:, first:])
        assert np.isnan(part[:, :first]).all()


def test_constant_windows_give_exact_neutral_values():
    # 0.1 * 20 / 20 != 0.1 in floating point: a flat window must still give std 0 exactly, so the
    # volume z-score is 0 (not +-1 from rounding), %B is 0.5 and close / SMA is exactly 1
    rng = np.random.default_rng(3)
    close = np.concatenate([0.1 * np.exp(np.cumsum(rng.normal(0, 0.01, 150))), np.full(150, 0.1)])
    volume = np.concatenate([rng.lognormal(0, 1, 150), np.full(150, 0.1)])
    frame = pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": volume})
    f = build_features(frame).iloc[-100:]
    assert (f["volume_z_20"] == 0.0).all()
    assert (f["bb_pctb"] == 0.5).all() and (f["bb_width"] == 0.0).all()
    assert (f["close_ma_ratio_10"] == 0.0).all() and (f["close_ma_ratio_30"] == 0.0).all()
    assert (f["volatility_10"] == 0.0).all() and (f["rsi_14"].iloc[-80:] == 0.0).all()  # RSI looks back 63 rows


def test_scale_free():
    frame = load_frame()
    scaled = frame.copy()
    scaled[["open", "high", "low", "close"]] *= 1e6  # BTC-quoted ~0.09 -> ~90000
    scaled["volume"] *= 1e-3
    a = build_features(frame).to_numpy()
    b = build_features(scaled).to_numpy()
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


def test_known_values():
    frame = load_frame().iloc[:400].reset_index(drop=True)
    feats = build_features(frame)
    c = frame["close"].to_numpy()
    np.testing.assert_allclose(feats["log_ret_1"].to_numpy()[1:], np.log(c[1:] / c[:-1]), rtol=1e-6)
    np.testing.assert_allclose(feats["log_ret_20"].to_numpy()[20:], np.log(c[20:] / c[:-20]), rtol=1e-6)
    vol = pd.Series(np.log(c)).diff().rolling(10).std().to_numpy()
    np.testing.assert_allclose(feats["volatility_10"].to_numpy()[11:], vol[11:], rtol=1e-5)
    np.testing.assert_allclose(feats["hl_range"], np.log(frame["high"] / frame["low"]), rtol=1e-6)
    np.testing.assert_allclose(
        feats["close_ma_ratio_10"].to_numpy()[9:],
        np.log(c / pd.Series(c).rolling(10).mean().to_numpy())[9:],
        rtol=1e-5,
        atol=1e-9,
    )
    mean = pd.Series(c).rolling(20).mean().to_numpy()
    std = pd.Series(c).rolling(20).std(ddof=0).to_numpy()
    np.testing.assert_allclose(feats["bb_pctb"].to_numpy()[19:], ((c - mean + 2 * std) / (4 * std))[19:], rtol=1e-4)
    rsi = feats["rsi_14"].to_numpy()
    assert np.nanmin(rsi) >= -1 and np.nanmax(rsi) <= 1


def test_degenerate_inputs_monotonic_and_constant():
    n = 200
    up = pd.DataFrame({"open": np.linspace(1, 2, n), "close": np.linspace(1, 2, n) * 1.0001, "volume": np.full(n, 5.0)})
    up["high"] = up[["open", "close"]].max(axis=1) * 1.001
    up["low"] = up[["open", "close"]].min(axis=1) * 0.999
    f = build_features(up)
    assert np.allclose(f["rsi_14"].dropna(), 1.0)  # only gains
    assert np.allclose(f["volume_z_20"].dropna(), 0.0)  # constant volume: std 0 -> 0, not NaN/inf
    flat = pd.DataFrame({c: np.full(n, 0.001) for c in ("open", "high", "low", "close")})
    flat["volume"] = 0.0
    g = build_features(flat)
    lb = lookback_rows(FeatureConfig())
    assert np.isfinite(g.iloc[lb - 1 :].to_numpy()).all()
    assert np.allclose(g["bb_pctb"].dropna(), 0.5)
    assert np.allclose(g["rsi_14"].dropna(), 0.0)


def test_pure_input_not_modified():
    frame = load_frame()
    before = frame.copy()
    build_features(frame)
    pd.testing.assert_frame_equal(frame, before)


def test_bad_input_raises():
    frame = load_frame().iloc[:100].copy()
    with pytest.raises(ValueError, match="lacks columns"):
        build_features(frame.drop(columns="volume"))
    frame.loc[10, "low"] = 0.0
    with pytest.raises(ValueError, match="positive"):
        build_features(frame)


def test_config_validation_and_round_trip():
    with pytest.raises(ValueError, match="macd_fast"):
        FeatureConfig(macd_fast=26, macd_slow=12)
    with pytest.raises(ValueError, match="return_lags"):
        FeatureConfig(return_lags=())
    with pytest.raises(ValueError, match="duplicates"):
        FeatureConfig(ma_windows=(10, 10))
    with pytest.raises(ValueError, match="ema_tail"):
        FeatureConfig(ema_tail=0.0)
    with pytest.raises(ValueError, match="rsi_period"):
        FeatureConfig(rsi_period=1)
    cfg = FeatureConfig(return_lags=(1, 4), ma_windows=(7,), ema_tail=0.001)
    again = FeatureConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert feature_names(again) == feature_names(cfg)
    assert lookback_rows(FeatureConfig(ema_tail=0.001)) > lookback_rows(FeatureConfig())


def test_segment_helpers():
    seg = np.array([3, 3, 5, 5, 5, 3])
    np.testing.assert_array_equal(segment_runs(seg, 6), [[0, 2], [2, 5], [5, 6]])
    np.testing.assert_array_equal(run_ids(seg, 6), [0, 0, 1, 1, 1, 2])
    np.testing.assert_array_equal(segment_runs(None, 4), [[0, 4]])
