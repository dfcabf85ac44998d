"""Live monitoring (issue 16, point 2 and 3): the outcome join over a synthetic candle stream whose answers are
known gives exactly the expected live accuracy and PnL; pending predictions wait for their candles, expire
when they never come; ``performance_drop`` fires on a planted degradation of live outcomes, not on a stable
stream."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from backend.ml_engine.config import Settings
from backend.ml_engine.monitoring import (
    live_metrics_frame,
    live_performance,
    monitoring_snapshot,
    resolve_and_roll_up,
)
from backend.ml_engine.prediction_log import PredictionLog, PredictionRecord, predictions_table, version_row

BAR = pd.Timedelta(minutes=5)
START = pd.Timestamp("2026-03-02 00:00", tz="UTC")
H = 3
FEE = 0.001
LABELS = {"horizon": H, "threshold_mode": "fixed", "threshold": 0.002, "vol_window": 60, "vol_multiplier": 0.3}
CLASSES = ["down", "flat", "up"]


def _candles(n: int = 288) -> pd.DataFrame:
    """One day of 5m candles; every open is the previous close (so an entry at t+1's open is t's close)."""
    rng = np.random.default_rng(3)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.003, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    ts = pd.date_range(START, periods=n, freq=BAR)
    return pd.DataFrame(
        {
            "timestamp": ts,
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "volume": 1.0,
        }
    )


def _truth(candles: pd.DataFrame, t: int) -> tuple[int, float]:
    """(label, exit/entry - 1) computed here, independently of the module: log return t -> t+H vs +-0.002."""
    c, o = candles["close"].to_numpy(), candles["open"].to_numpy()
    r = math.log(c[t + H] / c[t])
    label = 2 if r > 0.002 else (0 if r < -0.002 else 1)
    return label, o[t + 1 + H] / o[t + 1] - 1.0


def _settings(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ML_PREDICTION_LOG", "1")
    monkeypatch.setenv("ML_JOBS_DATABASE_URL", f"sqlite:///{tmp}/jobs.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp}/mlflow.db")
    return Settings()


def _write(url: str, records: list[PredictionRecord], test_accuracy: float = 0.5) -> None:
    metadata = {
        "label_config": LABELS,
        "signal_policy": {"fee": FEE, "slippage": 0.0, "description": "argmax"},
        "test_metrics": {"accuracy": test_accuracy, "f1_macro": test_accuracy},
    }
    with PredictionLog(url, flush_interval_s=0.05) as log:
        log.describe_version(version_row("m", "1", None, metadata, CLASSES))
        for r in records:
            log.record(r)
        assert log.flush(30)


def _record(t_time: pd.Timestamp, probs: list[float], symbol: str = "ETH/BTC", latency: float = 1.0):
    idx = int(np.argmax(probs))
    return PredictionRecord(
        symbol=symbol,
        timeframe="5m",
        candle_time=t_time,
        model_name="m",
        model_version="1",
        probabilities=dict(zip(CLASSES, probs, strict=True)),
        signal=["sell", "hold", "buy"][idx],
        confidence=max(probs),
        latency_ms=latency,
        input_digest="x",
        horizon=H,
    )


def test_the_outcome_join_gives_exactly_the_expected_accuracy_and_pnl(tmp_path, monkeypatch) -> None:
    settings = _settings(tmp_path, monkeypatch)
    url = settings.jobs_database_url.get_secret_value()
    candles = _candles()
    rows = list(range(10, 250, 4))  # 60 predictions, all resolvable within the day
    records, expect_right, expect_pnl, trades = [], 0, 0.0, []
    for k, t in enumerate(rows):
        label, move = _truth(candles, t)
        # every third prediction is wrong on purpose (the next class), the rest name the true label
        guess = (label + 1) % 3 if k % 3 == 0 else label
        expect_right += guess == label
        probs = [0.1, 0.1, 0.1]
        probs[guess] = 0.8
        position = {0: -1.0, 1: 0.0, 2: 1.0}[guess]
        if position:
            trades.append(position * move - 2 * FEE)
            expect_pnl += position * move - 2 * FEE
        records.append(_record(candles["timestamp"].iloc[t], probs, latency=float(k)))
    # waiting: the exit candle is not in the source yet; expired: a symbol whose candles never arrive
    records.append(_record(candles["timestamp"].iloc[286], [0.1, 0.1, 0.8]))
    records.append(_record(START + pd.Timedelta(hours=1), [0.8, 0.1, 0.1], symbol="XRP/BTC"))
    _write(url, records)

    def loader(symbol: str, timeframe: str, since: pd.Timestamp) -> pd.DataFrame:
        return candles if symbol == "ETH/BTC" else candles.iloc[:0]

    now = candles["timestamp"].iloc[-1] + pd.Timedelta(minutes=30)
    summary = resolve_and_roll_up(settings, loader=loader, now=now, expiry_hours=1.0, log_to_mlflow=False)
    assert (summary.resolved, summary.expired, summary.pending) == (60, 1, 1), summary

    frame = live_metrics_frame(settings, "m")
    assert len(frame) == 1
    day = frame.iloc[0]
    assert day["day"] == START.date() and day["n_predictions"] == 62 and day["n_resolved"] == 60
    assert day["n_expired"] == 1
    assert day["accuracy"] == pytest.approx(expect_right / 60, abs=1e-12)
    assert day["n_trades"] == len(trades)
    assert day["pnl"] == pytest.approx(expect_pnl, abs=1e-12)
    assert day["hit_rate"] == pytest.approx(np.mean(np.array(trades) > 0), abs=1e-12)
    assert day["coverage"] == pytest.approx(61 / 288, abs=1e-12)  # ETH/BTC: 61 of 288 candles; XRP/BTC has none
    assert day["latency_p50_ms"] == pytest.approx(np.percentile([*range(60), 1.0, 1.0], 50))
    assert day["test_accuracy"] == 0.5  # the reference line of the version
    snap = monitoring_snapshot(settings, "m")
    version = snap.versions.iloc[0]
    assert (version["pending"], version["expired"], version["test_accuracy"]) == (1, 1, 0.5)
    assert pd.Timestamp(version["last_candle_time"]).tz_localize(None) == candles["timestamp"].iloc[286].tz_localize(
        None
    )
    assert len(snap.live) == 1

    # the realised label and return are on each row; a second run changes nothing already resolved
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        got = conn.execute(
            sa.select(predictions_table.c.candle_time, predictions_table.c.realised_label).where(
                predictions_table.c.outcome_status == "resolved"
            )
        ).all()
    engine.dispose()
    by_time = {
        pd.Timestamp(t).tz_localize("UTC") if pd.Timestamp(t).tzinfo is None else pd.Timestamp(t): lab for t, lab in got
    }
    for t in rows:
        assert by_time[candles["timestamp"].iloc[t]] == _truth(candles, t)[0]
    again = resolve_and_roll_up(settings, loader=loader, now=now, expiry_hours=1.0, log_to_mlflow=False)
    assert (again.resolved, again.expired, again.pending) == (0, 0, 1)
    assert live_metrics_frame(settings, "m").iloc[0]["accuracy"] == pytest.approx(expect_right / 60, abs=1e-12)


def _stream(settings: Settings, candles: pd.DataFrame, right_share: float, test_accuracy: float) -> None:
    rng = np.random.default_rng(11)
    records = []
    for t in range(10, 280):
        label, _ = _truth(candles, t)
        guess = label if rng.random() < right_share else (label + 1) % 3
        probs = [0.1, 0.1, 0.1]
        probs[guess] = 0.8
        records.append(_record(candles["timestamp"].iloc[t], probs))
    _write(settings.jobs_database_url.get_secret_value(), records, test_accuracy=test_accuracy)


@pytest.mark.parametrize(("right_share", "fires"), [(0.9, False), (0.4, True)])
def test_performance_drop_fires_on_live_degradation_only(tmp_path, monkeypatch, right_share, fires) -> None:
    from backend.ml_engine.retraining import RetrainingConfig
    from backend.ml_engine.retraining._pipeline import RetrainingPipeline
    from backend.ml_engine.retraining._results import ProductionVersion

    settings = _settings(tmp_path, monkeypatch)
    today = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=1)
    candles = _candles()
    candles["timestamp"] = pd.date_range(today, periods=len(candles), freq=BAR)
    _stream(settings, candles, right_share, test_accuracy=0.9)
    resolve_and_roll_up(
        settings,
        loader=lambda *_: candles,
        now=today + pd.Timedelta(days=1, hours=1),
        expiry_hours=48,
        log_to_mlflow=False,
    )
    live = live_performance(settings, "m", "1", days=7)
    assert live is not None and live["n_samples"] == 270
    config = RetrainingConfig(model_name="m", min_performance_samples=100, performance_margin=0.1, recent_days=7)
    pipeline = RetrainingPipeline(settings, config)
    production = ProductionVersion(
        version=1, run_id=None, metadata={"test_metrics": {"accuracy": 0.9, "f1_macro": 0.9}}
    )
    report = pipeline.check_performance(production=production)
    assert report.source == "live" and report.n_samples == 270
    assert report.dropped is fires, report.summary
    assert report.summary.startswith("performance drop") is fires


def test_a_version_deleted_from_the_registry_keeps_its_history(tmp_path, monkeypatch) -> None:
    """The outcome join needs nothing from the registry: the version row kept by the log is enough."""
    settings = _settings(tmp_path, monkeypatch)
    candles = _candles()
    _write(settings.jobs_database_url.get_secret_value(), [_record(candles["timestamp"].iloc[20], [0.1, 0.1, 0.8])])
    summary = resolve_and_roll_up(
        settings, loader=lambda *_: candles, now=candles["timestamp"].iloc[-1], log_to_mlflow=True
    )
    assert summary.resolved == 1 and summary.logged_to_mlflow == 0  # no such run: nothing logged, nothing broken
    row = live_metrics_frame(settings, "m").iloc[0]
    assert row["n_resolved"] == 1 and row["day"] == dt.date(2026, 3, 2) and row["test_accuracy"] == 0.5


def test_old_predictions_are_pruned_and_their_days_stay_rolled_up(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ML_PREDICTION_RETENTION_DAYS", "30")
    settings = _settings(tmp_path, monkeypatch)
    candles = _candles()
    _write(
        settings.jobs_database_url.get_secret_value(),
        [_record(candles["timestamp"].iloc[t], [0.1, 0.1, 0.8]) for t in range(10, 20)],
    )
    first = resolve_and_roll_up(
        settings, loader=lambda *_: candles, now=candles["timestamp"].iloc[-1], log_to_mlflow=False
    )
    assert first.resolved == 10 and first.pruned == 0
    later = resolve_and_roll_up(
        settings, loader=lambda *_: candles, now=START + pd.Timedelta(days=31), log_to_mlflow=False
    )
    assert later.pruned == 10
    engine = sa.create_engine(settings.jobs_database_url.get_secret_value())
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(predictions_table)).scalar() == 0
    engine.dispose()
    row = live_metrics_frame(settings, "m").iloc[0]
    assert row["n_predictions"] == 10 and row["n_resolved"] == 10  # the day's live metrics outlive the rows


def test_prometheus_exports_the_newest_live_metrics_of_each_version(tmp_path, monkeypatch) -> None:
    from api_support import service_settings
    from fastapi.testclient import TestClient

    from backend.api.main import create_app

    settings = _settings(tmp_path, monkeypatch)
    candles = _candles()
    _stream(settings, candles, 0.9, test_accuracy=0.9)
    resolve_and_roll_up(
        settings, loader=lambda *_: candles, now=candles["timestamp"].iloc[-1] + BAR * 10, log_to_mlflow=False
    )
    expected = live_metrics_frame(settings, "m").iloc[-1]
    app_settings = service_settings(
        settings.jobs_database_url.get_secret_value(), tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path}/mlflow.db"
    )
    with TestClient(create_app(app_settings)) as client:
        text = client.get("/metrics").text
    line = next(x for x in text.splitlines() if x.startswith('ml_live_accuracy{model="m",version="1"}'))
    assert float(line.split()[-1]) == pytest.approx(expected["accuracy"])
    assert 'ml_live_pnl{model="m",version="1"}' in text and 'ml_live_coverage{model="m",version="1"}' in text


def test_live_metrics_are_logged_against_the_versions_logged_model_and_skewed_clocks_join(
    tmp_path, monkeypatch
) -> None:
    """Each rolled-up day goes to the version's training run as ``live_*`` metrics linked to its logged model
    (so the MLflow model page shows live beside test quality); a bot clock 5 hours off changes nothing: rows
    are joined by candle time."""
    from mlflow import MlflowClient

    settings = _settings(tmp_path, monkeypatch)
    client = MlflowClient(settings.mlflow_tracking_uri)
    exp = client.create_experiment("model_training")
    run = client.create_run(exp)
    model = client.create_logged_model(exp, name="m", source_run_id=run.info.run_id)
    candles = _candles()
    records = [_record(candles["timestamp"].iloc[t], [0.1, 0.1, 0.8]) for t in range(10, 40)]
    skewed = [dataclasses.replace(r, predicted_at=r.predicted_at + dt.timedelta(hours=5)) for r in records]
    metadata = {
        "label_config": LABELS,
        "signal_policy": {"fee": FEE},
        "test_metrics": {"accuracy": 0.5},
        "run_id": run.info.run_id,
    }
    with PredictionLog(settings.jobs_database_url.get_secret_value(), flush_interval_s=0.05) as log:
        log.describe_version(version_row("m", "1", model.model_id, metadata, CLASSES))
        for r in skewed:
            log.record(r)
        assert log.flush(30)
    summary = resolve_and_roll_up(settings, loader=lambda *_: candles, now=candles["timestamp"].iloc[-1])
    assert summary.resolved == 30 and summary.logged_to_mlflow > 0, summary
    day = live_metrics_frame(settings, "m").iloc[0]
    expected = np.mean([_truth(candles, t)[0] == 2 for t in range(10, 40)])
    assert day["accuracy"] == pytest.approx(expected, abs=1e-12)
    history = client.get_metric_history(run.info.run_id, "live_accuracy")
    assert [m.value for m in history] == pytest.approx([day["accuracy"]])
    assert history[0].step == START.date().toordinal()
    linked = client.get_logged_model(model.model_id).metrics or []
    assert any(m.key == "live_accuracy" for m in linked)
