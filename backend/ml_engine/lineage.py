"""Lineage: the candle rows each split of a training read, as MLflow datasets with their own digests.

A split's dataset is every candle its windows and labels touch: for a window ending at row ``e``
the rows ``e - window + 1 .. e`` (features) and ``e + 1 .. e + horizon`` (the label), over all
series. The frame holds ``symbol``, ``timestamp`` and OHLCV; its digest covers every row
(:func:`~backend.ml_engine.mlflow_integration.dataset_digest`), so two trainings on different
candles never share a digest, and a split's digest changes when any row it read changes.

    datasets = split_datasets(prepared, series)        # {"train": SplitDataset, "val": ..., "test": ...}
    datasets["test"].name, datasets["test"].digest     # "ETH/BTC,LTC/BTC 5m test", "5f1c..."
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from .data.candles import CandleSeries
    from .dataset import PreparedData

__all__ = ["SPLIT_CONTEXTS", "SplitDataset", "split_datasets"]

#: MLflow's dataset context per split (the UI shows it beside the dataset).
SPLIT_CONTEXTS = {"train": "training", "val": "validation", "test": "testing"}

_OHLCV = ["open", "high", "low", "close", "volume"]


@dataclass(frozen=True)
class SplitDataset:
    """The candles one split read."""

    split: str
    """``train``, ``val`` or ``test``."""
    name: str
    context: str
    frame: pd.DataFrame
    source: str
    digest: str


def _rows_read(ends: np.ndarray, window: int, horizon: int, n: int) -> np.ndarray:
    """Sorted unique rows of windows ending at ``ends`` plus their label horizons."""
    diff = np.zeros(n + 1, dtype=np.int64)  # a difference array marks every span in O(n), no N*T matrix
    np.add.at(diff, np.maximum(ends - window + 1, 0), 1)
    np.add.at(diff, np.minimum(ends + horizon + 1, n), -1)
    return np.flatnonzero(np.cumsum(diff[:n]) > 0).astype(np.int64)


def split_datasets(prepared: PreparedData, series: Sequence[CandleSeries]) -> dict[str, SplitDataset]:
    """One dataset per split of ``prepared`` (built from ``series``, in the same order)."""
    from .mlflow_integration._datasets import dataset_digest

    frames = [s.frame[["timestamp", *_OHLCV]].assign(symbol=s.symbol) for s in series]
    candles = pd.concat(frames, ignore_index=True)[["symbol", "timestamp", *_OHLCV]]
    if len(candles) != len(prepared.X):
        raise ValueError(f"lineage: {len(candles)} candle rows but {len(prepared.X)} prepared rows")
    symbols = ",".join(s.symbol for s in series)
    timeframe = series[0].timeframe if series else ""
    source = ",".join(dict.fromkeys(str(s.source) for s in series))
    out: dict[str, SplitDataset] = {}
    for split, context in SPLIT_CONTEXTS.items():
        rows = _rows_read(prepared.split(split).ends, prepared.window, prepared.horizon, len(candles))
        frame = candles.iloc[rows].reset_index(drop=True)
        out[split] = SplitDataset(
            split=split,
            name=f"{symbols} {timeframe} {split}",
            context=context,
            frame=frame,
            source=source,
            digest=dataset_digest(frame),
        )
    return out
