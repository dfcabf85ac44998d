"""File loaders: formats, time columns and encodings, names, folders, the dispatcher."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_DATA, SHARED_MARKET
from corrupt_files import real_candles

from backend.ml_engine.data import (
    DataValidationError,
    load_candle_file,
    load_candle_folder,
    load_candles,
    parse_candle_filename,
    validate_candles,
)

OHLCV = ["open", "high", "low", "close", "volume"]


@pytest.fixture(scope="module")
def eth() -> pd.DataFrame:
    return real_candles().iloc[:500].copy()


def _same_candles(series, raw: pd.DataFrame) -> None:
    assert (series.frame["timestamp"].to_numpy() == raw["date"].to_numpy()).all()
    np.testing.assert_array_equal(series.frame[OHLCV].to_numpy(), raw[OHLCV].to_numpy())
    assert str(series.frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert not series.frame.isna().any().any()


@pytest.mark.parametrize(
    ("name", "symbol", "timeframe"),
    [
        ("ETH_BTC-5m.feather", "ETH/BTC", "5m"),
        ("XRP_USDT_USDT-5m-futures.feather", "XRP/USDT:USDT", "5m"),
        ("UNITTEST_BTC-1m.csv.gz", "UNITTEST/BTC", "1m"),
        ("ETH_BTC.parquet", "ETH/BTC", None),
        ("BTCUSDT-1h.csv", "BTCUSDT", "1h"),
        ("candles.csv", "candles", None),
    ],
)
def test_names_follow_freqtrade(name, symbol, timeframe):
    assert parse_candle_filename(name) == (symbol, timeframe)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".feather", ".csv.gz"])
def test_each_format_round_trips(tmp_path, eth, suffix):
    path = tmp_path / f"ETH_BTC-5m{suffix}"
    if suffix.startswith(".csv"):
        eth.to_csv(path, index=False)
    elif suffix == ".parquet":
        eth.to_parquet(path)
    else:
        eth.reset_index(drop=True).to_feather(path)
    series = load_candle_file(path)
    assert (series.symbol, series.timeframe, series.source) == ("ETH/BTC", "5m", str(path))
    _same_candles(series, eth)


def test_real_futures_file_from_shared_data():
    series = load_candle_file(SHARED_MARKET / "XRP_USDT_USDT-5m-futures.feather")
    assert (series.symbol, series.timeframe, len(series.frame)) == ("XRP/USDT:USDT", "5m", 1999)


def test_column_names_are_case_insensitive(tmp_path, eth):
    path = tmp_path / "ETH_BTC-5m.csv"
    eth.rename(columns=str.capitalize).to_csv(path, index=False)  # Date, Open, ...
    _same_candles(load_candle_file(path), eth)


def test_unnamed_index_column_is_the_time(tmp_path, eth):
    path = tmp_path / "ETH_BTC-5m.csv"
    eth.set_index("date").rename_axis(None).to_csv(path)  # header starts with an empty name
    assert path.read_text().startswith(",open,")
    _same_candles(load_candle_file(path), eth)


def test_explicit_unnamed_header_is_the_time(tmp_path, eth):
    path = tmp_path / "ETH_BTC-5m.csv"
    eth.rename(columns={"date": "Unnamed: 0"}).to_csv(path, index=False)
    _same_candles(load_candle_file(path), eth)


def test_named_time_column_wins_over_a_numeric_index(tmp_path, eth):
    path = tmp_path / "ETH_BTC-5m.csv"
    eth.to_csv(path)  # a leading 0, 1, 2 ... index column, then date
    _same_candles(load_candle_file(path), eth)


def test_parquet_datetime_index(tmp_path, eth):
    path = tmp_path / "ETH_BTC-5m.parquet"
    eth.set_index("date").rename_axis(None).to_parquet(path)
    _same_candles(load_candle_file(path), eth)


@pytest.mark.parametrize(("column", "scale"), [("timestamp", 1_000), ("time", 1), ("Timestamp", 1_000_000)])
def test_epoch_units_told_by_magnitude(tmp_path, eth, column, scale):
    epoch_s = eth["date"].astype("int64") // 10**9
    frame = eth.drop(columns=["date"]).assign(**{column: epoch_s * scale})
    path = tmp_path / "ETH_BTC-5m.csv"
    frame.to_csv(path, index=False)
    _same_candles(load_candle_file(path), eth)


def test_float_epoch_seconds(tmp_path, eth):
    frame = eth.assign(date=eth["date"].astype("int64") / 1e9)
    path = tmp_path / "ETH_BTC-5m.parquet"
    frame.to_parquet(path)
    _same_candles(load_candle_file(path), eth)


def test_mixed_epoch_units_refused(tmp_path, eth):
    ms = (eth["date"].astype("int64") // 10**6).astype(object)
    ms[3] = ms[3] // 1000  # seconds at data row 4
    path = tmp_path / "ETH_BTC-5m.csv"
    eth.assign(date=ms).to_csv(path, index=False)
    with pytest.raises(DataValidationError) as info:
        load_candle_file(path)
    assert str(info.value) == f"{path}: row 4: bad_timestamp: epoch {ms[3]} is in s, row 1 is in ms"


@pytest.mark.parametrize("fmt", ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.000+00:00"])
def test_iso_strings_naive_means_utc(tmp_path, eth, fmt):
    path = tmp_path / "ETH_BTC-5m.csv"
    eth.assign(date=eth["date"].dt.strftime(fmt)).to_csv(path, index=False)
    _same_candles(load_candle_file(path), eth)


def test_other_zone_converted_to_utc(tmp_path, eth):
    path = tmp_path / "ETH_BTC-5m.parquet"
    eth.assign(date=eth["date"].dt.tz_convert("Asia/Tokyo")).to_parquet(path)
    _same_candles(load_candle_file(path), eth)
    csv = tmp_path / "ETH_BTC-5m.csv"
    eth.assign(date=eth["date"].dt.tz_convert("Asia/Tokyo").astype(str)).to_csv(csv, index=False)
    _same_candles(load_candle_file(csv), eth)


def test_naive_and_aware_strings_mixed_refused(tmp_path, eth):
    text = eth["date"].astype(str).astype(object)
    text[2] = "2018-01-10 05:05:00"
    path = tmp_path / "ETH_BTC-5m.csv"
    eth.assign(date=text).to_csv(path, index=False)
    with pytest.raises(DataValidationError) as info:
        load_candle_file(path)
    assert str(info.value) == (
        f"{path}: row 3: mixed_timezones: '2018-01-10 05:05:00' has no time zone, row 1 has +00:00"
    )


def test_empty_time_refused(tmp_path, eth):
    path = tmp_path / "ETH_BTC-5m.csv"
    text = eth["date"].astype(str).astype(object)
    text[7] = None
    eth.assign(date=text).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"row 8: bad_timestamp: empty time$"):
        load_candle_file(path)


def test_timeframe_without_name_from_spacing(tmp_path, eth):
    path = tmp_path / "eth.csv"
    eth.to_csv(path, index=False)
    series = load_candle_file(path)
    assert (series.symbol, series.timeframe) == ("eth", "5m")


def test_explicit_timeframe_checked_against_data(tmp_path, eth):
    path = tmp_path / "ETH_BTC-5m.csv"
    eth.to_csv(path, index=False)
    with pytest.raises(DataValidationError) as info:
        load_candle_file(path, timeframe="15m")
    assert str(info.value) == f"{path}: timeframe_mismatch: median spacing of the data is 5m, timeframe is 15m"


def test_folder_loads_every_file():
    series = load_candle_folder(SAMPLE_DATA)
    assert [s.symbol for s in series] == ["ADA/BTC", "ETH/BTC", "LTC/BTC", "XMR/BTC"]
    assert all(s.timeframe == "5m" and not s.frame.isna().any().any() for s in series)


def test_folder_filtered_by_symbols_and_timeframe():
    series = load_candles(SAMPLE_DATA, symbols=["ETH/BTC", "ltc_btc"])
    assert [s.symbol for s in series] == ["ETH/BTC", "LTC/BTC"]
    one_minute = load_candles(SHARED_MARKET, timeframe="1m")
    assert [(s.symbol, s.timeframe) for s in one_minute] == [("UNITTEST/BTC", "1m"), ("XRP/ETH", "1m")]


def test_folder_missing_symbol_or_empty(tmp_path):
    with pytest.raises(DataValidationError) as info:
        load_candles(SAMPLE_DATA, symbols=["DOGE/BTC"])
    assert info.value.rule == "symbol_not_found"
    assert "no file for DOGE/BTC; found: ADA/BTC 5m, ETH/BTC 5m, LTC/BTC 5m, XMR/BTC 5m" in str(info.value)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataValidationError) as info:
        load_candles(tmp_path)
    assert info.value.rule == "no_files"


def test_bad_paths(tmp_path):
    with pytest.raises(DataValidationError) as info:
        load_candles(tmp_path / "nope.csv")
    assert str(info.value) == f"{tmp_path / 'nope.csv'}: not_found: no such file or folder"
    odd = tmp_path / "ETH_BTC-5m.xlsx"
    odd.write_text("x")
    with pytest.raises(DataValidationError, match="unsupported_format"):
        load_candles(odd)
    broken = tmp_path / "ETH_BTC-5m.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(DataValidationError, match="unreadable"):
        load_candles(broken)


def test_dispatcher_single_file_and_date_range():
    path = SAMPLE_DATA / "LTC_BTC-5m.feather"
    (series,) = load_candles(path, symbols=["LTC/BTC"], date_range_days=3)
    assert series.symbol == "LTC/BTC" and len(series.frame) == 3 * 288
    with pytest.raises(DataValidationError, match="symbol_not_found"):
        load_candles(path, symbols=["ETH/BTC"])
    with pytest.raises(DataValidationError) as info:
        load_candles(path, date_range_days=30)
    assert str(info.value) == (
        f"{path}: date_range: asked for 30 days, the data holds 20.0 days (2018-01-10 .. 2018-01-30)"
    )


def test_dispatcher_postgres_needs_symbols_and_timeframe():
    with pytest.raises(DataValidationError) as info:
        load_candles("postgresql://bob:hunter2@db.example:5432/market#ohlcv", timeframe="5m")
    assert str(info.value) == (
        "postgresql://bob:***@db.example:5432/market#ohlcv: missing_argument: "
        "a PostgreSQL source needs symbols and a timeframe"
    )


def test_header_only_file_has_too_few_rows(tmp_path, eth):
    path = tmp_path / "ETH_BTC-5m.csv"
    eth.iloc[:0].to_csv(path, index=False)
    with pytest.raises(DataValidationError) as info:
        load_candle_file(path)
    assert str(info.value) == f"{path}: too_few_rows: 0 rows, need at least 2"


def test_leftover_integer_index_is_ignored(tmp_path, eth):
    part = eth.iloc[100:200]  # index 100..199, saved by Parquet as __index_level_0__
    path = tmp_path / "ETH_BTC-5m.parquet"
    part.to_parquet(path)
    _same_candles(load_candle_file(path), part)
    renamed = part.rename(columns={"date": "Unnamed: 0"})  # an index must not be taken for the time
    clean, _ = validate_candles(renamed, "part", "5m")
    assert (clean["timestamp"].to_numpy() == part["date"].to_numpy()).all()


def test_epoch_nanoseconds_keep_every_digit():
    ns = pd.Series([1515560100_123456789, 1515560400_123456789], dtype="int64")
    frame = pd.DataFrame({"timestamp": ns, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 0.0})
    clean, _ = validate_candles(frame, "ns", "5m")
    assert clean["timestamp"].astype("int64").tolist() == ns.tolist()


def test_a_parser_error_is_reported_on_one_line(tmp_path):
    """pandas' tokenizer message ends in a newline; the refusal stays one line (found by hypothesis)."""
    from backend.ml_engine.data import DataValidationError, load_candle_file

    path = tmp_path / "ETH_BTC-5m.csv"
    path.write_text("date\n2018-01-10 00:00:00\n1,2,3,4,5,6\n")
    with pytest.raises(DataValidationError) as info:
        load_candle_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: unreadable: ParserError: Error tokenizing data")
    assert "\n" not in message and "saw 6" in message
