"""Data sources: the names a client may ask for, and what each means on this machine.

A client never sends a file path or a database URL (the server would read whatever it names); it
names a source, and the process that reads the candles resolves the name from its own settings::

    resolve_data_source("sample", settings)     # ".../backend/ml_engine/sample_data"
    resolve_data_source("default", settings)    # None: the engine's ML_DATA_PATH
    resolve_data_source("database", settings)   # ML_CANDLES_DATABASE_URL, or InvalidRequestError

The API checks the name when a job is submitted (a 400 at once, not a failed job later); the
worker resolves it again when it runs the job, so a database URL never travels through the queue
or the jobs table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from .errors import InvalidRequestError

if TYPE_CHECKING:  # pragma: no cover
    from backend.ml_engine.config import Settings

__all__ = ["DATA_SOURCES", "DATABASE_NOT_CONFIGURED", "DataSource", "resolve_data_source"]

DataSource = Literal["default", "sample", "database"]
DATA_SOURCES: tuple[str, ...] = ("default", "sample", "database")

#: The one answer when ``database`` is asked for and no candles database is configured.
DATABASE_NOT_CONFIGURED = "data_source 'database' needs ML_CANDLES_DATABASE_URL to be configured"


def resolve_data_source(data_source: str, settings: Settings) -> str | None:
    """The candles ``data_source`` names: a folder, a database URL (a secret: keep it in this process),
    or None for the engine's default (``ML_DATA_PATH``).

    :class:`InvalidRequestError` when ``database`` is asked for and none is configured, or the name
    is unknown.
    """
    if data_source == "default":
        return None
    if data_source == "sample":
        from backend.ml_engine.config import SAMPLE_DATA_DIR

        return str(SAMPLE_DATA_DIR)
    if data_source == "database":
        if settings.candles_database_url is None:
            raise InvalidRequestError(DATABASE_NOT_CONFIGURED)
        return settings.candles_database_url.get_secret_value()
    raise InvalidRequestError(f"data_source must be one of {', '.join(DATA_SOURCES)}, not {data_source!r}")
