"""``POST /train``: queue a training; the worker runs it. ``GET /families``: the model families and their options."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from ..deps import JobServiceDep, WriteAccess
from ..schemas import JobPublic, ModelFamilyPublic, TrainCreate, error_responses

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


@router.get("/families", response_model=list[ModelFamilyPublic])
def families() -> list[ModelFamilyPublic]:
    """The model families ``POST /train`` accepts in ``model.family``, each with its options (name,
    type, default, range, help): the defaults are what a training uses when an option is not set."""
    from backend.ml_engine.families import family_names, get_family

    out = []
    for name in family_names():
        fam = get_family(name)
        out.append(
            ModelFamilyPublic(
                name=fam.name,
                title=fam.title,
                input=fam.input_kind,
                options=[o.to_dict() for o in fam.options()],
            )
        )
    return out
