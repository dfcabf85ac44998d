"""Справка: the guide's MLflow glossary in the page's language, and where each term lives here."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backend.dashboard.i18n import t

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
    st.header(t("glossary.filters"))
    st.markdown(t("runs.filter_guide_text"))
    st.markdown(t("runs.filter_guide_more"))
    st.header(t("glossary.faq"))
    for i in range(1, 5):
        with st.expander(t(f"glossary.faq{i}.q")):
            st.markdown(t(f"glossary.faq{i}.a"))


if __name__ == "__main__":
    render()
