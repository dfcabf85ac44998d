"""Request bodies of the REST API (``XCreate``) and its small response types.

What the API returns (``XPublic``) is defined once in :mod:`backend.services.schemas` and shared
with the dashboard; it is re-exported here so routes import from one place.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from backend.ml_engine.config import DEFAULT_MODEL_NAME
from backend.services.schemas import (
    MODEL_NAME_PATTERN,
    CandleIn,
    DriftPublic,
    ExperimentsPublic,
    HealthPublic,
    JobPublic,
    JobsPublic,
    ModelPublic,
    ModelsPublic,
    ModelVersionDetail,
    PredictionPublic,
    PromotionDecisionPublic,
    PromotionHistoryPublic,
    RetrainParams,
    RunDetailPublic,
    RunsPublic,
    TrainingParams,
)

__all__ = [
    "DriftPublic",
    "ExperimentsPublic",
    "HealthPublic",
    "JobPublic",
    "JobsPublic",
    "Message",
    "ModelPublic",
    "ModelVersionDetail",
    "ModelsPublic",
    "PredictCreate",
    "PredictionPublic",
    "PromoteCreate",
    "PromotionDecisionPublic",
    "PromotionHistoryPublic",
    "RetrainCreate",
    "RollbackCreate",
    "RunDetailPublic",
    "RunsPublic",
    "TrainCreate",
]

ACTOR_PATTERN = r"^[A-Za-z0-9_.@\-]{1,64}$"


class Message(BaseModel):
    """An error or a notice: ``{"detail": "..."}``."""

    detail: str


class TrainCreate(TrainingParams):
    """Body of ``POST /train``: every field optional, e.g. ``{"epochs": 50, "batch_size": 64}``."""


class RetrainCreate(RetrainParams):
    """Body of ``POST /retrain``."""


class PromoteCreate(BaseModel):
    """Body of ``POST /models/{name}/promote``."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"version": 3, "reason": "weekly retrain"}]}
    )

    version: int = Field(strict=True, ge=1, le=2**31 - 1)
    reason: str = Field(default="", max_length=1000)
    force: bool = Field(default=False, strict=True, description="skip the promotion gate (recorded in the history)")
    actor: str = Field(default="api", pattern=ACTOR_PATTERN, description="who decides, for the history")


class RollbackCreate(BaseModel):
    """Body of ``POST /models/{name}/rollback`` (optional)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=1000)
    actor: str = Field(default="api", pattern=ACTOR_PATTERN)


class PredictCreate(BaseModel):
    """Body of ``POST /predict``: the latest candles, oldest first (at least the model's history)."""

    model_config = ConfigDict(extra="forbid")

    model_name: str = Field(default=DEFAULT_MODEL_NAME, pattern=MODEL_NAME_PATTERN)
    candles: list[CandleIn] = Field(min_length=1, max_length=20_000)
