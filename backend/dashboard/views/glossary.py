"""Справка: the guide's MLflow glossary in the page's language and where each term lives here; what
each metric means (the same texts as the metric tooltips); the guide's metric and param names and the
project's names they repeat; the guide's filter examples run on this store, each with a variant that
finds runs here when the guide's own thresholds find none."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import streamlit as st

from backend.dashboard import context
from backend.dashboard.i18n import t
from backend.dashboard.metric_help import GLOSSARY_METRICS, metric_row
from backend.dashboard.views.runs import FILTER_EXAMPLES
from backend.dashboard.widgets import show_error
from backend.services.errors import ServiceError
from backend.services.runs import FilterExample

#: Glossary entries: our key and the name the MLflow UI and API use for it.
TERMS: tuple[tuple[str, str], ...] = (
    ("experiment", "Experiment"),
    ("run", "Run"),
    ("artifact", "Artifact"),
    ("metric", "Metric"),
    ("parameter", "Parameter"),
    ("tag", "Tag"),
    ("registry", "Model Registry"),
    ("version", "Model Version"),
    ("alias", "Model Alias"),
    ("stage", "Model Stage"),
    ("drift", "Data drift"),
)
#: The guide's names that differ from the project's: each training run logs both, same value
#: (``training._outcome.GUIDE_METRIC_ALIASES``, ``training._pipeline``: ``model_hidden_size``).
GUIDE_NAMES: tuple[tuple[str, str], ...] = (
    ("metrics.accuracy", "metrics.test_accuracy"),
    ("metrics.test_f1", "metrics.test_f1_macro"),
    ("params.model_hidden_size", "params.model_lstm_hidden"),
)
#: Every filter the guide writes: its ``search_runs`` example, then its "Фильтры поиска MLflow" block.
GUIDE_FILTERS: tuple[str, ...] = ("metrics.val_accuracy > 0.7", *FILTER_EXAMPLES)
#: Runs counted per example (more shows as "25+").
EXAMPLE_LIMIT = 25
#: Seconds the examples' results are kept in the session (they cost one search each).
EXAMPLES_TTL_S = 30.0
_STATE = "glossary."


def render() -> None:
    st.title(t("glossary.title"))
    st.markdown(t("glossary.intro"))
    st.header(t("glossary.terms"))
    st.caption(t("glossary.mlflow_note"))
    st.table(
        pd.DataFrame(
            [
                {
                    t("glossary.col.term"): t(f"glossary.{key}.term"),
                    t("glossary.col.mlflow"): mlflow_name,
                    t("glossary.col.desc"): t(f"glossary.{key}.desc").replace("`", ""),
                    t("glossary.col.where"): t(f"glossary.{key}.where"),
                }
                for key, mlflow_name in TERMS
            ]
        ).set_index(t("glossary.col.term"))
    )
    _metrics()
    _guide_names()
    st.header(t("glossary.filters"))
    # the syntax, without its closing "the guide's examples:": the examples' own section follows
    st.markdown(t("runs.filter_guide_text").rsplit("\n\n", 1)[0])
    _examples()
    st.markdown(t("runs.filter_guide_more"))
    st.header(t("glossary.faq"))
    for i in range(1, 5):
        with st.expander(t(f"glossary.faq{i}.q")):
            st.markdown(t(f"glossary.faq{i}.a"))


def _metrics() -> None:
    st.header(t("glossary.metrics"))
    st.markdown(t("glossary.metrics_intro"))
    rows = [metric_row(key) for key in GLOSSARY_METRICS]
    # A table, not a data grid: the explanations are sentences, wrapped in full.
    st.table(
        pd.DataFrame(
            [
                {
                    t("glossary.col.metric"): r["key"],
                    t("glossary.col.what"): r["what"].replace("`", ""),
                    t("glossary.col.split"): r["split"].replace("`", ""),
                    t("glossary.col.good"): r["good"].replace("`", ""),
                }
                for r in rows
            ]
        ).set_index(t("glossary.col.metric"))
    )


def _guide_names() -> None:
    st.header(t("glossary.names"))
    st.markdown(t("glossary.names_intro"))
    st.table(
        pd.DataFrame(
            [{t("glossary.col.guide_name"): guide, t("glossary.col.project_name"): ours} for guide, ours in GUIDE_NAMES]
        ).set_index(t("glossary.col.guide_name"))
    )


def guide_examples(services: Any = None) -> list[FilterExample]:
    """The guide's filters run on the store (:meth:`RunService.filter_examples`), kept in the session for
    :data:`EXAMPLES_TTL_S` seconds."""
    svc = services if services is not None else context.services()
    cached = st.session_state.get(_STATE + "examples")
    if cached is not None and time.monotonic() - cached[0] < EXAMPLES_TTL_S:
        return list(cached[1])
    examples: list[FilterExample] = svc.runs.filter_examples(GUIDE_FILTERS, limit=EXAMPLE_LIMIT)
    st.session_state[_STATE + "examples"] = (time.monotonic(), examples)
    return examples


def _count(n: int) -> str:
    return f"{n}+" if n >= EXAMPLE_LIMIT else str(n)


def _examples() -> None:
    """The guide's examples as a table: as written, what each finds here, a working variant."""
    st.subheader(t("glossary.guide_examples"))
    try:
        examples = guide_examples()
    except ServiceError as exc:
        show_error(exc)
        st.code("\n".join(GUIDE_FILTERS), language="sql")
        return
    if not any(e.working for e in examples):
        st.info(t("glossary.examples_empty"))
        st.code("\n".join(GUIDE_FILTERS), language="sql")
        return
    st.markdown(t("glossary.guide_examples_intro"))
    st.table(
        pd.DataFrame(
            [
                {
                    t("glossary.col.as_written"): e.guide,
                    t("glossary.col.found"): _count(e.found),
                    t("glossary.col.variant"): (
                        t("glossary.same_as_guide") if e.found else (e.variant or t("glossary.no_variant"))
                    ),
                    t("glossary.col.variant_found"): _count(e.found or e.variant_found),
                    t("glossary.col.experiments"): ", ".join(e.experiments) or "—",
                }
                for e in examples
            ]
        ).set_index(t("glossary.col.as_written"))
    )
    st.markdown(t("glossary.working_filters"))
    st.code("\n".join(e.working for e in examples if e.working), language="sql")


if __name__ == "__main__":
    render()
