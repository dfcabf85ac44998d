"""The prediction log (issue 16, point 1): every served prediction recorded in batches by a background
thread; a database that is down never slows or fails a prediction, the oldest records are dropped
(counted) beyond the buffer, and recording resumes when the database returns. Real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import SAMPLE_DATA, make_settings, tiny_production_model

from backend.ml_engine.data import load_candles
from backend.ml_engine.prediction_log import PredictionLog, PredictionRecord, predictions_table
from backend.ml_engine.predictor import Predictor

OHLCV = ["open", "high", "low", "close", "volume"]


def _rows(url: str) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(predictions_table))]
    finally:
        engine.dispose()


def _record(i: int, symbol: str = "ETH/BTC") -> PredictionRecord:
    return PredictionRecord(
        symbol=symbol,
        timeframe="5m",
        candle_time=pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(minutes=5 * i),
        model_name="m",
        model_version="1",
        probabilities={"down": 0.2, "flat": 0.3, "up": 0.5},
        signal="buy",
        confidence=0.5,
        latency_ms=0.3,
        input_digest=f"{i:032d}",
        horizon=6,
    )


def test_records_from_several_threads_are_all_written_in_batches(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/log.db"
    with PredictionLog(url, batch_size=64, flush_interval_s=0.05) as log:
        threads = [
            threading.Thread(target=lambda k=k: [log.record(_record(k * 1000 + i)) for i in range(250)])
            for k in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert log.flush(30)
        stats = log.stats()
    assert (stats.recorded, stats.written, stats.dropped, stats.pending) == (1000, 1000, 0, 0)
    rows = _rows(url)
    assert len(rows) == 1000 and len({r["input_digest"] for r in rows}) == 1000
    assert rows[0]["outcome_status"] == "pending" and json.loads(rows[0]["probabilities"])["up"] == 0.5


def test_an_unreachable_database_drops_the_oldest_and_never_blocks() -> None:
    log = PredictionLog("postgresql://nobody@127.0.0.1:1/none", capacity=100, batch_size=10, flush_interval_s=0.05)
    try:
        for i in range(250):
            log.record(_record(i))  # returns at once: the writer, not the request, waits for the database
        deadline = time.monotonic() + 20
        while log.stats().write_errors == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = log.stats()
        assert stats.write_errors >= 1 and not stats.database_ok
        assert stats.recorded == 250 and stats.dropped == 150 and stats.pending == 100 and stats.written == 0
    finally:
        log.close(timeout=0.5)


# --------------------------------------------------------------------------- real PostgreSQL, stopped and started
def _cluster() -> list[str]:
    versions = sorted(os.listdir("/etc/postgresql")) if Path("/etc/postgresql").is_dir() else []
    if not versions:
        pytest.skip("no local PostgreSQL cluster to restart (pg_ctlcluster)")
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main"]


def _pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]).returncode == 0


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("predlog")
    settings = make_settings(root)
    tiny_production_model(settings, "logged")
    candles = load_candles(str(SAMPLE_DATA), symbols=["ETH/BTC"], timeframe="5m")[0].frame[["timestamp", *OHLCV]]
    return {"settings": settings, "candles": candles.reset_index(drop=True)}


@pytest.mark.postgres
def test_predictions_survive_a_postgres_outage_and_recording_resumes(model, pg_url) -> None:
    """Acceptance: several threads predict while PostgreSQL is up (all recorded); with it stopped predictions
    are still served and the dropped count is reported; after it restarts recording resumes."""
    cluster = _cluster()
    candles = model["candles"]
    log = PredictionLog(pg_url, capacity=200, batch_size=50, flush_interval_s=0.1, max_backoff_s=0.5)
    predictor = Predictor("logged", settings=model["settings"], refresh_interval_s=0, record=log, symbol="ETH/BTC")
    try:

        def serve(k: int, n: int) -> None:
            for i in range(n):
                end = 400 + k * 200 + i
                predictor.predict(candles.iloc[end - 300 : end])

        threads = [threading.Thread(target=serve, args=(k, 100)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert log.flush(30)
        rows = _rows(pg_url)
        assert len(rows) == 400 and log.stats().dropped == 0
        row = rows[0]
        assert row["model_name"] == "logged" and row["model_version"] == "1" and row["symbol"] == "ETH/BTC"
        assert row["timeframe"] == "5m" and row["horizon"] == 4 and row["latency_ms"] > 0
        assert len({(r["candle_time"], r["input_digest"]) for r in rows}) == 400

        try:
            subprocess.run([*cluster, "stop", "-m", "fast"], check=True, capture_output=True)
            served = [predictor.predict(candles.iloc[i : i + 300]) for i in range(1000, 1500)]
            assert len(served) == 500 and all(p.signal in ("buy", "sell", "hold") for p in served)
            deadline = time.monotonic() + 20
            while log.stats().write_errors == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            down = log.stats()
            assert not down.database_ok and down.write_errors >= 1 and down.written == 400
            assert down.dropped + down.pending == 500 and down.dropped >= 250  # counted, none silently lost
        finally:
            subprocess.run([*cluster, "start"], check=True, capture_output=True)
            for _ in range(120):
                if _pg_ready():
                    break
                time.sleep(0.5)
        assert log.flush(60), log.stats()
        predictor.predict(candles.iloc[2000:2300])
        assert log.flush(30)
        up = log.stats()
        kept = 500 - up.dropped
        assert up.database_ok and up.pending == 0 and up.written == 400 + kept + 1
        rows = _rows(pg_url)
        assert len(rows) == up.written
        # the oldest were dropped: what the outage kept is exactly its newest predictions
        times = {pd.Timestamp(r["candle_time"]) for r in rows}
        outage = [pd.Timestamp(candles["timestamp"].iloc[i + 299]).tz_convert("UTC") for i in range(1000, 1500)]
        assert [t in times for t in outage] == [False] * (500 - kept) + [True] * kept
        assert pd.Timestamp(candles["timestamp"].iloc[2299]).tz_convert("UTC") in times
    finally:
        predictor.close()
        log.close(timeout=5)
