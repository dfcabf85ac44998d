"""What one training produced: :class:`TrainingOutcome` (frozen), and the tags its registry version carries."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._provenance import code_version

__all__ = ["GUIDE_METRIC_ALIASES", "SplitRows", "TrainingOutcome", "version_tags"]

#: The guide's metric names, logged beside the project's own (same values): its example 2 reads
#: ``test_f1`` and its filters ask for ``metrics.accuracy``.
GUIDE_METRIC_ALIASES = {"accuracy": "test_accuracy", "test_f1": "test_f1_macro"}


@dataclass(frozen=True)
class SplitRows:
    """Windows per split."""

    train: int
    val: int
    test: int


@dataclass(frozen=True)
class TrainingOutcome:
    """What one training produced: files, metrics and, when tracked, the logged model."""

    run_name: str
    output_dir: Path
    model_path: Path
    metadata_path: Path
    onnx_path: Path | None
    onnx_max_abs_diff: float | None
    """Largest |ONNX Runtime - PyTorch| on a real batch; None without an ONNX export."""
    plots: Mapping[str, Path]
    test_metrics: Mapping[str, Any]
    """:func:`evaluation.classification_metrics` on the test split (accuracy, f1_macro, per class, confusion matrix)."""
    baselines: Mapping[str, Mapping[str, Any]]
    """``majority`` and ``previous_direction`` baselines on the same test windows."""
    backtest: Mapping[str, float]
    """Scalar backtest metrics with fees (total_return, sharpe, max_drawdown, n_trades, buy_and_hold_*...)."""
    history: tuple[Mapping[str, float], ...]
    best_epoch: int | None
    data_hash: str
    symbols: tuple[str, ...]
    timeframe: str
    rows: SplitRows
    fit_seconds: float
    wall_seconds: float
    dataset_digests: Mapping[str, str] = field(default_factory=dict)
    """Digest of each split's dataset input (``train``, ``val``, ``test``) when tracked."""
    model_uri: str | None = None
    """``models:/<model_id>`` of the logged model when tracked."""
    family: str = "hybrid_cnn_lstm"
    """The model family (``backend.ml_engine.families``)."""
    n_parameters: int | None = None
    signal_policy: str = ""
    """``SignalPolicy.describe()`` of the backtest."""
    temperature: float | None = None
    """The fitted calibration temperature (None: not calibrated)."""

    @property
    def model_id(self) -> str | None:
        return self.model_uri[len("models:/") :] if self.model_uri else None

    def final_metrics(self) -> dict[str, float]:
        """The flat metrics logged at the end of the run: ``test_*``, ``baseline_*``, ``backtest_*`` and the
        guide's names (:data:`GUIDE_METRIC_ALIASES`)."""
        out = {
            f"test_{k}": float(v)
            for k, v in self.test_metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        out.update({alias: out[key] for alias, key in GUIDE_METRIC_ALIASES.items() if key in out})
        out.update(_flatten_numbers(self.baselines, "baseline"))
        out.update({f"backtest_{k}": float(v) for k, v in self.backtest.items()})
        return out

    def to_result(self) -> dict[str, Any]:
        """The keys the guide's result dict carries about the training itself (JSON-able values)."""
        return {
            "output_dir": str(self.output_dir),
            "model_path": str(self.model_path),
            "onnx_path": str(self.onnx_path) if self.onnx_path else None,
            "onnx_max_abs_diff": self.onnx_max_abs_diff,
            "metadata_path": str(self.metadata_path),
            "plots": {k: str(v) for k, v in self.plots.items()},
            "test_metrics": dict(self.test_metrics),
            "baselines": {k: dict(v) for k, v in self.baselines.items()},
            "backtest": dict(self.backtest),
            "history": [dict(h) for h in self.history],
            "best_epoch": self.best_epoch,
            "data_hash": self.data_hash,
            "symbols": list(self.symbols),
            "timeframe": self.timeframe,
            "rows": dataclasses.asdict(self.rows),
            "fit_seconds": self.fit_seconds,
            "wall_seconds": self.wall_seconds,
            "model_uri": self.model_uri,
            "model_id": self.model_id,
            "datasets": dict(self.dataset_digests),
            "family": self.family,
            "n_parameters": self.n_parameters,
            "signal_policy": self.signal_policy,
            "temperature": self.temperature,
        }


def version_tags(outcome: TrainingOutcome, run_id: str | None, training_mode: str) -> dict[str, str]:
    """The tags every registered version carries (the guide's problem no. 2: no empty tag list)."""
    tm = outcome.test_metrics
    parity = outcome.onnx_max_abs_diff
    return {
        "run_id": run_id or "",
        "data_hash": outcome.data_hash,
        "symbol": ",".join(outcome.symbols),
        "timeframe": outcome.timeframe,
        "test_accuracy": f"{tm['accuracy']:.4f}",
        "test_f1_macro": f"{tm['f1_macro']:.4f}",
        "backtest_sharpe": f"{outcome.backtest.get('sharpe', float('nan')):.4f}",
        "backtest_n_trades": str(int(outcome.backtest.get("n_trades", 0))),
        "backtest_sharpe_low": f"{outcome.backtest.get('sharpe_low', float('nan')):.4f}",
        "backtest_sharpe_high": f"{outcome.backtest.get('sharpe_high', float('nan')):.4f}",
        "model_family": outcome.family,
        "signal_policy": outcome.signal_policy,
        "calibration_temperature": f"{outcome.temperature:.4f}" if outcome.temperature is not None else "none",
        "onnx_parity_max_abs_diff": f"{parity:.2e}" if parity is not None else "n/a",
        "training_mode": training_mode,
        "code_version": code_version(),
    }


def _flatten_numbers(d: Mapping[str, Any], prefix: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        key = f"{prefix}_{k}"
        if isinstance(v, dict):
            out.update(_flatten_numbers(v, key))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v)
    return out
