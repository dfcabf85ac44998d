"""Settings of the services (REST API, job worker): the engine's :class:`Settings` plus the fields
the services need. Built once at the entry point (``ServiceSettings()``), passed inward.

Every field reads an ``ML_``-prefixed environment variable (or ``.env``):

=================================  ==============================================================
variable                           meaning
=================================  ==============================================================
``ML_API_TOKEN``                   token for state-changing routes; unset: the API is read-only
``ML_CORS_ORIGINS``                comma-separated (or JSON list) browser origins allowed by CORS
``ML_API_MAX_BODY_BYTES``          larger request bodies get 413 before parsing (default 8 MiB)
``ML_JOBS_DATABASE_URL``           SQLAlchemy URL of the job records (default SQLite in ./mlruns)
``ML_QUEUE_URL``                   the job queue: redis://..., postgresql://... or a SQLite file
``ML_REDIS_URL``                   Redis URL of the job queue when ML_QUEUE_URL is unset
``ML_HUEY_SQLITE_PATH``            the queue's SQLite file when neither is set (one machine)
``ML_HUEY_NAME``                   queue name (Redis key prefix), default trading_bot_ml
``ML_WORKER_SLOTS``                jobs one worker process runs at once (default: cores / 2)
``ML_MAX_CONCURRENT_TRAININGS``    optional cluster cap: trainings running at once over all workers
``ML_JOB_HEARTBEAT_INTERVAL_S``    how often a running job writes its heartbeat
``ML_JOB_HEARTBEAT_TIMEOUT_S``     a running job silent this long is failed ("worker died")
``ML_JOB_RETRY_DELAY_S``           with the cluster cap reached, a worker asks again after this
``ML_COALESCE_RUN_SEARCHES``       identical run searches in flight at once share one query
``ML_MLFLOW_UI_URL``               the MLflow UI the dashboard links runs and models to
=================================  ==============================================================
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from backend.ml_engine.config import Settings

__all__ = ["ServiceSettings", "available_cores"]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask on Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class ServiceSettings(Settings):
    """:class:`Settings` plus API security, job store, job queue and worker limits."""

    # A rejected value is never echoed in the error: it may be a token or a database password.
    model_config = SettingsConfigDict(**{**Settings.model_config, "hide_input_in_errors": True})

    api_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ML_API_TOKEN", "api_token"),
        description="Bearer token for routes that change state; unset or empty: the API is read-only",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("ML_CORS_ORIGINS", "cors_origins"),
        description="Browser origins allowed by CORS, e.g. http://localhost:8501 (the dashboard); empty: none",
    )
    api_max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        validation_alias=AliasChoices("ML_API_MAX_BODY_BYTES", "api_max_body_bytes"),
        description="Request bodies larger than this get 413 before they are parsed (/predict of 20000 candles: ~3 MB)",
    )
    # jobs_database_url (ML_JOBS_DATABASE_URL) is an engine setting: the locks live there too.
    queue_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ML_QUEUE_URL", "queue_url"),
        description="The job queue: redis://host:6379/0, postgresql://user:pass@host/db (PostgreSQL alone) or a "
        "SQLite file path; unset: ML_REDIS_URL if set, else the SQLite file huey_sqlite_path (one machine)",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ML_REDIS_URL", "redis_url"),
        description="redis://host:6379/0 for the job queue (RedisHuey); unset: SqliteHuey in huey_sqlite_path",
    )
    huey_sqlite_path: str = Field(
        default="./mlruns/huey.db",
        validation_alias=AliasChoices("ML_HUEY_SQLITE_PATH", "huey_sqlite_path"),
    )
    huey_name: str = Field(
        default="trading_bot_ml",
        min_length=1,
        validation_alias=AliasChoices("ML_HUEY_NAME", "huey_name"),
        description="Queue name (Redis key prefix / SQLite queue name)",
    )
    worker_slots: int | None = Field(
        default=None,
        ge=1,
        le=256,
        validation_alias=AliasChoices("ML_WORKER_SLOTS", "worker_slots"),
        description="Jobs one worker process runs at once, each in its own process with cores / slots "
        "threads; unset: half the cores (at least 1)",
    )
    max_concurrent_trainings: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        validation_alias=AliasChoices("ML_MAX_CONCURRENT_TRAININGS", "max_concurrent_trainings"),
        description="Optional cluster cap: training jobs running at once over all workers; unset: only the slots",
    )
    job_heartbeat_interval_s: float = Field(
        default=5.0,
        gt=0,
        validation_alias=AliasChoices("ML_JOB_HEARTBEAT_INTERVAL_S", "job_heartbeat_interval_s"),
    )
    job_heartbeat_timeout_s: float = Field(
        default=60.0,
        gt=0,
        validation_alias=AliasChoices("ML_JOB_HEARTBEAT_TIMEOUT_S", "job_heartbeat_timeout_s"),
    )
    job_retry_delay_s: float = Field(
        default=5.0,
        gt=0,
        validation_alias=AliasChoices("ML_JOB_RETRY_DELAY_S", "job_retry_delay_s"),
        description="With the cluster cap reached, a worker asks for the next job again after this many seconds",
    )

    coalesce_run_searches: bool = Field(
        default=True,
        validation_alias=AliasChoices("ML_COALESCE_RUN_SEARCHES", "coalesce_run_searches"),
        description="Identical run searches in flight at once share one query (no caching beyond that)",
    )
    mlflow_ui_url: str = Field(
        default="http://127.0.0.1:5000",
        validation_alias=AliasChoices("ML_MLFLOW_UI_URL", "mlflow_ui_url"),
        description="Address of the MLflow UI (python start_mlflow_ui.py, or the tracking server) the dashboard "
        "links runs and registered models to",
    )

    @field_validator("mlflow_ui_url", mode="before")
    @classmethod
    def _ui_url_default(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return "http://127.0.0.1:5000"
        return value

    @field_validator("mlflow_ui_url")
    @classmethod
    def _ui_url_is_http(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"ML_MLFLOW_UI_URL {value!r} must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [o.strip() for o in text.split(",") if o.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"CORS origin {origin!r} must start with http:// or https://")
        return [o.rstrip("/") for o in value]

    @field_validator("api_token", "redis_url", "queue_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("api_token")
    @classmethod
    def _token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("ML_API_TOKEN must be at least 16 characters (e.g. `openssl rand -hex 32`)")
        return value

    @model_validator(mode="after")
    def _timeouts_consistent(self) -> ServiceSettings:
        if self.job_heartbeat_timeout_s <= 2 * self.job_heartbeat_interval_s:
            raise ValueError(
                "job_heartbeat_timeout_s must be more than twice job_heartbeat_interval_s "
                f"(got {self.job_heartbeat_timeout_s:g} and {self.job_heartbeat_interval_s:g})"
            )
        return self

    @property
    def slots(self) -> int:
        """Jobs this worker process runs at once: ``ML_WORKER_SLOTS``, else half the cores."""
        return self.worker_slots if self.worker_slots is not None else max(1, available_cores() // 2)

    @property
    def threads_per_job(self) -> int:
        """CPU threads each job may use: cores / slots (at least 1)."""
        return max(1, available_cores() // self.slots)

    @property
    def read_only(self) -> bool:
        """True when no API token is configured: state-changing routes answer 403."""
        return self.api_token is None or not self.api_token.get_secret_value()

    def secrets(self) -> list[str]:
        """Every configured secret value (token, database URLs): what :func:`redact` scrubs."""
        out: list[str] = []
        for value in (
            self.api_token,
            self.queue_url,
            self.redis_url,
            self.jobs_database_url,
            self.candles_database_url,
        ):
            if value is not None and value.get_secret_value():
                out.append(value.get_secret_value())
        out.append(self.mlflow_tracking_uri)
        return out
