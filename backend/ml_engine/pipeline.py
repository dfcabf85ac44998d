"""The stored feature pipeline of a model version, and what serving needs of it (no torch).

A trained version carries ``PreparedData.pipeline``: a JSON-able dict with the feature config,
the window length, the `Normalizer` statistics fitted on its training rows and
``min_history_rows``. `parse_pipeline` reads it back, `build_inference_windows` turns raw candles
into normalised model windows with it, running the same feature code (`features`) and the same
`Normalizer` as training did. `dataset` (training) builds the pipeline and imports these names
from here; this module imports neither torch nor the training code, so a process that serves
with ONNX Runtime (`predictor`) never loads PyTorch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt
import pandas as pd

from .features import FeatureConfig, build_feature_matrix, feature_names, lookback_rows, run_ids

#: Version of the pipeline dict layout; a version written by another layout is refused.
PIPELINE_VERSION = 1


@dataclass
class Normalizer:
    """Per-feature standardisation ``(x - mean) / std`` with float32 statistics."""

    mean: np.ndarray
    """(F,) float32 feature means over the fitting rows."""

    std: np.ndarray
    """(F,) float32 population std over the fitting rows; 0 (constant feature) is stored as 1."""

    feature_names: list[str] = field(default_factory=list)
    """Column names the statistics belong to (checked when applied through a pipeline)."""

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(self.std, dtype=np.float32).reshape(-1)
        self.feature_names = list(self.feature_names)
        if self.mean.shape != self.std.shape:
            raise ValueError(f"Normalizer: mean {self.mean.shape} and std {self.std.shape} differ in shape")
        if self.feature_names and len(self.feature_names) != self.mean.shape[0]:
            raise ValueError(f"Normalizer: {len(self.feature_names)} names for {self.mean.shape[0]} features")
        if not (np.all(np.isfinite(self.mean)) and np.all(np.isfinite(self.std)) and np.all(self.std > 0)):
            raise ValueError("Normalizer: mean must be finite and std finite and > 0")

    @classmethod
    def fit(
        cls, X: np.ndarray, rows: np.ndarray | None = None, feature_names: Sequence[str] = (), chunk_rows: int = 1 << 18
    ) -> Normalizer:
        """Statistics of ``X[rows]`` (rows: int indices or a bool mask; None = all rows).

        Two passes in float64 over chunks of rows, so memory stays at one chunk whatever N is.
        Raises ValueError if there are no rows or a selected value is NaN/inf.
        """
        if X.ndim != 2:
            raise ValueError(f"Normalizer.fit: X must be 2-D, got {X.shape}")
        if rows is None:
            idx = np.arange(X.shape[0], dtype=np.int64)
        else:
            rows = np.asarray(rows)
            idx = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64, copy=False)
        if idx.size == 0:
            raise ValueError("Normalizer.fit: no rows to fit on")
        n_feat = X.shape[1]
        total = np.zeros(n_feat, dtype=np.float64)
        for s in range(0, idx.size, chunk_rows):
            chunk = X[idx[s : s + chunk_rows]].astype(np.float64)  # (chunk, F)
            if not np.all(np.isfinite(chunk)):
                raise ValueError("Normalizer.fit: the fitting rows contain NaN or inf")
            total += chunk.sum(axis=0)
        mean = total / idx.size
        sq = np.zeros(n_feat, dtype=np.float64)
        for s in range(0, idx.size, chunk_rows):
            chunk = X[idx[s : s + chunk_rows]].astype(np.float64) - mean  # (chunk, F)
            sq += np.einsum("ij,ij->j", chunk, chunk)
        std = np.sqrt(sq / idx.size).astype(np.float32)
        std[~(std > 0)] = 1.0
        return cls(mean=mean.astype(np.float32), std=std, feature_names=list(feature_names))

    def transform(self, X: np.ndarray, *, inplace: bool = False) -> np.ndarray:
        """``(X - mean) / std`` in float32 for X (..., F); NaN stays NaN. In place if asked (X must
        then be float32)."""
        if X.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"Normalizer.transform: X has {X.shape[-1]} features, expected {self.mean.shape[0]}")
        if inplace:
            if X.dtype != np.float32:
                raise ValueError("Normalizer.transform(inplace=True) needs a float32 array")
            out = X
        else:
            out = np.array(X, dtype=np.float32, copy=True)
        np.subtract(out, self.mean, out=out)
        np.divide(out, self.std, out=out)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (lists of floats); `from_dict` gives back the same float32 values."""
        return {
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "feature_names": list(self.feature_names),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Normalizer:
        return cls(
            mean=np.asarray(data["mean"], dtype=np.float32),
            std=np.asarray(data["std"], dtype=np.float32),
            feature_names=list(data.get("feature_names", [])),
        )


def valid_window_ends(bad_rows: npt.ArrayLike, runs: np.ndarray, window: int) -> np.ndarray:
    """(n,) bool: True where rows ``e-window+1 .. e`` exist, share one run id and none is bad.

    `runs` must be non-decreasing run ids (contiguous runs); `bad_rows` marks rows with NaN.
    """
    bad_rows = np.asarray(bad_rows)
    n = bad_rows.shape[0]
    ok = np.zeros(n, dtype=bool)
    if n < window:
        return ok
    bad_count = np.concatenate(([0], np.cumsum(bad_rows, dtype=np.int64)))  # (n+1,)
    e = np.arange(window - 1, n)
    s = e - window + 1
    ok[window - 1 :] = (runs[s] == runs[e]) & (bad_count[e + 1] - bad_count[s] == 0)
    return ok


def parse_pipeline(pipeline: Mapping[str, Any]) -> tuple[FeatureConfig, Normalizer, int]:
    """(feature config, normaliser, window) of a stored `PreparedData.pipeline`; ValueError when it
    was written by another pipeline version or its feature names do not match its config."""
    if pipeline.get("version") != PIPELINE_VERSION:
        raise ValueError(f"pipeline version {pipeline.get('version')!r} is not {PIPELINE_VERSION}")
    fcfg = FeatureConfig.from_dict(pipeline["feature_config"])
    norm = Normalizer.from_dict(pipeline["normalizer"])
    names = feature_names(fcfg)
    if names != list(pipeline["feature_names"]) or (norm.feature_names and norm.feature_names != names):
        raise ValueError("pipeline feature names do not match its feature config (built by another version?)")
    return fcfg, norm, int(pipeline["window"])


@overload
def build_inference_windows(
    frame: pd.DataFrame, pipeline: Mapping[str, Any], *, last_only: bool = False, return_ends: Literal[False] = False
) -> np.ndarray: ...


@overload
def build_inference_windows(
    frame: pd.DataFrame, pipeline: Mapping[str, Any], *, last_only: bool = False, return_ends: Literal[True]
) -> tuple[np.ndarray, np.ndarray]: ...


@overload
def build_inference_windows(
    frame: pd.DataFrame, pipeline: Mapping[str, Any], *, last_only: bool = False, return_ends: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]: ...


def build_inference_windows(
    frame: pd.DataFrame, pipeline: Mapping[str, Any], *, last_only: bool = False, return_ends: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Model input from raw candles: ``(n, T, F)`` float32 normalised windows, one per valid end row.

    Runs the training code path (`build_feature_matrix` + `Normalizer.transform`) with the
    configuration stored in `pipeline` (`PreparedData.pipeline`, possibly after a JSON round trip).
    Valid ends are the rows whose whole window lies in one segment with no warm-up NaN; no label
    is needed. With ``last_only`` only the window ending at the last row is returned, shape
    ``(1, T, F)``; ValueError if that window is not valid (needs ``pipeline['min_history_rows']``
    candles in the last segment; pass only the recent tail of a long history, since features
    are computed on the whole frame). With ``return_ends`` also return the (n,) end row indices.
    """
    fcfg, norm, window = parse_pipeline(pipeline)
    n = len(frame)
    seg_col = frame["segment"].to_numpy() if "segment" in frame.columns else None
    feats = np.ascontiguousarray(build_feature_matrix(frame, fcfg))  # (n, F)
    norm.transform(feats, inplace=True)
    ok = valid_window_ends(np.isnan(feats).any(axis=1), run_ids(seg_col, n), window)
    if last_only:
        if n == 0 or not ok[-1]:
            raise ValueError(
                f"build_inference_windows: the last window is incomplete: need {lookback_rows(fcfg) + window - 1} "
                f"consecutive candles in the last segment (frame has {n} rows)"
            )
        ends = np.array([n - 1], dtype=np.int64)
    else:
        ends = np.flatnonzero(ok).astype(np.int64)
    windows = feats[ends[:, None] + np.arange(-window + 1, 1)]  # (n, T, F)
    return (windows, ends) if return_ends else windows
