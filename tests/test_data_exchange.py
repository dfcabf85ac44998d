"""Exchange downloader on a fake ccxt exchange serving real candles (no network here)."""

from __future__ import annotations

import sys
from typing import ClassVar

import pandas as pd
import pytest
from corrupt_files import real_candles

from backend.ml_engine.data import DataValidationError, download_candles, load_candle_file
from backend.ml_engine.data.exchange import PAGE_LIMIT, cache_path

FIVE_MIN_MS = 300_000


class FakeExchange:
    """Serves the real ETH/BTC candles like ccxt's fetch_ohlcv, up to a movable `now` (the last one still forming)."""

    id = "fakex"
    timeframes: ClassVar[dict[str, str]] = {"1m": "1m", "5m": "5m", "1h": "1h"}

    def __init__(self, now: pd.Timestamp) -> None:
        raw = real_candles()
        ms = raw["date"].astype("int64") // 10**6
        self.candles = [
            [int(t), o, h, lo, c, v]
            for t, o, h, lo, c, v in zip(
                ms, raw["open"], raw["high"], raw["low"], raw["close"], raw["volume"], strict=True
            )
        ]
        self.now = now
        self.calls: list[int] = []

    @staticmethod
    def parse_timeframe(timeframe: str) -> int:
        return {"1m": 60, "5m": 300, "1h": 3600}[timeframe]

    def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None):
        assert symbol == "ETH/BTC" and timeframe == "5m"
        self.calls.append(since)
        now_ms = self.now.value // 10**6
        rows = [c for c in self.candles if c[0] >= since and c[0] <= now_ms]
        return [list(r) for r in rows[: min(limit or 500, PAGE_LIMIT)]]


def test_download_pages_and_writes_a_freqtrade_cache(tmp_path):
    now = pd.Timestamp("2018-01-30 04:52", tz="UTC")  # the 04:50 candle is still forming
    fake = FakeExchange(now)
    series = download_candles("ETH/BTC", "5m", days=10, cache_dir=tmp_path, exchange=fake, now=now)
    f = series.frame
    assert len(f) == 10 * 288
    assert f["timestamp"].iloc[-1] == pd.Timestamp("2018-01-30 04:45", tz="UTC")  # closed candles only
    assert f["timestamp"].iloc[0] == pd.Timestamp("2018-01-20 04:50", tz="UTC")
    assert (series.symbol, series.timeframe, series.source) == ("ETH/BTC", "5m", "ccxt:fakex")
    # pages of 1000: 2880 candles -> 3 pages; each since follows the last candle of the page before
    start_ms = pd.Timestamp("2018-01-20 04:50", tz="UTC").value // 10**6
    assert fake.calls == [start_ms, start_ms + 1000 * FIVE_MIN_MS, start_ms + 2000 * FIVE_MIN_MS]
    path = cache_path(tmp_path, "fakex", "ETH/BTC", "5m")
    assert path == tmp_path / "fakex" / "ETH_BTC-5m.feather"
    cached = load_candle_file(path)
    assert (cached.symbol, cached.timeframe, len(cached.frame)) == ("ETH/BTC", "5m", 2880)
    pd.testing.assert_frame_equal(cached.frame, f)
    raw = real_candles().set_index("date")
    assert (f.set_index("timestamp")["close"] == raw.loc[f["timestamp"], "close"]).all()


def test_second_call_fetches_only_newer_candles(tmp_path):
    fake = FakeExchange(pd.Timestamp("2018-01-25 00:00", tz="UTC"))
    first = download_candles("ETH/BTC", "5m", 2, tmp_path, exchange=fake, now=fake.now)
    assert first.frame["timestamp"].iloc[-1] == pd.Timestamp("2018-01-24 23:55", tz="UTC")
    fake.calls.clear()
    fake.now = pd.Timestamp("2018-01-25 01:00", tz="UTC")
    second = download_candles("ETH/BTC", "5m", 2, tmp_path, exchange=fake, now=fake.now)
    assert fake.calls == [pd.Timestamp("2018-01-25 00:00", tz="UTC").value // 10**6]  # one page, after the cache
    assert len(second.frame) == 2 * 288
    assert second.frame["timestamp"].iloc[-1] == pd.Timestamp("2018-01-25 00:55", tz="UTC")
    assert len(pd.read_feather(cache_path(tmp_path, "fakex", "ETH/BTC", "5m"))) == 2 * 288 + 12
    # nothing new: no write needed, same answer
    fake.calls.clear()
    again = download_candles("ETH/BTC", "5m", 2, tmp_path, exchange=fake, now="2018-01-25 01:04")
    assert fake.calls == [] and again.frame.equals(second.frame)


def test_more_days_than_the_cache_fetches_older_candles(tmp_path):
    fake = FakeExchange(pd.Timestamp("2018-01-25", tz="UTC"))
    download_candles("ETH/BTC", "5m", 1, tmp_path, exchange=fake, now=fake.now)
    fake.calls.clear()
    series = download_candles("ETH/BTC", "5m", 3, tmp_path, exchange=fake, now=fake.now)
    assert len(series.frame) == 3 * 288 and series.report.segments == 1
    assert fake.calls[0] == pd.Timestamp("2018-01-22", tz="UTC").value // 10**6


def test_exchange_gaps_follow_the_policy(tmp_path):
    fake = FakeExchange(pd.Timestamp("2018-01-25", tz="UTC"))
    drop = {pd.Timestamp("2018-01-24 12:00", tz="UTC").value // 10**6 + k * FIVE_MIN_MS for k in range(2)}
    fake.candles = [c for c in fake.candles if c[0] not in drop]
    series = download_candles("ETH/BTC", "5m", 1, tmp_path, exchange=fake, now=fake.now, max_fill_gap=3)
    assert (series.report.filled_gaps, series.report.filled_candles, len(series.frame)) == (1, 2, 288)


def test_unknown_timeframe_refused(tmp_path):
    fake = FakeExchange(pd.Timestamp("2018-01-25", tz="UTC"))
    with pytest.raises(DataValidationError, match="timeframe_mismatch: the exchange has no timeframe 3m"):
        download_candles("ETH/BTC", "3m", 1, tmp_path, exchange=fake)


def test_missing_ccxt_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ccxt", None)  # import ccxt now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'trading-bot-ml-engine\[exchange\]'"):
        download_candles("ETH/BTC", "5m", 1, tmp_path)
