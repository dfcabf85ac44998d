"""The Russian dashboard over the ML engine (Streamlit): ``make dashboard`` → http://localhost:8501.

=================  ===========================================================================
module             role
=================  ===========================================================================
``app``            entry point: language switch, navigation (``streamlit run .../app.py``)
``__main__``       ``python -m backend.dashboard --port 8501``: the same, with the project's flags
``i18n``           the one translation table (Russian default, English) and ``t()``
``context``        the services: injected (tests) or built once from ``ServiceSettings()``
``widgets``        formatting, errors as messages, the write-access gate, the live job view
``charts``         Plotly figures (pure: data and translated labels in, figure out)
``views/*``        one script per page: overview, runs, compare, models, training,
                   retraining, leaderboard (Сравнение моделей), glossary
=================  ===========================================================================

The dashboard reads and acts only through :mod:`backend.services` (the REST API's functions); it
never opens a store of its own.
"""

import os

# MLflow draws a tqdm "Downloading artifacts" bar on the server's console for every artifact a page
# reads (a drift report, a model's metadata): noise in the dashboard's log on every render. An explicit
# MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR in the environment still wins (MLflow 3 reads it per download).
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
