"""Candles in a PostgreSQL table: symbol, timeframe, timestamp (timestamptz), open, high, low, close, volume.

The table name is checked as an identifier (optionally `schema.table`) and quoted by
SQLAlchemy; values are bound parameters. `source` strings never carry the password.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import URL, make_url

from .candles import (
    DEFAULT_MAX_FILL_GAP,
    DEFAULT_MIN_ROWS,
    DEFAULT_SESSION,
    CandleSeries,
    DataValidationError,
    validate_candles,
)

logger = logging.getLogger(__name__)

DEFAULT_TABLE = "candles"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _url(url: str | URL) -> URL:
    if isinstance(url, str):
        url = url.split("#", 1)[0]
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
    return make_url(url)


def engine_url(url: str | URL) -> URL:
    """The SQLAlchemy URL to connect with: a bare `postgresql://` uses psycopg2 when psycopg 3 is absent.

    (SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; this project installs psycopg2.)
    """
    u = _url(url)
    if u.drivername == "postgresql":
        try:
            import psycopg  # noqa: F401
        except ImportError:
            u = u.set(drivername="postgresql+psycopg2")
    return u


def _engine(url: str | URL) -> sa.Engine:
    return sa.create_engine(engine_url(url))


def mask_url(url: str | URL) -> str:
    """The URL without its password (masked by :func:`~backend.ml_engine.mlflow_integration.stores.mask_uri`,
    the one masker) and without query parameters."""
    from backend.ml_engine.mlflow_integration.stores import MASK, mask_uri

    try:
        u = _url(url)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as nothing but its scheme
        return str(url).split(":", 1)[0] + f"://{MASK}"
    return mask_uri(u.set(query={}).render_as_string(hide_password=False))


def source_name(url: str | URL, table: str) -> str:
    """`postgresql://user:***@host:5432/db#table`."""
    return f"{mask_url(url)}#{table}"


def split_table(url: str | URL, table: str) -> tuple[str | None, str]:
    """Validate `table` or `schema.table` as SQL identifiers; anything else is refused."""
    parts = table.split(".") if isinstance(table, str) else []
    if not 1 <= len(parts) <= 2 or not all(_IDENTIFIER.match(p) for p in parts):
        raise DataValidationError(
            mask_url(url),
            None,
            "bad_table_name",
            f"{table!r} is not a table name (letters, digits and _, optionally schema.table)",
        )
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def candles_table(name: str, schema: str | None = None, metadata: sa.MetaData | None = None) -> sa.Table:
    """The candles table definition (primary key symbol, timeframe, timestamp)."""
    return sa.Table(
        name,
        metadata or sa.MetaData(),
        sa.Column("symbol", sa.Text, primary_key=True),
        sa.Column("timeframe", sa.Text, primary_key=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("open", sa.Float(53), nullable=False),
        sa.Column("high", sa.Float(53), nullable=False),
        sa.Column("low", sa.Float(53), nullable=False),
        sa.Column("close", sa.Float(53), nullable=False),
        sa.Column("volume", sa.Float(53), nullable=False),
        schema=schema,
    )


def write_candles_to_postgres(url: str | URL, table: str, series: CandleSeries | Iterable[CandleSeries]) -> int:
    """Upsert the rows of one or more series (creating the table if missing); returns rows written.

    Rows are written as the series holds them, forward-filled candles included (load the
    file with max_fill_gap=0 to write only real candles).
    """
    schema, name = split_table(url, table)
    items = [series] if isinstance(series, CandleSeries) else list(series)
    engine = _engine(url)
    try:
        tbl = candles_table(name, schema)
        total = 0
        with engine.begin() as conn:
            tbl.create(conn, checkfirst=True)
            for s in items:
                if len(s.frame):
                    _upsert(conn, tbl, s)
                    total += len(s.frame)
        logger.info("wrote %d candles to %s", total, source_name(url, table))
        return total
    finally:
        engine.dispose()


_VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
_ALL_COLUMNS = ("symbol", "timeframe", "timestamp", *_VALUE_COLUMNS)


def _upsert(conn: sa.Connection, tbl: sa.Table, s: CandleSeries) -> None:
    """COPY into a temporary table, then INSERT .. ON CONFLICT (psycopg2); bound executemany otherwise."""
    f = s.frame
    raw = conn.connection.driver_connection
    if raw is not None and type(raw).__module__.startswith("psycopg2"):
        q = conn.dialect.identifier_preparer
        cols = ", ".join(q.quote(c) for c in _ALL_COLUMNS)
        updates = ", ".join(f"{q.quote(c)} = EXCLUDED.{q.quote(c)}" for c in _VALUE_COLUMNS)
        target = q.format_table(tbl)
        conn.exec_driver_sql(
            "CREATE TEMP TABLE IF NOT EXISTS _candles_stage (symbol text, timeframe text, "
            '"timestamp" timestamptz, open float8, high float8, low float8, close float8, volume float8) '
            "ON COMMIT DROP"
        )
        out = pd.DataFrame({"symbol": s.symbol, "timeframe": s.timeframe, "timestamp": f["timestamp"]})
        for c in _VALUE_COLUMNS:
            out[c] = f[c].to_numpy(dtype="float64")
        buf = io.StringIO()
        out.to_csv(buf, index=False, header=False)  # floats as shortest repr: exact round trip
        buf.seek(0)
        with raw.cursor() as cur:
            cur.copy_expert(f"COPY _candles_stage ({cols}) FROM STDIN WITH (FORMAT csv)", buf)
        conn.exec_driver_sql(
            f"INSERT INTO {target} ({cols}) SELECT {cols} FROM _candles_stage "
            f"ON CONFLICT (symbol, timeframe, {q.quote('timestamp')}) DO UPDATE SET {updates}"
        )
        conn.exec_driver_sql("TRUNCATE _candles_stage")
        return
    records: list[dict[str, Any]] = [
        {"symbol": s.symbol, "timeframe": s.timeframe, "timestamp": t, **dict(zip(_VALUE_COLUMNS, v, strict=True))}
        for t, v in zip(f["timestamp"].dt.to_pydatetime(), f[list(_VALUE_COLUMNS)].to_numpy().tolist(), strict=True)
    ]
    stmt = pg_insert(tbl)
    stmt = stmt.on_conflict_do_update(
        index_elements=["symbol", "timeframe", "timestamp"],
        set_={c: stmt.excluded[c] for c in _VALUE_COLUMNS},
    )
    conn.execute(stmt, records)


def load_candles_from_postgres(
    url: str | URL,
    table: str,
    symbol: str,
    timeframe: str,
    start: datetime | pd.Timestamp | str | None = None,
    end: datetime | pd.Timestamp | str | None = None,
    max_fill_gap: int = DEFAULT_MAX_FILL_GAP,
    min_rows: int = DEFAULT_MIN_ROWS,
    session: str = DEFAULT_SESSION,
) -> CandleSeries:
    """Candles of one symbol and timeframe with start <= timestamp < end (naive times are UTC).

    Row numbers in errors are 1-based rows of the query result, ordered by timestamp.
    """
    source = source_name(url, table)
    schema, name = split_table(url, table)
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(name, schema=schema):
                raise DataValidationError(source, None, "not_found", f"table {table!r} does not exist")
            tbl = candles_table(name, schema)
            # epoch seconds as float8: far cheaper to fetch than tz-aware datetime objects
            epoch = sa.cast(sa.extract("epoch", tbl.c.timestamp), sa.Float(53)).label("epoch")
            query = sa.select(epoch, tbl.c.open, tbl.c.high, tbl.c.low, tbl.c.close, tbl.c.volume).where(
                tbl.c.symbol == symbol, tbl.c.timeframe == timeframe
            )
            if start is not None:
                query = query.where(tbl.c.timestamp >= _utc(start))
            if end is not None:
                query = query.where(tbl.c.timestamp < _utc(end))
            rows = conn.execute(query.order_by(tbl.c.timestamp)).all()
    finally:
        engine.dispose()
    if not rows:
        span = f" in [{start}, {end})" if start is not None or end is not None else ""
        raise DataValidationError(source, None, "too_few_rows", f"no candles for {symbol} {timeframe}{span}")
    values = np.array(rows, dtype="float64")  # NULL -> NaN, refused by the policy
    frame = pd.DataFrame(values[:, 1:], columns=list(_VALUE_COLUMNS))
    frame.insert(0, "timestamp", pd.to_datetime(values[:, 0], unit="s", utc=True).round("us"))
    clean, report = validate_candles(
        frame, source, timeframe, max_fill_gap=max_fill_gap, min_rows=min_rows, session=session
    )
    logger.info("loaded %s %s: %d candles from %s", symbol, timeframe, len(clean), source)
    return CandleSeries(symbol=symbol, timeframe=timeframe, frame=clean, source=source, report=report)


def _utc(value: datetime | pd.Timestamp | str) -> datetime:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    out: datetime = ts.to_pydatetime()  # pandas is untyped here
    return out
