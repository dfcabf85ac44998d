"""Plumbing shared by the services that read MLflow: a client, time conversion, error translation."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from backend.ml_engine.errors import one_line
from backend.ml_engine.mlflow_integration.stores import resolve_tracking_uri

from .errors import InvalidRequestError, NotFoundError, ServiceError, UnavailableError
from .redaction import redact

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "ENDPOINT_NOT_FOUND"}
_BAD_REQUEST = {"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "INVALID_STATE", "MALFORMED_REQUEST"}
_UNAVAILABLE = {"TEMPORARILY_UNAVAILABLE", "SERVICE_UNDER_MAINTENANCE", "REQUEST_LIMIT_EXCEEDED"}


def make_client(tracking_uri: str) -> MlflowClient:
    """An ``MlflowClient`` over ``tracking_uri`` (tracking and registry), with an installed driver."""
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


_verified: set[str] = set()
_verified_guard = threading.Lock()


def preload_mlflow() -> None:
    """Import MLflow's client and SQL store modules (about 2 s) without opening any store: a process that
    will serve its first request soon (the dashboard) calls it in a background thread at start."""
    import mlflow.store.model_registry.sqlalchemy_store
    import mlflow.store.tracking.sqlalchemy_store
    from mlflow import MlflowClient

    del MlflowClient, mlflow


def ensure_store_reachable(tracking_uri: str, timeout_s: float = 3.0) -> None:
    """Fail fast with :class:`UnavailableError` while the tracking store cannot be reached.

    MLflow opens a SQL store with up to 15 retries and exponential back-off (minutes) before it
    gives up, and then caches the engine for the process. So until a store has answered once,
    a cheap check (one connection, ``timeout_s``) runs first; afterwards MLflow's pooled engine
    reports an outage at once (``TEMPORARILY_UNAVAILABLE``).
    """
    from backend.ml_engine.mlflow_integration.stores import TrackingStoreUnavailable, check_tracking_store

    if tracking_uri in _verified:
        return
    try:
        check_tracking_store(tracking_uri, timeout=timeout_s)
    except TrackingStoreUnavailable as exc:  # its message is one line with the password masked
        raise UnavailableError(str(exc)) from None
    with _verified_guard:
        _verified.add(tracking_uri)


def ms_to_dt(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC) if ms else None


def _message(exc: BaseException) -> str:
    return one_line(str(getattr(exc, "message", None) or "")) or one_line(exc)


@contextlib.contextmanager
def translate_errors(secrets: Iterable[str], what: str = "MLflow") -> Iterator[None]:
    """Turn MLflow and database errors into :mod:`~backend.services.errors` with redacted messages."""
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import InterfaceError, OperationalError

    secrets = list(secrets)
    try:
        yield
    except ServiceError:
        raise
    except MlflowException as exc:
        code = str(getattr(exc, "error_code", "") or "")
        message = redact(_message(exc), secrets)
        if code in _NOT_FOUND:
            raise NotFoundError(message) from None
        if code in _UNAVAILABLE or "OperationalError" in message:
            logger.warning("%s unavailable: %s", what, message)
            raise UnavailableError(f"{what} store unavailable: {message}") from None
        if code in _BAD_REQUEST:
            raise InvalidRequestError(message) from None
        raise
    except (OperationalError, InterfaceError) as exc:
        message = redact(_message(exc), secrets)
        logger.warning("%s unavailable: %s", what, message)
        raise UnavailableError(f"{what} store unavailable: {message}") from None
