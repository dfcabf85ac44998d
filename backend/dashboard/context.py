"""Where the dashboard gets its services: the same :class:`~backend.services.Services` the REST API
builds, from :class:`~backend.services.ServiceSettings` (environment and ``.env``), once per process.

Tests and benchmarks inject their own before the first run, so no environment juggling is needed::

    at = AppTest.from_file("backend/dashboard/app.py")
    at.session_state[SERVICES_KEY] = Services.from_settings(settings)
    at.run()
"""

from __future__ import annotations

import logging

import streamlit as st

from backend.services import Services, ServiceSettings
from backend.services.overview import OverviewService

__all__ = ["SERVICES_KEY", "overview", "services", "settings", "warm_up"]

logger = logging.getLogger(__name__)

#: Session-state key of injected services (tests, benchmarks); absent: built from the environment.
SERVICES_KEY = "dashboard_services"


@st.cache_resource(show_spinner=False)
def _services_from_environment() -> Services:
    """One :class:`Services` per dashboard process, shared by every browser session."""
    settings = ServiceSettings()
    logger.info(
        "dashboard: tracking store %s, %s",
        settings.mlflow_tracking_uri.split("://", 1)[0],
        "read-only (no ML_API_TOKEN)" if settings.read_only else "token required for changes",
    )
    return Services.from_settings(settings)


def warm_up() -> None:
    """Import MLflow's client and SQL store modules once, before the first browser session (about 2 s
    that the first Обзор after a server start would otherwise pay). Run in a background thread by
    ``python -m backend.dashboard``. It does not open the store: on a fresh SQLite or PostgreSQL store
    that would run MLflow's schema migrations at the same moment as the API, the worker and the
    scheduler started beside it (`make up`), and two migrations at once fail."""
    from backend.services._mlflow import preload_mlflow

    try:
        preload_mlflow()
    except Exception as exc:  # noqa: BLE001 - only a head start: the pages import what they need anyway
        logger.info("dashboard: warm-up skipped: %s", type(exc).__name__)


def services() -> Services:
    """The services of this session: injected ones, else the process-wide ones from the environment."""
    injected = st.session_state.get(SERVICES_KEY)
    if injected is not None:
        return injected
    return _services_from_environment()


def settings() -> ServiceSettings:
    return services().settings


def overview() -> OverviewService:
    """Summaries over the same services (cheap: it holds no connection of its own)."""
    s = services()
    return OverviewService(s.models, s.runs, s.jobs)
