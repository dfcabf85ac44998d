"""Console logging of the project's processes (REST API, job worker, dashboard): one place.

Uvicorn configures only its own loggers (``uvicorn``, ``uvicorn.error``, ``uvicorn.access``), and
Streamlit only ``streamlit``: the root logger keeps no handler, so Python's last-resort handler
prints WARNING and above and every INFO record of ``backend.*`` (``job ... queued``, the API's
startup line) is dropped. :func:`setup_logging` fixes that at the entry points:

* when nobody configured logging (the root logger has no handler), one stderr handler is added to
  the root logger, with the format ``2026-01-31 12:00:00,000 INFO backend.services.jobs: ...``;
* the project's loggers (``backend``, and any named in ``loggers``) get the level: ``level`` if
  given, else ``ML_LOG_LEVEL`` from the environment, else INFO. Other libraries stay at the root
  logger's level (WARNING), so MLflow's, alembic's or httpx's INFO chatter does not flood the
  console.

Lines are text by default, or one JSON object per line (``fmt="json"``, or ``ML_LOG_FORMAT=json``)
for a log collector: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``process``,
``pid``, and ``exc_info`` (the traceback) when there is one.

If the host process configured logging itself (a root handler that is not ours: ``logging.basicConfig``,
``uvicorn --log-config``, pytest's capture), nothing is changed: its configuration wins. Calling it
again is harmless: it adds no second handler, updates the levels and sets the format of our handler.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

__all__ = [
    "DEFAULT_FORMAT",
    "DEFAULT_LEVEL",
    "FORMATS",
    "JsonFormatter",
    "LOG_FORMAT",
    "parse_format",
    "parse_level",
    "setup_logging",
]

DEFAULT_LEVEL = "INFO"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Values of ``ML_LOG_FORMAT``: text lines (:data:`LOG_FORMAT`) or one JSON object per line.
FORMATS = ("text", "json")
DEFAULT_FORMAT = "text"
_MARK = "_trading_bot_ml_handler"


def parse_level(value: str | int | None) -> int:
    """A logging level from ``"info"``, ``"DEBUG"``, ``"20"`` or 20; ``ValueError`` if unknown."""
    if value is None or (isinstance(value, str) and not value.strip()):
        value = DEFAULT_LEVEL
    if isinstance(value, int):
        return value
    text = value.strip().upper()
    if text.isdigit():
        return int(text)
    level = logging.getLevelNamesMapping().get(text)
    if level is None:
        raise ValueError(f"unknown log level {value!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def parse_format(value: str | None) -> str:
    """``"text"`` or ``"json"`` (any case; empty: text); ``ValueError`` otherwise."""
    if value is None or not value.strip():
        return DEFAULT_FORMAT
    text = value.strip().lower()
    if text not in FORMATS:
        raise ValueError(f"unknown log format {value!r}: use text or json")
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages and tracebacks are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.processName,
            "pid": record.process,
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(LOG_FORMAT)


def setup_logging(
    level: str | int | None = None, loggers: Iterable[str] = ("backend",), fmt: str | None = None
) -> bool:
    """Send the project's log records to stderr at ``level`` (default ``ML_LOG_LEVEL`` or INFO), as
    ``fmt`` lines: ``"text"`` or ``"json"`` (default ``ML_LOG_FORMAT`` or text).

    Returns False (and changes nothing) when the process already configured logging itself.
    """
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, _MARK, False)]
    if root.handlers and not ours:
        return False
    if level is not None:
        resolved = parse_level(level)
    else:
        try:
            resolved = parse_level(os.environ.get("ML_LOG_LEVEL"))
        except ValueError:  # Settings() reports it, naming the variable; log meanwhile at INFO
            resolved = parse_level(DEFAULT_LEVEL)
    if fmt is not None:
        style = parse_format(fmt)
    else:
        try:
            style = parse_format(os.environ.get("ML_LOG_FORMAT"))
        except ValueError:  # Settings() reports it, naming the variable; text meanwhile
            style = DEFAULT_FORMAT
    if not ours:
        handler = logging.StreamHandler(sys.stderr)
        setattr(handler, _MARK, True)
        root.addHandler(handler)
        ours = [handler]
    for ours_handler in ours:
        ours_handler.setFormatter(_formatter(style))
    for name in ("backend", *loggers):
        logging.getLogger(name).setLevel(resolved)
    return True
