"""The retraining pipeline: checks, walk-forward validation, the final candidate, the gate."""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..config import EXPERIMENT_RETRAINING, Settings
from ..errors import one_line
from ..locks import Lease, LockLost, Locks
from ..verdicts import Check, verdict_tag
from ._config import RUN_KIND_DRIFT_CHECK, RUN_KIND_FOLD, RUN_KIND_RETRAINING, TRIGGERS, RetrainingConfig
from ._results import (
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_REFUSED,
    STATUS_SKIPPED,
    NoProductionModel,
    PerformanceReport,
    ProductionVersion,
    RetrainingResult,
)

if TYPE_CHECKING:  # pragma: no cover
    from apscheduler.schedulers.base import BaseScheduler

    from ..data.candles import CandleSeries
    from ..drift import DriftReport
    from ..mlflow_integration import MLflowTracker
    from ..registry import PromotionDecision
    from ..trainer import Callback, Trainer, TrainResult
    from ..training_orchestrator import TrainingOutcome, TrainingRequest
    from ..walk_forward import Fold, FoldResult, WalkForwardResult

__all__ = ["LOCK_NAMESPACE", "Progress", "RetrainingPipeline"]

logger = logging.getLogger("backend.ml_engine.retraining_pipeline")

#: Lock namespace of retraining leases (one retraining per model at a time, across processes).
LOCK_NAMESPACE = "retraining"


class Progress(Protocol):
    """Where a long retraining reports what it is doing (the CLI prints it; the worker logs it)."""

    def stage(self, message: str) -> None:
        """A step begins or ends: ``"walk-forward: 5 folds"``."""

    def training(self, label: str) -> Sequence[Callback]:
        """Trainer callbacks for one training (``"fold 2/5"``, ``"final model"``): a progress bar."""


class LogProgress:
    """Progress as INFO log lines (the default: the worker and the API log them)."""

    def stage(self, message: str) -> None:
        logger.info("%s", message)

    def training(self, label: str) -> Sequence[Callback]:
        return ()


class _LeaseCheck:
    """Trainer callback: re-checks the retraining lease after every epoch; a lost lease stops the
    training (``LockLost``), so work done without the lock never reaches the registry."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease

    def on_train_start(self, trainer: Trainer) -> None:
        self.lease.check()

    def on_batch_end(self, step: int, metrics: Mapping[str, float]) -> None:
        pass

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.lease.check()

    def on_train_end(self, result: TrainResult) -> None:
        pass


def _is_bad_input(exc: BaseException) -> bool:
    from ..data import DataValidationError
    from ..drift import DriftReferenceError

    return isinstance(exc, (DataValidationError, DriftReferenceError, NoProductionModel, ValueError)) or type(
        exc
    ).__name__ in ("TrackingStoreUnavailable", "ModelNotAvailableError")


def _fmt_td(td: timedelta) -> str:
    s = int(td.total_seconds())
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {sec:02d} s"


class RetrainingPipeline:
    """Checks, retrains, validates walk-forward and promotes one registered model (see the package doc)."""

    def __init__(
        self,
        settings: Settings | None = None,
        config: RetrainingConfig | None = None,
        *,
        progress: Progress | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.config = config or RetrainingConfig()
        self.progress: Progress = progress or LogProgress()
        self._tracker: MLflowTracker | None = None
        self._tracker_guard = threading.Lock()
        self.locks = Locks.from_settings(self.settings)

    # ---------------------------------------------------------------- plumbing

    @property
    def tracker(self) -> MLflowTracker:
        """An `MLflowTracker` on ``auto_retraining`` (used for searches; each retraining gets its own)."""
        if self._tracker is None:
            with self._tracker_guard:
                if self._tracker is None:
                    self._tracker = self._new_tracker()
        return self._tracker

    def _new_tracker(self) -> MLflowTracker:
        from ..mlflow_integration import get_mlflow_tracker

        return get_mlflow_tracker(experiment_name=EXPERIMENT_RETRAINING, settings=self.settings)

    def production(self) -> ProductionVersion:
        """The production version and its ``metadata.json``; `NoProductionModel` when there is none."""
        from ..registry import ALIAS_PRODUCTION, ModelNotFoundError

        store = self.tracker.models
        name = self.config.model_name
        try:
            resolved = store.resolve(f"models:/{name}@{ALIAS_PRODUCTION}")
        except ModelNotFoundError:
            raise NoProductionModel(
                f"model {name!r} has no production version; train and promote one first "
                f"(python -m backend.ml_engine.retraining_pipeline run --trigger manual)"
            ) from None
        assert resolved.version is not None
        try:
            metadata = store.read_metadata(resolved)
        except Exception as exc:  # noqa: BLE001 - unreadable metadata means no usable production model
            raise NoProductionModel(
                f"production version {resolved.version} of {name!r} has no readable metadata.json ({one_line(exc)})"
            ) from None
        return ProductionVersion(version=resolved.version, run_id=resolved.run_id, metadata=metadata)

    def _source(self) -> str:
        return str(self.config.data or self.settings.data_path)

    def _symbols(self, production: ProductionVersion | None) -> list[str] | None:
        from ..data import is_postgres_url

        if self.config.symbols:
            return list(self.config.symbols)
        if self.settings.symbol_list:
            return self.settings.symbol_list
        source = self._source()
        if production is not None and (is_postgres_url(source) or Path(source).is_dir()):
            return list((production.metadata.get("data") or {}).get("symbols") or []) or None
        return None

    def _timeframe(self) -> str | None:
        from ..data import is_postgres_url

        if self.config.timeframe:
            return self.config.timeframe
        source = self._source()
        if is_postgres_url(source) or Path(source).is_dir():
            return self.settings.timeframe or None
        return None

    def load_series(self, production: ProductionVersion | None = None) -> list[CandleSeries]:
        """All candles of the live source (validated, gaps repaired as in training)."""
        from ..data import load_candles

        return load_candles(
            self._source(),
            symbols=self._symbols(production),
            timeframe=self._timeframe(),
            max_fill_gap=self.settings.max_fill_gap,
            min_rows=1,
            table=self.settings.candles_table,
            session=self.settings.session,
        )

    # ---------------------------------------------------------------- checks

    def check_drift(
        self, recent: Sequence[CandleSeries] | None = None, production: ProductionVersion | None = None
    ) -> DriftReport:
        """Drift report of the last ``recent_days`` of the live data (or ``recent`` series) against
        the production version's training rows."""
        from ..drift import compare_features, recent_features, reference_from_metadata, span_rows

        production = production or self.production()
        meta = production.metadata
        pipeline = meta.get("pipeline") or {}
        secret = self.settings.candles_database_url
        reference = reference_from_metadata(
            meta,
            reference_data=self.config.reference_data,
            max_fill_gap=self.settings.max_fill_gap,
            database_url=secret.get_secret_value() if secret is not None else None,
        )
        series = list(recent) if recent is not None else self.load_series(production)
        current = recent_features(series, pipeline, self.config.recent_days)
        names = list(pipeline.get("feature_names") or meta.get("features") or [])
        ref_tf = (meta.get("data") or {}).get("timeframe")
        chunk = span_rows(self.config.recent_days, ref_tf)
        report = compare_features(
            reference.X, current.X, names, self.config.drift, reference_groups=reference.groups, min_chunk_rows=chunk
        )
        report.reference = {"model_name": self.config.model_name, "version": production.version, **reference.info}
        report.current = current.info
        if ref_tf and current.info.get("timeframes") and current.info["timeframes"] != [ref_tf]:
            report.current["timeframe_mismatch"] = (
                f"recent candles are {current.info['timeframes']}, the model was trained on {ref_tf}"
            )
        logger.info("drift check of %s v%s: %s", self.config.model_name, production.version, report.summary)
        return report

    def check_performance(
        self, recent: Sequence[CandleSeries] | None = None, production: ProductionVersion | None = None
    ) -> PerformanceReport:
        """The production model's accuracy and macro F1 against its test-time values.

        Live first: when the prediction log has at least ``min_performance_samples`` resolved predictions of the
        production version over the last ``recent_days`` (by candle time), those are what the bot was told and
        how it turned out (:func:`~backend.ml_engine.monitoring.live_performance`); the report says
        ``source="live"``. Otherwise (recording off, too few outcomes yet, ``recent`` candles given) the version
        re-scores the recent candles whose horizon has passed (``source="re-evaluation"``)."""
        import numpy as np
        import pandas as pd

        from .. import evaluation
        from ..labels import UNDEFINED, LabelConfig, make_labels
        from ..predictor import Predictor

        production = production or self.production()
        if recent is None:
            live = self._live_report(production)
            if live is not None:
                return live
        series = list(recent) if recent is not None else self.load_series(production)
        predictor = Predictor.from_model_uri(
            f"models:/{self.config.model_name}/{production.version}",
            settings=self.settings,
            refresh_interval_s=0,
            record=False,  # an evaluation, not a served prediction
        )
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
                window[s.symbol] = {
                    "start": start.isoformat(),
                    "end": ts.iloc[-1].isoformat(),
                    "labels": int(keep.sum()),
                }
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
        report = PerformanceReport(
            version=str(production.version),
            n_samples=int(yt.size),
            accuracy=acc,
            f1_macro=f1,
            reference_accuracy=ref_acc,
            reference_f1_macro=ref_f1,
            margin=margin,
            min_samples=self.config.min_performance_samples,
            dropped=dropped,
            window=window,
        )
        logger.info("performance check of %s: %s", self.config.model_name, report.summary)
        return report

    def _live_report(self, production: ProductionVersion) -> PerformanceReport | None:
        """The performance report from live outcomes, or None when there are too few of them (or no log)."""
        from ..monitoring import live_performance

        if not self.settings.prediction_log:
            return None  # served predictions are not recorded here: nothing live to judge by
        try:
            live = live_performance(
                self.settings, self.config.model_name, str(production.version), days=self.config.recent_days
            )
        except Exception as exc:  # noqa: BLE001 - no prediction log here: re-evaluate instead
            logger.info("live outcomes not read (%s); re-evaluating on recent candles", type(exc).__name__)
            return None
        if live is None or live["n_samples"] < self.config.min_performance_samples:
            return None
        test = production.metadata.get("test_metrics") or {}
        ref_acc = float(test.get("accuracy", float("nan")))
        ref_f1 = float(test.get("f1_macro", float("nan")))
        margin = self.config.performance_margin
        dropped = bool((ref_acc - live["accuracy"]) > margin or (ref_f1 - live["f1_macro"]) > margin)
        report = PerformanceReport(
            version=str(production.version),
            n_samples=int(live["n_samples"]),
            accuracy=float(live["accuracy"]),
            f1_macro=float(live["f1_macro"]),
            reference_accuracy=ref_acc,
            reference_f1_macro=ref_f1,
            margin=margin,
            min_samples=self.config.min_performance_samples,
            dropped=dropped,
            window={"days": self.config.recent_days},
            source="live",
        )
        logger.info("performance check of %s (live outcomes): %s", self.config.model_name, report.summary)
        return report

    def last_retraining(self) -> dict[str, Any] | None:
        """The newest retraining run of this model in ``auto_retraining`` (any status), or None."""
        name = self.config.model_name.replace("'", "\\'")
        runs = self.tracker.search_runs(
            filter_string=f"tags.model_name = '{name}' AND tags.run_kind = '{RUN_KIND_RETRAINING}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0] if runs else None

    def cooldown_remaining(self, now: datetime | None = None) -> tuple[timedelta, dict[str, Any] | None]:
        """(time left before the next retraining may start, the last retraining run)."""
        if self.config.cooldown_hours <= 0:
            return timedelta(0), None
        last = self.last_retraining()
        if not last or not last.get("start_time"):
            return timedelta(0), last
        started = datetime.fromtimestamp(last["start_time"] / 1000.0, tz=UTC)
        ready = started + timedelta(hours=self.config.cooldown_hours)
        now = now or datetime.now(UTC)
        return max(ready - now, timedelta(0)), last

    # ---------------------------------------------------------------- retraining

    def run(
        self, trigger: str = "manual", *, force: bool = False, recent: Sequence[CandleSeries] | None = None
    ) -> RetrainingResult:
        """One retraining attempt for ``trigger`` (see the package docstring). Never raises for a
        failed retraining: the result says what happened and why."""
        if trigger not in TRIGGERS:
            raise ValueError(f"trigger must be one of {', '.join(TRIGGERS)}, got {trigger!r}")
        return self._attempt([trigger], force=force, recent=recent, strict=True)

    async def run_async(self, trigger: str = "manual", *, force: bool = False) -> RetrainingResult:
        """`run` in a worker thread (for an event loop)."""
        import asyncio

        return await asyncio.to_thread(self.run, trigger, force=force)

    def tick(self, include_scheduled: bool = True) -> RetrainingResult:
        """One scheduler tick: retrain for drift if the data drifted, else for a performance drop,
        else (``include_scheduled``) because it is time; a check that cannot run (no production
        model yet) is noted and the next trigger considered."""
        triggers = ["drift", "performance_drop"] + (["scheduled"] if include_scheduled else [])
        return self._attempt(triggers, force=False, recent=None, strict=False)

    def _attempt(
        self, triggers: list[str], *, force: bool, recent: Sequence[CandleSeries] | None, strict: bool
    ) -> RetrainingResult:
        t0 = time.perf_counter()
        name = self.config.model_name
        first = triggers[0]
        try:
            lease = self.locks.try_lease(LOCK_NAMESPACE, name)
        except Exception as exc:  # noqa: BLE001 - the lock's database unreachable: nothing ran, say why
            return self._failed_early(first, exc, t0)
        if lease is None:
            holder = self.locks.holder(LOCK_NAMESPACE, name)
            who = f" (held by {holder})" if holder else ""
            reason = f"another retraining of model {name!r} is running{who}; refused"
            logger.warning(reason)
            return RetrainingResult(STATUS_REFUSED, first, name, reason, seconds=time.perf_counter() - t0)
        try:
            if not force:
                try:
                    left, last = self.cooldown_remaining()
                except Exception as exc:  # noqa: BLE001 - store errors: said in the result, never raised from run()
                    return self._failed_early(first, exc, t0)
                if left > timedelta(0) and last is not None:
                    started = datetime.fromtimestamp(last["start_time"] / 1000.0, tz=UTC)
                    reason = (
                        f"cooldown: the last retraining of {name!r} started {started:%Y-%m-%d %H:%M:%S} UTC "
                        f"(run {last['run_id']}, {last.get('status')}); next allowed in "
                        f"{_fmt_td(left)} (cooldown {self.config.cooldown_hours:g} h; --force skips it)"
                    )
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
            except Exception as exc:  # noqa: BLE001 - store errors: say so, never raise from run()
                return self._failed_early(first, exc, t0)
            series_cache: list[CandleSeries] | None = list(recent) if recent is not None else None

            def series() -> list[CandleSeries]:
                nonlocal series_cache
                if series_cache is None:
                    series_cache = self.load_series(production)
                return series_cache

            for trigger in triggers:
                if trigger in ("drift", "performance_drop") and not force:
                    try:
                        if production is None:
                            raise no_production or NoProductionModel(self.config.model_name)
                        fired: bool
                        if trigger == "drift":
                            drift_report = self.check_drift(series(), production)
                            fired, summary = drift_report.drifted, drift_report.summary
                        else:
                            perf_report = self.check_performance(series(), production)
                            fired, summary = perf_report.dropped, perf_report.summary
                    except Exception as exc:  # noqa: BLE001 - a failed check is a note (a failure when strict)
                        if strict:
                            return self._failed_early(trigger, exc, t0, drift=drift_report, performance=perf_report)
                        logger.warning("%s check failed: %s", trigger, one_line(exc))
                        notes.append(f"{trigger} check failed: {one_line(exc)}")
                        continue
                    if not fired:
                        notes.append(summary)
                        continue
                return self._retrain(trigger, production, series, drift_report, perf_report, t0, lease)
            reason = "; ".join(notes) or "nothing to do"
            return RetrainingResult(
                STATUS_SKIPPED,
                first,
                name,
                reason,
                drift=drift_report,
                performance=perf_report,
                seconds=time.perf_counter() - t0,
            )
        finally:
            lease.release()

    def _failed_early(
        self,
        trigger: str,
        exc: BaseException,
        t0: float,
        drift: DriftReport | None = None,
        performance: PerformanceReport | None = None,
    ) -> RetrainingResult:
        reason = one_line(exc)
        logger.error("retraining of %s (%s) failed before training: %s", self.config.model_name, trigger, reason)
        return RetrainingResult(
            STATUS_FAILED,
            trigger,
            self.config.model_name,
            reason,
            error_type=type(exc).__name__,
            seconds=time.perf_counter() - t0,
            drift=drift,
            performance=performance,
        )

    def _request(self, production: ProductionVersion | None, train_days: float | None) -> TrainingRequest:
        """The candidate's TrainingRequest: config > production recipe > settings."""
        from ..families import get_family
        from ..features import FeatureConfig
        from ..labels import LabelConfig
        from ..training_orchestrator import TrainingRequest

        cfg = self.config
        meta = production.metadata if production else {}
        pipeline = meta.get("pipeline") or {}
        window = cfg.window or pipeline.get("window") or self.settings.window
        overrides = {
            "epochs": cfg.epochs,
            "batch_size": cfg.batch_size,
            "lr": cfg.learning_rate,
            "seed": cfg.seed,
            "window": window,
            "horizon": cfg.horizon or pipeline.get("horizon"),
            "data": self._source(),
            "symbols": self._symbols(production),
            "timeframe": self._timeframe(),
            "date_range": train_days,
            "trainer_kwargs": cfg.trainer_kwargs,
        }
        request = TrainingRequest.from_settings(self.settings, **overrides)
        request.data.timeframe = self._timeframe()
        if pipeline.get("feature_config"):
            request.features = FeatureConfig.from_dict(pipeline["feature_config"])
        if pipeline.get("label_config") and cfg.horizon is None:
            request.labels = LabelConfig.from_dict(pipeline["label_config"])
        # the candidate is of production's family (its recipe), or the configured one
        family = get_family(cfg.family or meta.get("model_family"))
        same_family = family.name == get_family(meta.get("model_family")).name
        recipe = dict(meta.get("model_config") or {}) if same_family else {}
        if recipe:
            config = family.config_from_dict({**recipe, **cfg.model_kwargs})
            request.model = family.with_shape(config, n_features=1, window=int(window))
        else:
            request.model = family.make_config(dict(cfg.model_kwargs), n_features=1, window=int(window))
        request.family = family.name
        request.fee = cfg.fee
        return request

    def _retrain(
        self,
        trigger: str,
        production: ProductionVersion | None,
        series: Callable[[], list[CandleSeries]],
        drift_report: DriftReport | None,
        perf_report: PerformanceReport | None,
        t0: float,
        lease: Lease,
    ) -> RetrainingResult:
        from ..data import take_last_days
        from ..mlflow_integration import MLflowCallback
        from ..training_orchestrator import code_version, run_training

        cfg = self.config
        name = cfg.model_name
        run_name = f"retrain_{name}_{trigger}_{datetime.now(UTC):%Y%m%d_%H%M%S_%f}"
        out = Path(self.settings.output_dir) / run_name
        tracker = self._new_tracker()
        description = f"Retraining of {name} (trigger: {trigger})" + (
            f"; production was v{production.version}" if production else "; no production version yet"
        )
        tags = {
            "trigger": trigger,
            "model_name": name,
            "run_kind": RUN_KIND_RETRAINING,
            "training_mode": "auto_retraining",
            "code_version": code_version(),
            "production_version_before": str(production.version) if production else "none",
        }
        result = RetrainingResult(
            STATUS_FAILED,
            trigger,
            name,
            "",
            production_before=production.version if production else None,
            drift=drift_report,
            performance=perf_report,
        )
        guard = _LeaseCheck(lease)
        try:
            # ``tracker.run`` ends the run (and fold runs left open) FAILED or KILLED with the reason on any error.
            with tracker.run(run_name=run_name, description=description, tags=tags) as run_id:
                result.run_id = run_id
                self.progress.stage(f"MLflow run {run_id} in experiment '{EXPERIMENT_RETRAINING}'")
                tracker.log_params({"retraining": cfg.to_params()})
                if drift_report is None and production is not None:
                    try:  # informative for every retraining; never blocks one
                        drift_report = self.check_drift(series(), production)
                        result.drift = drift_report
                    except Exception as exc:  # noqa: BLE001 - the drift check never blocks a retraining
                        tracker.set_tags({"drift_check_error": one_line(exc)[:4000]})
                if drift_report is not None:
                    self._log_drift(tracker, drift_report, out / "drift")
                if perf_report is not None:
                    tracker.log_dict(perf_report.to_dict(), "performance_report.json")
                    tracker.log_metrics(
                        {
                            "recent_accuracy": perf_report.accuracy,
                            "recent_f1_macro": perf_report.f1_macro,
                            "recent_samples": perf_report.n_samples,
                        }
                    )
                    tracker.set_tags({"performance_drop": str(perf_report.dropped).lower()})

                # data of the last train_days (or all there is)
                all_series = series()
                fired_by = {"drift": drift_report, "performance_drop": perf_report}.get(trigger)
                if fired_by is not None:
                    self.progress.stage(f"{trigger}: {fired_by.summary}")
                self.progress.stage(
                    "candles: " + ", ".join(f"{s.symbol} {s.timeframe} ({len(s.frame)} rows)" for s in all_series)
                )
                train_days = self._effective_train_days(all_series)
                request = self._request(production, train_days)
                train_series = [take_last_days(s, train_days) for s in all_series] if train_days else all_series

                # walk-forward: features once, K trainings (each its own nested run), production on the same windows
                wf = self._walk_forward(request, train_series, production, out, tracker=tracker, guard=guard)
                tracker.log_dict(wf.to_dict(), "walk_forward.json")
                wf.log_to(tracker)
                result.walk_forward = wf.to_dict()["summary"]

                # the final candidate on the whole window, logged into this run, registered
                self.progress.stage("final model on the whole window")
                outcome = run_training(
                    request,
                    out / "model",
                    run_name=run_name,
                    model_name=name,
                    export_onnx=True,
                    callbacks=[MLflowCallback(tracker), guard, *self.progress.training("final model")],
                    tracker=tracker,
                )
                lease.check()  # nothing reaches the registry without the lock
                version = self._register(tracker, outcome, wf, trigger)
                result.version = version
                self.progress.stage(f"registered {name} v{version}; promotion gate")

                # the model store's gate, champion vs challenger on the walk-forward folds
                lease.check()
                decision = self._promote(tracker, name, version, wf, trigger)
                result.promoted = decision.promoted
                result.promotion_reason = decision.reason
                result.production_after = decision.to_version if decision.promoted else decision.from_version
                tracker.set_tags(
                    {
                        "promotion_decision": "promoted" if decision.promoted else "refused",
                        "promotion_reason": decision.reason[:4000],
                        "candidate_version": version,
                        **verdict_tag(decision),
                    }
                )
                result.status = STATUS_COMPLETED
                result.reason = (
                    f"retrained on trigger {trigger}: v{version} "
                    + ("promoted to production" if decision.promoted else "not promoted")
                    + f" ({decision.reason})"
                )
                result.seconds = time.perf_counter() - t0
                tracker.log_metrics({"retraining_seconds": result.seconds})
            logger.info(result.reason)
            return result
        except Exception as exc:  # noqa: BLE001 - every failure is a FAILED result; run() never raises
            reason = one_line(exc)
            if isinstance(exc, LockLost):
                reason = f"the retraining lock was lost ({reason}); stopped before touching the registry"
            logger.error("retraining %s failed: %s", run_name, reason)
            result.status = STATUS_FAILED
            result.reason = f"retraining failed, production untouched: {reason}"
            result.error_type = type(exc).__name__
            result.seconds = time.perf_counter() - t0
            return result

    def _effective_train_days(self, series: Sequence[CandleSeries]) -> float | None:
        import pandas as pd

        from ..data import timeframe_to_timedelta

        if self.config.train_days is None:
            return None
        held = []
        for s in series:
            f = s.frame
            held.append(
                (f["timestamp"].iloc[-1] - f["timestamp"].iloc[0] + timeframe_to_timedelta(s.timeframe))
                / pd.Timedelta(days=1)
            )
        shortest = min(held) if held else 0.0
        if self.config.train_days >= shortest:
            logger.info(
                "train_days %g >= the %.2f days the data holds: training on all of it", self.config.train_days, shortest
            )
            return None
        return float(self.config.train_days)

    def _walk_forward(
        self,
        request: TrainingRequest,
        series: Sequence[CandleSeries],
        production: ProductionVersion | None,
        out: Path,
        *,
        tracker: MLflowTracker | None = None,
        guard: Callback | None = None,
    ) -> WalkForwardResult:
        import numpy as np

        from ..mlflow_integration import MLflowCallback
        from ..predictor import Predictor
        from ..walk_forward import ProductionScores, build_feature_table, run_walk_forward, score_with_predictor

        table = build_feature_table(series, request.features, request.labels, request.window)
        scores = None
        if production is not None:
            try:
                self.progress.stage(f"scoring production v{production.version} on the same windows")
                predictor = Predictor.from_model_uri(
                    f"models:/{self.config.model_name}/{production.version}",
                    settings=self.settings,
                    refresh_interval_s=0,
                    record=False,  # an evaluation, not a served prediction
                )
                try:
                    scores = score_with_predictor(predictor, series, table)
                finally:
                    predictor.close()
                scores.version = str(production.version)
            except Exception as exc:  # noqa: BLE001 - a model that cannot read these candles: compare recorded metrics instead
                note = f"production v{production.version} could not score the walk-forward data: {one_line(exc)}"
                logger.warning(note)
                scores = ProductionScores(
                    rows=np.empty(0, np.int64),
                    proba=np.empty((0, 3), np.float32),
                    version=str(production.version),
                    note=note,
                )
        n = self.config.walk_forward.n_folds
        self.progress.stage(f"walk-forward: {n} folds ({self.config.walk_forward.mode}) on {len(table.ends)} windows")

        def fold_callbacks(fold: Fold, n_folds: int) -> list[Callback]:
            label = f"fold {fold.index + 1}/{n_folds}"
            callbacks: list[Callback] = [guard] if guard is not None else []
            if tracker is not None:  # each fold a nested run with its own learning curves
                tracker.start_run(
                    run_name=f"{label.replace(' ', '_').replace('/', '_of_')}",
                    nested=True,
                    tags={"run_kind": RUN_KIND_FOLD, "fold": str(fold.index + 1), "model_name": self.config.model_name},
                )
                tracker.log_dict(fold.describe(table.timestamps), "fold.json")
                callbacks.append(MLflowCallback(tracker))
            return [*callbacks, *self.progress.training(label)]

        def on_fold(result: FoldResult) -> None:
            if tracker is not None:
                values = {f"test_{k}": v for k, v in result.candidate.items()}
                if result.production is not None:
                    values.update({f"production_{k}": v for k, v in result.production.items()})
                    values["production_coverage"] = result.coverage
                tracker.log_metrics(values)
                tracker.end_run("FINISHED")
            self.progress.stage(
                f"fold {result.index + 1}/{n}: accuracy {result.candidate['accuracy']:.4f}, macro F1 "
                f"{result.candidate['f1_macro']:.4f}"
                + (
                    f" (production {result.production['accuracy']:.4f} / {result.production['f1_macro']:.4f})"
                    if result.production
                    else ""
                )
            )

        wf = run_walk_forward(
            table,
            self.config.walk_forward,
            request.model,
            request.trainer,
            family=request.family,
            fee=request.fee,
            production=scores,
            on_fold=on_fold,
            fold_callbacks=fold_callbacks,
        )
        if production is not None and scores is not None and not wf.has_production:
            wf.production_note = scores.note or f"production v{production.version} scored none of the test windows"
        return wf

    def _register(self, tracker: MLflowTracker, outcome: TrainingOutcome, wf: WalkForwardResult, trigger: str) -> str:
        from ..training_orchestrator import version_tags

        assert outcome.model_uri is not None
        tm = outcome.test_metrics
        summary = wf.summary()
        tags = version_tags(outcome, tracker.run_id, "auto_retraining")
        tags["trigger"] = trigger
        for key in ("walk_forward_accuracy_mean", "walk_forward_f1_macro_mean", "walk_forward_backtest_sharpe_mean"):
            if math.isfinite(summary.get(key, float("nan"))):
                tags[key] = f"{summary[key]:.4f}"
        description = (
            f"HybridCNN-LSTM retrained ({trigger}) on {', '.join(outcome.symbols)} {outcome.timeframe}, run "
            f"{outcome.run_name}: walk-forward ({wf.config.n_folds} folds) accuracy "
            f"{summary['walk_forward_accuracy_mean']:.3f} +- {summary['walk_forward_accuracy_std']:.3f}, macro F1 "
            f"{summary['walk_forward_f1_macro_mean']:.3f}; final test accuracy {tm['accuracy']:.3f}."
        )
        return tracker.register_model(outcome.model_uri, self.config.model_name, tags=tags, description=description)

    def _promote(
        self, tracker: MLflowTracker, name: str, version: str, wf: WalkForwardResult, trigger: str
    ) -> PromotionDecision:
        """The model store's gate. With production scored on the folds, an evaluator answers both
        versions' walk-forward means (same rows); otherwise the candidate's walk-forward means are
        its metrics and the gate compares them with production's recorded test metrics."""
        from ..registry import PromotionGate, get_model_store

        cfg = self.config
        gate = PromotionGate.from_settings(
            self.settings,
            primary_metric=cfg.primary_metric,
            min_improvement=cfg.min_improvement,
            **(
                {"min_accuracy_for_promotion": cfg.min_accuracy_for_promotion}
                if cfg.min_accuracy_for_promotion is not None
                else {}
            ),
        )
        candidate = {k: v for k, v in wf.means("candidate").items() if math.isfinite(v)}
        evaluator: Callable[[str, int], Mapping[str, float]] | None = None
        if wf.has_production and wf.production_version is not None:
            production = {k: v for k, v in wf.means("production").items() if math.isfinite(v)}
            prod_version = int(wf.production_version)

            def evaluate(model: str, v: int) -> Mapping[str, float]:
                if int(v) == int(version):
                    return candidate
                if int(v) == prod_version:
                    return production
                return {}

            evaluator = evaluate
        check = Check(
            "auto_retraining", True, {"trigger": trigger, "folds": wf.config.n_folds, "note": wf.production_note}
        )
        store = get_model_store(
            tracker.settings, gate, evaluator, experiment_name=EXPERIMENT_RETRAINING, client=tracker.client
        )
        try:
            from ..verdicts import render

            return store.auto_promote(
                name,
                version,
                candidate_metrics=candidate,
                reason=render(check),
                actor=f"retraining:{trigger}",
                reason_check=check,
            )
        finally:
            store.close()

    def _log_drift(self, tracker: MLflowTracker, report: DriftReport, directory: Path) -> None:
        paths = report.write(directory)
        for p in paths.values():
            tracker.log_artifact(str(p))
        tracker.log_metrics(
            {
                "drift_share": report.drift_share,
                "drift_features": report.n_drifted,
                "drift_reference_rows": report.n_reference,
                "drift_recent_rows": report.n_current,
            }
        )
        tracker.set_tags({"drift_detected": str(report.drifted).lower(), "drift_summary": report.summary[:4000]})

    def log_drift_check(self, report: DriftReport) -> str:
        """Log a stand-alone drift check as its own run (``run_kind=drift_check``); returns the run id."""
        tracker = self._new_tracker()
        with (
            tracker.run(
                run_name=f"drift_check_{self.config.model_name}_{datetime.now(UTC):%Y%m%d_%H%M%S}",
                tags={"model_name": self.config.model_name, "run_kind": RUN_KIND_DRIFT_CHECK},
            ) as run_id,
            tempfile.TemporaryDirectory(prefix="drift-") as tmp,
        ):
            self._log_drift(tracker, report, Path(tmp))
        return run_id

    # ---------------------------------------------------------------- scheduler

    def build_scheduler(
        self,
        *,
        interval_minutes: float | None = None,
        cron: str | None = None,
        check_interval_minutes: float | None = None,
        blocking: bool = True,
    ) -> BaseScheduler:
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
        check_interval_minutes = (
            check_interval_minutes if check_interval_minutes is not None else self.config.check_interval_minutes
        )
        trigger: Any
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
        common: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 3600}
        scheduler.add_job(
            self._job,
            trigger,
            kwargs={"include_scheduled": True},
            id="retraining_scheduled",
            name=f"scheduled retraining of {self.config.model_name}",
            **common,
        )
        if check_interval_minutes:
            scheduler.add_job(
                self._job,
                IntervalTrigger(minutes=float(check_interval_minutes), timezone="UTC"),
                kwargs={"include_scheduled": False},
                id="retraining_checks",
                name=f"drift / performance checks of {self.config.model_name}",
                **common,
            )
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
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            scheduler.start()
