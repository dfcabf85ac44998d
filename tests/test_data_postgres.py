"""Candles table in a real PostgreSQL database (a fresh one per test)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import SAMPLE_DATA

from backend.ml_engine.data import (
    DataValidationError,
    load_candle_file,
    load_candles,
    load_candles_from_postgres,
    mask_url,
    write_candles_to_postgres,
)
from backend.ml_engine.data.postgres import engine_url

pytestmark = pytest.mark.postgres
OHLCV = ["open", "high", "low", "close", "volume"]


@pytest.fixture(scope="module")
def eth():
    return load_candle_file(SAMPLE_DATA / "ETH_BTC-5m.feather")


def _with_password(url: str, password: str) -> str:
    # trust authentication ignores the password, so the connection still works
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{password}@")


def test_write_then_load(pg_url, eth):
    assert write_candles_to_postgres(pg_url, "candles", eth) == 5760
    assert write_candles_to_postgres(pg_url, "candles", eth) == 5760  # upsert: no duplicates
    loaded = load_candles_from_postgres(pg_url, "candles", "ETH/BTC", "5m")
    assert (loaded.symbol, loaded.timeframe) == ("ETH/BTC", "5m")
    pd.testing.assert_frame_equal(loaded.frame, eth.frame)
    engine = sa.create_engine(engine_url(pg_url))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM candles")).scalar() == 5760
    engine.dispose()


def test_time_range_and_symbols(pg_url, eth):
    ltc = load_candle_file(SAMPLE_DATA / "LTC_BTC-5m.feather")
    write_candles_to_postgres(pg_url, "candles", [eth, ltc])
    part = load_candles_from_postgres(
        pg_url, "candles", "LTC/BTC", "5m", start="2018-01-12", end=pd.Timestamp("2018-01-12 01:00", tz="UTC")
    )
    assert len(part.frame) == 12  # [00:00, 01:00): end excluded
    assert part.frame["timestamp"].iloc[0] == pd.Timestamp("2018-01-12", tz="UTC")
    assert part.frame["timestamp"].iloc[-1] == pd.Timestamp("2018-01-12 00:55", tz="UTC")
    np.testing.assert_array_equal(
        part.frame[OHLCV].to_numpy(), ltc.frame.set_index("timestamp").loc[part.frame["timestamp"], OHLCV].to_numpy()
    )
    with pytest.raises(DataValidationError, match="too_few_rows: no candles for DOGE/BTC 5m"):
        load_candles_from_postgres(pg_url, "candles", "DOGE/BTC", "5m")
    both = load_candles(pg_url + "#candles", symbols=["ETH/BTC", "LTC/BTC"], timeframe="5m", date_range_days=1)
    assert [(s.symbol, len(s.frame)) for s in both] == [("ETH/BTC", 288), ("LTC/BTC", 288)]


def test_gaps_in_the_table_follow_the_policy(pg_url):
    ada = load_candle_file(SAMPLE_DATA / "ADA_BTC-5m.feather", max_fill_gap=0)  # written without filled rows
    write_candles_to_postgres(pg_url, "candles", ada)
    loaded = load_candles_from_postgres(pg_url, "candles", "ADA/BTC", "5m", max_fill_gap=3)
    assert (loaded.report.filled_candles, loaded.report.segments) == (3, 3)


def test_bad_rows_in_the_table_are_refused(pg_url, eth):
    write_candles_to_postgres(pg_url, "candles", eth)
    engine = sa.create_engine(engine_url(pg_url))
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE candles SET high = low / 2 WHERE timestamp = :t"),
            {"t": pd.Timestamp("2018-01-10 05:05", tz="UTC").to_pydatetime()},
        )
    engine.dispose()
    with pytest.raises(DataValidationError) as info:
        load_candles_from_postgres(pg_url, "candles", "ETH/BTC", "5m")
    assert info.value.rule == "high_below_low" and info.value.row == 3
    assert str(info.value).startswith(f"{pg_url}#candles: row 3: high_below_low: high ")


BAD_TABLE_NAMES = ["candles; DROP TABLE candles; --", 'candles"', "a.b.c", "1candles", "", "cand les", "x" * 64]


def test_table_name_injection_refused(pg_url, eth):
    write_candles_to_postgres(pg_url, "candles", eth)
    for table in BAD_TABLE_NAMES:
        with pytest.raises(DataValidationError) as info:
            load_candles_from_postgres(pg_url, table, "ETH/BTC", "5m")
        assert info.value.rule == "bad_table_name", table
        with pytest.raises(DataValidationError, match="bad_table_name"):
            write_candles_to_postgres(pg_url, table, eth)
    assert str(info.value) == (
        f"{pg_url}: bad_table_name: {BAD_TABLE_NAMES[-1]!r} is not a table name "
        "(letters, digits and _, optionally schema.table)"
    )
    engine = sa.create_engine(engine_url(pg_url))
    assert sa.inspect(engine).get_table_names() == ["candles"]  # nothing dropped, nothing created
    engine.dispose()


def test_schema_qualified_table(pg_url, eth):
    engine = sa.create_engine(engine_url(pg_url))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA market"))
    engine.dispose()
    write_candles_to_postgres(pg_url, "market.ohlcv", eth)
    loaded = load_candles_from_postgres(pg_url, "market.ohlcv", "ETH/BTC", "5m", start="2018-01-29")
    assert loaded.source.endswith("#market.ohlcv") and len(loaded.frame) == 288 + 59


def test_missing_table(pg_url):
    with pytest.raises(DataValidationError) as info:
        load_candles_from_postgres(pg_url, "nothing_here", "ETH/BTC", "5m")
    assert str(info.value) == f"{pg_url}#nothing_here: not_found: table 'nothing_here' does not exist"


def test_password_never_shown(pg_url, eth, caplog):
    caplog.set_level(logging.DEBUG)
    url = _with_password(pg_url, "s3cr3t-pw")
    write_candles_to_postgres(url, "candles", eth)
    loaded = load_candles_from_postgres(url + "?sslmode=disable&password=s3cr3t-pw", "candles", "ETH/BTC", "5m")
    assert "s3cr3t-pw" not in loaded.source and "s3cr3t-pw" not in loaded.report.summary()
    assert loaded.source == _with_password(pg_url, "***") + "#candles"
    with pytest.raises(DataValidationError) as info:
        load_candles_from_postgres(url, "missing", "ETH/BTC", "5m")
    assert "s3cr3t-pw" not in str(info.value) and "***" in str(info.value)
    (series,) = load_candles(url + "#candles", symbols=["ETH/BTC"], timeframe="5m")
    assert "s3cr3t-pw" not in series.source
    assert "s3cr3t-pw" not in caplog.text
    assert mask_url("postgresql+psycopg2://u:p%40ss@h/db") == "postgresql+psycopg2://u:***@h/db"
