"""A cap on request bodies (``ML_API_MAX_BODY_BYTES``): larger ones get 413 ``payload_too_large``.

A pure ASGI middleware, so nothing is buffered here:

* a ``Content-Length`` over the cap is answered at once, before the application (or the body) is
  read;
* a body without a length (chunked, streamed) is counted as the application reads it: the first
  chunk that takes it over the cap raises :class:`PayloadTooLarge` (an ``HTTPException``, which
  FastAPI's body parsing lets through to :mod:`backend.api.errors`), so at most cap + one chunk is
  ever held.

The 413 carries ``Connection: close``: the rest of the body is never read, so the connection
cannot be reused.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response

__all__ = ["BodySizeLimitMiddleware", "PayloadTooLarge"]


class PayloadTooLarge(HTTPException):
    """The request body went over the cap while it was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _detail(limit), headers={"Connection": "close"})


def _detail(limit: int) -> str:
    return f"request body too large: the limit is {limit} bytes (ML_API_MAX_BODY_BYTES)"


class BodySizeLimitMiddleware:
    """``app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.api_max_body_bytes)``."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        if self._declared_length(scope) > limit:
            await self._reject(scope, receive, send)
            return

        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except PayloadTooLarge:
            # read outside the exception handlers (a plain Starlette route, a middleware): answer here
            if response_started:
                raise
            await self._reject(scope, receive, send)

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        """The largest ``Content-Length`` of the request (0 when none or unreadable: then it is counted)."""
        longest = 0
        for name, value in scope.get("headers", ()):
            if name.lower() == b"content-length":
                try:
                    longest = max(longest, int(value))
                except ValueError:
                    continue
        return longest

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, _detail(self.max_body_bytes), "payload_too_large", headers={"Connection": "close"}
        )
        await response(scope, receive, send)
