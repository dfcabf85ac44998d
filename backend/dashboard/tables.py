"""The tables of the run pages (Эксперименты и запуски, Сравнение): pure functions, runs in, pandas
frames out, so tests check them without a browser.

* :func:`fmt_metric`: a metric as text, counts (rows, trades, bars, epochs) as integers, not ``129.0000``.
* :func:`runs_frame`: the runs table, key columns first (run, status, test accuracy and F1, the backtest
  Sharpe with its trades, start time), what else the user picks after them.
* :func:`metric_groups`: a run's metrics in groups (test beside the naive baselines, the backtest beside
  buy-and-hold, training and validation, walk-forward, other) instead of one alphabetical list.
* :func:`meaningful_differences`: which rows of a comparison differ by more than
  :data:`REL_DIFF_THRESHOLD` (relative), wall-clock times left out.
* :func:`data_fingerprint` / :func:`different_data`: what data each run was tested on, and where runs
  differ there (their metrics are then not comparable).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from backend.services.schemas import RunPublic

from .i18n import t
from .widgets import fmt_duration, fmt_num, fmt_sharpe, fmt_time

__all__ = [
    "DATA_KEYS",
    "FALLBACK_METRICS",
    "KEY_METRICS",
    "METRIC_GROUPS",
    "NOISE_SUFFIXES",
    "REL_DIFF_THRESHOLD",
    "MetricGroup",
    "data_fingerprint",
    "different_data",
    "fmt_metric",
    "is_count",
    "key_metric_columns",
    "meaningful_differences",
    "metric_groups",
    "runs_frame",
]

# -- counts ----------------------------------------------------------------------------------

#: A metric is a count when its last word is one of these (``backtest_n_bars``, ``best_epoch``,
#: ``walk_forward_folds``, ``drift_recent_rows``, ``backtest_periods_per_year``)...
_COUNT_LAST = frozenset({"n", "epoch", "epochs", "folds", "rows", "bars", "trades", "features", "series", "year"})
#: ... or it holds one of these words before its last (``test_n``, ``wf_backtest_n_trades``, ``test_support_up``)...
_COUNT_WORDS = frozenset({"n", "support"})
#: ... unless its last word says otherwise (``epoch_seconds`` is a duration).
_NOT_COUNT_LAST = frozenset({"seconds", "share", "rate", "ratio", "std"})


def is_count(key: str) -> bool:
    """Does the metric ``key`` count things (rows, trades, bars, epochs, folds...)?"""
    words = key.split("_")
    if words[-1] in _NOT_COUNT_LAST:
        return False
    return words[-1] in _COUNT_LAST or bool(_COUNT_WORDS & set(words[:-1]))


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def fmt_metric(key: str, value: Any, digits: int = 4) -> str:
    """A metric's value as text: a count that is a whole number as an integer (``129``), anything else as
    :func:`~backend.dashboard.widgets.fmt_num` writes it (``0.3396``); missing or not finite: ``—``."""
    number = _finite(value)
    if number is None:
        return "—"
    if is_count(key) and number.is_integer():
        return str(int(number))
    return fmt_num(number, digits)


# -- the runs table --------------------------------------------------------------------------

#: The metrics a trader looks at first, in this order, right after the run and its status.
KEY_METRICS: tuple[str, ...] = ("test_accuracy", "test_f1_macro", "backtest_sharpe")
#: Shown instead when no run of the page has any key metric (e.g. runs that only validated).
FALLBACK_METRICS: tuple[str, ...] = ("val_accuracy", "val_f1")


def key_metric_columns(runs: Sequence[RunPublic]) -> list[str]:
    """The key metrics some run of ``runs`` has (else the fallback ones it has)."""
    present = {k for r in runs for k in r.metrics}
    keys = [k for k in KEY_METRICS if k in present]
    return keys or [k for k in FALLBACK_METRICS if k in present]


def _metric_column(key: str, values: list[Any]) -> Any:
    """A metric column that sorts as numbers: integers for counts (``Int64``), floats otherwise."""
    numbers = [_finite(v) for v in values]
    if is_count(key) and all(n is None or n.is_integer() for n in numbers):
        return pd.array([None if n is None else int(n) for n in numbers], dtype="Int64")
    return pd.array(numbers, dtype="Float64")


def runs_frame(
    runs: Sequence[RunPublic],
    metric_cols: Iterable[str] = (),
    param_cols: Iterable[str] = (),
    *,
    details: bool = False,
) -> pd.DataFrame:
    """The runs table: run, status, the key metrics (:func:`key_metric_columns`; the Sharpe with its
    trades and interval, or "too few trades"), start time; then, on demand, the duration and run id
    (``details``) and the picked metrics (``metrics.<name>``) and params (``params.<name>``)."""
    keys = key_metric_columns(runs)
    data: dict[str, Any] = {
        t("col.run_name"): [r.run_name or r.run_id[:12] for r in runs],
        t("col.status"): [t(f"run.status.{r.status}") for r in runs],
    }
    for key in keys:
        if key == "backtest_sharpe":
            data[key] = [fmt_sharpe(r.metrics) if r.metrics.get(key) is not None else "—" for r in runs]
        else:
            data[key] = _metric_column(key, [r.metrics.get(key) for r in runs])
    data[t("col.started")] = [fmt_time(r.start_time) for r in runs]
    if details:
        data[t("col.duration")] = [fmt_duration(r.start_time, r.end_time) for r in runs]
    for key in metric_cols:
        if key not in keys:
            data[f"metrics.{key}"] = _metric_column(key, [r.metrics.get(key) for r in runs])
    for key in param_cols:
        data[f"params.{key}"] = [r.params.get(key, "—") for r in runs]
    if details:
        data[t("col.run_id")] = [r.run_id for r in runs]
    return pd.DataFrame(data)


# -- a run's metrics in groups ---------------------------------------------------------------


@dataclass(frozen=True)
class MetricGroup:
    """Metrics starting with one of ``prefixes`` (the longest matching prefix of all groups decides).
    A ``pivot`` group has one column per prefix and one row per name after it, so a model's number
    stands beside its yardstick (``test_accuracy`` beside ``baseline_majority_accuracy``); the others
    list the metrics. ``first``: rows shown first (the rest alphabetically)."""

    id: str
    prefixes: tuple[str, ...]
    pivot: bool = False
    first: tuple[str, ...] = ()


METRIC_GROUPS: tuple[MetricGroup, ...] = (
    MetricGroup(
        "test",
        ("test_", "baseline_majority_", "baseline_previous_direction_"),
        pivot=True,
        first=("accuracy", "f1_macro", "log_loss", "brier", "ece", "n"),
    ),
    MetricGroup(
        "backtest",
        ("backtest_", "backtest_buy_and_hold_"),
        pivot=True,
        first=("sharpe", "sharpe_low", "sharpe_high", "total_return", "max_drawdown", "n_trades", "n_bars", "win_rate"),
    ),
    MetricGroup(
        "validation",
        ("val_", "best_val_", "best_epoch", "train_", "learning_rate", "epoch_seconds"),
        first=("val_accuracy", "val_f1", "val_loss", "train_loss", "best_epoch", "best_val_f1"),
    ),
    MetricGroup(
        "walk_forward",
        ("walk_forward_", "wf_"),
        first=("walk_forward_folds", "walk_forward_accuracy_mean", "walk_forward_f1_macro_mean"),
    ),
    MetricGroup("other", ()),
)


def _group_of(key: str) -> tuple[MetricGroup, str]:
    """The group of metric ``key`` and its longest matching prefix ("" for the other group)."""
    best: tuple[MetricGroup, str] = (METRIC_GROUPS[-1], "")
    for group in METRIC_GROUPS:
        for prefix in group.prefixes:
            if key.startswith(prefix) and len(prefix) > len(best[1]):
                best = (group, prefix)
    return best


def _ordered(names: Iterable[str], first: Sequence[str]) -> list[str]:
    names = set(names)
    return [n for n in first if n in names] + sorted(names - set(first))


def metric_groups(
    metrics: Mapping[str, Any], points: Mapping[str, int] | None = None
) -> list[tuple[MetricGroup, pd.DataFrame]]:
    """A run's metrics as one table per non-empty group of :data:`METRIC_GROUPS`, in that order. Values
    are text (:func:`fmt_metric`: counts as integers, ``—`` where a prefix has no such metric); list
    groups also say how many points each metric's history has (``points``)."""
    members: dict[str, dict[str, str]] = {g.id: {} for g in METRIC_GROUPS}  # key -> prefix
    for key in metrics:
        group, prefix = _group_of(key)
        members[group.id][key] = prefix
    out: list[tuple[MetricGroup, pd.DataFrame]] = []
    for group in METRIC_GROUPS:
        keys = members[group.id]
        if not keys:
            continue
        if group.pivot:
            suffixes = _ordered({k[len(p) :] for k, p in keys.items()}, group.first)
            columns = [p for p in group.prefixes if p in keys.values()]
            frame = pd.DataFrame(
                {
                    t("col.metric"): suffixes,
                    **{f"{p}…": [fmt_metric(p + s, metrics.get(p + s)) for s in suffixes] for p in columns},
                }
            )
        else:
            names = _ordered(keys, group.first)
            data: dict[str, Any] = {
                t("col.metric"): names,
                t("col.value"): [fmt_metric(k, metrics.get(k)) for k in names],
            }
            if points is not None:
                data[t("col.points")] = [int(points.get(k, 0)) for k in names]
            frame = pd.DataFrame(data)
        out.append((group, frame))
    return out


# -- comparison ------------------------------------------------------------------------------

#: A row of the comparison is highlighted when its values differ by more than this share of the larger
#: magnitude: 0.05 = 5 %; a test accuracy of 0.339 against 0.346 (2 %) is noise on a few hundred windows.
REL_DIFF_THRESHOLD = 0.05
#: Metrics that differ between any two runs and say nothing about the model: wall-clock times.
NOISE_SUFFIXES: tuple[str, ...] = ("_seconds",)


def _differs(values: list[Any], threshold: float) -> bool:
    if all(v is None for v in values):
        return False
    if any(v is None for v in values):
        return False  # recorded by some runs only (walk-forward metrics of a retraining): nothing to weigh
    numbers = [_finite(v) for v in values]
    if all(n is not None for n in numbers):
        low, high = min(numbers), max(numbers)  # type: ignore[type-var]
        scale = max(abs(low), abs(high))  # type: ignore[arg-type]
        return scale > 0 and (high - low) / scale > threshold  # type: ignore[operator]
    return len({str(v) for v in values}) > 1  # text (or NaN beside a number): any difference counts


def meaningful_differences(
    values: Mapping[str, Mapping[str, Any]], threshold: float = REL_DIFF_THRESHOLD
) -> dict[str, bool]:
    """For each key of any run (``values``: column -> key -> value): do the runs differ there in a way
    that matters? Numbers (numeric params too) when ``(max - min) / max(|min|, |max|) > threshold``; text
    when it is not the same. Never: a value only some runs recorded (a retraining's walk-forward metrics
    beside a training: shown with "—", nothing to weigh), wall-clock times (:data:`NOISE_SUFFIXES`)."""
    keys = sorted({k for v in values.values() for k in v})
    out: dict[str, bool] = {}
    for key in keys:
        if key.endswith(NOISE_SUFFIXES):
            out[key] = False
            continue
        out[key] = _differs([v.get(key) for v in values.values()], threshold)
    return out


#: What a run was tested on: (where, name); where is "param" (falling back to the run's tag) or "metric".
#: Not the data source: the same candles may sit under another path (the hash tells them apart).
DATA_KEYS: tuple[tuple[str, str], ...] = (
    ("param", "data_hash"),
    ("param", "data_symbols"),
    ("param", "data_timeframe"),
    ("param", "data_date_range_days"),
    ("param", "data_rows_train"),
    ("param", "data_rows_val"),
    ("param", "data_rows_test"),
    ("metric", "test_n"),
    ("metric", "backtest_n_bars"),
)


def data_fingerprint(run: RunPublic) -> dict[str, str]:
    """The data ``run`` was trained and tested on, as far as it recorded it (names of :data:`DATA_KEYS`)."""
    out: dict[str, str] = {}
    for where, name in DATA_KEYS:
        if where == "param":
            value = run.params.get(name) or run.tags.get(name)
            if value:
                out[name] = str(value)
        elif run.metrics.get(name) is not None:
            out[name] = fmt_metric(name, run.metrics[name])
    return out


def different_data(fingerprints: Mapping[str, Mapping[str, str]]) -> list[str]:
    """The names of :data:`DATA_KEYS` on which the runs (column -> :func:`data_fingerprint`) that
    recorded them disagree: a different data hash, other row counts, other symbols..."""
    out = []
    for _, name in DATA_KEYS:
        known = {fp[name] for fp in fingerprints.values() if name in fp}
        if len(known) > 1:
            out.append(name)
    return out
