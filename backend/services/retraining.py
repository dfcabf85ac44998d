"""Retraining and drift for front ends: queue a retraining (a job the worker runs through
:class:`~backend.ml_engine.retraining_pipeline.RetrainingPipeline`) and run the drift check."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from backend.ml_engine.errors import one_line

from ._mlflow import ensure_store_reachable
from .data_sources import DataSource, resolve_data_source
from .errors import InvalidDataError, NotFoundError
from .jobs import JobService
from .redaction import redact, redact_tree
from .schemas import DriftPublic, JobPublic, RetrainParams, json_safe
from .settings import ServiceSettings

if TYPE_CHECKING:  # pragma: no cover
    from backend.ml_engine.retraining_pipeline import RetrainingConfig

__all__ = ["RetrainingService", "retraining_config"]

logger = logging.getLogger(__name__)


def retraining_config(params: RetrainParams, settings: ServiceSettings) -> RetrainingConfig:
    """The pipeline's ``RetrainingConfig`` for validated params (the data source resolved here)."""
    from backend.ml_engine.retraining_pipeline import RetrainingConfig
    from backend.ml_engine.walk_forward import WalkForwardConfig

    kwargs: dict[str, Any] = {
        "model_name": params.model_name,
        "data": resolve_data_source(params.data_source, settings),
        "symbols": list(params.symbols or []),
        "timeframe": params.timeframe,
        "epochs": params.epochs,
        "batch_size": params.batch_size,
        "learning_rate": params.lr,
        "min_accuracy_for_promotion": params.min_accuracy_for_promotion,
    }
    if params.train_days is not None:
        kwargs["train_days"] = params.train_days
    if params.recent_days is not None:
        kwargs["recent_days"] = params.recent_days
    if params.n_folds is not None:
        kwargs["walk_forward"] = WalkForwardConfig(n_folds=params.n_folds)
    if params.model is not None:
        if "family" in params.model.model_fields_set:
            kwargs["family"] = params.model.family
        kwargs["model_kwargs"] = params.model.to_kwargs()
    return RetrainingConfig(**kwargs)


class RetrainingService:
    def __init__(self, settings: ServiceSettings, jobs: JobService) -> None:
        self.settings = settings
        self.jobs = jobs
        self._secrets = settings.secrets()

    def submit(self, params: RetrainParams) -> JobPublic:
        """Queue a retraining; the worker runs the pipeline with ``trigger``."""
        return self.jobs.submit_retraining(params)

    def check_drift(
        self,
        model_name: str,
        recent_days: float | None = None,
        data_source: DataSource = "default",
    ) -> DriftPublic:
        """Recent candles against the production model's training data (PSI + KS per feature).

        :class:`NotFoundError` when the model has no production version; :class:`InvalidDataError`
        when the candles or the reference cannot be used.
        """
        from backend.ml_engine.data import DataValidationError
        from backend.ml_engine.drift import DriftReferenceError
        from backend.ml_engine.retraining_pipeline import NoProductionModel, RetrainingPipeline

        ensure_store_reachable(self.settings.mlflow_tracking_uri)
        params = RetrainParams(model_name=model_name, recent_days=recent_days, data_source=data_source)
        pipeline = RetrainingPipeline(settings=self.settings, config=retraining_config(params, self.settings))
        try:
            report = pipeline.check_drift()
        except NoProductionModel as exc:
            raise NotFoundError(redact(one_line(exc), self._secrets)) from None
        except (DataValidationError, DriftReferenceError, ValueError) as exc:
            raise InvalidDataError(redact(one_line(exc), self._secrets)) from None
        detail = json_safe(report.to_dict())
        version = (report.reference or {}).get("version")
        return DriftPublic(
            model_name=model_name,
            version=int(version) if version is not None else None,
            drifted=bool(report.drifted),
            summary=redact(report.summary, self._secrets),
            drift_share=detail.get("drift_share"),
            drifted_features=list(report.drifted_features),
            report=redact_tree(detail, self._secrets),
        )
