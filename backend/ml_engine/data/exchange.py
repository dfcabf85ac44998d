"""Candles downloaded from an exchange through ccxt (optional extra `exchange`), cached as Feather.

The cache file is named like freqtrade's (`<cache_dir>/<exchange>/ETH_BTC-5m.feather`);
a second call fetches only candles newer than the cache (and older ones if more days
are asked for than it holds). Only closed candles are kept.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .candles import (
    DEFAULT_MAX_FILL_GAP,
    DEFAULT_MIN_ROWS,
    CandleSeries,
    DataValidationError,
    timeframe_to_timedelta,
    validate_candles,
)
from .files import symbol_to_filename

logger = logging.getLogger(__name__)

PAGE_LIMIT = 1000
_MAX_PAGES = 100_000  # a guard against an exchange that never advances
_COLUMNS = ["date", "open", "high", "low", "close", "volume"]


class OHLCVExchange(Protocol):
    """The part of a ccxt exchange used here."""

    def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1m", since: int | None = None, limit: int | None = None
    ) -> list[list[float]]: ...


def make_exchange(exchange_id: str = "binance") -> Any:
    """A ccxt exchange with rate limiting; needs `pip install 'trading-bot-ml-engine[exchange]'`."""
    try:
        import ccxt  # optional dependency
    except ImportError as exc:  # pragma: no cover - ccxt is in the test extra
        raise ImportError("downloading candles needs ccxt: pip install 'trading-bot-ml-engine[exchange]'") from exc
    if not hasattr(ccxt, exchange_id):
        raise ValueError(f"ccxt has no exchange {exchange_id!r}")
    return getattr(ccxt, exchange_id)({"enableRateLimit": True})


def cache_path(cache_dir: str | Path, exchange_id: str, symbol: str, timeframe: str) -> Path:
    """`<cache_dir>/<exchange_id>/ETH_BTC-5m.feather`."""
    return Path(cache_dir) / exchange_id / symbol_to_filename(symbol, timeframe)


def _timeframe_ms(exchange: Any, timeframe: str) -> int:
    timeframes = getattr(exchange, "timeframes", None)
    if timeframes and timeframe not in timeframes:
        raise DataValidationError(
            f"ccxt:{getattr(exchange, 'id', '?')}",
            None,
            "timeframe_mismatch",
            f"the exchange has no timeframe {timeframe}; it has {', '.join(timeframes)}",
        )
    parse = getattr(exchange, "parse_timeframe", None)
    seconds = parse(timeframe) if callable(parse) else timeframe_to_timedelta(timeframe).total_seconds()
    return int(seconds * 1000)


def _now_ms(now: datetime | pd.Timestamp | int | None) -> int:
    if now is None:
        return int(pd.Timestamp.now(tz="UTC").value // 1_000_000)
    if isinstance(now, (int, np.integer)):
        return int(now)
    ts = pd.Timestamp(now)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def _fetch_range(exchange: Any, symbol: str, timeframe: str, tf_ms: int, since: int, until: int) -> list[list[float]]:
    """Closed candles with since <= t < until, paging `fetch_ohlcv` by PAGE_LIMIT."""
    rows: list[list[float]] = []
    pages = 0
    while since < until and pages < _MAX_PAGES:
        batch = exchange.fetch_ohlcv(symbol, timeframe, since=since, limit=PAGE_LIMIT)
        pages += 1
        if not batch:
            break
        rows.extend(r[:6] for r in batch if since <= r[0] < until)
        last = int(batch[-1][0])
        if last < since:
            break
        since = last + tf_ms
    logger.debug("fetched %d candles of %s %s in %d pages", len(rows), symbol, timeframe, pages)
    return rows


def _read_cache(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    frame = pd.read_feather(path)
    frame["date"] = pd.to_datetime(frame["date"], utc=True).dt.as_unit("ns")
    return frame


def download_candles(
    symbol: str,
    timeframe: str,
    days: float,
    cache_dir: str | Path,
    exchange: Any | None = None,
    exchange_id: str = "binance",
    now: datetime | pd.Timestamp | int | None = None,
    max_fill_gap: int = DEFAULT_MAX_FILL_GAP,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> CandleSeries:
    """The last `days` days of closed candles, from the cache topped up from the exchange.

    `exchange` is any object with ccxt's `fetch_ohlcv` (tests inject a fake); None builds
    `ccxt.<exchange_id>()`. `now` (datetime or epoch ms) defaults to the current time.
    """
    if days <= 0:
        raise ValueError("days must be positive")
    if exchange is None:
        exchange = make_exchange(exchange_id)
    exchange_id = getattr(exchange, "id", None) or exchange_id
    source = f"ccxt:{exchange_id}"
    tf_ms = _timeframe_ms(exchange, timeframe)
    now_ms = _now_ms(now)
    until = now_ms - now_ms % tf_ms  # open time of the candle still forming: excluded
    start = until - int(days * 86_400_000)
    start -= start % tf_ms

    path = cache_path(cache_dir, exchange_id, symbol, timeframe)
    cached = _read_cache(path)
    new_rows: list[list[float]] = []
    if cached is None or cached.empty:
        new_rows += _fetch_range(exchange, symbol, timeframe, tf_ms, start, until)
    else:
        first = int(cached["date"].iloc[0].value // 1_000_000)
        last = int(cached["date"].iloc[-1].value // 1_000_000)
        if start < first:
            new_rows += _fetch_range(exchange, symbol, timeframe, tf_ms, start, first)
        new_rows += _fetch_range(exchange, symbol, timeframe, tf_ms, max(last + tf_ms, start), until)
    logger.info("%s %s %s: %d new candles from the exchange", source, symbol, timeframe, len(new_rows))

    fresh = pd.DataFrame(new_rows, columns=_COLUMNS)
    fresh["date"] = pd.to_datetime(fresh["date"].astype("int64"), unit="ms", utc=True).dt.as_unit("ns")
    for col in _COLUMNS[1:]:
        fresh[col] = pd.to_numeric(fresh[col], errors="coerce").astype("float64")
    merged = fresh if cached is None else pd.concat([cached[_COLUMNS], fresh], ignore_index=True)
    merged = merged.drop_duplicates("date", keep="last").sort_values("date").reset_index(drop=True)
    if new_rows:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        merged.to_feather(tmp)
        os.replace(tmp, path)

    start_ts = pd.Timestamp(start, unit="ms", tz="UTC")
    window = merged[merged["date"] >= start_ts].reset_index(drop=True)
    clean, report = validate_candles(window, source, timeframe, max_fill_gap=max_fill_gap, min_rows=min_rows)
    return CandleSeries(symbol=symbol, timeframe=timeframe, frame=clean, source=source, report=report)
