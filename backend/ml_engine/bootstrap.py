"""Block bootstrap over out-of-sample predictions in time order: intervals and paired tests (pure numpy).

Why blocks
----------
Walk-forward predictions are a time series: neighbouring rows share most of their feature
window and, with a label horizon ``h``, their labels overlap (row t's label looks at
t+1 .. t+h). Resampling single rows (``block=1``) treats them as independent and gives
intervals that are too narrow. Resampling BLOCKS of consecutive rows keeps the dependence
inside each block; the caller passes ``block >= h`` (a few times ``h`` is safer; see
``tests/test_bootstrap.py`` for coverage on overlapping labels and AR(1) data).

Resampling schemes (``method``)
-------------------------------
- ``"circular"`` (default): blocks of exactly ``block`` rows starting anywhere, wrapping around
  the end (Politis & Romano 1992); every row is equally likely, so the resampled mean is
  unbiased for the sample mean.
- ``"moving"``: blocks of exactly ``block`` rows that do not wrap (Künsch 1989); rows near the
  ends are drawn less often.
- ``"stationary"``: block lengths are geometric with MEAN ``block`` (Politis & Romano 1994),
  wrapping; some blocks are shorter than ``block``.

Each resample has the original length N: ``ceil(N / block)`` blocks laid end to end, cut at N.
Index generation is vectorised; a whole batch of resamples is one (B, N) index array.

Intervals and p-values
----------------------
- :func:`bootstrap_metric` / :func:`block_bootstrap_ci`: ``point`` = the metric on the original
  rows; ``low``/``high`` = the ``alpha/2`` and ``1 - alpha/2`` quantiles of the metric over the
  resamples (percentile interval). Resamples whose metric is NaN are dropped.
- :func:`paired_block_test`: both models are scored on the SAME resampled rows, so the shared
  difficulty of the rows cancels. ``diff`` = metric(a) - metric(b) on the original rows,
  ``low``/``high`` = percentile interval of the resampled differences, ``p_value`` two-sided from
  the CENTRED bootstrap distribution: under H0 (no difference) the resampled differences minus
  their observed value ``d*_i - diff`` stand in for the null distribution, and
  ``p = (1 + #{|d*_i - diff| >= |diff|}) / (1 + n_boot)`` (Hall & Wilson 1991). It is never 0.

Metrics
-------
``metric_fn(*arrays) -> float`` is called on the resampled arrays (rows resampled together).
Metrics marked batched (the built-ins :func:`mean`, :func:`accuracy`, :func:`macro_f1`,
:func:`sharpe_ratio`, or ``batched=True``) take (B, N, ...) arrays and return (B,) values,
so a whole chunk of resamples is one call: macro F1 from a bincount of ``b * C * C + t * C + p``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "Interval",
    "PairedTest",
    "BootstrapMethod",
    "block_indices",
    "bootstrap_metric",
    "block_bootstrap_ci",
    "paired_block_test",
    "mean",
    "accuracy",
    "macro_f1",
    "sharpe_ratio",
]

BootstrapMethod = Literal["circular", "moving", "stationary"]
_METHODS = ("circular", "moving", "stationary")
#: Resampled values held at once (rows x resamples) by a batched metric; bounds the memory.
_CHUNK_ELEMENTS = 1_000_000

Metric = Callable[..., Any]


@dataclass(frozen=True)
class Interval:
    """A statistic on the original rows and its block-bootstrap percentile interval."""

    point: float
    """The metric on the original rows (not the bootstrap mean)."""
    low: float
    high: float
    std_error: float
    """Standard deviation of the metric over the resamples."""
    block: int
    n_boot: int
    alpha: float
    method: str

    @property
    def mean(self) -> float:
        """Alias of ``point`` (for a statistic that is a mean)."""
        return self.point

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PairedTest:
    """Metric of model a minus model b on the same rows, with a block-bootstrap interval and p-value."""

    diff: float
    """metric(a) - metric(b) on the original rows."""
    low: float
    high: float
    p_value: float
    """Two-sided, from the centred bootstrap distribution of the difference (module docstring)."""
    metric_a: float
    metric_b: float
    block: int
    n_boot: int
    alpha: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# index generation
# --------------------------------------------------------------------------------------------


def _check(n: int, block: int, n_boot: int, alpha: float, method: str) -> None:
    if n < 2:
        raise ValueError(f"bootstrap needs at least 2 rows, got {n}")
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or not 1 <= block <= n:
        raise ValueError(f"block must be an int in [1, {n}] (the number of rows), got {block!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be an int >= 1, got {n_boot!r}")
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")


def _indices(rng: np.random.Generator, n: int, block: int, n_boot: int, method: str) -> np.ndarray:
    if method == "stationary":
        pos = np.arange(n)
        new = rng.random((n_boot, n)) < 1.0 / block
        new[:, 0] = True
        start_pos = np.maximum.accumulate(np.where(new, pos, 0), axis=1)  # where the current block began
        starts = rng.integers(0, n, size=(n_boot, n))
        first = np.take_along_axis(starts, start_pos, axis=1)
        out: np.ndarray = (first + (pos - start_pos)) % n
        return out
    k = -(-n // block)  # blocks per resample
    high = n if method == "circular" else n - block + 1
    starts = rng.integers(0, high, size=(n_boot, k, 1))
    idx = (starts + np.arange(block)).reshape(n_boot, k * block)[:, :n]
    if method == "circular":
        idx %= n
    return idx


def block_indices(
    n: int, *, block: int, n_boot: int = 2000, seed: int | np.random.Generator = 0, method: BootstrapMethod = "circular"
) -> np.ndarray:
    """(n_boot, n) int64 row indices: each row of the result is one block-bootstrap resample."""
    _check(n, block, n_boot, 0.05, method)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return _indices(rng, int(n), int(block), int(n_boot), method)


# --------------------------------------------------------------------------------------------
# built-in metrics (1-D arrays -> float, or (B, N) arrays -> (B,))
# --------------------------------------------------------------------------------------------


def mean(values: np.ndarray) -> Any:
    """Mean over the last axis of (N,) or (B, N) values."""
    return np.asarray(values, dtype=np.float64).mean(axis=-1)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> Any:
    """Share of rows with y_pred == y_true (last axis)."""
    return (np.asarray(y_true) == np.asarray(y_pred)).mean(axis=-1)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 3) -> Any:
    """Macro F1 over ``n_classes`` classes, every class counted (scikit-learn with
    ``labels=range(C), zero_division=0``, as :func:`evaluation.classification_metrics`).

    (N,) inputs give a float, (B, N) inputs a (B,) array: the B confusion matrices come from
    one bincount.
    """
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    c = int(n_classes)
    flat = t.ndim == 1
    if flat:
        t, p = t[None, :], p[None, :]
    b = t.shape[0]
    codes = (np.arange(b, dtype=np.int64)[:, None] * (c * c) + t * c + p).ravel()
    cm = np.bincount(codes, minlength=b * c * c).reshape(b, c, c)
    tp = np.diagonal(cm, axis1=1, axis2=2).astype(np.float64)
    den = (cm.sum(axis=1) + cm.sum(axis=2)).astype(np.float64)  # predicted + actual
    f1 = np.divide(2.0 * tp, den, out=np.zeros_like(tp), where=den > 0)
    out = f1.mean(axis=1)
    return float(out[0]) if flat else out


def sharpe_ratio(returns: np.ndarray, periods_per_year: float = 1.0) -> Any:
    """mean / std (ddof=1) of per-period returns (last axis), times sqrt(periods_per_year);
    0 where the std is 0 (as :func:`evaluation.backtest`)."""
    r = np.asarray(returns, dtype=np.float64)
    sd = r.std(axis=-1, ddof=1)
    m = r.mean(axis=-1)
    ok = sd > 1e-15
    out = np.where(ok, m / np.where(ok, sd, 1.0), 0.0) * math.sqrt(periods_per_year)
    return float(out) if np.ndim(out) == 0 else out


_BATCHED: frozenset[Metric] = frozenset({mean, accuracy, macro_f1, sharpe_ratio, np.mean})


def _is_batched(metric_fn: Metric, batched: bool | None) -> bool:
    if batched is not None:
        return bool(batched)
    try:
        return metric_fn in _BATCHED
    except TypeError:  # an unhashable callable
        return False


# --------------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------------


def _as_arrays(arrays: tuple[ArrayLike, ...]) -> tuple[list[np.ndarray], int]:
    if not arrays:
        raise ValueError("bootstrap needs at least one array of rows")
    arrs = [np.asarray(a) for a in arrays]
    n = arrs[0].shape[0] if arrs[0].ndim else 0
    for i, a in enumerate(arrs):
        if a.ndim == 0 or a.shape[0] != n:
            raise ValueError(f"array {i} has shape {a.shape}; every array needs {n} rows (axis 0)")
    return arrs, int(n)


def _replicates(
    metric_fn: Metric, arrs: list[np.ndarray], idx_rows: np.ndarray, batched: bool, kwargs: dict[str, Any]
) -> np.ndarray:
    if batched:
        out = np.asarray(metric_fn(*(a[idx_rows] for a in arrs), **kwargs), dtype=np.float64)
        if out.shape != (idx_rows.shape[0],):
            raise ValueError(f"a batched metric must return ({idx_rows.shape[0]},) values, got shape {out.shape}")
        return out
    return np.array([float(metric_fn(*(a[ix] for a in arrs), **kwargs)) for ix in idx_rows], dtype=np.float64)


def _bootstrap_values(
    metric_fns: list[Metric],
    arrs_per_fn: list[list[np.ndarray]],
    n: int,
    *,
    block: int,
    n_boot: int,
    seed: int | np.random.Generator,
    method: str,
    batched: list[bool],
    kwargs: dict[str, Any],
) -> list[np.ndarray]:
    """Each metric on the same resamples: [(n_boot,) values per metric]."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    chunk = max(1, min(n_boot, _CHUNK_ELEMENTS // max(n, 1)))
    out = [np.empty(n_boot, dtype=np.float64) for _ in metric_fns]
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        idx = _indices(rng, n, block, b, method)
        for k, (fn, arrs) in enumerate(zip(metric_fns, arrs_per_fn)):
            out[k][done : done + b] = _replicates(fn, arrs, idx, batched[k], kwargs)
        done += b
    return out


def _quantiles(values: np.ndarray, alpha: float) -> tuple[float, float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan"), float("nan")
    lo, hi = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    sd = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return float(lo), float(hi), sd


def bootstrap_metric(
    metric_fn: Metric,
    *arrays: ArrayLike,
    block: int,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int | np.random.Generator = 0,
    method: BootstrapMethod = "circular",
    batched: bool | None = None,
    metric_kwargs: dict[str, Any] | None = None,
) -> Interval:
    """Block-bootstrap percentile interval of ``metric_fn(*arrays)``.

    Args:
        metric_fn: ``f(*arrays, **metric_kwargs) -> float`` on rows resampled together, e.g.
            ``macro_f1(y_true, y_pred)`` or ``sharpe_ratio(net_returns)``. Batched metrics (see the
            module docstring) are called once per chunk of resamples.
        arrays: arrays with the same number of rows N (axis 0), in time order.
        block: block length in rows (>= the label horizon; see the module docstring).
        n_boot, alpha, seed, method: resamples, 1 - confidence, RNG seed (or Generator), scheme.
        batched: None = True for the built-in metrics, False otherwise.
    """
    arrs, n = _as_arrays(arrays)
    _check(n, block, n_boot, alpha, method)
    kw = dict(metric_kwargs or {})
    is_batched = _is_batched(metric_fn, batched)
    point = float(metric_fn(*arrs, **kw))
    (values,) = _bootstrap_values(
        [metric_fn],
        [arrs],
        n,
        block=int(block),
        n_boot=int(n_boot),
        seed=seed,
        method=method,
        batched=[is_batched],
        kwargs=kw,
    )
    lo, hi, sd = _quantiles(values, float(alpha))
    return Interval(point, lo, hi, sd, int(block), int(n_boot), float(alpha), method)


def block_bootstrap_ci(
    values: ArrayLike,
    *,
    block: int,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int | np.random.Generator = 0,
    statistic: Metric = np.mean,
    method: BootstrapMethod = "circular",
) -> Interval:
    """Interval of ``statistic`` (default the mean) of per-prediction ``values`` (N,) in time order,
    e.g. per-row correctness, per-row log loss or per-bar strategy returns. ``np.mean`` runs
    batched; any other statistic is called once per resample with a (N,) array."""
    stat: Metric = mean if statistic is np.mean else statistic
    return bootstrap_metric(stat, values, block=block, n_boot=n_boot, alpha=alpha, seed=seed, method=method)


def paired_block_test(
    metric_fn: Metric,
    y_true: ArrayLike | None,
    pred_a: ArrayLike,
    pred_b: ArrayLike,
    *,
    block: int,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int | np.random.Generator = 0,
    method: BootstrapMethod = "circular",
    batched: bool | None = None,
    metric_kwargs: dict[str, Any] | None = None,
) -> PairedTest:
    """Model a against model b on the same rows: ``metric_fn(y_true, pred_a) - metric_fn(y_true, pred_b)``.

    ``y_true=None`` compares one-argument metrics: ``metric_fn(pred_a) - metric_fn(pred_b)``
    (e.g. ``sharpe_ratio`` of two net-return series of the same bars). Both metrics are computed
    on the same block resamples; the interval is the percentile interval of the resampled
    differences, the p-value two-sided from their centred distribution (module docstring).
    """
    a_arrs: list[np.ndarray]
    b_arrs: list[np.ndarray]
    if y_true is None:
        (a,), n = _as_arrays((pred_a,))
        (b,), nb = _as_arrays((pred_b,))
        a_arrs, b_arrs = [a], [b]
    else:
        (t, a), n = _as_arrays((y_true, pred_a))
        (_, b), nb = _as_arrays((y_true, pred_b))
        a_arrs, b_arrs = [t, a], [t, b]
    if nb != n:
        raise ValueError(f"pred_a has {n} rows, pred_b {nb}")
    _check(n, block, n_boot, alpha, method)
    kw = dict(metric_kwargs or {})
    is_batched = _is_batched(metric_fn, batched)
    ma = float(metric_fn(*a_arrs, **kw))
    mb = float(metric_fn(*b_arrs, **kw))
    diff = ma - mb
    va, vb = _bootstrap_values(
        [metric_fn, metric_fn],
        [a_arrs, b_arrs],
        n,
        block=int(block),
        n_boot=int(n_boot),
        seed=seed,
        method=method,
        batched=[is_batched, is_batched],
        kwargs=kw,
    )
    d = va - vb
    d = d[np.isfinite(d)]
    lo, hi, _ = _quantiles(d, float(alpha))
    if d.size == 0 or not math.isfinite(diff):
        p = float("nan")
    else:
        p = float((1 + np.count_nonzero(np.abs(d - diff) >= abs(diff))) / (1 + d.size))
    return PairedTest(diff, lo, hi, p, ma, mb, int(block), int(n_boot), float(alpha), method)
