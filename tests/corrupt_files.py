"""Real candle files, each corrupted to break one validation rule.

Every function takes a folder (pytest's tmp_path), writes a corrupted copy of the bundled
ETH_BTC-5m sample there and returns `Corruption(path, message, rule)`: the exact
`str(DataValidationError)` that loading the file with default settings must raise.
`CORRUPTIONS` lists them all (reused by the CLI exit-code tests).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

SAMPLE = Path(__file__).resolve().parents[1] / "backend" / "ml_engine" / "sample_data" / "ETH_BTC-5m.feather"


class Corruption(NamedTuple):
    path: Path
    message: str
    rule: str


def real_candles() -> pd.DataFrame:
    """The bundled ETH/BTC 5m candles (5,760 rows, no gaps), columns date + OHLCV."""
    return pd.read_feather(SAMPLE)


def _csv(frame: pd.DataFrame, folder: Path, name: str = "ETH_BTC-5m.csv") -> Path:
    path = Path(folder) / name
    frame.to_csv(path, index=False)
    return path


def _g(value: float) -> str:
    return format(float(value), ".10g")


def missing_column(folder: Path) -> Corruption:
    """CSV without its volume column."""
    path = _csv(real_candles().drop(columns=["volume"]), folder)
    return Corruption(
        path, f"{path}: missing_column: no 'volume' column; columns: date, open, high, low, close", "missing_column"
    )


def missing_time_column(folder: Path) -> Corruption:
    """Parquet whose time column has an unknown name."""
    path = Path(folder) / "ETH_BTC-5m.parquet"
    real_candles().rename(columns={"date": "when"}).to_parquet(path)
    return Corruption(
        path,
        f"{path}: missing_column: no time column (date, datetime, timestamp, time or an unnamed first column); "
        "columns: when, open, high, low, close, volume",
        "missing_column",
    )


def bad_timestamp(folder: Path) -> Corruption:
    """CSV with a time that is not a time at data row 10."""
    frame = real_candles()
    frame["date"] = frame["date"].astype(str).astype(object)
    frame.loc[9, "date"] = "not a date"
    path = _csv(frame, folder)
    return Corruption(
        path, f"{path}: row 10: bad_timestamp: 'not a date' is not an ISO 8601 time or an epoch number", "bad_timestamp"
    )


def mixed_timezones(folder: Path) -> Corruption:
    """CSV of ISO strings, row 6 written with a +02:00 offset (same instant, other zone)."""
    frame = real_candles()
    text = frame["date"].astype(str).astype(object)
    local = frame.loc[5, "date"].tz_convert("Etc/GMT-2").isoformat()  # Etc/GMT-2 is UTC+2
    text[5] = local
    frame["date"] = text
    path = _csv(frame, folder)
    return Corruption(
        path, f"{path}: row 6: mixed_timezones: {local!r} has +02:00, row 1 has +00:00", "mixed_timezones"
    )


def nan_close(folder: Path) -> Corruption:
    """CSV with an empty close at data row 100."""
    frame = real_candles()
    frame.loc[99, "close"] = np.nan
    path = _csv(frame, folder)
    return Corruption(path, f"{path}: row 100: non_finite: close is NaN", "non_finite")


def inf_volume(folder: Path) -> Corruption:
    """Parquet with an infinite volume at data row 250."""
    frame = real_candles()
    frame.loc[249, "volume"] = np.inf
    path = Path(folder) / "ETH_BTC-5m.parquet"
    frame.to_parquet(path)
    return Corruption(path, f"{path}: row 250: non_finite: volume is inf", "non_finite")


def text_price(folder: Path) -> Corruption:
    """CSV with a word in the open column at data row 42."""
    frame = real_candles()
    frame["open"] = frame["open"].astype(object)
    frame.loc[41, "open"] = "abc"
    path = _csv(frame, folder)
    return Corruption(path, f"{path}: row 42: non_finite: open is 'abc', not a number", "non_finite")


def negative_price(folder: Path) -> Corruption:
    """CSV with a negative low at data row 50."""
    frame = real_candles()
    frame.loc[49, "low"] = -0.01
    path = _csv(frame, folder)
    return Corruption(path, f"{path}: row 50: non_positive_price: low is -0.01", "non_positive_price")


def zero_price(folder: Path) -> Corruption:
    """Feather with a zero open at data row 7."""
    frame = real_candles()
    frame.loc[6, "open"] = 0.0
    path = Path(folder) / "ETH_BTC-5m.feather"
    frame.to_feather(path)
    return Corruption(path, f"{path}: row 7: non_positive_price: open is 0", "non_positive_price")


def swapped_high_low(folder: Path) -> Corruption:
    """CSV with high and low swapped at data row 200."""
    frame = real_candles()
    high, low = frame.loc[199, "high"], frame.loc[199, "low"]
    assert high > low
    frame.loc[199, ["high", "low"]] = [low, high]
    path = _csv(frame, folder)
    return Corruption(path, f"{path}: row 200: high_below_low: high {_g(low)} < low {_g(high)}", "high_below_low")


def close_above_high(folder: Path) -> Corruption:
    """Feather with a close 1% above the high at data row 300."""
    frame = real_candles()
    close = frame.loc[299, "high"] * 1.01
    frame.loc[299, "close"] = close
    low, high = frame.loc[299, "low"], frame.loc[299, "high"]
    path = Path(folder) / "ETH_BTC-5m.feather"
    frame.to_feather(path)
    return Corruption(
        path,
        f"{path}: row 300: price_outside_range: close {_g(close)} is outside [low {_g(low)}, high {_g(high)}]",
        "price_outside_range",
    )


def negative_volume(folder: Path) -> Corruption:
    """CSV with a volume of -5 at data row 400."""
    frame = real_candles()
    frame.loc[399, "volume"] = -5.0
    path = _csv(frame, folder)
    return Corruption(path, f"{path}: row 400: negative_volume: volume is -5", "negative_volume")


def duplicate_conflict(folder: Path) -> Corruption:
    """CSV where row 20 is repeated as row 21 with another close (still inside [low, high])."""
    frame = real_candles()
    copy = frame.iloc[[19]].copy()
    copy["close"] = (copy["high"] + copy["low"]) / 2
    assert copy["close"].iloc[0] != frame.loc[19, "close"]
    frame = pd.concat([frame.iloc[:20], copy, frame.iloc[20:]], ignore_index=True)
    path = _csv(frame, folder)
    when = frame.loc[19, "date"]
    return Corruption(
        path,
        f"{path}: row 21: duplicate_conflict: timestamp {when} repeats row 20 with different values",
        "duplicate_conflict",
    )


def wrong_timeframe_in_name(folder: Path) -> Corruption:
    """5-minute candles in a file named 1h."""
    path = _csv(real_candles(), folder, "ETH_BTC-1h.csv")
    return Corruption(
        path, f"{path}: timeframe_mismatch: median spacing of the data is 5m, timeframe is 1h", "timeframe_mismatch"
    )


def off_grid_timestamp(folder: Path) -> Corruption:
    """CSV with the time of data row 30 moved by 2 minutes (off the 5m grid)."""
    frame = real_candles()
    frame.loc[29, "date"] = frame.loc[29, "date"] + pd.Timedelta(minutes=2)
    path = _csv(frame, folder)
    return Corruption(
        path,
        f"{path}: row 30: timeframe_mismatch: {frame.loc[29, 'date']} is not on the 5m grid of {frame.loc[0, 'date']}",
        "timeframe_mismatch",
    )


def too_few_rows(folder: Path, min_rows: int = 2) -> Corruption:
    """CSV with a single candle (fewer than any window needs)."""
    path = _csv(real_candles().iloc[:1], folder)
    return Corruption(path, f"{path}: too_few_rows: 1 row, need at least {min_rows}", "too_few_rows")


CORRUPTIONS: list[Callable[[Path], Corruption]] = [
    missing_column,
    missing_time_column,
    bad_timestamp,
    mixed_timezones,
    nan_close,
    inf_volume,
    text_price,
    negative_price,
    zero_price,
    swapped_high_low,
    close_above_high,
    negative_volume,
    duplicate_conflict,
    wrong_timeframe_in_name,
    off_grid_timestamp,
    too_few_rows,
]
