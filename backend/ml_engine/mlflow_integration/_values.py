"""Small pure helpers of the tracker: parameter text, truncation, transient-error retries, run dicts."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from mlflow.exceptions import MlflowException

from .stores import mask_uri

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.entities import Run

__all__ = [
    "RunsPage",
    "first_line",
    "flatten_params",
    "installed_version",
    "is_transient",
    "now_ms",
    "param_text",
    "quiet_logger",
    "quote_key",
    "retry_transient",
    "run_to_dict",
    "truncate",
]

logger = logging.getLogger("backend.ml_engine.mlflow_integration.mlflow_tracker")

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RunsPage:
    """One page of :meth:`MLflowTracker.search_runs_page`."""

    runs: list[dict[str, Any]]
    next_page_token: str | None


def now_ms() -> int:
    return int(time.time() * 1000)


def truncate(value: str, limit: int, what: str, key: str) -> str:
    if len(value) <= limit:
        return value
    logger.warning("%s %r is %d characters long; truncated to MLflow's limit of %d", what, key, len(value), limit)
    return value[:limit]


def as_mapping(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        try:
            result = dump()
        except Exception:  # noqa: BLE001 - any object's model_dump(): one that fails is no mapping  # pragma: no cover
            return None
        return result if isinstance(result, Mapping) else None
    return None


def flatten_params(params: Mapping[str, Any], sep: str = "_", prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings (and dataclasses / pydantic models): ``{"model": {"hidden": 64}}``
    -> ``{"model_hidden": 64}``."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        nested = as_mapping(value)
        if nested is not None and len(nested) > 0:
            flat.update(flatten_params(nested, sep, name))
        else:
            flat[name] = value
    return flat


def param_text(value: Any) -> str:
    try:
        from pydantic import SecretStr

        if isinstance(value, SecretStr):
            return "**********"
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, Mapping) and len(value) == 0:
        return "{}"
    text = str(value)
    if "://" in text and "@" in text:
        text = mask_uri(text)
    return text


def installed_version(package: str) -> str | None:
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    return version.split("+", 1)[0]  # a local label (+cpu) is not installable from PyPI


_TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "REQUEST_LIMIT_EXCEEDED", "ENDPOINT_NOT_FOUND"}


def is_transient(exc: BaseException) -> bool:
    """A store error worth retrying: the database or server is briefly unreachable."""
    if isinstance(exc, MlflowException):
        return exc.error_code in _TRANSIENT_CODES
    try:
        import requests
        import sqlalchemy.exc

        return isinstance(exc, (OSError, requests.exceptions.ConnectionError, sqlalchemy.exc.OperationalError))
    except ImportError:  # pragma: no cover
        return isinstance(exc, OSError)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def retry_transient(fn: Callable[[], T], retry_s: float, what: str) -> T:
    """Call ``fn``; on a transient store error retry with backoff (0.5 s doubling to 5 s) for ``retry_s``."""
    deadline = time.monotonic() + max(0.0, retry_s)
    delay = 0.5
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            logger.warning("%s failed (%s); retrying in %.1f s", what, first_line(exc), delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


@contextlib.contextmanager
def quiet_logger(name: str, level: int = logging.ERROR) -> Iterator[None]:
    """Raise one logger's level for the duration of a block."""
    log = logging.getLogger(name)
    old = log.level
    log.setLevel(level)
    try:
        yield
    finally:
        log.setLevel(old)


def run_to_dict(run: Run) -> dict[str, Any]:
    """A run as a flat dict, keys as in ``mlflow.search_runs``: ``run_id``, ``run_name``,
    ``experiment_id``, ``status``, ``start_time``/``end_time`` (ms since epoch), ``artifact_uri``,
    ``metrics.<key>``, ``params.<key>``, ``tags.<key>``."""
    info = run.info
    out: dict[str, Any] = {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "artifact_uri": info.artifact_uri,
        "lifecycle_stage": info.lifecycle_stage,
    }
    out.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
    out.update({f"params.{k}": v for k, v in run.data.params.items()})
    out.update({f"tags.{k}": v for k, v in run.data.tags.items()})
    return out


def quote_key(key: str) -> str:
    if key.replace("_", "").isalnum():
        return key
    return f"`{key}`"
