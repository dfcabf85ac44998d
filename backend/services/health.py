"""Health: is the tracking store reachable (and which kind), the jobs database, the queue, the
workers (host, pid, slots, running jobs, last heartbeat); which version of each registered model is
in production. ``degraded`` with the reasons in ``problems`` when a store or the queue does not
answer or no worker is alive (queued jobs would wait forever). Passwords masked."""

from __future__ import annotations

import logging

from backend.ml_engine.errors import one_line
from backend.ml_engine.mlflow_integration.stores import check_tracking_store, store_kind

from .errors import ServiceError
from .jobs import JobService
from .models import ModelService
from .queue import queue_target
from .redaction import mask_uri, redact
from .schemas import ComponentHealth, HealthPublic, ProductionModel
from .settings import ServiceSettings

__all__ = ["HealthService"]

logger = logging.getLogger(__name__)


class HealthService:
    def __init__(
        self, settings: ServiceSettings, models: ModelService, jobs: JobService, timeout_s: float = 3.0
    ) -> None:
        self.settings, self.models, self.jobs, self.timeout_s = settings, models, jobs, timeout_s
        self._secrets = settings.secrets()

    def _error(self, exc: BaseException) -> str:
        return redact(one_line(exc, typed=True), self._secrets)[:500]

    def check(self) -> HealthPublic:
        """Every component's state; ``status`` is ``ok`` only when all of them answer."""
        uri = self.settings.mlflow_tracking_uri
        try:
            kind = store_kind(uri)
        except ValueError:
            kind = "unknown"
        tracking = ComponentHealth(kind=kind, location=mask_uri(uri), reachable=True)
        try:
            check_tracking_store(uri, timeout=self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            tracking = tracking.model_copy(update={"reachable": False, "error": self._error(exc)})

        jobs_url = self.settings.jobs_database_url.get_secret_value()
        jobs_store = ComponentHealth(
            kind=jobs_url.split(":", 1)[0].split("+", 1)[0], location=mask_uri(jobs_url), reachable=True
        )
        counts: dict[str, int] = {}
        workers = []
        try:
            self.jobs.store.ping()
            counts = self.jobs.counts()
            workers = self.jobs.workers()
        except Exception as exc:  # noqa: BLE001
            jobs_store = jobs_store.model_copy(update={"reachable": False, "error": self._error(exc)})

        try:
            queue = self.jobs.queue
            queue_health = ComponentHealth(kind=queue.kind, location=queue.location, reachable=True)
            queue.pending_count()
        except Exception as exc:  # noqa: BLE001
            try:
                kind, location = queue_target(self.settings)
            except ValueError:
                kind, location = "unknown", ""
            queue_health = ComponentHealth(
                kind=kind, location=mask_uri(location), reachable=False, error=self._error(exc)
            )

        models: list[ProductionModel] = []
        if tracking.reachable:
            try:
                models = self.models.production_models()
            except ServiceError as exc:
                tracking = tracking.model_copy(update={"error": str(exc)[:500]})
        problems = [
            f"{name} unreachable"
            for name, component in (
                ("tracking store", tracking),
                ("jobs database", jobs_store),
                ("queue", queue_health),
            )
            if not component.reachable
        ]
        if jobs_store.reachable and not any(w.alive for w in workers):
            problems.append("no live worker: queued jobs wait until one starts (python -m backend.services.worker)")
        return HealthPublic(
            status="degraded" if problems else "ok",
            problems=problems,
            api_ready=tracking.reachable and jobs_store.reachable and queue_health.reachable,
            read_only=self.settings.read_only,
            tracking_store=tracking,
            jobs_store=jobs_store,
            queue=queue_health,
            workers=workers,
            jobs=counts,
            models=models,
        )
