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

If the host process configured logging itself (a root handler that is not ours: ``logging.basicConfig``,
``uvicorn --log-config``, pytest's capture), nothing is changed: its configuration wins. Calling it
again is harmless: it adds no second handler and only updates the levels.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable

__all__ = ["DEFAULT_LEVEL", "LOG_FORMAT", "parse_level", "setup_logging"]

DEFAULT_LEVEL = "INFO"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
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


def setup_logging(level: str | int | None = None, loggers: Iterable[str] = ("backend",)) -> bool:
    """Send the project's log records to stderr at ``level`` (default ``ML_LOG_LEVEL`` or INFO).

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
    if not ours:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    for name in ("backend", *loggers):
        logging.getLogger(name).setLevel(resolved)
    return True
