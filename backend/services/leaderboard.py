"""The leaderboard for front ends: queue a comparison of model families (a job the worker runs through
:func:`backend.ml_engine.leaderboard.run_leaderboard`) and read the newest finished one.

    service = LeaderboardService(settings, jobs)
    job = service.submit(ComparisonParams(families=["hybrid_cnn_lstm", "lightgbm"], folds=3))
    service.latest()            # LeaderboardPublic of the newest finished run of ``model_comparison``
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ._mlflow import ensure_store_reachable, translate_errors
from .data_sources import resolve_data_source
from .errors import NotFoundError
from .jobs import JobService
from .redaction import redact_tree
from .schemas import ComparisonParams, JobPublic, LeaderboardPublic, json_safe
from .settings import ServiceSettings

if TYPE_CHECKING:  # pragma: no cover
    from backend.ml_engine.leaderboard import LeaderboardConfig

__all__ = ["NO_LEADERBOARD", "LeaderboardService", "leaderboard_config"]

logger = logging.getLogger(__name__)

#: The 404's detail when no comparison has finished yet.
NO_LEADERBOARD = "no comparison of model families has finished yet: start one with POST /leaderboard"


def leaderboard_config(params: ComparisonParams, settings: ServiceSettings) -> LeaderboardConfig:
    """The engine's ``LeaderboardConfig`` for validated params: unset fields from the settings, the data
    source resolved here (in the worker's job process: a database URL never travels through the queue)."""
    from backend.ml_engine.leaderboard import LeaderboardConfig

    overrides: dict[str, Any] = {
        "data": resolve_data_source(params.data_source, settings),
        "symbols": list(params.symbols) if params.symbols else None,
        "timeframe": params.timeframe,
        "date_range": params.date_range,
        "window": params.window,
        "horizon": params.horizon,
        "families": tuple(params.families) if params.families else None,
        "folds": params.folds,
        "epochs": params.epochs,
        "batch_size": params.batch_size,
        "seed": params.seed,
        "n_boot": params.n_boot,
        "policy": params.policy.model_dump() if params.policy is not None else None,
    }
    return LeaderboardConfig.from_settings(settings, **{k: v for k, v in overrides.items() if v is not None})


class LeaderboardService:
    """Submit a comparison (a job), read the newest result. Holds no connection of its own."""

    def __init__(self, settings: ServiceSettings, jobs: JobService) -> None:
        self.settings = settings
        self.jobs = jobs
        self._secrets = settings.secrets()

    def submit(self, params: ComparisonParams) -> JobPublic:
        """Queue a comparison; the worker trains every family on the same walk-forward folds."""
        return self.jobs.submit_leaderboard(params)

    def latest(self) -> LeaderboardPublic:
        """The newest finished comparison; :class:`NotFoundError` when none has finished yet."""
        from backend.ml_engine.leaderboard import latest_leaderboard

        ensure_store_reachable(self.settings.mlflow_tracking_uri)
        with translate_errors(self._secrets, "MLflow tracking"):
            found = latest_leaderboard(self.settings)
        if not found:
            raise NotFoundError(NO_LEADERBOARD)
        return LeaderboardPublic.model_validate(redact_tree(json_safe(found), self._secrets))
