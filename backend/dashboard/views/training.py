"""Обучение: a form that starts a training job (validated by the API's own schema,
:class:`~backend.services.schemas.TrainingParams`), its live progress, a link to the run when it ends."""

from __future__ import annotations

from typing import Any

import streamlit as st
from pydantic import ValidationError

from backend.dashboard import context
from backend.dashboard.i18n import t
from backend.dashboard.widgets import (
    act,
    cancel_box,
    feedback,
    follow_job,
    form_body,
    job_panel,
    jobs_frame,
    keep,
    policy_body,
    policy_fields,
    show_error,
    validation_messages,
    write_allowed,
)
from backend.ml_engine.config import DEFAULT_MODEL_NAME
from backend.ml_engine.families import DEFAULT_FAMILY, family_names, get_family
from backend.services.data_sources import DATA_SOURCES
from backend.services.errors import ServiceError
from backend.services.schemas import JobPublic, TrainingParams

_STATE = "training."
JOB_KEY = _STATE + "job"


def render() -> None:
    st.title(t("training.title"))
    st.caption(t("training.caption"))
    settings = context.settings()
    allowed = write_allowed()
    if not allowed:
        st.info(t("access.read_only"))

    # outside the form: choosing a family redraws the form with that family's options
    family = st.selectbox(
        t("training.field.family"),
        family_names(),
        key=_STATE + "family",
        format_func=lambda name: f"{name} — {t(f'training.family.{name}')}",
        help=t("training.family_help"),
    )
    with st.form(_STATE + "form"):
        c1, c2, c3 = st.columns(3)
        values: dict[str, Any] = {
            "model_name": c1.text_input(
                t("training.field.model_name"), value=DEFAULT_MODEL_NAME, key=_STATE + "model_name"
            ),
            "run_name": c2.text_input(
                t("training.field.run_name"), key=_STATE + "run_name", placeholder=t("training.auto")
            ),
            "data_source": c3.selectbox(
                t("training.field.data_source"),
                DATA_SOURCES,
                key=_STATE + "data_source",
                format_func=lambda s: t(f"training.source.{s}"),
            ),
            "epochs": c1.number_input(
                t("training.field.epochs"),
                min_value=1,
                max_value=1000,
                value=None,
                step=1,
                key=_STATE + "epochs",
                placeholder=t("training.default", value=settings.epochs),
            ),
            "batch_size": c2.number_input(
                t("training.field.batch_size"),
                min_value=1,
                max_value=8192,
                value=None,
                step=1,
                key=_STATE + "batch_size",
                placeholder=t("training.default", value=settings.batch_size),
            ),
            "lr": c3.number_input(
                t("training.field.lr"),
                min_value=0.0,
                max_value=1.0,
                value=None,
                step=1e-4,
                format="%.6f",
                key=_STATE + "lr",
                placeholder=t("training.default", value=settings.learning_rate),
            ),
            "date_range": c1.number_input(
                t("training.field.date_range"),
                min_value=0.0,
                max_value=3650.0,
                value=None,
                step=1.0,
                key=_STATE + "date_range",
                placeholder=t("training.all_data"),
            ),
            "symbols": c2.text_input(
                t("training.field.symbols"), key=_STATE + "symbols", placeholder=settings.symbols or "ETH/BTC, LTC/BTC"
            ),
            "timeframe": c3.text_input(
                t("training.field.timeframe"), key=_STATE + "timeframe", placeholder=settings.timeframe or "5m"
            ),
            "window": c1.number_input(
                t("training.field.window"),
                min_value=2,
                max_value=1024,
                value=None,
                step=1,
                key=_STATE + "window",
                placeholder=t("training.default", value=settings.window),
            ),
            "horizon": c2.number_input(
                t("training.field.horizon"),
                min_value=1,
                max_value=500,
                value=None,
                step=1,
                key=_STATE + "horizon",
                placeholder=t("training.default", value=settings.horizon),
            ),
            "seed": c3.number_input(
                t("training.field.seed"),
                min_value=0,
                max_value=2**32 - 1,
                value=None,
                step=1,
                key=_STATE + "seed",
                placeholder=t("training.default", value=settings.seed),
            ),
        }
        with st.expander(t("training.options", family=family)):
            network = _family_options(family)
        with st.expander(t("training.policy")):
            policy = policy_fields(_STATE)
        p1, p2, p3 = st.columns(3)
        values["export_onnx"] = p1.checkbox(t("training.field.export_onnx"), value=True, key=_STATE + "export_onnx")
        values["auto_promote"] = p2.checkbox(
            t("training.field.auto_promote"), key=_STATE + "auto_promote", help=t("training.auto_promote_help")
        )
        values["calibrate"] = p1.checkbox(
            t("training.field.calibrate"), key=_STATE + "calibrate", help=t("training.calibrate_help")
        )
        values["min_accuracy_for_promotion"] = p3.number_input(
            t("training.field.min_accuracy_for_promotion"),
            min_value=0.0,
            max_value=1.0,
            value=None,
            step=0.01,
            key=_STATE + "min_accuracy",
            placeholder=t("training.default", value=settings.min_accuracy_for_promotion),
        )
        if allowed:
            st.text_input(t("access.token"), type="password", key=_STATE + "token", help=t("access.token_help"))
        submitted = st.form_submit_button(
            t("training.submit"), type="primary", disabled=not allowed, key=_STATE + "submit"
        )
    if submitted:
        _submit(values, network, family, policy)
    feedback(_STATE, "submit", _show_queued)

    job_id = st.session_state.get(JOB_KEY)
    st.header(t("training.progress"))
    if job_id:
        job_panel(job_id)
        _cancel(job_id)
    else:
        st.info(t("training.no_job"))

    st.header(t("training.recent"))
    try:
        recent = context.services().jobs.list_jobs(kind="train", limit=20).data
    except ServiceError as exc:
        show_error(exc)
        return
    if not recent:
        st.info(t("training.no_jobs"))
        return
    st.dataframe(jobs_frame(recent), hide_index=True)
    follow_job(recent, JOB_KEY)


def _family_options(family: str) -> dict[str, Any]:
    """One input per option of the family (``families.OptionSpec``); empty: the default is used."""
    fam = get_family(family)
    cols = st.columns(3)
    out: dict[str, Any] = {}
    for i, opt in enumerate(fam.options()):
        col = cols[i % 3]
        key = f"{_STATE}opt.{family}.{opt.name}"
        label = f"{opt.name} — {t(f'option.{opt.name}')}"
        default = ",".join(str(v) for v in opt.default) if isinstance(opt.default, tuple) else opt.default
        hint = t("training.default", value=default)
        if opt.kind in ("int", "float"):
            out[opt.name] = col.number_input(
                label,
                min_value=opt.minimum if opt.kind == "float" or opt.minimum is None else int(opt.minimum),
                max_value=opt.maximum if opt.kind == "float" or opt.maximum is None else int(opt.maximum),
                value=None,
                step=1 if opt.kind == "int" else None,
                format=None if opt.kind == "int" else "%g",
                key=key,
                placeholder=hint,
            )
        elif opt.kind == "bool" or opt.choices:
            choices = ["", "true", "false"] if opt.kind == "bool" else ["", *(opt.choices or ())]
            out[opt.name] = col.selectbox(label, choices, key=key, format_func=lambda c, h=hint: c or h)
        else:
            out[opt.name] = col.text_input(label, key=key, placeholder=hint)
    return out


#: The policy inputs' defaults (fee and slippage in percent, as typed): unchanged, no ``policy`` is sent.
DEFAULT_POLICY = {"mode": "argmax", "threshold": 0.5, "direction": "long_short", "fee": 0.1, "slippage": 0.0}


def training_request(
    values: dict[str, Any],
    network: dict[str, Any],
    family: str = DEFAULT_FAMILY,
    policy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The form's fields as the body ``POST /train`` would get: unset fields left out."""
    body = form_body(values)
    model: dict[str, Any] = {}
    for key, value in network.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if key in ("conv_channels", "lags"):
            parts = [p.strip() for p in str(value).replace(";", ",").split(",") if p.strip()]
            model[key] = [int(p) if p.isdigit() else p for p in parts]
        else:
            model[key] = value
    if family != DEFAULT_FAMILY:
        model = {"family": family, **model}
    if model:
        body["model"] = model
    if policy and any(policy.get(k) != v for k, v in DEFAULT_POLICY.items()):
        body["policy"] = policy_body({k: policy.get(k, v) for k, v in DEFAULT_POLICY.items()})
    return body


def _submit(values: dict[str, Any], network: dict[str, Any], family: str, policy: dict[str, Any]) -> None:
    body = training_request(values, network, family, policy)
    try:
        params = TrainingParams.model_validate(body)
    except ValidationError as exc:
        keep(_STATE, "submit", "invalid", validation_messages(exc, "training.field"))
        return
    outcome = act(
        _STATE,
        "submit",
        lambda: context.services().jobs.submit_training(params),
        token_key=_STATE + "token",
        action_name="train",
    )
    if outcome.status == "ok":
        st.session_state[JOB_KEY] = outcome.payload.id


def _show_queued(job: JobPublic) -> None:
    """A started training, under the form's button (it stays until the next action)."""
    st.success(t("training.queued", id=job.id[:12]))


def _cancel(job_id: str) -> None:
    try:
        job = context.services().jobs.get_job(job_id)
    except ServiceError:
        return
    cancel_box(job, _STATE)


if __name__ == "__main__":
    render()
