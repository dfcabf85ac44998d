"""MLflow runs: search with MLflow filters, page by page; one run in detail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from backend.services.runs import MAX_RESULTS_LIMIT, PAGE_TOKEN_PATTERN

from ..deps import RunServiceDep
from ..schemas import RunDetailPublic, RunsPublic, error_responses

router = APIRouter(prefix="/mlflow/runs", tags=["runs"])


@router.get("", response_model=RunsPublic, responses=error_responses(400, 404, 422))
def search_runs(
    runs: RunServiceDep,
    experiment: Annotated[
        list[str] | None, Query(max_length=50, description="experiment name or id; repeat for several; default all")
    ] = None,
    filter_string: Annotated[
        str, Query(max_length=5000, description="e.g. metrics.val_accuracy > 0.7 AND params.trainer_epochs = '50'")
    ] = "",
    order_by: Annotated[
        list[str] | None, Query(max_length=10, description="e.g. metrics.val_f1 DESC; repeat for several")
    ] = None,
    max_results: Annotated[int, Query(ge=1, le=MAX_RESULTS_LIMIT)] = 50,
    page_token: Annotated[
        str | None, Query(pattern=PAGE_TOKEN_PATTERN, description="next_page_token of the previous page")
    ] = None,
    include_deleted: bool = False,
) -> RunsPublic:
    """Runs matching an MLflow filter (AND only; quote params and tags). A filter MLflow cannot parse
    is a 400 with MLflow's message."""
    return runs.search_runs(experiment, filter_string, order_by, max_results, page_token, include_deleted)


@router.get("/{run_id}", response_model=RunDetailPublic, responses=error_responses(400, 404, 422))
def get_run(
    run_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,64}$")],
    runs: RunServiceDep,
    history_max_points: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> RunDetailPublic:
    """A run: params, metrics, each metric's history, tags, artifact list and datasets."""
    return runs.get_run(run_id, history_max_points=history_max_points)
