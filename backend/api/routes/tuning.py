"""Hyperparameter studies (Optuna): ``POST /tune`` prepares a study and queues its trials as jobs (kind
``tune``) the workers run; ``GET /studies``, ``GET /studies/{name}`` follow them; ``stop``, ``resume``
and ``promote`` (retrain the best trial, register it, the promotion gate) act on one study.

Bad input to ``POST /tune`` (a search space with an unknown parameter, an empty or inverted range, a
parameter of another family, a study name that exists with another space) answers 422 with one line in
``detail`` (code ``invalid_data``), and nothing is queued.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from backend.services.errors import ConflictError, InvalidDataError, InvalidRequestError, UnavailableError
from backend.services.schemas import (
    MODEL_NAME_PATTERN,
    STUDY_NAME_PATTERN,
    StudiesPublic,
    StudyPublic,
    TuneParams,
)
from backend.services.tuning import TuningService

from ..deps import ServicesDep, WriteAccess
from ..schemas import JobPublic, error_responses

router = APIRouter(tags=["tuning"])

StudyName = Annotated[str, Path(pattern=STUDY_NAME_PATTERN, description="study name")]

_READ_ERRORS = error_responses(404, 422)
_WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 422)  # 400: a body that is not UTF-8 JSON


class TuneCreate(TuneParams):
    """Body of ``POST /tune``: every field optional, e.g.
    ``{"family": "lightgbm", "trials": 20, "parallel": 2, "objective": "accuracy"}``; ``space`` is a TOML
    search space (the text of a file like ``backend/ml_engine/tuning/search_space.toml``)."""


class StudyResumeCreate(BaseModel):
    """Body of ``POST /studies/{name}/resume`` (optional): raise the target by ``trials`` and/or change
    ``parallel``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"trials": 10, "parallel": 2}]})

    trials: int = Field(default=0, strict=True, ge=0, le=1000, description="trials to add to the study's target")
    parallel: int | None = Field(
        default=None, strict=True, ge=1, le=64, description="trial jobs in flight at once (unset: as before)"
    )


class StudyPromoteCreate(BaseModel):
    """Body of ``POST /studies/{name}/promote`` (optional)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"model_name": "tuned_lightgbm"}]})

    model_name: str | None = Field(
        default=None, pattern=MODEL_NAME_PATTERN, description="registered model name (unset: the default)"
    )


async def _tuning(services: ServicesDep) -> TuningService:
    return TuningService(services.settings, services.jobs)


TuningServiceDep = Annotated[TuningService, Depends(_tuning)]


@contextlib.contextmanager
def _study_lock_errors() -> Iterator[None]:
    """A study's lock not obtained in time (another request or a trial job holds it): 409; the lock
    database out of reach: 503. Anything else passes."""
    from backend.ml_engine.locks import LockError, LockTimeout

    try:
        yield
    except LockTimeout:
        raise ConflictError("the study is busy (its lock is held): try again") from None
    except LockError:
        raise UnavailableError("the lock database cannot be reached") from None


@router.post(
    "/tune",
    response_model=StudyPublic,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[WriteAccess],
    responses=error_responses(400, 401, 403, 409, 422),
)
def submit_study(body: TuneCreate, tuning: TuningServiceDep, request: Request, response: Response) -> StudyPublic:
    """Prepare a study (created, or an existing one of the same space and objective extended by ``trials``)
    and queue ``parallel`` trial jobs (kind ``tune``); answers 202 with the study.

    Bad input answers 422 with one line in ``detail`` and queues nothing: a search space with an unknown
    parameter, an empty or inverted range, a parameter of another family, a study name that exists with
    another search space or objective, candles that cannot be used. Follow it at ``GET /studies/{name}``."""
    try:
        with _study_lock_errors():
            study = tuning.submit(body)
    except InvalidDataError:
        raise
    except InvalidRequestError as exc:  # refused before anything was queued: the request's content
        raise InvalidDataError(str(exc)) from None
    response.headers["Location"] = str(request.url_for("get_study", name=study.name))
    return study


@router.get("/studies", response_model=StudiesPublic)
def list_studies(tuning: TuningServiceDep) -> StudiesPublic:
    """Every study in the Optuna storage, newest first: progress (target, remaining, trial jobs queued and
    running), best value, DSR and PBO."""
    return tuning.studies()


@router.get("/studies/{name}", response_model=StudyPublic, responses=_READ_ERRORS)
def get_study(name: StudyName, tuning: TuningServiceDep) -> StudyPublic:
    """One study: its progress, every trial, the best trial's params, and once finalized the holdout (read
    once), DSR and PBO in full. 404 when there is no such study."""
    return tuning.study(name)


@router.post(
    "/studies/{name}/stop",
    response_model=StudyPublic,
    dependencies=[WriteAccess],
    responses=_WRITE_ERRORS,
)
def stop_study(name: StudyName, tuning: TuningServiceDep) -> StudyPublic:
    """No new trials: the study's queued trial jobs are cancelled and its running ones asked to stop; the
    last one to end finalizes the study. ``POST /studies/{name}/resume`` undoes it."""
    with _study_lock_errors():
        return tuning.stop(name)


@router.post(
    "/studies/{name}/resume",
    response_model=StudyPublic,
    dependencies=[WriteAccess],
    responses=_WRITE_ERRORS,
)
def resume_study(
    name: StudyName,
    tuning: TuningServiceDep,
    body: Annotated[StudyResumeCreate | None, Body()] = None,
) -> StudyPublic:
    """Clear a stop request, raise the target by ``trials`` (optional) and change ``parallel`` (optional),
    then queue trial jobs up to the target."""
    body = body or StudyResumeCreate()
    with _study_lock_errors():
        return tuning.resume(name, parallel=body.parallel, more_trials=body.trials)


@router.post(
    "/studies/{name}/promote",
    response_model=JobPublic,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[WriteAccess],
    responses=_WRITE_ERRORS,
)
def promote_study(
    name: StudyName,
    tuning: TuningServiceDep,
    request: Request,
    response: Response,
    body: Annotated[StudyPromoteCreate | None, Body()] = None,
) -> JobPublic:
    """Queue a job (kind ``tune``, action ``register``) that retrains the study's best trial through the
    normal training path, registers it (tagged with the study, the trial, DSR and PBO) and puts it through
    the promotion gate; answers 202 with the job. 409 while the study has no completed trial."""
    body = body or StudyPromoteCreate()
    job = tuning.promote_best(name, model_name=body.model_name)
    response.headers["Location"] = str(request.url_for("get_job", job_id=job.id))
    return job
