"""Exception handlers: every error is one JSON shape, :class:`~backend.api.schemas.ErrorResponse`::

    {"detail": "<one line for people>", "code": "<stable snake_case code>"}
    {"detail": "2 invalid fields: body.candles.0.high: ...", "code": "validation_error", "errors": [...]}

==========================  ======  ==================  ================================================
raised                      HTTP    ``code``            ``detail``
==========================  ======  ==================  ================================================
RequestValidationError      422     validation_error    counts the invalid fields, names the first;
                                                        ``errors``: up to 20 of ``{loc, msg, type}``
ServiceError subclasses     status  the class's code    the message, secrets masked (see
                                                        :mod:`backend.services.errors`)
HTTPException (any)         status  by status below     its text (unknown route: "Not Found")
any other exception         500     internal_error      the exception's class; traceback in the log
==========================  ======  ==================  ================================================

Codes by status: 400 invalid_request, 401 unauthorized, 403 forbidden, 404 not_found, 405
method_not_allowed, 409 conflict, 413 payload_too_large (also :mod:`backend.api.limits`), 422
validation_error, 500 internal_error, 503 unavailable; any other status its reason phrase in
snake_case.

No error repeats the request's values: a validation error keeps only each error's ``loc``, ``msg``
and ``type`` (pydantic's ``input``, ``ctx`` and ``url`` are dropped), a ``msg`` that quotes the value
has it replaced by ``<input>``, and every text is clipped (a hostile 1 MB field or key cannot come
back as a 1 MB answer). A ``loc`` names where the error is: the schema's field names and list indexes,
or, for an unknown key sent (``extra_forbidden``), that key cut to 64 characters.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.services.errors import ServiceError
from backend.services.redaction import redact

from .schemas import MAX_LISTED_ERRORS

__all__ = ["HTTP_ERROR_CODES", "code_for_status", "error_response", "install_error_handlers"]

logger = logging.getLogger(__name__)

#: The code of an HTTPException (FastAPI's, Starlette's routing errors) by its status.
HTTP_ERROR_CODES: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_error",
    500: "internal_error",
    503: "unavailable",
}

MAX_DETAIL_CHARS = 2000
MAX_MSG_CHARS = 200
MAX_LOC_PART_CHARS = 64
MAX_LOC_PARTS = 12
#: An input at least this long is cut out of a ``msg`` that quotes it (shorter ones are harmless words).
_MIN_SCRUBBED_INPUT = 8


def code_for_status(status: int) -> str:
    """The stable code of an HTTP error status (its reason phrase in snake_case when not in the table)."""
    if status in HTTP_ERROR_CODES:
        return HTTP_ERROR_CODES[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "internal_error" if status >= 500 else "invalid_request"
    return re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_response(
    status: int,
    detail: str,
    code: str | None = None,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The one error shape: ``{"detail", "code"}``, plus ``errors`` for a validation error."""
    content: dict[str, Any] = {"detail": clip(detail, MAX_DETAIL_CHARS), "code": code or code_for_status(status)}
    if errors is not None:
        content["errors"] = errors
    return JSONResponse(content, status_code=status, headers=dict(headers) if headers else None)


def _loc(loc: Sequence[Any]) -> list[str | int]:
    parts: list[str | int] = [p if isinstance(p, int) else clip(str(p), MAX_LOC_PART_CHARS) for p in loc]
    return parts if len(parts) <= MAX_LOC_PARTS else [*parts[: MAX_LOC_PARTS - 1], "…"]


def _msg(error: Mapping[str, Any]) -> str:
    msg = str(error.get("msg", ""))
    value = error.get("input")
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str) and len(value) >= _MIN_SCRUBBED_INPUT:
        msg = msg.replace(value, "<input>")
        if len(value) > MAX_MSG_CHARS:  # a long value may be quoted cut or escaped: drop any long run of it
            msg = msg.replace(value[:MAX_MSG_CHARS], "<input>")
    return clip(msg, MAX_MSG_CHARS)


def validation_items(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The first :data:`MAX_LISTED_ERRORS` errors as ``{loc, msg, type}``: nothing of the input."""
    return [
        {"loc": _loc(e.get("loc", ())), "msg": _msg(e), "type": clip(str(e.get("type", "")), MAX_LOC_PART_CHARS)}
        for e in errors[:MAX_LISTED_ERRORS]
    ]


def _where(loc: Sequence[str | int]) -> str:
    return ".".join(str(p) for p in loc) or "request"


def install_error_handlers(app: FastAPI, secrets: list[str]) -> None:
    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        items = validation_items(errors)
        if items:
            first = items[0]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            noun = "invalid field" if len(errors) == 1 else "invalid fields"
            detail = f"{len(errors)} {noun}: {_where(first['loc'])}: {first['msg']}{more}"
        else:  # pragma: no cover - FastAPI raises it with at least one error
            detail = "invalid request"
        return error_response(422, detail, "validation_error", errors=items)

    async def service_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        message = redact(str(exc), secrets)
        if exc.status_code >= 500:
            logger.warning("%s %s -> %d: %s", request.method, request.url.path, exc.status_code, message)
        return error_response(exc.status_code, message, exc.code)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code in (204, 304):  # no body allowed (as Starlette's own handler)
            return Response(status_code=exc.status_code, headers=exc.headers)
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail else _phrase(exc.status_code)
        return error_response(exc.status_code, redact(detail, secrets), headers=exc.headers)

    async def unexpected(request: Request, exc: Exception) -> Response:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        logger.error("%s %s -> 500: %s", request.method, request.url.path, redact(text, secrets))
        return error_response(500, f"internal error ({type(exc).__name__}); see the server log", "internal_error")

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
