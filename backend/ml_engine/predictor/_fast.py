"""The fast paths of one prediction: what the request path does instead of the general code when
that gives the same bits.

Validation
----------
A frame that is already clean (sorted unique timestamps on the timeframe grid, no gap, finite
valid prices: what the bot's candle feed gives) is recognised by a compiled check (`_fast_clean`)
that accepts only frames `validate_candles` would return unchanged, and skips its ~2.5 ms of
pandas work; anything else goes through `validate_candles` (`._request.clean_candles`).

The last window
---------------
`_LastWindow` calls the training feature function (`features.segment_features`, only for the last
``window`` rows) and the version's `Normalizer` directly on numpy columns of the last
``min_history_rows`` candles, skipping the DataFrame wrapper of `build_inference_windows`
(~0.2 ms); for every version it loads, the predictor checks that this gives the same bits as
`build_inference_windows` on synthetic candles (`_LastWindow.verify`, `_synthetic_tail`) and
otherwise uses the latter.

Small things
------------
`_iso_utc` writes the candle time through `datetime` (a few microseconds instead of pandas'
Timestamp machinery); `_softmax_row` is the softmax of one row of logits in Python floats.
"""

from __future__ import annotations

import datetime
import functools
import math
from collections.abc import Mapping
from typing import Any

import numba
import numpy as np
import pandas as pd

from ..data.candles import find_time_column, timeframe_to_timedelta
from ..features import FeatureConfig, segment_features
from ..pipeline import Normalizer, build_inference_windows, parse_pipeline

__all__ = [
    "OHLCV",
    "_LastWindow",
    "_fast_clean",
    "_iso_utc",
    "_softmax",
    "_softmax_row",
    "_synthetic_tail",
]

OHLCV: tuple[str, ...] = ("open", "high", "low", "close", "volume")


# --------------------------------------------------------------------------------------------
# the last window without the DataFrame wrapper
# --------------------------------------------------------------------------------------------


class _LastWindow:
    """The normalised last window of a tail of exactly ``min_history_rows`` candles.

    Calls the training feature function (`features.segment_features`, what `build_feature_matrix`
    runs per segment) and `Normalizer.transform` directly on numpy columns, skipping the
    DataFrame construction, pipeline parsing and window bookkeeping of `build_inference_windows`
    (~0.2 ms per prediction). Same functions on the same rows give the same bits; the bundle
    loader checks that for every version it loads (`verify`) and otherwise uses
    `build_inference_windows`.
    """

    def __init__(self, pipeline: Mapping[str, Any]) -> None:
        cfg, norm, window = parse_pipeline(pipeline)
        self.cfg: FeatureConfig = cfg
        self.norm: Normalizer = norm
        self.window = window
        self.rows = int(pipeline["min_history_rows"])

    def __call__(self, tail: np.ndarray) -> np.ndarray:
        """tail: (5, min_history_rows) float64 OHLCV rows, oldest first -> (1, T, F) float32."""
        t = self.window
        block = segment_features(
            tail[0], tail[1], tail[2], tail[3], tail[4], cfg=self.cfg, first_row=tail.shape[1] - t
        )  # (F, rows) float32, last t rows computed
        out = np.empty((1, t, block.shape[0]), dtype=np.float32)
        out[0] = block[:, -t:].T
        if np.isnan(out).any():
            raise ValueError("last window has NaN features (tail shorter than the feature lookback?)")
        window: np.ndarray = self.norm.transform(out, inplace=True)
        return window

    def verify(self, pipeline: Mapping[str, Any], seeds: tuple[int, ...] = (0, 1, 2)) -> float | None:
        """None when the windows equal `build_inference_windows`' bit for bit on synthetic candles;
        else the max abs difference (or inf when one path fails)."""
        worst = 0.0
        for seed in seeds:
            tail = _synthetic_tail(self.rows, seed)
            frame = pd.DataFrame({c: tail[j] for j, c in enumerate(OHLCV)})
            try:
                ref = build_inference_windows(frame, pipeline, last_only=True)
                got = self(tail)
            except Exception:  # noqa: BLE001 - any failure disables the direct path
                return math.inf
            if ref.shape != got.shape:
                return math.inf
            if not np.array_equal(ref, got):
                worst = max(worst, float(np.nanmax(np.abs(ref.astype(np.float64) - got))))
        return worst or None


def _synthetic_tail(rows: int, seed: int) -> np.ndarray:
    """(5, rows) valid OHLCV: a random walk with spread, a few flat candles and zero volumes."""
    rng = np.random.default_rng(seed)
    close = 0.05 * np.exp(np.cumsum(rng.normal(0.0, 0.003, rows)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.001, rows)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.001, rows)))
    volume = rng.lognormal(3.0, 1.0, rows)
    flat = rng.random(rows) < 0.05  # forward-filled candles: OHLC = previous close, volume 0
    open_[flat] = high[flat] = low[flat] = close[flat] = np.concatenate(([close[0]], close[:-1]))[flat]
    volume[flat] = 0.0
    return np.ascontiguousarray(np.stack([open_, high, low, close, volume]))


# --------------------------------------------------------------------------------------------
# softmax
# --------------------------------------------------------------------------------------------


def _softmax_row(logits: np.ndarray) -> list[float]:
    """Softmax of one row of logits as Python floats, in float64 like `_softmax` (equal to it up
    to the last bit or two), without six numpy calls on three numbers."""
    z: list[float] = logits.tolist()
    top = max(z)
    e = [math.exp(v - top) for v in z]
    total = math.fsum(e)
    return [v / total for v in e]


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


# --------------------------------------------------------------------------------------------
# fast path of validation
# --------------------------------------------------------------------------------------------

_NAT = np.iinfo(np.int64).min


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _iso_utc(ns: int) -> str:
    """ISO 8601 UTC of nanoseconds since the epoch, as ``pd.Timestamp(ns, tz="UTC").isoformat()``
    writes it; through `datetime` (a few microseconds instead of pandas' Timestamp machinery)
    unless there are nanoseconds that `datetime` cannot hold."""
    if ns % 1000:
        text: str = pd.Timestamp(ns, tz="UTC").isoformat()
        return text
    return (_EPOCH + datetime.timedelta(microseconds=ns // 1000)).isoformat()


@functools.lru_cache(maxsize=256)
def _column_layout(columns: tuple[Any, ...]) -> tuple[int, ...] | None:
    """Positions of (time, open, high, low, close, volume) in a frame with these columns, as
    `validate_candles` resolves the names; None if one is missing or a name repeats (then
    validation must run). Cached: a bot sends frames of the same layout on every request."""
    if len(set(columns)) != len(columns):
        return None
    time_col = find_time_column(list(columns))
    if time_col is None:
        return None
    lower: dict[str, int] = {}
    for pos, col in enumerate(columns):
        lower.setdefault(str(col).strip().lower(), pos)
    ohlcv = [lower.get(name) for name in OHLCV]
    positions = [pos for pos in ohlcv if pos is not None]
    if len(positions) != len(ohlcv):
        return None
    return (columns.index(time_col), *positions)


def _column_values(frame: pd.DataFrame, pos: int) -> Any:
    """The stored array (numpy or extension) of column ``pos``, read only.

    pandas' ``frame[name]`` builds a Series per call (~20 us, most of the fast path's time on a
    bot-sized frame); ``DataFrame._get_column_array`` returns the block's array without one. It
    is private, so any pandas without it takes the public route; the values are the same
    (tests/test_predictor.py compares the fast path with `validate_candles` on many frames)."""
    getter = getattr(frame, "_get_column_array", None)
    if getter is not None:
        return getter(pos)
    values = frame.iloc[:, pos].array
    return values.to_numpy() if isinstance(values, pd.arrays.NumpyExtensionArray) else values


@functools.lru_cache(maxsize=64)
def _step_ns(timeframe: str) -> int | None:
    try:
        return int(timeframe_to_timedelta(timeframe).value)
    except ValueError:
        return None


def _fast_clean(frame: pd.DataFrame, timeframe: str | None, min_rows: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(ts_ns, OHLCV (5, n) float64) when `validate_candles` would return ``frame`` unchanged as one
    segment (no repair, no error); None when it might not (then it must run).

    Accepted: a 0..n-1 RangeIndex, the time column `validate_candles` would pick holding
    datetimes (naive = UTC), numpy numeric OHLCV columns, unique column names, at least
    ``min_rows`` rows, timestamps exactly one timeframe apart (so sorted, unique, on the grid, no
    gap), finite values, positive prices, low <= open, close <= high, volume >= 0."""
    n = len(frame)
    if n < max(min_rows, 2):
        return None
    index = frame.index
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        return None
    try:
        layout = _column_layout(tuple(frame.columns))
    except TypeError:  # an unhashable column label
        return None
    if layout is None:
        return None
    arr = _column_values(frame, layout[0])
    if isinstance(arr, np.ndarray) and arr.dtype.kind == "M":
        arr = pd.array(arr)  # naive datetimes as numpy (the public route)
    if not isinstance(arr, pd.arrays.DatetimeArray):
        return None
    values = np.empty((5, n), dtype=np.float64)
    for j, pos in enumerate(layout[1:]):
        col = _column_values(frame, pos)
        if not isinstance(col, np.ndarray) or col.dtype.kind not in "fiu":
            return None
        values[j] = col
    # arr: DatetimeArray, int64 since the epoch (UTC for tz-aware), NaT = int64 min
    if arr.unit != "ns":
        arr = arr.as_unit("ns")
    ts_ns: np.ndarray = arr.asi8  # naive times are taken as UTC, as validate_candles does
    step = _step_ns(timeframe) if timeframe else 0
    if step is None:
        return None
    return (ts_ns, values) if _clean_arrays(ts_ns, values, step) else None


@numba.njit(cache=True, nogil=True)
def _clean_arrays(ts_ns: np.ndarray, values: np.ndarray, step: int) -> bool:  # pragma: no cover - compiled
    """True when the times are exactly ``step`` ns apart (the first difference when ``step`` is 0;
    NaT, unsorted, duplicate or gap -> False) and every candle is valid: finite, 0 < low <=
    open, close <= high, 0 <= volume (NaN fails every comparison). One compiled pass instead of
    ~15 numpy calls."""
    n = ts_ns.shape[0]
    if n < 2 or ts_ns[0] == _NAT:
        return False
    if step == 0:
        step = ts_ns[1] - ts_ns[0]
    if step <= 0:
        return False
    for t in range(1, n):
        if ts_ns[t] == _NAT or ts_ns[t] - ts_ns[t - 1] != step:
            return False
    for t in range(n):
        o, h, lo, c, v = values[0, t], values[1, t], values[2, t], values[3, t], values[4, t]
        if not (lo > 0 and lo <= o <= h and lo <= c <= h and h < np.inf and 0 <= v < np.inf):
            return False
    return True
