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
  happened to start. Every value is computed from its own window only (no recursion, no
  running sums), so serving with at least L rows of history reproduces the training features
  bit for bit, whatever the history length.
* **Per segment**: `segment` marks contiguous runs of candles (a new id after a gap); no rolling
  value crosses a segment boundary. Missing column -> one segment.
* **Warm-up**: a feature is NaN on the first ``lookback - 1`` rows of each segment (its own
  lookback), so the first ``lookback_rows(cfg) - 1`` rows of a segment have at least one NaN.
* **Scale-free**: only log returns and ratios, so a BTC-quoted pair priced at 0.00005 and a USD
  pair priced at 60000 give features of the same magnitude.

Lookback truncation
-------------------
A recursive indicator is a truncated EMA: weights ``alpha * (1 - alpha)^k`` for ``k < L``, ``L``
the first length with ``q = (1 - alpha)^L <= cfg.ema_tail``, divided by ``1 - q``. Exactly,
``value_t = (E_t - q * E_{t-L}) / (1 - q)`` with ``E`` the infinite-history (recursive) EMA, so
it differs from ``E_t`` by ``q / (1 - q) * (E_t - E_{t-L})``: at most ``ema_tail / (1 - ema_tail)``
times the change of the smoothed quantity over the last L rows. With the default ``ema_tail``
0.01:

* RSI 14 (Wilder, alpha 1/14): gains and losses over L = 63 rows, lookback 64;
* ATR 14 (Wilder, alpha 1/14): true range over L = 63 rows, lookback 64;
* MACD 12/26/9 (alpha 2/(span + 1)): fast L = 28, slow L = 60 (line lookback 60), signal L = 21
  over the normalised line (signal and histogram lookback 80 = `lookback_rows`).

Against infinite-history indicators on a 1%-per-bar random walk that is: the RSI feature within
about 0.013 (on [-1, 1]), ATR / close within 1% relative (0.1% typically), the MACD line and
signal within 0.002, about 20% of their mean size (4-5% typically): MACD, a difference of two
EMAs, moves most. A smaller ``ema_tail`` comes closer at the cost of warm-up: with 1e-12 the
features match the `ta` package's textbook RSI, MACD and ATR to 1e-9 relative, with a 483-row
lookback (tests/test_indicators_reference.py, which also states each convention: scale-free
MACD / ATR, the MACD signal as the EMA of the normalised line, RSI 50 and %B 1/2 on flat windows).

The only Python loop is over segments (usually a handful); within a segment one compiled
function (numba, `_segment_kernel`) computes every feature in plain loops that read like the
formulas. It replaced ~70 numpy and pandas calls per segment, whose fixed costs (a few
microseconds each, ~60 us per pandas ``rolling``) dominated the predictor's request on its
139-row tail; the loops cost O(window) per value, which on a million training rows is about as
fast as the vectorised version was (``bench/bench_windowing.py``).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, TypedDict

import numba
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
        for name in (
            "rsi_period",
            "macd_fast",
            "macd_slow",
            "macd_signal",
            "bollinger_window",
            "atr_period",
            "volume_window",
        ):
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
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureConfig:
        """Rebuild from `to_dict` output; unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown FeatureConfig keys: {sorted(unknown)}")
        kwargs: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
        return cls(**kwargs)


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
    return max(1, math.ceil(math.log(tail) / math.log1p(-alpha) - 1e-12))


@functools.lru_cache(maxsize=64)
def _ema_kernel(alpha: float, tail: float) -> np.ndarray:
    """(L,) read-only renormalised EMA weights, w[0] weighs the current row (cached: the
    predictor asks for the same few kernels on every request)."""
    length = _kernel_length(alpha, tail)
    k = np.arange(length, dtype=np.float64)
    w = alpha * (1.0 - alpha) ** k
    w /= w.sum()
    w.flags.writeable = False
    return w


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


@functools.lru_cache(maxsize=64)
def _feature_count(cfg: FeatureConfig) -> int:
    return len(_feature_lookbacks(cfg))


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


class _JitOptions(TypedDict, total=False):
    """The ``numba.njit`` keywords used here (typed, so that mypy sees what each kernel returns)."""

    cache: bool
    nogil: bool
    fastmath: bool | set[str]


_JIT: _JitOptions = {"cache": True, "nogil": True}
"""Compiled once per machine (numba caches the machine code next to this file, or in the user's
cache folder when the package is read-only)."""
_JIT_SUM: _JitOptions = {**_JIT, "fastmath": {"reassoc", "contract"}}
"""For the three reductions below only: re-association lets LLVM vectorise the sums (SIMD lanes
plus several accumulators; 3-4x faster on the serving tail). Sums are then ordered by vector
lanes, like numpy's own SIMD reductions: the same bits on machines with the same instruction
set, a last-bit difference at most between, say, AVX2 and AVX-512. NaN/inf semantics are kept."""


@numba.njit(**_JIT_SUM)
def _dot(weights: np.ndarray, x: np.ndarray, start: int) -> float:
    """sum_i weights[i] * x[start + i]."""
    s = 0.0
    for i in range(weights.shape[0]):
        s += weights[i] * x[start + i]
    return s


@numba.njit(**_JIT_SUM)
def _window_sum(x: np.ndarray, start: int, w: int) -> float:
    s = 0.0
    for i in range(start, start + w):
        s += x[i]
    return s


@numba.njit(**_JIT_SUM)
def _window_sq_dev(x: np.ndarray, start: int, w: int, mean: float) -> float:
    q = 0.0
    for i in range(start, start + w):
        d = x[i] - mean
        q += d * d
    return q


@numba.njit(**_JIT)
def _flat(x: np.ndarray, start: int, w: int) -> bool:
    """All of x[start : start + w] equal (leaves at the first difference, at once on a moving
    window; NaN != NaN, so a window with a NaN is never flat)."""
    first = x[start]
    for i in range(start + 1, start + w):
        if x[i] != first:
            return False
    not_nan: bool = first == first
    return not_nan


@numba.njit(**_JIT)
def _window_mean(x: np.ndarray, start: int, w: int) -> float:
    """Mean of x[start : start + w]; exactly the value on a flat window (a sum of w equal values
    divided by w need not give the value back: 0.1 * 20 / 20 != 0.1)."""
    mean: float = x[start] if _flat(x, start, w) else _window_sum(x, start, w) / w
    return mean


@numba.njit(**_JIT)
def _window_mean_std(x: np.ndarray, start: int, w: int, ddof: int) -> tuple[float, float]:
    """Mean and std (two passes) of x[start : start + w]; exactly (value, 0) on a flat window;
    NaN propagates."""
    if _flat(x, start, w):
        return x[start], 0.0
    mean = _window_sum(x, start, w) / w
    return mean, math.sqrt(_window_sq_dev(x, start, w, mean) / (w - ddof))


@numba.njit(**_JIT)
def _rolling_std_kernel(x: np.ndarray, w: int, ddof: int, out: np.ndarray) -> None:
    for t in range(x.shape[0]):
        out[t] = np.nan if t < w - 1 else _window_mean_std(x, t - w + 1, w, ddof)[1]


def rolling_std(x: np.ndarray, window: int, ddof: int) -> np.ndarray:
    """Standard deviation (``ddof`` 0 or 1) of ``x[t - window + 1 .. t]``: NaN where that window is
    incomplete or holds a NaN (pandas' ``rolling(window, min_periods=window).std(ddof)``); each
    value computed from its own window (two passes), exactly 0 on a constant window."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty(x.shape[0], dtype=np.float64)
    _rolling_std_kernel(x, int(window), int(ddof), out)
    return out


@numba.njit(**_JIT)
def _segment_kernel(  # pragma: no cover - compiled; tested through callers
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    lags: np.ndarray,
    vol_windows: np.ndarray,
    k_rsi: np.ndarray,
    k_fast: np.ndarray,
    k_slow: np.ndarray,
    k_signal: np.ndarray,
    bb_window: int,
    bb_k: float,
    k_atr: np.ndarray,
    volume_window: int,
    ma_windows: np.ndarray,
    first: int,
    out: np.ndarray,
) -> None:
    """Fill ``out`` (F, n) float32 with the features of one segment at rows >= ``first`` (NaN elsewhere
    and in each feature's warm-up). Row t of every feature is computed from its own lookback rows
    only (no recursion, no running sums), so it has the same bits whatever came before those rows
    and whether or not other rows were computed. EMA weights arrive reversed (oldest first)."""
    n = c.shape[0]
    out[:, :] = np.nan
    logc = np.log(c)
    row = 0

    # log returns over several lags
    for k in lags:
        for t in range(max(first, k), n):
            out[row, t] = logc[t] - logc[t - k]
        row += 1

    # rolling volatility (ddof=1) of 1-candle log returns r1[t] = logc[t] - logc[t-1], t >= 1
    r1 = np.empty(n)
    r1[0] = np.nan
    for t in range(1, n):
        r1[t] = logc[t] - logc[t - 1]
    for w in vol_windows:
        for t in range(max(first, w), n):
            out[row, t] = _window_mean_std(r1, t - w + 1, w, 1)[1]
        row += 1

    # RSI (Wilder) in [-1, 1]: 2 * gain / (gain + loss) - 1 = (gain - loss) / (gain + loss), 0 when flat
    gain = np.zeros(n)
    loss = np.zeros(n)
    for t in range(1, n):
        d = c[t] - c[t - 1]
        if d > 0:
            gain[t] = d
        elif d < 0:
            loss[t] = -d
    size = k_rsi.shape[0]
    for t in range(max(first, size), n):
        g = _dot(k_rsi, gain, t - size + 1)
        lv = _dot(k_rsi, loss, t - size + 1)
        out[row, t] = (g - lv) / (g + lv) if g + lv != 0 else 0.0
    row += 1

    # MACD normalised by price: line, signal (EMA of the line), histogram
    size_fast, size_slow, size_signal = k_fast.shape[0], k_slow.shape[0], k_signal.shape[0]
    size_line = max(size_fast, size_slow)
    line = np.full(n, np.nan)
    for t in range(max(size_line - 1, first - size_signal + 1), n):
        line[t] = (_dot(k_fast, c, t - size_fast + 1) - _dot(k_slow, c, t - size_slow + 1)) / c[t]
    for t in range(max(first, size_line - 1), n):
        out[row, t] = line[t]
    for t in range(max(first, size_line + size_signal - 2), n):
        signal = _dot(k_signal, line, t - size_signal + 1)
        out[row + 1, t] = signal
        out[row + 2, t] = line[t] - signal
    row += 3

    # Bollinger %B = (c - (mean - k*std)) / (2*k*std) = (c - mean) / band + 1/2 (1/2 on a flat window), width
    for t in range(max(first, bb_window - 1), n):
        mean, std = _window_mean_std(c, t - bb_window + 1, bb_window, 0)
        band = 2.0 * bb_k * std
        out[row, t] = (c[t] - mean) / band + 0.5 if band != 0 else 0.5
        out[row + 1, t] = band / mean
    row += 2

    # ATR (Wilder) / close; true range = max(high, prev close) - min(low, prev close), t >= 1
    tr = np.empty(n)
    tr[0] = h[0] - lo[0]
    for t in range(1, n):
        tr[t] = max(h[t], c[t - 1]) - min(lo[t], c[t - 1])
    size = k_atr.shape[0]
    for t in range(max(first, size), n):
        out[row, t] = _dot(k_atr, tr, t - size + 1) / c[t]
    row += 1

    # volume z-score, 0 on a constant window
    for t in range(max(first, volume_window - 1), n):
        mean, std = _window_mean_std(v, t - volume_window + 1, volume_window, 0)
        out[row, t] = (v[t] - mean) / std if std != 0 else 0.0
    row += 1

    # candle range, distance to moving averages, body and wicks
    for t in range(first, n):
        out[row, t] = math.log(h[t] / lo[t])
    row += 1
    for w in ma_windows:
        for t in range(max(first, w - 1), n):
            out[row, t] = math.log(c[t] / _window_mean(c, t - w + 1, w))
        row += 1
    for t in range(first, n):
        out[row, t] = math.log(c[t] / o[t])
        out[row + 1, t] = math.log(h[t] / max(o[t], c[t]))
        out[row + 2, t] = math.log(min(o[t], c[t]) / lo[t])


_KernelParams = tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, float, np.ndarray, int, np.ndarray
]
"""`_segment_kernel`'s arguments from ``lags`` to ``ma_windows``."""


@functools.lru_cache(maxsize=64)
def _kernel_params(cfg: FeatureConfig) -> _KernelParams:
    """`_segment_kernel`'s configuration arguments for ``cfg`` (EMA weights reversed: oldest first)."""
    tail = cfg.ema_tail

    def weights(alpha: float) -> np.ndarray:
        return np.ascontiguousarray(_ema_kernel(alpha, tail)[::-1])

    return (
        np.array(cfg.return_lags, dtype=np.int64),
        np.array(cfg.volatility_windows, dtype=np.int64),
        weights(_ema_alpha_wilder(cfg.rsi_period)),
        weights(_ema_alpha_span(cfg.macd_fast)),
        weights(_ema_alpha_span(cfg.macd_slow)),
        weights(_ema_alpha_span(cfg.macd_signal)),
        cfg.bollinger_window,
        cfg.bollinger_k,
        weights(_ema_alpha_wilder(cfg.atr_period)),
        cfg.volume_window,
        np.array(cfg.ma_windows, dtype=np.int64),
    )


def segment_features(
    o: np.ndarray, h: np.ndarray, low: np.ndarray, c: np.ndarray, v: np.ndarray, cfg: FeatureConfig, first_row: int = 0
) -> np.ndarray:
    """Features of ONE contiguous segment: (F, n) float32, rows in `feature_names(cfg)` order, NaN
    in each feature's warm-up (its first ``lookback - 1`` rows) and before ``first_row``.

    Inputs are the segment's float64 OHLCV columns (valid candles, positive prices). This is the
    one feature computation: training (`build_feature_matrix`, per segment, ``first_row=0``) and
    serving (the predictor's last window, ``first_row = n - window``) both call it, and a row's
    value depends only on its lookback rows, so both get the same bits for the same candles."""
    n = c.shape[0]
    out = np.empty((_feature_count(cfg), n), dtype=np.float32)
    o, h, low, c, v = (np.ascontiguousarray(x, dtype=np.float64) for x in (o, h, low, c, v))
    _segment_kernel(o, h, low, c, v, *_kernel_params(cfg), max(0, int(first_row)), out)
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
    result = np.empty((_feature_count(cfg), n), dtype=np.float32)  # (F, N)
    segment = frame["segment"].to_numpy() if "segment" in frame.columns else None
    runs = segment_runs(segment, n)
    for start, stop in runs:  # loop over segments only; compiled inside
        o, h, lo, c, v = (arrays[col][start:stop] for col in OHLCV_COLUMNS)
        result[:, start:stop] = segment_features(o, h, lo, c, v, cfg=cfg)
    logger.debug("build_features: %d rows, %d segments, %d features", n, len(runs), result.shape[0])
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
