"""``POST /train``: queue a training; the worker runs it."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from ..deps import JobServiceDep, WriteAccess
from ..schemas import JobPublic, TrainCreate, error_responses

router = APIRouter(tags=["training"])


@router.post(
    "/train",
    response_model=JobPublic,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[WriteAccess],
    responses=error_responses(400, 401, 403, 422),
)
def train(body: TrainCreate, jobs: JobServiceDep, request: Request, response: Response) -> JobPublic:
    """Queue a training (the guide's ``{"epochs": 50, "batch_size": 64}``); answers 202 with the job.

    Follow it at ``GET /jobs/{id}``: queued, running (epoch of total, latest metrics), then finished
    (run id, registered version), failed or cancelled."""
    job = jobs.submit_training(body)
    response.headers["Location"] = str(request.url_for("get_job", job_id=job.id))
    return job
