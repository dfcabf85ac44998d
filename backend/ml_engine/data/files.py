"""Candle files: CSV, Parquet and Feather, one file or a folder of them.

File names follow freqtrade: `ETH_BTC-5m.feather` is symbol "ETH/BTC", timeframe "5m";
`XRP_USDT_USDT-5m-futures.feather` is the ccxt futures symbol "XRP/USDT:USDT". A name
without a timeframe (`ETH_BTC.csv`) takes the median spacing of its data.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from .candles import (
    DEFAULT_MAX_FILL_GAP,
    DEFAULT_MIN_ROWS,
    DEFAULT_SESSION,
    CandleSeries,
    DataValidationError,
    index_to_column,
    validate_candles,
)

logger = logging.getLogger(__name__)

#: Suffixes read, lower case, longest first.
CANDLE_SUFFIXES = (".csv.gz", ".csv", ".parquet", ".pq", ".feather", ".ftr")
_TIMEFRAME_PART = re.compile(r"^\d+[smhdwM]$")


def _suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in CANDLE_SUFFIXES if name.endswith(s)), None)


def is_candle_file(path: Path) -> bool:
    """True for a file with a readable candle suffix."""
    return path.is_file() and _suffix(path) is not None and not path.name.startswith(".")


def parse_candle_filename(path: str | Path) -> tuple[str | None, str | None]:
    """`ETH_BTC-5m.feather` -> ("ETH/BTC", "5m"); `XRP_USDT_USDT-5m-futures` -> ("XRP/USDT:USDT", "5m")."""
    p = Path(path)
    suffix = _suffix(p)
    stem = p.name[: -len(suffix)] if suffix else p.stem
    if not stem:
        return None, None
    parts = stem.split("-")
    pair = parts[0]
    timeframe = parts[1] if len(parts) > 1 and _TIMEFRAME_PART.match(parts[1]) else None
    tokens = pair.split("_")
    if len(tokens) == 2 and all(tokens):
        symbol = f"{tokens[0]}/{tokens[1]}"
    elif len(tokens) == 3 and all(tokens):
        symbol = f"{tokens[0]}/{tokens[1]}:{tokens[2]}"
    else:
        symbol = pair
    return symbol, timeframe


def symbol_to_filename(symbol: str, timeframe: str, suffix: str = ".feather") -> str:
    """Inverse of `parse_candle_filename`: "XRP/USDT:USDT", "5m" -> `XRP_USDT_USDT-5m-futures.feather`."""
    stem = symbol.replace("/", "_").replace(":", "_")
    futures = "-futures" if ":" in symbol else ""
    return f"{stem}-{timeframe}{futures}{suffix}"


def _same_symbol(a: str, b: str) -> bool:
    def norm(s: str) -> str:
        return re.sub(r"[/_:\-]", "_", s.strip().upper())

    return norm(a) == norm(b)


def read_candle_file(path: str | Path) -> pd.DataFrame:
    """The file as a raw frame (no validation); a non-default index becomes a column."""
    p = Path(path)
    source = str(path)
    if not p.exists():
        raise DataValidationError(source, None, "not_found", "no such file or folder")
    suffix = _suffix(p)
    if suffix is None:
        raise DataValidationError(source, None, "unsupported_format", f"expected one of {', '.join(CANDLE_SUFFIXES)}")
    try:
        if suffix in (".csv", ".csv.gz"):
            frame = pd.read_csv(p)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(p)
        else:
            frame = pd.read_feather(p)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataValidationError(source, None, "unreadable", f"{type(exc).__name__}: {exc}") from exc
    return index_to_column(frame)


def load_candle_file(
    path: str | Path,
    symbol: str | None = None,
    timeframe: str | None = None,
    max_fill_gap: int = DEFAULT_MAX_FILL_GAP,
    min_rows: int = DEFAULT_MIN_ROWS,
    session: str = DEFAULT_SESSION,
) -> CandleSeries:
    """Read and validate one file; symbol and timeframe default to the ones in its name."""
    source = str(path)
    name_symbol, name_timeframe = parse_candle_filename(path)
    frame = read_candle_file(path)
    clean, report = validate_candles(
        frame, source, timeframe or name_timeframe, max_fill_gap=max_fill_gap, min_rows=min_rows, session=session
    )
    series = CandleSeries(
        symbol=symbol or name_symbol or Path(path).name,
        timeframe=report.timeframe,
        frame=clean,
        source=source,
        report=report,
    )
    logger.info("loaded %s %s: %d candles from %s", series.symbol, series.timeframe, len(clean), source)
    return series


def load_candle_folder(
    folder: str | Path,
    symbols: list[str] | None = None,
    timeframe: str | None = None,
    max_fill_gap: int = DEFAULT_MAX_FILL_GAP,
    min_rows: int = DEFAULT_MIN_ROWS,
    session: str = DEFAULT_SESSION,
) -> list[CandleSeries]:
    """Every candle file in `folder` (not recursive), optionally only `symbols` / `timeframe`.

    A file whose name carries another timeframe is skipped; a requested symbol with no
    file raises (rule symbol_not_found).
    """
    root = Path(folder)
    source = str(folder)
    if not root.is_dir():
        raise DataValidationError(source, None, "not_found", "no such folder")
    files = sorted(p for p in root.iterdir() if is_candle_file(p))
    chosen: list[tuple[Path, str | None]] = []
    found: list[str] = []
    for p in files:
        sym, tf = parse_candle_filename(p)
        found.append(f"{sym} {tf or '?'}")
        if timeframe is not None and tf is not None and tf != timeframe:
            continue
        if symbols and not any(_same_symbol(sym or "", s) for s in symbols):
            continue
        chosen.append((p, sym))
    if symbols:
        for wanted in symbols:
            if not any(_same_symbol(sym or "", wanted) for _, sym in chosen):
                raise DataValidationError(
                    source,
                    None,
                    "symbol_not_found",
                    f"no file for {wanted}{' ' + timeframe if timeframe else ''}; found: {', '.join(found) or 'none'}",
                )
    if not chosen:
        raise DataValidationError(
            source,
            None,
            "no_files",
            f"no candle file{' for timeframe ' + timeframe if timeframe else ''} "
            f"({', '.join(CANDLE_SUFFIXES)}); found: {', '.join(found) or 'none'}",
        )
    return [
        load_candle_file(p, timeframe=timeframe, max_fill_gap=max_fill_gap, min_rows=min_rows, session=session)
        for p, _ in chosen
    ]
