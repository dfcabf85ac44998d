"""Prometheus metrics of the API process: the cluster's jobs, queue and workers, and the predictions
this process served. Exposed by the API as ``GET /metrics`` (:mod:`backend.api.routes.metrics`).

    metrics = build_metrics(services)                 # one registry per app, not the global one
    with metrics.prediction_timer("hybrid_cnn_lstm"):
        services.predictions.predict(...)
    text = metrics.render()                           # the Prometheus text format

Read at scrape time from the jobs table (read-only selects) and the queue, so every API replica
reports the same cluster-wide numbers:

=============================================  ===========  ======================================
metric                                         type         meaning
=============================================  ===========  ======================================
``ml_jobs{kind,status}``                       gauge        jobs by kind and status (``queued``:
                                                            waiting, ``running``: running now)
``ml_job_failures_total{kind}``                counter      jobs that ended ``failed``, ever
``ml_job_duration_seconds{kind}``              histogram    finished_at - started_at of the jobs
                                                            that ended (finished, failed,
                                                            cancelled) in the last 24 h
``ml_jobs_store_up``                           gauge        1 if the jobs database answered
``ml_queue_depth``                             gauge        tasks waiting in the huey queue
``ml_queue_up``                                gauge        1 if the queue answered
``ml_workers_alive``                           gauge        workers with a fresh heartbeat
``ml_predictions_total{model,status}``         counter      ``POST /predict`` calls of this
                                                            process: ok, invalid, not_found,
                                                            unavailable, error
``ml_prediction_latency_seconds{model}``       histogram    latency of the served (ok) ones
``ml_live_<metric>{model,version}``            gauge        live monitoring, newest rolled-up day
                                                            of each version: accuracy, f1_macro,
                                                            ece, pnl, hit_rate, coverage,
                                                            latency_p50_ms, latency_p99_ms,
                                                            n_resolved
``ml_prediction_log_{recorded,written,         counter      this process's prediction log
dropped}_total``
``ml_prediction_log_pending``, ``_up``         gauge        buffered now; last write succeeded
=============================================  ===========  ======================================

The duration histogram is a snapshot of a sliding 24-hour window (at most the latest
:data:`DURATION_WINDOW_MAX_JOBS` jobs), not an ever-growing counter: read it with
``histogram_quantile(0.95, ml_job_duration_seconds_bucket)`` directly, not through ``rate()``.
A scrape never raises: a jobs database that does not answer gives ``ml_jobs_store_up 0`` (and no
job or worker series), a queue that does not answer ``ml_queue_up 0`` (and no depth). Labels carry
no URL, host name or secret; a prediction for a model that could not be loaded is labelled
``model="(unresolved)"``, so arbitrary names in requests cannot grow the label set.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from backend.ml_engine.errors import one_line

from .errors import InvalidDataError, NotFoundError, UnavailableError
from .job_store import jobs_table
from .redaction import redact
from .schemas import JOB_KINDS, JOB_STATUSES

if TYPE_CHECKING:  # pragma: no cover
    from . import Services
    from .jobs import JobService

__all__ = [
    "DURATION_WINDOW",
    "DURATION_WINDOW_MAX_JOBS",
    "JOB_DURATION_BUCKETS",
    "PREDICTION_LATENCY_BUCKETS",
    "UNRESOLVED_MODEL",
    "JobsCollector",
    "Metrics",
    "build_metrics",
]

logger = logging.getLogger(__name__)

#: Jobs that ended within this window feed ``ml_job_duration_seconds``.
DURATION_WINDOW = timedelta(hours=24)
#: ... and at most this many of them (the latest), so a scrape stays cheap after a large search.
DURATION_WINDOW_MAX_JOBS = 10_000
#: Seconds: from a tiny training (seconds) to a long retraining (hours).
JOB_DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0)
#: Seconds: a prediction takes a few milliseconds; the upper buckets catch a cold model load.
PREDICTION_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 1.0)
#: ``model`` label of predictions whose model could not be loaded (not a valid model name).
UNRESOLVED_MODEL = "(unresolved)"
_ENDED = ("finished", "failed", "cancelled")


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything in the jobs table is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class JobsCollector(Collector):
    """Cluster-wide job, queue and worker metrics, computed from the jobs table at each scrape."""

    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs
        self._secrets = jobs.settings.secrets()
        self._up: dict[str, bool] = {}
        self._guard = threading.Lock()

    def describe(self) -> Iterable[Metric]:
        return []  # nothing is read when the collector is registered, only when scraped

    def collect(self) -> Iterator[Metric]:
        store_up = GaugeMetricFamily("ml_jobs_store_up", "1 if the jobs database answered this scrape, else 0")
        try:
            families = self._job_families()
        except Exception as exc:  # noqa: BLE001 - a scrape never raises: report the database down
            self._changed("jobs database", False, exc)
            store_up.add_metric([], 0)
            families = []
        else:
            self._changed("jobs database", True)
            store_up.add_metric([], 1)
        yield store_up
        yield from families
        yield from self._queue_families()

    # -- the jobs table and the workers ---------------------------------------------------------

    def _job_families(self) -> list[Metric]:
        engine = self._jobs.store.engine
        counts = sa.select(jobs_table.c.kind, jobs_table.c.status, sa.func.count()).group_by(
            jobs_table.c.kind, jobs_table.c.status
        )
        cutoff = datetime.now(UTC) - DURATION_WINDOW
        durations = (
            sa.select(jobs_table.c.kind, jobs_table.c.started_at, jobs_table.c.finished_at)
            .where(
                jobs_table.c.status.in_(_ENDED),
                jobs_table.c.finished_at >= cutoff,
                jobs_table.c.started_at.is_not(None),
            )
            .order_by(jobs_table.c.finished_at.desc())
            .limit(DURATION_WINDOW_MAX_JOBS)
        )
        with engine.connect() as conn:  # one connection: a database that is down fails once
            by_kind_status = {(str(k), str(s)): int(n) for k, s, n in conn.execute(counts)}
            ended = [(str(k), _utc(s), _utc(f)) for k, s, f in conn.execute(durations)]
        alive = sum(1 for w in self._jobs.workers() if w.alive)

        kinds = sorted(set(JOB_KINDS) | {k for k, _ in by_kind_status})
        statuses = list(JOB_STATUSES) + sorted({s for _, s in by_kind_status} - set(JOB_STATUSES))
        jobs = GaugeMetricFamily(
            "ml_jobs", "Jobs by kind and status (queued: waiting, running: running now)", labels=["kind", "status"]
        )
        for kind in kinds:
            for status in statuses:
                jobs.add_metric([kind, status], by_kind_status.get((kind, status), 0))

        failures = CounterMetricFamily("ml_job_failures", "Jobs that ended failed, by kind", labels=["kind"])
        for kind in kinds:
            failures.add_metric([kind], by_kind_status.get((kind, "failed"), 0))

        duration = HistogramMetricFamily(
            "ml_job_duration_seconds",
            f"Run time (finished_at - started_at) of the jobs that ended (finished, failed, cancelled) in the last "
            f"{DURATION_WINDOW.total_seconds() / 3600:g} h: a sliding-window snapshot, not a counter",
            labels=["kind"],
        )
        seconds_by_kind: dict[str, list[float]] = {kind: [] for kind in kinds}
        for kind, started, finished in ended:
            seconds_by_kind.setdefault(kind, []).append(max(0.0, (finished - started).total_seconds()))
        for kind, seconds in sorted(seconds_by_kind.items()):
            buckets = [(floatToGoString(b), sum(1 for s in seconds if s <= b)) for b in JOB_DURATION_BUCKETS]
            buckets.append(("+Inf", len(seconds)))
            duration.add_metric([kind], buckets, sum(seconds))

        workers = GaugeMetricFamily("ml_workers_alive", "Job workers whose heartbeat is fresh")
        workers.add_metric([], alive)
        return [jobs, failures, duration, workers]

    # -- the queue ------------------------------------------------------------------------------

    def _queue_families(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("ml_queue_up", "1 if the job queue answered this scrape, else 0")
        try:
            depth_value = self._jobs.queue.pending_count()
        except Exception as exc:  # noqa: BLE001 - Redis down, SQLite file unreadable: report it, never raise
            self._changed("job queue", False, exc)
            up.add_metric([], 0)
            yield up
            return
        self._changed("job queue", True)
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily("ml_queue_depth", "Tasks waiting in the job queue (huey pending count)")
        depth.add_metric([], depth_value)
        yield depth

    def _changed(self, what: str, up: bool, exc: BaseException | None = None) -> None:
        """Log a dependency going down or coming back once, not at every scrape."""
        with self._guard:
            before = self._up.get(what, True)
            self._up[what] = up
        if before and not up and exc is not None:
            logger.warning(
                "metrics: the %s does not answer: %s", what, redact(one_line(exc, typed=True), self._secrets)
            )
        elif up and not before:
            logger.info("metrics: the %s answers again", what)


class LiveCollector(Collector):
    """Live monitoring at each scrape: the newest day of each served version's live metrics (``ml_live_metrics``,
    rolled up by the outcome job) and this process's prediction log (recorded, written, dropped, pending)."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._engine: sa.Engine | None = None
        self._guard = threading.Lock()

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._log_families()
        try:
            frame = self._latest()
        except Exception as exc:  # noqa: BLE001 - a scrape never raises: no live series this time
            logger.debug("metrics: live metrics not read: %s", type(exc).__name__)
            return
        for name, help_text in LIVE_GAUGES.items():
            family = GaugeMetricFamily(f"ml_live_{name}", help_text, labels=["model", "version"])
            for row in frame:
                value = row.get(name)
                if value is not None and value == value:  # not NaN
                    family.add_metric([str(row["model_name"]), str(row["model_version"])], float(value))
            yield family

    def _latest(self) -> list[dict[str, object]]:
        from backend.ml_engine.monitoring import live_metrics_table
        from backend.ml_engine.prediction_log import create_engine, prediction_log_url

        with self._guard:
            if self._engine is None:
                self._engine = create_engine(prediction_log_url(self._services.settings))
            engine = self._engine
        if not sa.inspect(engine).has_table(live_metrics_table.name):
            return []
        m = live_metrics_table.c
        newest = (
            sa.select(m.model_name, m.model_version, sa.func.max(m.day).label("day"))
            .group_by(m.model_name, m.model_version)
            .subquery()
        )
        query = sa.select(live_metrics_table).join(
            newest,
            sa.and_(
                m.model_name == newest.c.model_name, m.model_version == newest.c.model_version, m.day == newest.c.day
            ),
        )
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def _log_families(self) -> Iterator[Metric]:
        log = self._services.predictions.prediction_log
        if log is None:
            return
        stats = log.stats()
        for name, value, help_text in (
            ("recorded", stats.recorded, "Predictions handed to this process's prediction log"),
            ("written", stats.written, "Predictions written to the prediction log's database"),
            ("dropped", stats.dropped, "Predictions dropped (buffer full while the database was down), oldest first"),
        ):
            counter = CounterMetricFamily(f"ml_prediction_log_{name}", help_text)
            counter.add_metric([], value)
            yield counter
        pending = GaugeMetricFamily("ml_prediction_log_pending", "Predictions buffered, not written yet")
        pending.add_metric([], stats.pending)
        yield pending
        up = GaugeMetricFamily("ml_prediction_log_up", "1 if the prediction log's last write succeeded")
        up.add_metric([], 1 if stats.database_ok else 0)
        yield up


#: ``ml_live_<name>{model,version}``: the newest rolled-up day of each version.
LIVE_GAUGES = {
    "accuracy": "Live accuracy of the version's resolved predictions on its newest day",
    "f1_macro": "Live macro F1 of the version's resolved predictions on its newest day",
    "ece": "Live expected calibration error on the newest day",
    "pnl": "Signal PnL after fees (sum of the trades' returns) on the newest day",
    "hit_rate": "Share of buy/sell predictions with a positive return after fees on the newest day",
    "coverage": "Share of the day's candles that got a prediction (newest day)",
    "latency_p50_ms": "Prediction latency p50 in milliseconds (newest day)",
    "latency_p99_ms": "Prediction latency p99 in milliseconds (newest day)",
    "n_resolved": "Predictions resolved on the newest day",
}


class Metrics:
    """The metrics of one API app, in a registry of its own (several apps in one process never clash)."""

    def __init__(self, jobs: JobService, services: Services | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(JobsCollector(jobs))
        if services is not None:
            self.registry.register(LiveCollector(services))
        self.predictions = Counter(
            "ml_predictions",
            "POST /predict calls answered by this process, by model and status "
            "(ok, invalid, not_found, unavailable, error)",
            ["model", "status"],
            registry=self.registry,
        )
        self.prediction_latency = Histogram(
            "ml_prediction_latency_seconds",
            "Latency of the predictions served (status ok) by this process",
            ["model"],
            buckets=PREDICTION_LATENCY_BUCKETS,
            registry=self.registry,
        )

    @contextlib.contextmanager
    def prediction_timer(self, model: str) -> Iterator[None]:
        """Count the prediction made in the block (its status from the exception, if any) and time it."""
        start = time.perf_counter()
        try:
            yield
        except InvalidDataError:  # raised after the model loaded: its name is a real one
            self.predictions.labels(model, "invalid").inc()
            raise
        except NotFoundError:
            self.predictions.labels(UNRESOLVED_MODEL, "not_found").inc()
            raise
        except UnavailableError:
            self.predictions.labels(UNRESOLVED_MODEL, "unavailable").inc()
            raise
        except Exception:
            self.predictions.labels(UNRESOLVED_MODEL, "error").inc()
            raise
        self.prediction_latency.labels(model).observe(time.perf_counter() - start)
        self.predictions.labels(model, "ok").inc()

    def render(self) -> bytes:
        """The registry in the Prometheus text format (``prometheus_client.CONTENT_TYPE_LATEST``)."""
        return generate_latest(self.registry)


def build_metrics(services: Services) -> Metrics:
    """The metrics of an app over ``services`` (the jobs table and queue they use, the live monitoring)."""
    return Metrics(services.jobs, services)
