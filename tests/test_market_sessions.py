"""Markets that close (issue 14, point 5): weekends and holidays are closures, not gaps.

Real-shaped series: hourly EURUSD trading Sunday 22:00 to Friday 22:00 UTC, daily stock bars
on business days without US federal holidays, 5-minute crypto with a weekend outage, and the
bundled sample. A closure is neither filled nor a split; real outages still are.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_DATA, TINY_MODEL, make_settings
from pandas.tseries.holiday import USFederalHolidayCalendar

from backend.ml_engine import config
from backend.ml_engine.config import Settings
from backend.ml_engine.data import SESSIONS, load_candle_file, load_candles, validate_candles
from backend.ml_engine.data.candles import detect_session
from backend.ml_engine.dataset import SplitConfig, prepare_dataset
from backend.ml_engine.features import FeatureConfig, lookback_rows
from backend.ml_engine.labels import LabelConfig
from backend.ml_engine.training import (
    TrainingRequest,
    build_parser,
    load_training_data,
    prepare_training_data,
    run_training,
)

HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)


def _ohlcv(times: pd.DatetimeIndex, seed: int, start: float, vol: float) -> pd.DataFrame:
    """A geometric random walk with real-looking bars (open = previous close, wicks, volume)."""
    n = len(times)
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    open_ = np.concatenate([[start], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, vol / 2, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, vol / 2, n))
    volume = rng.lognormal(8, 0.5, n)
    return pd.DataFrame({"date": times, "open": open_, "high": high, "low": low, "close": close, "volume": volume})


def forex_hourly(n: int = 5000, seed: int = 0) -> pd.DataFrame:
    """EURUSD 1h: bars from Sunday 22:00 to the Friday 21:00 bar (the market closes Friday 22:00 UTC)."""
    grid = pd.date_range("2023-01-01 22:00", periods=2 * n, freq="1h", tz="UTC")  # a Sunday
    dow, hour = grid.day_of_week, grid.hour
    closed = ((dow == 4) & (hour >= 22)) | (dow == 5) | ((dow == 6) & (hour < 22))
    return _ohlcv(grid[~closed][:n], seed, 1.08, 0.001)


def stock_daily(n: int = 2148, seed: int = 1) -> pd.DataFrame:
    """Daily stock bars (00:00 UTC) on business days, US federal holidays missing (~10 a year)."""
    days = pd.bdate_range("2014-01-02", periods=int(n * 1.1), tz="UTC")
    holidays = USFederalHolidayCalendar().holidays("2014-01-01", "2024-12-31").tz_localize("UTC")
    return _ohlcv(days[~days.isin(holidays)][:n], seed, 100.0, 0.015)


def _write(frame: pd.DataFrame, path) -> str:
    frame.to_csv(path, index=False)
    return str(path)


# --- forex, hourly --------------------------------------------------------------------------


def test_forex_weekends_are_closures_not_gaps():
    raw = forex_hourly()
    weekends = int((raw["date"].diff() > HOUR).sum())
    assert weekends == 41
    clean, report = validate_candles(raw, "EURUSD", "1h")  # session "auto"
    assert report.session == "weekdays"
    assert (report.rows_in, report.rows_out, len(clean)) == (5000, 5000, 5000)  # nothing invented
    assert (report.filled_gaps, report.filled_candles, report.long_gaps, report.segments) == (0, 0, [], 1)
    assert (report.closures, report.closed_candles) == (weekends, weekends * 48)
    assert (clean["segment"] == 0).all()
    assert (clean["timestamp"] == raw["date"]).all()
    np.testing.assert_array_equal(clean["close"].to_numpy(), raw["close"].to_numpy())
    assert report.summary().endswith(
        "0 long gaps -> 1 segments; weekdays session: 41 closures skipped (1968 candle slots)"
    )
    assert report.to_dict()["session"] == "weekdays" and report.to_dict()["closures"] == 41
    # the same under an explicit session
    again, explicit = validate_candles(raw, "EURUSD", "1h", session="weekdays")
    pd.testing.assert_frame_equal(clean, again)
    assert explicit.to_dict() == report.to_dict()


def test_forex_under_24_7_splits_at_every_weekend_as_before():
    raw = forex_hourly()
    clean, report = validate_candles(raw, "EURUSD", "1h", session="24/7")
    assert report.session == "24/7" and report.closures == 0
    assert (report.segments, len(report.long_gaps), len(clean)) == (42, 41, 5000)
    assert {g.missing for g in report.long_gaps} == {48} and all(g.closed == 0 for g in report.long_gaps)
    assert report.summary().endswith("41 long gaps -> 42 segments")  # no session part under 24/7


def test_forex_trains_under_auto_and_the_24_7_error_names_the_segments(tmp_path):
    path = _write(forex_hourly(), tmp_path / "EURUSD-1h.csv")
    feature_cfg, label_cfg, window = FeatureConfig(), LabelConfig(horizon=6), 60
    split_cfg = SplitConfig(purge_gap=window + 6)

    [series] = load_candles(path)
    assert (series.symbol, series.timeframe, len(series.frame), series.report.segments) == ("EURUSD", "1h", 5000, 1)
    data = prepare_dataset([series], feature_cfg, label_cfg, split_cfg, window)
    warmup = lookback_rows(feature_cfg) - 1
    assert data.summary["series"][0]["segments"] == 1
    assert data.summary["series"][0]["warmup_rows"] == warmup  # one warm-up, none after a weekend
    assert min(len(data.split(s)) for s in ("train", "val", "test")) > 400
    # windows run across the weekend as consecutive bars
    rows = data.train.row_indices(np.arange(len(data.train)))
    spans = data.timestamps[rows[:, -1]] - data.timestamps[rows[:, 0]]
    assert (spans == np.timedelta64(window - 1, "h")).any() and (spans > np.timedelta64(window + 40, "h")).any()

    [as_before] = load_candles(path, session="24/7")
    with pytest.raises(ValueError) as info:
        prepare_dataset([as_before], feature_cfg, label_cfg, split_cfg, window)
    message = str(info.value)
    assert "\n" not in message
    assert "split 'train' is empty: the data is too short" in message
    assert "rows per series: {'EURUSD': 5000}" in message
    lengths = ", ".join("EURUSD#\\d+ 1[12]\\d" for _ in range(8))
    assert re.search(rf"42 segments \(series#segment: rows, longest first\): {lengths} and 34 more", message), message
    need = warmup + window + 6
    assert f"(a window needs a segment of at least {need} rows: warm-up {warmup} + window 60 + horizon 6)" in message


def test_forex_tiny_training_end_to_end(tmp_path):
    path = _write(forex_hourly(), tmp_path / "EURUSD-1h.csv")
    settings = make_settings(tmp_path)
    kw = {"data": path, "window": 24, "horizon": 4, "epochs": 1, "batch_size": 256, "model_kwargs": TINY_MODEL}
    request = TrainingRequest.from_settings(settings, **kw)
    assert request.data.session == "auto"
    data = load_training_data(request)
    assert data.series[0].report.session == "weekdays" and len(data.series[0].frame) == 5000
    out = run_training(request, tmp_path / "out", run_name="forex", data=data, export_onnx=False)
    assert out.test_metrics["accuracy"] >= 0.0

    strict = TrainingRequest.from_settings(settings, session="24/7", **{**kw, "window": 60, "horizon": 6})
    assert strict.data.session == "24/7"
    with pytest.raises(ValueError, match=r"split 'train' is empty.*segments \(series#segment: rows"):
        prepare_training_data(strict, load_training_data(strict))


def test_a_short_tail_with_a_weekend_is_read_the_same_way():
    """The predictor validates only the recent tail: one that holds a weekend is a weekday market too."""
    raw = forex_hourly().iloc[4000:4140].reset_index(drop=True)
    assert (raw["date"].diff() > HOUR).any()
    clean, report = validate_candles(raw, "tail", "1h", min_rows=1)
    assert (report.session, report.segments, len(clean)) == ("weekdays", 1, 140)
    # a tail inside one trading week cannot tell: 24/7, and it has no gap anyway
    week = forex_hourly().iloc[30:100].reset_index(drop=True)
    assert validate_candles(week, "week", "1h", min_rows=1)[1].session == "24/7"


def test_forex_outages_in_trading_time_are_still_filled_or_split():
    raw = forex_hourly()
    t = raw["date"]
    wednesday = t[(t.dt.day_of_week == 2) & (t.dt.hour == 10)].iloc[3]
    short = raw[~t.between(wednesday, wednesday + 1 * HOUR)]  # 2 bars
    long = raw[~t.between(wednesday, wednesday + 4 * HOUR)]  # 5 bars
    friday = t[(t.dt.day_of_week == 4) & (t.dt.hour == 17)].iloc[5]
    edge = raw[~t.between(friday, friday + 4 * HOUR)]  # Fri 17..21: 3 bars trading, 2 closed, then the weekend

    _, r = validate_candles(short, "short", "1h")
    assert (r.session, r.filled_gaps, r.filled_candles, r.segments, r.closures) == ("weekdays", 1, 2, 1, 41)
    _, r = validate_candles(long, "long", "1h")
    assert (r.filled_gaps, r.segments, r.closures) == (0, 2, 41)
    assert [(g.start, g.missing, g.closed) for g in r.long_gaps] == [(wednesday - HOUR, 5, 0)]
    clean, r = validate_candles(edge, "edge", "1h")
    assert (r.filled_gaps, r.filled_candles, r.segments, r.closures, r.rows_out) == (1, 3, 1, 41, 5000 - 2)
    filled = clean[clean["volume"] == 0]["timestamp"].tolist()
    assert filled == [friday, friday + HOUR, friday + 2 * HOUR]  # at their own times; nothing at the weekend
    _, r = validate_candles(edge, "edge", "1h", max_fill_gap=2)
    assert (r.segments, r.long_gaps[0].missing, r.long_gaps[0].closed) == (2, 5 + 48, 2 + 48)


# --- stocks, daily -------------------------------------------------------------------------


def test_daily_stocks_weekends_and_holidays_are_closures():
    raw = stock_daily()
    assert len(raw) == 2148
    gaps = raw["date"].diff().dropna()
    assert (gaps > DAY).mean() > 0.2  # every weekend and every holiday
    missing_weekdays = int(((gaps > 3 * DAY) | ((gaps > DAY) & (raw["date"].dt.day_of_week[1:] != 0))).sum())
    assert missing_weekdays >= 70  # ~10 holidays a year
    clean, report = validate_candles(raw, "SPY", "1d")
    assert report.session == "weekdays"
    assert (len(clean), report.filled_candles, report.segments, report.long_gaps) == (2148, 0, 1, [])
    assert (clean["volume"] > 0).all()  # no synthetic candle
    assert report.closures == int((gaps > DAY).sum())
    assert report.closed_candles == int((gaps // DAY - 1).sum())

    # today's behaviour under 24/7: weekends forward-filled (about 31% synthetic rows)
    filled, as_before = validate_candles(raw, "SPY", "1d", session="24/7")
    assert as_before.session == "24/7" and as_before.closures == 0
    assert as_before.filled_candles == len(filled) - 2148 and 0.28 < as_before.filled_candles / len(filled) < 0.32


def test_daily_stock_outage_still_splits_and_a_5_day_one_is_filled_on_weekdays_only():
    raw = stock_daily()
    days = raw["date"]
    start = days[days.dt.day_of_week == 0].iloc[50]  # a Monday
    outage = raw[~days.between(start, start + pd.Timedelta(days=11))]  # 10 weekdays (two weeks)
    _, r = validate_candles(outage, "SPY", "1d")
    assert (r.session, r.segments, len(r.long_gaps)) == ("weekdays", 2, 1)
    gap = r.long_gaps[0]
    weekdays = len(pd.bdate_range(gap.start + DAY, gap.end - DAY))  # 10, or 11 with a holiday next to it
    assert weekdays >= 10 and gap.missing - gap.closed == weekdays
    assert gap.closed == gap.missing - weekdays >= 4 and gap.to_dict()["closed"] == gap.closed

    present = set(days)
    tuesday = next(  # a week with no holiday from the Monday before to the Tuesday after
        t
        for t in days[days.dt.day_of_week == 1].iloc[80:]
        if all(t + k * DAY in present for k in (-1, 0, 1, 2, 3, 6, 7))
    )
    four = raw[~days.between(tuesday, tuesday + pd.Timedelta(days=6))]  # Tue..Fri, Mon: 5 weekdays + weekend
    assert len(raw) - len(four) == 5
    three = raw[~days.between(tuesday, tuesday + 2 * DAY)]  # Tue..Thu: a 3-day holiday closure
    clean, r = validate_candles(three, "SPY", "1d")
    assert (len(clean), r.segments, r.filled_candles, r.closures) == (
        len(three),
        1,
        0,
        validate_candles(raw, "SPY", "1d")[1].closures + 1,
    )
    _, r = validate_candles(four, "SPY", "1d")  # more than 3 weekdays: an outage, longer than max_fill_gap
    assert (r.segments, r.filled_candles) == (2, 0)
    clean, r = validate_candles(four, "SPY", "1d", max_fill_gap=5)
    assert (r.segments, r.filled_gaps, r.filled_candles) == (1, 1, 5)
    synthetic = clean[clean["volume"] == 0]["timestamp"]
    assert (synthetic.dt.day_of_week < 5).all()  # never a Saturday or Sunday candle


def test_daily_stocks_train_as_one_segment(tmp_path):
    [series] = load_candles(_write(stock_daily(), tmp_path / "SPY-1d.csv"))
    assert (len(series.frame), series.report.segments, series.report.session) == (2148, 1, "weekdays")
    data = prepare_dataset([series], FeatureConfig(), LabelConfig(horizon=5), SplitConfig(), window=30)
    assert data.summary["series"][0]["segments"] == 1 and len(data.test) > 200


# --- crypto and the bundled sample ---------------------------------------------------------


def test_crypto_weekend_outage_is_an_outage():
    raw = pd.read_feather(SAMPLE_DATA / "ETH_BTC-5m.feather")
    weekend = raw["date"].between(pd.Timestamp("2018-01-20", tz="UTC"), pd.Timestamp("2018-01-21 23:55", tz="UTC"))
    assert weekend.sum() == 576
    clean, report = validate_candles(raw[~weekend], "ETH/BTC", "5m")
    assert (report.session, report.closures, report.segments, len(clean)) == ("24/7", 0, 2, 5760 - 576)
    assert [(g.missing, g.closed) for g in report.long_gaps] == [(576, 0)]


@pytest.mark.parametrize(
    ("name", "rows", "segments", "filled"),
    [("ADA_BTC", 5723, 3, 3), ("ETH_BTC", 5760, 1, 0), ("LTC_BTC", 5760, 1, 0), ("XMR_BTC", 5760, 1, 2)],
)
def test_the_bundled_sample_loads_as_before(name, rows, segments, filled):
    """Numbers of the validation before sessions existed (same frames under "auto" and "24/7")."""
    series = load_candle_file(SAMPLE_DATA / f"{name}-5m.feather")
    r = series.report
    assert (len(series.frame), r.segments, r.filled_candles, r.session, r.closures) == (
        rows,
        segments,
        filled,
        "24/7",
        0,
    )
    same = load_candle_file(SAMPLE_DATA / f"{name}-5m.feather", session="24/7")
    pd.testing.assert_frame_equal(series.frame, same.frame)
    assert same.report.summary() == r.summary()


# --- the rule and the settings -------------------------------------------------------------


def test_auto_rule():
    def ns(times: pd.DatetimeIndex) -> np.ndarray:
        return times.as_unit("ns").asi8

    week = pd.date_range("2024-01-01", periods=21, freq="1D", tz="UTC")
    assert detect_session(ns(week), DAY.value) == "24/7"  # Saturdays traded
    assert detect_session(ns(week[week.day_of_week < 5]), DAY.value) == "weekdays"
    assert detect_session(ns(week[:5]), DAY.value) == "24/7"  # Monday..Friday only: no Saturday to judge
    one_saturday = week[(week.day_of_week < 5) | (week == week[12])]  # 1 of 3 Saturdays traded: 33%
    assert detect_session(ns(one_saturday), DAY.value) == "24/7"
    assert detect_session(ns(week[week.day_of_week < 5]), pd.Timedelta(weeks=1).value) == "24/7"
    assert (
        detect_session(ns(week[week.day_of_week < 5]), pd.Timedelta(days=2).value) == "24/7"
    )  # does not divide a week


def test_unknown_session_is_refused():
    with pytest.raises(ValueError, match="unknown session 'weekly'"):
        validate_candles(forex_hourly(200), "x", "1h", session="weekly")


def test_settings_request_and_cli_carry_the_session(tmp_path, monkeypatch):
    assert config.SESSIONS == SESSIONS
    assert Settings().session == "auto"
    monkeypatch.setenv("ML_SESSION", "Weekdays")
    settings = make_settings(tmp_path)
    assert settings.session == "weekdays"
    assert TrainingRequest.from_settings(settings).data.session == "weekdays"
    assert TrainingRequest.from_settings(settings, session="24/7").data.session == "24/7"
    request = TrainingRequest.from_settings(settings, session="24/7")
    assert TrainingRequest.from_dict(request.to_dict()).data.session == "24/7"
    old = request.to_dict()
    del old["data"]["session"]  # a request.json written before sessions: auto
    assert TrainingRequest.from_dict(old).data.session == "auto"
    monkeypatch.setenv("ML_SESSION", "weekly")
    with pytest.raises(ValueError, match="session must be one of auto, 24/7, weekdays"):
        Settings()
    assert build_parser().parse_args(["--session", "24/7"]).session == "24/7"
    assert build_parser().parse_args([]).session is None


def test_the_cli_flag_reaches_the_request(monkeypatch, capsys):
    from backend.ml_engine.training import _cli

    seen = {}

    class Orchestrator:
        def __init__(self, settings, tracking=True):
            pass

        def train_model_sync(self, *, request, **kwargs):
            seen["session"] = request.data.session
            return {"success": False, "error": "stopped here", "error_type": "ValueError"}

    monkeypatch.setattr(_cli, "TrainingOrchestrator", Orchestrator)
    assert _cli.main(["--session", "weekdays", "--no-mlflow"]) == _cli.EXIT_BAD_INPUT
    assert seen == {"session": "weekdays"}
    assert "stopped here" in capsys.readouterr().err


def test_walk_forward_folds_across_weekends_stay_purged():
    """One weekday series: the purge is in rows of that series (trading time), so closures do not weaken it."""
    from backend.ml_engine.data import CandleSeries
    from backend.ml_engine.walk_forward import build_feature_table, check_fold_purged, make_folds

    clean, report = validate_candles(forex_hourly(), "EURUSD", "1h")
    series = CandleSeries("EURUSD", "1h", clean, "EURUSD", report)
    table = build_feature_table([series], FeatureConfig(), LabelConfig(horizon=6), window=60)
    assert table.ends.size > 4000  # windows and labels run across the weekends
    folds = make_folds(table.ends, table.series_id, table.times_ns, 4, gap=66, bar_ns=table.bar_ns)
    for fold in folds:
        assert check_fold_purged(fold, table.series_id, window=60, horizon=6) == []
        assert fold.test.size > 300 and fold.train.size > 1000
