"""Background jobs: list, read, cancel."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status as http

from backend.services.schemas import JobKind

from ..deps import JobServiceDep, WriteAccess
from ..schemas import JobPublic, JobsPublic, error_responses

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="job id")]


@router.get("", response_model=JobsPublic, responses=error_responses(422))
def list_jobs(
    jobs: JobServiceDep,
    status: Literal["queued", "running", "finished", "failed", "cancelled"] | None = None,
    kind: JobKind | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobsPublic:
    """Jobs, newest first."""
    return jobs.list_jobs(status=status, kind=kind, limit=limit)


@router.get("/{job_id}", response_model=JobPublic, responses=error_responses(404, 422))
def get_job(job_id: JobId, jobs: JobServiceDep) -> JobPublic:
    """A job: status, epoch of total, latest metrics, run id, version, error."""
    return jobs.get_job(job_id)


@router.post(
    "/{job_id}/cancel",
    response_model=JobPublic,
    status_code=http.HTTP_202_ACCEPTED,
    dependencies=[WriteAccess],
    responses=error_responses(401, 403, 404, 409, 422),
)
def cancel_job(job_id: JobId, jobs: JobServiceDep) -> JobPublic:
    """Cancel: a queued job ends ``cancelled`` at once; a running one stops after the current step
    (``cancel_requested`` true until the worker ends it). 409 when the job has already ended."""
    return jobs.cancel_job(job_id)
