"""From candle series to model-ready windows: features, labels, splits, normalisation.

Layout
------
All series are concatenated into one float32 matrix ``X`` (N, F) and one int64 label vector
``y`` (N,). A sample is a window END row ``e``: its input is ``X[e - window + 1 : e + 1]``
(window, F) and its label ``y[e]``. A valid end has

* its whole window inside one segment of one series (no gap, no series boundary),
* no NaN feature in the window (feature warm-up rows are never used),
* a defined label (``y[e] != -1``: the horizon lies inside the same segment).

Splits are chronological per series: the valid ends of each series are cut into train / val /
test by count, and the first ends of val (test) closer than ``purge_gap`` rows to the last train
(val) end are dropped, so no val/test window or label overlaps rows a train label looked at
(``purge_gap >= window + horizon``). The `Normalizer` is fitted on the rows covered by train
windows only, then applied in place to all of X.

`WindowDataset` never materialises the (N, T, F) tensor: it keeps a reference to X, the array of
end rows and the offsets ``-T+1 .. 0``; a batch is one fancy index ``X[ends[:, None] + offsets]``.

Serving uses `pipeline.build_inference_windows(frame, pipeline)`, which runs the same feature and
normaliser code on raw candles with the JSON-able `PreparedData.pipeline` (module `pipeline`,
which does not import torch, so an ONNX Runtime server never loads it).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from .features import FeatureConfig, build_feature_matrix, feature_names, lookback_rows, run_ids
from .labels import CLASS_NAMES, UNDEFINED, LabelConfig, make_labels
from .pipeline import (  # serving names, re-exported (`X as X`) where training code finds them
    PIPELINE_VERSION as PIPELINE_VERSION,
    Normalizer as Normalizer,
    build_inference_windows as build_inference_windows,
    parse_pipeline as parse_pipeline,
    valid_window_ends as valid_window_ends,
)

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")


class SeriesLike(Protocol):
    """What `prepare_dataset` needs of a series (e.g. `data.CandleSeries`); read-only, so that
    frozen dataclasses fit."""

    @property
    def symbol(self) -> str: ...

    @property
    def timeframe(self) -> str: ...

    @property
    def frame(self) -> pd.DataFrame: ...  # timestamp, open, high, low, close, volume, [segment]


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitConfig:
    """Chronological train / val / test split of each series' valid window ends."""

    train_frac: float = 0.7
    """Share of each series' valid window ends (earliest first) that go to train."""

    val_frac: float = 0.15
    """Share that goes to validation (after train, before the purge)."""

    test_frac: float = 0.15
    """Share that goes to test (last); the three shares must sum to 1."""

    purge_gap: int | None = None
    """Minimum distance in rows between the last train end and the first val end (and val / test).
    None means ``window + horizon``, the least that keeps a later split's windows clear of every
    row an earlier split's labels used; a smaller value is rejected by `prepare_dataset`."""

    def __post_init__(self) -> None:
        for name in ("train_frac", "val_frac", "test_frac"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value < 1):
                raise ValueError(f"SplitConfig.{name} must be in (0, 1), got {value!r}")
            object.__setattr__(self, name, float(value))
        total = self.train_frac + self.val_frac + self.test_frac
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"SplitConfig fractions must sum to 1, got {total:.6f}")
        if self.purge_gap is not None:
            if (
                isinstance(self.purge_gap, bool)
                or not isinstance(self.purge_gap, (int, np.integer))
                or self.purge_gap < 0
            ):
                raise ValueError(f"SplitConfig.purge_gap must be None or an int >= 0, got {self.purge_gap!r}")
            object.__setattr__(self, "purge_gap", int(self.purge_gap))

    def resolve_purge_gap(self, window: int, horizon: int) -> int:
        """The purge gap for this window and horizon; ValueError if set below ``window + horizon``."""
        minimum = window + horizon
        if self.purge_gap is None:
            return minimum
        if self.purge_gap < minimum:
            raise ValueError(
                f"SplitConfig.purge_gap={self.purge_gap} is below window + horizon = {window} + {horizon} = {minimum}; "
                "val/test windows would overlap rows used by train labels"
            )
        return self.purge_gap

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SplitConfig:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown SplitConfig keys: {sorted(unknown)}")
        return cls(**dict(data))


# --------------------------------------------------------------------------------------------
# normaliser
# --------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------
# windows
# --------------------------------------------------------------------------------------------


def _to_index_array(generator_or_none: Any, n: int, shuffle: bool) -> np.ndarray:
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    if isinstance(generator_or_none, np.random.Generator):
        return generator_or_none.permutation(n).astype(np.int64)
    return torch.randperm(n, generator=generator_or_none).numpy().astype(np.int64)


class WindowDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Windows over a shared matrix: sample i is ``(X[e-T+1 : e+1], y[e])`` with ``e = ends[i]``.

    Holds references to X and y (no copy). ``ds[i]`` gives ``(x (T, F) float32 tensor, y int64
    scalar tensor)``; ``ds[list_or_array]`` gives a batch ``(x (B, T, F), y (B,))`` gathered with one
    fancy index, which is what `batches` and `loader` use.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, ends: np.ndarray, window: int) -> None:
        if X.ndim != 2 or X.dtype != np.float32:
            raise ValueError(f"WindowDataset: X must be a 2-D float32 array, got {X.dtype} {X.shape}")
        if y.shape != (X.shape[0],):
            raise ValueError(f"WindowDataset: y has shape {y.shape}, expected ({X.shape[0]},)")
        ends = np.asarray(ends, dtype=np.int64)
        if ends.ndim != 1:
            raise ValueError("WindowDataset: ends must be 1-D")
        if ends.size and (ends.min() < window - 1 or ends.max() >= X.shape[0]):
            raise ValueError("WindowDataset: an end row leaves its window outside X")
        self.X = X  # (N, F), shared
        self.y = y  # (N,), shared
        self.ends = ends  # (n,)
        self.window = int(window)
        self.offsets = np.arange(-self.window + 1, 1, dtype=np.int64)  # (T,)

    def __len__(self) -> int:
        return int(self.ends.shape[0])

    @property
    def labels(self) -> np.ndarray:
        """(n,) int64 labels of the samples."""
        labels: np.ndarray = self.y[self.ends]
        return labels

    def class_counts(self, n_classes: int = 3) -> np.ndarray:
        """(n_classes,) int64 sample count per class."""
        return np.bincount(self.labels, minlength=n_classes).astype(np.int64)

    def row_indices(self, idx: np.ndarray) -> np.ndarray:
        """(B, T) X rows of samples `idx`."""
        rows: np.ndarray = self.ends[idx][:, None] + self.offsets[None, :]
        return rows

    def get_batch(self, idx: np.ndarray | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples `idx` as ``(x (B, T, F) float32, y (B,) int64)`` tensors (one gather, fresh memory)."""
        e = self.ends[np.asarray(idx, dtype=np.int64)]  # (B,)
        xb = self.X[e[:, None] + self.offsets]  # (B, T, F)
        return torch.from_numpy(xb), torch.from_numpy(self.y[e])

    def __getitem__(self, idx: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(idx, slice):
            return self.get_batch(np.arange(len(self))[idx])
        if isinstance(idx, (int, np.integer)):
            i = int(idx)
            if i < 0:
                i += len(self)
            if not 0 <= i < len(self):
                raise IndexError(f"index {idx} out of range for {len(self)} samples")
            e = int(self.ends[i])
            x = self.X[e - self.window + 1 : e + 1].copy()  # (T, F); a copy so callers cannot write into X
            return torch.from_numpy(x), torch.tensor(int(self.y[e]), dtype=torch.int64)
        return self.get_batch(idx)

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | np.random.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Iterate ``(x (B, T, F), y (B,))`` batches once; shuffled with `generator` if asked."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        order = _to_index_array(generator, len(self), shuffle)
        stop = len(order) - (len(order) % batch_size if drop_last else 0)
        for s in range(0, stop, batch_size):
            yield self.get_batch(order[s : s + batch_size])

    def loader(
        self,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        **kwargs: Any,
    ) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        """A torch DataLoader that fetches whole batches (sampler of index lists, no collate)."""
        base = RandomSampler(self, generator=generator) if shuffle else SequentialSampler(self)
        sampler = BatchSampler(base, batch_size=batch_size, drop_last=drop_last)
        return DataLoader(self, batch_size=None, sampler=sampler, **kwargs)


# --------------------------------------------------------------------------------------------
# prepared data
# --------------------------------------------------------------------------------------------


@dataclass
class PreparedData:
    """Everything training and evaluation need; arrays are aligned with the rows of X."""

    X: np.ndarray
    """(N, F) float32 normalised features of all series, concatenated (NaN on warm-up rows)."""
    y: np.ndarray
    """(N,) int64 labels, -1 where undefined."""
    timestamps: np.ndarray
    """(N,) datetime64[ns] candle open times (UTC, naive)."""
    close: np.ndarray
    """(N,) float64 close prices."""
    open: np.ndarray
    """(N,) float64 open prices (backtests fill a signal at the next bar's open)."""
    future_return: np.ndarray
    """(N,) float64 log return close[t+h]/close[t], NaN where undefined."""
    series_id: np.ndarray
    """(N,) int32 index into `symbols`."""
    segment: np.ndarray
    """(N,) int64 contiguous-run id within its series (0, 1, ...)."""
    symbols: list[str]
    """Symbol of each series, in input order."""
    train: WindowDataset
    val: WindowDataset
    test: WindowDataset
    normalizer: Normalizer
    feature_names: list[str]
    window: int
    horizon: int
    pipeline: dict[str, Any]
    """JSON-able recipe for serving: feature / label config, window, normaliser; see
    `build_inference_windows`."""
    summary: dict[str, Any]
    """JSON-able report: samples, rows covered, class counts and time ranges per split, warm-up rows."""

    def split(self, name: str) -> WindowDataset:
        """The WindowDataset of 'train', 'val' or 'test'."""
        if name not in SPLITS:
            raise KeyError(name)
        split: WindowDataset = getattr(self, name)
        return split


def _timestamps_ns(col: pd.Series) -> np.ndarray:
    ts = pd.to_datetime(col)
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    out: np.ndarray = ts.to_numpy().astype("datetime64[ns]")
    return out


def _iso(ts: np.datetime64) -> str:
    iso: str = pd.Timestamp(ts).tz_localize("UTC").isoformat()
    return iso


def _split_ends(ends: np.ndarray, cfg: SplitConfig, gap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chronological split of sorted end rows of ONE series, purging the starts of val and test."""
    m = ends.shape[0]
    # int(): under NumPy 1.x, round() of a NumPy float is a NumPy float.
    i1 = int(round(m * cfg.train_frac))  # noqa: RUF046
    i2 = int(round(m * (cfg.train_frac + cfg.val_frac)))  # noqa: RUF046
    train = ends[:i1]
    val = ends[i1:i2]
    if train.size:
        val = val[val >= train[-1] + gap]
    test = ends[i2:]
    last = max([a[-1] for a in (train, val) if a.size], default=None)
    if last is not None:
        test = test[test >= last + gap]
    return train, val, test


def _covered_rows(ends: np.ndarray, window: int, n: int) -> np.ndarray:
    """(n,) bool: rows inside at least one window ending at `ends`."""
    diff = np.zeros(n + 1, dtype=np.int64)
    np.add.at(diff, ends - window + 1, 1)
    np.add.at(diff, ends + 1, -1)
    return np.cumsum(diff[:-1]) > 0


def _series_key(symbols: list[str], i: int) -> str:
    return symbols[i] if symbols.count(symbols[i]) == 1 else f"{symbols[i]}#{i}"


def _describe_segments(symbols: list[str], segment_rows: Sequence[np.ndarray], shown: int = 8) -> str:
    """'42 segments (series#segment: rows, longest first): EURUSD#3 121, EURUSD#1 120, ... and 34 more'."""
    items = [
        (int(rows), f"{_series_key(symbols, i)}#{k + 1}")
        for i, lengths in enumerate(segment_rows)
        for k, rows in enumerate(lengths)
    ]
    items.sort(key=lambda item: -item[0])  # stable: equal lengths stay in time order
    listed = ", ".join(f"{name} {rows}" for rows, name in items[:shown])
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    word = "segment" if len(items) == 1 else "segments"
    return f"{len(items)} {word} (series#segment: rows, longest first): {listed}{more}"


def prepare_dataset(
    series_list: Sequence[SeriesLike],
    feature_cfg: FeatureConfig | None = None,
    label_cfg: LabelConfig | None = None,
    split_cfg: SplitConfig | None = None,
    window: int = 60,
) -> PreparedData:
    """Features, labels, chronological purged splits and a train-only normaliser for several series.

    Each item needs ``.symbol``, ``.timeframe`` and ``.frame`` (timestamp, open, high, low, close,
    volume and optionally segment). Raises ValueError on bad arguments or when a split is empty
    (data too short for window + horizon + warm-up + purge gaps).
    """
    feature_cfg = feature_cfg or FeatureConfig()
    label_cfg = label_cfg or LabelConfig()
    split_cfg = split_cfg or SplitConfig()
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be an int >= 1, got {window!r}")
    window = int(window)
    if not series_list:
        raise ValueError("prepare_dataset: no series given")
    horizon = label_cfg.horizon
    gap = split_cfg.resolve_purge_gap(window, horizon)
    names = feature_names(feature_cfg)
    n_feat = len(names)
    symbols = [str(s.symbol) for s in series_list]
    lengths = [len(s.frame) for s in series_list]
    n_total = int(sum(lengths))

    X = np.empty((n_total, n_feat), dtype=np.float32)  # (N, F)
    y = np.empty(n_total, dtype=np.int64)
    timestamps = np.empty(n_total, dtype="datetime64[ns]")
    close = np.empty(n_total, dtype=np.float64)
    open_ = np.empty(n_total, dtype=np.float64)
    future_return = np.empty(n_total, dtype=np.float64)
    series_id = np.empty(n_total, dtype=np.int32)
    segment = np.empty(n_total, dtype=np.int64)
    split_ends: dict[str, list[np.ndarray]] = {k: [] for k in SPLITS}
    per_series: list[dict[str, Any]] = []
    segment_rows: list[np.ndarray] = []  # rows of each segment, per series

    offset = 0
    for i, series in enumerate(series_list):
        frame = series.frame
        n = len(frame)
        sl = slice(offset, offset + n)
        if "timestamp" not in frame.columns:
            raise ValueError(f"prepare_dataset: series {symbols[i]} frame lacks a 'timestamp' column")
        X[sl] = build_feature_matrix(frame, feature_cfg)  # (n, F)
        seg_col = frame["segment"].to_numpy() if "segment" in frame.columns else None
        labels, fut = make_labels(frame["close"].to_numpy(), label_cfg, segment=seg_col)
        y[sl] = labels
        future_return[sl] = fut
        close[sl] = frame["close"].to_numpy(dtype=np.float64)
        open_[sl] = frame["open"].to_numpy(dtype=np.float64)
        timestamps[sl] = _timestamps_ns(frame["timestamp"])
        series_id[sl] = i
        runs = run_ids(seg_col, n)
        segment[sl] = runs
        segment_rows.append(np.bincount(runs))
        bad = np.isnan(X[sl]).any(axis=1)  # (n,)
        ok = valid_window_ends(bad, runs, window) & (labels != UNDEFINED)
        local_ends = np.flatnonzero(ok).astype(np.int64)
        parts = _split_ends(local_ends, split_cfg, gap)
        for name, part in zip(SPLITS, parts):
            split_ends[name].append(part + offset)
            if part.size == 0:
                logger.warning(
                    "series %s (%s): no %s windows (%d rows, %d valid ends)",
                    symbols[i],
                    series.timeframe,
                    name,
                    n,
                    local_ends.size,
                )
        per_series.append(
            {
                "symbol": symbols[i],
                "timeframe": str(series.timeframe),
                "rows": n,
                "segments": int(runs[-1] + 1) if n else 0,
                "warmup_rows": int(bad.sum()),
                "unlabeled_rows": int((labels == UNDEFINED).sum()),
                "valid_ends": int(local_ends.size),
                **{f"{name}_samples": int(part.size) for name, part in zip(SPLITS, parts)},
            }
        )
        offset += n

    ends = {name: np.concatenate(parts) for name, parts in split_ends.items()}
    for name in SPLITS:
        if ends[name].size == 0:
            warmup = lookback_rows(feature_cfg) - 1
            raise ValueError(
                f"prepare_dataset: split '{name}' is empty: the data is too short. Each series needs "
                f"room for feature warm-up ({warmup} rows per segment), window={window}, "
                f"horizon={horizon} and two purge gaps of {gap} rows; rows per series: {dict(zip(symbols, lengths))}; "
                f"{_describe_segments(symbols, segment_rows)} (a window needs a segment of at least "
                f"{warmup + window + horizon} rows: warm-up {warmup} + window {window} + horizon {horizon})"
            )

    covered = _covered_rows(ends["train"], window, n_total)
    normalizer = Normalizer.fit(X, covered, feature_names=names)
    normalizer.transform(X, inplace=True)

    datasets = {name: WindowDataset(X, y, ends[name], window) for name in SPLITS}
    pipeline = {
        "version": PIPELINE_VERSION,
        "feature_config": feature_cfg.to_dict(),
        "feature_names": list(names),
        "label_config": label_cfg.to_dict(),
        "window": window,
        "horizon": horizon,
        "lookback_rows": lookback_rows(feature_cfg),
        "min_history_rows": lookback_rows(feature_cfg) + window - 1,
        "normalizer": normalizer.to_dict(),
    }
    summary = _summary(datasets, symbols, series_id, timestamps, X, y, per_series, window, horizon, gap, split_cfg)
    logger.info(
        "prepare_dataset: %d rows, %d features, samples train/val/test = %d/%d/%d",
        n_total,
        n_feat,
        *(len(datasets[k]) for k in SPLITS),
    )
    return PreparedData(
        X=X,
        y=y,
        timestamps=timestamps,
        close=close,
        open=open_,
        future_return=future_return,
        series_id=series_id,
        segment=segment,
        symbols=symbols,
        train=datasets["train"],
        val=datasets["val"],
        test=datasets["test"],
        normalizer=normalizer,
        feature_names=list(names),
        window=window,
        horizon=horizon,
        pipeline=pipeline,
        summary=summary,
    )


def _summary(
    datasets: dict[str, WindowDataset],
    symbols: list[str],
    series_id: np.ndarray,
    timestamps: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    per_series: list[dict[str, Any]],
    window: int,
    horizon: int,
    gap: int,
    split_cfg: SplitConfig,
) -> dict[str, Any]:
    n_total = int(X.shape[0])
    out: dict[str, Any] = {
        "rows": n_total,
        "features": int(X.shape[1]),
        "window": window,
        "horizon": horizon,
        "purge_gap": gap,
        "split_config": split_cfg.to_dict(),
        "samples": {},
        "rows_covered": {},
        "class_counts": {},
        "time_range": {},
        "dropped_warmup_rows": int(sum(s["warmup_rows"] for s in per_series)),
        "unlabeled_rows": int(sum(s["unlabeled_rows"] for s in per_series)),
        "series": per_series,
    }
    for name, ds in datasets.items():
        out["samples"][name] = len(ds)
        out["rows_covered"][name] = int(_covered_rows(ds.ends, window, n_total).sum())
        counts = ds.class_counts(len(CLASS_NAMES))
        out["class_counts"][name] = {cls: int(c) for cls, c in zip(CLASS_NAMES, counts)}
        ranges: dict[str, Any] = {}
        sid = series_id[ds.ends]
        for i in range(len(symbols)):
            e = ds.ends[sid == i]
            if e.size:
                ranges[_series_key(symbols, i)] = {
                    "start": _iso(timestamps[e[0]]),
                    "end": _iso(timestamps[e[-1]]),
                    "samples": int(e.size),
                }
        out["time_range"][name] = ranges
    return out
