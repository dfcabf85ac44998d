"""Errors the services raise; each front end maps them to its own terms (HTTP status, a message box).

====================  ======  ===================  ===========================================================
error                 HTTP    ``code``             when
====================  ======  ===================  ===========================================================
NotFoundError         404     not_found            unknown model, version, experiment, run, job; no production
InvalidRequestError   400     invalid_request      a request the store refuses: malformed filter, bad page token
InvalidDataError      422     invalid_data         well-formed input whose content is unusable (too few candles)
ConflictError         409     conflict             the state forbids it: cancel a finished job, nothing to roll back
UnavailableError      503     unavailable          a store, the queue or a worker dependency cannot be reached
ServiceError          500     internal_error       the base class (a fault of ours)
====================  ======  ===================  ===========================================================

``code`` is stable (clients may branch on it; the REST API returns it next to the message, see
:mod:`backend.api.errors`). A subclass that sets only ``status_code`` (the write-access errors of
:mod:`backend.services.access`: 401 ``unauthorized``, 403 ``forbidden``) gets that status's code from
:data:`CODES_BY_STATUS`.

Messages are meant for people and never carry a secret (see :mod:`backend.services.redaction`).
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "CODES_BY_STATUS",
    "ConflictError",
    "InvalidDataError",
    "InvalidRequestError",
    "NotFoundError",
    "ServiceError",
    "UnavailableError",
]

#: The code of a subclass that names only its HTTP status.
CODES_BY_STATUS: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "invalid_data",
    500: "internal_error",
    503: "unavailable",
}


class ServiceError(Exception):
    """Base class; ``str(err)`` is a one-line message safe to show, ``code`` a stable snake_case name."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "status_code" in cls.__dict__ and "code" not in cls.__dict__:
            cls.code = CODES_BY_STATUS.get(cls.status_code, "internal_error")


class NotFoundError(ServiceError, LookupError):
    status_code = 404
    code = "not_found"


class InvalidRequestError(ServiceError, ValueError):
    status_code = 400
    code = "invalid_request"


class ConflictError(ServiceError):
    status_code = 409
    code = "conflict"


class UnavailableError(ServiceError):
    status_code = 503
    code = "unavailable"


class InvalidDataError(InvalidRequestError):
    """Well-formed input whose content cannot be used (too few candles, high < low): HTTP 422."""

    status_code = 422
    code = "invalid_data"
