"""The service layer: what the REST API (``backend.api``) and the dashboard both call.

Plain, synchronous Python over the ML engine: each service is built from
:class:`ServiceSettings`, returns pydantic models (:mod:`.schemas`) and raises
:mod:`.errors`; none knows about HTTP. Build them all at once at the entry point::

    from backend.services import Services, ServiceSettings

    services = Services.from_settings(ServiceSettings())
    services.models.list_models()                       # registered models, versions, aliases
    services.runs.search_runs(["model_training"], "metrics.val_accuracy > 0.7")
    job = services.jobs.submit_training(TrainingParams(epochs=50, batch_size=64))
    services.health.check()
    services.close()

==================  =============================================================================
module              concept
==================  =============================================================================
``settings``        :class:`ServiceSettings` (engine settings + token, CORS, jobs DB, queue, limits)
``schemas``         returned and accepted models (``XPublic``, ``TrainingParams``)
``errors``          NotFound / InvalidRequest / InvalidData / Conflict / Unavailable
``redaction``       keeping passwords and tokens out of answers and logs
``access``          the write rule (token configured and supplied) shared by API and dashboard
``models``          registry (through the model store): list, version with schema, history,
                    promote, rollback; verdicts as codes and in ``en`` / ``ru``
``runs``            experiments and runs: search with MLflow filters, one run in detail
``data_sources``    the data-source names a client may ask for, resolved on this machine
``jobs``            submit, list, read, cancel jobs (the API side)
``job_store``       the ``ml_jobs`` table: the line, claims, heartbeat, progress, reap
``migrations``      Alembic migrations of the jobs tables
``reaper``          jobs whose worker died failed, their MLflow runs KILLED (API and worker)
``job_runner``      the worker side: claim the head of the line, run it in its own process
``job_process``     one job in its own OS process (heartbeat, progress, cancel, outcome)
``queue``           huey (Redis, PostgreSQL or SQLite) carrying wake-up messages
``worker``          ``python -m backend.services.worker``: slots, one process per job
``scheduler``       ``python -m backend.services.scheduler``: schedules submitted as jobs
``predictions``     production model predictions from raw candles
``retraining``      queue a retraining, run the drift check
``leaderboard``     queue a comparison of model families, read the latest one
``health``          stores, queue, workers, production model per name
``overview``        summaries across services for the dashboard
==================  =============================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import (
    ConflictError,
    InvalidDataError,
    InvalidRequestError,
    NotFoundError,
    ServiceError,
    UnavailableError,
)
from .health import HealthService
from .jobs import JobService
from .models import ModelService
from .predictions import PredictionService
from .retraining import RetrainingService
from .runs import RunService
from .schemas import RetrainParams, TrainingParams
from .settings import ServiceSettings

__all__ = [
    "ConflictError",
    "HealthService",
    "InvalidDataError",
    "InvalidRequestError",
    "JobService",
    "ModelService",
    "NotFoundError",
    "PredictionService",
    "RetrainParams",
    "RetrainingService",
    "RunService",
    "ServiceError",
    "ServiceSettings",
    "Services",
    "TrainingParams",
    "UnavailableError",
]


@dataclass
class Services:
    """Every service over one settings object; built once per process."""

    settings: ServiceSettings
    models: ModelService
    runs: RunService
    jobs: JobService
    predictions: PredictionService
    retraining: RetrainingService
    health: HealthService

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Services:
        models = ModelService(settings)
        jobs = JobService(settings)
        return cls(
            settings=settings,
            models=models,
            runs=RunService(settings),
            jobs=jobs,
            predictions=PredictionService(settings),
            retraining=RetrainingService(settings, jobs),
            health=HealthService(settings, models, jobs),
        )

    def close(self) -> None:
        self.predictions.close()
        self.models.close()
        self.jobs.close()
