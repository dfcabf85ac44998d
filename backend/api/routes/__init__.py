"""One router per resource, mounted under ``/api/ml-management`` by :func:`backend.api.main.create_app`."""

from __future__ import annotations

from fastapi import APIRouter

from . import experiments, health, jobs, models, predictions, retraining, runs, training

__all__ = ["api_router"]

api_router = APIRouter()
for _module in (models, experiments, runs, training, jobs, retraining, predictions, health):
    api_router.include_router(_module.router)
