"""Модели: registered models and their versions (tags, description, input/output schema, aliases,
promotion history); promote and roll back, confirmed, with the API token where one is configured."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from backend.dashboard import context
from backend.dashboard.i18n import current_language, has_text, pick_language, t
from backend.dashboard.widgets import (
    ACTOR,
    PAGE_PATHS,
    check_token,
    fmt_num,
    fmt_sharpe,
    fmt_time,
    recorded,
    run_action,
    sharpe_value,
    show_error,
    term,
    token_input,
    write_allowed,
)
from backend.services.errors import ServiceError
from backend.services.schemas import (
    ModelPublic,
    ModelVersionDetail,
    PromotionDecisionPublic,
)

KEY_METRICS: tuple[str, ...] = ("test_accuracy", "test_f1_macro", "backtest_sharpe")
_STATE = "models."
RESULT_KEY = _STATE + "result"
TOKEN_KEY = _STATE + "token"


def render() -> None:
    st.title(t("models.title"))
    st.caption(term("registry"))
    _show_result()
    services = context.services()
    try:
        models = services.models.list_models().data
    except ServiceError as exc:
        show_error(exc)
        return
    if not models:
        st.info(t("models.none"))
        return
    names = [m.name for m in models]
    wanted = st.query_params.get("model")
    name = st.selectbox(
        t("models.model"), names, index=names.index(wanted) if wanted in names else 0, help=term("registry")
    )
    if name != wanted:
        st.query_params["model"] = name
    model = next(m for m in models if m.name == name)

    _model_header(model)
    st.header(t("models.versions"), help=term("version"))
    _versions_table(model)
    version = _version_picker(model)
    if version is not None:
        _version_detail(name, version)

    st.header(t("models.history"))
    try:
        history = services.models.history(name, limit=200).data
    except ServiceError as exc:
        show_error(exc)
        history = []
    if history:
        lang = current_language()
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        t("col.time"): fmt_time(e.timestamp),
                        t("col.decision"): t(f"decision.{e.decision}"),
                        t("col.version"): e.version if e.version is not None else "—",
                        t("col.from_to"): f"{e.from_version or '—'} → {e.to_version or '—'}",
                        t("col.actor"): e.actor or "—",
                        t("col.forced"): t("common.yes") if e.forced else t("common.no"),
                        t("col.reason"): e.reason_text(lang) or "—",
                        t("col.detail"): e.detail_text(lang) or "—",
                    }
                    for e in history
                ]
            ),
            hide_index=True,
        )
    else:
        st.info(t("models.no_history"))

    st.header(t("models.actions"))
    _actions(model)


def _show_result() -> None:
    outcome = st.session_state.pop(RESULT_KEY, None)
    if outcome is None:
        return
    status, payload = outcome
    if status == "error":
        show_error(payload)
        return
    kind, decision = payload
    assert isinstance(decision, PromotionDecisionPublic)
    if kind == "rollback":
        st.success(t("models.rolled_back", frm=decision.from_version, to=decision.to_version))
    elif decision.promoted:
        st.success(t("models.promoted", frm=decision.from_version or "—", to=decision.to_version))
    else:
        st.warning(t("models.refused"))
        recorded(decision.reason_text(current_language()))


def _model_header(model: ModelPublic) -> None:
    c1, c2, c3 = st.columns(3)
    c1.metric(
        t("models.production"), f"v{model.production_version}" if model.production_version else "—", help=term("alias")
    )
    c2.metric(t("models.latest"), f"v{model.latest_version}" if model.latest_version else "—", help=term("version"))
    c3.metric(t("models.count"), len(model.versions))
    if model.description:
        recorded(pick_language(model.description))
    st.markdown(
        t("models.aliases_line", aliases=", ".join(f"`{a}` → v{v}" for a, v in sorted(model.aliases.items())) or "—"),
        help=term("alias"),
    )
    if model.tags:
        st.dataframe(
            pd.DataFrame([{t("col.tag"): k, t("col.value"): v} for k, v in sorted(model.tags.items())]), hide_index=True
        )
    else:
        st.caption(t("models.no_tags"))


def _versions_table(model: ModelPublic) -> None:
    rows: list[dict[str, Any]] = []
    for v in model.versions:
        row: dict[str, Any] = {
            t("col.version"): v.version,
            t("col.aliases"): ", ".join(v.aliases) or "—",
            t("col.status"): t(f"version.status.{v.status}")
            if has_text(f"version.status.{v.status}")
            else (v.status or "—"),
            t("col.created"): fmt_time(v.created_at),
        }
        row.update({k: v.metrics.get(k) for k in KEY_METRICS})
        row["backtest_sharpe"] = fmt_sharpe(v.metrics)
        row[t("col.run_id")] = v.run_id or "—"
        row[t("col.description")] = v.description or "—"
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def _version_picker(model: ModelPublic) -> int | None:
    versions = [v.version for v in model.versions]
    if not versions:
        st.info(t("models.no_versions"))
        return None
    wanted = st.query_params.get("version")
    preferred = int(wanted) if wanted and wanted.isdigit() and int(wanted) in versions else model.production_version
    index = versions.index(preferred) if preferred in versions else 0
    return st.selectbox(t("models.version"), versions, index=index, format_func=lambda n: f"v{n}", help=term("version"))


def _version_detail(name: str, version: int) -> None:
    try:
        detail = context.services().models.get_version(name, version)
    except ServiceError as exc:
        show_error(exc)
        return
    st.subheader(t("models.version_heading", name=name, version=version))
    cols = st.columns(len(KEY_METRICS) + 1)
    cols[0].metric(t("col.aliases"), ", ".join(detail.aliases) or "—", help=term("alias"))
    for col, key in zip(cols[1:], KEY_METRICS):
        if key == "backtest_sharpe":
            col.metric(key, sharpe_value(detail.metrics), help=t("sharpe.help"))
            col.caption(fmt_sharpe(detail.metrics))
        else:
            col.metric(key, fmt_num(detail.metrics.get(key)), help=term("metric"))
    if detail.description:
        recorded(pick_language(detail.description))
    schema, tags, about = st.tabs([t("models.tab.schema"), t("models.tab.tags"), t("models.tab.about")])
    with schema:
        _schema(detail)
    with tags:
        if detail.tags:
            st.dataframe(
                pd.DataFrame([{t("col.tag"): k, t("col.value"): v} for k, v in sorted(detail.tags.items())]),
                hide_index=True,
            )
        else:
            st.caption(t("models.no_tags"))
    with about:
        st.markdown(
            t(
                "models.about",
                uri=detail.model_uri,
                flavors=", ".join(detail.flavors) or "—",
                example=t("common.yes") if detail.has_input_example else t("common.no"),
            )
        )
        if detail.run_id:
            st.page_link(
                PAGE_PATHS["runs"],
                label=t("models.open_run", run=detail.run_id[:12]),
                icon=":material/science:",
                query_params={"run": detail.run_id},
            )


def _schema(detail: ModelVersionDetail) -> None:
    if detail.mlmodel_error:
        st.warning(t("models.mlmodel_error"))
        recorded(detail.mlmodel_error)
        return
    if detail.signature is None:
        st.warning(t("models.no_signature"))
        return
    for title, specs in (
        (t("models.inputs"), detail.signature.inputs),
        (t("models.outputs"), detail.signature.outputs),
    ):
        st.markdown(f"**{title}**")
        if not specs:
            st.caption("—")
            continue
        st.dataframe(pd.DataFrame([_spec_row(s) for s in specs]), hide_index=True)


def _spec_row(spec: dict[str, Any]) -> dict[str, Any]:
    tensor = spec.get("tensor-spec") or {}
    return {
        t("col.name"): spec.get("name") or "—",
        t("col.type"): spec.get("type") or "—",
        t("col.dtype"): tensor.get("dtype") or spec.get("type") or "—",
        t("col.shape"): str(tensor.get("shape")) if tensor.get("shape") is not None else "—",
        t("col.optional"): t("common.yes") if spec.get("required") is False else t("common.no"),
    }


# -- actions -------------------------------------------------------------------------------


def _actions(model: ModelPublic) -> None:
    allowed = write_allowed()
    token_input(TOKEN_KEY)
    promote, rollback = st.columns(2, gap="large")
    with promote, st.container(border=True):
        st.subheader(t("models.promote"))
        candidates = [v.version for v in model.versions if v.version != model.production_version]
        if not candidates:
            st.caption(t("models.nothing_to_promote"))
        else:
            version = st.selectbox(
                t("models.promote_version"), candidates, key=_STATE + "promote_version", format_func=lambda n: f"v{n}"
            )
            st.text_input(t("models.reason"), key=_STATE + "promote_reason", max_chars=1000)
            st.checkbox(
                t("models.force"), key=_STATE + "promote_force", help=t("models.force_help"), disabled=not allowed
            )
            confirmed = st.checkbox(
                t("models.confirm_promote", name=model.name, version=version),
                key=_STATE + "promote_confirm",
                disabled=not allowed,
            )
            st.button(
                t("models.promote_button"),
                key=_STATE + "promote_button",
                type="primary",
                disabled=not (allowed and confirmed),
                on_click=_promote,
                args=(model.name,),
            )
    with rollback, st.container(border=True):
        st.subheader(t("models.rollback"))
        if model.production_version is None:
            st.caption(t("models.nothing_in_production"))
        else:
            st.markdown(t("models.rollback_text", version=model.production_version))
            st.text_input(t("models.reason"), key=_STATE + "rollback_reason", max_chars=1000)
            confirmed = st.checkbox(
                t("models.confirm_rollback", name=model.name, version=model.production_version),
                key=_STATE + "rollback_confirm",
                disabled=not allowed,
            )
            st.button(
                t("models.rollback_button"),
                key=_STATE + "rollback_button",
                type="primary",
                disabled=not (allowed and confirmed),
                on_click=_rollback,
                args=(model.name,),
            )


def _promote(name: str) -> None:
    state = st.session_state
    version = int(state[_STATE + "promote_version"])
    reason = (state.get(_STATE + "promote_reason") or "").strip()
    force = bool(state.get(_STATE + "promote_force"))

    def action() -> tuple[str, PromotionDecisionPublic]:
        check_token(TOKEN_KEY, "promote")
        return "promote", context.services().models.promote(name, version, reason=reason, force=force, actor=ACTOR)

    run_action(action, RESULT_KEY)
    state[_STATE + "promote_confirm"] = False


def _rollback(name: str) -> None:
    state = st.session_state
    reason = (state.get(_STATE + "rollback_reason") or "").strip()

    def action() -> tuple[str, PromotionDecisionPublic]:
        check_token(TOKEN_KEY, "rollback")
        return "rollback", context.services().models.rollback(name, reason=reason, actor=ACTOR)

    run_action(action, RESULT_KEY)
    state[_STATE + "rollback_confirm"] = False


if __name__ == "__main__":
    render()
