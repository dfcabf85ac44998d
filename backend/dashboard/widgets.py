"""Pieces every page uses: formatting, service errors as messages, the write-access gate, glossary
tooltips and the live view of a background job. Every visible string comes from :mod:`.i18n`."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pandas as pd
import streamlit as st

from backend.ml_engine.evaluation import MIN_TRADES, format_sharpe
from backend.services.access import (
    InvalidTokenError,
    ReadOnlyError,
    WriteAccessError,
    check_write_access,
)
from backend.services.errors import (
    ConflictError,
    InvalidDataError,
    InvalidRequestError,
    NotFoundError,
    ServiceError,
    UnavailableError,
)
from backend.services.schemas import JobPublic

from . import context
from .i18n import current_language, has_text, in_language, t
from .metric_help import metric_help

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import ValidationError

__all__ = [
    "ACTOR",
    "PAGE_PATHS",
    "TERMINAL_JOB_STATUSES",
    "cancel_box",
    "follow_job",
    "check_token",
    "error_parts",
    "escape_markdown",
    "fmt_duration",
    "fmt_num",
    "fmt_time",
    "inject_css",
    "job_panel",
    "jobs_frame",
    "metric_help",
    "mlflow_model_link",
    "mlflow_run_link",
    "mlflow_run_url",
    "recorded",
    "run_action",
    "show_error",
    "term",
    "token_input",
    "validation_messages",
    "write_allowed",
]

logger = logging.getLogger(__name__)

#: Who decides, in the registry's promotion history.
ACTOR = "dashboard"
#: Page scripts, relative to ``app.py`` (for ``st.page_link`` and ``st.switch_page``).
PAGE_PATHS = {
    "overview": "views/overview.py",
    "runs": "views/runs.py",
    "compare": "views/compare.py",
    "leaderboard": "views/leaderboard.py",
    "tuning": "views/tuning.py",
    "models": "views/models.py",
    "training": "views/training.py",
    "retraining": "views/retraining.py",
    "monitoring": "views/monitoring.py",
    "glossary": "views/glossary.py",
}
TERMINAL_JOB_STATUSES = frozenset({"finished", "failed", "cancelled"})
#: Seconds between two looks at a running job.
JOB_POLL_S = 2.0

_CSS = """
<style>
/* Streamlit's own input hints are not translated: hide them, every form has its button. */
[data-testid="InputInstructions"] { display: none; }
/* An action's result (widgets.feedback) is brought into view with a margin around it. */
[class*="st-key-feedback-"] { scroll-margin: 2rem; }
</style>
"""


def inject_css() -> None:
    st.html(_CSS)


# -- formatting ----------------------------------------------------------------------------


def fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "—"


def fmt_num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 10**-digits or value == 0 else f"{value:.2e}"
    return str(value)


def fmt_sharpe(metrics: Mapping[str, Any], lang: str | None = None) -> str:
    """A backtest Sharpe for people, never a bare number: with its trades and 95% interval, and
    "too few trades" below ``evaluation.MIN_TRADES`` (versions logged before trades were recorded
    say so)."""
    lang = lang or current_language()
    sharpe, trades = metrics.get("backtest_sharpe"), metrics.get("backtest_n_trades")
    if sharpe is None or (isinstance(sharpe, float) and not math.isfinite(sharpe)):
        return "—"
    if trades is None:
        return t("sharpe.trades_unknown", sharpe=f"{float(sharpe):.2f}")
    text = format_sharpe(float(sharpe), int(trades), lang)
    low, high = metrics.get("backtest_sharpe_low"), metrics.get("backtest_sharpe_high")
    shown = int(trades) >= MIN_TRADES and low is not None and high is not None
    if shown and math.isfinite(float(low)) and math.isfinite(float(high)):
        text += f" [{float(low):.2f}, {float(high):.2f}]"
    return text


def sharpe_value(metrics: Mapping[str, Any]) -> str:
    """The Sharpe for a headline tile: the number only with enough trades, else a dash;
    :func:`fmt_sharpe` goes beside it with the trades and the interval (or "too few trades")."""
    sharpe, trades = metrics.get("backtest_sharpe"), metrics.get("backtest_n_trades")
    if sharpe is None or (isinstance(sharpe, float) and not math.isfinite(sharpe)):
        return "—"
    if trades is not None and int(trades) < MIN_TRADES:
        return "—"
    return f"{float(sharpe):.2f}"


def policy_fields(state: str) -> dict[str, Any]:
    """The signal policy's inputs (rule, threshold, direction, fee and slippage in percent), the same on
    every page that asks for one; :func:`policy_body` turns them into ``SignalPolicyParams``."""
    p1, p2, p3, p4, p5 = st.columns(5)
    return {
        "mode": p1.selectbox(
            t("policy.field.mode"),
            ("argmax", "threshold"),
            key=state + "mode",
            format_func=lambda m: t(f"policy.mode.{m}"),
            help=t("policy.mode_help"),
        ),
        "threshold": p2.number_input(
            t("policy.field.threshold"),
            min_value=0.01,
            max_value=1.0,
            value=0.5,
            step=0.05,
            key=state + "threshold",
        ),
        "direction": p3.selectbox(
            t("policy.field.direction"),
            ("long_short", "long_only"),
            key=state + "direction",
            format_func=lambda d: t(f"leaderboard.policy.{d}"),
        ),
        "fee": p4.number_input(
            t("policy.field.fee"),
            min_value=0.0,
            max_value=5.0,
            value=0.1,
            step=0.01,
            format="%.3f",
            key=state + "fee",
        ),
        "slippage": p5.number_input(
            t("policy.field.slippage"),
            min_value=0.0,
            max_value=5.0,
            value=0.0,
            step=0.01,
            format="%.3f",
            key=state + "slippage",
        ),
    }


def form_body(values: dict[str, Any]) -> dict[str, Any]:
    """A form's fields as a request body: empty fields left out, text stripped, ``symbols`` split on commas."""
    body: dict[str, Any] = {}
    for key, value in values.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        body[key] = value.strip() if isinstance(value, str) else value
    if "symbols" in body:
        body["symbols"] = [s.strip().upper() for s in body["symbols"].split(",") if s.strip()]
    return body


def policy_body(policy: dict[str, Any]) -> dict[str, Any]:
    """The inputs of :func:`policy_fields` as a ``policy`` body: percent turned into fractions."""
    out = dict(policy)
    for key in ("fee", "slippage"):
        if out.get(key) is not None:
            out[key] = round(float(out[key]) / 100.0, 8)
    if out.get("threshold") is not None:
        out["threshold"] = float(out["threshold"])
    return {k: v for k, v in out.items() if v is not None}


def fmt_duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = max(0, round((end - start).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return t("unit.hm", h=hours, m=minutes)
    if minutes:
        return t("unit.ms", m=minutes, s=secs)
    return t("unit.s", s=secs)


def escape_markdown(text: str) -> str:
    """``text`` shown literally where Streamlit renders markdown (``model_*, trainer_*`` is no emphasis)."""
    return "".join("\\" + c if c in "\\`*_[]<>#|~" else c for c in text)


def term(name: str) -> str:
    """A glossary entry as a tooltip: ``st.selectbox(..., help=term("experiment"))``; a metric's own
    tooltip (what it measures, on which data, what a good value is) is ``metric_help(key)``."""
    return f"**{t(f'glossary.{name}.term')}**: {t(f'glossary.{name}.desc')}"


# -- links into the MLflow UI ------------------------------------------------------------------
#
# The UI's address is a setting (``ML_MLFLOW_UI_URL``, ``ServiceSettings.mlflow_ui_url``), whatever the
# tracking store is (a database, a folder or an MLflow server): every page links through these.


def mlflow_run_link(base: str, run_id: str, experiment_id: str | None) -> str:
    """The run's page in the MLflow UI at ``base`` (the direct ``#/runs/<id>`` route without the experiment)."""
    base = base.rstrip("/")
    if experiment_id:
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"{base}/#/runs/{run_id}"


def mlflow_model_link(base: str, name: str, version: int) -> str:
    """The registered model version's page in the MLflow UI at ``base``."""
    return f"{base.rstrip('/')}/#/models/{quote(name, safe='')}/versions/{version}"


@st.cache_data(show_spinner=False, max_entries=256)
def _experiment_of(_services: Any, store: str, run_id: str) -> str:
    """A run's experiment id (it never changes: cached per store and run)."""
    return str(_services.runs.client.get_run(run_id).info.experiment_id)


def mlflow_run_url(run_id: str) -> str:
    """The run's page in the MLflow UI at ``ML_MLFLOW_UI_URL``; the direct route when its experiment cannot
    be looked up (the run is gone, the store is down)."""
    services = context.services()
    settings = services.settings
    try:
        experiment: str | None = _experiment_of(services, settings.mlflow_tracking_uri, run_id)
    except Exception as exc:  # noqa: BLE001 - the link still names the run
        logger.info("run %s: experiment not looked up: %s", run_id, type(exc).__name__)
        experiment = None
    return mlflow_run_link(settings.mlflow_ui_url, run_id, experiment)


# -- errors --------------------------------------------------------------------------------

_ERROR_KEYS: tuple[tuple[type[ServiceError], str], ...] = (
    (ReadOnlyError, "access.read_only"),
    (InvalidTokenError, "access.bad_token"),
    (WriteAccessError, "access.bad_token"),
    (NotFoundError, "error.not_found"),
    (InvalidDataError, "error.invalid_data"),
    (InvalidRequestError, "error.invalid_request"),
    (ConflictError, "error.conflict"),
    (UnavailableError, "error.unavailable"),
)


def error_parts(exc: ServiceError) -> tuple[str, str | None]:
    """A service error as a sentence in the page's language and the service's own message
    (a parser's, a store's: shown verbatim), or None where nothing more may be said."""
    for cls, key in _ERROR_KEYS:
        if isinstance(exc, cls):
            if isinstance(exc, WriteAccessError):
                return t(key), None  # never echo anything about the token
            return t(key), str(exc)
    return t("error.other"), str(exc)


def show_error(exc: ServiceError, heading_key: str | None = None) -> None:
    """The error's sentence (or ``heading_key``'s) in an alert, the service's message below it."""
    logger.info("dashboard: %s: %s", type(exc).__name__, exc)
    heading, detail = error_parts(exc)
    st.error(t(heading_key) if heading_key else heading)
    if detail:
        recorded(detail)


def recorded(text: str | None) -> None:
    """Text written by the engine or a person (a reason, a verdict, an error): as markdown when it is
    in the page's language, else verbatim in a box, so a page never mixes its own languages."""
    if not text or not text.strip():
        return
    if in_language(text):
        st.markdown(text)
    else:
        st.code(text, language=None, wrap_lines=True)


# -- write access --------------------------------------------------------------------------


def write_allowed() -> bool:
    """False when no ``ML_API_TOKEN`` is configured: actions are shown disabled, with the reason."""
    return not context.settings().read_only


def token_input(key: str) -> None:
    """The token field (when a token is configured) or the read-only notice (when none is)."""
    if write_allowed():
        st.text_input(t("access.token"), type="password", key=key, help=t("access.token_help"))
    else:
        st.info(t("access.read_only"))


def check_token(key: str, action: str) -> None:
    """The API's rule (:func:`check_write_access`) on the token typed into field ``key``."""
    check_write_access(context.settings(), st.session_state.get(key) or None, action=f"dashboard {action}")


# -- jobs ----------------------------------------------------------------------------------


def job_panel(job_id: str, view: Callable[[JobPublic], None] | None = None) -> None:
    """A job's state (``view``: how a page shows it; default: progress and metrics of a training); while it is
    queued or running, refreshed every :data:`JOB_POLL_S` seconds, and the whole page reruns when it ends."""
    try:
        job = context.services().jobs.get_job(job_id)
    except ServiceError as exc:
        show_error(exc)
        return
    if job.status in TERMINAL_JOB_STATUSES:
        (view or _job_view)(job)
    else:
        _live_job(job_id, view)


@st.fragment(run_every=JOB_POLL_S)
def _live_job(job_id: str, view: Callable[[JobPublic], None] | None = None) -> None:
    try:
        job = context.services().jobs.get_job(job_id)
    except ServiceError as exc:
        show_error(exc)
        return
    (view or _job_view)(job)
    if job.status in TERMINAL_JOB_STATUSES:
        st.rerun()  # the whole page: its tables and charts now include the result


def _job_view(job: JobPublic) -> None:
    st.markdown(t("job.heading", kind=t(f"job.kind.{job.kind}"), id=job.id[:12], status=t(f"job.status.{job.status}")))
    epochs = job.epochs if job.epochs is not None else "?"
    st.progress(job.progress, text=t("job.progress", epoch=job.epoch, epochs=epochs))
    shown = [k for k in ("train_loss", "val_loss", "val_accuracy", "val_f1") if k in job.metrics]
    if shown:
        for col, key in zip(st.columns(len(shown)), shown):
            col.metric(key, fmt_num(job.metrics.get(key)), help=metric_help(key))
    if job.status == "queued":
        st.info(t("job.queued_hint"))
    elif job.status == "running" and job.cancel_requested:
        st.warning(t("job.cancel_requested"))
    elif job.status == "finished":
        st.success(t("job.finished"))
        if job.run_id:
            st.page_link(
                PAGE_PATHS["runs"],
                label=t("job.open_run", run=job.run_id[:12]),
                icon=":material/science:",
                query_params={"run": job.run_id},
            )
        if job.version is not None and job.model_name:
            st.page_link(
                PAGE_PATHS["models"],
                label=t("job.open_version", name=job.model_name, version=job.version),
                icon=":material/inventory_2:",
                query_params={"model": job.model_name, "version": str(job.version)},
            )
    elif job.status == "failed":
        st.error(t("job.failed"))
        recorded(job.error)
    elif job.status == "cancelled":
        st.warning(t("job.cancelled"))


def jobs_frame(jobs: Iterable[JobPublic]) -> pd.DataFrame:
    """Jobs as a table of text columns only: a column mixing numbers and "—" (the version of a job that
    registered none) would make pyarrow refuse it and Streamlit log a traceback on every render."""
    rows = [
        {
            t("col.job"): j.id[:12],
            t("col.kind"): t(f"job.kind.{j.kind}"),
            t("col.status"): t(f"job.status.{j.status}"),
            t("col.model"): j.model_name or "—",
            t("col.progress"): f"{j.epoch}/{j.epochs}" if j.epochs else "—",
            t("col.origin"): t(f"job.origin.{j.origin}") if j.origin in ("api", "schedule") else j.origin,
            t("col.created"): fmt_time(j.created_at),
            t("col.worker"): j.worker or "—",
            t("col.run"): (j.run_id or "")[:12] or "—",
            t("col.version"): f"v{j.version}" if j.version is not None else "—",
        }
        for j in jobs
    ]
    return pd.DataFrame(rows)


def follow_job(jobs: list[JobPublic], state_key: str, key: str | None = None) -> None:
    """A picker of ``jobs``: the chosen one becomes ``st.session_state[state_key]`` (the page's job panel)."""
    ids = [j.id for j in jobs]
    current = st.session_state.get(state_key)
    follow = st.selectbox(
        t("training.follow"),
        ids,
        index=ids.index(current) if current in ids else None,
        format_func=lambda i: i[:12],
        placeholder=t("common.choose"),
        key=key,
    )
    if follow and follow != current:
        st.session_state[state_key] = follow
        st.rerun()


def cancel_box(job: JobPublic | None, prefix: str) -> None:
    """Cancel ``job`` (token asked for, as the API does); nothing when writes are off, only the answer to
    the cancel (:func:`feedback`) when it has ended."""
    if job is None or not write_allowed():
        return
    if job.status in TERMINAL_JOB_STATUSES:
        feedback(prefix, "cancel", _cancel_sent, scope=job.id)
        return
    with st.expander(t("training.cancel")):
        st.text_input(t("access.token"), type="password", key=prefix + "cancel_token", help=t("access.token_help"))
        # on_click: the answer is recorded before the page draws, so an earlier action's answer higher up
        # (the form's "queued") is already gone in this run, and the job above shows its new state
        job_id = job.id
        st.button(
            t("training.cancel_button"),
            key=prefix + "cancel_button",
            on_click=act,
            args=(prefix, "cancel", lambda: context.services().jobs.cancel_job(job_id)),
            kwargs={"token_key": prefix + "cancel_token", "action_name": "cancel", "scope": job_id},
        )
        feedback(prefix, "cancel", _cancel_sent, scope=job_id)


def _cancel_sent(_job: Any) -> None:
    st.success(t("training.cancel_sent"))


def run_action(action: Callable[[], Any], result_key: str) -> None:
    """Run ``action`` (a service call), keeping its outcome or its error for the next render."""
    try:
        st.session_state[result_key] = ("ok", action())
    except ServiceError as exc:
        logger.info("dashboard action refused: %s: %s", type(exc).__name__, exc)
        st.session_state[result_key] = ("error", exc)


# -- action feedback -----------------------------------------------------------------------
#
# The result of an action (done, refused with the gate's checks, a wrong token, an invalid form)
# is shown where the eye is: right under the control that caused it, in the same container, and it
# stays there until the next action on the page. ``act`` (or ``keep``) records it in the session;
# ``feedback``, called just below the control, shows it.


@dataclass(frozen=True)
class Outcome:
    """What an action gave: ``status`` "ok" (``payload``: the service's answer), "error" (a
    :class:`ServiceError`) or "invalid" (form lines); ``slot``: which control on the page caused it;
    ``scope``: what it acted on (a model, a study), shown only while that one is on screen."""

    slot: str
    status: str
    payload: Any
    scope: str | None = None
    fresh: bool = True


def outcome_key(page: str) -> str:
    """The session key of a page's last action (``page``: the page's state prefix, e.g. ``"models."``)."""
    return f"{page}outcome"


def feedback_key(page: str, slot: str) -> str:
    """The key of the container showing ``slot``'s outcome; in the browser, CSS class ``st-key-<key>``."""
    return "feedback-" + re.sub(r"[^A-Za-z0-9_-]+", "-", f"{page}{slot}").strip("-")


def keep(page: str, slot: str, status: str, payload: Any, scope: str | None = None) -> Outcome:
    """Record an action's outcome: it replaces the page's previous one (of whichever control)."""
    outcome = Outcome(slot, status, payload, scope)
    st.session_state[outcome_key(page)] = outcome
    return outcome


def act(
    page: str,
    slot: str,
    action: Callable[[], Any],
    *,
    token_key: str | None = None,
    action_name: str | None = None,
    scope: str | None = None,
) -> Outcome:
    """Run ``action`` (a service call) after the token check of field ``token_key`` (when given), and
    record its answer or its error for :func:`feedback`. Usable as a button's ``on_click``."""
    try:
        if token_key is not None:
            check_token(token_key, action_name or slot)
        result = action()
    except ServiceError as exc:
        logger.info("dashboard action %s refused: %s: %s", slot, type(exc).__name__, exc)
        return keep(page, slot, "error", exc, scope)
    return keep(page, slot, "ok", result, scope)


def last_outcome(page: str, slot: str | None = None, scope: str | None = None) -> Outcome | None:
    """The page's last action outcome, if it came from ``slot`` (any when None) on ``scope``."""
    outcome = st.session_state.get(outcome_key(page))
    if not isinstance(outcome, Outcome):
        return None
    if slot is not None and outcome.slot != slot:
        return None
    if outcome.scope is not None and scope is not None and outcome.scope != scope:
        return None
    return outcome


def feedback(
    page: str,
    slot: str,
    show_ok: Callable[[Any], None] | None = None,
    scope: str | None = None,
    invalid_key: str = "training.invalid",
) -> bool:
    """Show the outcome of control ``slot`` right here (call it just below the control), in a container
    keyed :func:`feedback_key`: an error as :func:`show_error` does (the token error says nothing more),
    invalid form lines as a list under ``invalid_key``'s sentence, an answer through ``show_ok``. Right after the action the browser
    brings it into view if it is not. True when something was shown."""
    outcome = last_outcome(page, slot, scope)
    if outcome is None:
        return False
    key = feedback_key(page, slot)
    with st.container(key=key):
        if outcome.status == "error":
            show_error(outcome.payload)
        elif outcome.status == "invalid":
            st.error(t(invalid_key))
            for line in outcome.payload:
                st.markdown(f"- {line}")
        elif show_ok is not None:
            show_ok(outcome.payload)
        if outcome.fresh:
            st.html(_SCROLL_INTO_VIEW.replace("__KEY__", key), unsafe_allow_javascript=True)
    if outcome.fresh:
        st.session_state[outcome_key(page)] = replace(outcome, fresh=False)
    return True


#: Brings the feedback into view once, after the action (``nearest``: no scrolling when it is visible;
#: again a little later, when the page below and above it has settled).
_SCROLL_INTO_VIEW = """<script>
for (const ms of [50, 400]) {
  setTimeout(() => {
    const box = document.querySelector(".st-key-__KEY__");
    if (box) box.scrollIntoView({block: "nearest", behavior: "instant"});
  }, ms);
}
</script>"""


def validation_messages(exc: ValidationError, field_prefix: str) -> list[str]:
    """A request schema's errors, one line each, in the page's language: the field's label from
    ``<field_prefix>.<field>`` and the rule from ``validation.<pydantic error type>``."""
    out: list[str] = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err.get("loc", ())]
        field = loc[1] if len(loc) > 1 and loc[0] == "model" else (loc[0] if loc else "")
        label_key = f"{field_prefix}.{field}"
        label = t(label_key) if has_text(label_key) else ".".join(loc)
        rule_key = f"validation.{err.get('type')}"
        ctx = {k: v for k, v in (err.get("ctx") or {}).items() if isinstance(v, (int, float, str))}
        rule = t(rule_key, **ctx) if has_text(rule_key) else t("validation.other", message=err.get("msg", ""))
        out.append(t("validation.line", field=label, message=rule))
    return out
