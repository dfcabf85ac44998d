"""Registered models: list, one version with its schema, history, promote, rollback."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query

from backend.services.schemas import MODEL_NAME_PATTERN, Lang

from ..deps import ModelServiceDep, WriteAccess
from ..schemas import (
    ModelPublic,
    ModelsPublic,
    ModelVersionDetail,
    PromoteCreate,
    PromotionDecisionPublic,
    PromotionHistoryPublic,
    RollbackCreate,
    error_responses,
)

router = APIRouter(prefix="/models", tags=["models"])

ModelName = Annotated[str, Path(pattern=MODEL_NAME_PATTERN, description="registered model name")]
#: ``?lang=ru``: verdicts (each check's ``text``, the ``message``) in Russian; ``reason`` and ``detail``
#: stay as recorded (English).
Language = Annotated[Lang, Query(description="language of the verdicts' words: en or ru")]
_READ_ERRORS = error_responses(404, 422)
_WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 422)  # 400: a body that is not UTF-8 JSON


@router.get("", response_model=ModelsPublic)
def list_models(models: ModelServiceDep) -> ModelsPublic:
    """Registered models with aliases, tags, and their versions (newest first) with key metrics."""
    return models.list_models()


@router.get("/{name}", response_model=ModelPublic, responses=_READ_ERRORS)
def get_model(name: ModelName, models: ModelServiceDep) -> ModelPublic:
    """One registered model."""
    return models.get_model(name)


@router.get("/{name}/versions/{version}", response_model=ModelVersionDetail, responses=_READ_ERRORS)
def get_version(
    name: ModelName, version: Annotated[int, Path(ge=1, le=2**31 - 1)], models: ModelServiceDep
) -> ModelVersionDetail:
    """One version with its input/output schema (the MLmodel signature), tags and metrics."""
    return models.get_version(name, version)


@router.get("/{name}/history", response_model=PromotionHistoryPublic, responses=_READ_ERRORS)
def get_history(
    name: ModelName,
    models: ModelServiceDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    decision: Literal["promoted", "refused", "rolled_back", "archived"] | None = None,
    lang: Language = "en",
) -> PromotionHistoryPublic:
    """Promotion history (promoted, refused, rolled back, archived), newest first; each entry's verdict
    as codes (``checks``, ``notes``) and in ``lang`` (``message``, each check's ``text``)."""
    return models.history(name, limit=limit, decision=decision, lang=lang)


@router.post(
    "/{name}/promote", response_model=PromotionDecisionPublic, dependencies=[WriteAccess], responses=_WRITE_ERRORS
)
def promote(
    name: ModelName, body: PromoteCreate, models: ModelServiceDep, lang: Language = "en"
) -> PromotionDecisionPublic:
    """Move alias ``production`` to ``version`` through the promotion gate (``force`` skips it).

    A refusal is answered 200 with ``promoted: false`` and the gate's reason (``reason`` in English;
    ``checks`` with each check's code, parameters and ``text`` in ``lang``; ``message`` the whole
    verdict in ``lang``); it is recorded in the history like a promotion."""
    return models.promote(name, body.version, reason=body.reason, force=body.force, actor=body.actor, lang=lang)


@router.post(
    "/{name}/rollback",
    response_model=PromotionDecisionPublic,
    dependencies=[WriteAccess],
    responses=_WRITE_ERRORS,
)
def rollback(
    name: ModelName,
    models: ModelServiceDep,
    body: Annotated[RollbackCreate | None, Body()] = None,
    lang: Language = "en",
) -> PromotionDecisionPublic:
    """Move ``production`` back to the previous production version (409 when there is none); the
    verdict in ``lang`` as for ``promote``."""
    body = body or RollbackCreate()
    return models.rollback(name, reason=body.reason, actor=body.actor, lang=lang)
