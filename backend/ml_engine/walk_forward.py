"""Walk-forward validation: K chronological folds, features computed once, purged train/test gaps.

Layout
------
`build_feature_table` computes features and labels of every series ONCE (the same
`build_feature_matrix` / `make_labels` code as `dataset.prepare_dataset`) and keeps the raw
(un-normalised) matrix and every valid window end. `make_folds` (pure) then only chooses window
END rows for each fold; `fold_datasets` refits the `Normalizer` on the rows covered by the fold's
train windows (one pass over those rows, milliseconds) and normalises a copy of X. So a K-fold
walk-forward costs one feature build plus K trainings (``bench/bench_walk_forward.py``).

Folds
-----
The time axis of all valid ends (all series together) is cut at ``initial_train_frac``; the part
after the cut is divided into ``n_folds`` equal test blocks. Fold k tests on block k and trains on

* ``expanding``: everything from the start up to block k;
* ``sliding``: a window of the same length as the first fold's training period, ending at block k.

Purge: a training (or validation) end ``t`` is kept only if its label horizon and the test
windows cannot share a row: ``time(t) <= first test time - gap bars`` and, per series,
``t <= first test row of that series - gap`` with ``gap >= window + horizon`` rows. A test window
``[e - window + 1, e]`` with ``e - t >= window + horizon`` starts after row ``t + horizon``, the
last row label ``t`` looked at. Walk-forward never trains on data after its test block, so no
embargo after the test block is needed. The last ``val_frac`` of each fold's training period
is the validation set for early stopping, purged from the training part the same way.

Candidate and production are compared on the same rows: with a `ProductionScores` (the production
model's probabilities for every row it can score, computed once), each fold's metrics of both
models use the fold's test ends that production covers.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from .data.candles import CandleSeries
    from .features import FeatureConfig
    from .labels import LabelConfig
    from .mlflow_integration import MLflowTracker
    from .predictor import Predictor
    from .trainer import Callback, TrainerConfig

logger = logging.getLogger(__name__)

__all__ = [
    "Fold",
    "FoldResult",
    "FeatureTable",
    "ProductionScores",
    "WalkForwardConfig",
    "WalkForwardResult",
    "build_feature_table",
    "check_fold_purged",
    "fold_datasets",
    "fold_metrics",
    "make_folds",
    "run_walk_forward",
    "score_with_predictor",
]

FoldMode = Literal["expanding", "sliding"]
#: Metrics computed per fold (classification on the test windows, backtest with fees).
FOLD_METRICS = (
    "accuracy",
    "f1_macro",
    "backtest_total_return",
    "backtest_sharpe",
    "backtest_max_drawdown",
    "backtest_n_trades",
)


@dataclass(frozen=True)
class WalkForwardConfig:
    """How the timeline is cut into folds."""

    n_folds: int = 5
    """K: number of test blocks (one training per block)."""

    mode: FoldMode = "expanding"
    """'expanding': train from the start up to each test block; 'sliding': a fixed-length
    training window (the first fold's) moving with the test block."""

    initial_train_frac: float = 0.5
    """Share of the timeline before the first test block (the first fold's training period)."""

    val_frac: float = 0.15
    """Last share of each fold's training period used for validation (early stopping)."""

    purge_gap: int | None = None
    """Rows between the last training end and the first test end; None = window + horizon (the
    least that keeps them apart); a smaller value is rejected."""

    min_train_samples: int = 32
    """A fold with fewer training windows is an error (the data is too short for K folds)."""

    min_test_samples: int = 8
    """A fold with fewer test windows is an error."""

    def __post_init__(self) -> None:
        checks = [
            (isinstance(self.n_folds, int) and self.n_folds >= 1, "n_folds must be an int >= 1"),
            (self.mode in ("expanding", "sliding"), "mode must be 'expanding' or 'sliding'"),
            (0 < self.initial_train_frac < 1, "initial_train_frac must be in (0, 1)"),
            (0 < self.val_frac < 1, "val_frac must be in (0, 1)"),
            (
                self.purge_gap is None or (isinstance(self.purge_gap, int) and self.purge_gap >= 0),
                "purge_gap must be None or an int >= 0",
            ),
            (isinstance(self.min_train_samples, int) and self.min_train_samples >= 1, "min_train_samples must be >= 1"),
            (isinstance(self.min_test_samples, int) and self.min_test_samples >= 1, "min_test_samples must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"WalkForwardConfig: {message}, got {self!r}")

    def resolve_gap(self, window: int, horizon: int) -> int:
        minimum = window + horizon
        if self.purge_gap is None:
            return minimum
        if self.purge_gap < minimum:
            raise ValueError(f"WalkForwardConfig.purge_gap={self.purge_gap} is below window + horizon = {minimum}")
        return self.purge_gap

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# folds (pure)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fold:
    """Window END rows (global rows of the feature table) of one fold."""

    index: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    gap: int
    """Purge gap in rows between the last train/val end and the first test end of a series."""

    def describe(self, timestamps: np.ndarray | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "fold": self.index,
            "train": int(self.train.size),
            "val": int(self.val.size),
            "test": int(self.test.size),
            "gap": self.gap,
        }
        if timestamps is not None:
            for name in ("train", "val", "test"):
                rows = getattr(self, name)
                if rows.size:
                    out[f"{name}_start"] = pd.Timestamp(timestamps[rows.min()]).isoformat()
                    out[f"{name}_end"] = pd.Timestamp(timestamps[rows.max()]).isoformat()
        return out


def _purge(
    candidates: np.ndarray, series_id: np.ndarray, times: np.ndarray, later: np.ndarray, gap: int, gap_time: int
) -> np.ndarray:
    """Keep the candidate ends whose distance to every `later` end is at least the gap (rows per
    series, and time across series)."""
    if candidates.size == 0 or later.size == 0:
        return candidates
    keep = times[candidates] <= times[later].min() - gap_time
    for sid in np.unique(series_id[candidates]):
        first = later[series_id[later] == sid]
        if first.size:
            m = series_id[candidates] == sid
            keep[m] &= candidates[m] <= first.min() - gap
    kept: np.ndarray = candidates[keep]
    return kept


def make_folds(
    ends: np.ndarray,
    series_id: np.ndarray,
    times: np.ndarray,
    n_folds: int,
    *,
    gap: int,
    bar_ns: int,
    mode: FoldMode = "expanding",
    initial_train_frac: float = 0.5,
    val_frac: float = 0.15,
    min_train_samples: int = 1,
    min_test_samples: int = 1,
) -> list[Fold]:
    """Walk-forward folds over valid window ends (see the module docstring). Pure.

    Args:
        ends: (m,) valid window end rows (any order; global row numbers).
        series_id: (N,) series of every row; times: (N,) int64 ns timestamp of every row.
        gap: purge gap in rows (>= window + horizon); bar_ns: one candle in ns (time purge).
    Raises ValueError when a fold gets fewer than ``min_train_samples`` / ``min_test_samples`` ends.
    """
    ends = np.sort(np.asarray(ends, dtype=np.int64))
    if ends.size == 0:
        raise ValueError("make_folds: no valid window ends")
    t = np.asarray(times, dtype=np.int64)
    sid = np.asarray(series_id)
    te = t[ends]
    t0, t1 = int(te.min()), int(te.max()) + 1
    cut = t0 + initial_train_frac * (t1 - t0)
    bounds = [cut + k * (t1 - cut) / n_folds for k in range(n_folds + 1)]
    train_len = cut - t0
    gap_time = int(gap) * int(bar_ns)
    folds = []
    for k in range(n_folds):
        lo, hi = bounds[k], bounds[k + 1]
        test = ends[(te >= lo) & (te < hi)] if k < n_folds - 1 else ends[te >= lo]
        start = t0 if mode == "expanding" else lo - train_len
        period = ends[(te >= start) & (te < lo)]
        period = _purge(period, sid, t, test, gap, gap_time)
        if period.size:
            ps, pe = t[period].min(), t[period].max()
            val_start = pe - val_frac * (pe - ps)
            val = period[t[period] >= val_start]
            train = _purge(period[t[period] < val_start], sid, t, val, gap, gap_time)
        else:
            val = train = period
        if train.size < min_train_samples or val.size < 1 or test.size < min_test_samples:
            raise ValueError(
                f"walk-forward fold {k + 1}/{n_folds}: {train.size} train, {val.size} val and {test.size} test "
                f"windows (need >= {min_train_samples} train, >= 1 val, >= {min_test_samples} test): "
                f"the data is too short for {n_folds} folds; use fewer folds or more days"
            )
        folds.append(Fold(index=k, train=train, val=val, test=test, gap=int(gap)))
    return folds


def check_fold_purged(fold: Fold, series_id: np.ndarray, window: int, horizon: int) -> list[str]:
    """Violations of the purge rule in one fold (empty list = clean): per series, every train or
    val end must be >= gap rows before every test end, and the rows a train/val sample touches
    (``t - window + 1 .. t + horizon``) must not meet the rows a test sample touches."""
    problems = []
    sid = np.asarray(series_id)
    for name in ("train", "val"):
        rows = getattr(fold, name)
        for s in np.unique(sid[fold.test]):
            a = rows[sid[rows] == s]
            b = fold.test[sid[fold.test] == s]
            if a.size == 0 or b.size == 0:
                continue
            if b.min() - a.max() < fold.gap:
                problems.append(
                    f"fold {fold.index} series {s}: {name} end {a.max()} is {b.min() - a.max()} rows "
                    f"before test end {b.min()} (gap {fold.gap})"
                )
            if a.max() + horizon >= b.min() - window + 1:
                problems.append(
                    f"fold {fold.index} series {s}: {name} rows up to {a.max() + horizon} meet test "
                    f"rows from {b.min() - window + 1}"
                )
            if np.intersect1d(a, b).size:
                problems.append(f"fold {fold.index} series {s}: {name} and test share ends")
    return problems


# --------------------------------------------------------------------------------------------
# features once
# --------------------------------------------------------------------------------------------


@dataclass
class FeatureTable:
    """Raw features, labels and valid window ends of several series (rows concatenated)."""

    X: np.ndarray
    """(N, F) float32 raw (un-normalised) features; NaN on warm-up rows."""
    y: np.ndarray
    """(N,) int64 labels, -1 where undefined."""
    timestamps: np.ndarray
    """(N,) datetime64[ns] (UTC, naive)."""
    close: np.ndarray
    """(N,) float64 close prices."""
    open: np.ndarray
    """(N,) float64 open prices (backtests fill at the next bar's open)."""
    series_id: np.ndarray
    segment: np.ndarray
    ends: np.ndarray
    """Valid window ends: whole window in one segment, no NaN, label defined."""
    offsets: list[int]
    """First row of each series."""
    symbols: list[str]
    timeframe: str
    window: int
    horizon: int
    feature_names: list[str]
    feature_config: FeatureConfig
    label_config: LabelConfig
    build_seconds: float

    @property
    def times_ns(self) -> np.ndarray:
        return self.timestamps.astype("datetime64[ns]").astype(np.int64)

    @property
    def bar_ns(self) -> int:
        from .data import timeframe_to_timedelta

        return int(timeframe_to_timedelta(self.timeframe).value)


def build_feature_table(
    series_list: Sequence[CandleSeries],
    feature_cfg: FeatureConfig | None = None,
    label_cfg: LabelConfig | None = None,
    window: int = 60,
) -> FeatureTable:
    """Features and labels of every series, computed once (same code as `prepare_dataset`)."""
    from .dataset import valid_window_ends
    from .features import FeatureConfig, build_feature_matrix, feature_names, run_ids
    from .labels import UNDEFINED, LabelConfig, make_labels

    t_start = time.perf_counter()
    feature_cfg = feature_cfg or FeatureConfig()
    label_cfg = label_cfg or LabelConfig()
    if not series_list:
        raise ValueError("build_feature_table: no series given")
    names = feature_names(feature_cfg)
    n_total = int(sum(len(s.frame) for s in series_list))
    X = np.empty((n_total, len(names)), dtype=np.float32)
    y = np.empty(n_total, dtype=np.int64)
    timestamps = np.empty(n_total, dtype="datetime64[ns]")
    close = np.empty(n_total, dtype=np.float64)
    open_ = np.empty(n_total, dtype=np.float64)
    series_id = np.empty(n_total, dtype=np.int32)
    segment = np.empty(n_total, dtype=np.int64)
    ends, offsets = [], []
    offset = 0
    for i, s in enumerate(series_list):
        frame = s.frame
        n = len(frame)
        sl = slice(offset, offset + n)
        X[sl] = build_feature_matrix(frame, feature_cfg)
        seg_col = frame["segment"].to_numpy() if "segment" in frame.columns else None
        labels, _ = make_labels(frame["close"].to_numpy(), label_cfg, segment=seg_col)
        y[sl] = labels
        close[sl] = frame["close"].to_numpy(dtype=np.float64)
        open_[sl] = frame["open"].to_numpy(dtype=np.float64)
        ts = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_localize(None)
        timestamps[sl] = ts.to_numpy().astype("datetime64[ns]")
        series_id[sl] = i
        runs = run_ids(seg_col, n)
        segment[sl] = runs
        ok = valid_window_ends(np.isnan(X[sl]).any(axis=1), runs, window) & (labels != UNDEFINED)
        ends.append(np.flatnonzero(ok).astype(np.int64) + offset)
        offsets.append(offset)
        offset += n
    timeframes = sorted({str(s.timeframe) for s in series_list})
    if len(timeframes) != 1:
        raise ValueError(f"build_feature_table: series have different timeframes {timeframes}")
    table = FeatureTable(
        X=X,
        y=y,
        timestamps=timestamps,
        close=close,
        open=open_,
        series_id=series_id,
        segment=segment,
        ends=np.concatenate(ends),
        offsets=offsets,
        symbols=[str(s.symbol) for s in series_list],
        timeframe=timeframes[0],
        window=int(window),
        horizon=int(label_cfg.horizon),
        feature_names=list(names),
        feature_config=feature_cfg,
        label_config=label_cfg,
        build_seconds=time.perf_counter() - t_start,
    )
    logger.info(
        "feature table: %d rows, %d features, %d valid ends in %.2f s",
        n_total,
        len(names),
        table.ends.size,
        table.build_seconds,
    )
    return table


def _covered_rows(ends: np.ndarray, window: int, n: int) -> np.ndarray:
    diff = np.zeros(n + 1, dtype=np.int64)
    np.add.at(diff, ends - window + 1, 1)
    np.add.at(diff, ends + 1, -1)
    return np.cumsum(diff[:-1]) > 0


def fold_datasets(table: FeatureTable, fold: Fold) -> tuple[Any, Any, Any, Any]:
    """(train, val, test WindowDatasets, Normalizer) of one fold: the normaliser is fitted on the
    rows covered by the fold's train windows and applied to a copy of the raw features."""
    from .dataset import Normalizer, WindowDataset

    covered = _covered_rows(fold.train, table.window, table.X.shape[0])
    norm = Normalizer.fit(table.X, covered, feature_names=table.feature_names)
    Xn = norm.transform(table.X)  # (N, F) copy; NaN rows stay NaN and are never in a window
    return (
        WindowDataset(Xn, table.y, fold.train, table.window),
        WindowDataset(Xn, table.y, fold.val, table.window),
        WindowDataset(Xn, table.y, fold.test, table.window),
        norm,
    )


# --------------------------------------------------------------------------------------------
# metrics and the production model
# --------------------------------------------------------------------------------------------


def fold_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    close: np.ndarray,
    run_ids: np.ndarray,
    fee: float,
    timeframe: str,
    *,
    open_: np.ndarray | None = None,
    slippage: float = 0.0,
) -> dict[str, float]:
    """Accuracy, macro F1 and a backtest with fees (see `evaluation.backtest`) of one fold.

    With ``open_`` (the open of each row's bar) the backtest fills each signal at the next bar's
    open; without it, at the close (the old convention). ``backtest_n_trades`` says how much the
    backtest numbers can be trusted (`evaluation.MIN_TRADES`).
    """
    from . import evaluation

    cls = evaluation.classification_metrics(y_true, y_pred)
    bt = evaluation.backtest(y_pred, close, run_ids, fee=fee, timeframe=timeframe, open_=open_, slippage=slippage)
    return {
        "accuracy": float(cls["accuracy"]),
        "f1_macro": float(cls["f1_macro"]),
        "backtest_total_return": float(bt["total_return"]),
        "backtest_sharpe": float(bt["sharpe"]),
        "backtest_max_drawdown": float(bt["max_drawdown"]),
        "backtest_n_trades": float(bt["n_trades"]),
        "n": float(len(y_true)),
    }


@dataclass
class ProductionScores:
    """The production model's class probabilities for the table rows it could score."""

    rows: np.ndarray
    """(n,) sorted global end rows."""
    proba: np.ndarray
    """(n, 3) probabilities."""
    version: str | None = None
    note: str = ""

    def lookup(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bool mask of `rows` that are scored, the probabilities of those rows)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.rows.size == 0:
            return np.zeros(rows.shape, dtype=bool), np.empty((0, 3), dtype=np.float32)
        pos = np.clip(np.searchsorted(self.rows, rows), 0, self.rows.size - 1)
        hit = self.rows[pos] == rows
        return hit, self.proba[pos[hit]]


def score_with_predictor(
    predictor: Predictor, series_list: Sequence[CandleSeries], table: FeatureTable
) -> ProductionScores:
    """Run ``predictor.predict_proba`` once per series and map its end rows to table rows."""
    rows, probas = [], []
    for i, s in enumerate(series_list):
        proba, ends = predictor.predict_proba(s.frame, source=f"{s.source} ({s.symbol})")
        rows.append(np.asarray(ends, dtype=np.int64) + table.offsets[i])
        probas.append(np.asarray(proba, dtype=np.float32))
    r = np.concatenate(rows) if rows else np.empty(0, np.int64)
    p = np.concatenate(probas) if probas else np.empty((0, 3), np.float32)
    order = np.argsort(r, kind="stable")
    return ProductionScores(rows=r[order], proba=p[order], version=str(getattr(predictor, "version", "")) or None)


# --------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------


@dataclass
class FoldResult:
    """One fold: sizes, time ranges, timings and the metrics of both models on the same rows."""

    index: int
    info: dict[str, Any]
    candidate: dict[str, float]
    production: dict[str, float] | None
    coverage: float
    """Share of the fold's test windows the production model scored (and both were measured on)."""
    train_seconds: float
    eval_seconds: float
    prep_seconds: float
    """Normaliser refit on the fold's train rows + normalised copy of X."""
    epochs: int


@dataclass
class WalkForwardResult:
    """All folds plus mean/std summaries and timings."""

    folds: list[FoldResult]
    config: WalkForwardConfig
    feature_seconds: float
    total_seconds: float
    production_version: str | None = None
    production_note: str = ""

    @property
    def train_seconds(self) -> float:
        return float(sum(f.train_seconds for f in self.folds))

    def _stat(self, who: str, metric: str) -> tuple[float, float]:
        vals = [getattr(f, who)[metric] for f in self.folds if getattr(f, who) is not None]
        if not vals:
            return float("nan"), float("nan")
        arr = np.asarray(vals, dtype=np.float64)
        return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0

    @property
    def has_production(self) -> bool:
        return any(f.production is not None for f in self.folds)

    def summary(self) -> dict[str, float]:
        """``walk_forward_<metric>_mean`` / ``_std`` for the candidate, ``walk_forward_production_*``
        for production (when scored) and ``walk_forward_delta_<metric>_mean`` = candidate - production."""
        out: dict[str, float] = {}
        for m in FOLD_METRICS:
            out[f"walk_forward_{m}_mean"], out[f"walk_forward_{m}_std"] = self._stat("candidate", m)
            if self.has_production:
                pm, ps = self._stat("production", m)
                out[f"walk_forward_production_{m}_mean"], out[f"walk_forward_production_{m}_std"] = pm, ps
                out[f"walk_forward_delta_{m}_mean"] = out[f"walk_forward_{m}_mean"] - pm
        out["walk_forward_folds"] = float(len(self.folds))
        out["walk_forward_feature_seconds"] = self.feature_seconds
        out["walk_forward_train_seconds"] = self.train_seconds
        out["walk_forward_total_seconds"] = self.total_seconds
        return out

    def means(self, who: str = "candidate") -> dict[str, float]:
        """Mean of each fold metric for 'candidate' or 'production' (unprefixed names)."""
        return {m: self._stat(who, m)[0] for m in FOLD_METRICS}

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "production_version": self.production_version,
            "production_note": self.production_note,
            "summary": {k: (None if not math.isfinite(v) else v) for k, v in self.summary().items()},
            "folds": [dataclasses.asdict(f) for f in self.folds],
        }

    def log_to(self, tracker: MLflowTracker) -> None:
        """Per-fold metrics at step = fold number (``wf_<metric>``, ``wf_production_<metric>``),
        then the summary; one flush."""
        for f in self.folds:
            values = {f"wf_{k}": v for k, v in f.candidate.items()}
            if f.production is not None:
                values.update({f"wf_production_{k}": v for k, v in f.production.items()})
                values["wf_production_coverage"] = f.coverage
            values["wf_train_seconds"] = f.train_seconds
            tracker.log_metrics(values, step=f.index + 1)
        tracker.log_metrics(self.summary())
        tracker.flush()


def run_walk_forward(
    table: FeatureTable,
    config: WalkForwardConfig,
    model_config: Any,
    trainer_config: TrainerConfig,
    *,
    family: str | None = None,
    fee: float = 0.001,
    production: ProductionScores | None = None,
    on_fold: Callable[[FoldResult], None] | None = None,
    fold_callbacks: Callable[[Fold, int], Sequence[Callback]] | None = None,
) -> WalkForwardResult:
    """Train and evaluate one model per fold on the precomputed `table`.

    Each fold: normaliser refit on its train rows, a fresh model of ``family`` (default
    ``hybrid_cnn_lstm``; ``model_config`` is that family's config) seeded with
    ``trainer_config.seed`` and fitted on train/val, predictions on the test windows. With
    ``production``, both models are scored on the test rows production covers.
    ``fold_callbacks(fold, n_folds)`` gives each fold's trainer its callbacks (a fold's own MLflow
    run and learning curves, a progress bar); ``on_fold(result)`` is called when a fold is scored.
    """
    from .families import get_family

    fam = get_family(family)
    t_start = time.perf_counter()
    gap = config.resolve_gap(table.window, table.horizon)
    folds = make_folds(
        table.ends,
        table.series_id,
        table.times_ns,
        config.n_folds,
        gap=gap,
        bar_ns=table.bar_ns,
        mode=config.mode,
        initial_train_frac=config.initial_train_frac,
        val_frac=config.val_frac,
        min_train_samples=config.min_train_samples,
        min_test_samples=config.min_test_samples,
    )
    mcfg = fam.with_shape(model_config, n_features=len(table.feature_names), window=table.window)
    tcfg = dataclasses.replace(trainer_config, checkpoint_dir=None)
    results = []
    for fold in folds:
        tp = time.perf_counter()
        train_ds, val_ds, test_ds, _ = fold_datasets(table, fold)
        prep_s = time.perf_counter() - tp
        callbacks = list(fold_callbacks(fold, len(folds))) if fold_callbacks is not None else []
        t0 = time.perf_counter()
        fitted = fam.fit(mcfg, train_ds, val_ds, tcfg, callbacks=callbacks)
        fit = fitted.fit
        train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        rows = fold.test
        proba = fitted.predict_proba(test_ds)
        prod_metrics = None
        coverage = 1.0
        if production is not None:
            hit, prod_proba = production.lookup(rows)
            coverage = float(hit.mean()) if rows.size else 0.0
            if hit.any():
                rows, proba = rows[hit], proba[hit]
                prod_metrics = _metrics_of(table, rows, prod_proba.argmax(axis=1), fee)
        cand_metrics = _metrics_of(table, rows, proba.argmax(axis=1), fee)
        eval_s = time.perf_counter() - t1
        result = FoldResult(
            index=fold.index,
            info=fold.describe(table.timestamps),
            candidate=cand_metrics,
            production=prod_metrics,
            coverage=coverage,
            train_seconds=train_s,
            eval_seconds=eval_s,
            prep_seconds=prep_s,
            epochs=len(fit.history),
        )
        logger.info(
            "walk-forward fold %d/%d: %d train / %d test windows, accuracy %.4f, f1 %.4f%s, trained in %.2f s",
            fold.index + 1,
            len(folds),
            fold.train.size,
            fold.test.size,
            cand_metrics["accuracy"],
            cand_metrics["f1_macro"],
            f" (production {prod_metrics['accuracy']:.4f} / {prod_metrics['f1_macro']:.4f})" if prod_metrics else "",
            train_s,
        )
        results.append(result)
        if on_fold is not None:
            on_fold(result)
    return WalkForwardResult(
        folds=results,
        config=config,
        feature_seconds=table.build_seconds,
        total_seconds=time.perf_counter() - t_start + table.build_seconds,
        production_version=production.version if production else None,
        production_note=production.note if production else "",
    )


def _metrics_of(table: FeatureTable, rows: np.ndarray, pred: np.ndarray, fee: float) -> dict[str, float]:
    run_ids = table.series_id[rows].astype(np.int64) * 1_000_000 + table.segment[rows]
    return fold_metrics(table.y[rows], pred, table.close[rows], run_ids, fee, table.timeframe, open_=table.open[rows])
