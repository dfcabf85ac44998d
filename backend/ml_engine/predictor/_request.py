"""One request on a loaded `ModelBundle`: candles -> the last window -> probabilities -> signal.

`Predictor.predict` and the pyfunc flavor (`._pyfunc`) run these same functions, so the two give
the same probabilities, signals and error messages.

Candles
-------
A request takes a DataFrame with a time column and OHLCV (any column case, as
`data.validate_candles` accepts), oldest first. The data policy of training applies: the frame
is validated by `validate_candles` with the model's timeframe and the default ``max_fill_gap``
(short gaps forward-filled, longer ones split segments, NaN / non-positive prices / high < low
refused with a `DataValidationError` naming the row and rule; unsorted rows and identical
duplicates are repaired). A frame that is already clean is recognised by the compiled check
`._fast._fast_clean` and skips that pandas work. The last window needs
``pipeline["min_history_rows"]`` (feature lookback + window - 1) consecutive candles in the last
segment; fewer is a `DataValidationError` with rule ``too_few_rows``.

Features are computed only on the last ``min_history_rows`` candles: every feature at row t is
computed from rows ``t - lookback + 1 .. t`` only (`features` module contract), so this gives the
training features bit for bit (tests/test_features.py), and its cost does not grow with the frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..data.candles import DataValidationError, validate_candles
from ..pipeline import build_inference_windows
from ._bundle import ModelBundle
from ._fast import OHLCV, _fast_clean, _iso_utc, _softmax_row

__all__ = ["SIGNALS", "build_window", "clean_candles", "decide", "predict_last", "too_few"]

#: Trading signal per class name.
SIGNALS: dict[str, str] = {"down": "sell", "flat": "hold", "up": "buy"}


def clean_candles(
    candles: pd.DataFrame, bundle: ModelBundle, source: str, max_fill_gap: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(ts_ns int64 (n,), OHLCV float64 (5, n), segment int64 (n,) or None = one segment): the
    frame as `validate_candles` returns it, through a fast check when it needs no repair."""
    if not isinstance(candles, pd.DataFrame):
        raise TypeError(f"candles must be a pandas DataFrame, got {type(candles).__name__}")
    fast = _fast_clean(candles, bundle.timeframe, bundle.min_history_rows)
    if fast is not None:
        return fast[0], fast[1], None
    try:
        clean, _ = validate_candles(candles, source, bundle.timeframe, max_fill_gap=max_fill_gap, min_rows=1)
    except DataValidationError as exc:
        if exc.rule == "too_few_rows":
            raise too_few(bundle, source, len(candles), "") from None
        raise
    ts: np.ndarray = clean["timestamp"].array.asi8
    values = np.stack([clean[c].to_numpy(dtype=np.float64) for c in OHLCV])  # (5, n)
    return ts, values, clean["segment"].to_numpy()


def too_few(bundle: ModelBundle, source: str, have: int, where: str) -> DataValidationError:
    return DataValidationError(
        source,
        None,
        "too_few_rows",
        f"{where or 'the frame has'} {have} candles; model {bundle.model_name} v{bundle.version} needs "
        f"{bundle.min_history_rows} consecutive candles (pipeline min_history_rows: feature lookback "
        f"{bundle.pipeline.get('lookback_rows')} + window {bundle.window} - 1)",
    )


def build_window(candles: pd.DataFrame, bundle: ModelBundle, source: str, max_fill_gap: int) -> tuple[np.ndarray, str]:
    """Model input of the last window: ``((1, T, F) float32, ISO time of the last candle)``.

    Features are computed on the last ``min_history_rows`` candles of the last segment only."""
    need = bundle.min_history_rows
    ts, values, segment = clean_candles(candles, bundle, source, max_fill_gap)
    n = ts.shape[0]
    start = 0
    if segment is not None and n:
        start = int(np.searchsorted(segment, segment[-1], side="left"))  # segment ids are non-decreasing
    if n - start < need:
        where = (
            f"the last contiguous run (after the gap before {pd.Timestamp(int(ts[start]), tz='UTC').isoformat()}) has"
            if start
            else ""
        )
        raise too_few(bundle, source, n - start, where)
    tail = values[:, n - need :]  # (5, need); each row contiguous
    if bundle.last_window is not None:
        x = bundle.last_window(tail)
    else:
        frame = pd.DataFrame({c: tail[j] for j, c in enumerate(OHLCV)}, copy=False)
        x = np.ascontiguousarray(build_inference_windows(frame, bundle.pipeline, last_only=True), dtype=np.float32)
    return x, _iso_utc(int(ts[-1]))


def predict_last(candles: pd.DataFrame, bundle: ModelBundle, source: str, max_fill_gap: int) -> tuple[list[float], str]:
    """(softmax probabilities in class order, ISO time of the last candle) of the last window."""
    x, candle_time = build_window(candles, bundle, source, max_fill_gap)
    return _softmax_row(bundle.runner(x)[0]), candle_time


def decide(class_names: Sequence[str], probs: Sequence[float], min_confidence: float) -> tuple[str, float]:
    """(signal, confidence): the arg-max class's signal, ``"hold"`` when its probability is below
    ``min_confidence``."""
    idx = max(range(len(probs)), key=probs.__getitem__)  # the first maximum, as np.argmax
    confidence = float(probs[idx])
    signal = SIGNALS.get(class_names[idx], "hold")
    if confidence < min_confidence:
        signal = "hold"
    return signal, confidence
