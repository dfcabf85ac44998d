"""The validation policy: one exact message per rule, counted repairs on real candles."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_DATA, SHARED_MARKET
from corrupt_files import CORRUPTIONS, real_candles, too_few_rows
from hypothesis import HealthCheck, given, settings, strategies as st

from backend.ml_engine.data import (
    CandleSeries,
    DataValidationError,
    load_candle_file,
    load_candles,
    take_last_days,
    validate_candles,
)

FIVE_MIN = pd.Timedelta(minutes=5)


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__)
def test_each_rule_has_an_exact_message(corrupt, tmp_path):
    path, message, rule = corrupt(tmp_path)
    with pytest.raises(DataValidationError) as info:
        load_candles(path)
    assert str(info.value) == message
    assert info.value.rule == rule
    assert info.value.source == str(path)


def test_every_error_rule_is_covered(tmp_path):
    rules = set()
    for corrupt in CORRUPTIONS:
        folder = tmp_path / corrupt.__name__
        folder.mkdir()
        rules.add(corrupt(folder).rule)
    assert rules == {
        "missing_column",
        "bad_timestamp",
        "mixed_timezones",
        "non_finite",
        "non_positive_price",
        "high_below_low",
        "price_outside_range",
        "negative_volume",
        "duplicate_conflict",
        "timeframe_mismatch",
        "too_few_rows",
    }


def test_too_few_rows_names_the_minimum(tmp_path):
    path, message, _ = too_few_rows(tmp_path, min_rows=72)
    with pytest.raises(DataValidationError, match="need at least 72") as info:
        load_candle_file(path, min_rows=72)
    assert str(info.value) == message


def test_error_format_without_row():
    err = DataValidationError("f.csv", None, "too_few_rows", "1 row, need at least 2")
    assert str(err) == "f.csv: too_few_rows: 1 row, need at least 2"
    assert (
        str(DataValidationError("f.csv", 3, "non_finite", "close is NaN")) == "f.csv: row 3: non_finite: close is NaN"
    )
    assert isinstance(err, ValueError)


def test_clean_file_is_returned_unchanged():
    series = load_candle_file(SAMPLE_DATA / "ETH_BTC-5m.feather")
    raw = real_candles()
    frame = series.frame
    assert list(frame.columns) == ["timestamp", "open", "high", "low", "close", "volume", "segment"]
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert isinstance(frame.index, pd.RangeIndex)
    assert (frame["timestamp"] == raw["date"]).all()
    np.testing.assert_array_equal(
        frame[["open", "high", "low", "close", "volume"]].to_numpy(),
        raw[["open", "high", "low", "close", "volume"]].to_numpy(),
    )
    assert (frame["segment"] == 0).all() and frame["segment"].dtype == np.int64
    r = series.report
    assert (r.dropped_duplicates, r.reordered_rows, r.filled_gaps, r.filled_candles, r.segments, r.long_gaps) == (
        0,
        0,
        0,
        0,
        1,
        [],
    )
    assert not r.repaired


def test_real_gaps_of_ada_are_filled_or_split(caplog):
    """ADA_BTC-5m misses 40 candles: three single ones, one run of 4 and one of 33."""
    caplog.set_level(logging.WARNING)
    series = load_candle_file(SAMPLE_DATA / "ADA_BTC-5m.feather", max_fill_gap=3)
    r = series.report
    assert r.rows_in == 5720 and r.rows_out == 5723 == len(series.frame)
    assert (r.filled_gaps, r.filled_candles, r.segments) == (3, 3, 3)
    assert [(g.start, g.end, g.missing) for g in r.long_gaps] == [
        (pd.Timestamp("2018-01-15 11:05", tz="UTC"), pd.Timestamp("2018-01-15 11:30", tz="UTC"), 4),
        (pd.Timestamp("2018-01-15 11:55", tz="UTC"), pd.Timestamp("2018-01-15 14:45", tz="UTC"), 33),
    ]
    f = series.frame
    # inside a segment the grid is regular; segments change exactly at the long gaps
    for _, seg in f.groupby("segment"):
        assert (seg["timestamp"].diff().dropna() == FIVE_MIN).all()
    assert f["segment"].is_monotonic_increasing and f["segment"].unique().tolist() == [0, 1, 2]
    # filled candles: OHLC = previous close, volume 0
    raw_times = set(pd.read_feather(SAMPLE_DATA / "ADA_BTC-5m.feather")["date"])
    filled = f[~f["timestamp"].isin(raw_times)]
    assert len(filled) == 3 and (filled["volume"] == 0).all()
    for i in filled.index:
        assert (f.loc[i, ["open", "high", "low", "close"]] == f.loc[i - 1, "close"]).all()
    assert r.summary() == (
        f"{SAMPLE_DATA / 'ADA_BTC-5m.feather'}: 5720 rows in, 5723 out; 0 duplicates dropped, 0 rows reordered, "
        "3 gaps filled (3 candles), 2 long gaps -> 3 segments"
    )
    d = r.to_dict()
    assert d["long_gaps"][1] == {
        "start": "2018-01-15T11:55:00+00:00",
        "end": "2018-01-15T14:45:00+00:00",
        "missing": 33,
    }
    # each repair logged once
    messages = [rec.getMessage() for rec in caplog.records if "ADA_BTC" in rec.getMessage()]
    assert len(messages) == 2
    assert "forward-filled 3 gaps (3 candles" in messages[0]
    assert "2 gaps too long to fill, split into 3 segments" in messages[1]


def test_max_fill_gap_decides_fill_or_split():
    raw = pd.read_feather(SAMPLE_DATA / "ADA_BTC-5m.feather")
    _, r0 = validate_candles(raw, "ada", "5m", max_fill_gap=0)
    assert (r0.filled_gaps, r0.segments) == (0, 6)
    _, r4 = validate_candles(raw, "ada", "5m", max_fill_gap=4)
    assert (r4.filled_gaps, r4.filled_candles, r4.segments) == (4, 7, 2)
    _, r40 = validate_candles(raw, "ada", "5m", max_fill_gap=40)
    assert (r40.filled_gaps, r40.filled_candles, r40.segments, r40.rows_out) == (5, 40, 1, 5760)


def test_longest_segment_must_hold_min_rows():
    raw = real_candles().iloc[:100].drop(index=range(40, 50))  # 10 missing: segments of 40 and 50 rows
    with pytest.raises(DataValidationError) as info:
        validate_candles(raw, "eth", "5m", max_fill_gap=3, min_rows=60)
    assert str(info.value) == (
        "eth: too_few_rows: longest contiguous segment has 50 rows, need at least 60 (2 segments split by gaps over 3 candles)"
    )


def test_identical_duplicates_dropped_and_unsorted_rows_sorted(caplog):
    caplog.set_level(logging.WARNING)
    raw = real_candles().iloc[:300]
    messy = pd.concat([raw.iloc[[10, 11, 12]], raw, raw.iloc[[100]]], ignore_index=True)  # 4 identical copies
    messy = messy.iloc[::-1].reset_index(drop=True)  # and backwards
    clean, report = validate_candles(messy, "messy", "5m")
    assert report.dropped_duplicates == 4
    # kept in file order: 100, 299, 298, ..., 101, 99, ..., 0; all but 100 and 299 come after a later time
    assert report.reordered_rows == 298
    assert (report.filled_gaps, report.segments) == (0, 1)
    assert (clean["timestamp"] == raw["date"]).all()
    np.testing.assert_array_equal(clean["close"].to_numpy(), raw["close"].to_numpy())
    logged = [rec.getMessage() for rec in caplog.records]
    assert logged == [
        "messy: dropped 4 duplicate rows (identical values)",
        "messy: sorted by time, 298 rows were out of order",
    ]


def test_one_swapped_pair_counts_one_reordered_row():
    raw = real_candles().iloc[:50].copy()
    swapped = raw.iloc[[*range(20), 21, 20, *range(22, 50)]]
    clean, report = validate_candles(swapped, "s", "5m")
    assert report.reordered_rows == 1
    assert (clean["timestamp"] == raw["date"].to_numpy()).all()


def test_error_rows_refer_to_the_input_even_when_unsorted():
    raw = real_candles().iloc[:50].iloc[::-1].reset_index(drop=True)
    raw.loc[4, "date"] += pd.Timedelta(minutes=1)
    with pytest.raises(DataValidationError) as info:
        validate_candles(raw, "s", "5m")
    assert info.value.rule == "timeframe_mismatch" and info.value.row == 5


def test_timeframe_inferred_from_spacing():
    raw = pd.read_feather(SHARED_MARKET / "UNITTEST_BTC-30m.feather")
    _, report = validate_candles(raw, "u", None)
    assert report.timeframe == "30m"


def test_take_last_days():
    series = load_candle_file(SAMPLE_DATA / "ETH_BTC-5m.feather")
    last5 = take_last_days(series, 5)
    assert len(last5.frame) == 5 * 288
    assert last5.frame["timestamp"].iloc[-1] == series.frame["timestamp"].iloc[-1]
    assert take_last_days(series, 20).frame.equals(series.frame)  # the file holds exactly 20 days
    with pytest.raises(DataValidationError) as info:
        take_last_days(series, 60)
    assert info.value.rule == "date_range"
    assert str(info.value) == (
        f"{series.source}: date_range: asked for 60 days, the data holds 20.0 days (2018-01-10 .. 2018-01-30)"
    )


def test_take_last_days_renumbers_segments():
    series = load_candle_file(SAMPLE_DATA / "ADA_BTC-5m.feather")
    last = take_last_days(series, 10)  # after the long gaps on Jan 15
    assert last.frame["segment"].unique().tolist() == [0]
    assert isinstance(last, CandleSeries) and last.report is series.report


def test_repairs_are_vectorised_on_100k_rows():
    base = real_candles()
    parts = [base.assign(date=base["date"] + pd.Timedelta(days=20 * k)) for k in range(20)]
    big = pd.concat(parts, ignore_index=True)  # 115,200 rows
    rng = np.random.default_rng(0)
    big = big.drop(index=rng.choice(len(big), 2000, replace=False))  # gaps
    big = pd.concat([big, big.sample(500, random_state=1)]).sample(frac=1, random_state=2)  # dups, shuffled
    started = time.perf_counter()
    clean, report = validate_candles(big, "big", "5m", max_fill_gap=1)
    elapsed = time.perf_counter() - started
    assert report.dropped_duplicates == 500 and report.reordered_rows > 50_000
    assert report.filled_gaps > 0 and report.segments > 1
    assert clean["timestamp"].is_monotonic_increasing and clean["timestamp"].is_unique
    assert elapsed < 5, elapsed  # a per-row Python loop would take far longer


# --- property: corrupted real slices are refused or come out clean ------------------------------

SLICE = real_candles().iloc[1000:1120].reset_index(drop=True)
PRICE_COLS = ["open", "high", "low", "close"]
BAD = st.one_of(
    st.tuples(st.just("nan"), st.integers(0, 119), st.sampled_from([*PRICE_COLS, "volume"])),
    st.tuples(st.just("inf"), st.integers(0, 119), st.sampled_from([*PRICE_COLS, "volume"])),
    st.tuples(st.just("neg"), st.integers(0, 119), st.sampled_from([*PRICE_COLS, "volume"])),
    st.tuples(st.just("swap"), st.integers(0, 119), st.just("")),
    st.tuples(st.just("dupdiff"), st.integers(0, 119), st.sampled_from([*PRICE_COLS, "volume"])),
)
BENIGN = st.one_of(
    st.tuples(st.just("dup"), st.integers(0, 119), st.just("")),
    st.tuples(st.just("drop"), st.integers(0, 119), st.just("")),
    st.tuples(st.just("shuffle"), st.integers(0, 2**31), st.just("")),
)


def _apply(ops: list[tuple[str, int, str]]) -> pd.DataFrame:
    f = SLICE.copy()
    for op, i, col in ops:
        i = i % len(f) if op != "shuffle" else i
        if op == "nan":
            f.loc[f.index[i], col] = np.nan
        elif op == "inf":
            f.loc[f.index[i], col] = np.inf
        elif op == "neg":
            f.loc[f.index[i], col] = -abs(f.loc[f.index[i], col]) - 1e-3
        elif op == "swap":
            idx = f.index[i]
            f.loc[idx, ["high", "low"]] = [f.loc[idx, "low"], f.loc[idx, "high"] * 1.001]
        elif op == "dupdiff":
            row = f.iloc[[i]].copy()
            row[col] = row[col] * 1.5
            f = pd.concat([f, row], ignore_index=True)  # duplicate timestamps, unique row labels
        elif op == "dup":
            f = pd.concat([f, f.iloc[[i]]], ignore_index=True)
        elif op == "drop" and len(f) > 3:
            f = f.drop(index=f.index[i])
        elif op == "shuffle":
            f = f.sample(frac=1, random_state=i % 2**31)
    return f.reset_index(drop=True)


def _assert_clean(clean: pd.DataFrame, max_fill_gap: int) -> None:
    assert not clean.isna().any().any()
    values = clean[[*PRICE_COLS, "volume"]].to_numpy()
    assert np.isfinite(values).all()
    assert (clean[PRICE_COLS].to_numpy() > 0).all() and (clean["volume"] >= 0).all()
    assert (clean["high"] >= clean["low"]).all()
    assert ((clean["open"] >= clean["low"]) & (clean["open"] <= clean["high"])).all()
    assert ((clean["close"] >= clean["low"]) & (clean["close"] <= clean["high"])).all()
    ts = clean["timestamp"]
    assert ts.is_monotonic_increasing and ts.is_unique
    steps = ts.diff().iloc[1:] / FIVE_MIN
    new_segment = clean["segment"].diff().iloc[1:]
    assert ((steps == 1) == (new_segment == 0)).all()
    assert (steps[new_segment == 1] > max_fill_gap + 1).all()
    assert set(new_segment.unique()) <= {0, 1}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.one_of(BAD, BENIGN), max_size=8), max_fill_gap=st.integers(0, 4))
def test_corrupted_frames_are_refused_or_clean(ops, max_fill_gap):
    frame = _apply(ops)
    try:
        clean, report = validate_candles(frame, "prop", "5m", max_fill_gap=max_fill_gap, min_rows=2)
    except DataValidationError as err:
        assert err.rule in {
            "non_finite",
            "non_positive_price",
            "high_below_low",
            "price_outside_range",
            "negative_volume",
            "duplicate_conflict",
            "too_few_rows",
        }
        assert str(err).startswith("prop: ")
        return
    _assert_clean(clean, max_fill_gap)
    assert report.rows_out == len(clean)
    assert set(frame["date"]) <= set(clean["timestamp"])


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(BENIGN, max_size=10), max_fill_gap=st.integers(0, 4))
def test_benign_mess_is_always_repaired(ops, max_fill_gap):
    frame = _apply(ops)
    clean, report = validate_candles(frame, "prop", "5m", max_fill_gap=max_fill_gap, min_rows=1)
    _assert_clean(clean, max_fill_gap)
    assert report.dropped_duplicates == len(frame) - frame["date"].nunique()
    kept = set(frame["date"])
    assert kept <= set(clean["timestamp"])
    assert len(clean) - len(kept) == report.filled_candles
