"""Exception handlers: service errors become their HTTP status with ``{"detail": message}``; anything
else is a 500 whose log line (traceback included) has every secret masked."""

from __future__ import annotations

import logging
import traceback

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from backend.services.errors import ServiceError
from backend.services.redaction import redact

__all__ = ["install_error_handlers"]

logger = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI, secrets: list[str]) -> None:
    async def service_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        message = redact(str(exc), secrets)
        if exc.status_code >= 500:
            logger.warning("%s %s -> %d: %s", request.method, request.url.path, exc.status_code, message)
        return JSONResponse({"detail": message}, status_code=exc.status_code)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        logger.error("%s %s -> 500: %s", request.method, request.url.path, redact(text, secrets))
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"}, status_code=500)

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(Exception, unexpected)
