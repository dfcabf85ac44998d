"""The dashboard's entry point: ``streamlit run backend/dashboard/app.py`` (``make dashboard``, port 8501).

Russian by default, English on a switch in the sidebar; every visible string comes from
:mod:`backend.dashboard.i18n`. Each page is a script under ``views/`` that reads and acts only
through the service layer (:mod:`backend.services`), the same functions the REST API calls.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run backend/dashboard/app.py` puts this folder on sys.path, not the repository root.
_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import logging  # noqa: E402

import streamlit as st  # noqa: E402

from backend.dashboard import context, i18n, widgets  # noqa: E402
from backend.ml_engine.errors import one_line  # noqa: E402
from backend.services.redaction import redact  # noqa: E402

logger = logging.getLogger("backend.dashboard")

HERE = Path(__file__).resolve().parent
#: (page, title key, Material icon, URL path); the first is the default page, served at ``/``.
NAVIGATION: tuple[tuple[str, str, str, str], ...] = (
    ("overview", "nav.overview", ":material/home:", "overview"),
    ("runs", "nav.runs", ":material/science:", "runs"),
    ("compare", "nav.compare", ":material/compare_arrows:", "compare"),
    ("leaderboard", "nav.leaderboard", ":material/leaderboard:", "leaderboard"),
    ("tuning", "nav.tuning", ":material/tune:", "tuning"),
    ("models", "nav.models", ":material/inventory_2:", "models"),
    ("training", "nav.training", ":material/model_training:", "training"),
    ("retraining", "nav.retraining", ":material/autorenew:", "retraining"),
    ("monitoring", "nav.monitoring", ":material/monitor_heart:", "monitoring"),
    ("glossary", "nav.glossary", ":material/menu_book:", "help"),
)


def main() -> None:
    i18n.ensure_language()
    st.set_page_config(page_title=i18n.t("app.title"), page_icon=":material/monitoring:", layout="wide")
    widgets.inject_css()
    pages = [
        st.Page(HERE / widgets.PAGE_PATHS[name], title=i18n.t(title), icon=icon, url_path=url, default=i == 0)
        for i, (name, title, icon, url) in enumerate(NAVIGATION)
    ]
    page = st.navigation(pages)
    with st.sidebar:
        st.radio(
            i18n.t("lang.label"),
            i18n.LANGUAGES,
            key=i18n.LANG_KEY,
            format_func=lambda code: i18n.t(f"lang.{code}"),
            horizontal=True,
        )
        st.caption(i18n.t("app.caption"))
    try:
        secrets = context.settings().secrets()
    except Exception as exc:  # bad ML_* / MLFLOW_* settings: say so instead of a traceback
        logger.exception("dashboard: settings not usable")
        st.error(i18n.t("app.settings_error"))
        widgets.recorded(one_line(exc, typed=True)[:2000])
        st.stop()
    try:
        page.run()
    except Exception as exc:  # a store error no service translated: a message, not a traceback
        logger.exception("dashboard: page %s failed", page.url_path)
        st.error(i18n.t("error.unexpected"))
        widgets.recorded(redact(one_line(exc, typed=True), secrets)[:2000])


main()
