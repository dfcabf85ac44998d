"""Prediction traces (ML_TRACE_SAMPLE_RATE): a sampled share of the recorded predictions also written as
MLflow traces to the experiment ``prediction_traces`` of the settings' tracking store, by a background
thread, so MLflow's Traces tab shows real predictions. SQLite stores; one tiny model trained for the module."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import SAMPLE_DATA, make_settings, tiny_production_model
from pydantic import ValidationError

from backend.ml_engine.config import Settings
from backend.ml_engine.data import load_candles
from backend.ml_engine.prediction_log import PredictionRecord, predictions_table
from backend.ml_engine.prediction_traces import (
    EXPERIMENT_TRACES,
    SPAN_TYPE,
    TRACES_DESCRIPTION,
    PredictionTracer,
    TraceWriter,
)
from backend.ml_engine.predictor import Predictor

OHLCV = ["open", "high", "low", "close", "volume"]
NAME = "traced"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from backend.ml_engine.mlflow_integration.stores import resolve_tracking_uri

    root = tmp_path_factory.mktemp("traces")
    settings = make_settings(root)
    result = tiny_production_model(settings, NAME)
    candles = load_candles(str(SAMPLE_DATA), symbols=["ETH/BTC"], timeframe="5m")[0].frame[["timestamp", *OHLCV]]
    return {
        "root": root,
        "uri": resolve_tracking_uri(settings.mlflow_tracking_uri),
        "model_id": result["model_uri"].removeprefix("models:/"),
        "candles": candles.reset_index(drop=True),
    }


def _env_settings(model, monkeypatch, tmp_path: Path, rate: str) -> Settings:
    """Settings read from the environment, as a deployment reads them: the SQLite store, recording on."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", model["uri"])
    monkeypatch.setenv("ML_TRACE_SAMPLE_RATE", rate)
    monkeypatch.setenv("ML_PREDICTION_LOG", "1")
    monkeypatch.setenv("ML_PREDICTION_LOG_URL", f"sqlite:///{tmp_path}/log.db")
    root = model["root"]
    return Settings(
        mlflow_artifact_location=str(root / "artifacts"),
        output_dir=str(root / "outputs"),
        cache_dir=str(root / "cache"),
    )


def _traces(uri: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT_TRACES)
    if experiment is None:
        return []
    return list(client.search_traces(locations=[experiment.experiment_id], max_results=500))


def _log_rows(url: str) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(predictions_table))]
    finally:
        engine.dispose()


def test_every_recorded_prediction_is_a_trace_at_rate_one(model, monkeypatch, tmp_path):
    from mlflow import MlflowClient

    settings = _env_settings(model, monkeypatch, tmp_path, "1.0")
    assert settings.trace_sample_rate == 1.0
    before = len(_traces(model["uri"]))
    candles = model["candles"]
    predictor = Predictor(NAME, settings=settings, refresh_interval_s=0, symbol="ETH/BTC")
    try:
        assert predictor.tracer is not None and predictor.prediction_log is not None
        singles = [predictor.predict(candles.iloc[end - 300 : end]) for end in range(400, 1200, 100)]  # 8
        many = predictor.predict_many({"ETH/BTC": candles.iloc[1500:1800], "XRP/BTC": candles.iloc[2000:2300]})
        shape = list(predictor.build_window(candles.iloc[100:400])[0].shape[1:])
        assert predictor.tracer.flush(60), predictor.tracer.stats()
        assert predictor.prediction_log.flush(30)
        log_rows = _log_rows(f"sqlite:///{tmp_path}/log.db")
    finally:
        predictor.close()

    traces = _traces(model["uri"])
    assert len(traces) - before == 10 == len(log_rows)
    client = MlflowClient(model["uri"])
    experiment = client.get_experiment_by_name(EXPERIMENT_TRACES)
    assert experiment.tags["mlflow.note.content"] == TRACES_DESCRIPTION
    mine = {t.data.spans[0].inputs["input_digest"]: t for t in traces}
    expected = {p.candle_time: p for p in [*singles, *many.values()]}
    by_digest = {r["input_digest"]: r for r in log_rows}
    assert set(by_digest) <= set(mine)  # the same window, the same digest as the prediction log row
    for digest, row in by_digest.items():
        trace = mine[digest]
        (span,) = trace.data.spans
        prediction = expected[span.inputs["candle_time"]]
        assert pd.Timestamp(span.inputs["candle_time"]) == pd.Timestamp(row["candle_time"]).tz_localize("UTC")
        assert span.inputs == {
            "symbol": row["symbol"],
            "timeframe": "5m",
            "candle_time": prediction.candle_time,
            "window_shape": shape,
            "input_digest": digest,
        }
        assert span.outputs["signal"] == prediction.signal == row["signal"]
        assert span.outputs["probabilities"] == pytest.approx(prediction.probabilities, abs=1e-7)
        assert span.outputs["confidence"] == pytest.approx(prediction.confidence)
        assert span.span_type == SPAN_TYPE and span.name == "predict"
        attrs = span.attributes
        assert attrs["model_name"] == NAME and attrs["model_version"] == "1"
        assert attrs["model_id"] == model["model_id"] and attrs["source"] == "predictor"
        assert attrs["latency_ms"] == pytest.approx(row["latency_ms"]) and attrs["latency_ms"] > 0
        assert trace.info.state.value == "OK" and trace.info.trace_metadata["mlflow.modelId"] == model["model_id"]
        assert trace.info.tags["symbol"] == row["symbol"] and trace.info.tags["model_version"] == "1"
        assert json.loads(trace.info.request_preview)["input_digest"] == digest
    assert {mine[d].info.tags["symbol"] for d in by_digest} == {"ETH/BTC", "XRP/BTC"}
    # linked to the version's logged model, and searchable by tag
    assert len(client.search_traces(locations=[experiment.experiment_id], model_id=model["model_id"])) >= 10
    found = client.search_traces(locations=[experiment.experiment_id], filter_string="tags.symbol = 'XRP/BTC'")
    assert len(found) >= 1


def test_rate_zero_gives_no_traces(model, monkeypatch, tmp_path):
    settings = _env_settings(model, monkeypatch, tmp_path, "0")
    before = len(_traces(model["uri"]))
    predictor = Predictor(NAME, settings=settings, refresh_interval_s=0, symbol="ETH/BTC")
    try:
        assert predictor.tracer is None
        for end in range(400, 900, 100):
            predictor.predict(model["candles"].iloc[end - 300 : end])
        assert predictor.prediction_log is not None and predictor.prediction_log.flush(30)
    finally:
        predictor.close()
    time.sleep(1.5)  # longer than a writer's flush interval, were there one
    assert len(_traces(model["uri"])) == before
    assert len(_log_rows(f"sqlite:///{tmp_path}/log.db")) == 5


def test_traces_go_to_the_settings_store_not_mlflows_global_one(model, monkeypatch, tmp_path):
    """MLflow's global tracking URI (MLFLOW_TRACKING_URI) names another store: the traces still go to the
    predictor's settings, and MLflow's global state is left as it was."""
    import mlflow

    decoy = f"sqlite:///{tmp_path}/global.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", decoy)
    monkeypatch.setattr("mlflow.tracking._tracking_service.utils._tracking_uri", None, raising=False)
    root = model["root"]
    settings = make_settings(
        root,
        tracking_uri=model["uri"],
        trace_sample_rate=1.0,
        prediction_log=True,
        prediction_log_url=f"sqlite:///{tmp_path}/log.db",
    )
    before = len(_traces(model["uri"]))
    predictor = Predictor(NAME, settings=settings, refresh_interval_s=0, symbol="ETH/BTC")
    try:
        for end in (500, 600, 700):
            predictor.predict(model["candles"].iloc[end - 300 : end])
        assert predictor.tracer is not None and predictor.tracer.flush(60)
    finally:
        predictor.close()
    assert len(_traces(model["uri"])) - before == 3
    assert not (tmp_path / "global.db").exists()  # nothing opened MLflow's global store
    assert mlflow.get_tracking_uri() == decoy


def _record(i: int) -> PredictionRecord:
    return PredictionRecord(
        symbol="ETH/BTC",
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


class _Collect:
    def __init__(self) -> None:
        self.payloads: list[dict] = []

    def offer(self, payload: dict) -> None:
        self.payloads.append(payload)


def test_the_draw_is_per_prediction():
    draws = iter([0.10, 0.30, 0.24, 0.90, 0.25, 0.01])
    writer = _Collect()
    tracer = PredictionTracer(writer, 0.25, draw=lambda: next(draws))  # type: ignore[arg-type]
    assert [tracer.maybe_trace(_record(i), (16, 20)) for i in range(6)] == [True, False, True, False, False, True]
    assert [p["inputs"]["input_digest"] for p in writer.payloads] == [f"{i:032d}" for i in (0, 2, 5)]
    assert writer.payloads[0]["end_ns"] - writer.payloads[0]["start_ns"] == 300_000  # the latency
    with pytest.raises(ValueError):
        PredictionTracer(writer, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Settings(trace_sample_rate=1.5)
    assert PredictionTracer.from_settings(Settings(trace_sample_rate=0.0)) is None


def test_a_store_that_fails_never_reaches_the_request(tmp_path):
    (tmp_path / "a_file").write_text("")  # the store's folder cannot be created under a file
    store = f"sqlite:///{tmp_path}/a_file/mlflow.db"
    writer = TraceWriter(store, batch_size=5, flush_interval_s=0.05, max_backoff_s=0.2)
    tracer = PredictionTracer(writer, 1.0)
    try:
        t0 = time.perf_counter()
        assert all(tracer.maybe_trace(_record(i), (16, 20)) for i in range(50))
        assert time.perf_counter() - t0 < 1.0  # appends, not writes
        deadline = time.monotonic() + 30
        while writer.stats().errors == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = writer.stats()
        assert stats.errors >= 1 and stats.written == 0 and stats.offered == 50
    finally:
        writer.close(timeout=5)
    stats = writer.stats()
    assert stats.dropped == 50 and stats.pending == 0
