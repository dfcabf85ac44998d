"""Tabular features of a window, for the families that do not read sequences (LightGBM, logistic regression).

Pure numpy, no torch: the Predictor and the pyfunc call the same function on the window they built,
so a tabular model is served on exactly the numbers it was trained on.

For a window ``(B, T, F)`` of normalised features (the rows ``t - T + 1 .. t``; row ``t`` is the
candle the prediction is made at), the tabular row has, per feature ``f`` and in this order:

1. ``last``: the value at ``t``;
2. ``lag<k>``: the value at ``t - k`` for each ``k`` of :attr:`TabularConfig.lags` (lags of at least
   ``T`` are dropped: they are not in the window);
3. ``mean``, ``std`` (population), ``min``, ``max`` over the window;
4. ``change``: value at ``t`` minus value at ``t - T + 1``.

``D = F * (1 + len(lags kept) + 5)`` columns (22 features, window 60: 220). Statistics are taken
in float64 and returned as float32, the type the ONNX graphs take.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

__all__ = ["STATISTICS", "TabularConfig", "tabular_feature_names", "window_features"]

#: Summary statistics over the window, in column order.
STATISTICS: tuple[str, ...] = ("mean", "std", "min", "max", "change")


@dataclass(frozen=True)
class TabularConfig:
    """Which lags of the window become columns (the statistics are always all of :data:`STATISTICS`)."""

    lags: tuple[int, ...] = field(default=(1, 2, 3, 5, 10, 20))
    """Lags in candles before the last row; those >= the window length are dropped."""

    def __post_init__(self) -> None:
        lags = tuple(int(k) for k in self.lags)
        if any(k < 1 for k in lags) or len(set(lags)) != len(lags):
            raise ValueError(f"lags must be distinct integers >= 1, got {self.lags!r}")
        object.__setattr__(self, "lags", tuple(sorted(lags)))

    def kept_lags(self, window: int) -> tuple[int, ...]:
        return tuple(k for k in self.lags if k < window)

    def to_dict(self) -> dict[str, Any]:
        return {"lags": list(self.lags)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TabularConfig:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"TabularConfig: unknown keys {sorted(unknown)}")
        return cls(lags=tuple(data.get("lags", (1, 2, 3, 5, 10, 20))))


def tabular_feature_names(feature_names: list[str] | tuple[str, ...], window: int, cfg: TabularConfig) -> list[str]:
    """Column names of :func:`window_features`, e.g. ``rsi_14.last``, ``rsi_14.lag5``, ``rsi_14.std``."""
    parts = ["last", *(f"lag{k}" for k in cfg.kept_lags(window)), *STATISTICS]
    return [f"{name}.{part}" for part in parts for name in feature_names]


def window_features(windows: np.ndarray, cfg: TabularConfig) -> np.ndarray:
    """``(B, T, F)`` windows -> ``(B, D)`` float32 tabular rows (module docstring for the columns)."""
    x = np.asarray(windows)
    if x.ndim != 3 or x.shape[1] < 1:
        raise ValueError(f"windows must have shape (B, T, F) with T >= 1, got {x.shape}")
    t = x.shape[1]
    x64 = x.astype(np.float64, copy=False)
    cols = [x64[:, -1, :]]
    cols += [x64[:, -1 - k, :] for k in cfg.kept_lags(t)]
    cols += [
        x64.mean(axis=1),
        x64.std(axis=1),
        x64.min(axis=1),
        x64.max(axis=1),
        x64[:, -1, :] - x64[:, 0, :],
    ]
    return np.ascontiguousarray(np.concatenate(cols, axis=1), dtype=np.float32)
