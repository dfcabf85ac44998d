"""Request bodies of the REST API (``XCreate``) and its small response types.

What the API returns (``XPublic``) is defined once in :mod:`backend.services.schemas` and shared
with the dashboard; it is re-exported here so routes import from one place.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from backend.ml_engine.config import DEFAULT_MODEL_NAME
from backend.services.schemas import (
    MODEL_NAME_PATTERN,
    CandleIn,
    DriftPublic,
    ExperimentsPublic,
    HealthPublic,
    JobPublic,
    JobsPublic,
    ModelFamilyPublic,
    ModelPublic,
    ModelsPublic,
    ModelVersionDetail,
    PredictionPublic,
    PredictionsPublic,
    PromotionDecisionPublic,
    PromotionHistoryPublic,
    RetrainParams,
    RunDetailPublic,
    RunsPublic,
    TrainingParams,
)

__all__ = [
    "MAX_LISTED_ERRORS",
    "DriftPublic",
    "ErrorItem",
    "ErrorResponse",
    "ExperimentsPublic",
    "HealthPublic",
    "JobPublic",
    "JobsPublic",
    "ModelFamilyPublic",
    "ModelPublic",
    "ModelVersionDetail",
    "ModelsPublic",
    "PredictCreate",
    "PredictionPublic",
    "PredictionsPublic",
    "PromoteCreate",
    "PromotionDecisionPublic",
    "PromotionHistoryPublic",
    "RetrainCreate",
    "RollbackCreate",
    "RunDetailPublic",
    "RunsPublic",
    "TrainCreate",
    "error_responses",
]

ACTOR_PATTERN = r"^[A-Za-z0-9_.@\-]{1,64}$"


#: A 422 lists at most this many invalid fields (``detail`` counts them all).
MAX_LISTED_ERRORS = 20


class ErrorItem(BaseModel):
    """One invalid field of a ``validation_error``: where, what is wrong, the kind; never the value sent."""

    loc: list[str | int] = Field(description='where: ["body", "candles", 3, "high"], ["query", "limit"], ...')
    msg: str = Field(description="what is wrong, e.g. 'Input should be greater than 0'")
    type: str = Field(description="pydantic's error type, e.g. missing, greater_than, string_pattern_mismatch")


def _absent_not_null(schema: dict[str, Any]) -> None:
    """``errors`` is left out rather than sent as null: no ``default: null`` in its schema."""
    schema.pop("default", None)


class ErrorResponse(BaseModel):
    """Every error answer of the API (4xx, 5xx), e.g. ``{"detail": "no model named 'x'", "code": "not_found"}``.

    ``code`` is stable, for programs: validation_error (422, bad request shape), invalid_data (422,
    unusable content such as too few candles), invalid_request (400), unauthorized (401), forbidden
    (403), not_found (404), method_not_allowed (405), conflict (409), payload_too_large (413),
    unavailable (503), internal_error (500). ``detail`` is one line for people. No part of an error
    repeats the request's values."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"detail": "no production version of model 'hybrid_cnn_lstm'", "code": "not_found"},
                {
                    "detail": "1 invalid field: body.candles: Field required",
                    "code": "validation_error",
                    "errors": [{"loc": ["body", "candles"], "msg": "Field required", "type": "missing"}],
                },
            ]
        }
    )

    detail: str = Field(description="what went wrong, one line for people")
    code: str = Field(description="stable snake_case error code, e.g. not_found, validation_error")
    errors: Annotated[list[ErrorItem], Field(max_length=MAX_LISTED_ERRORS)] | SkipJsonSchema[None] = Field(
        default=None,
        description=f"validation_error only: the invalid fields (at most {MAX_LISTED_ERRORS})",
        json_schema_extra=_absent_not_null,
    )


_ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid request, e.g. a body that cannot be decoded or a malformed filter (`invalid_request`)",
    401: "Missing or wrong API token (`unauthorized`)",
    403: "Read-only API: no ML_API_TOKEN configured (`forbidden`)",
    404: "Not found (`not_found`)",
    409: "Conflict with the current state (`conflict`)",
    413: "Request body over ML_API_MAX_BODY_BYTES (`payload_too_large`)",
    422: "Invalid request fields (`validation_error`, with `errors`) or unusable data (`invalid_data`)",
    500: "Internal error (`internal_error`); the details are in the server log",
    503: "A store or the job queue cannot be reached (`unavailable`)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route or router: each status documented as an :class:`ErrorResponse`."""
    return {status: {"model": ErrorResponse, "description": _ERROR_DESCRIPTIONS[status]} for status in statuses}


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


#: A symbol as the prediction log keeps it (``ETH/BTC``, ``BTC/USDT:USDT``; at most 64 characters).
SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$"
#: Symbols in one ``POST /predict`` (``symbols``): their windows go through the model in one call.
MAX_PREDICT_SYMBOLS = 200
#: Candles of one series in ``POST /predict``.
MAX_PREDICT_CANDLES = 20_000

Symbol = Annotated[str, Field(pattern=SYMBOL_PATTERN)]
CandleSeries = Annotated[list[CandleIn], Field(min_length=1, max_length=MAX_PREDICT_CANDLES)]


class PredictCreate(BaseModel):
    """Body of ``POST /predict``, one of two forms: ``candles`` (the latest candles of one series, oldest
    first, at least the model's history; ``symbol`` optional, recorded in the prediction log) or
    ``symbols`` (``{symbol: candles}``, up to 200 series predicted in one model call). Both or neither: 422."""

    model_config = ConfigDict(extra="forbid")

    model_name: str = Field(default=DEFAULT_MODEL_NAME, pattern=MODEL_NAME_PATTERN)
    candles: CandleSeries | None = Field(default=None, description="one series, oldest first")
    symbol: Symbol | None = Field(default=None, description="the series' symbol, recorded with the prediction")
    symbols: dict[Symbol, CandleSeries] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PREDICT_SYMBOLS,
        description="several series by symbol, answered as {predictions: {symbol: prediction}} from one model call",
    )

    @model_validator(mode="after")
    def _one_form(self) -> PredictCreate:
        if (self.candles is None) == (self.symbols is None):
            raise ValueError("give either candles (one series) or symbols ({symbol: candles}), not both")
        if self.symbol is not None and self.symbols is not None:
            raise ValueError("symbol goes with candles; with symbols each series is named by its key")
        return self
