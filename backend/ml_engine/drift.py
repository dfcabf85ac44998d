"""Feature drift: recent candles against the production model's training data (PSI + KS per feature).

What is compared
----------------
The **reference** is the features of the rows the production version was trained on: its
``metadata.json`` names the data sources, symbols, timeframe and the time range of the train
split of every series (``dataset.time_range.train``), and its ``pipeline`` holds the feature
configuration. :func:`reference_from_metadata` reloads those candles, recomputes the features with
that configuration and keeps the rows covered by train windows. Reconstructing is chosen over
storing a sample with each model because it needs nothing from the training side (every version
the orchestrator ever registered can be checked, not only those trained after this module
existed), the features are causal with a finite lookback (``features.py``), so a row's features
are the same whatever history precedes it, and candle sources are append-only in practice (a
file or table grows; old candles stay). When a source is gone or was rewritten, pass another
reference explicitly (``reference_data`` in the retraining config, ``--reference-data`` on the
CLI); the report always says which reference it used.

The **current** sample is the features of the last ``recent_days`` of the live source
(:func:`recent_features`; features are computed with extra history before the window so no
warm-up row is lost).

Statistics, per feature
-----------------------
* **PSI** (population stability index) over ``bins`` reference-quantile bins (deciles by
  default; open-ended outer bins, empty bins floored at ``eps``):
  ``PSI = sum((q - p) * ln(q / p))``. Rule of thumb: < 0.1 stable, 0.1-0.2 moderate, > 0.2 shift.
* **KS**: ``scipy.stats.ks_2samp`` statistic and p-value.

Decision: calibrated against the reference's own variability
------------------------------------------------------------
Candle features are strongly autocorrelated and non-stationary: volatility-type features
(``volatility_30``, ``atr_14``, ``bb_width``, MACD) move with the market regime, so a 3-day window
of the *same* pair covers only part of their range and its PSI against a two-week reference is
routinely 0.3-3 (ETH/BTC Jan 2018: the held-out last 3 days have PSI > 0.2 and a KS p-value
< 0.01 on 19 of 22 features, see the table below; KS is overconfident for autocorrelated rows).
A fixed PSI threshold therefore either fires on every quiet week or misses a different market.

So each feature's PSI limit is calibrated on the reference itself (the idea behind chunk-based
thresholds in monitoring tools such as NannyML): the reference is cut into chunks (step half a
chunk; a chunk never spans two series) of at least the current sample's size and at least the
rows spanning ``recent_days`` in the reference's timeframe (at most half the reference), each
chunk's PSI against the rest of the reference is computed with the same bins, and

    psi_limit = max(psi_threshold, null_margin * max(chunk PSIs))

A feature **drifts** when ``psi > psi_limit`` **and** ``ks_pvalue < ks_pvalue_threshold``; the
data **drifts** when the share of drifting features is at least ``min_drift_share``. With fewer
than two chunks (a reference shorter than twice the current sample) the limit is the plain
``psi_threshold`` and the report says so.

Defaults and the measurements behind them (``tests/test_drift.py`` repeats the key rows):
reference = ETH/BTC 5m train rows 2018-01-10..24 (3 895 rows, rebuilt by
`reference_from_metadata`), current = the last 3 days of each file; drifting features of 22:

==============================================  =====  ======  ======  ======  ======
current sample                                   rows   m=0     m=1.0   m=1.25  m=1.5
==============================================  =====  ======  ======  ======  ======
ETH/BTC 01-27..30 (same pair, held-out test)      865   19      6       **1**   1
ETH/BTC 01-24..27 (same pair, validation period)  865   18      4       **2**   0
LTC / ETC / XMR / ZEC / DASH vs BTC, same days    865   5-18    1-6     **1-5** 1-4
XRP/USDT futures, Nov 2021                        865   12      9       **8**   5
UNITTEST/BTC 30m, Dec 2017 - Jan 2018             145   19      18      **18**  16
XRP/ETH 5m, Oct 2019                              633   21      18      **17**  16
UNITTEST/BTC 1m, Nov 2017                        4321   8       7       **7**   7
==============================================  =====  ======  ======  ======  ======

(m = ``null_margin``; m = 0 is the uncalibrated rule "PSI > 0.2 and KS p < 0.01".) With the
defaults ``null_margin = 1.25`` and ``min_drift_share = 0.25`` (6 of 22 features) the same pair
is at <= 2 drifting features, BTC-quoted pairs of the same weeks at <= 5 (no drift: same
market, same regime) and every other market or timeframe at >= 7 (drift). The same split holds
for recent windows of 1 to 4 days and for references of 8, 12 and 20 days of training data.
``psi_threshold = 0.2`` is the customary "significant shift" level and matters where the
reference is calm or calibration is impossible. ``ks_pvalue_threshold = 0.01`` keeps KS as a
guard for tiny samples (with hundreds of autocorrelated rows its p-values are near zero
whenever PSI is large).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from .data.candles import CandleSeries
    from .features import FeatureConfig

logger = logging.getLogger(__name__)

__all__ = [
    "DriftConfig",
    "DriftReport",
    "FeatureDrift",
    "FeatureSample",
    "DriftReferenceError",
    "compare_features",
    "ks_test",
    "psi",
    "psi_bin_edges",
    "psi_from_counts",
    "reference_chunk_psi",
    "span_rows",
    "reference_from_metadata",
    "recent_features",
    "plot_drift_report",
]


class DriftReferenceError(RuntimeError):
    """The reference (training) features could not be rebuilt; the message says which source failed."""


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds of the drift decision (see the module docstring for the measurements)."""

    psi_threshold: float = 0.2
    """Smallest PSI that can count as drift (0.2: the customary 'significant shift' level)."""

    ks_pvalue_threshold: float = 0.01
    """A drifting feature also needs a two-sample KS p-value below this."""

    null_margin: float = 1.25
    """A feature's PSI must exceed this many times the largest PSI of a same-length chunk of the
    reference against the rest of it (0 disables the calibration: the limit is psi_threshold)."""

    min_drift_share: float = 0.25
    """The data drifts when at least this share of the features drift (0.25 = 6 of 22)."""

    bins: int = 10
    """PSI bins: reference quantiles (10 = deciles)."""

    eps: float = 1e-4
    """Floor of a bin's share in PSI (an empty bin would make it infinite)."""

    def __post_init__(self) -> None:
        checks = [
            (math.isfinite(self.psi_threshold) and self.psi_threshold >= 0, "psi_threshold must be >= 0"),
            (0 < self.ks_pvalue_threshold <= 1, "ks_pvalue_threshold must be in (0, 1]"),
            (math.isfinite(self.null_margin) and self.null_margin >= 0, "null_margin must be >= 0"),
            (0 < self.min_drift_share <= 1, "min_drift_share must be in (0, 1]"),
            (isinstance(self.bins, int) and self.bins >= 2, "bins must be an int >= 2"),
            (0 < self.eps < 0.1, "eps must be in (0, 0.1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"DriftConfig: {message}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# pure statistics
# --------------------------------------------------------------------------------------------


def psi_bin_edges(reference: np.ndarray, bins: int = 10) -> np.ndarray:
    """Inner bin edges: the reference's ``1/bins .. (bins-1)/bins`` quantiles, duplicates removed
    (a feature with many equal values gets fewer bins). Bin i holds ``edges[i-1] <= x < edges[i]``."""
    ref = np.asarray(reference, dtype=np.float64)
    if ref.size == 0:
        raise ValueError("psi_bin_edges: empty reference")
    return np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges, np.asarray(values, dtype=np.float64), side="right")


def psi_from_counts(expected: np.ndarray, actual: np.ndarray, eps: float = 1e-4) -> float:
    """PSI of two histograms over the same bins: ``sum((q - p) * ln(q / p))``, shares floored at eps."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape or e.sum() <= 0 or a.sum() <= 0:
        raise ValueError("psi_from_counts: two non-empty histograms of the same bins are needed")
    p = np.maximum(e / e.sum(), eps)
    q = np.maximum(a / a.sum(), eps)
    return float(np.sum((q - p) * np.log(q / p)))


def psi(
    reference: np.ndarray, current: np.ndarray, bins: int = 10, eps: float = 1e-4, edges: np.ndarray | None = None
) -> float:
    """Population stability index of ``current`` against ``reference`` (1-D samples) over the
    reference's quantile bins. 0 for identical distributions; symmetric in the two shares."""
    edges = psi_bin_edges(reference, bins) if edges is None else edges
    k = edges.size + 1
    p = np.bincount(_bin_index(reference, edges), minlength=k)
    q = np.bincount(_bin_index(current, edges), minlength=k)
    return psi_from_counts(p, q, eps)


def span_rows(days: float, timeframe: str | None) -> int:
    """Candles of ``timeframe`` in ``days`` (0 when the timeframe is unknown): the reference rows
    spanning as much time as the recent window, the least size of a calibration chunk."""
    if not timeframe:
        return 0
    from .data import timeframe_to_timedelta

    return int(pd.Timedelta(days=float(days)) // timeframe_to_timedelta(timeframe))


def reference_chunk_psi(
    reference: np.ndarray,
    chunk_size: int,
    edges: np.ndarray,
    eps: float = 1e-4,
    groups: np.ndarray | None = None,
    stride: int | None = None,
) -> np.ndarray:
    """PSI of every chunk of ``chunk_size`` consecutive reference rows against the rest of the
    reference (same bins): how much PSI the training data shows against itself at that sample size.

    Chunks start every ``stride`` rows (default half a chunk) and never span two ``groups``
    (series); returns an empty array when no chunk fits or the rest would be empty.
    """
    ref = np.asarray(reference, dtype=np.float64)
    n = ref.shape[0]
    if chunk_size < 1 or chunk_size >= n:
        return np.empty(0)
    stride = max(1, stride or chunk_size // 2)
    k = edges.size + 1
    idx = _bin_index(ref, edges)
    onehot_cum = np.zeros((n + 1, k), dtype=np.int64)
    np.add.at(onehot_cum, (np.arange(1, n + 1), idx), 1)
    onehot_cum = np.cumsum(onehot_cum, axis=0)  # (n+1, k): counts of rows [0, i)
    total = onehot_cum[-1]
    grp = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups)
    out = []
    for s in range(0, n - chunk_size + 1, stride):
        e = s + chunk_size
        if grp[s] != grp[e - 1]:
            continue
        chunk = onehot_cum[e] - onehot_cum[s]
        out.append(psi_from_counts(total - chunk, chunk, eps))
    return np.asarray(out, dtype=np.float64)


def ks_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``): (statistic, p-value)."""
    from scipy.stats import ks_2samp

    res = ks_2samp(np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64))
    return float(res.statistic), float(res.pvalue)


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's row of the drift table."""

    feature: str
    psi: float
    psi_limit: float
    """max(psi_threshold, null_margin * reference_chunk_psi_max): the PSI this feature must exceed."""
    reference_chunk_psi_max: float
    """Largest PSI of a same-length reference chunk against the rest (NaN: not calibrated)."""
    ks_statistic: float
    ks_pvalue: float
    drifted: bool


@dataclass
class DriftReport:
    """Per-feature table and the overall decision; JSON / CSV / PNG writers."""

    features: list[FeatureDrift]
    drifted: bool
    drift_share: float
    n_reference: int
    n_current: int
    config: DriftConfig
    calibrated: bool
    reference: dict[str, Any] = field(default_factory=dict)
    """Where the reference came from (model version, sources, time ranges)."""
    current: dict[str, Any] = field(default_factory=dict)
    """Where the current sample came from (sources, time range)."""

    @property
    def n_drifted(self) -> int:
        return sum(f.drifted for f in self.features)

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def summary(self) -> str:
        """One line: the decision and why."""
        verdict = "drift" if self.drifted else "no drift"
        top = sorted(self.features, key=lambda f: f.psi / max(f.psi_limit, 1e-12), reverse=True)[:3]
        worst = ", ".join(f"{f.feature} psi {f.psi:.2f}/{f.psi_limit:.2f}" for f in top)
        return (
            f"{verdict}: {self.n_drifted} of {len(self.features)} features drifted "
            f"(share {self.drift_share:.2f}, needs >= {self.config.min_drift_share:g}); "
            f"{self.n_current} recent rows vs {self.n_reference} reference rows"
            + ("" if self.calibrated else " (limits not calibrated: reference too short)")
            + (f"; largest: {worst}" if worst else "")
        )

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(f) for f in self.features])

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "drift_share": self.drift_share,
            "n_drifted": self.n_drifted,
            "n_features": len(self.features),
            "drifted_features": self.drifted_features,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "calibrated": self.calibrated,
            "summary": self.summary,
            "config": self.config.to_dict(),
            "reference": self.reference,
            "current": self.current,
            "features": [
                {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(f).items()}
                for f in self.features
            ],
        }

    def format_table(self) -> str:
        """The per-feature table as aligned text (what ``check-drift`` prints)."""
        head = ("feature", "psi", "limit", "ks_stat", "ks_pvalue", "drifted")
        rows = [head] + [
            (
                f.feature,
                f"{f.psi:.3f}",
                f"{f.psi_limit:.3f}",
                f"{f.ks_statistic:.3f}",
                f"{f.ks_pvalue:.2e}",
                "YES" if f.drifted else "-",
            )
            for f in self.features
        ]
        w = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)) for r in rows]
        lines.insert(1, "  ".join("-" * x for x in w))
        return "\n".join(lines)

    def write(self, directory: str | os.PathLike[str], plot: bool = True) -> dict[str, Path]:
        """Write ``drift_report.json``, ``drift_report.csv`` and (``plot``) ``drift_report.png``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"drift_report.json": out / "drift_report.json", "drift_report.csv": out / "drift_report.csv"}
        paths["drift_report.json"].write_text(json.dumps(self.to_dict(), indent=2, default=str))
        self.to_frame().to_csv(paths["drift_report.csv"], index=False)
        if plot:
            paths["drift_report.png"] = plot_drift_report(self, out / "drift_report.png")
        return paths


def compare_features(
    reference: np.ndarray,
    current: np.ndarray,
    feature_names: Sequence[str],
    config: DriftConfig | None = None,
    reference_groups: np.ndarray | None = None,
    min_chunk_rows: int = 0,
) -> DriftReport:
    """The drift table of ``current`` (m, F) against ``reference`` (n, F); rows with NaN are dropped.

    ``reference_groups`` (n,) marks the series of each reference row, so calibration chunks never
    span two series. Pure: no I/O.
    """
    cfg = config or DriftConfig()
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.ndim != 2 or cur.ndim != 2 or ref.shape[1] != cur.shape[1] or ref.shape[1] != len(feature_names):
        raise ValueError(
            f"compare_features: reference {ref.shape}, current {cur.shape} and "
            f"{len(feature_names)} feature names do not match"
        )
    keep_ref = np.isfinite(ref).all(axis=1)
    groups = None if reference_groups is None else np.asarray(reference_groups)[keep_ref]
    ref = ref[keep_ref]
    cur = cur[np.isfinite(cur).all(axis=1)]
    if ref.shape[0] < cfg.bins or cur.shape[0] < cfg.bins:
        raise ValueError(
            f"compare_features: too few rows to compare ({ref.shape[0]} reference, "
            f"{cur.shape[0]} current; need at least {cfg.bins} each)"
        )
    chunk = min(max(int(min_chunk_rows), cur.shape[0]), ref.shape[0] // 2)
    rows: list[FeatureDrift] = []
    calibrated = cfg.null_margin > 0
    for j, name in enumerate(feature_names):
        edges = psi_bin_edges(ref[:, j], cfg.bins)
        value = psi(ref[:, j], cur[:, j], eps=cfg.eps, edges=edges)
        null = reference_chunk_psi(ref[:, j], chunk, edges, cfg.eps, groups) if cfg.null_margin > 0 else np.empty(0)
        if null.size < 2:
            calibrated = False
        null_max = float(null.max()) if null.size >= 2 else float("nan")
        limit = max(cfg.psi_threshold, cfg.null_margin * null_max) if null.size >= 2 else cfg.psi_threshold
        stat, pvalue = ks_test(ref[:, j], cur[:, j])
        rows.append(
            FeatureDrift(
                name,
                value,
                float(limit),
                null_max,
                stat,
                pvalue,
                bool(value > limit and pvalue < cfg.ks_pvalue_threshold),
            )
        )
    share = sum(r.drifted for r in rows) / len(rows) if rows else 0.0
    drifted = bool(rows) and any(r.drifted for r in rows) and share >= cfg.min_drift_share - 1e-12
    return DriftReport(
        features=rows,
        drifted=drifted,
        drift_share=float(share),
        n_reference=int(ref.shape[0]),
        n_current=int(cur.shape[0]),
        config=cfg,
        calibrated=calibrated,
    )


def plot_drift_report(report: DriftReport, path: str | os.PathLike[str]) -> Path:
    """Two panels: PSI per feature against its limit (drifting features in red), and KS statistic."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [f.feature for f in report.features]
    psis = np.array([f.psi for f in report.features])
    limits = np.array([f.psi_limit for f in report.features])
    ks = np.array([f.ks_statistic for f in report.features])
    colors = ["#d62728" if f.drifted else "#1f77b4" for f in report.features]
    y = np.arange(len(names))
    fig = Figure(figsize=(10, max(3.5, 0.28 * len(names) + 1.5)))
    ax1 = fig.add_subplot(1, 2, 1)
    ax1.barh(y, psis, color=colors)
    ax1.scatter(limits, y, marker="|", s=200, color="black", label="limit")
    ax1.set_yticks(y, labels=names)
    ax1.invert_yaxis()
    ax1.set_xscale("symlog", linthresh=0.1)
    ax1.set_xlim(0, float(np.nanmax(np.r_[psis, limits, 0.2])) * 1.6)
    ax1.set_xlabel("PSI (red: drifted)")
    ax1.legend(loc="lower right")
    ax1.set_title(f"PSI, {report.n_drifted}/{len(names)} drifted")
    ax2 = fig.add_subplot(1, 2, 2)
    ax2.barh(y, ks, color=colors)
    ax2.set_yticks(y, labels=[])
    ax2.invert_yaxis()
    ax2.set_xlim(0, 1)
    ax2.set_xlabel("KS statistic")
    ax2.set_title("two-sample KS")
    fig.suptitle(
        ("DRIFT: " if report.drifted else "no drift: ")
        + f"{report.n_current} recent vs {report.n_reference} reference rows"
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(out, format="png", dpi=100)
    return out


# --------------------------------------------------------------------------------------------
# building the two samples from candles
# --------------------------------------------------------------------------------------------


@dataclass
class FeatureSample:
    """Feature rows (NaN-free) with the series of each row and a description of where they came from."""

    X: np.ndarray
    """(n, F) float32 features."""
    groups: np.ndarray
    """(n,) int series index of each row."""
    info: dict[str, Any]


def _feature_config(pipeline: Mapping[str, Any]) -> FeatureConfig:
    from .features import FeatureConfig

    return FeatureConfig.from_dict(pipeline["feature_config"])


def _utc(ts: Any) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _series_features(
    series: CandleSeries, fcfg: FeatureConfig, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> np.ndarray:
    from .features import build_feature_matrix

    frame = series.frame
    X = build_feature_matrix(frame, fcfg)  # (n, F)
    ts = pd.to_datetime(frame["timestamp"], utc=True)
    keep = np.isfinite(X).all(axis=1)
    if start is not None:
        keep &= (ts >= start).to_numpy()
    if end is not None:
        keep &= (ts <= end).to_numpy()
    return np.ascontiguousarray(X[keep])


def _load_reference_series(
    source: str, symbol: str, timeframe: str | None, *, max_fill_gap: int, database_url: str | None
) -> Any:
    from .data import is_postgres_url, load_candles

    if is_postgres_url(source):
        url, _, table = source.partition("#")
        # The recorded source has no password; the configured candles URL (a secret) has it.
        if database_url and is_postgres_url(database_url):
            url = database_url.split("#", 1)[0]
        series = load_candles(
            url, symbols=[symbol], timeframe=timeframe, max_fill_gap=max_fill_gap, table=table or "candles", min_rows=1
        )
    else:
        series = load_candles(source, symbols=[symbol], timeframe=timeframe, max_fill_gap=max_fill_gap, min_rows=1)
    return series[0]


def reference_from_metadata(
    metadata: Mapping[str, Any],
    *,
    reference_data: str | None = None,
    database_url: str | None = None,
    max_fill_gap: int = 3,
) -> FeatureSample:
    """Features of the production version's training rows, rebuilt from its ``metadata.json``.

    Every series in ``metadata['data']`` is reloaded from its recorded source (a PostgreSQL source
    uses ``database_url`` for the password when given), features are computed with the version's
    ``pipeline.feature_config`` and the rows covered by train windows
    (``dataset.time_range.train[symbol]``, extended back by ``window - 1`` candles) are kept.
    ``reference_data`` (a file, folder or URL) replaces the recorded sources; then the whole of it
    is the reference. Raises :class:`DriftReferenceError` naming the source that failed.
    """
    from .data import load_candles, timeframe_to_timedelta

    try:
        pipeline = metadata["pipeline"]
        data = metadata["data"]
        fcfg = _feature_config(pipeline)
    except (KeyError, TypeError, ValueError) as exc:
        raise DriftReferenceError(f"model metadata lacks the pipeline or data description ({exc})") from None
    window = int(pipeline.get("window", 1))
    timeframe = data.get("timeframe")
    if reference_data:
        try:
            series = load_candles(reference_data, timeframe=timeframe, max_fill_gap=max_fill_gap, min_rows=1)
        except Exception as exc:  # noqa: BLE001 - any loader failure is one DriftReferenceError
            raise DriftReferenceError(f"reference data {reference_data}: {exc}") from None
        parts = [_series_features(s, fcfg, None, None) for s in series]
        info: dict[str, Any] = {
            "kind": "explicit",
            "source": str(reference_data),
            "symbols": [s.symbol for s in series],
        }
    else:
        train_ranges = ((metadata.get("dataset") or {}).get("time_range") or {}).get("train") or {}
        sources = list(data.get("sources") or [])
        symbols = list(data.get("symbols") or [])
        if not sources or len(sources) != len(symbols):
            raise DriftReferenceError("model metadata names no data sources to rebuild the reference from")
        step = timeframe_to_timedelta(timeframe) if timeframe else pd.Timedelta(0)
        parts, ranges = [], {}
        for source, symbol in zip(sources, symbols):
            rng = train_ranges.get(symbol)
            if not rng:
                raise DriftReferenceError(f"model metadata has no train time range for {symbol}")
            start = _utc(rng["start"]) - step * (window - 1)
            end = _utc(rng["end"])
            try:
                s = _load_reference_series(
                    source, symbol, timeframe, max_fill_gap=max_fill_gap, database_url=database_url
                )
            except Exception as exc:  # noqa: BLE001 - any loader failure is one DriftReferenceError
                raise DriftReferenceError(
                    f"cannot rebuild the drift reference from {source} ({symbol}): {exc}; "
                    "pass the training candles as reference_data (--reference-data)"
                ) from None
            part = _series_features(s, fcfg, start, end)
            if part.shape[0] == 0:
                raise DriftReferenceError(
                    f"{source} ({symbol}) holds no candles in the training range {start} .. {end}; "
                    "pass the training candles as reference_data (--reference-data)"
                )
            parts.append(part)
            ranges[symbol] = {"start": start.isoformat(), "end": end.isoformat(), "rows": int(part.shape[0])}
        info = {"kind": "training_rows", "sources": sources, "symbols": symbols, "time_range": ranges}
    X = np.concatenate(parts) if parts else np.empty((0, 0), dtype=np.float32)
    groups = np.concatenate([np.full(p.shape[0], i) for i, p in enumerate(parts)]) if parts else np.empty(0)
    info["rows"] = int(X.shape[0])
    return FeatureSample(X=X, groups=groups, info=info)


def recent_features(series_list: Sequence[Any], pipeline: Mapping[str, Any], recent_days: float) -> FeatureSample:
    """Features of the last ``recent_days`` of each series (features computed on the whole series,
    so the window loses no warm-up rows when history before it is present)."""
    fcfg = _feature_config(pipeline)
    parts, ranges = [], {}
    for s in series_list:
        ts = pd.to_datetime(s.frame["timestamp"], utc=True)
        end = ts.iloc[-1]
        start = end - pd.Timedelta(days=float(recent_days))
        part = _series_features(s, fcfg, start, None)
        parts.append(part)
        ranges[s.symbol] = {"start": start.isoformat(), "end": end.isoformat(), "rows": int(part.shape[0])}
    X = np.concatenate(parts) if parts else np.empty((0, 0), dtype=np.float32)
    groups = np.concatenate([np.full(p.shape[0], i) for i, p in enumerate(parts)]) if parts else np.empty(0)
    info = {
        "sources": [s.source for s in series_list],
        "symbols": [s.symbol for s in series_list],
        "timeframes": sorted({str(s.timeframe) for s in series_list}),
        "recent_days": float(recent_days),
        "time_range": ranges,
        "rows": int(X.shape[0]),
    }
    return FeatureSample(X=X, groups=groups, info=info)
