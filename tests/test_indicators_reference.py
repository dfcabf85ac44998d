"""Every indicator of `features.py` against an independent reference (issue 14, point 6).

References: the `ta` package (0.11, pure pandas) where it has the indicator (RSI, MACD, ATR,
Bollinger bands, SMA, daily log return), pandas and numpy formulas otherwise (log returns,
rolling volatility, volume z-score, candle shape), and a few rows computed by hand.

Conventions of the project, which the comparisons apply to the reference:

* scale-free: MACD and ATR divided by the close, Bollinger width = (upper - lower) / mean
  (ta's ``wband`` / 100), RSI as ``2 * RSI / 100 - 1`` in [-1, 1];
* the MACD signal is the EMA of the *normalised* line (line / close), not EMA(MACD) / close;
* flat windows: RSI 0 (RSI 50; ta says 100), %B 1/2 (ta: NaN), volume z 0;
* recursive EMAs (RSI and ATR: Wilder, alpha = 1/period; MACD: alpha = 2/(span + 1)) are
  truncated, renormalised filters: the kernel ``alpha * (1 - alpha)^k``, k < L, with L the first
  length where ``q = (1 - alpha)^L <= ema_tail``, divided by ``1 - q``. Exactly,
  ``truncated_t = (E_t - q * E_{t-L}) / (1 - q)`` where E is the infinite-history EMA.

Tolerances. The kernel computes in float64 and stores float32; the comparisons use the same
compiled kernel writing float64 (`kernel64`, checked to round to the public float32 output bit
for bit) and hold to 1e-9 relative (1e-12 absolute for values near zero; 1e-10 for Bollinger %B,
see its test). Recursive indicators are compared from row `START` = 1500: ta's recursive EMAs
start from a seed (the first value, or the mean of the first n true ranges for ATR) whose effect
decays as ``(1 - alpha)^t``, below 1e-12 after 373 rows for alpha = 1/14, so by row 1500 ta's
values are the infinite-history ones to double precision. Non-recursive ones from their warm-up.
Against ta's textbook values the project is run with ``ema_tail=1e-12`` (its truncation is then
below the tolerance); with the default ``ema_tail=0.01`` it is compared, just as tightly, with
the truncation identity above applied to ta's (pandas') EMAs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import ta

from backend.ml_engine import features
from backend.ml_engine.features import FeatureConfig, build_features, feature_names, lookback_rows

START = 1500
RTOL, ATOL = 1e-9, 1e-12
OHLCV = ("open", "high", "low", "close", "volume")


def random_walk(n: int = 4000, seed: int = 7) -> pd.DataFrame:
    """A 1%-per-bar geometric random walk with wicks and lognormal volume (no flat stretch)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0, 0.001, n))  # small gaps at the open
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    volume = rng.lognormal(8, 0.5, n)
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume})


def kernel64(frame: pd.DataFrame, cfg: FeatureConfig) -> pd.DataFrame:
    """The features as the compiled kernel computes them, stored as float64 instead of float32."""
    o, h, lo, c, v = (np.ascontiguousarray(frame[col], dtype=np.float64) for col in OHLCV)
    out = np.empty((len(feature_names(cfg)), len(frame)), dtype=np.float64)
    features._segment_kernel(o, h, lo, c, v, *features._kernel_params(cfg), 0, out)
    return pd.DataFrame(out.T, columns=feature_names(cfg), index=frame.index)


def close_to(got: pd.Series, ref: pd.Series, start: int = START, atol: float = ATOL) -> None:
    got, ref = np.asarray(got, dtype=np.float64)[start:], np.asarray(ref, dtype=np.float64)[start:]
    assert np.isfinite(got).all() and np.isfinite(ref).all()
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=atol)


def truncated(ema: pd.Series, alpha: float, tail: float) -> pd.Series:
    """The project's truncated, renormalised filter from an infinite-history EMA of the same input."""
    length = features._kernel_length(alpha, tail)
    q = (1 - alpha) ** length
    return (ema - q * ema.shift(length)) / (1 - q)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return random_walk()


@pytest.fixture(scope="module")
def exact(frame) -> pd.DataFrame:
    """Features with EMA truncation below the tolerance (ema_tail=1e-12)."""
    return kernel64(frame, FeatureConfig(ema_tail=1e-12))


@pytest.fixture(scope="module")
def default(frame) -> pd.DataFrame:
    return kernel64(frame, FeatureConfig())


@pytest.mark.parametrize("tail", [0.01, 1e-12])
def test_kernel64_rounds_to_the_public_float32_features(frame, tail):
    cfg = FeatureConfig(ema_tail=tail)
    public = build_features(frame, cfg)
    assert (public.dtypes == np.float32).all()
    np.testing.assert_array_equal(public.to_numpy(), kernel64(frame, cfg).to_numpy().astype(np.float32))


def test_warm_up_is_nan_then_every_value_is_finite(default):
    """Each feature is NaN on its first lookback - 1 rows and finite from there on."""
    lookbacks = features._feature_lookbacks(FeatureConfig())
    for name, lookback in lookbacks.items():
        col = default[name].to_numpy()
        assert np.isnan(col[: lookback - 1]).all(), name
        assert np.isfinite(col[lookback - 1 :]).all(), name
    assert lookback_rows(FeatureConfig()) == 80  # MACD signal: slow kernel 60 + signal kernel 21 - 1
    assert lookback_rows(FeatureConfig(ema_tail=1e-12)) == 483  # 360 + 124 - 1


def test_default_kernel_lengths():
    """The truncation of each recursive indicator with the default ema_tail=0.01 (the module docstring)."""
    cfg = FeatureConfig()
    tail = cfg.ema_tail
    assert features._kernel_length(1 / cfg.rsi_period, tail) == 63
    assert features._kernel_length(1 / cfg.atr_period, tail) == 63
    assert features._kernel_length(2 / (cfg.macd_fast + 1), tail) == 28
    assert features._kernel_length(2 / (cfg.macd_slow + 1), tail) == 60
    assert features._kernel_length(2 / (cfg.macd_signal + 1), tail) == 21
    for alpha in (1 / 14, 2 / 13, 2 / 27, 2 / 10):
        length = features._kernel_length(alpha, tail)
        assert (1 - alpha) ** length <= tail < (1 - alpha) ** (length - 1)


# --- against ta ----------------------------------------------------------------------------


def test_rsi_is_ta_rsi(frame, exact):
    rsi = ta.momentum.RSIIndicator(frame["close"], window=14).rsi()
    close_to(exact["rsi_14"], 2 * rsi / 100 - 1)


def test_macd_is_ta_macd_over_close(frame, exact):
    macd = ta.trend.MACD(frame["close"], window_slow=26, window_fast=12, window_sign=9)
    line = macd.macd() / frame["close"]
    close_to(exact["macd_line"], line)
    signal = ta.trend.EMAIndicator(line, window=9).ema_indicator()  # the EMA of the normalised line
    close_to(exact["macd_signal"], signal)
    close_to(exact["macd_hist"], line - signal)


def test_atr_is_ta_atr_over_close(frame, exact):
    atr = ta.volatility.AverageTrueRange(frame["high"], frame["low"], frame["close"], window=14).average_true_range()
    close_to(exact["atr_14"], atr / frame["close"])


def test_bollinger_is_ta_bollinger(frame, default):
    bb = ta.volatility.BollingerBands(frame["close"], window=20, window_dev=2)
    # pandas' rolling mean / std (ta's) keep running sums: their rounding (~1e-12 of the price
    # after 4000 rows) reaches %B near 0 magnified by price / band width, so 1e-10 absolute there;
    # the project computes each window in two passes.
    close_to(default["bb_pctb"], bb.bollinger_pband(), start=19, atol=1e-10)
    close_to(default["bb_width"], bb.bollinger_wband() / 100, start=19)


def test_moving_average_ratio_is_log_close_over_ta_sma(frame, default):
    for w in (10, 30):
        sma = ta.trend.SMAIndicator(frame["close"], window=w).sma_indicator()
        close_to(default[f"close_ma_ratio_{w}"], np.log(frame["close"] / sma), start=w - 1)


def test_log_returns(frame, default):
    close_to(default["log_ret_1"], ta.others.DailyLogReturnIndicator(frame["close"]).daily_log_return() / 100, 1)
    for k in (1, 2, 3, 5, 10, 20):
        close_to(default[f"log_ret_{k}"], np.log(frame["close"] / frame["close"].shift(k)), start=k)


def test_volatility_is_the_sample_std_of_log_returns(frame, default):
    r1 = np.log(frame["close"]).diff()
    for w in (10, 30):
        close_to(default[f"volatility_{w}"], r1.rolling(w).std(ddof=1), start=w)


def test_volume_z_score(frame, default):
    v = frame["volume"].rolling(20)
    close_to(default["volume_z_20"], (frame["volume"] - v.mean()) / v.std(ddof=0), start=19)


def test_candle_shape(frame, default):
    o, h, lo, c = (frame[col] for col in ("open", "high", "low", "close"))
    close_to(default["hl_range"], np.log(h / lo), start=0)
    close_to(default["body"], np.log(c / o), start=0)
    close_to(default["upper_wick"], np.log(h / np.maximum(o, c)), start=0)
    close_to(default["lower_wick"], np.log(np.minimum(o, c) / lo), start=0)


# --- the default truncation, exactly -------------------------------------------------------


def test_default_rsi_is_the_truncated_wilder_average(frame, default):
    diff = frame["close"].diff()
    up, down = diff.clip(lower=0).fillna(0.0), (-diff).clip(lower=0).fillna(0.0)
    alpha = 1 / 14
    gain = truncated(up.ewm(alpha=alpha, adjust=False).mean(), alpha, 0.01)  # ta's averages of gains / losses
    loss = truncated(down.ewm(alpha=alpha, adjust=False).mean(), alpha, 0.01)
    close_to(default["rsi_14"], (gain - loss) / (gain + loss))


def test_default_macd_is_made_of_truncated_emas(frame, default):
    c = frame["close"]

    def ema(x: pd.Series, span: int) -> pd.Series:
        return truncated(ta.trend.EMAIndicator(x, window=span).ema_indicator(), 2 / (span + 1), 0.01)

    line = (ema(c, 12) - ema(c, 26)) / c
    close_to(default["macd_line"], line)
    signal = ema(line, 9)
    close_to(default["macd_signal"], signal)
    close_to(default["macd_hist"], line - signal)


def test_default_atr_is_the_truncated_wilder_atr(frame, default):
    atr = ta.volatility.AverageTrueRange(frame["high"], frame["low"], frame["close"], window=14).average_true_range()
    close_to(default["atr_14"], truncated(atr, 1 / 14, 0.01) / frame["close"])


def test_default_truncation_against_textbook_values(frame, default, exact):
    """How far the default ema_tail=0.01 is from infinite-history indicators on a 1%-per-bar walk
    (the numbers quoted in the features module docstring)."""
    tail = slice(START, None)
    rsi = (default["rsi_14"] - exact["rsi_14"])[tail].abs().max()
    atr = ((default["atr_14"] - exact["atr_14"]) / exact["atr_14"])[tail].abs().max()
    macd = (default["macd_line"] - exact["macd_line"])[tail].abs().max()
    macd_scale = exact["macd_line"][tail].abs().mean()
    assert rsi < 0.02 and atr < 0.01 and macd < 0.25 * macd_scale, (rsi, atr, macd / macd_scale)


# --- by hand -------------------------------------------------------------------------------

#: Periods small enough to compute by hand; ema_tail=0.25 keeps 2 weights of every EMA.
TINY = FeatureConfig(
    return_lags=(1,),
    volatility_windows=(2,),
    rsi_period=2,
    macd_fast=2,
    macd_slow=3,
    macd_signal=2,
    bollinger_window=3,
    atr_period=2,
    volume_window=3,
    ma_windows=(2,),
    ema_tail=0.25,
)
BARS = pd.DataFrame(
    {
        "open": [10.0, 10.0, 11.0, 12.0],
        "high": [10.5, 11.5, 12.1, 12.2],
        "low": [9.5, 9.9, 10.8, 9.8],
        "close": [10.0, 11.0, 12.0, 10.0],
        "volume": [1.0, 2.0, 3.0, 6.0],
    }
)


def test_tiny_kernels_by_hand():
    # Wilder, alpha 1/2: weights 1/2, 1/4 (0.25 <= tail) renormalised by 3/4 -> 2/3, 1/3
    np.testing.assert_allclose(features._ema_kernel(0.5, 0.25), [2 / 3, 1 / 3])
    # span 2, alpha 2/3: weights 2/3, 2/9 renormalised by 8/9 -> 3/4, 1/4
    np.testing.assert_allclose(features._ema_kernel(2 / 3, 0.25), [3 / 4, 1 / 4])


def test_rsi_by_hand():
    f = build_features(BARS, TINY)["rsi_2"].to_numpy(np.float64)
    # gains 0, 1, 1, 0; losses 0, 0, 0, 2
    assert np.isnan(f[:2]).all()
    avg_gain, avg_loss = 2 / 3 * 1 + 1 / 3 * 1, 0.0
    assert f[2] == pytest.approx(2 * (100 if avg_loss == 0 else 100 - 100 / (1 + avg_gain / avg_loss)) / 100 - 1)
    avg_gain, avg_loss = 2 / 3 * 0 + 1 / 3 * 1, 2 / 3 * 2 + 1 / 3 * 0
    rsi = 100 - 100 / (1 + avg_gain / avg_loss)  # 20
    assert f[3] == pytest.approx(2 * rsi / 100 - 1, rel=1e-7) == pytest.approx(-0.6, rel=1e-7)


def test_macd_by_hand():
    f = build_features(BARS, TINY)
    c = BARS["close"].to_numpy()
    fast = [3 / 4 * c[t] + 1 / 4 * c[t - 1] for t in (1, 2, 3)]
    slow = [2 / 3 * c[t] + 1 / 3 * c[t - 1] for t in (1, 2, 3)]
    line = [(fast[i] - slow[i]) / c[i + 1] for i in range(3)]  # 1/132, 1/144, -1/60
    np.testing.assert_allclose(line, [1 / 132, 1 / 144, -1 / 60])
    np.testing.assert_allclose(f["macd_line"].to_numpy()[1:], line, rtol=1e-6)
    signal = [3 / 4 * line[i] + 1 / 4 * line[i - 1] for i in (1, 2)]
    np.testing.assert_allclose(f["macd_signal"].to_numpy()[2:], signal, rtol=1e-6)
    np.testing.assert_allclose(f["macd_hist"].to_numpy()[2:], np.subtract(line[1:], signal), rtol=1e-6)
    assert np.isnan(f["macd_line"][0]) and np.isnan(f["macd_signal"][:2]).all()


def test_atr_by_hand():
    f = build_features(BARS, TINY)["atr_2"].to_numpy(np.float64)
    # true range: max(high, previous close) - min(low, previous close)
    tr = [11.5 - 9.9, 12.1 - 10.8, 12.2 - 9.8]  # 1.6, 1.3, 2.4 (previous closes 10, 11, 12 inside)
    assert np.isnan(f[:2]).all()
    assert f[2] == pytest.approx((2 / 3 * tr[1] + 1 / 3 * tr[0]) / 12, rel=1e-6)
    assert f[3] == pytest.approx((2 / 3 * tr[2] + 1 / 3 * tr[1]) / 10, rel=1e-6)


def test_bollinger_volume_and_the_rest_by_hand():
    f = build_features(BARS, TINY)
    std = math.sqrt(2 / 3)  # population std of 10, 11, 12 and of 11, 12, 10 (mean 11 both)
    upper, lower = 11 + 2 * std, 11 - 2 * std
    assert f["bb_pctb"][2] == pytest.approx((12 - lower) / (upper - lower), rel=1e-6)
    assert f["bb_pctb"][3] == pytest.approx((10 - lower) / (upper - lower), rel=1e-6)
    assert f["bb_width"][3] == pytest.approx((upper - lower) / 11, rel=1e-6)
    assert f["volume_z_3"][2] == pytest.approx((3 - 2) / math.sqrt(2 / 3), rel=1e-6)
    assert f["volume_z_3"][3] == pytest.approx(7 / math.sqrt(26), rel=1e-6)  # 2, 3, 6: mean 11/3
    r = np.log([11 / 10, 12 / 11, 10 / 12])
    assert f["volatility_2"][2] == pytest.approx(abs(r[0] - r[1]) / math.sqrt(2), rel=1e-6)
    assert f["volatility_2"][3] == pytest.approx(abs(r[1] - r[2]) / math.sqrt(2), rel=1e-6)
    assert f["close_ma_ratio_2"][1] == pytest.approx(math.log(11 / 10.5), rel=1e-6)
    assert f["log_ret_1"][3] == pytest.approx(math.log(10 / 12), rel=1e-6)
    assert f["hl_range"][3] == pytest.approx(math.log(12.2 / 9.8), rel=1e-6)
    assert f["body"][3] == pytest.approx(math.log(10 / 12), rel=1e-6)
    assert f["upper_wick"][3] == pytest.approx(math.log(12.2 / 12), rel=1e-6)
    assert f["lower_wick"][3] == pytest.approx(math.log(10 / 9.8), rel=1e-6)


def test_flat_conventions():
    """A flat market: RSI 50 (feature 0; ta says 100), %B 1/2 (ta: NaN), width 0, volume z 0."""
    n = 200
    flat = pd.DataFrame({"open": 5.0, "high": 5.0, "low": 5.0, "close": 5.0, "volume": 7.0}, index=range(n))
    f = build_features(flat).iloc[lookback_rows(FeatureConfig()) - 1 :]
    assert (f["rsi_14"] == 0).all() and (f["bb_pctb"] == 0.5).all() and (f["bb_width"] == 0).all()
    assert (f["volume_z_20"] == 0).all() and (f["macd_line"] == 0).all() and (f["atr_14"] == 0).all()
