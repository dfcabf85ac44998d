"""Experiments and runs: list experiments with their descriptions, search runs page by page,
read one run with metric histories and artifacts.

    service = RunService(ServiceSettings())
    page = service.search_runs(["model_training"], "metrics.val_accuracy > 0.7",
                               order_by=["metrics.val_f1 DESC"], max_results=10)
    more = service.search_runs(["model_training"], "metrics.val_accuracy > 0.7", page_token=page.next_page_token)

Reads only: nothing here creates an experiment. A filter MLflow cannot parse raises
:class:`~backend.services.errors.InvalidRequestError` with MLflow's own message.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ._mlflow import ensure_store_reachable, make_client, ms_to_dt, translate_errors
from .errors import InvalidRequestError, NotFoundError
from .redaction import mask_uri, redact, redact_mapping
from .schemas import (
    ArtifactPublic,
    DatasetInputPublic,
    ExperimentPublic,
    ExperimentsPublic,
    MetricPoint,
    RunDetailPublic,
    RunPublic,
    RunsPublic,
    json_safe,
)
from .settings import ServiceSettings

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient
    from mlflow.entities import Experiment, Run

__all__ = ["RunService"]

logger = logging.getLogger(__name__)

NOTE_TAG = "mlflow.note.content"
#: Largest page the API hands out (MLflow's SQL store allows 50,000; a page is loaded whole).
MAX_RESULTS_LIMIT = 1000
#: How long an experiment name's id is remembered (an experiment deleted and re-created under the
#: same name is found again after this many seconds).
EXPERIMENT_CACHE_TTL_S = 30.0
#: MLflow page tokens are base64 (standard or URL-safe alphabet).
PAGE_TOKEN_PATTERN = r"^[A-Za-z0-9+/=_\-]{1,4096}$"
_PAGE_TOKEN_RE = re.compile(PAGE_TOKEN_PATTERN)


def _downsample(points: list[Any], limit: int) -> list[Any]:
    """At most ``limit`` points, evenly spaced, first and last kept."""
    if limit <= 0 or len(points) <= limit:
        return points
    if limit == 1:
        return [points[-1]]
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def _check_page_token(token: str) -> None:
    """MLflow's tokens are base64 of a JSON object (``{"offset": 50}``); MLflow itself answers some
    malformed ones with an internal error, so they are refused here first."""
    import base64
    import binascii
    import json

    message = "invalid page_token: pass the next_page_token of a previous page unchanged"
    if not _PAGE_TOKEN_RE.match(token):
        raise InvalidRequestError(message)
    try:
        decoded = json.loads(base64.b64decode(token.encode("ascii"), validate=False))
    except (binascii.Error, ValueError):
        raise InvalidRequestError(message) from None
    if not isinstance(decoded, dict):
        raise InvalidRequestError(message)
    offset = decoded.get("offset")
    if offset is not None and not (
        (isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0)
        or (isinstance(offset, str) and offset.isdigit())
    ):
        raise InvalidRequestError(message)


class RunService:
    """Read-only access to experiments and runs for front ends."""

    def __init__(self, settings: ServiceSettings, client: MlflowClient | None = None) -> None:
        self.settings = settings
        self._client = client
        self._guard = threading.Lock()
        self._secrets = settings.secrets()
        #: experiment name or id -> (id, monotonic expiry): one query less per search
        self._experiment_ids: dict[str, tuple[str, float]] = {}
        self._inflight: dict[tuple[Any, ...], Future[RunsPublic]] = {}
        self._inflight_guard = threading.Lock()

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            with self._guard:
                if self._client is None:
                    self._client = make_client(self.settings.mlflow_tracking_uri)
        return self._client

    def _errors(self) -> Any:
        ensure_store_reachable(self.settings.mlflow_tracking_uri)
        return translate_errors(self._secrets, "MLflow tracking")

    # -- experiments -----------------------------------------------------------------------

    def list_experiments(self, include_deleted: bool = False) -> ExperimentsPublic:
        """Every experiment with its description (the ``mlflow.note.content`` tag)."""
        from mlflow.entities import ViewType

        view = ViewType.ALL if include_deleted else ViewType.ACTIVE_ONLY
        out: list[ExperimentPublic] = []
        token: str | None = None
        with self._errors():
            while True:
                page = self.client.search_experiments(
                    view_type=view, max_results=1000, page_token=token, order_by=["name ASC"]
                )
                out.extend(self._experiment_public(e) for e in page)
                token = page.token
                if not token:
                    break
        return ExperimentsPublic(data=out, count=len(out))

    def _experiment_public(self, exp: Experiment) -> ExperimentPublic:
        tags = dict(exp.tags or {})
        return ExperimentPublic(
            experiment_id=str(exp.experiment_id),
            name=exp.name,
            description=tags.get(NOTE_TAG) or None,
            lifecycle_stage=exp.lifecycle_stage,
            artifact_location=redact(mask_uri(exp.artifact_location), self._secrets) if exp.artifact_location else None,
            tags=redact_mapping(tags, self._secrets),
            created_at=ms_to_dt(getattr(exp, "creation_time", None)),
            updated_at=ms_to_dt(getattr(exp, "last_update_time", None)),
        )

    def resolve_experiment_ids(self, experiments: Sequence[str] | None) -> list[str]:
        """Experiment ids for names or ids; all active experiments when none are given."""
        from mlflow.entities import ViewType
        from mlflow.exceptions import MlflowException

        with self._errors():
            if not experiments:
                ids: list[str] = []
                token: str | None = None
                while True:
                    page = self.client.search_experiments(
                        view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token
                    )
                    ids.extend(str(e.experiment_id) for e in page)
                    token = page.token
                    if not token:
                        return ids
            ids = []
            now = time.monotonic()
            for ref in experiments:
                cached = self._experiment_ids.get(ref)
                if cached is not None and cached[1] > now:
                    ids.append(cached[0])
                    continue
                exp = None
                if ref.isdigit():
                    try:
                        exp = self.client.get_experiment(ref)
                    except MlflowException as exc:
                        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                            raise
                if exp is None:
                    exp = self.client.get_experiment_by_name(ref)
                if exp is None or exp.lifecycle_stage != "active":
                    raise NotFoundError(f"experiment {ref!r} not found (give its name or id)")
                ids.append(str(exp.experiment_id))
                self._experiment_ids[ref] = (str(exp.experiment_id), now + EXPERIMENT_CACHE_TTL_S)
            return ids

    # -- runs ------------------------------------------------------------------------------

    def _run_public(self, run: Run) -> dict[str, Any]:
        info = run.info
        return {
            "run_id": info.run_id,
            "run_name": info.run_name,
            "experiment_id": str(info.experiment_id),
            "status": info.status,
            "start_time": ms_to_dt(info.start_time),
            "end_time": ms_to_dt(info.end_time),
            "lifecycle_stage": info.lifecycle_stage,
            "artifact_uri": redact(mask_uri(info.artifact_uri), self._secrets) if info.artifact_uri else None,
            "metrics": json_safe(dict(run.data.metrics)),
            "params": redact_mapping(run.data.params, self._secrets),
            "tags": redact_mapping(run.data.tags, self._secrets),
        }

    def search_runs(
        self,
        experiments: Sequence[str] | None = None,
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        max_results: int = 50,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> RunsPublic:
        """One page of runs matching an MLflow filter (``metrics.val_accuracy > 0.7 AND
        params.trainer_epochs = '50'``), in ``experiments`` (names or ids; default: all)."""
        from mlflow.entities import ViewType

        if not 1 <= max_results <= MAX_RESULTS_LIMIT:
            raise InvalidRequestError(f"max_results must be between 1 and {MAX_RESULTS_LIMIT}")
        if page_token:
            _check_page_token(page_token)
        ids = self.resolve_experiment_ids(experiments)
        if not ids:
            return RunsPublic(data=[], count=0, next_page_token=None)

        def search() -> RunsPublic:
            with self._errors():
                found = self.client.search_runs(
                    experiment_ids=ids,
                    filter_string=filter_string or "",
                    run_view_type=ViewType.ALL if include_deleted else ViewType.ACTIVE_ONLY,
                    max_results=max_results,
                    order_by=list(order_by) if order_by else None,
                    page_token=page_token or None,
                )
            data = [RunPublic.model_validate(self._run_public(r)) for r in found]
            return RunsPublic(data=data, count=len(data), next_page_token=found.token or None)

        if not self.settings.coalesce_run_searches:
            return search()
        key = (tuple(ids), filter_string or "", tuple(order_by or ()), max_results, page_token or "", include_deleted)
        return self._single_flight(key, search)

    def _single_flight(self, key: tuple[Any, ...], compute: Callable[[], RunsPublic]) -> RunsPublic:
        """Identical searches in flight at the same moment share one query: a dashboard polled by
        many people, or a burst of retries, costs the database one search. The answer is never
        older than the query that was already running when the request came in (no cache)."""
        with self._inflight_guard:
            future = self._inflight.get(key)
            leader = future is None
            if leader:
                future = Future()
                self._inflight[key] = future
        assert future is not None
        if not leader:
            return future.result()
        try:
            result = compute()
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            future.set_result(result)
            return result
        finally:
            with self._inflight_guard:
                self._inflight.pop(key, None)

    def get_run(self, run_id: str, history_max_points: int = 1000, max_artifacts: int = 1000) -> RunDetailPublic:
        """A run with each metric's history (at most ``history_max_points`` points, evenly
        spaced), its artifact list (at most ``max_artifacts`` entries) and dataset inputs."""
        with self._errors():
            run = self.client.get_run(run_id)
            history: dict[str, list[MetricPoint]] = {}
            for key in sorted(run.data.metrics):
                points = sorted(self.client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
                history[key] = [
                    MetricPoint(step=int(m.step), value=json_safe(float(m.value)), timestamp=int(m.timestamp))
                    for m in _downsample(points, history_max_points)
                ]
        artifacts, truncated = self._list_artifacts(run_id, max_artifacts)
        datasets = []
        for di in getattr(run.inputs, "dataset_inputs", None) or []:
            context = next((t.value for t in di.tags or [] if t.key == "mlflow.data.context"), None)
            datasets.append(
                DatasetInputPublic(
                    name=di.dataset.name,
                    digest=di.dataset.digest,
                    source_type=di.dataset.source_type,
                    context=context,
                )
            )
        return RunDetailPublic(
            **self._run_public(run),
            metric_history=history,
            artifacts=artifacts,
            artifacts_truncated=truncated,
            datasets=datasets,
        )

    def _list_artifacts(self, run_id: str, limit: int, max_depth: int = 4) -> tuple[list[ArtifactPublic], bool]:
        out: list[ArtifactPublic] = []
        queue: list[tuple[str | None, int]] = [(None, 0)]
        try:
            while queue:
                path, depth = queue.pop(0)
                for f in self.client.list_artifacts(run_id, path):
                    if len(out) >= limit:
                        return out, True
                    out.append(ArtifactPublic(path=f.path, is_dir=bool(f.is_dir), file_size=f.file_size))
                    if f.is_dir and depth + 1 < max_depth:
                        queue.append((f.path, depth + 1))
        except Exception as exc:  # noqa: BLE001 - artifacts on a store we cannot read: say so in the log
            logger.warning("run %s: artifacts not listable: %s", run_id, redact(str(exc), self._secrets))
            return out, True
        return out, False
