"""One router per resource, mounted under ``/api/ml-management`` by :func:`backend.api.main.create_app`."""

from __future__ import annotations

from fastapi import APIRouter

from ..schemas import error_responses
from . import experiments, health, jobs, leaderboard, models, predictions, retraining, runs, training, tuning

__all__ = ["api_router"]

#: Errors any route may answer: a body over the cap, a fault of ours, a store that is down.
api_router = APIRouter(responses=error_responses(413, 500, 503))
for _module in (models, experiments, runs, training, jobs, retraining, leaderboard, tuning, predictions, health):
    api_router.include_router(_module.router)
