"""Causal, scale-free technical features computed from OHLCV candles.

`build_features(frame, cfg)` turns a candle frame (columns open, high, low, close, volume and,
optionally, segment) into a float32 DataFrame with one column per `feature_names(cfg)`, on the
same index as `frame`.

Contract
--------
* **Pure**: no I/O, no global state; the input frame is not modified.
* **Causal**: the feature at row t depends on rows <= t only.
* **Finite lookback**: every feature at row t is a function of rows ``[t - L + 1, t]`` of its
  segment, ``L = lookback_rows(cfg)``. Exponential moving averages (MACD, RSI, ATR) are therefore
  computed as *truncated*, renormalised exponential filters (the weight left out of the kernel is
  at most ``cfg.ema_tail``) instead of recursive EMAs whose value depends on where the series
  happened to start. Serving with at least L rows of history reproduces the training features
  (up to float rounding of the rolling sums), whatever the history length.
* **Per segment**: `segment` marks contiguous runs of candles (a new id after a gap); no rolling
  value crosses a segment boundary. Missing column -> one segment.
* **Warm-up**: a feature is NaN on the first ``lookback - 1`` rows of each segment (its own
  lookback), so the first ``lookback_rows(cfg) - 1`` rows of a segment have at least one NaN.
* **Scale-free**: only log returns and ratios, so a BTC-quoted pair priced at 0.00005 and a USD
  pair priced at 60000 give features of the same magnitude.

The only Python loop is over segments (usually a handful); within a segment everything is
vectorised numpy / pandas rolling.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

OHLCV_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class FeatureConfig:
    """Which features `build_features` computes and with which periods (all in candles)."""

    return_lags: tuple[int, ...] = (1, 2, 3, 5, 10, 20)
    """Lags k of the log returns ``log(close_t / close_{t-k})``; one feature per lag."""

    volatility_windows: tuple[int, ...] = (10, 30)
    """Windows of the rolling standard deviation (ddof=1) of 1-candle log returns."""

    rsi_period: int = 14
    """RSI period (Wilder smoothing, alpha = 1/period); the feature is ``2*RSI/100 - 1`` in [-1, 1]."""

    macd_fast: int = 12
    """Span of the fast EMA of close in MACD."""

    macd_slow: int = 26
    """Span of the slow EMA of close in MACD; must be > macd_fast."""

    macd_signal: int = 9
    """Span of the EMA of the MACD line giving the signal line."""

    bollinger_window: int = 20
    """Window of the Bollinger bands (rolling mean and population std of close)."""

    bollinger_k: float = 2.0
    """Band half-width in standard deviations; features are %B and width / mean."""

    atr_period: int = 14
    """ATR period (Wilder smoothing of the true range); the feature is ATR / close."""

    volume_window: int = 20
    """Window of the volume z-score ``(volume - rolling mean) / rolling std`` (0 where std is 0)."""

    ma_windows: tuple[int, ...] = (10, 30)
    """Windows of the simple moving averages in ``log(close / SMA)``; one feature per window."""

    ema_tail: float = 0.01
    """Weight an exponential filter may drop: EMA kernels are cut at the first length L with
    ``(1 - alpha)^L <= ema_tail`` and renormalised; smaller is closer to a true EMA but needs a
    longer warm-up. In (0, 0.5]."""

    def __post_init__(self) -> None:
        for name in ("return_lags", "volatility_windows", "ma_windows"):
            value = getattr(self, name)
            if isinstance(value, (int, np.integer)):
                value = (int(value),)
            value = tuple(int(v) for v in value)
            object.__setattr__(self, name, value)
            if len(value) == 0:
                raise ValueError(f"FeatureConfig.{name} must not be empty")
            if len(set(value)) != len(value):
                raise ValueError(f"FeatureConfig.{name} has duplicates: {value}")
            minimum = 2 if name != "return_lags" else 1
            if min(value) < minimum:
                raise ValueError(f"FeatureConfig.{name} values must be >= {minimum}, got {value}")
        for name in ("rsi_period", "macd_fast", "macd_slow", "macd_signal", "bollinger_window", "atr_period",
                     "volume_window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"FeatureConfig.{name} must be an int, got {value!r}")
            object.__setattr__(self, name, int(value))
            if value < 2:
                raise ValueError(f"FeatureConfig.{name} must be >= 2, got {value}")
        if self.macd_fast >= self.macd_slow:
            raise ValueError(f"FeatureConfig.macd_fast ({self.macd_fast}) must be < macd_slow ({self.macd_slow})")
        if not (self.bollinger_k > 0 and math.isfinite(self.bollinger_k)):
            raise ValueError(f"FeatureConfig.bollinger_k must be a positive number, got {self.bollinger_k}")
        if not (0.0 < self.ema_tail <= 0.5):
            raise ValueError(f"FeatureConfig.ema_tail must be in (0, 0.5], got {self.ema_tail}")
        object.__setattr__(self, "bollinger_k", float(self.bollinger_k))
        object.__setattr__(self, "ema_tail", float(self.ema_tail))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists); `from_dict` inverts it."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureConfig":
        """Rebuild from `to_dict` output; unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown FeatureConfig keys: {sorted(unknown)}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})


# --------------------------------------------------------------------------------------------
# names and lookbacks
# --------------------------------------------------------------------------------------------

def _ema_alpha_span(span: int) -> float:
    return 2.0 / (span + 1.0)


def _ema_alpha_wilder(period: int) -> float:
    return 1.0 / period


def _kernel_length(alpha: float, tail: float) -> int:
    """Smallest L with (1 - alpha)^L <= tail."""
    if alpha >= 1.0:
        return 1
    return max(1, int(math.ceil(math.log(tail) / math.log1p(-alpha) - 1e-12)))


def _ema_kernel(alpha: float, tail: float) -> np.ndarray:
    length = _kernel_length(alpha, tail)
    k = np.arange(length, dtype=np.float64)
    w = alpha * (1.0 - alpha) ** k
    return w / w.sum()  # (L,), w[0] weighs the current row


def _feature_lookbacks(cfg: FeatureConfig) -> dict[str, int]:
    """Feature name -> rows it depends on (the current one included), in output order."""
    tail = cfg.ema_tail
    l_fast = _kernel_length(_ema_alpha_span(cfg.macd_fast), tail)
    l_slow = _kernel_length(_ema_alpha_span(cfg.macd_slow), tail)
    l_sig = _kernel_length(_ema_alpha_span(cfg.macd_signal), tail)
    l_rsi = _kernel_length(_ema_alpha_wilder(cfg.rsi_period), tail)
    l_atr = _kernel_length(_ema_alpha_wilder(cfg.atr_period), tail)
    macd_line = max(l_fast, l_slow)
    out: dict[str, int] = {}
    for k in cfg.return_lags:
        out[f"log_ret_{k}"] = k + 1
    for w in cfg.volatility_windows:
        out[f"volatility_{w}"] = w + 1
    out[f"rsi_{cfg.rsi_period}"] = l_rsi + 1
    out["macd_line"] = macd_line
    out["macd_signal"] = macd_line + l_sig - 1
    out["macd_hist"] = macd_line + l_sig - 1
    out["bb_pctb"] = cfg.bollinger_window
    out["bb_width"] = cfg.bollinger_window
    out[f"atr_{cfg.atr_period}"] = l_atr + 1
    out[f"volume_z_{cfg.volume_window}"] = cfg.volume_window
    out["hl_range"] = 1
    for w in cfg.ma_windows:
        out[f"close_ma_ratio_{w}"] = w
    out["body"] = 1
    out["upper_wick"] = 1
    out["lower_wick"] = 1
    return out


def feature_names(cfg: FeatureConfig) -> list[str]:
    """Column names of `build_features(frame, cfg)`, in order."""
    return list(_feature_lookbacks(cfg))


def lookback_rows(cfg: FeatureConfig) -> int:
    """Rows (current one included) the slowest feature depends on.

    The first ``lookback_rows(cfg) - 1`` rows of every segment have NaN features (warm-up), and
    serving needs at least ``lookback_rows(cfg) + window - 1`` candles of one segment.
    """
    return max(_feature_lookbacks(cfg).values())


# --------------------------------------------------------------------------------------------
# segment helpers (shared with labels / dataset)
# --------------------------------------------------------------------------------------------

def segment_runs(segment: np.ndarray | pd.Series | None, n: int) -> np.ndarray:
    """(k, 2) int64 array of [start, stop) row ranges of contiguous runs of equal `segment` values.

    `segment=None` means one run over all `n` rows.
    """
    if segment is None or n == 0:
        return np.array([[0, n]], dtype=np.int64) if n else np.empty((0, 2), dtype=np.int64)
    seg = np.asarray(segment)
    if seg.shape != (n,):
        raise ValueError(f"segment has shape {seg.shape}, expected ({n},)")
    change = np.flatnonzero(seg[1:] != seg[:-1]) + 1
    starts = np.concatenate(([0], change)).astype(np.int64)
    stops = np.concatenate((change, [n])).astype(np.int64)
    return np.stack([starts, stops], axis=1)


def run_ids(segment: np.ndarray | pd.Series | None, n: int) -> np.ndarray:
    """(n,) int64 run id per row: 0, 0, ..., 1, 1, ... (increments where `segment` changes)."""
    if segment is None:
        return np.zeros(n, dtype=np.int64)
    seg = np.asarray(segment)
    ids = np.zeros(n, dtype=np.int64)
    if n > 1:
        np.cumsum(seg[1:] != seg[:-1], out=ids[1:])
    return ids


# --------------------------------------------------------------------------------------------
# computation
# --------------------------------------------------------------------------------------------

def _fir(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Causal FIR filter: y[t] = sum_k kernel[k] * x[t-k]; rows with incomplete support are junk
    (the caller masks them). Direct convolution, so y[t] never depends on x[t+1:]."""
    return np.convolve(x, kernel, mode="full")[: x.shape[0]]


def _safe_div(num: np.ndarray, den: np.ndarray, fill: float) -> np.ndarray:
    out = np.full(num.shape, fill, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _segment_features(o: np.ndarray, h: np.ndarray, low: np.ndarray, c: np.ndarray, v: np.ndarray,
                      cfg: FeatureConfig) -> dict[str, np.ndarray]:
    """Features of one segment (float64 arrays of its length); warm-up is masked by the caller."""
    n = c.shape[0]
    tail = cfg.ema_tail
    out: dict[str, np.ndarray] = {}
    logc = np.log(c)

    # log returns over several lags
    for k in cfg.return_lags:
        r = np.full(n, np.nan)
        if n > k:
            r[k:] = logc[k:] - logc[:-k]
        out[f"log_ret_{k}"] = r
    r1 = np.full(n, np.nan)
    if n > 1:
        r1[1:] = logc[1:] - logc[:-1]
    r1_s = pd.Series(r1, copy=False)

    # rolling volatility of 1-candle log returns
    for w in cfg.volatility_windows:
        out[f"volatility_{w}"] = r1_s.rolling(w, min_periods=w).std(ddof=1).to_numpy()

    # RSI (Wilder), in [-1, 1]
    delta = np.zeros(n)
    if n > 1:
        delta[1:] = c[1:] - c[:-1]
    k_rsi = _ema_kernel(_ema_alpha_wilder(cfg.rsi_period), tail)
    gain = _fir(np.maximum(delta, 0.0), k_rsi)
    loss = _fir(np.maximum(-delta, 0.0), k_rsi)
    out[f"rsi_{cfg.rsi_period}"] = 2.0 * _safe_div(gain, gain + loss, 0.5) - 1.0

    # MACD normalised by price
    ema_fast = _fir(c, _ema_kernel(_ema_alpha_span(cfg.macd_fast), tail))
    ema_slow = _fir(c, _ema_kernel(_ema_alpha_span(cfg.macd_slow), tail))
    line = (ema_fast - ema_slow) / c
    signal = _fir(line, _ema_kernel(_ema_alpha_span(cfg.macd_signal), tail))
    out["macd_line"] = line
    out["macd_signal"] = signal
    out["macd_hist"] = line - signal

    # Bollinger %B and width
    c_s = pd.Series(c, copy=False)
    roll = c_s.rolling(cfg.bollinger_window, min_periods=cfg.bollinger_window)
    mean = roll.mean().to_numpy()
    std = roll.std(ddof=0).to_numpy()
    band = 2.0 * cfg.bollinger_k * std
    out["bb_pctb"] = _safe_div(c - (mean - cfg.bollinger_k * std), band, 0.5)
    out["bb_width"] = band / mean

    # ATR (Wilder) / close
    tr = h - low
    if n > 1:
        prev = c[:-1]
        tr[1:] = np.maximum(tr[1:], np.maximum(np.abs(h[1:] - prev), np.abs(low[1:] - prev)))
    atr = _fir(tr, _ema_kernel(_ema_alpha_wilder(cfg.atr_period), tail))
    out[f"atr_{cfg.atr_period}"] = atr / c

    # volume z-score
    v_roll = pd.Series(v, copy=False).rolling(cfg.volume_window, min_periods=cfg.volume_window)
    v_mean = v_roll.mean().to_numpy()
    v_std = v_roll.std(ddof=0).to_numpy()
    z = _safe_div(v - v_mean, v_std, 0.0)
    z[np.isnan(v_std)] = np.nan
    out[f"volume_z_{cfg.volume_window}"] = z

    # candle range and position
    out["hl_range"] = np.log(h / low)
    for w in cfg.ma_windows:
        sma = c_s.rolling(w, min_periods=w).mean().to_numpy()
        out[f"close_ma_ratio_{w}"] = np.log(c / sma)
    out["body"] = np.log(c / o)
    out["upper_wick"] = np.log(h / np.maximum(o, c))
    out["lower_wick"] = np.log(np.minimum(o, c) / low)
    return out


def _feature_array(frame: pd.DataFrame, cfg: FeatureConfig) -> np.ndarray:
    """(F, N) float32: one contiguous row per feature."""
    missing = [col for col in OHLCV_COLUMNS if col not in frame.columns]
    if missing:
        raise ValueError(f"build_features: frame lacks columns {missing}")
    n = len(frame)
    arrays = {col: frame[col].to_numpy(dtype=np.float64) for col in OHLCV_COLUMNS}
    if n and (min(arrays[col].min() for col in ("open", "high", "low", "close")) <= 0):
        raise ValueError("build_features: open/high/low/close must be positive")
    lookbacks = _feature_lookbacks(cfg)
    names = list(lookbacks)
    result = np.full((len(names), n), np.nan, dtype=np.float32)  # (F, N)
    segment = frame["segment"].to_numpy() if "segment" in frame.columns else None
    runs = segment_runs(segment, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        for start, stop in runs:  # loop over segments only; vectorised inside
            seg_feats = _segment_features(*(arrays[col][start:stop] for col in OHLCV_COLUMNS), cfg=cfg)
            for j, name in enumerate(names):
                warm = min(lookbacks[name] - 1, stop - start)
                result[j, start + warm:stop] = seg_feats[name][warm:]
    logger.debug("build_features: %d rows, %d segments, %d features", n, len(runs), len(names))
    return result


def build_feature_matrix(frame: pd.DataFrame, cfg: FeatureConfig | None = None) -> np.ndarray:
    """Same values as `build_features` as a (N, F) float32 array (a transposed view of one
    (F, N) block; no DataFrame overhead). Used by `dataset` for training and serving alike."""
    return _feature_array(frame, cfg or FeatureConfig()).T  # (N, F)


def build_features(frame: pd.DataFrame, cfg: FeatureConfig | None = None) -> pd.DataFrame:
    """Features of a candle frame: float32 DataFrame, columns `feature_names(cfg)`, index `frame.index`.

    `frame` needs columns open, high, low, close, volume (positive prices); an optional `segment`
    column splits it into independent runs. See the module docstring for the guarantees.
    """
    cfg = cfg or FeatureConfig()
    result = _feature_array(frame, cfg)  # (F, N)
    return pd.DataFrame({name: result[j] for j, name in enumerate(feature_names(cfg))}, index=frame.index)
