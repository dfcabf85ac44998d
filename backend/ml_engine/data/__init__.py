"""Market data: load candles from files, PostgreSQL or an exchange, validated by one policy.

>>> series = load_candles("backend/ml_engine/sample_data", symbols=["ETH/BTC"], timeframe="5m")
>>> series[0].frame.columns.tolist()
['timestamp', 'open', 'high', 'low', 'close', 'volume', 'segment']
"""

from __future__ import annotations

from pathlib import Path

from .candles import (
    DEFAULT_MAX_FILL_GAP,
    DEFAULT_MIN_ROWS,
    DEFAULT_SESSION,
    SESSIONS,
    CandleSeries,
    DataValidationError,
    LongGap,
    ValidationReport,
    take_last_days,
    timedelta_to_timeframe,
    timeframe_to_timedelta,
    validate_candles,
)
from .exchange import download_candles
from .files import _same_symbol, load_candle_file, load_candle_folder, parse_candle_filename, read_candle_file
from .postgres import (
    DEFAULT_TABLE,
    load_candles_from_postgres,
    mask_url,
    source_name,
    write_candles_to_postgres,
)

__all__ = [
    "DEFAULT_MAX_FILL_GAP",
    "DEFAULT_MIN_ROWS",
    "DEFAULT_SESSION",
    "SESSIONS",
    "CandleSeries",
    "DataValidationError",
    "LongGap",
    "ValidationReport",
    "download_candles",
    "is_postgres_url",
    "load_candle_file",
    "load_candle_folder",
    "load_candles",
    "load_candles_from_postgres",
    "mask_url",
    "parse_candle_filename",
    "read_candle_file",
    "take_last_days",
    "timedelta_to_timeframe",
    "timeframe_to_timedelta",
    "validate_candles",
    "write_candles_to_postgres",
]


def is_postgres_url(source: str | Path) -> bool:
    """True for postgresql://, postgresql+driver:// and postgres:// URLs."""
    return isinstance(source, str) and source.split("://", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def load_candles(
    source: str | Path,
    symbols: list[str] | None = None,
    timeframe: str | None = None,
    max_fill_gap: int = DEFAULT_MAX_FILL_GAP,
    min_rows: int = DEFAULT_MIN_ROWS,
    date_range_days: float | None = None,
    table: str = DEFAULT_TABLE,
    session: str = DEFAULT_SESSION,
) -> list[CandleSeries]:
    """Load a file, a folder or `postgresql://user@host/db[#table]` (symbols and timeframe required).

    With `date_range_days`, each series is cut to its last N days (error if it holds fewer).
    `session` ("auto", "24/7", "weekdays") says when the market is closed: closures are not gaps
    (`data.candles`, Sessions).
    """
    if is_postgres_url(source):
        src = str(source)
        if "#" in src:
            src, table = src.split("#", 1)
        if not symbols or not timeframe:
            raise DataValidationError(
                source_name(src, table), None, "missing_argument", "a PostgreSQL source needs symbols and a timeframe"
            )
        series = [
            load_candles_from_postgres(
                src, table, s, timeframe, max_fill_gap=max_fill_gap, min_rows=min_rows, session=session
            )
            for s in symbols
        ]
    elif Path(source).is_dir():
        series = load_candle_folder(
            source, symbols, timeframe, max_fill_gap=max_fill_gap, min_rows=min_rows, session=session
        )
    else:
        name_symbol, _ = parse_candle_filename(source)
        named = name_symbol is not None and "_" in Path(source).name.split("-")[0]
        if symbols and named and name_symbol is not None and not any(_same_symbol(name_symbol, s) for s in symbols):
            raise DataValidationError(
                str(source), None, "symbol_not_found", f"the file holds {name_symbol}, not {', '.join(symbols)}"
            )
        # a file named without a pair (data.csv) takes the one symbol asked for
        symbol = symbols[0] if symbols and len(symbols) == 1 and not named else None
        series = [
            load_candle_file(
                source,
                symbol=symbol,
                timeframe=timeframe,
                max_fill_gap=max_fill_gap,
                min_rows=min_rows,
                session=session,
            )
        ]
    if date_range_days is not None:
        series = [take_last_days(s, date_range_days) for s in series]
    return series
