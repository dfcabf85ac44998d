"""Experiments with their descriptions."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import RunServiceDep
from ..schemas import ExperimentsPublic, error_responses

router = APIRouter(prefix="/experiments", tags=["experiments"])


@router.get("", response_model=ExperimentsPublic, responses=error_responses(422))
def list_experiments(runs: RunServiceDep, include_deleted: bool = False) -> ExperimentsPublic:
    """Experiments (``trading_bot_ml``, ``model_training``, ``auto_retraining``...) with descriptions."""
    return runs.list_experiments(include_deleted=include_deleted)
