"""Prediction traces: a sampled share of the recorded predictions, also written as MLflow traces.

    tracer = PredictionTracer.from_settings(settings)     # None when ML_TRACE_SAMPLE_RATE is 0
    tracer.maybe_trace(record, window_shape=(64, 23))      # a draw and a deque append: never blocks, never raises
    tracer.flush()                                         # wait until what was sampled is written (tests)

With ``ML_TRACE_SAMPLE_RATE`` above 0, each prediction the prediction log records
(:meth:`Predictor._record <backend.ml_engine.predictor.Predictor>`, the served pyfunc) is drawn at
random with that probability; a drawn one becomes one MLflow trace (a single ``PREDICTION`` span) in
the experiment ``prediction_traces`` of the settings' tracking store, so MLflow's Traces tab shows
what the models really answered:

* inputs: ``symbol``, ``timeframe``, ``candle_time``, ``window_shape`` (the model input's (T, F)),
  ``input_digest`` (the prediction log's digest of the window: the same row there);
* outputs: ``probabilities``, ``signal``, ``confidence``;
* span attributes: ``model_name``, ``model_version``, ``model_id``, ``latency_ms``, ``source``;
* trace tags (searchable, ``tags.symbol = 'ETH/BTC'``): ``model_name``, ``model_version``, ``symbol``,
  ``signal``, ``source``; metadata ``mlflow.modelId`` links the trace to the version's logged model
  (``MlflowClient.search_traces(model_id=...)``).

Where traces go
---------------
MLflow's tracing APIs (``mlflow.start_span``, ``MlflowClient.start_trace`` / ``end_trace``,
``mlflow.log_trace``, 3.17) all end in the process-wide OpenTelemetry tracer provider, whose exporter
writes to ``mlflow.get_tracking_uri()`` at the time it was set up; ``mlflow.tracing.set_destination``
only chooses the experiment (and re-initialises that global provider). This project never sets
MLflow's global URI, and a predictor may serve from a store other than the global one, so the trace
is built here as a finished span (``mlflow.entities.Span.from_dict``) and written the way MLflow's own
exporter (``MlflowV3SpanExporter._log_trace``) writes one, through a ``TracingClient`` of the
settings' tracking URI: ``log_spans`` (SQL stores keep spans in the database), ``start_trace`` (the
trace info), and the spans as the trace's artifact where the store keeps no spans. No global MLflow
state is read or changed.

Never on the request path
-------------------------
The request thread only draws a random number and appends to a bounded buffer. One writer thread
per tracking store (shared by every predictor of the process, started at its first trace) creates
the experiment when missing and writes the buffer in batches. A store that fails costs the batch
(counted in ``errors`` / ``dropped``, one warning per outage) and a growing pause, never a request: the
traces are a sample, the prediction log is the record. What is still buffered at interpreter exit is
written with a bounded wait.
"""

from __future__ import annotations

import atexit
import base64
import collections
import datetime as dt
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .config import Settings
    from .prediction_log import PredictionRecord

__all__ = [
    "EXPERIMENT_TRACES",
    "SPAN_NAME",
    "SPAN_TYPE",
    "TRACES_DESCRIPTION",
    "PredictionTracer",
    "TraceWriter",
    "TraceWriterStats",
    "trace_payload",
]

logger = logging.getLogger("backend.ml_engine.prediction_traces")

#: The experiment the traces go to (created with :data:`TRACES_DESCRIPTION` when missing).
EXPERIMENT_TRACES = "prediction_traces"
#: Name of the trace and of its one span.
SPAN_NAME = "predict"
#: Span type of that span (MLflow accepts any string; its own types are GenAI ones).
SPAN_TYPE = "PREDICTION"
TRACES_DESCRIPTION = (
    "Трассы предсказаний: случайная доля (ML_TRACE_SAMPLE_RATE) предсказаний, записанных в журнал "
    "предсказаний (Predictor, POST /predict, pyfunc): входы (символ, таймфрейм, время свечи, форма окна, "
    "дайджест входа), выходы (вероятности, сигнал), модель, версия, model_id и задержка.\n\n"
    "Prediction traces: a random share (ML_TRACE_SAMPLE_RATE) of the predictions recorded in the "
    "prediction log (Predictor, POST /predict, the served pyfunc): inputs (symbol, timeframe, candle time, "
    "window shape, input digest), outputs (probabilities, signal), model, version, model_id and latency."
)

_PREVIEW_CHARS = 1000  # MLflow's request_preview / response_preview columns


def _utc(value: dt.datetime | str) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def trace_payload(record: PredictionRecord, window_shape: Sequence[int]) -> dict[str, Any]:
    """What a trace of ``record`` holds: ``inputs``, ``outputs``, ``attributes``, ``tags``, ``model_id``,
    ``start_ns``, ``end_ns`` (plain JSON-able values, computed on the request side: cheap)."""
    end = _utc(record.predicted_at)
    end_ns = int(end.timestamp()) * 1_000_000_000 + end.microsecond * 1000
    latency_ms = max(0.0, float(record.latency_ms))
    candle_time = record.candle_time if isinstance(record.candle_time, str) else _utc(record.candle_time).isoformat()
    return {
        "inputs": {
            "symbol": str(record.symbol),
            "timeframe": str(record.timeframe),
            "candle_time": candle_time,
            "window_shape": [int(n) for n in window_shape],
            "input_digest": str(record.input_digest),
        },
        "outputs": {
            "probabilities": {str(k): float(v) for k, v in record.probabilities.items()},
            "signal": str(record.signal),
            "confidence": float(record.confidence),
        },
        "attributes": {
            "model_name": str(record.model_name),
            "model_version": str(record.model_version),
            "model_id": None if record.model_id is None else str(record.model_id),
            "latency_ms": latency_ms,
            "source": str(record.source),
        },
        "tags": {
            "model_name": str(record.model_name)[:250],
            "model_version": str(record.model_version)[:250],
            "symbol": str(record.symbol)[:250],
            "signal": str(record.signal)[:250],
            "source": str(record.source)[:250],
        },
        "model_id": None if record.model_id is None else str(record.model_id),
        "start_ns": end_ns - int(latency_ms * 1_000_000),
        "end_ns": end_ns,
    }


def _random_id(n_bytes: int) -> int:
    while True:
        value = int.from_bytes(os.urandom(n_bytes), "big")
        if value:
            return value


def _b64(value: int, n_bytes: int) -> str:
    return base64.b64encode(value.to_bytes(n_bytes, "big")).decode("ascii")


def _build(payload: Mapping[str, Any], experiment_id: str) -> tuple[Any, Any]:
    """(the finished root span, its TraceInfo) of one payload (writer thread)."""
    from mlflow.entities import Span, TraceInfo, TraceLocation, TraceState
    from mlflow.tracing.constant import (
        TRACE_SCHEMA_VERSION,
        TRACE_SCHEMA_VERSION_KEY,
        SpanAttributeKey,
        TraceMetadataKey,
        TraceTagKey,
    )

    otel_trace_id = _random_id(16)
    trace_id = f"tr-{otel_trace_id:032x}"
    inputs, outputs = payload["inputs"], payload["outputs"]
    attributes = {
        SpanAttributeKey.REQUEST_ID: trace_id,
        SpanAttributeKey.SPAN_TYPE: SPAN_TYPE,
        SpanAttributeKey.INPUTS: inputs,
        SpanAttributeKey.OUTPUTS: outputs,
        **payload["attributes"],
    }
    span = Span.from_dict(
        {
            "trace_id": _b64(otel_trace_id, 16),
            "span_id": _b64(_random_id(8), 8),
            "parent_span_id": None,
            "name": SPAN_NAME,
            "start_time_unix_nano": payload["start_ns"],
            "end_time_unix_nano": payload["end_ns"],
            "events": [],
            "status": {"code": "STATUS_CODE_OK", "message": ""},
            # a span keeps its attributes JSON-encoded (as LiveSpan writes them)
            "attributes": {k: json.dumps(v) for k, v in attributes.items()},
        }
    )
    metadata = {TRACE_SCHEMA_VERSION_KEY: str(TRACE_SCHEMA_VERSION)}
    if payload.get("model_id"):
        metadata[TraceMetadataKey.MODEL_ID] = str(payload["model_id"])
    info = TraceInfo(
        trace_id=trace_id,
        trace_location=TraceLocation.from_experiment_id(experiment_id),
        request_time=payload["start_ns"] // 1_000_000,
        execution_duration=max(0, (payload["end_ns"] - payload["start_ns"]) // 1_000_000),
        state=TraceState.OK,
        request_preview=json.dumps(inputs)[:_PREVIEW_CHARS],
        response_preview=json.dumps(outputs)[:_PREVIEW_CHARS],
        trace_metadata=metadata,
        tags={TraceTagKey.TRACE_NAME: SPAN_NAME, **payload["tags"]},
    )
    return span, info


@dataclass(frozen=True)
class TraceWriterStats:
    offered: int
    """Traces handed to the writer."""
    written: int
    """Traces written to the tracking store."""
    dropped: int
    """Traces lost: a full buffer (the oldest went first) or a batch the store refused."""
    pending: int
    """Traces in the buffer or being written now."""
    errors: int
    """Failed batch writes."""


class TraceWriter:
    """One background writer of traces to one tracking store and experiment (see the module doc)."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        experiment_name: str = EXPERIMENT_TRACES,
        artifact_location_root: str | None = None,
        capacity: int = 10_000,
        batch_size: int = 100,
        flush_interval_s: float = 1.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        if capacity < 1 or batch_size < 1:
            raise ValueError("capacity and batch_size must be >= 1")
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.artifact_location_root = artifact_location_root
        self.capacity = int(capacity)
        self.batch_size = int(batch_size)
        self.flush_interval_s = float(flush_interval_s)
        self.max_backoff_s = float(max_backoff_s)
        self.experiment_id: str | None = None
        self._buffer: collections.deque[dict[str, Any]] = collections.deque()
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._offered = self._written = self._dropped = self._errors = self._in_flight = 0
        self._store_ok = True
        self._client: Any = None
        self._log_spans = True  # False once the store says it keeps no spans (they go to artifacts)

    # -- the request side --------------------------------------------------------------------------
    def offer(self, payload: dict[str, Any]) -> None:
        """Buffer one trace (:func:`trace_payload`): O(1), never blocks on the store."""
        with self._lock:
            if self._stop.is_set():
                return
            self._offered += 1
            if len(self._buffer) >= self.capacity:
                self._buffer.popleft()
                self._dropped += 1
            self._buffer.append(payload)
            full = len(self._buffer) >= self.batch_size
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="prediction-traces", daemon=True)
                self._thread.start()
        if full:
            self._wake.set()

    def stats(self) -> TraceWriterStats:
        with self._lock:
            return TraceWriterStats(
                offered=self._offered,
                written=self._written,
                dropped=self._dropped,
                pending=len(self._buffer) + self._in_flight,
                errors=self._errors,
            )

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything offered so far is written or dropped (True), or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._buffer or self._in_flight:
                if self._thread is None or not self._thread.is_alive():
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.set()
                self._done.wait(min(left, 0.2))
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is buffered (waiting at most ``timeout``), then stop the thread."""
        if self._stop.is_set():
            return
        self.flush(timeout)
        with self._lock:
            self._stop.set()
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout=max(1.0, timeout))
        left = self.stats().pending
        if left:
            logger.warning("prediction traces: closed with %d trace(s) not written", left)

    # -- the writer --------------------------------------------------------------------------------
    def _experiment(self) -> str:
        if self.experiment_id is None:
            from mlflow import MlflowClient

            from .mlflow_integration.experiments import ensure_experiment

            client = MlflowClient(self.tracking_uri)
            self.experiment_id = ensure_experiment(
                client, self.experiment_name, self.artifact_location_root, description=TRACES_DESCRIPTION
            )
        return self.experiment_id

    def _tracing_client(self) -> Any:
        if self._client is None:
            from mlflow.tracing.client import TracingClient

            self._client = TracingClient(self.tracking_uri)
        return self._client

    def _write(self, batch: Sequence[Mapping[str, Any]]) -> None:
        from mlflow.entities import TraceData
        from mlflow.tracing.constant import SpansLocation, TraceTagKey

        experiment_id = self._experiment()
        client = self._tracing_client()
        built = [_build(payload, experiment_id) for payload in batch]
        if self._log_spans:
            try:  # SQL stores keep spans in the database (what MLflow's exporter does first)
                client.log_spans(experiment_id, [span for span, _ in built])
            except NotImplementedError:
                self._log_spans = False
        for span, info in built:
            stored = client.start_trace(info)
            if stored.tags.get(TraceTagKey.SPANS_LOCATION) != SpansLocation.TRACKING_STORE.value:
                client._upload_trace_data(stored, TraceData(spans=[span]))

    def _take(self) -> list[dict[str, Any]]:
        with self._lock:
            n = min(self.batch_size, len(self._buffer))
            batch = [self._buffer.popleft() for _ in range(n)]
            self._in_flight = n
            return batch

    def _run(self) -> None:
        backoff = 0.0
        while True:
            if backoff:
                self._stop.wait(backoff)
            else:
                self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            stopping = self._stop.is_set()
            while True:
                batch = self._take()
                if not batch:
                    break
                try:
                    self._write(batch)
                except Exception as exc:  # noqa: BLE001 - a sample: the batch is dropped, requests never see it
                    with self._lock:
                        self._errors += 1
                        self._dropped += len(batch)
                        self._in_flight = 0
                        first, self._store_ok = self._store_ok, False
                        self._done.notify_all()
                    if first:
                        logger.warning(
                            "prediction traces: writing to %s failed (%s: %s); traces are dropped until it works",
                            _masked(self.tracking_uri),
                            type(exc).__name__,
                            " ".join(str(exc).split())[:300],
                        )
                    backoff = 0.0 if stopping else min(self.max_backoff_s, max(1.0, backoff * 2))
                    if not stopping:
                        break
                    continue
                with self._lock:
                    self._written += len(batch)
                    self._in_flight = 0
                    recovered, self._store_ok = not self._store_ok, True
                    self._done.notify_all()
                if recovered:
                    logger.warning("prediction traces: %s is writable again", _masked(self.tracking_uri))
                backoff = 0.0
            with self._lock:
                self._in_flight = 0
                self._done.notify_all()
            if stopping:
                return


def _masked(uri: str) -> str:
    from .mlflow_integration.stores import mask_uri

    return mask_uri(uri)


_writers: dict[tuple[str, str, str | None], TraceWriter] = {}
_writers_lock = threading.Lock()


def shared_writer(tracking_uri: str, artifact_location_root: str | None = None) -> TraceWriter:
    """The process's writer for ``tracking_uri`` (created at the first call; closed at exit)."""
    key = (tracking_uri, EXPERIMENT_TRACES, artifact_location_root)
    with _writers_lock:
        writer = _writers.get(key)
        if writer is None:
            if not _writers:
                atexit.register(_close_all)
            writer = _writers[key] = TraceWriter(tracking_uri, artifact_location_root=artifact_location_root)
        return writer


def _close_all(timeout: float = 5.0) -> None:
    with _writers_lock:
        writers = list(_writers.values())
        _writers.clear()
    for writer in writers:
        try:
            writer.close(timeout)
        except Exception:  # interpreter exit: nothing left to tell
            logger.debug("trace writer close failed", exc_info=True)


class PredictionTracer:
    """Samples recorded predictions (``sample_rate``) into MLflow traces written by a `TraceWriter`."""

    def __init__(
        self,
        writer: TraceWriter,
        sample_rate: float,
        *,
        draw: Callable[[], float] = random.random,
    ) -> None:
        rate = float(sample_rate)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"sample_rate must be in [0, 1], got {sample_rate!r}")
        self.writer = writer
        self.sample_rate = rate
        self._draw = draw

    @classmethod
    def from_settings(cls, settings: Settings, tracking_uri: str | None = None) -> PredictionTracer | None:
        """A tracer on the process's shared writer for the settings' tracking store (``tracking_uri``
        overrides it); None when ``ML_TRACE_SAMPLE_RATE`` is 0."""
        rate = float(settings.trace_sample_rate)
        if rate <= 0.0:
            return None
        from .mlflow_integration.stores import resolve_tracking_uri

        uri = resolve_tracking_uri(tracking_uri if tracking_uri is not None else settings.mlflow_tracking_uri)
        root = str(settings.mlflow_artifact_location or "") or None
        return cls(shared_writer(uri, root), rate)

    def maybe_trace(self, record: PredictionRecord, window_shape: Sequence[int]) -> bool:
        """Draw; when drawn, hand the trace of ``record`` to the writer. True when handed over. Never raises."""
        try:
            if self.sample_rate <= 0.0 or (self.sample_rate < 1.0 and self._draw() >= self.sample_rate):
                return False
            self.writer.offer(trace_payload(record, window_shape))
            return True
        except Exception:  # tracing must never fail a prediction
            logger.warning("prediction not traced", exc_info=True)
            return False

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the traces handed over so far are written (see `TraceWriter.flush`)."""
        return self.writer.flush(timeout)

    def stats(self) -> TraceWriterStats:
        return self.writer.stats()
