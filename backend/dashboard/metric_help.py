"""What each metric means, for its tooltip ("?") and the metrics glossary on Справка.

    metric_help("test_accuracy")      # what it measures, on which data, what a good value is
    explain("baseline_majority_f1_up") # MetricHelp(measure="f1_class", split="baseline_majority", cls="up")

A metric key is read as ``<split prefix><measure>``: ``test_`` / ``val_`` / ``train_`` / ``batch_``,
``baseline_majority_`` / ``baseline_previous_direction_``, ``backtest_`` / ``backtest_buy_and_hold_``,
``walk_forward_..._mean|_std`` / ``wf_`` (retraining; ``..._production_...`` the same folds scored by
production, ``walk_forward_delta_...`` candidate minus production), ``recent_`` (live labels), ``production_``;
drift (``psi``, ``ks_*``, ``drift_*``) and tuning (``dsr``, ``pbo``) keys have their own data. The
guide's names (``accuracy``, ``test_f1``) say which project key they repeat. Every text comes from
:mod:`.i18n` (``metric.what.*``, ``metric.good.*``, ``metric.split.*``); a key nothing here knows gets
the generic glossary entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from backend.ml_engine.evaluation import MIN_TRADES

from .i18n import t

__all__ = ["GLOSSARY_METRICS", "MEASURES", "SPLITS", "MetricHelp", "explain", "metric_help", "metric_row"]

#: The guide's metric names and the project keys they repeat (``training._outcome.GUIDE_METRIC_ALIASES``).
GUIDE_ALIASES: dict[str, str] = {"accuracy": "test_accuracy", "test_f1": "test_f1_macro"}
#: Measures with a text (``metric.what.<m>``, ``metric.good.<m>``).
MEASURES: tuple[str, ...] = (
    "accuracy",
    "f1_macro",
    "f1_class",
    "precision_class",
    "recall_class",
    "support_class",
    "n",
    "loss",
    "brier",
    "ece",
    "sharpe",
    "sharpe_low",
    "sharpe_high",
    "total_return",
    "max_drawdown",
    "n_trades",
    "win_rate",
    "exposure",
    "fee",
    "slippage",
    "n_bars",
    "n_series",
    "periods_per_year",
    "best_epoch",
    "best",
    "learning_rate",
    "seconds",
    "folds",
    "coverage",
    "rows",
    "psi",
    "ks_statistic",
    "ks_pvalue",
    "drift_share",
    "drift_features",
    "dsr",
    "psr",
    "pbo",
)
#: The data a metric is computed on (``metric.split.<s>``).
SPLITS: tuple[str, ...] = (
    "test",
    "val",
    "train",
    "batch",
    "baseline_majority",
    "baseline_previous_direction",
    "backtest",
    "buy_and_hold",
    "walk_forward",
    "recent",
    "production",
    "drift",
    "tuning",
    "none",
)
#: Key prefixes and their data, longest first.
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("baseline_previous_direction_", "baseline_previous_direction"),
    ("baseline_majority_", "baseline_majority"),
    ("backtest_buy_and_hold_", "buy_and_hold"),
    ("walk_forward_", "walk_forward"),
    ("test_backtest_", "backtest"),
    ("backtest_", "backtest"),
    ("production_", "production"),
    ("recent_", "recent"),
    ("batch_", "batch"),
    ("train_", "train"),
    ("test_", "test"),
    ("val_", "val"),
    ("wf_", "walk_forward"),
)
#: A measure's own data when its key has no prefix.
_OWN_SPLIT: dict[str, str] = {
    "psi": "drift",
    "ks_statistic": "drift",
    "ks_pvalue": "drift",
    "drift_share": "drift",
    "drift_features": "drift",
    "rows": "drift",
    "dsr": "tuning",
    "psr": "tuning",
    "pbo": "tuning",
    "learning_rate": "train",
    "best_epoch": "val",
    "seconds": "none",
    "folds": "walk_forward",
}
#: Other spellings of a measure.
_SYNONYMS: dict[str, str] = {
    "f1": "f1_macro",
    "log_loss": "loss",
    "samples": "n",
    "ks": "ks_statistic",
    "ks_stat": "ks_statistic",
    "ks_p": "ks_pvalue",
    "drift_reference_rows": "rows",
    "drift_recent_rows": "rows",
}
_CLASS = re.compile(r"^(f1|precision|recall|support)_(up|down|flat)$")
#: The metrics explained on Справка, in reading order (test, baselines, backtest, training, retraining,
#: drift, tuning).
GLOSSARY_METRICS: tuple[str, ...] = (
    "test_accuracy",
    "accuracy",
    "test_f1_macro",
    "test_f1",
    "test_f1_up",
    "test_precision_up",
    "test_recall_up",
    "test_support_up",
    "test_n",
    "test_log_loss",
    "test_brier",
    "test_ece",
    "baseline_majority_accuracy",
    "baseline_previous_direction_accuracy",
    "baseline_majority_f1_macro",
    "backtest_sharpe",
    "backtest_sharpe_low",
    "backtest_total_return",
    "backtest_buy_and_hold_total_return",
    "backtest_max_drawdown",
    "backtest_n_trades",
    "backtest_win_rate",
    "backtest_exposure",
    "train_loss",
    "val_loss",
    "val_accuracy",
    "val_f1",
    "best_epoch",
    "best_val_f1",
    "walk_forward_accuracy_mean",
    "walk_forward_f1_macro_std",
    "recent_accuracy",
    "psi",
    "ks_pvalue",
    "drift_share",
    "dsr",
    "pbo",
)


@dataclass(frozen=True)
class MetricHelp:
    """How a metric key reads: its measure, the data it is computed on, the class of a per-class metric,
    the walk-forward statistic (``mean`` / ``std`` / ``delta``), the monitored metric of ``best_*`` and the project
    key a guide's name repeats."""

    key: str
    measure: str
    split: str
    cls: str = ""
    stat: str = ""
    monitor: str = ""
    alias_of: str = ""


def explain(key: str) -> MetricHelp | None:
    """``key`` as :class:`MetricHelp`; None for a key no text here describes."""
    alias_of = GUIDE_ALIASES.get(key, "")
    name = alias_of or key
    stat = ""
    split = ""
    for suffix in ("_mean", "_std"):
        if name.startswith("walk_forward_") and name.endswith(suffix):
            name, stat = name[: -len(suffix)], suffix[1:]
    if name.startswith("best_") and name != "best_epoch":
        return MetricHelp(key, "best", "val", monitor=name[len("best_") :], alias_of=alias_of)
    rest = name
    for prefix, where in _PREFIXES:
        if name.startswith(prefix):
            rest, split = name[len(prefix) :], where
            break
    if split == "walk_forward" and rest.startswith("production_"):  # the same folds scored by production
        rest, split = rest[len("production_") :], "production"
    elif split == "walk_forward" and rest.startswith("delta_"):  # candidate minus production
        rest, stat = rest[len("delta_") :], "delta"
    if split in ("walk_forward", "production") and rest.startswith("backtest_"):
        rest = rest[len("backtest_") :]
    rest = _SYNONYMS.get(rest, rest)
    if rest.endswith("seconds"):
        rest = "seconds"
    cls = ""
    m = _CLASS.match(rest)
    if m:
        rest, cls = f"{m.group(1)}_class", m.group(2)
    if rest not in MEASURES:
        return None
    split = split or _OWN_SPLIT.get(rest, "none")
    return MetricHelp(key, rest, split, cls=cls, stat=stat, alias_of=alias_of)


def _parts(h: MetricHelp, lang: str | None) -> tuple[str, str, str]:
    cls = t(f"metric.class.{h.cls}", lang) if h.cls else ""
    what = t(f"metric.what.{h.measure}", lang, cls=cls, monitor=h.monitor, min_trades=MIN_TRADES)
    if h.stat:
        what += " " + t(f"metric.stat.{h.stat}", lang)
    if h.alias_of:
        what += " " + t("metric.alias", lang, target=h.alias_of)
    good = t(f"metric.good.{h.measure}", lang, cls=cls, monitor=h.monitor, min_trades=MIN_TRADES)
    if h.stat in ("std", "delta"):
        good = t(f"metric.good.{h.stat}", lang)
    return what, t(f"metric.split.{h.split}", lang), good


def metric_help(key: str, lang: str | None = None) -> str:
    """The tooltip of metric ``key``: what it measures, on which data, what a good value is (markdown)."""
    h = explain(key)
    if h is None:
        return f"**{t('glossary.metric.term', lang)}**: {t('glossary.metric.desc', lang)}"
    what, split, good = _parts(h, lang)
    return t("metric.help", lang, name=key, what=what, split=split, good=good)


def metric_row(key: str, lang: str | None = None) -> dict[str, str]:
    """One row of the metrics glossary: ``key``, ``what``, ``split``, ``good``."""
    h = explain(key)
    if h is None:
        return {"key": key, "what": t("glossary.metric.desc", lang), "split": "—", "good": "—"}
    what, split, good = _parts(h, lang)
    return {"key": key, "what": what, "split": split, "good": good}
