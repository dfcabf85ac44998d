"""Every headline number with its yardstick, for Обзор and Модели.

Accuracy and macro F1 beside the naive baselines the run scored on the same test windows (majority
class, previous direction) with a plain verdict; the backtest's Sharpe and return beside buy-and-hold
on the same bars, with the trades and bars behind them and "too few trades" below
``evaluation.MIN_TRADES``; which versions were tested on other data than the one they are compared
with; who decided and what a version is, in the page's language. The numbers come from
:class:`backend.services.overview.Yardstick` (the version's run), the words from :mod:`.i18n`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from backend.ml_engine.evaluation import MIN_TRADES
from backend.services.overview import Yardstick
from backend.services.schemas import ModelVersionPublic

from .i18n import has_text, t
from .metric_help import metric_help
from .tables import _finite
from .widgets import fmt_num, fmt_sharpe, sharpe_value

__all__ = [
    "CLASSIFICATION",
    "HEADLINE",
    "MIN_TRADES",
    "data_mark",
    "fmt_actor",
    "headline_tiles",
    "version_description",
    "versus_baselines",
]

#: Classification metrics shown beside their baselines.
CLASSIFICATION: tuple[str, ...] = ("test_accuracy", "test_f1_macro")
#: The headline tiles, in order: two classification metrics, the backtest's Sharpe and return.
HEADLINE: tuple[str, ...] = (*CLASSIFICATION, "backtest_sharpe", "backtest_total_return")


def _value(key: str, metrics: Mapping[str, Any], yardstick: Yardstick | None) -> float | None:
    """The version's recorded number (a version tag), else its run's."""
    value = _finite(metrics.get(key))
    if value is None and yardstick is not None:
        value = yardstick.value(key)
    return value


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.2f} %"


def versus_baselines(key: str, value: float | None, yardstick: Yardstick | None) -> bool | None:
    """Is ``value`` of ``key`` above every baseline of the run? None when unknown."""
    return None if yardstick is None else yardstick.beats_baselines(key, value)


def headline_tiles(metrics: Mapping[str, Any], yardstick: Yardstick | None) -> None:
    """Four tiles, each with its yardstick below it in the same column: accuracy and macro F1 against
    the baselines, Sharpe and return against buy-and-hold with the trades and bars."""
    columns = st.columns(len(HEADLINE))
    for column, key in zip(columns, HEADLINE, strict=True):
        with column:
            if key in CLASSIFICATION:
                _classification_tile(key, metrics, yardstick)
            elif key == "backtest_sharpe":
                _sharpe_tile(metrics, yardstick)
            else:
                _return_tile(metrics, yardstick)
    if yardstick is None:
        st.caption(t("yard.no_run"))


def _classification_tile(key: str, metrics: Mapping[str, Any], yardstick: Yardstick | None) -> None:
    value = _value(key, metrics, yardstick)
    baselines = yardstick.baselines(key) if yardstick is not None else {}
    best = max(baselines.values()) if baselines else None
    delta = t("yard.delta", diff=f"{value - best:+.4f}") if value is not None and best is not None else None
    st.metric(key, fmt_num(value), delta=delta, help=metric_help(key))
    if not baselines:
        st.caption(t("yard.no_baselines"))
        return
    items = " · ".join(f"{t(f'yard.baseline.{name}')} {fmt_num(v)}" for name, v in baselines.items())
    st.caption(t("yard.baselines", items=items))
    beats = versus_baselines(key, value, yardstick)
    if beats is not None:
        st.caption(t("yard.better") if beats else t("yard.not_better"))


def _trades_caption(yardstick: Yardstick | None) -> None:
    if yardstick is None or yardstick.n_trades is None:
        return
    bars = yardstick.n_bars
    st.caption(t("yard.trades_bars", trades=yardstick.n_trades, bars=bars if bars is not None else "—"))
    if yardstick.too_few_trades:
        st.caption(t("yard.too_few", n=yardstick.n_trades, min=MIN_TRADES))


def _sharpe_tile(metrics: Mapping[str, Any], yardstick: Yardstick | None) -> None:
    merged = {**(yardstick.metrics if yardstick is not None else {}), **metrics}
    shown = sharpe_value(merged)  # a dash below MIN_TRADES: the number means nothing then
    sharpe = _finite(merged.get("backtest_sharpe"))
    hold = yardstick.value("backtest_buy_and_hold_sharpe") if yardstick is not None else None
    known = shown != "—" and sharpe is not None and hold is not None
    delta = t("yard.delta_hold", diff=f"{sharpe - hold:+.2f}") if known else None
    st.metric("backtest_sharpe", shown, delta=delta, help=t("sharpe.help"))
    if not (yardstick is not None and yardstick.too_few_trades):  # else "too few trades" is said below
        st.caption(fmt_sharpe(merged))
    st.caption(t("yard.hold", value=f"{hold:.2f}" if hold is not None else "—"))
    _trades_caption(yardstick)


def _return_tile(metrics: Mapping[str, Any], yardstick: Yardstick | None) -> None:
    value = _value("backtest_total_return", metrics, yardstick)
    hold = yardstick.value("backtest_buy_and_hold_total_return") if yardstick is not None else None
    few = yardstick is not None and bool(yardstick.too_few_trades)
    known = value is not None and hold is not None and not few
    delta = t("yard.delta_hold_pp", diff=f"{(value - hold) * 100:+.2f}") if known else None
    st.metric("backtest_total_return", _percent(value), delta=delta, help=t("yard.return_help"))
    st.caption(t("yard.hold", value=_percent(hold)))
    _trades_caption(yardstick)


# -- the versions table --------------------------------------------------------------------------


def data_mark(yardstick: Yardstick | None, reference: Yardstick | None, reference_version: int | None) -> str:
    """How a version's test data compares with the reference version's (production, else the newest)."""
    if yardstick is None or yardstick.data_hash is None:
        return "—"
    rows = yardstick.test_rows if yardstick.test_rows is not None else "—"
    if reference is None or reference_version is None or yardstick.run_id == reference.run_id:
        return t("yard.data.reference", rows=rows)
    same = yardstick.same_data(reference)
    if same is None:
        return "—"
    if same:
        return t("yard.data.same", ref=reference_version)
    return t("yard.data.other", rows=rows, ref=reference_version)


def version_description(version: ModelVersionPublic) -> str:
    """What a version is, in the page's language, from its tags (the recorded description is English)."""
    tags = version.tags
    family = tags.get("model_family") or "—"
    data = " ".join(x for x in (tags.get("symbol"), tags.get("timeframe")) if x) or "—"
    mode = tags.get("training_mode") or ""
    how = t(f"yard.mode.{mode}") if has_text(f"yard.mode.{mode}") else (mode or "—")
    trigger = tags.get("trigger")
    if trigger and has_text(f"trigger.{trigger}"):
        how = f"{how} ({t(f'trigger.{trigger}')})"
    return t("yard.description", family=family, data=data, how=how)


def fmt_actor(actor: str | None) -> str:
    """Who decided, in the page's language: ``auto`` -> "автоматически после обучения"..."""
    if not actor:
        return "—"
    if has_text(f"yard.actor.{actor}"):
        return t(f"yard.actor.{actor}")
    if actor.startswith("retraining:"):
        trigger = actor.split(":", 1)[1]
        what = t(f"trigger.{trigger}") if has_text(f"trigger.{trigger}") else trigger
        return t("yard.actor.retraining", trigger=what)
    return actor
