"""Errors the services raise; each front end maps them to its own terms (HTTP status, a message box).

====================  ======  ==================================================================
error                 HTTP    when
====================  ======  ==================================================================
NotFoundError         404     unknown model, version, experiment, run, job; no production model
InvalidRequestError   400     a request the store refuses: malformed filter, bad page token
InvalidDataError      422     well-formed input whose content is unusable (too few candles)
ConflictError         409     the state forbids it: cancel a finished job, nothing to roll back
UnavailableError      503     a store, the queue or a worker dependency cannot be reached
====================  ======  ==================================================================

Messages are meant for people and never carry a secret (see :mod:`backend.services.redaction`).
"""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "InvalidDataError",
    "InvalidRequestError",
    "NotFoundError",
    "ServiceError",
    "UnavailableError",
]


class ServiceError(Exception):
    """Base class; ``str(err)`` is a one-line message safe to show."""

    status_code = 500


class NotFoundError(ServiceError, LookupError):
    status_code = 404


class InvalidRequestError(ServiceError, ValueError):
    status_code = 400


class ConflictError(ServiceError):
    status_code = 409


class UnavailableError(ServiceError):
    status_code = 503


class InvalidDataError(InvalidRequestError):
    """Well-formed input whose content cannot be used (too few candles, high < low): HTTP 422."""

    status_code = 422
