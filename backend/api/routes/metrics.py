"""``GET /metrics``: Prometheus metrics (text format) at the app's root, as Prometheus expects.

No token: the metrics are read-only and carry no URL, host name or secret. What they are:
:mod:`backend.services.metrics`.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from backend.services.metrics import Metrics

__all__ = ["prediction_timer", "router"]

router = APIRouter(tags=["metrics"])


def _metrics(request: Request) -> Metrics | None:
    metrics = getattr(request.app.state, "metrics", None)
    return metrics if isinstance(metrics, Metrics) else None


def prediction_timer(request: Request, model: str) -> AbstractContextManager[None]:
    """Count and time the prediction made in the block (nothing where the app has no metrics)."""
    metrics = _metrics(request)
    return metrics.prediction_timer(model) if metrics is not None else contextlib.nullcontext()


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}
    },
)
def metrics(request: Request) -> Response:
    """Jobs by kind and status, job durations and failures by kind, queue depth, live workers (from
    the jobs table and the queue: the same in every API replica), and the predictions this process
    served with their latency. A store or queue that does not answer is a 0 in ``ml_jobs_store_up``
    / ``ml_queue_up``, never an error."""
    found = _metrics(request)
    body = found.render() if found is not None else b""
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
