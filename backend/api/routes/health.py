"""``GET /health``: stores, queue, workers, production model per name."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from ..deps import HealthServiceDep
from ..schemas import HealthPublic

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def health(health: HealthServiceDep, response: Response) -> HealthPublic:
    """Tracking store reachable and its kind (URI with the password masked), jobs database, queue,
    workers (host, pid, slots, running jobs, last heartbeat), job counts, and the production version
    of each registered model. ``status`` is ``degraded`` (reasons in ``problems``) when a store or
    the queue does not answer or no worker is alive. HTTP 503 when a store or the queue does not
    answer (this API cannot do its work); 200 when only the workers are missing (reads, predictions
    and submissions still work; jobs wait)."""
    report = health.check()
    if not report.api_ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return report
