"""Модели: registered models and their versions (tags, description, input/output schema, aliases,
promotion history); promote and roll back, confirmed, with the API token where one is configured."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from backend.dashboard import context
from backend.dashboard.i18n import current_language, has_text, in_language, pick_language, t
from backend.dashboard.widgets import (
    ACTOR,
    PAGE_PATHS,
    act,
    feedback,
    fmt_num,
    fmt_sharpe,
    fmt_time,
    mlflow_model_link,
    mlflow_run_link,
    recorded,
    show_error,
    term,
    token_input,
    write_allowed,
)
from backend.dashboard.yardsticks import CLASSIFICATION, data_mark, fmt_actor, headline_tiles, version_description
from backend.services.errors import ServiceError
from backend.services.redaction import mask_uri
from backend.services.schemas import (
    ModelPublic,
    ModelVersionDetail,
    PromotionDecisionPublic,
)

logger = logging.getLogger(__name__)

KEY_METRICS: tuple[str, ...] = ("test_accuracy", "test_f1_macro", "backtest_sharpe")
_STATE = "models."
TOKEN_KEY = _STATE + "token"


def render() -> None:
    st.title(t("models.title"))
    st.caption(term("registry"))
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
        _version_detail(name, version, model.production_version)

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
                        t("col.actor"): fmt_actor(e.actor),
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


def _show_rollback(decision: PromotionDecisionPublic) -> None:
    """A rollback's answer, under its button."""
    st.success(t("models.rolled_back", frm=decision.from_version, to=decision.to_version))


def _show_promotion(decision: PromotionDecisionPublic) -> None:
    """A promotion's answer, under its button: done, or refused with the gate's checks."""
    if decision.promoted:
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
    """One row a version: key metrics, whether they beat the baselines, and whether it was tested on
    the same data as production (else the newest version): numbers on other data are not comparable."""
    try:
        yardsticks = context.overview().yardsticks([v.run_id for v in model.versions])
    except ServiceError as exc:
        show_error(exc)
        yardsticks = {}
    reference = next(
        (v for v in model.versions if v.version == model.production_version),
        model.versions[0] if model.versions else None,
    )
    ref_stick = yardsticks.get(reference.run_id or "") if reference is not None else None
    ref_version = reference.version if reference is not None else None
    rows: list[dict[str, Any]] = []
    for v in model.versions:
        stick = yardsticks.get(v.run_id or "")
        verdicts = [stick.beats_baselines(k, v.metrics.get(k)) for k in CLASSIFICATION] if stick else []
        # what matters first (no sideways scroll to reach it): the numbers, their yardsticks, the data
        row: dict[str, Any] = {t("col.version"): v.version, t("col.aliases"): ", ".join(v.aliases) or "—"}
        row.update({k: fmt_num(v.metrics.get(k)) for k in KEY_METRICS})
        row[t("col.vs_baseline")] = (
            "—"
            if not verdicts or None in verdicts
            else t("yard.short.better")
            if all(verdicts)
            else t("yard.short.not_better")
        )
        row["backtest_sharpe"] = fmt_sharpe(v.metrics)
        row[t("col.test_data")] = data_mark(stick, ref_stick, ref_version)
        row[t("col.status")] = (
            t(f"version.status.{v.status}") if has_text(f"version.status.{v.status}") else (v.status or "—")
        )
        row[t("col.created")] = fmt_time(v.created_at)
        row[t("col.run_id")] = v.run_id or "—"
        row[t("col.description")] = version_description(v)
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    if ref_version is not None:
        st.caption(t("yard.data_caption", ref=ref_version))


def _version_picker(model: ModelPublic) -> int | None:
    versions = [v.version for v in model.versions]
    if not versions:
        st.info(t("models.no_versions"))
        return None
    wanted = st.query_params.get("version")
    preferred = int(wanted) if wanted and wanted.isdigit() and int(wanted) in versions else model.production_version
    index = versions.index(preferred) if preferred in versions else 0
    return st.selectbox(t("models.version"), versions, index=index, format_func=lambda n: f"v{n}", help=term("version"))


def _version_detail(name: str, version: int, production: int | None = None) -> None:
    try:
        detail = context.services().models.get_version(name, version)
    except ServiceError as exc:
        show_error(exc)
        return
    st.subheader(t("models.version_heading", name=name, version=version))
    st.markdown(
        f"{t('col.aliases')}: {', '.join(f'`{a}`' for a in detail.aliases) or '—'} · {version_description(detail)}"
    )
    try:
        stick = context.overview().yardsticks([detail.run_id]).get(detail.run_id or "") if detail.run_id else None
    except ServiceError as exc:
        show_error(exc)
        stick = None
    headline_tiles(detail.metrics, stick)
    if detail.description:  # the engine writes it in English: the page's own words are above
        described = pick_language(detail.description)
        if in_language(described):
            recorded(described)
        else:
            with st.expander(t("yard.recorded_description")):
                recorded(described)
    bot, schema, tags, about = st.tabs(
        [t("models.tab.bot"), t("models.tab.schema"), t("models.tab.tags"), t("models.tab.about")]
    )
    with bot:
        _for_bot(detail, production)
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


# -- for the bot ---------------------------------------------------------------------------

#: The REST API as ``make api`` serves it (``backend.api.main.API_PREFIX`` under port 8000).
API_URL = "http://127.0.0.1:8000/api/ml-management"
#: The training's plots (``plots/`` of the version's run), in the order shown.
PLOTS: tuple[str, ...] = ("confusion_matrix", "equity_curve", "learning_curves", "reliability")
#: The candle columns the Predictor, the pyfunc and ``/predict`` take (when the signature says nothing).
CANDLE_COLUMNS: tuple[str, ...] = ("timestamp", "open", "high", "low", "close", "volume")
#: The pyfunc's answer columns (when the signature says nothing).
ANSWER_COLUMNS: tuple[str, ...] = ("symbol", "down", "flat", "up", "signal", "confidence", "candle_time")


def model_uris(name: str, version: int) -> tuple[str, str]:
    """The two addresses a bot loads: the production alias (followed) and this version (pinned)."""
    return f"models:/{name}@production", f"models:/{name}/{version}"


def predictor_snippet(name: str, version: int, rows: Any = "?", timeframe: str = "") -> str:
    production, pinned = model_uris(name, version)
    columns = ", ".join(CANDLE_COLUMNS)
    return "\n".join(
        [
            "from backend.ml_engine.predictor import Predictor",
            "",
            f"# {t('models.bot.code.production')}: {production}",
            f'predictor = Predictor("{name}")',
            f"# {t('models.bot.code.pinned')}",
            f'predictor = Predictor.from_model_uri("{pinned}")',
            "",
            f"# {t('models.bot.code.candles', columns=columns, rows=rows, timeframe=timeframe).rstrip()}",
            "pred = predictor.predict(candles)",
            f"pred.signal, pred.confidence, pred.probabilities  # {t('models.bot.code.answer')}",
        ]
    )


def pyfunc_snippet(name: str, version: int, tracking_uri: str, answer: Sequence[str] = ANSWER_COLUMNS) -> str:
    _, pinned = model_uris(name, version)
    return "\n".join(
        [
            "import mlflow",
            "",
            f'mlflow.set_tracking_uri("{tracking_uri}")  # {t("models.bot.code.tracking")}',
            f'model = mlflow.pyfunc.load_model("{pinned}")',
            f"answer = model.predict(candles)  # {t('models.bot.code.pyfunc_out', columns=', '.join(answer))}",
        ]
    )


def serve_snippet(name: str, version: int) -> str:
    _, pinned = model_uris(name, version)
    return f"# {t('models.bot.code.serve')}\nmlflow models serve -m {pinned} --env-manager local --port 5001"


def curl_snippet(name: str, rows: Any = "?", api_url: str = API_URL) -> str:
    return "\n".join(
        [
            f"# {t('models.bot.code.body', name=name, rows=rows)}",
            f"curl -s -X POST {api_url}/predict \\",
            "  -H 'Content-Type: application/json' \\",
            "  -d @candles.json",
        ]
    )


@st.cache_data(show_spinner=False, max_entries=64)
def _metadata(_services: Any, store: str, name: str, version: int) -> dict[str, Any]:
    """The version's ``metadata.json`` (a version never changes: cached per store, name and version)."""
    data = _services.models.store.read_metadata(f"models:/{name}/{version}")
    return {k: data.get(k) for k in ("pipeline", "features", "data", "model_family")}


@st.cache_data(show_spinner=False, max_entries=64)
def _run_facts(_services: Any, store: str, run_id: str) -> tuple[str, list[str]]:
    """The run's experiment id and its ``plots/`` files (a version's run is finished: cached)."""
    run = _services.runs.get_run(run_id, history_max_points=1, max_artifacts=500)
    return run.experiment_id, [a.path for a in run.artifacts if not a.is_dir and a.path.startswith("plots/")]


@st.cache_data(show_spinner=False, max_entries=128)
def _artifact_bytes(_services: Any, store: str, run_id: str, path: str) -> bytes:
    """One artifact of a run (a plot), through the run service's tracking client."""
    with tempfile.TemporaryDirectory(prefix="dashboard-plot-") as tmp:
        return Path(_services.runs.client.download_artifacts(run_id, path, tmp)).read_bytes()


def _for_bot(detail: ModelVersionDetail, production: int | None) -> None:
    """What a bot developer needs: the URIs, the Predictor / pyfunc / curl code with this model's name and
    version, the input with the features in order, links into the MLflow UI and the version's plots."""
    services = context.services()
    settings = services.settings
    store = settings.mlflow_tracking_uri
    name, version = detail.name, detail.version
    try:
        meta = _metadata(services, store, name, version)
    except Exception as exc:  # noqa: BLE001 - a version logged without metadata, artifacts gone: said, not raised
        logger.info("model %s v%s: no readable metadata: %s", name, version, type(exc).__name__)
        meta = {}
    pipeline = meta.get("pipeline") or {}
    features = [str(f) for f in (pipeline.get("feature_names") or meta.get("features") or [])]
    window = pipeline.get("window")
    rows = pipeline.get("min_history_rows") or "?"
    timeframe = str((meta.get("data") or {}).get("timeframe") or "")

    st.caption(t("models.bot.intro"))
    st.markdown(f"**{t('models.bot.uris')}**")
    production_uri, pinned_uri = model_uris(name, version)
    st.markdown(t("models.bot.uri_production", production=production if production is not None else "—"))
    st.code(production_uri, language=None)
    st.markdown(t("models.bot.uri_pinned", version=version))
    st.code(pinned_uri, language=None)
    if production is None:
        st.info(t("models.bot.no_production", name=name))
    elif production != version:
        st.info(t("models.bot.not_production", name=name, production=production))

    st.markdown(f"**{t('models.bot.predictor')}**")
    st.code(predictor_snippet(name, version, rows, timeframe), language="python", wrap_lines=True)
    st.markdown(f"**{t('models.bot.pyfunc')}**")
    answer = [str(s.get("name")) for s in (detail.signature.outputs or [])] if detail.signature else []
    st.code(
        pyfunc_snippet(name, version, mask_uri(store), answer or ANSWER_COLUMNS), language="python", wrap_lines=True
    )
    st.code(serve_snippet(name, version), language="bash", wrap_lines=True)
    st.markdown(f"**{t('models.bot.rest')}**")
    st.caption(t("models.bot.rest_text"))
    st.code(curl_snippet(name, rows), language="bash", wrap_lines=True)

    st.markdown(f"**{t('models.bot.schema')}**")
    if features:
        st.markdown(t("models.bot.schema_text", rows=rows, window=window or "?", n=len(features)))
    else:
        st.warning(t("models.bot.no_metadata"))
    inputs = detail.signature.inputs if detail.signature and detail.signature.inputs else None
    candles, feats = st.columns([2, 3])
    with candles:
        st.caption(t("models.bot.candle_columns"))
        specs = inputs or [{"name": c} for c in CANDLE_COLUMNS]
        st.dataframe(pd.DataFrame([_candle_row(s) for s in specs]), hide_index=True)
    with feats:
        if features:
            st.caption(t("models.bot.features"))
            st.dataframe(
                pd.DataFrame({"#": range(len(features)), t("col.feature"): features}),
                hide_index=True,
                column_config={"#": st.column_config.NumberColumn(width="small")},
            )

    _mlflow_links(detail, services, store)
    _plots(detail, services, store)


def _candle_row(spec: dict[str, Any]) -> dict[str, Any]:
    """A candle column the bot sends: name, type, whether it may be left out."""
    return {
        t("col.name"): spec.get("name") or "—",
        t("col.type"): spec.get("type") or "—",
        t("col.optional"): t("common.yes") if spec.get("required") is False else t("common.no"),
    }


def _mlflow_links(detail: ModelVersionDetail, services: Any, store: str) -> None:
    base = services.settings.mlflow_ui_url
    st.markdown(f"**{t('models.bot.links')}**", help=t("models.bot.links_help", url=base))
    links = [
        f"[{t('models.bot.link_model', name=detail.name, version=detail.version)}]"
        f"({mlflow_model_link(base, detail.name, detail.version)})"
    ]
    if detail.run_id:
        try:
            experiment, _ = _run_facts(services, store, detail.run_id)
        except Exception:  # noqa: BLE001 - the run is gone: the direct link still names it
            experiment = None
        links.append(
            f"[{t('models.bot.link_run', run=detail.run_id[:12])}]({mlflow_run_link(base, detail.run_id, experiment)})"
        )
    st.markdown("  \n".join(links))


def _plots(detail: ModelVersionDetail, services: Any, store: str) -> None:
    with st.expander(t("models.bot.plots")):
        plots: list[str] = []
        if detail.run_id:
            try:
                _, plots = _run_facts(services, store, detail.run_id)
            except Exception as exc:  # noqa: BLE001 - artifacts not readable: said below
                logger.info("run %s: plots not listed: %s", detail.run_id, type(exc).__name__)
        by_name = {Path(p).stem: p for p in plots if p.lower().endswith(".png")}
        ordered = [by_name[k] for k in PLOTS if k in by_name] + sorted(p for k, p in by_name.items() if k not in PLOTS)
        if not ordered:
            st.caption(t("models.bot.no_plots"))
            return
        st.caption(t("models.bot.plots_help"))
        for path in ordered:
            stem = Path(path).stem
            title = t(f"models.bot.plot.{stem}") if has_text(f"models.bot.plot.{stem}") else stem
            try:
                data = _artifact_bytes(services, store, str(detail.run_id), path)
            except Exception as exc:  # noqa: BLE001 - one unreadable plot does not hide the others
                logger.info("run %s: %s not readable: %s", detail.run_id, path, type(exc).__name__)
                continue
            st.image(data, caption=title, width="stretch")
            st.download_button(
                t("models.bot.download", file=Path(path).name),
                data,
                file_name=f"{detail.name}_v{detail.version}_{Path(path).name}",
                mime="image/png",
                on_click="ignore",
                key=f"{_STATE}plot.{stem}",
            )


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
        feedback(_STATE, "promote", _show_promotion, scope=model.name)
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
        feedback(_STATE, "rollback", _show_rollback, scope=model.name)


def _promote(name: str) -> None:
    state = st.session_state
    version = int(state[_STATE + "promote_version"])
    reason = (state.get(_STATE + "promote_reason") or "").strip()
    force = bool(state.get(_STATE + "promote_force"))

    def action() -> PromotionDecisionPublic:
        return context.services().models.promote(name, version, reason=reason, force=force, actor=ACTOR)

    act(_STATE, "promote", action, token_key=TOKEN_KEY, action_name="promote", scope=name)
    state[_STATE + "promote_confirm"] = False


def _rollback(name: str) -> None:
    state = st.session_state
    reason = (state.get(_STATE + "rollback_reason") or "").strip()

    def action() -> PromotionDecisionPublic:
        return context.services().models.rollback(name, reason=reason, actor=ACTOR)

    act(_STATE, "rollback", action, token_key=TOKEN_KEY, action_name="rollback", scope=name)
    state[_STATE + "rollback_confirm"] = False


if __name__ == "__main__":
    render()
