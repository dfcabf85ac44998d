"""Retraining (a job run by the retraining pipeline) and the drift check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from backend.ml_engine.config import DEFAULT_MODEL_NAME
from backend.services.data_sources import DataSource
from backend.services.schemas import MODEL_NAME_PATTERN

from ..deps import RetrainingServiceDep, WriteAccess
from ..schemas import DriftPublic, JobPublic, RetrainCreate, error_responses

router = APIRouter(tags=["retraining"])


@router.post(
    "/retrain",
    response_model=JobPublic,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[WriteAccess],
    responses=error_responses(400, 401, 403, 404, 422),
)
def retrain(body: RetrainCreate, retraining: RetrainingServiceDep, request: Request, response: Response) -> JobPublic:
    """Queue a retraining by the retraining pipeline (experiment ``auto_retraining``)."""
    job = retraining.submit(body)
    response.headers["Location"] = str(request.url_for("get_job", job_id=job.id))
    return job


@router.get(
    "/drift",
    response_model=DriftPublic,
    responses=error_responses(400, 404, 422),
)
def drift(
    retraining: RetrainingServiceDep,
    model_name: Annotated[str, Query(pattern=MODEL_NAME_PATTERN)] = DEFAULT_MODEL_NAME,
    recent_days: Annotated[float | None, Query(gt=0, le=365, allow_inf_nan=False)] = None,
    data_source: DataSource = "default",
) -> DriftPublic:
    """Feature drift (PSI + KS per feature) of the last ``recent_days`` of candles against the rows the
    production version was trained on. 404 without a production version."""
    return retraining.check_drift(model_name, recent_days=recent_days, data_source=data_source)
