"""Probability calibration: top-label ECE, reliability curves, temperature scaling (pure numpy/scipy).

Definitions (used everywhere, documented once)
----------------------------------------------
- Confidence of a row = its largest class probability; its prediction = the arg-max class
  (ties -> lowest class id); correct = prediction == label.
- Bins: ``n_bins`` equal-width bins of confidence over [0, 1]; bin i holds confidences in
  ``(i / n_bins, (i + 1) / n_bins]`` (bin 0 also holds 0).
- Top-label ECE = ``sum_i (n_i / N) * |accuracy_i - mean confidence_i|`` over non-empty bins
  (Guo et al. 2017). 0 = perfectly calibrated; a random-label sample of a calibrated model
  still shows a small positive ECE (sampling noise, about ``sqrt(n_bins / N)``).
- Temperature scaling: ``softmax(logits / T)``; T > 1 softens over-confident probabilities,
  T < 1 sharpens; the arg-max never changes. T is fitted by minimising the mean negative
  log-likelihood over ``log T`` (bounded, T in [0.05, 20] by default) on held-out rows
  (validation, never the test rows it is judged on). Models that give probabilities rather
  than logits pass ``logits_from_proba(proba)`` (= log p; softmax(log p / T) ∝ p^(1/T)).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar

__all__ = [
    "expected_calibration_error",
    "reliability_curve",
    "softmax",
    "logits_from_proba",
    "negative_log_likelihood",
    "fit_temperature",
    "apply_temperature",
]

T_BOUNDS = (0.05, 20.0)


def _proba_and_labels(proba: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(proba, dtype=np.float64)
    t = np.asarray(y)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"proba must be (N, C) with C >= 2, got shape {p.shape}")
    if t.shape != (p.shape[0],):
        raise ValueError(f"y must be ({p.shape[0]},) class ids, got shape {t.shape}")
    if p.shape[0] == 0:
        raise ValueError("calibration needs at least one row")
    if not np.all(np.isfinite(p)):
        raise ValueError("proba must be finite")
    t = t.astype(np.int64)
    if t.min() < 0 or t.max() >= p.shape[1]:
        raise ValueError(f"y must hold class ids in [0, {p.shape[1]}), got range [{t.min()}, {t.max()}]")
    return p, t


def _check_bins(n_bins: int) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be an int >= 1, got {n_bins!r}")
    return int(n_bins)


def reliability_curve(proba: ArrayLike, y: ArrayLike, n_bins: int = 15) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bin_confidence, bin_accuracy, bin_count), each (n_bins,): mean confidence and accuracy of
    the rows in each equal-width confidence bin (NaN for an empty bin) and the row counts."""
    p, t = _proba_and_labels(proba, y)
    n_bins = _check_bins(n_bins)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == t).astype(np.float64)
    b = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(b, minlength=n_bins)
    sum_conf = np.bincount(b, weights=conf, minlength=n_bins)
    sum_acc = np.bincount(b, weights=correct, minlength=n_bins)
    nan = np.full(n_bins, np.nan)
    bin_conf = np.divide(sum_conf, count, out=nan.copy(), where=count > 0)
    bin_acc = np.divide(sum_acc, count, out=nan.copy(), where=count > 0)
    return bin_conf, bin_acc, count


def expected_calibration_error(proba: ArrayLike, y: ArrayLike, n_bins: int = 15) -> float:
    """Top-label ECE with ``n_bins`` equal-width bins (module docstring)."""
    conf, acc, count = reliability_curve(proba, y, n_bins)
    ok = count > 0
    return float(np.sum(count[ok] * np.abs(acc[ok] - conf[ok])) / count.sum())


def softmax(logits: ArrayLike) -> np.ndarray:
    """Row-wise softmax of (N, C) logits (stable)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


def logits_from_proba(proba: ArrayLike, eps: float = 1e-12) -> np.ndarray:
    """log(max(p, eps)): logits whose softmax is ``proba`` (for models that give probabilities)."""
    out: np.ndarray = np.log(np.maximum(np.asarray(proba, dtype=np.float64), eps))
    return out


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    out: np.ndarray = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return out


def negative_log_likelihood(logits: ArrayLike, y: ArrayLike, temperature: float = 1.0) -> float:
    """Mean NLL of the labels under ``softmax(logits / temperature)``."""
    z, t = _proba_and_labels(logits, y)
    _check_temperature(temperature)
    lsm = _log_softmax(z / float(temperature))
    return float(-lsm[np.arange(t.size), t].mean())


def _check_temperature(temperature: float) -> None:
    if isinstance(temperature, bool) or not math.isfinite(float(temperature)) or float(temperature) <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")


def fit_temperature(logits: ArrayLike, y: ArrayLike, bounds: tuple[float, float] = T_BOUNDS) -> float:
    """T > 0 minimising the mean NLL of ``softmax(logits / T)``: a bounded 1-D search over log T
    (``scipy.optimize.minimize_scalar``, method 'bounded'), T within ``bounds``."""
    z, t = _proba_and_labels(logits, y)
    lo, hi = (float(b) for b in bounds)
    if not 0 < lo < hi or not math.isfinite(hi):
        raise ValueError(f"bounds must be 0 < low < high (finite), got {bounds!r}")
    rows = np.arange(t.size)

    def nll(log_t: float) -> float:
        return float(-_log_softmax(z / math.exp(log_t))[rows, t].mean())

    res = minimize_scalar(nll, bounds=(math.log(lo), math.log(hi)), method="bounded", options={"xatol": 1e-6})
    return float(math.exp(float(res.x)))


def apply_temperature(logits: ArrayLike, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)``: calibrated (N, C) probabilities, same arg-max as the logits."""
    _check_temperature(temperature)
    return softmax(np.asarray(logits, dtype=np.float64) / float(temperature))
