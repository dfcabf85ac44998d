"""The prediction log: every served prediction, recorded without slowing or failing the request.

    log = PredictionLog("postgresql://bot@db/ml")         # or sqlite:///mlruns/jobs.db (the embedded default)
    log.record(PredictionRecord(...))                      # a deque append: never blocks, never raises
    log.stats()                                            # recorded, written, dropped, pending, errors
    log.close()                                            # writes what is buffered (bounded wait)

:meth:`PredictionLog.record` appends to a bounded in-memory buffer; a background thread writes the
buffer in batches (``batch_size`` rows, at least every ``flush_interval_s``) to the table
``ml_predictions``. When the database is down the batch goes back to the buffer and the thread
retries with a growing pause; a full buffer drops its OLDEST record (counted in ``dropped``, one log
line per outage, not per record), so the newest predictions survive an outage and recording resumes
by itself when the database returns.

Rows are keyed by the candle a prediction was made for (``candle_time``, the open time of the last
candle of the window), not by wall time: a bot whose clock is off still joins to the right candles.
The outcome columns (``outcome_status``, ``realised_label``, ``realised_return``) are filled later by
the outcome job (:mod:`backend.ml_engine.monitoring`).
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from .config import Settings

__all__ = [
    "PENDING",
    "EXPIRED",
    "RESOLVED",
    "PredictionLog",
    "PredictionLogStats",
    "PredictionRecord",
    "input_digest",
    "prediction_log_url",
    "metadata",
    "predictions_table",
    "version_row",
    "versions_table",
]

logger = logging.getLogger("backend.ml_engine.prediction_log")

PENDING, RESOLVED, EXPIRED = "pending", "resolved", "expired"

metadata = sa.MetaData()

predictions_table = sa.Table(
    "ml_predictions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("predicted_at", sa.DateTime(timezone=True), nullable=False, doc="wall time the answer was given (UTC)"),
    sa.Column("symbol", sa.String(64), nullable=False),
    sa.Column("timeframe", sa.String(16), nullable=False),
    sa.Column("candle_time", sa.DateTime(timezone=True), nullable=False, doc="open time of the window's last candle"),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("model_id", sa.String(64), nullable=True, doc="MLflow LoggedModel id of the version"),
    sa.Column("probabilities", sa.Text(), nullable=False, doc='JSON {"down": p, "flat": p, "up": p}'),
    sa.Column("signal", sa.String(16), nullable=False),
    sa.Column("confidence", sa.Float(), nullable=False),
    sa.Column("latency_ms", sa.Float(), nullable=False),
    sa.Column("input_digest", sa.String(32), nullable=False, doc="sha256[:32] of the model input window"),
    sa.Column("source", sa.String(16), nullable=False, doc="predictor | api | pyfunc"),
    sa.Column("horizon", sa.Integer(), nullable=False, doc="candles until the outcome is known"),
    sa.Column("outcome_status", sa.String(16), nullable=False, server_default=PENDING),
    sa.Column("realised_label", sa.Integer(), nullable=True),
    sa.Column("realised_return", sa.Float(), nullable=True, doc="net return of the signal after fees"),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    # the outcome job: pending rows by candle time; the dashboard: a version's rows by candle time
    sa.Index("ix_ml_predictions_status_candle", "outcome_status", "candle_time"),
    sa.Index("ix_ml_predictions_version_candle", "model_name", "model_version", "candle_time"),
    sa.Index("ix_ml_predictions_symbol_candle", "symbol", "timeframe", "candle_time"),
    # the dashboard: a version's pending / expired counts without reading its resolved rows
    sa.Index("ix_ml_predictions_version_status", "model_name", "model_version", "outcome_status"),
)


versions_table = sa.Table(
    "ml_prediction_versions",
    metadata,
    sa.Column("model_name", sa.String(200), primary_key=True),
    sa.Column("model_version", sa.String(64), primary_key=True),
    sa.Column("model_id", sa.String(64), nullable=True),
    sa.Column("class_names", sa.Text(), nullable=False, doc="JSON list in probability order"),
    sa.Column("label_config", sa.Text(), nullable=False, doc="JSON LabelConfig of the version"),
    sa.Column("policy", sa.Text(), nullable=False, doc="JSON signal policy (fee, slippage)"),
    sa.Column("test_metrics", sa.Text(), nullable=False, doc="JSON test-time metrics (the reference lines)"),
    sa.Column("run_id", sa.String(64), nullable=True, doc="the training run (live metrics are logged there)"),
    sa.Column("first_served_at", sa.DateTime(timezone=True), nullable=False),
)
"""What the outcome join needs of each version that served, kept here so that a version deleted from the
registry keeps a readable history (written by :meth:`PredictionLog.describe_version`)."""


def version_row(
    model_name: str, version: str, model_id: str | None, metadata_json: Mapping[str, Any], class_names: Sequence[str]
) -> dict[str, Any]:
    """The ``ml_prediction_versions`` row of a loaded version from its ``metadata.json``."""
    labels = metadata_json.get("label_config") or {}
    if not labels:
        pipeline = metadata_json.get("pipeline") or {}
        labels = pipeline.get("label_config") or {}
    return {
        "model_name": str(model_name)[:200],
        "model_version": str(version)[:64],
        "model_id": None if model_id is None else str(model_id)[:64],
        "class_names": json.dumps(list(class_names)),
        "label_config": json.dumps(dict(labels)),
        "policy": json.dumps(dict(metadata_json.get("signal_policy") or {})),
        "test_metrics": json.dumps(
            {k: v for k, v in (metadata_json.get("test_metrics") or {}).items() if isinstance(v, (int, float))}
        ),
        "run_id": metadata_json.get("run_id"),
        "first_served_at": dt.datetime.now(dt.UTC),
    }


def prediction_log_url(settings: Settings) -> str:
    """``ML_PREDICTION_LOG_URL``, else the jobs database (``ML_JOBS_DATABASE_URL``)."""
    configured = settings.prediction_log_url
    if configured is not None and configured.get_secret_value().strip():
        return configured.get_secret_value().strip()
    return settings.jobs_database_url.get_secret_value()


def input_digest(window: np.ndarray) -> str:
    """A short digest of the model input (the same window gives the same digest on any machine)."""
    import numpy as np

    arr = np.ascontiguousarray(window, dtype=np.float32)
    return hashlib.sha256(arr.tobytes()).hexdigest()[:32]


def _utc(value: dt.datetime | str) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


@dataclass(frozen=True)
class PredictionRecord:
    """One served prediction."""

    symbol: str
    timeframe: str
    candle_time: dt.datetime | str
    model_name: str
    model_version: str
    probabilities: Mapping[str, float]
    signal: str
    confidence: float
    latency_ms: float
    input_digest: str
    horizon: int
    model_id: str | None = None
    source: str = "predictor"
    predicted_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def row(self) -> dict[str, Any]:
        return {
            "predicted_at": _utc(self.predicted_at),
            "symbol": str(self.symbol)[:64],
            "timeframe": str(self.timeframe)[:16],
            "candle_time": _utc(self.candle_time),
            "model_name": str(self.model_name)[:200],
            "model_version": str(self.model_version)[:64],
            "model_id": None if self.model_id is None else str(self.model_id)[:64],
            "probabilities": json.dumps({str(k): round(float(v), 7) for k, v in self.probabilities.items()}),
            "signal": str(self.signal)[:16],
            "confidence": float(self.confidence),
            "latency_ms": float(self.latency_ms),
            "input_digest": str(self.input_digest)[:32],
            "source": str(self.source)[:16],
            "horizon": int(self.horizon),
            "outcome_status": PENDING,
        }


@dataclass(frozen=True)
class PredictionLogStats:
    recorded: int
    """Records handed to :meth:`PredictionLog.record`."""
    written: int
    """Rows written to the database."""
    dropped: int
    """Records lost: the buffer was full (the oldest went first)."""
    pending: int
    """Records in the buffer now."""
    write_errors: int
    """Failed batch writes (each retried)."""
    database_ok: bool
    """Whether the last write succeeded (True before the first)."""


def create_engine(url: str) -> sa.Engine:
    """An engine for ``url`` with short connect timeouts (a database that is down must not hold the writer long)."""
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    elif url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 3}
        kwargs["pool_size"] = 2
        kwargs["max_overflow"] = 2
    return sa.create_engine(url, **kwargs)


def ensure_schema(engine: sa.Engine) -> None:
    """Create the tables and their indexes when missing, an index added since a table was created included
    (idempotent; safe from several processes)."""
    try:
        metadata.create_all(engine, checkfirst=True)
    except (sa.exc.IntegrityError, sa.exc.ProgrammingError):  # another process created it at the same moment
        metadata.create_all(engine, checkfirst=True)
    for table in metadata.sorted_tables:
        have = {ix["name"] for ix in sa.inspect(engine).get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in have:
                try:
                    index.create(engine, checkfirst=True)
                except (sa.exc.IntegrityError, sa.exc.ProgrammingError, sa.exc.OperationalError):
                    logger.info("index %s: created by another process meanwhile", index.name)


class PredictionLog:
    """Buffered, batched, background recording of predictions into ``ml_predictions`` (see the module doc)."""

    def __init__(
        self,
        url: str,
        *,
        capacity: int = 100_000,
        batch_size: int = 500,
        flush_interval_s: float = 1.0,
        max_backoff_s: float = 10.0,
        engine: sa.Engine | None = None,
    ) -> None:
        if capacity < 1 or batch_size < 1:
            raise ValueError("capacity and batch_size must be >= 1")
        self.url = url
        self.capacity = int(capacity)
        self.batch_size = int(batch_size)
        self.flush_interval_s = float(flush_interval_s)
        self.max_backoff_s = float(max_backoff_s)
        self._engine = engine
        self._buffer: collections.deque[dict[str, Any]] = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flushed = threading.Condition(self._lock)
        self._recorded = self._written = self._dropped = self._errors = 0
        self._in_flight = 0
        self._db_ok = True
        self._schema_ready = False
        self._dropped_at_outage = 0
        self._versions_known: set[tuple[str, str]] = set()
        self._versions_pending: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, settings: Settings) -> PredictionLog:
        """A log on ``ML_PREDICTION_LOG_URL``, else the jobs database (SQLite in the embedded default)."""
        return cls(prediction_log_url(settings), capacity=int(settings.prediction_log_capacity))

    # -- the request side --------------------------------------------------------------------------
    def record(self, record: PredictionRecord | Mapping[str, Any]) -> None:
        """Buffer one record: O(1), never blocks on the database, never raises for a full buffer."""
        row = record.row() if isinstance(record, PredictionRecord) else dict(record)
        with self._lock:
            self._recorded += 1
            if self._stop.is_set():  # closed: nothing would write it
                self._dropped += 1
                return
            if len(self._buffer) >= self.capacity:
                self._buffer.popleft()
                self._dropped += 1
            self._buffer.append(row)
            full = len(self._buffer) >= self.batch_size
        if full:
            self._wake.set()

    def describe_version(self, row: Mapping[str, Any]) -> None:
        """Keep a version's label config, policy and test metrics (:func:`version_row`) once per log: written
        by the writer before its predictions, never twice."""
        key = (str(row["model_name"]), str(row["model_version"]))
        with self._lock:
            if key in self._versions_known:
                return
            self._versions_known.add(key)
            self._versions_pending.append(dict(row))

    def record_many(self, records: Iterable[PredictionRecord]) -> None:
        for record in records:
            self.record(record)

    def stats(self) -> PredictionLogStats:
        with self._lock:
            return PredictionLogStats(
                recorded=self._recorded,
                written=self._written,
                dropped=self._dropped,
                pending=len(self._buffer) + self._in_flight,
                write_errors=self._errors,
                database_ok=self._db_ok,
            )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything recorded so far is written (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._lock:
            while self._buffer or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._flushed.wait(min(left, 0.2))
                self._wake.set()
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is buffered (waiting at most ``timeout``), then stop the writer."""
        if self._stop.is_set():
            return
        self.flush(timeout)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=max(1.0, timeout))
        if self._engine is not None:
            self._engine.dispose()
        left = self.stats().pending
        if left:
            logger.warning("prediction log closed with %d record(s) not written", left)

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the writer --------------------------------------------------------------------------------
    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = create_engine(self.url)
        return self._engine

    def _take(self) -> list[dict[str, Any]]:
        with self._lock:
            n = min(self.batch_size, len(self._buffer))
            batch = [self._buffer.popleft() for _ in range(n)]
            self._in_flight = n
            return batch

    def _give_back(self, batch: Sequence[dict[str, Any]]) -> None:
        """A failed batch goes back to the front of the buffer; what no longer fits is the oldest: dropped."""
        with self._lock:
            self._in_flight = 0
            room = self.capacity - len(self._buffer)
            keep = list(batch[-room:]) if room > 0 else []
            lost = len(batch) - len(keep)
            self._buffer.extendleft(reversed(keep))
            self._dropped += lost
            self._flushed.notify_all()

    def _write(self, batch: Sequence[dict[str, Any]]) -> None:
        if not self._schema_ready:
            ensure_schema(self.engine)
            self._schema_ready = True
        with self._lock:
            versions, self._versions_pending = self._versions_pending, []
        try:
            with self.engine.begin() as conn:
                for row in versions:
                    t = versions_table.c
                    found = conn.execute(
                        sa.select(t.model_name).where(
                            t.model_name == row["model_name"], t.model_version == row["model_version"]
                        )
                    ).first()
                    if found is None:
                        conn.execute(versions_table.insert().values(**row))
                conn.execute(predictions_table.insert(), list(batch))
        except Exception:
            with self._lock:
                self._versions_pending[:0] = versions
            raise

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
                    with self._lock:
                        self._in_flight = 0
                        self._flushed.notify_all()
                    break
                try:
                    self._write(batch)
                except Exception as exc:  # noqa: BLE001 - the database is down or refuses: retry later
                    self._give_back(batch)
                    with self._lock:
                        self._errors += 1
                        first = self._db_ok
                        self._db_ok = False
                        if first:
                            self._dropped_at_outage = self._dropped
                    if first:
                        logger.warning(
                            "prediction log: writing to the database failed (%s); buffering up to %d records, "
                            "the oldest dropped beyond that",
                            type(exc).__name__,
                            self.capacity,
                        )
                    backoff = min(self.max_backoff_s, max(0.5, backoff * 2))
                    break
                with self._lock:
                    self._written += len(batch)
                    self._in_flight = 0
                    recovered = not self._db_ok
                    self._db_ok = True
                    lost = self._dropped - self._dropped_at_outage
                    self._flushed.notify_all()
                if recovered:
                    logger.warning("prediction log: the database is back; %d record(s) were dropped meanwhile", lost)
                backoff = 0.0
            if stopping:
                return
