"""The leaderboard: ``POST /leaderboard`` queues a comparison of model families (a job the worker runs),
``GET /leaderboard`` reads the newest finished one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from backend.services.leaderboard import LeaderboardService
from backend.services.schemas import ComparisonParams, LeaderboardPublic

from ..deps import ServicesDep, WriteAccess
from ..schemas import JobPublic, error_responses

router = APIRouter(tags=["leaderboard"])


class LeaderboardCreate(ComparisonParams):
    """Body of ``POST /leaderboard``: every field optional, e.g.
    ``{"families": ["hybrid_cnn_lstm", "lightgbm"], "folds": 3, "policy": {"mode": "threshold", "threshold": 0.5}}``."""


async def _leaderboard(services: ServicesDep) -> LeaderboardService:
    return LeaderboardService(services.settings, services.jobs)


LeaderboardServiceDep = Annotated[LeaderboardService, Depends(_leaderboard)]


@router.post(
    "/leaderboard",
    response_model=JobPublic,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[WriteAccess],
    responses=error_responses(400, 401, 403, 422),
)
def submit_leaderboard(
    body: LeaderboardCreate, leaderboard: LeaderboardServiceDep, request: Request, response: Response
) -> JobPublic:
    """Queue a comparison of model families on the same walk-forward folds, with the baselines, block-bootstrap
    intervals and paired tests; answers 202 with the job (kind ``leaderboard``).

    Follow it at ``GET /jobs/{id}`` (``stage`` and ``progress`` while it runs); when it has finished its
    ``result`` is the leaderboard, and ``GET /leaderboard`` returns it."""
    job = leaderboard.submit(body)
    response.headers["Location"] = str(request.url_for("get_job", job_id=job.id))
    return job


@router.get("/leaderboard", response_model=LeaderboardPublic, responses=error_responses(404))
def latest_leaderboard(leaderboard: LeaderboardServiceDep) -> LeaderboardPublic:
    """The newest finished comparison (experiment ``model_comparison``): one row per family and baseline with
    each metric's value and interval, the paired tests against the baselines, the verdict and the run id.
    404 until a comparison has finished."""
    return leaderboard.latest()
