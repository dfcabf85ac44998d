"""Retraining pipeline: triggers, walk-forward validation, gated auto-promotion (experiment ``auto_retraining``).

Library use::

    from backend.ml_engine.retraining_pipeline import RetrainingConfig, RetrainingPipeline

    pipeline = RetrainingPipeline(config=RetrainingConfig(model_name="hybrid_cnn_lstm", n_folds=5))
    result = pipeline.run(trigger="drift")        # checks drift first; retrains only if it finds some
    result.status, result.reason, result.version, result.promoted

    report = pipeline.check_drift()               # DriftReport: per-feature PSI / KS table
    pipeline.serve(interval_minutes=1440)         # APScheduler, blocking

CLI::

    python -m backend.ml_engine.retraining_pipeline run --trigger manual
    python -m backend.ml_engine.retraining_pipeline run --trigger drift            # cron-friendly one-shot
    python -m backend.ml_engine.retraining_pipeline check-drift                    # exit 0 / 3 (drift)
    python -m backend.ml_engine.retraining_pipeline serve --cron "0 3 * * *" --check-interval 60

Triggers (run tag ``trigger``; the guide filters ``tags.trigger = 'scheduled'``)
-------------------------------------------------------------------------------
* ``scheduled``: by the ``serve`` scheduler (interval or cron) or a one-shot ``run --trigger
  scheduled`` from the system cron; retrains unconditionally (cooldown applies).
* ``drift``: `drift.compare_features` of the last ``recent_days`` of the live data against the
  production version's training rows (see ``drift.py`` for the reference and the thresholds);
  retrains only when the data drifted.
* ``performance_drop``: the production model's accuracy / macro F1 on recent candles whose label
  horizon has passed, against its test-time values (``metadata.json["test_metrics"]``); retrains
  when either fell by more than ``performance_margin``.
* ``manual``: always retrains (CLI, API).

``force`` skips the check and the cooldown, never the lock.

One retraining (one MLflow run in ``auto_retraining``)
------------------------------------------------------
tags ``trigger``, ``model_name``, ``run_kind=retraining``, ``training_mode=auto_retraining``;
the drift report (``drift_report.json/.csv/.png``) and the performance report when computed;
walk-forward over ``n_folds`` folds with the production model scored on the same test windows
(metrics ``wf_*`` / ``wf_production_*`` at step = fold, ``walk_forward_*_mean/_std`` summaries,
``walk_forward.json``); the final candidate trained by the orchestrator's `run_training` on the
whole window (its params, epoch curves, test metrics, ONNX and model are logged into this run) and
registered; then the registry's gate decides (`ModelRegistry.promote` through
`PromotionGate`), comparing candidate and production on the walk-forward folds (registry
``evaluator``). Tags ``promotion_decision`` (``promoted`` / ``refused``) and ``promotion_reason``;
the registry writes its history entry. A failure anywhere ends the run FAILED with tag
``failure_reason``; production is only ever moved by the last step, so it stays untouched.

Guardrails
----------
* **One retraining per model at a time, across processes** (`RetrainingLock`): PostgreSQL store:
  ``pg_try_advisory_lock`` on a dedicated connection held for the whole retraining (a crashed
  process releases it with its connection); SQLite store: ``flock`` on a file beside the database;
  an ``http://`` store: ``flock`` on a file under ``output_dir`` (one machine). A second attempt
  is refused at once (status ``refused``) with the reason.
* **Cooldown**: the start time of the model's last retraining run (``tags.model_name`` and
  ``tags.run_kind = 'retraining'`` in ``auto_retraining``, newest first), FAILED runs included, so
  a retraining that keeps failing is not retried on every tick.

Recipe of the candidate: window, label and feature configuration and model architecture come from
the production version's metadata (so both predict the same labels and the comparison is fair),
unless given in the config; epochs, batch size and learning rate from the config or the settings.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import math
import os
import re
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlsplit

from backend.ml_engine.config import EXPERIMENT_RETRAINING, Settings
from backend.ml_engine.drift import DriftConfig, DriftReport
from backend.ml_engine.walk_forward import WalkForwardConfig

logger = logging.getLogger(__name__)

__all__ = [
    "TRIGGERS",
    "NoProductionModel",
    "PerformanceReport",
    "ProductionVersion",
    "RetrainingConfig",
    "RetrainingLock",
    "RetrainingPipeline",
    "RetrainingResult",
    "build_parser",
    "main",
]

DEFAULT_MODEL_NAME = "hybrid_cnn_lstm"
TRIGGERS = ("manual", "scheduled", "drift", "performance_drop")
RUN_KIND_RETRAINING = "retraining"
RUN_KIND_DRIFT_CHECK = "drift_check"

STATUS_COMPLETED = "completed"
STATUS_SKIPPED = "skipped"
STATUS_REFUSED = "refused"
STATUS_FAILED = "failed"

#: Advisory-lock namespace (first int4 key) for retraining locks ("MLRT"); the registry uses "MLRG".
_PG_LOCK_NAMESPACE = 0x4D4C5254


class NoProductionModel(LookupError):
    """The model has no ``production`` version (drift and performance checks need one)."""


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


@dataclass
class RetrainingConfig:
    """Everything a retraining may change; None means 'from the settings' (or the production version)."""

    model_name: str = DEFAULT_MODEL_NAME
    """Registered model to retrain and promote."""

    data: str | None = None
    """Live candle source (file, folder, postgresql:// URL); None = settings.data_path."""

    symbols: list[str] = field(default_factory=list)
    """Symbols to use; empty = settings.symbols, else (folder or database) the production version's symbols."""

    timeframe: str | None = None
    """Candle timeframe; None = inferred from a file name, settings.timeframe for folders and databases."""

    train_days: float | None = 30.0
    """Train (walk-forward and final model) on the last N days of each series; None or more than
    the data holds = all of it."""

    recent_days: float = 3.0
    """Window of 'recent' candles for the drift and performance checks."""

    reference_data: str | None = None
    """Drift reference candles replacing the production version's recorded training sources."""

    drift: DriftConfig = field(default_factory=DriftConfig)
    """PSI / KS thresholds (see drift.py for the measured defaults)."""

    performance_margin: float = 0.05
    """performance_drop fires when recent accuracy or macro F1 is below the test-time value by more than this."""

    min_performance_samples: int = 100
    """Fewer realised recent labels than this: no performance verdict (not triggered)."""

    cooldown_hours: float = 6.0
    """Minimal time between the starts of two retrainings of one model (0 disables)."""

    walk_forward: WalkForwardConfig = field(default_factory=WalkForwardConfig)
    """Folds K, expanding/sliding, purge gap."""

    schedule_interval_minutes: float | None = 1440.0
    """``serve``: retrain every N minutes (ignored when schedule_cron is set)."""

    schedule_cron: str | None = None
    """``serve``: crontab expression ("0 3 * * *") for the scheduled retraining."""

    check_interval_minutes: float | None = None
    """``serve``: check drift and performance every N minutes between scheduled runs (None: at each scheduled tick)."""

    epochs: int | None = None
    """Training epochs (per fold and for the final model); None = settings.epochs."""

    batch_size: int | None = None
    learning_rate: float | None = None
    seed: int | None = None
    window: int | None = None
    """Window length; None = the production version's, else settings.window."""

    horizon: int | None = None
    """Label horizon; None = the production version's, else settings.horizon."""

    model_kwargs: dict[str, Any] = field(default_factory=dict)
    """ModelConfig overrides (e.g. conv_channels, lstm_hidden)."""

    trainer_kwargs: dict[str, Any] = field(default_factory=dict)
    """TrainerConfig overrides (e.g. early_stopping_patience)."""

    min_accuracy_for_promotion: float | None = None
    """Gate: minimal walk-forward mean accuracy; None = settings.min_accuracy_for_promotion."""

    primary_metric: str = "test_f1_macro"
    """Gate: metric the candidate must beat production on (walk-forward means on the same folds)."""

    min_improvement: float = 0.0
    """Gate: the candidate must beat production on primary_metric by more than this."""

    fee: float = 0.001
    """Backtest fee per unit of position change."""

    lock_dir: str | None = None
    """Folder of lock files for http:// stores; None = <output_dir>/.locks."""

    def __post_init__(self) -> None:
        checks = [
            (bool(self.model_name) and isinstance(self.model_name, str), "model_name must be a non-empty string"),
            (self.train_days is None or self.train_days > 0, "train_days must be > 0"),
            (self.recent_days > 0 and math.isfinite(self.recent_days), "recent_days must be > 0"),
            (0 <= self.performance_margin < 1, "performance_margin must be in [0, 1)"),
            (self.min_performance_samples >= 1, "min_performance_samples must be >= 1"),
            (self.cooldown_hours >= 0 and math.isfinite(self.cooldown_hours), "cooldown_hours must be >= 0"),
            (self.schedule_interval_minutes is None or self.schedule_interval_minutes > 0,
             "schedule_interval_minutes must be > 0"),
            (self.check_interval_minutes is None or self.check_interval_minutes > 0, "check_interval_minutes must be > 0"),
            (self.epochs is None or self.epochs >= 1, "epochs must be >= 1"),
            (self.min_accuracy_for_promotion is None or 0 <= self.min_accuracy_for_promotion <= 1,
             "min_accuracy_for_promotion must be in [0, 1]"),
            (self.min_improvement >= 0, "min_improvement must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"RetrainingConfig: {message}")
        self.symbols = list(self.symbols or [])

    def to_params(self) -> dict[str, Any]:
        """Flat, JSON-able parameters for the MLflow run (``retraining_*``)."""
        return {
            "model_name": self.model_name, "train_days": self.train_days, "recent_days": self.recent_days,
            "performance_margin": self.performance_margin, "cooldown_hours": self.cooldown_hours,
            "primary_metric": self.primary_metric, "min_improvement": self.min_improvement,
            "wf_n_folds": self.walk_forward.n_folds, "wf_mode": self.walk_forward.mode,
            "wf_initial_train_frac": self.walk_forward.initial_train_frac,
            **{f"drift_{k}": v for k, v in self.drift.to_dict().items()},
        }


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------


@dataclass
class PerformanceReport:
    """The production model on recently realised labels against its test-time metrics."""

    version: str
    n_samples: int
    accuracy: float
    f1_macro: float
    reference_accuracy: float
    reference_f1_macro: float
    margin: float
    min_samples: int
    dropped: bool
    window: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        if self.n_samples < self.min_samples:
            return (f"no verdict: only {self.n_samples} realised recent labels (need {self.min_samples}) "
                    f"for production v{self.version}")
        verdict = "performance drop" if self.dropped else "no performance drop"
        return (f"{verdict}: production v{self.version} on {self.n_samples} recent labels: accuracy "
                f"{self.accuracy:.4f} (test {self.reference_accuracy:.4f}), macro F1 {self.f1_macro:.4f} "
                f"(test {self.reference_f1_macro:.4f}); margin {self.margin:g}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["summary"] = self.summary
        return d


@dataclass
class RetrainingResult:
    """What one retraining attempt did, and why."""

    status: str
    """'completed' (trained, registered; promoted or refused by the gate), 'skipped' (check negative
    or cooldown), 'refused' (another retraining holds the lock) or 'failed'."""
    trigger: str
    model_name: str
    reason: str
    run_id: str | None = None
    version: str | None = None
    promoted: bool = False
    promotion_reason: str | None = None
    production_before: int | None = None
    production_after: int | None = None
    drift: DriftReport | None = None
    performance: PerformanceReport | None = None
    walk_forward: dict[str, Any] | None = None
    seconds: float = 0.0
    error_type: str | None = None

    @property
    def success(self) -> bool:
        return self.status == STATUS_COMPLETED

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("drift", "performance")}
        d["drift"] = self.drift.to_dict() if self.drift else None
        d["performance"] = self.performance.to_dict() if self.performance else None
        d["success"] = self.success
        return d


# --------------------------------------------------------------------------------------------
# the lock
# --------------------------------------------------------------------------------------------


class _Held:
    def __init__(self, release: Callable[[], None], description: str) -> None:
        self._release = release
        self.description = description
        self._done = False

    def release(self) -> None:
        if not self._done:
            self._done = True
            self._release()


class RetrainingLock:
    """Non-blocking per-model lock held for a whole retraining (see the module docstring).

    ``kind``: ``"postgresql-advisory"`` or ``"file"``. `try_acquire` returns a handle to
    ``release()``, or None when another holder has it (`holder` then says who, when known).
    """

    def __init__(self, tracking_uri: str, lock_dir: str | os.PathLike[str]) -> None:
        from backend.ml_engine.mlflow_integration.stores import resolve_tracking_uri

        self.uri = resolve_tracking_uri(tracking_uri)
        scheme = urlsplit(self.uri).scheme.lower().split("+", 1)[0]
        self._dir: Path
        if scheme in ("postgresql", "postgres"):
            self.kind = "postgresql-advisory"
            self._dir = Path(lock_dir)
        else:
            self.kind = "file"
            self._dir = Path(lock_dir)
            if scheme == "sqlite":
                from sqlalchemy.engine import make_url

                database = make_url(self.uri).database
                if database and database != ":memory:" and not database.startswith("file::memory"):
                    self._dir = Path(database).expanduser().resolve().parent
        self.holder: str | None = None

    def _file(self, name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        return self._dir / f".retraining-{safe}.lock"

    def try_acquire(self, name: str) -> _Held | None:
        self.holder = None
        if self.kind == "postgresql-advisory":
            return self._try_pg(name)
        return self._try_file(name)

    def _try_pg(self, name: str) -> _Held | None:
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        engine = sqlalchemy.create_engine(self.uri, poolclass=NullPool)
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = conn.execute(sqlalchemy.text("SELECT pg_try_advisory_lock(:ns, hashtext(:name))"),
                               {"ns": _PG_LOCK_NAMESPACE, "name": name}).scalar()
            if not got:
                self.holder = self._pg_holder(conn, name)
        except BaseException:
            conn.close()
            engine.dispose()
            raise
        if not got:
            conn.close()
            engine.dispose()
            return None

        def release() -> None:
            try:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:ns, hashtext(:name))"),
                             {"ns": _PG_LOCK_NAMESPACE, "name": name})
            except Exception:  # the connection closing releases a session lock anyway
                logger.debug("pg_advisory_unlock failed", exc_info=True)
            finally:
                conn.close()
                engine.dispose()

        return _Held(release, f"PostgreSQL advisory lock ({_PG_LOCK_NAMESPACE}, hashtext({name!r}))")

    @staticmethod
    def _pg_holder(conn: Any, name: str) -> str | None:
        import sqlalchemy

        try:
            row = conn.execute(sqlalchemy.text(
                "SELECT l.pid, a.client_addr, a.backend_start FROM pg_locks l "
                "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :ns "
                "AND l.objid = (hashtext(:name)::bigint & 4294967295)::text::oid LIMIT 1"),
                {"ns": _PG_LOCK_NAMESPACE, "name": name}).first()
        except Exception:
            return None
        if row is None:
            return None
        return f"database backend pid {row[0]}" + (f" from {row[1]}" if row[1] else "")

    def _try_file(self, name: str) -> _Held | None:
        import fcntl

        path = self._file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            self.holder = fh.read().strip() or None
            fh.close()
            return None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now(timezone.utc).isoformat()}")
        fh.flush()

        def release() -> None:
            try:
                fh.seek(0)
                fh.truncate()
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            finally:
                fh.close()

        return _Held(release, f"lock file {path}")


# --------------------------------------------------------------------------------------------
# the pipeline
# --------------------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _is_bad_input(exc: BaseException) -> bool:
    from backend.ml_engine.data import DataValidationError
    from backend.ml_engine.drift import DriftReferenceError

    return isinstance(exc, (DataValidationError, DriftReferenceError, NoProductionModel, ValueError)) or \
        type(exc).__name__ in ("TrackingStoreUnavailable", "ModelNotAvailableError")


@dataclass
class ProductionVersion:
    """The version behind the ``production`` alias and its ``metadata.json``."""

    version: int
    run_id: str | None
    metadata: dict[str, Any]


class RetrainingPipeline:
    """Checks, retrains, validates walk-forward and promotes one registered model (see the module doc)."""

    def __init__(self, settings: Settings | None = None, config: RetrainingConfig | None = None) -> None:
        self.settings = settings or Settings()
        self.config = config or RetrainingConfig()
        self._tracker: Any = None
        self._tracker_guard = threading.Lock()
        lock_dir = self.config.lock_dir or str(Path(self.settings.output_dir) / ".locks")
        self.lock = RetrainingLock(self.settings.mlflow_tracking_uri, lock_dir)

    # ---------------------------------------------------------------- plumbing

    @property
    def tracker(self) -> Any:
        """An `MLflowTracker` on ``auto_retraining`` (used for searches; each retraining gets its own)."""
        if self._tracker is None:
            with self._tracker_guard:
                if self._tracker is None:
                    self._tracker = self._new_tracker()
        return self._tracker

    def _new_tracker(self) -> Any:
        from backend.ml_engine.mlflow_integration import get_mlflow_tracker

        return get_mlflow_tracker(experiment_name=EXPERIMENT_RETRAINING, settings=self.settings)

    def production(self) -> ProductionVersion:
        """The production version and its ``metadata.json``; `NoProductionModel` when there is none."""
        from mlflow.exceptions import MlflowException

        client = self.tracker.client
        name = self.config.model_name
        try:
            mv = client.get_model_version_by_alias(name, "production")
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                raise NoProductionModel(
                    f"model {name!r} has no production version; train and promote one first "
                    f"(python -m backend.ml_engine.retraining_pipeline run --trigger manual)"
                ) from None
            raise
        metadata: dict[str, Any] = {}
        if mv.run_id:
            with tempfile.TemporaryDirectory(prefix="retrain-meta-") as tmp:
                try:
                    path = client.download_artifacts(mv.run_id, "metadata.json", tmp)
                    metadata = json.loads(Path(path).read_text())
                except Exception as exc:
                    raise NoProductionModel(
                        f"production version {mv.version} of {name!r} has no readable metadata.json ({_one_line(exc)})"
                    ) from None
        return ProductionVersion(version=int(mv.version), run_id=mv.run_id, metadata=metadata)

    def _source(self) -> str:
        return str(self.config.data or self.settings.data_path)

    def _symbols(self, production: ProductionVersion | None) -> list[str] | None:
        from backend.ml_engine.data import is_postgres_url

        if self.config.symbols:
            return list(self.config.symbols)
        if self.settings.symbol_list:
            return self.settings.symbol_list
        source = self._source()
        if production is not None and (is_postgres_url(source) or Path(source).is_dir()):
            return list((production.metadata.get("data") or {}).get("symbols") or []) or None
        return None

    def _timeframe(self) -> str | None:
        from backend.ml_engine.data import is_postgres_url

        if self.config.timeframe:
            return self.config.timeframe
        source = self._source()
        if is_postgres_url(source) or Path(source).is_dir():
            return self.settings.timeframe or None
        return None

    def load_series(self, production: ProductionVersion | None = None) -> list[Any]:
        """All candles of the live source (validated, gaps repaired as in training)."""
        from backend.ml_engine.data import load_candles

        return load_candles(self._source(), symbols=self._symbols(production), timeframe=self._timeframe(),
                            max_fill_gap=self.settings.max_fill_gap, min_rows=1, table=self.settings.candles_table)

    # ---------------------------------------------------------------- checks

    def check_drift(self, recent: Sequence[Any] | None = None, production: ProductionVersion | None = None) -> DriftReport:
        """Drift report of the last ``recent_days`` of the live data (or ``recent`` series) against
        the production version's training rows."""
        from backend.ml_engine.drift import compare_features, recent_features, reference_from_metadata, span_rows

        production = production or self.production()
        meta = production.metadata
        pipeline = meta.get("pipeline") or {}
        secret = self.settings.candles_database_url
        reference = reference_from_metadata(
            meta, reference_data=self.config.reference_data, max_fill_gap=self.settings.max_fill_gap,
            database_url=secret.get_secret_value() if secret is not None else None,
        )
        series = list(recent) if recent is not None else self.load_series(production)
        current = recent_features(series, pipeline, self.config.recent_days)
        names = list(pipeline.get("feature_names") or meta.get("features") or [])
        ref_tf = (meta.get("data") or {}).get("timeframe")
        chunk = span_rows(self.config.recent_days, ref_tf)
        report = compare_features(reference.X, current.X, names, self.config.drift,
                                  reference_groups=reference.groups, min_chunk_rows=chunk)
        report.reference = {"model_name": self.config.model_name, "version": production.version, **reference.info}
        report.current = current.info
        if ref_tf and current.info.get("timeframes") and current.info["timeframes"] != [ref_tf]:
            report.current["timeframe_mismatch"] = f"recent candles are {current.info['timeframes']}, the model was trained on {ref_tf}"
        logger.info("drift check of %s v%s: %s", self.config.model_name, production.version, report.summary)
        return report

    def check_performance(self, recent: Sequence[Any] | None = None,
                          production: ProductionVersion | None = None) -> PerformanceReport:
        """The production model's accuracy and macro F1 on the recent candles whose horizon has passed."""
        import numpy as np
        import pandas as pd

        from backend.ml_engine import evaluation
        from backend.ml_engine.labels import UNDEFINED, LabelConfig, make_labels
        from backend.ml_engine.predictor import Predictor

        production = production or self.production()
        series = list(recent) if recent is not None else self.load_series(production)
        predictor = Predictor.from_model_uri(f"models:/{self.config.model_name}/{production.version}",
                                             settings=self.settings, refresh_interval_s=0)
        try:
            label_cfg = LabelConfig.from_dict(predictor.pipeline["label_config"])
            y_true, y_pred = [], []
            window: dict[str, Any] = {}
            history = int(predictor.pipeline.get("min_history_rows") or 0) + 1
            for s in series:
                ts = pd.to_datetime(s.frame["timestamp"], utc=True)
                start = ts.iloc[-1] - pd.Timedelta(days=self.config.recent_days)
                # only the recent window and the history its first window needs are scored
                first = max(0, int(np.argmax((ts >= start).to_numpy())) - history)  # rows are sorted
                frame = s.frame.iloc[first:].reset_index(drop=True)
                ts = ts.iloc[first:].reset_index(drop=True)
                proba, ends = predictor.predict_proba(frame, source=f"{s.source} ({s.symbol})")
                seg = frame["segment"].to_numpy() if "segment" in frame.columns else None
                labels, _ = make_labels(frame["close"].to_numpy(), label_cfg, segment=seg)
                keep = (ts >= start).to_numpy()[ends] & (labels[ends] != UNDEFINED)
                y_true.append(labels[ends][keep])
                y_pred.append(proba[keep].argmax(axis=1))
                window[s.symbol] = {"start": start.isoformat(), "end": ts.iloc[-1].isoformat(), "labels": int(keep.sum())}
            yt = np.concatenate(y_true) if y_true else np.empty(0, np.int64)
            yp = np.concatenate(y_pred) if y_pred else np.empty(0, np.int64)
            test = predictor.metadata.get("test_metrics") or {}
        finally:
            predictor.close()
        ref_acc = float(test.get("accuracy", float("nan")))
        ref_f1 = float(test.get("f1_macro", float("nan")))
        if yt.size:
            m = evaluation.classification_metrics(yt, yp)
            acc, f1 = float(m["accuracy"]), float(m["f1_macro"])
        else:
            acc = f1 = float("nan")
        margin = self.config.performance_margin
        enough = yt.size >= self.config.min_performance_samples
        dropped = bool(enough and ((ref_acc - acc) > margin or (ref_f1 - f1) > margin))
        report = PerformanceReport(version=str(production.version), n_samples=int(yt.size), accuracy=acc,
                                   f1_macro=f1, reference_accuracy=ref_acc, reference_f1_macro=ref_f1, margin=margin,
                                   min_samples=self.config.min_performance_samples, dropped=dropped, window=window)
        logger.info("performance check of %s: %s", self.config.model_name, report.summary)
        return report

    def last_retraining(self) -> dict[str, Any] | None:
        """The newest retraining run of this model in ``auto_retraining`` (any status), or None."""
        name = self.config.model_name.replace("'", "\\'")
        runs = self.tracker.search_runs(
            filter_string=f"tags.model_name = '{name}' AND tags.run_kind = '{RUN_KIND_RETRAINING}'",
            order_by=["attributes.start_time DESC"], max_results=1,
        )
        return runs[0] if runs else None

    def cooldown_remaining(self, now: datetime | None = None) -> tuple[timedelta, dict[str, Any] | None]:
        """(time left before the next retraining may start, the last retraining run)."""
        if self.config.cooldown_hours <= 0:
            return timedelta(0), None
        last = self.last_retraining()
        if not last or not last.get("start_time"):
            return timedelta(0), last
        started = datetime.fromtimestamp(last["start_time"] / 1000.0, tz=timezone.utc)
        ready = started + timedelta(hours=self.config.cooldown_hours)
        now = now or datetime.now(timezone.utc)
        return max(ready - now, timedelta(0)), last

    # ---------------------------------------------------------------- retraining

    def run(self, trigger: str = "manual", *, force: bool = False, recent: Sequence[Any] | None = None) -> RetrainingResult:
        """One retraining attempt for ``trigger`` (see the module docstring). Never raises for a
        failed retraining: the result says what happened and why."""
        if trigger not in TRIGGERS:
            raise ValueError(f"trigger must be one of {', '.join(TRIGGERS)}, got {trigger!r}")
        return self._attempt([trigger], force=force, recent=recent, strict=True)

    async def run_async(self, trigger: str = "manual", *, force: bool = False) -> RetrainingResult:
        """`run` in a worker thread (for the API's event loop)."""
        return await asyncio.to_thread(self.run, trigger, force=force)

    def tick(self, include_scheduled: bool = True) -> RetrainingResult:
        """One scheduler tick: retrain for drift if the data drifted, else for a performance drop,
        else (``include_scheduled``) because it is time; a check that cannot run (no production
        model yet) is noted and the next trigger considered."""
        triggers = ["drift", "performance_drop"] + (["scheduled"] if include_scheduled else [])
        return self._attempt(triggers, force=False, recent=None, strict=False)

    def _attempt(self, triggers: list[str], *, force: bool, recent: Sequence[Any] | None, strict: bool) -> RetrainingResult:
        t0 = time.perf_counter()
        name = self.config.model_name
        first = triggers[0]
        try:
            held = self.lock.try_acquire(name)
        except Exception as exc:  # the lock's database unreachable: nothing ran, say why
            return self._failed_early(first, exc, t0)
        if held is None:
            who = f" (held by {self.lock.holder})" if self.lock.holder else ""
            reason = f"another retraining of model {name!r} is running{who}; refused"
            logger.warning(reason)
            return RetrainingResult(STATUS_REFUSED, first, name, reason, seconds=time.perf_counter() - t0)
        try:
            if not force:
                try:
                    left, last = self.cooldown_remaining()
                except Exception as exc:
                    return self._failed_early(first, exc, t0)
                if left > timedelta(0):
                    started = datetime.fromtimestamp(last["start_time"] / 1000.0, tz=timezone.utc)
                    reason = (f"cooldown: the last retraining of {name!r} started {started:%Y-%m-%d %H:%M:%S} UTC "
                              f"(run {last['run_id']}, {last.get('status')}); next allowed in "
                              f"{_fmt_td(left)} (cooldown {self.config.cooldown_hours:g} h; --force skips it)")
                    logger.info(reason)
                    return RetrainingResult(STATUS_SKIPPED, first, name, reason, seconds=time.perf_counter() - t0)
            notes: list[str] = []
            drift_report: DriftReport | None = None
            perf_report: PerformanceReport | None = None
            production: ProductionVersion | None = None
            no_production: Exception | None = None
            try:
                production = self.production()
            except NoProductionModel as exc:
                production, no_production = None, exc
            except Exception as exc:  # store errors: say so, never raise from run()
                return self._failed_early(first, exc, t0)
            series_cache: list[Any] | None = list(recent) if recent is not None else None

            def series() -> list[Any]:
                nonlocal series_cache
                if series_cache is None:
                    series_cache = self.load_series(production)
                return series_cache

            for trigger in triggers:
                if trigger in ("drift", "performance_drop") and not force:
                    try:
                        if production is None:
                            raise no_production or NoProductionModel(self.config.model_name)
                        if trigger == "drift":
                            drift_report = self.check_drift(series(), production)
                            fired, summary = drift_report.drifted, drift_report.summary
                        else:
                            perf_report = self.check_performance(series(), production)
                            fired, summary = perf_report.dropped, perf_report.summary
                    except Exception as exc:
                        if strict:
                            return self._failed_early(trigger, exc, t0, drift=drift_report, performance=perf_report)
                        logger.warning("%s check failed: %s", trigger, _one_line(exc))
                        notes.append(f"{trigger} check failed: {_one_line(exc)}")
                        continue
                    if not fired:
                        notes.append(summary)
                        continue
                return self._retrain(trigger, production, series, drift_report, perf_report, t0)
            reason = "; ".join(notes) or "nothing to do"
            return RetrainingResult(STATUS_SKIPPED, first, name, reason, drift=drift_report, performance=perf_report,
                                    seconds=time.perf_counter() - t0)
        finally:
            held.release()

    def _failed_early(self, trigger: str, exc: BaseException, t0: float, **reports: Any) -> RetrainingResult:
        reason = _one_line(exc)
        logger.error("retraining of %s (%s) failed before training: %s", self.config.model_name, trigger, reason)
        return RetrainingResult(STATUS_FAILED, trigger, self.config.model_name, reason, error_type=type(exc).__name__,
                                seconds=time.perf_counter() - t0, **reports)

    def _request(self, production: ProductionVersion | None, train_days: float | None) -> Any:
        """The candidate's TrainingRequest: config > production recipe > settings."""
        from backend.ml_engine.features import FeatureConfig
        from backend.ml_engine.labels import LabelConfig
        from backend.ml_engine.model import ModelConfig
        from backend.ml_engine.training_orchestrator import TrainingRequest

        cfg = self.config
        meta = production.metadata if production else {}
        pipeline = meta.get("pipeline") or {}
        window = cfg.window or pipeline.get("window") or self.settings.window
        overrides = {
            "epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.learning_rate, "seed": cfg.seed,
            "window": window, "horizon": cfg.horizon or pipeline.get("horizon"), "data": self._source(),
            "symbols": self._symbols(production), "timeframe": self._timeframe(), "date_range": train_days,
            "trainer_kwargs": cfg.trainer_kwargs,
        }
        request = TrainingRequest.from_settings(self.settings, **overrides)
        request.data.timeframe = self._timeframe()
        if pipeline.get("feature_config"):
            request.features = FeatureConfig.from_dict(pipeline["feature_config"])
        if pipeline.get("label_config") and cfg.horizon is None:
            request.labels = LabelConfig.from_dict(pipeline["label_config"])
        model_cfg = dict(meta.get("model_config") or {})
        model_cfg.update(cfg.model_kwargs)
        model_cfg.update({"n_features": 1, "window": int(window)})
        request.model = ModelConfig.from_dict(model_cfg)
        request.fee = cfg.fee
        return request

    def _retrain(self, trigger: str, production: ProductionVersion | None, series: Callable[[], list[Any]],
                 drift_report: DriftReport | None, perf_report: PerformanceReport | None, t0: float) -> RetrainingResult:
        from backend.ml_engine.mlflow_integration import MLflowCallback
        from backend.ml_engine.training_orchestrator import code_version

        cfg = self.config
        name = cfg.model_name
        run_name = f"retrain_{name}_{trigger}_{datetime.now(timezone.utc):%Y%m%d_%H%M%S_%f}"
        out = Path(self.settings.output_dir) / run_name
        tracker = self._new_tracker()
        description = f"Retraining of {name} (trigger: {trigger})" + (
            f"; production was v{production.version}" if production else "; no production version yet")
        tracker.start_run(run_name=run_name, description=description, tags={
            "trigger": trigger, "model_name": name, "run_kind": RUN_KIND_RETRAINING,
            "training_mode": "auto_retraining", "code_version": code_version(),
            "production_version_before": str(production.version) if production else "none",
        })
        result = RetrainingResult(STATUS_FAILED, trigger, name, "", run_id=tracker.run_id,
                                  production_before=production.version if production else None,
                                  drift=drift_report, performance=perf_report)
        try:
            tracker.log_params({"retraining": cfg.to_params()})
            if drift_report is None and production is not None:
                try:  # informative for every retraining; never blocks one
                    drift_report = self.check_drift(series(), production)
                    result.drift = drift_report
                except Exception as exc:
                    tracker.set_tags({"drift_check_error": _one_line(exc)[:4000]})
            if drift_report is not None:
                self._log_drift(tracker, drift_report, out / "drift")
            if perf_report is not None:
                tracker.log_dict(perf_report.to_dict(), "performance_report.json")
                tracker.log_metrics({"recent_accuracy": perf_report.accuracy, "recent_f1_macro": perf_report.f1_macro,
                                     "recent_samples": perf_report.n_samples})
                tracker.set_tags({"performance_drop": str(perf_report.dropped).lower()})

            # data of the last train_days (or all there is)
            all_series = series()
            train_days = self._effective_train_days(all_series)
            request = self._request(production, train_days)
            train_series = [_last_days(s, train_days) for s in all_series] if train_days else all_series

            # walk-forward: features once, K trainings, production on the same test windows
            wf = self._walk_forward(request, train_series, production, out)
            tracker.log_dict(wf.to_dict(), "walk_forward.json")
            wf.log_to(tracker)
            result.walk_forward = wf.to_dict()["summary"]

            # the final candidate on the whole window, logged into this run, registered
            from backend.ml_engine.training_orchestrator import run_training

            outcome = run_training(request, out / "model", run_name=run_name, model_name=name, export_onnx=True,
                                   callbacks=[MLflowCallback(tracker)], tracker=tracker)
            version = self._register(tracker, outcome, wf, trigger, run_name)
            result.version = version

            # the registry's gate, champion vs challenger on the walk-forward folds
            decision = self._promote(name, version, wf, trigger)
            result.promoted = decision.promoted
            result.promotion_reason = decision.reason
            result.production_after = decision.to_version if decision.promoted else decision.from_version
            tracker.set_tags({"promotion_decision": "promoted" if decision.promoted else "refused",
                              "promotion_reason": decision.reason[:4000],
                              "candidate_version": version})
            result.status = STATUS_COMPLETED
            result.reason = (f"retrained on trigger {trigger}: v{version} "
                             + ("promoted to production" if decision.promoted else "not promoted")
                             + f" ({decision.reason})")
            result.seconds = time.perf_counter() - t0
            tracker.log_metrics({"retraining_seconds": result.seconds})
            tracker.end_run("FINISHED")
            logger.info(result.reason)
            return result
        except BaseException as exc:
            reason = _one_line(exc)
            killed = isinstance(exc, (KeyboardInterrupt, SystemExit, asyncio.CancelledError))
            logger.error("retraining %s failed: %s", run_name, reason)
            try:
                tracker.set_tags({"failure_reason": f"{type(exc).__name__}: {reason}"[:4000]})
                tracker.end_run("KILLED" if killed else "FAILED")
            except Exception:
                logger.exception("could not end run %s cleanly", tracker.run_id)
            if killed:
                raise
            result.status = STATUS_FAILED
            result.reason = f"retraining failed, production untouched: {reason}"
            result.error_type = type(exc).__name__
            result.seconds = time.perf_counter() - t0
            return result

    def _effective_train_days(self, series: Sequence[Any]) -> float | None:
        import pandas as pd

        from backend.ml_engine.data import timeframe_to_timedelta

        if self.config.train_days is None:
            return None
        held = []
        for s in series:
            f = s.frame
            held.append((f["timestamp"].iloc[-1] - f["timestamp"].iloc[0] + timeframe_to_timedelta(s.timeframe))
                        / pd.Timedelta(days=1))
        shortest = min(held) if held else 0.0
        if self.config.train_days >= shortest:
            logger.info("train_days %g >= the %.2f days the data holds: training on all of it",
                        self.config.train_days, shortest)
            return None
        return float(self.config.train_days)

    def _walk_forward(self, request: Any, series: Sequence[Any], production: ProductionVersion | None, out: Path) -> Any:
        from backend.ml_engine.predictor import Predictor
        from backend.ml_engine.walk_forward import build_feature_table, run_walk_forward, score_with_predictor

        table = build_feature_table(series, request.features, request.labels, request.window)
        scores = None
        if production is not None:
            try:
                predictor = Predictor.from_model_uri(f"models:/{self.config.model_name}/{production.version}",
                                                     settings=self.settings, refresh_interval_s=0)
                try:
                    scores = score_with_predictor(predictor, series, table)
                finally:
                    predictor.close()
                scores.version = str(production.version)
            except Exception as exc:  # a model that cannot read these candles: compare recorded metrics instead
                from backend.ml_engine.walk_forward import ProductionScores
                import numpy as np

                note = f"production v{production.version} could not score the walk-forward data: {_one_line(exc)}"
                logger.warning(note)
                scores = ProductionScores(rows=np.empty(0, np.int64), proba=np.empty((0, 3), np.float32),
                                          version=str(production.version), note=note)
        wf = run_walk_forward(table, self.config.walk_forward, request.model, request.trainer, fee=request.fee,
                              production=scores)
        if scores is not None and not wf.has_production:
            wf.production_note = scores.note or f"production v{production.version} scored none of the test windows"
        return wf

    def _register(self, tracker: Any, outcome: Mapping[str, Any], wf: Any, trigger: str, run_name: str) -> str:
        from backend.ml_engine.training_orchestrator import code_version

        tm = outcome["test_metrics"]
        summary = wf.summary()
        tags = {
            "run_id": tracker.run_id,
            "data_hash": outcome["data_hash"],
            "symbol": ",".join(outcome["symbols"]),
            "timeframe": outcome["timeframe"],
            "test_accuracy": f"{tm['accuracy']:.4f}",
            "test_f1_macro": f"{tm['f1_macro']:.4f}",
            "backtest_sharpe": f"{outcome['backtest'].get('sharpe', float('nan')):.4f}",
            "onnx_parity_max_abs_diff": (f"{outcome['onnx_max_abs_diff']:.2e}"
                                         if outcome.get("onnx_max_abs_diff") is not None else "n/a"),
            "training_mode": "auto_retraining",
            "trigger": trigger,
            "code_version": code_version(),
        }
        for key in ("walk_forward_accuracy_mean", "walk_forward_f1_macro_mean", "walk_forward_backtest_sharpe_mean"):
            if math.isfinite(summary.get(key, float("nan"))):
                tags[key] = f"{summary[key]:.4f}"
        description = (
            f"HybridCNN-LSTM retrained ({trigger}) on {', '.join(outcome['symbols'])} {outcome['timeframe']}, run "
            f"{run_name}: walk-forward ({wf.config.n_folds} folds) accuracy {summary['walk_forward_accuracy_mean']:.3f}"
            f" +- {summary['walk_forward_accuracy_std']:.3f}, macro F1 {summary['walk_forward_f1_macro_mean']:.3f}; "
            f"final test accuracy {tm['accuracy']:.3f}."
        )
        return tracker.register_model(outcome["model_uri"], self.config.model_name, tags=tags, description=description)

    def _promote(self, name: str, version: str, wf: Any, trigger: str) -> Any:
        """The registry's gate. With production scored on the folds, an evaluator answers both
        versions' walk-forward means (same rows); otherwise the candidate's walk-forward means are
        its metrics and the gate compares them with production's recorded test metrics."""
        from backend.ml_engine.model_registry import ModelRegistry, PromotionGate

        cfg = self.config
        gate = PromotionGate.from_settings(
            self.settings, primary_metric=cfg.primary_metric, min_improvement=cfg.min_improvement,
            **({"min_accuracy_for_promotion": cfg.min_accuracy_for_promotion}
               if cfg.min_accuracy_for_promotion is not None else {}),
        )
        candidate = {k: v for k, v in wf.means("candidate").items() if math.isfinite(v)}
        evaluator = None
        if wf.has_production:
            production = {k: v for k, v in wf.means("production").items() if math.isfinite(v)}
            prod_version = int(wf.production_version)

            def evaluator(model: str, v: int) -> dict[str, float]:
                if int(v) == int(version):
                    return candidate
                if int(v) == prod_version:
                    return production
                return {}

        registry = ModelRegistry(self.settings.mlflow_tracking_uri, gate=gate, evaluator=evaluator,
                                 experiment_name=EXPERIMENT_RETRAINING,
                                 artifact_location=self.settings.mlflow_artifact_location)
        try:
            reason = f"auto retraining ({trigger}); walk-forward over {wf.config.n_folds} folds"
            if wf.production_note:
                reason += f"; {wf.production_note}"
            return asyncio.run(registry.auto_promote(name, version, candidate_metrics=candidate, reason=reason,
                                                     actor=f"retraining:{trigger}"))
        finally:
            registry.close()

    def _log_drift(self, tracker: Any, report: DriftReport, directory: Path) -> None:
        paths = report.write(directory)
        for p in paths.values():
            tracker.log_artifact(str(p))
        tracker.log_metrics({"drift_share": report.drift_share, "drift_features": report.n_drifted,
                             "drift_reference_rows": report.n_reference, "drift_recent_rows": report.n_current})
        tracker.set_tags({"drift_detected": str(report.drifted).lower(), "drift_summary": report.summary[:4000]})

    def log_drift_check(self, report: DriftReport) -> str:
        """Log a stand-alone drift check as its own run (``run_kind=drift_check``); returns the run id."""
        tracker = self._new_tracker()
        with tracker.run(run_name=f"drift_check_{self.config.model_name}_{datetime.now(timezone.utc):%Y%m%d_%H%M%S}",
                         tags={"model_name": self.config.model_name, "run_kind": RUN_KIND_DRIFT_CHECK}) as run_id:
            with tempfile.TemporaryDirectory(prefix="drift-") as tmp:
                self._log_drift(tracker, report, Path(tmp))
        return run_id

    # ---------------------------------------------------------------- scheduler

    def build_scheduler(self, *, interval_minutes: float | None = None, cron: str | None = None,
                        check_interval_minutes: float | None = None, blocking: bool = True) -> Any:
        """An APScheduler scheduler with the scheduled job (interval or crontab) and, with
        ``check_interval_minutes``, a drift/performance check job; jobs never overlap
        (``max_instances=1``, missed runs coalesced) and the retraining lock guards other processes."""
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.schedulers.blocking import BlockingScheduler
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        cron = cron if cron is not None else self.config.schedule_cron
        if interval_minutes is None and cron is None:
            interval_minutes = self.config.schedule_interval_minutes
        check_interval_minutes = check_interval_minutes if check_interval_minutes is not None else \
            self.config.check_interval_minutes
        if cron is not None:
            try:
                trigger = CronTrigger.from_crontab(cron, timezone="UTC")
            except ValueError as exc:
                raise ValueError(f"invalid cron expression {cron!r}: {exc}") from None
        elif interval_minutes is not None and interval_minutes > 0:
            trigger = IntervalTrigger(minutes=float(interval_minutes), timezone="UTC")
        else:
            raise ValueError("serve needs --interval MINUTES or --cron EXPRESSION")
        scheduler = (BlockingScheduler if blocking else BackgroundScheduler)(timezone="UTC")
        common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 3600}
        scheduler.add_job(self._job, trigger, kwargs={"include_scheduled": True}, id="retraining_scheduled",
                          name=f"scheduled retraining of {self.config.model_name}", **common)
        if check_interval_minutes:
            scheduler.add_job(self._job, IntervalTrigger(minutes=float(check_interval_minutes), timezone="UTC"),
                              kwargs={"include_scheduled": False}, id="retraining_checks",
                              name=f"drift / performance checks of {self.config.model_name}", **common)
        return scheduler

    def _job(self, include_scheduled: bool) -> RetrainingResult | None:
        try:
            result = self.tick(include_scheduled=include_scheduled)
        except Exception:  # a scheduler job must never die silently
            logger.exception("retraining tick failed")
            return None
        logger.warning("retraining tick: %s: %s", result.status, result.reason)
        return result

    def serve(self, **kwargs: Any) -> None:
        """Run the scheduler in this thread until interrupted (see `build_scheduler`)."""
        scheduler = self.build_scheduler(blocking=True, **kwargs)
        for job in scheduler.get_jobs():
            logger.warning("scheduled: %s (%s)", job.name, job.trigger)
        try:
            scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            pass


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _last_days(series: Any, days: float) -> Any:
    from backend.ml_engine.data import take_last_days

    return take_last_days(series, days)


def _fmt_td(td: timedelta) -> str:
    s = int(td.total_seconds())
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {sec:02d} s"


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

from backend.ml_engine.cli_args import OneLineParser, non_negative_float, positive_float, positive_int  # noqa: E402

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_DRIFT, EXIT_REFUSED = 0, 1, 2, 3, 4


_Parser = OneLineParser
_positive_float, _non_negative_float, _positive_int = positive_float, non_negative_float, positive_int


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data and model")
    g.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="registered model (default: hybrid_cnn_lstm)")
    g.add_argument("--data", help="live candles: file, folder or postgresql:// URL (default: ML_DATA_PATH)")
    g.add_argument("--symbol", action="append", help="symbol, e.g. ETH/BTC; repeat for several "
                   "(default: ML_SYMBOLS, else the production model's)")
    g.add_argument("--timeframe", help="candle timeframe, e.g. 5m")
    g.add_argument("--recent-days", type=_positive_float, help="recent window of the checks in days (default 3)")
    g.add_argument("--reference-data", help="drift reference candles instead of the production model's training data")
    d = p.add_argument_group("drift thresholds")
    d.add_argument("--psi-threshold", type=_non_negative_float, help="minimal PSI of a drifting feature (default 0.2)")
    d.add_argument("--ks-pvalue", type=_positive_float, help="KS p-value below which a feature may drift (default 0.01)")
    d.add_argument("--null-margin", type=_non_negative_float,
                   help="PSI must exceed this times the reference's own chunk PSI (default 1.25; 0 = off)")
    d.add_argument("--min-drift-share", type=_positive_float,
                   help="share of drifting features that means drift (default 0.25)")
    p.add_argument("-v", "--verbose", action="store_true", help="info logging (-v) of every step")


def _training(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("retraining")
    g.add_argument("--train-days", type=_positive_float, help="train on the last N days (default 30)")
    g.add_argument("--folds", type=_positive_int, help="walk-forward folds K (default 5)")
    g.add_argument("--fold-mode", choices=["expanding", "sliding"],
                   help="walk-forward training windows (default expanding)")
    g.add_argument("--epochs", type=_positive_int, help="epochs per training (default: ML_EPOCHS)")
    g.add_argument("--batch-size", type=_positive_int, help="batch size (default: ML_BATCH_SIZE)")
    g.add_argument("--lr", type=_positive_float, help="learning rate (default: ML_LEARNING_RATE)")
    g.add_argument("--cooldown-hours", type=_non_negative_float, help="minimal hours between retrainings (default 6)")
    g.add_argument("--performance-margin", type=_non_negative_float,
                   help="performance_drop: allowed fall of accuracy / macro F1 (default 0.05)")
    g.add_argument("--min-accuracy", type=_non_negative_float, help="promotion gate: minimal walk-forward accuracy")
    g.add_argument("--min-improvement", type=_non_negative_float,
                   help="promotion gate: the candidate must beat production's macro F1 by more than this (default 0)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m backend.ml_engine.retraining_pipeline",
        description="Automatic retraining of the trading model: drift / performance / schedule triggers, "
        "walk-forward validation against the production model, gated promotion. Runs are logged to the "
        "MLflow experiment auto_retraining (tag trigger). Defaults come from .env / the environment.",
        epilog="Exit codes: 0 done (or nothing to do), 1 retraining failed, 2 bad input, 3 check-drift found drift, "
        "4 another retraining of the model is running.",
    )
    sub = p.add_subparsers(dest="command", metavar="{run,check-drift,check-performance,serve}", parser_class=_Parser)
    sub.required = True
    r = sub.add_parser("run", help="one retraining attempt (cron-friendly)",
                       description="One retraining attempt. drift / performance_drop check first and retrain only "
                       "when triggered; manual / scheduled always retrain. Lock and cooldown apply.")
    r.add_argument("--trigger", required=True, choices=TRIGGERS, help="why this retraining runs (run tag trigger)")
    r.add_argument("--force", action="store_true", help="skip the trigger check and the cooldown (never the lock)")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    _common(r)
    _training(r)
    c = sub.add_parser("check-drift", help="drift report only: per-feature PSI / KS table; exit 3 on drift",
                       description="Compare the recent candles with the production model's training data; print the "
                       "per-feature table. Exit 0: no drift, 3: drift (0 with --exit-zero).")
    c.add_argument("--output", help="folder for drift_report.json/.csv/.png (default: <output_dir>/drift_checks/<time>)")
    c.add_argument("--json", action="store_true", help="print the report as JSON instead of the table")
    c.add_argument("--log-run", action="store_true", help="also log the report as a run in auto_retraining")
    c.add_argument("--exit-zero", action="store_true", help="exit 0 also when drift is found")
    _common(c)
    pc = sub.add_parser("check-performance", help="production accuracy / F1 on recent realised labels",
                        description="Evaluate the production model on the recent candles whose horizon has passed.")
    pc.add_argument("--performance-margin", type=_non_negative_float, help="allowed fall (default 0.05)")
    pc.add_argument("--json", action="store_true", help="print the report as JSON")
    _common(pc)
    s = sub.add_parser("serve", help="long-lived scheduler (interval or cron) that also checks drift / performance",
                       description="Run the retraining scheduler in the foreground (Ctrl-C stops it). Each tick checks "
                       "drift, then performance, then retrains on schedule; --check-interval adds check-only ticks.")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--interval", type=_positive_float, metavar="MINUTES", help="scheduled retraining every N minutes")
    g.add_argument("--cron", metavar="EXPR", help='crontab expression in UTC, e.g. "0 3 * * *"')
    s.add_argument("--check-interval", type=_positive_float, metavar="MINUTES",
                   help="check drift and performance every N minutes between scheduled retrainings")
    _common(s)
    _training(s)
    return p


def config_from_args(args: argparse.Namespace) -> RetrainingConfig:
    """A RetrainingConfig from parsed CLI arguments (unset flags keep the defaults)."""
    drift_kw = {k: v for k, v in {
        "psi_threshold": getattr(args, "psi_threshold", None), "ks_pvalue_threshold": getattr(args, "ks_pvalue", None),
        "null_margin": getattr(args, "null_margin", None), "min_drift_share": getattr(args, "min_drift_share", None),
    }.items() if v is not None}
    wf_kw = {k: v for k, v in {"n_folds": getattr(args, "folds", None), "mode": getattr(args, "fold_mode", None)}.items()
             if v is not None}
    kw: dict[str, Any] = {
        "model_name": args.model_name, "data": args.data, "symbols": args.symbol or [], "timeframe": args.timeframe,
        "reference_data": args.reference_data, "drift": DriftConfig(**drift_kw), "walk_forward": WalkForwardConfig(**wf_kw),
    }
    for attr, key in (("recent_days", "recent_days"), ("train_days", "train_days"), ("epochs", "epochs"),
                      ("batch_size", "batch_size"), ("lr", "learning_rate"), ("cooldown_hours", "cooldown_hours"),
                      ("performance_margin", "performance_margin"), ("min_accuracy", "min_accuracy_for_promotion"),
                      ("min_improvement", "min_improvement")):
        value = getattr(args, attr, None)
        if value is not None:
            kw[key] = value
    if getattr(args, "interval", None) is not None:
        kw["schedule_interval_minutes"] = args.interval
    if getattr(args, "cron", None) is not None:
        kw["schedule_cron"] = args.cron
    if getattr(args, "check_interval", None) is not None:
        kw["check_interval_minutes"] = args.check_interval
    return RetrainingConfig(**kw)


def _print_result(result: RetrainingResult, stream: Any = sys.stdout) -> None:
    print(f"{result.status}: {result.reason}", file=stream)
    if result.run_id:
        print(f"MLflow run {result.run_id} in experiment '{EXPERIMENT_RETRAINING}' (tag trigger={result.trigger})",
              file=stream)
    wf = result.walk_forward or {}
    if wf.get("walk_forward_accuracy_mean") is not None:
        line = (f"walk-forward ({int(wf['walk_forward_folds'])} folds): accuracy {wf['walk_forward_accuracy_mean']:.4f} "
                f"+- {wf['walk_forward_accuracy_std']:.4f}, macro F1 {wf['walk_forward_f1_macro_mean']:.4f} "
                f"+- {wf['walk_forward_f1_macro_std']:.4f}")
        if wf.get("walk_forward_production_accuracy_mean") is not None:
            line += (f"; production: accuracy {wf['walk_forward_production_accuracy_mean']:.4f}, "
                     f"macro F1 {wf['walk_forward_production_f1_macro_mean']:.4f}")
        print(line, file=stream)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, one line already printed)
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # cron mail stays readable
    if not args.verbose:  # MLflow logs store creation at INFO through its own handler, set up on import
        import mlflow  # noqa: F401

        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        settings = Settings()
        config = config_from_args(args)
        pipeline = RetrainingPipeline(settings, config)
    except Exception as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT

    try:
        if args.command == "run":
            result = pipeline.run(args.trigger, force=args.force)
            if args.json:
                print(json.dumps(result.to_dict(), indent=2, default=str))
            else:
                _print_result(result, sys.stdout if result.status in (STATUS_COMPLETED, STATUS_SKIPPED) else sys.stderr)
            if result.status in (STATUS_COMPLETED, STATUS_SKIPPED):
                return EXIT_OK
            if result.status == STATUS_REFUSED:
                return EXIT_REFUSED
            return EXIT_BAD_INPUT if result.run_id is None and result.error_type and \
                _is_bad_input_name(result.error_type) else EXIT_FAILED
        if args.command == "check-drift":
            report = pipeline.check_drift()
            directory = Path(args.output) if args.output else \
                Path(settings.output_dir) / "drift_checks" / datetime.now(timezone.utc).strftime("%Y%m%d_%H%M%S")
            paths = report.write(directory)
            if args.json:
                print(json.dumps(report.to_dict(), indent=2, default=str))
            else:
                print(report.format_table())
                print()
                print(report.summary)
                if report.current.get("timeframe_mismatch"):
                    print(f"note: {report.current['timeframe_mismatch']}")
                print(f"report: {', '.join(str(p) for p in paths.values())}")
            if args.log_run:
                run_id = pipeline.log_drift_check(report)
                print(f"MLflow run {run_id} in experiment '{EXPERIMENT_RETRAINING}'",
                      file=sys.stderr if args.json else sys.stdout)
            return EXIT_DRIFT if report.drifted and not args.exit_zero else EXIT_OK
        if args.command == "check-performance":
            report = pipeline.check_performance()
            print(json.dumps(report.to_dict(), indent=2, default=str) if args.json else report.summary)
            return EXIT_OK
        if args.command == "serve":
            pipeline.serve(interval_minutes=args.interval, cron=args.cron, check_interval_minutes=args.check_interval)
            return EXIT_OK
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT if _is_bad_input(exc) else EXIT_FAILED
    return EXIT_BAD_INPUT


def _is_bad_input_name(name: str) -> bool:
    return name in ("DataValidationError", "DriftReferenceError", "NoProductionModel", "ValueError",
                    "TrackingStoreUnavailable", "ModelNotAvailableError")


if __name__ == "__main__":
    sys.exit(main())
