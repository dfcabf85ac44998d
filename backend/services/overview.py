"""Summaries across services for front ends: what is in production and why, the retraining runs
with their trigger and decision, the latest recorded drift check.

Composed from :class:`ModelService`, :class:`RunService` and :class:`JobService` (no store of its
own), so the dashboard's overview reads exactly what the REST API serves::

    overview = OverviewService(services.models, services.runs, services.jobs)
    for p in overview.production():
        print(p.name, p.version, p.promoted_at, p.reason)
    overview.retraining_runs("hybrid_cnn_lstm").data[0].trigger      # "drift"
    overview.latest_drift("hybrid_cnn_lstm")                         # DriftStatus or None
    p.yardstick.beats_baselines("test_accuracy")                     # False: no better than a naive rule
    overview.yardsticks([v.run_id for v in model.versions])          # run id -> Yardstick
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from backend.ml_engine.config import EXPERIMENT_RETRAINING
from backend.ml_engine.errors import one_line
from backend.ml_engine.evaluation import MIN_TRADES

from ._mlflow import translate_errors
from .errors import NotFoundError
from .jobs import JobService
from .models import ModelService
from .redaction import redact, redact_tree
from .runs import RunService
from .schemas import JobPublic, Lang, RunPublic, RunsPublic, VerdictRecord, json_safe

__all__ = [
    "DriftStatus",
    "OverviewService",
    "ProductionSummary",
    "RetrainingRunPublic",
    "RetrainingRunsPublic",
    "Yardstick",
]

logger = logging.getLogger(__name__)

#: Key metrics of a version, in the order front ends show them (recorded as version tags).
KEY_METRICS: tuple[str, ...] = (
    "test_accuracy",
    "test_f1_macro",
    "backtest_sharpe",
    # a Sharpe is shown with its trades and interval, never alone
    "backtest_n_trades",
    "backtest_sharpe_low",
    "backtest_sharpe_high",
    "walk_forward_accuracy_mean",
)
RUN_KIND_RETRAINING = "retraining"
DRIFT_REPORT_ARTIFACT = "drift_report.json"
#: The naive baselines every training scores on its own test windows (run metrics ``baseline_<name>_<metric>``).
BASELINES: tuple[str, ...] = ("majority", "previous_direction")
#: Run metrics that give a version's headline numbers their yardsticks: the baselines of accuracy and
#: macro F1, buy-and-hold beside the backtest, the trades and bars behind a Sharpe.
YARDSTICK_METRICS: tuple[str, ...] = (
    "test_accuracy",
    "test_f1_macro",
    *(f"baseline_{b}_{m}" for b in BASELINES for m in ("accuracy", "f1_macro")),
    "backtest_sharpe",
    "backtest_total_return",
    "backtest_buy_and_hold_sharpe",
    "backtest_buy_and_hold_total_return",
    "backtest_n_trades",
    "backtest_n_bars",
)
#: Run ids asked for in one search (MLflow's ``run_id IN (...)``).
_RUN_IDS_PER_SEARCH = 100


class Yardstick(BaseModel):
    """A run's headline numbers with what they are measured against: the naive baselines on the same
    test windows, buy-and-hold on the same bars, the trades and bars behind the Sharpe, and the data
    (hash, test rows) it was tested on, so versions tested on different data can be told apart."""

    run_id: str
    metrics: dict[str, float | None] = Field(default_factory=dict, description="YARDSTICK_METRICS the run logged")
    data_hash: str | None = Field(default=None, description="param data_hash: the candles it was trained and tested on")
    test_rows: int | None = Field(default=None, description="param data_rows_test (else backtest_n_bars)")

    def value(self, key: str) -> float | None:
        v = self.metrics.get(key)
        return None if v is None or not math.isfinite(v) else float(v)

    def baselines(self, metric: str) -> dict[str, float]:
        """``test_accuracy`` -> ``{"majority": 0.40, "previous_direction": 0.35}`` (those recorded)."""
        base = metric[len("test_") :] if metric.startswith("test_") else metric
        out = {b: self.value(f"baseline_{b}_{base}") for b in BASELINES}
        return {b: v for b, v in out.items() if v is not None}

    def beats_baselines(self, metric: str, value: float | None = None) -> bool | None:
        """Is ``metric`` (or ``value``) above every recorded baseline? None when either is unknown."""
        value = self.value(metric) if value is None else value
        baselines = self.baselines(metric)
        if value is None or not math.isfinite(value) or not baselines:
            return None
        return value > max(baselines.values())

    @property
    def n_trades(self) -> int | None:
        v = self.value("backtest_n_trades")
        return None if v is None else int(v)

    @property
    def n_bars(self) -> int | None:
        v = self.value("backtest_n_bars")
        return None if v is None else int(v)

    @property
    def too_few_trades(self) -> bool | None:
        """Fewer trades than ``evaluation.MIN_TRADES``: its return and Sharpe say nothing."""
        return None if self.n_trades is None else self.n_trades < MIN_TRADES

    def same_data(self, other: Yardstick | None) -> bool | None:
        """Tested on the same data as ``other`` (same data hash and test rows)? None when unknown."""
        if other is None or self.data_hash is None or other.data_hash is None:
            return None
        return self.data_hash == other.data_hash and self.test_rows == other.test_rows


class ProductionSummary(VerdictRecord):
    """A registered model's production version: its key metrics, and when, by whom and why it got there.

    ``reason`` and ``detail`` are as the history recorded them; the verdict that put the version
    there is also given as codes (``checks``, ``notes``, ``reason_check``) and in ``lang``
    (``message``, each ``text``)."""

    name: str
    version: int | None = Field(default=None, description="None: nothing in production")
    latest_version: int | None = None
    run_id: str | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    promoted_at: datetime | None = None
    promoted_by: str | None = Field(
        default=None, description="the history's actor: auto, api, dashboard, retraining:drift"
    )
    decision: str | None = Field(default=None, description="promoted or rolled_back: how production got here")
    forced: bool = False
    yardstick: Yardstick | None = Field(default=None, description="the version's run: baselines, buy-and-hold, data")
    newer_passed_version: int | None = Field(
        default=None, description="the newest later version that passed the gate (None: no better candidate)"
    )


class DriftStatus(BaseModel):
    """The latest drift check recorded in the tracking store (a retraining or a drift-check run)."""

    model_name: str
    run_id: str
    run_name: str | None = None
    checked_at: datetime | None = None
    drifted: bool
    summary: str = ""
    drift_share: float | None = None
    trigger: str | None = None


class RetrainingRunPublic(RunPublic):
    """A retraining run with its trigger and the registry's decision lifted out of the tags."""

    trigger: str | None = None
    decision: str | None = Field(default=None, description="promoted / refused; None while running or failed")
    decision_reason: str | None = None
    decision_verdict: dict[str, Any] | None = Field(
        default=None, description="the gate's checks (codes and parameters) behind decision_reason"
    )
    candidate_version: int | None = None
    production_before: int | None = None
    drift_detected: bool | None = None
    failure_reason: str | None = None

    def decision_text(self, lang: str = "en") -> str | None:
        """The gate's decision in ``lang``, rendered from its codes (as recorded for older runs)."""
        from backend.ml_engine.verdicts import Verdict

        if self.decision_verdict:  # the candidate's numbers are its walk-forward means: named so
            return Verdict.from_dict(self.decision_verdict).render(lang, walk_forward=True)
        return self.decision_reason


class RetrainingRunsPublic(BaseModel):
    data: list[RetrainingRunPublic]
    count: int
    next_page_token: str | None = None


def _json_object(text: str | None) -> dict[str, Any] | None:
    """A JSON object recorded in a tag; None when absent or unreadable (shown as the English reason)."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _count(value: float | None) -> int | None:
    return int(value) if value is not None and math.isfinite(value) else None


def _bool(value: Any) -> bool | None:
    if value is None:
        return None
    return str(value).strip().lower() in ("true", "1", "yes")


class OverviewService:
    """Read-only summaries over the model, run and job services."""

    def __init__(self, models: ModelService, runs: RunService, jobs: JobService) -> None:
        self.models = models
        self.runs = runs
        self.jobs = jobs
        self._secrets = runs.settings.secrets()

    # -- production ------------------------------------------------------------------------

    def production(self, history_limit: int = 50, lang: Lang = "en") -> list[ProductionSummary]:
        """For every registered model: the production version, its key metrics, and the history
        entry that put it there (the newest ``promoted`` or ``rolled_back`` event to that version),
        its verdict rendered in ``lang``."""
        out: list[ProductionSummary] = []
        for model in self.models.list_models().data:
            summary = ProductionSummary(
                name=model.name, version=model.production_version, latest_version=model.latest_version, lang=lang
            )
            version = next((v for v in model.versions if v.version == model.production_version), None)
            if version is not None:
                summary.run_id = version.run_id
                summary.metrics = {k: version.metrics[k] for k in KEY_METRICS if k in version.metrics}
            if model.production_version is not None:
                history = self.models.history(model.name, limit=history_limit, lang=lang).data
                archived = {v.version for v in model.versions if v.archived}
                passed = [  # later versions the gate let through (a forced promotion skipped it)
                    e.to_version
                    for e in history
                    if e.decision == "promoted" and not e.forced and e.to_version is not None
                    if e.to_version > model.production_version and e.to_version not in archived
                ]
                summary.newer_passed_version = max(passed, default=None)
                if version is not None and version.run_id:
                    summary.yardstick = self.yardsticks([version.run_id]).get(version.run_id)
                for event in history:
                    if event.decision in ("promoted", "rolled_back") and event.to_version == model.production_version:
                        verdict = {k: getattr(event, k) for k in VerdictRecord.model_fields}
                        summary = summary.model_copy(
                            update={
                                **verdict,
                                "promoted_at": event.timestamp,
                                "promoted_by": event.actor or None,
                                "decision": event.decision,
                                "forced": event.forced,
                            }
                        )
                        break
            out.append(summary)
        return out

    # -- yardsticks ------------------------------------------------------------------------

    def yardsticks(self, run_ids: list[str | None] | list[str]) -> dict[str, Yardstick]:
        """The :class:`Yardstick` of each run (run id -> yardstick; runs not found are left out), in
        one search per hundred runs."""
        wanted = sorted({r for r in run_ids if r and all(c.isalnum() or c in "-_" for c in r)})
        out: dict[str, Yardstick] = {}
        for i in range(0, len(wanted), _RUN_IDS_PER_SEARCH):
            chunk = wanted[i : i + _RUN_IDS_PER_SEARCH]
            where = "attributes.run_id IN (" + ", ".join(_quoted(r) for r in chunk) + ")"
            try:
                page = self.runs.search_runs(None, where, max_results=len(chunk))
            except NotFoundError:
                continue
            for run in page.data:
                rows = _int(run.params.get("data_rows_test"))
                out[run.run_id] = Yardstick(
                    run_id=run.run_id,
                    metrics={k: run.metrics[k] for k in YARDSTICK_METRICS if k in run.metrics},
                    data_hash=run.params.get("data_hash") or None,
                    test_rows=rows if rows is not None else _count(run.metrics.get("backtest_n_bars")),
                )
        return out

    # -- runs and jobs ---------------------------------------------------------------------

    def latest_runs(self, limit: int = 10) -> RunsPublic:
        """The newest runs over every experiment."""
        return self.runs.search_runs(None, "", order_by=["attributes.start_time DESC"], max_results=limit)

    def active_jobs(self, limit: int = 50) -> list[JobPublic]:
        """Running jobs, then queued ones, newest first."""
        running = self.jobs.list_jobs(status="running", limit=limit).data
        queued = self.jobs.list_jobs(status="queued", limit=limit).data
        return running + queued

    # -- retraining and drift --------------------------------------------------------------

    def retraining_runs(
        self, model_name: str | None = None, max_results: int = 50, page_token: str | None = None
    ) -> RetrainingRunsPublic:
        """Runs of the retraining pipeline (experiment ``auto_retraining``), newest first; empty
        when no retraining has ever run."""
        where = [f"tags.run_kind = {_quoted(RUN_KIND_RETRAINING)}"]
        if model_name:
            where.append(f"tags.model_name = {_quoted(model_name)}")
        try:
            page = self.runs.search_runs(
                [EXPERIMENT_RETRAINING],
                " AND ".join(where),
                order_by=["attributes.start_time DESC"],
                max_results=max_results,
                page_token=page_token,
            )
        except NotFoundError:
            return RetrainingRunsPublic(data=[], count=0)
        data = [self._retraining_run(r) for r in page.data]
        return RetrainingRunsPublic(data=data, count=len(data), next_page_token=page.next_page_token)

    @staticmethod
    def _retraining_run(run: RunPublic) -> RetrainingRunPublic:
        tags = run.tags
        return RetrainingRunPublic(
            **run.model_dump(),
            trigger=tags.get("trigger"),
            decision=tags.get("promotion_decision"),
            decision_reason=tags.get("promotion_reason"),
            decision_verdict=_json_object(tags.get("promotion_verdict")),
            candidate_version=_int(tags.get("candidate_version")),
            production_before=_int(tags.get("production_version_before")),
            drift_detected=_bool(tags.get("drift_detected")),
            failure_reason=tags.get("failure_reason"),
        )

    def latest_drift(self, model_name: str) -> DriftStatus | None:
        """The newest run of ``model_name`` that recorded a drift check (tag ``drift_detected``)."""
        where = f"tags.model_name = {_quoted(model_name)} AND tags.drift_detected IS NOT NULL"
        try:
            page = self.runs.search_runs(
                [EXPERIMENT_RETRAINING], where, order_by=["attributes.start_time DESC"], max_results=1
            )
        except NotFoundError:
            return None
        if not page.data:
            return None
        run = page.data[0]
        return DriftStatus(
            model_name=model_name,
            run_id=run.run_id,
            run_name=run.run_name,
            checked_at=run.start_time,
            drifted=bool(_bool(run.tags.get("drift_detected"))),
            summary=run.tags.get("drift_summary", ""),
            drift_share=run.metrics.get("drift_share"),
            trigger=run.tags.get("trigger"),
        )

    def drift_report(self, run_id: str) -> dict[str, Any] | None:
        """The per-feature drift table a run logged (``drift_report.json``), or None if it has none."""
        with tempfile.TemporaryDirectory(prefix="drift-report-") as tmp:
            try:
                with translate_errors(self._secrets, "MLflow tracking"):
                    path = self.runs.client.download_artifacts(run_id, DRIFT_REPORT_ARTIFACT, tmp)
            except NotFoundError:
                raise
            except Exception as exc:  # noqa: BLE001 - a run without the artifact, or artifacts not readable
                logger.info(
                    "run %s: no readable %s: %s",
                    run_id,
                    DRIFT_REPORT_ARTIFACT,
                    redact(one_line(exc), self._secrets)[:300],
                )
                return None
            try:
                report = json.loads(Path(path).read_text())
            except (OSError, ValueError):
                return None
        return redact_tree(json_safe(report), self._secrets) if isinstance(report, dict) else None
