"""Errors as people read them: one line per error, whatever the exception's text looked like.

    one_line(exc)                  # "connection refused Is the server running on host ..."
    one_line(exc, typed=True)      # "OperationalError: connection refused Is the server ..."
    one_line("two\\n  lines")      # "two lines"

Drivers and parsers answer with several lines (a SQL statement, a caret under a column); a job's
error, an API answer, a log line or a dashboard box wants one. Secrets are not this module's job:
pass the line through :func:`backend.services.redaction.redact` (or
:func:`backend.ml_engine.mlflow_integration.stores.mask_uri`) where it leaves the process.
"""

from __future__ import annotations

__all__ = ["one_line"]


def one_line(error: BaseException | str, *, typed: bool = False) -> str:
    """``error``'s message on one line (every run of whitespace, newlines included, is one space).

    An exception without a message reads as its type's name; ``typed=True`` puts the type's name
    first (``"ValueError: no candles"``). A string is only collapsed.
    """
    text = " ".join(str(error).split())
    if isinstance(error, str):
        return text
    name = type(error).__name__
    if not text:
        return name
    return f"{name}: {text}" if typed else text
