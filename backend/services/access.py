"""Write access: the one rule for state-changing actions, shared by every front end.

The REST API and the dashboard answer the same question the same way::

    check_write_access(settings, supplied_token)   # None, or raises

* no ``ML_API_TOKEN`` configured: everything is read-only (:class:`ReadOnlyError`, HTTP 403);
* a token configured: the caller must supply exactly it (:class:`InvalidTokenError`, HTTP 401),
  compared in constant time.
"""

from __future__ import annotations

import hmac
import logging

from .errors import ServiceError
from .settings import ServiceSettings

__all__ = ["InvalidTokenError", "ReadOnlyError", "WriteAccessError", "check_write_access"]

logger = logging.getLogger(__name__)


class WriteAccessError(ServiceError):
    """A state-changing action was refused; ``str(err)`` says why (never the token)."""

    status_code = 401


class ReadOnlyError(WriteAccessError):
    """No token is configured: nothing may be changed."""

    status_code = 403


class InvalidTokenError(WriteAccessError):
    """A token is configured and the one supplied is missing or wrong."""

    status_code = 401


def check_write_access(settings: ServiceSettings, supplied: str | None, *, action: str = "change") -> None:
    """Allow a state-changing ``action`` only with the configured token (see the module docstring)."""
    if settings.read_only or settings.api_token is None:
        raise ReadOnlyError("read-only: no ML_API_TOKEN is configured")
    expected = settings.api_token.get_secret_value()
    if not supplied or not hmac.compare_digest(supplied.encode(), expected.encode()):
        logger.warning("refused %s: %s API token", action, "missing" if not supplied else "wrong")
        raise InvalidTokenError("missing or invalid API token")
