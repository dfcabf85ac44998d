"""The search's objective without peeking: walk-forward validation folds before a final holdout.

The candles of every series are cut at one time: everything from the last ``holdout_frac`` of the
time range (by window end) is the **holdout**; the search sees only window ends that lie a purge
gap (window + horizon candles) before it. A trial is scored on walk-forward folds of that search
region (the folds' test windows are the search's validation data); the holdout is read once per
study, for the best trial, by :meth:`SearchData.read_holdout` (a second read raises
:class:`HoldoutAlreadyRead`; :attr:`SearchData.holdout_reads` counts them).

Per trial the objective (:func:`evaluate_trial`) fits the family on each fold's train windows
(early stopping on the fold's validation tail). Through the trainer's epoch callback
(:class:`EpochPruning`) it reports each epoch's validation metric to Optuna at step
``fold * STEP_STRIDE + epoch``, and the running mean of the fold scores at the last step of each
fold, so a median or Hyperband pruner can stop a poor trial inside its first epochs; it keeps
the per-bar net returns of its out-of-sample signals under the policy (for the Deflated Sharpe
Ratio and the Probability of Backtest Overfitting across trials).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from ..data.candles import CandleSeries
    from ..features import FeatureConfig
    from ..signal_policy import SignalPolicy
    from ..walk_forward import FeatureTable, Fold
    from ._space import TrialParams

__all__ = [
    "OBJECTIVES",
    "STEP_STRIDE",
    "EpochPruning",
    "HoldoutAlreadyRead",
    "HoldoutScore",
    "SearchData",
    "TrialScore",
    "evaluate_trial",
]

#: Objective name -> (direction, what it is).
OBJECTIVES: dict[str, tuple[str, str]] = {
    "accuracy": ("maximize", "mean accuracy over the validation folds"),
    "f1_macro": ("maximize", "mean macro F1 over the validation folds"),
    "log_loss": ("minimize", "mean log loss over the validation folds"),
    "net_return": ("maximize", "mean net return per bar after fees over the validation folds"),
}


#: Optuna step of epoch ``e`` of fold ``k``: ``k * STEP_STRIDE + e``; the fold's score is reported at
#: ``k * STEP_STRIDE + STEP_STRIDE - 1`` (LightGBM's "epochs" are boosting rounds: a stride above any).
STEP_STRIDE = 100_000

#: The trainer's per-epoch metric a pruner watches for each objective (same direction as the objective);
#: the net return has no per-epoch counterpart, so its trials are watched on validation accuracy.
EPOCH_METRIC: dict[str, str] = {
    "accuracy": "val_accuracy",
    "f1_macro": "val_f1",
    "log_loss": "val_loss",
    "net_return": "val_accuracy",
}


class EpochPruning:
    """Trainer callback: report each epoch's validation metric to the Optuna trial and stop a trial the
    pruner gives up on (``optuna.TrialPruned`` from inside the fit, after the epoch)."""

    def __init__(self, trial: optuna.Trial, objective: str, fold_index: int) -> None:
        self.trial, self.fold_index = trial, int(fold_index)
        self.key = EPOCH_METRIC[objective]
        self.trainer: Any = None
        self.reported = 0

    def on_train_start(self, trainer: Any) -> None:
        self.trainer = trainer

    def on_epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None:
        import math

        import optuna

        value = metrics.get(self.key, metrics.get("val_accuracy"))
        if value is None or not math.isfinite(float(value)):
            return
        epoch = min(int(epoch), STEP_STRIDE - 2)
        self.trial.report(float(value), step=self.fold_index * STEP_STRIDE + epoch)
        self.reported += 1
        if self.trial.should_prune():
            if self.trainer is not None:
                self.trainer.stop_training = True
            raise optuna.TrialPruned(f"pruned at epoch {epoch} of fold {self.fold_index + 1}")


def _can_prune(trial: optuna.Trial) -> bool:
    """Whether the study's pruner can stop a trial: with ``NopPruner`` (pruner "none") the per-epoch
    reports would only cost a storage write each (~4.5 ms on PostgreSQL); the fold-level report stays."""
    import optuna

    return not isinstance(getattr(getattr(trial, "study", None), "pruner", None), optuna.pruners.NopPruner)


class HoldoutAlreadyRead(RuntimeError):
    """The final holdout of a study is evaluated once; a second read would be peeking."""


@dataclass(frozen=True)
class TrialScore:
    """One trial: the objective, each fold's scores, and its out-of-sample net returns by candle row."""

    value: float
    folds: list[dict[str, float]]
    rows: np.ndarray
    """(n,) global candle rows of the validation windows, ascending."""
    net: np.ndarray
    """(n,) net return per bar of the trial's signals at those rows."""
    seconds: float


@dataclass(frozen=True)
class HoldoutScore:
    """The best trial on the final holdout (read once)."""

    metrics: dict[str, float]
    rows: int
    seconds: float


@dataclass
class SearchData:
    """The candles of one study and the cut between the search region and the final holdout."""

    series: Sequence[CandleSeries]
    holdout_frac: float = 0.2
    n_folds: int = 3
    feature_config: FeatureConfig | None = None
    holdout_reads: int = 0
    _tables: dict[tuple[Any, ...], FeatureTable] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.holdout_frac < 0.9:
            raise ValueError(f"holdout_frac must be in (0, 0.9), got {self.holdout_frac}")
        if self.n_folds < 1:
            raise ValueError(f"n_folds must be >= 1, got {self.n_folds}")

    def table(self, window: int, labels: dict[str, Any]) -> FeatureTable:
        """Features and labels for ``window`` and label fields, built once per combination."""
        from ..features import FeatureConfig
        from ..labels import LabelConfig
        from ..walk_forward import build_feature_table

        key = (int(window), tuple(sorted(labels.items())))
        if key not in self._tables:
            self._tables[key] = build_feature_table(
                list(self.series), self.feature_config or FeatureConfig(), LabelConfig(**labels), int(window)
            )
        return self._tables[key]

    def cut(self, table: FeatureTable) -> tuple[np.ndarray, np.ndarray]:
        """(search ends, holdout ends): holdout = window ends in the last ``holdout_frac`` of the time
        range; search = ends at least a purge gap (window + horizon candles) before that time."""
        ends = np.sort(table.ends)
        t = table.times_ns[ends]
        t0, t1 = int(t.min()), int(t.max())
        boundary = t1 - self.holdout_frac * (t1 - t0)
        gap_ns = (table.window + table.horizon) * table.bar_ns
        holdout = ends[t >= boundary]
        search = ends[t < boundary - gap_ns]
        if holdout.size == 0 or search.size == 0:
            raise ValueError(
                f"the data is too short for a holdout of {self.holdout_frac:.0%}: "
                f"{search.size} search and {holdout.size} holdout windows"
            )
        return search, holdout

    def folds(self, table: FeatureTable) -> list[Fold]:
        from ..walk_forward import WalkForwardConfig, make_folds

        search, _ = self.cut(table)
        wf = WalkForwardConfig(n_folds=self.n_folds)
        return make_folds(
            search,
            table.series_id,
            table.times_ns,
            wf.n_folds,
            gap=wf.resolve_gap(table.window, table.horizon),
            bar_ns=table.bar_ns,
            mode=wf.mode,
            initial_train_frac=wf.initial_train_frac,
            val_frac=wf.val_frac,
            min_train_samples=wf.min_train_samples,
            min_test_samples=wf.min_test_samples,
        )

    def read_holdout(
        self, params: TrialParams, trainer: dict[str, Any], policy: SignalPolicy, *, default_window: int
    ) -> HoldoutScore:
        """Fit ``params`` on the whole search region (its last 15% as validation) and score the
        holdout, once per study."""
        from ..walk_forward import Fold

        if self.holdout_reads:
            raise HoldoutAlreadyRead("the final holdout of this study was read already; reading it again is peeking")
        self.holdout_reads += 1
        t0 = time.perf_counter()
        table = self.table(params.window or default_window, params.labels)
        search, holdout = self.cut(table)
        t = table.times_ns[search]
        val = search[t >= np.quantile(t, 0.85)]
        train = search[t < table.times_ns[val].min() - (table.window + table.horizon) * table.bar_ns]
        fold = Fold(index=0, train=train, val=val, test=holdout, gap=table.window + table.horizon)
        scores, _rows, _net = _fit_and_score(params, trainer, policy, table, fold, callbacks=())
        return HoldoutScore(metrics=scores, rows=int(holdout.size), seconds=time.perf_counter() - t0)


def evaluate_trial(
    data: SearchData,
    params: TrialParams,
    *,
    objective: str = "accuracy",
    trainer: dict[str, Any] | None = None,
    policy: SignalPolicy | None = None,
    default_window: int = 60,
    trial: optuna.Trial | None = None,
    callbacks: Sequence[Any] = (),
    on_fold: Callable[[int, dict[str, float]], None] | None = None,
    fold_callbacks: Callable[[int], Sequence[Any]] | None = None,
) -> TrialScore:
    """Score ``params`` on the walk-forward validation folds of the search region (never the holdout).

    With ``trial``, each epoch's validation metric is reported (:class:`EpochPruning`), the running
    mean after each fold, and ``optuna.TrialPruned`` is raised when the study's pruner says so.
    ``fold_callbacks(k)``: more trainer callbacks for fold ``k`` (e.g. per-epoch logging)."""
    from ..signal_policy import SignalPolicy

    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of: {', '.join(OBJECTIVES)}")
    t0 = time.perf_counter()
    policy = policy or SignalPolicy()
    table = data.table(params.window or default_window, params.labels)
    folds = data.folds(table)
    fold_scores: list[dict[str, float]] = []
    rows_all, net_all = [], []
    for fold in folds:
        extra = list(fold_callbacks(fold.index)) if fold_callbacks is not None else []
        if trial is not None and _can_prune(trial):
            extra.append(EpochPruning(trial, objective, fold.index))
        scores, rows, net = _fit_and_score(
            params, {**(trainer or {}), **params.trainer}, policy, table, fold, [*callbacks, *extra]
        )
        fold_scores.append(scores)
        rows_all.append(rows)
        net_all.append(net)
        if on_fold is not None:
            on_fold(fold.index, scores)
        if trial is not None:
            import optuna

            step = fold.index * STEP_STRIDE + STEP_STRIDE - 1
            trial.report(float(np.mean([s[objective] for s in fold_scores])), step=step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after fold {fold.index + 1}/{len(folds)}")
    rows_cat = np.concatenate(rows_all)
    order = np.argsort(rows_cat, kind="stable")
    return TrialScore(
        value=float(np.mean([s[objective] for s in fold_scores])),
        folds=fold_scores,
        rows=rows_cat[order],
        net=np.concatenate(net_all)[order],
        seconds=time.perf_counter() - t0,
    )


def _fit_and_score(
    params: TrialParams,
    trainer: dict[str, Any],
    policy: SignalPolicy,
    table: FeatureTable,
    fold: Fold,
    callbacks: Sequence[Any],
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Fit on the fold's train windows, score its test windows: metrics, rows, net returns per bar."""
    from .. import evaluation
    from ..families import get_family
    from ..trainer import TrainerConfig
    from ..walk_forward import fold_datasets

    family = get_family(params.family)
    config = family.make_config(dict(params.model_options), n_features=len(table.feature_names), window=table.window)
    tcfg = dataclasses.replace(TrainerConfig(), checkpoint_dir=None, **trainer)
    train_ds, val_ds, test_ds, _ = fold_datasets(table, fold)
    counter = _EpochCount()
    fitted = family.fit(config, train_ds, val_ds, tcfg, callbacks=[*callbacks, counter])
    proba = fitted.predict_proba(test_ds)
    rows = fold.test
    y = table.y[rows]
    cls = evaluation.classification_metrics(y, proba.argmax(axis=1))
    run_ids = table.series_id[rows].astype(np.int64) * 1_000_000 + table.segment[rows]
    bt = evaluation.backtest(
        None,
        table.close[rows],
        run_ids,
        fee=policy.fee,
        slippage=policy.slippage,
        timeframe=table.timeframe,
        open_=table.open[rows],
        positions=policy.positions(proba),
    )
    net = evaluation.net_returns(bt)
    if net.shape != rows.shape:  # pragma: no cover - backtest keeps one net return per row, in row order
        raise RuntimeError(f"{net.size} net returns for {rows.size} windows")
    scores = {
        "accuracy": float(cls["accuracy"]),
        "f1_macro": float(cls["f1_macro"]),
        "log_loss": evaluation.probability_metrics(y, proba)["log_loss"],
        "net_return": float(net.mean()) if net.size else 0.0,
        "n_trades": float(bt["n_trades"]),
        "windows": float(rows.size),
        "epochs": float(counter.epochs),
    }
    return scores, np.asarray(rows, dtype=np.int64), net


class _EpochCount:
    """Trainer callback: how many epochs a fit ran (0 for the tabular families, which have none)."""

    def __init__(self) -> None:
        self.epochs = 0

    def on_epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None:
        self.epochs += 1
