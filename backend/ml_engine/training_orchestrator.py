"""Training orchestrator: candles -> dataset -> HybridCNN-LSTM -> evaluation -> outputs and MLflow.

Library use (the guide's example 1)::

    orchestrator = TrainingOrchestrator()
    result = await orchestrator.train_model(model_name="hybrid_cnn_lstm", run_name="my_experiment_v1",
                                            export_onnx=True, auto_promote=True, min_accuracy_for_promotion=0.75)

CLI (the guide's flags)::

    python -m backend.ml_engine.training_orchestrator --epochs 100 --batch-size 128 --lr 0.0005 --date-range 60

A training writes into ``<output_dir>/<run_name>/``: ``model.pt`` (state dict and config), ``model.onnx``
(parity-checked against PyTorch), ``metadata.json``, PNG plots and per-epoch checkpoints; and, when
tracking is on, logs all of it into the MLflow experiment ``model_training`` and registers a version.

Seams: :func:`load_training_data` reads and validates the candles (before any MLflow run exists:
bad data or a ``--date-range`` longer than the data is refused without leaving an empty run),
:func:`run_training` trains, evaluates and logs, and returns a frozen :class:`TrainingOutcome`;
the guide's result dict is built from it only in :meth:`TrainingOrchestrator.train_model`.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from backend.ml_engine.cli_args import OneLineParser, positive_float, positive_int
from backend.ml_engine.config import DEFAULT_MODEL_NAME, EXPERIMENT_TRAINING, Settings
from backend.ml_engine.process import host_identity, pid_alive

if TYPE_CHECKING:  # pragma: no cover
    from backend.ml_engine.data.candles import CandleSeries
    from backend.ml_engine.dataset import PreparedData, SplitConfig
    from backend.ml_engine.features import FeatureConfig
    from backend.ml_engine.labels import LabelConfig
    from backend.ml_engine.mlflow_integration import MLflowTracker
    from backend.ml_engine.model import ModelConfig
    from backend.ml_engine.trainer import Callback, TrainerConfig

logger = logging.getLogger(__name__)

#: The guide's metric names, logged beside the project's own (same values): its example 2 reads
#: ``test_f1`` and its filters ask for ``metrics.accuracy``.
GUIDE_METRIC_ALIASES = {"accuracy": "test_accuracy", "test_f1": "test_f1_macro"}


# --------------------------------------------------------------------------------------------
# Request: everything one training needs, built from Settings plus per-call overrides
# --------------------------------------------------------------------------------------------
@dataclass
class DataSpec:
    """Where the candles come from and which part of them to use."""

    path: str
    """A file, a folder of files, or a postgresql:// URL of a candles table."""
    symbols: list[str] = field(default_factory=list)
    """Symbols to use; empty means every file in a folder."""
    timeframe: str | None = None
    """Candle timeframe such as 5m; None infers it from file names."""
    date_range_days: float | None = None
    """Use only the last N days of every series."""
    max_fill_gap: int = 3
    """Gaps of at most this many candles are forward-filled; longer gaps split a series."""
    table: str = "candles"
    """Table name when `path` is a PostgreSQL URL."""


@dataclass
class TrainingRequest:
    """The full, typed description of one training."""

    data: DataSpec
    features: FeatureConfig
    labels: LabelConfig
    split: SplitConfig
    model: ModelConfig
    trainer: TrainerConfig
    window: int = 60
    fee: float = 0.001

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> "TrainingRequest":
        """Defaults from settings; overrides use flat names (epochs, batch_size, lr, date_range, ...)."""
        from backend.ml_engine.dataset import SplitConfig
        from backend.ml_engine.features import FeatureConfig
        from backend.ml_engine.labels import LabelConfig
        from backend.ml_engine.model import ModelConfig
        from backend.ml_engine.trainer import TrainerConfig

        o = {k: v for k, v in overrides.items() if v is not None}
        window = int(o.get("window", settings.window))
        horizon = int(o.get("horizon", settings.horizon))
        data = DataSpec(
            path=str(o.get("data", settings.data_path)),
            symbols=list(o.get("symbols") or settings.symbol_list),
            timeframe=o.get("timeframe", settings.timeframe),
            date_range_days=o.get("date_range"),
            max_fill_gap=int(o.get("max_fill_gap", settings.max_fill_gap)),
            table=settings.candles_table,
        )
        labels = LabelConfig(horizon=horizon)
        features = FeatureConfig()
        split = SplitConfig(purge_gap=window + horizon)
        model_kwargs = dict(o.get("model_kwargs") or {})
        model = ModelConfig(n_features=1, window=window, **model_kwargs)  # n_features set once known
        trainer = TrainerConfig(
            epochs=int(o.get("epochs", settings.epochs)),
            batch_size=int(o.get("batch_size", settings.batch_size)),
            learning_rate=float(o.get("lr", settings.learning_rate)),
            seed=int(o.get("seed", settings.seed)),
            device=str(o.get("device", settings.device)),
            **dict(o.get("trainer_kwargs") or {}),
        )
        return cls(data=data, features=features, labels=labels, split=split, model=model, trainer=trainer, window=window)


    def to_dict(self) -> dict[str, Any]:
        return {"data": dataclasses.asdict(self.data), "features": _as_dict(self.features),
                "labels": _as_dict(self.labels), "split": _as_dict(self.split), "model": _as_dict(self.model),
                "trainer": _as_dict(self.trainer), "window": self.window, "fee": self.fee}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainingRequest":
        from backend.ml_engine.dataset import SplitConfig
        from backend.ml_engine.features import FeatureConfig
        from backend.ml_engine.labels import LabelConfig
        from backend.ml_engine.model import ModelConfig
        from backend.ml_engine.trainer import TrainerConfig

        return cls(data=DataSpec(**d["data"]), features=FeatureConfig.from_dict(d["features"]),
                   labels=LabelConfig.from_dict(d["labels"]), split=SplitConfig.from_dict(d["split"]),
                   model=ModelConfig.from_dict(d["model"]), trainer=TrainerConfig.from_dict(d["trainer"]),
                   window=int(d["window"]), fee=float(d["fee"]))


REQUEST_FILE = "request.json"


def _as_dict(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "to_dict"):
        out: dict[str, Any] = obj.to_dict()
        return out
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return dict(obj)


def code_version() -> str:
    """The git commit of the working tree when there is one, else the package version."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        if sha.returncode == 0 and sha.stdout.strip():
            return sha.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trading-bot-ml-engine")
    except PackageNotFoundError:
        return "unknown"


def data_hash(series_list: Sequence[Any]) -> str:
    """SHA-256 over every candle of every series (timestamps and OHLCV), first 32 hex characters."""
    h = hashlib.sha256()
    for s in sorted(series_list, key=lambda s: s.symbol):
        h.update(s.symbol.encode())
        h.update(s.timeframe.encode())
        f = s.frame
        h.update(f["timestamp"].astype("int64").to_numpy().tobytes())
        h.update(f[["open", "high", "low", "close", "volume"]].to_numpy(dtype="float64").tobytes())
    return h.hexdigest()[:32]


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("torch", "numpy", "pandas", "mlflow", "onnx", "onnxruntime"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------------------------
# The synchronous pipeline (runs in a worker thread under asyncio)
# --------------------------------------------------------------------------------------------
class TrainingFailed(RuntimeError):
    """A training that could not produce a model; the message says why."""


@dataclass(frozen=True)
class TrainingData:
    """The validated candles of one training, read before any MLflow run starts."""

    series: tuple[CandleSeries, ...]
    digest: str
    """:func:`data_hash` over every candle."""

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(s.symbol for s in self.series)

    @property
    def timeframe(self) -> str:
        return self.series[0].timeframe


def load_training_data(request: TrainingRequest) -> TrainingData:
    """Load and validate the request's candles (``DataValidationError`` / ``ValueError`` for bad
    data or a ``date_range_days`` longer than the data holds)."""
    from backend.ml_engine.data import load_candles

    spec = request.data
    series = load_candles(
        spec.path, symbols=spec.symbols or None, timeframe=spec.timeframe, max_fill_gap=spec.max_fill_gap,
        min_rows=request.window + request.labels.horizon + 1, date_range_days=spec.date_range_days, table=spec.table,
    )
    for s in series:
        logger.info("data %s %s: %d candles from %s; %s", s.symbol, s.timeframe, len(s.frame), s.source,
                    s.report.summary())
    return TrainingData(tuple(series), data_hash(series))


def prepare_training_data(request: TrainingRequest, data: TrainingData) -> PreparedData:
    """Features, labels, purged splits and the normaliser (``ValueError`` when a split would be empty)."""
    from backend.ml_engine.dataset import prepare_dataset

    return prepare_dataset(list(data.series), request.features, request.labels, request.split, request.window)


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

    @property
    def model_id(self) -> str | None:
        return self.model_uri[len("models:/"):] if self.model_uri else None

    def final_metrics(self) -> dict[str, float]:
        """The flat metrics logged at the end of the run: ``test_*``, ``baseline_*``, ``backtest_*`` and the
        guide's names (:data:`GUIDE_METRIC_ALIASES`)."""
        out = {f"test_{k}": float(v) for k, v in self.test_metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
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
        }


def run_training(
    request: TrainingRequest,
    output_dir: Path,
    *,
    run_name: str,
    model_name: str = DEFAULT_MODEL_NAME,
    export_onnx: bool = True,
    callbacks: Sequence[Callback] = (),
    tracker: MLflowTracker | None = None,
    resume: bool = False,
    data: TrainingData | None = None,
    prepared: PreparedData | None = None,
) -> TrainingOutcome:
    """Train, evaluate and write outputs (and log them into ``tracker``'s active run).

    ``data`` / ``prepared``: candles and dataset already read (the orchestrator reads them before
    starting the run); read here when not given. Raises on bad data or divergence.
    """
    import numpy as np
    import torch

    from backend.ml_engine import evaluation, plots
    from backend.ml_engine.model import HybridCNNLSTM
    from backend.ml_engine.trainer import Trainer, seed_everything

    t_start = time.perf_counter()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)

    # 1. data ---------------------------------------------------------------------------
    data = data or load_training_data(request)
    prepared = prepared or prepare_training_data(request, data)
    series, digest = list(data.series), data.digest
    n_features = len(prepared.feature_names)
    request.model = dataclasses.replace(request.model, n_features=n_features, window=request.window)
    request.trainer = dataclasses.replace(request.trainer, checkpoint_dir=str(out / "checkpoints"))
    if not resume:  # the exact request, so that --resume continues the same training
        (out / REQUEST_FILE).write_text(json.dumps(request.to_dict(), indent=2, default=_json_default))

    symbols = list(data.symbols)
    timeframe = data.timeframe
    datasets: dict[str, Any] = {}
    if tracker is not None:
        from backend.ml_engine.lineage import split_datasets

        tracker.set_tags({"symbol": ",".join(symbols), "timeframe": timeframe, "data_hash": digest})
        model_params = _as_dict(request.model)
        model_params["hidden_size"] = request.model.lstm_hidden  # the guide's name (params.model_hidden_size)
        tracker.log_params(
            {
                "model": model_params,
                "trainer": {k: v for k, v in _as_dict(request.trainer).items() if k != "checkpoint_dir"},
                "data": {
                    "source": ",".join(s.source for s in series),
                    "symbols": ",".join(symbols),
                    "timeframe": timeframe,
                    "date_range_days": request.data.date_range_days,
                    "window": request.window,
                    "horizon": request.labels.horizon,
                    "label_threshold_mode": request.labels.threshold_mode,
                    "label_threshold": request.labels.threshold,
                    "max_fill_gap": request.data.max_fill_gap,
                    "n_features": n_features,
                    "rows_train": len(prepared.train),
                    "rows_val": len(prepared.val),
                    "rows_test": len(prepared.test),
                    "hash": digest,
                },
            }
        )
        # Lineage: the candles each split read, one dataset input each with its own digest.
        datasets = split_datasets(prepared, series)
        for ds in datasets.values():
            tracker.log_input(ds.frame, name=ds.name, source=ds.source, context=ds.context, digest=ds.digest,
                              tags={"split": ds.split, "rows": str(len(ds.frame)), "data_hash": digest})

    # 2. train --------------------------------------------------------------------------
    seed_everything(request.trainer.seed)  # initial weights repeat with the seed
    model = HybridCNNLSTM(request.model)
    trainer = Trainer(model, request.trainer, callbacks=list(callbacks))
    t_fit = time.perf_counter()
    result = trainer.fit(prepared.train, prepared.val, resume=resume)
    fit_seconds = time.perf_counter() - t_fit

    # 3. evaluate on the test split -------------------------------------------------------
    proba = trainer.predict_proba(prepared.test)
    y_pred = proba.argmax(axis=1)
    ends = prepared.test.ends
    y_true = prepared.y[ends]
    test_metrics = evaluation.classification_metrics(y_true, y_pred)
    # Previous direction: the last move fully realised at t is the label of row t - horizon.
    prev = prepared.y[ends - prepared.horizon]
    prev = np.where(prev < 0, 1, prev)
    baselines = evaluation.baseline_metrics(y_true, y_train=prepared.train.labels, prev_direction=prev)
    # A backtest return must never span a gap: series and segment together identify a run of bars.
    run_ids = prepared.series_id[ends].astype(np.int64) * 1_000_000 + prepared.segment[ends]
    bt = evaluation.backtest(y_pred, prepared.close[ends], run_ids, fee=request.fee, timeframe=timeframe)

    # 4. outputs ------------------------------------------------------------------------
    model.eval()
    torch.save({"state_dict": model.state_dict(), "model_config": _as_dict(request.model)}, out / "model.pt")
    example = prepared.test.get_batch(np.arange(min(8, len(prepared.test))))[0].numpy()  # (B, T, F) real batch
    onnx_info: dict[str, Any] = {}
    if export_onnx:
        from backend.ml_engine.onnx_export import export_onnx as _export

        res = _export(model, example, out / "model.onnx")
        onnx_info = {"path": str(res.path), "max_abs_diff": res.max_abs_diff, "opset": res.opset}
        logger.info("ONNX parity: max |onnx - torch| = %.2e", res.max_abs_diff)

    plot_paths = {
        "confusion_matrix.png": plots.plot_confusion_matrix(test_metrics["confusion_matrix"], out / "confusion_matrix.png"),
        "learning_curves.png": plots.plot_learning_curves(result.history, out / "learning_curves.png"),
        "equity_curve.png": plots.plot_equity_curve(
            {_run_label(prepared.symbols, k): v for k, v in bt["equity"].items()}, out / "equity_curve.png",
            title="Test-split backtest with fees: model vs buy & hold",
        ),
    }
    backtest_scalars = evaluation.scalar_metrics(bt)

    metadata = {
        "model_name": model_name,
        "run_name": run_name,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "code_version": code_version(),
        "model_config": _as_dict(request.model),
        "trainer_config": _as_dict(request.trainer),
        "feature_config": _as_dict(request.features),
        "label_config": _as_dict(request.labels),
        "split_config": _as_dict(request.split),
        "features": list(prepared.feature_names),
        "label_definition": {
            "classes": ["down", "flat", "up"],
            "horizon": request.labels.horizon,
            "threshold_mode": request.labels.threshold_mode,
            "threshold": request.labels.threshold,
        },
        "pipeline": prepared.pipeline,
        "data": {
            "sources": [s.source for s in series],
            "symbols": symbols,
            "timeframe": timeframe,
            "date_range_days": request.data.date_range_days,
            "start": min(str(s.frame["timestamp"].iloc[0]) for s in series),
            "end": max(str(s.frame["timestamp"].iloc[-1]) for s in series),
            "candles": {s.symbol: len(s.frame) for s in series},
            "repairs": {s.symbol: s.report.to_dict() for s in series},
            "hash": digest,
            "datasets": {k: {"name": d.name, "digest": d.digest, "rows": len(d.frame)} for k, d in datasets.items()},
        },
        "dataset": prepared.summary,
        "training": {
            "best_epoch": result.best_epoch,
            "best_metric": result.best_metric,
            "stopped_early": result.stopped_early,
            "epochs_run": len(result.history),
            "fit_seconds": fit_seconds,
            "history": result.history,
        },
        "test_metrics": test_metrics,
        "baselines": baselines,
        "backtest": backtest_scalars,
        "onnx": onnx_info,
        "library_versions": library_versions(),
    }
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2, default=_json_default))

    outcome = TrainingOutcome(
        run_name=run_name,
        output_dir=out,
        model_path=out / "model.pt",
        metadata_path=out / "metadata.json",
        onnx_path=Path(onnx_info["path"]) if onnx_info else None,
        onnx_max_abs_diff=onnx_info.get("max_abs_diff"),
        plots=plot_paths,
        test_metrics=test_metrics,
        baselines=baselines,
        backtest=backtest_scalars,
        history=tuple(result.history),
        best_epoch=result.best_epoch,
        data_hash=digest,
        symbols=tuple(symbols),
        timeframe=timeframe,
        rows=SplitRows(len(prepared.train), len(prepared.val), len(prepared.test)),
        fit_seconds=fit_seconds,
        wall_seconds=time.perf_counter() - t_start,
    )

    if tracker is not None:
        for p in plot_paths.values():
            tracker.log_artifact(str(p), artifact_path="plots")
        first_test_ends = prepared.test.ends[prepared.series_id[prepared.test.ends] == 0]  # rows of series[0].frame
        model_uri = tracker.log_model(
            model,
            model_name="model",
            input_example=example,
            onnx_path=onnx_info.get("path"),
            artifacts={"metadata.json": str(out / "metadata.json")},
            # the candle pyfunc's example: the last min_history_rows candles of the first series' test split
            serving_example=series[0].frame.iloc[: int(first_test_ends.max()) + 1].tail(
                prepared.pipeline["min_history_rows"]) if onnx_info and len(first_test_ends) else None,
        )
        outcome = dataclasses.replace(outcome, model_uri=model_uri,
                                      dataset_digests={k: d.digest for k, d in datasets.items()},
                                      wall_seconds=time.perf_counter() - t_start)
        # The final metrics belong to the logged model, measured on the test dataset: the MLflow model
        # page shows them, and search_logged_models filters and orders by them.
        test_ds = datasets["test"]
        tracker.log_metrics(outcome.final_metrics(), model_id=outcome.model_id, dataset_name=test_ds.name,
                            dataset_digest=test_ds.digest)
        tracker.flush()
    return outcome


def _run_label(symbols: Sequence[str], run_id: int) -> str:
    """'ETH/BTC' for the first segment of a series, 'ADA/BTC #2' for a later one."""
    series, segment = divmod(int(run_id), 1_000_000)
    return symbols[series] + (f" #{segment + 1}" if segment else "")


def _flatten_numbers(d: Mapping[str, Any], prefix: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        key = f"{prefix}_{k}"
        if isinstance(v, dict):
            out.update(_flatten_numbers(v, key))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v)
    return out


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


# --------------------------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------------------------
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
        "onnx_parity_max_abs_diff": f"{parity:.2e}" if parity is not None else "n/a",
        "training_mode": training_mode,
        "code_version": code_version(),
    }


class TrainingOrchestrator:
    """Runs trainings end to end and records each in MLflow (`model_training`)."""

    def __init__(self, settings: Settings | None = None, *, experiment_name: str = EXPERIMENT_TRAINING,
                 tracking: bool = True) -> None:
        self.settings = settings or Settings()
        self.experiment_name = experiment_name
        self.tracking = tracking

    async def train_model(
        self,
        model_name: str = DEFAULT_MODEL_NAME,
        run_name: str | None = None,
        export_onnx: bool = True,
        auto_promote: bool = False,
        min_accuracy_for_promotion: float | None = None,
        *,
        training_mode: str = "manual",
        callbacks: Sequence[Callback] = (),
        request: TrainingRequest | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """Train one model; never raises for a failed training: the result says ``success: False`` and why.

        The result (the guide's dict): ``success``, ``run_name``, ``run_id``, ``version``, ``promoted``,
        ``promotion_reason``, ``test_metrics`` (``accuracy``, ``f1_macro``, ...), ``baselines``,
        ``backtest``, ``history``, paths; ``error`` / ``error_type`` on failure.
        """
        return await asyncio.to_thread(
            self.train_model_sync,
            model_name=model_name,
            run_name=run_name,
            export_onnx=export_onnx,
            auto_promote=auto_promote,
            min_accuracy_for_promotion=min_accuracy_for_promotion,
            training_mode=training_mode,
            callbacks=callbacks,
            request=request,
            **overrides,
        )

    def train_model_sync(
        self,
        model_name: str = DEFAULT_MODEL_NAME,
        run_name: str | None = None,
        export_onnx: bool = True,
        auto_promote: bool = False,
        min_accuracy_for_promotion: float | None = None,
        *,
        training_mode: str = "manual",
        callbacks: Sequence[Callback] = (),
        request: TrainingRequest | None = None,
        resume: bool = False,
        **overrides: Any,
    ) -> dict[str, Any]:
        """:meth:`train_model` in the calling thread."""
        settings = self.settings
        run_name = run_name or f"{model_name}_{datetime.now(timezone.utc):%Y%m%d_%H%M%S_%f}"
        output_dir = Path(settings.output_dir) / run_name
        result: dict[str, Any] = {"success": False, "run_name": run_name, "run_id": None, "version": None,
                                  "promoted": False, "test_metrics": {}}
        # Everything that can refuse the input runs before an MLflow run exists: a refused training
        # leaves no empty FAILED run behind.
        try:
            if resume:
                saved = output_dir / REQUEST_FILE
                if not (output_dir / "checkpoints" / "last.pt").exists() or not saved.exists():
                    raise ValueError(f"nothing to resume: no checkpoint of run {run_name!r} in {output_dir}")
                request = TrainingRequest.from_dict(json.loads(saved.read_text()))  # the interrupted run's config
            request = request or TrainingRequest.from_settings(settings, **overrides)
            data = load_training_data(request)
            prepared = prepare_training_data(request, data)
        except Exception as exc:  # noqa: BLE001 - reported in the result, as every failure
            reason = _one_line(exc)
            logger.error("training %s refused: %s", run_name, reason)
            result.update({"error": reason, "error_type": type(exc).__name__})
            return result
        threshold = settings.min_accuracy_for_promotion if min_accuracy_for_promotion is None else min_accuracy_for_promotion

        tracker: MLflowTracker | None = None
        run_id: str | None = None
        if self.tracking:
            from backend.ml_engine.mlflow_integration import get_mlflow_tracker

            # Raises a clear error before any training when the store is unreachable.
            tracker = get_mlflow_tracker(experiment_name=self.experiment_name, settings=settings)
            reap_orphaned_runs(tracker)
            tags = {"training_mode": training_mode, "model_name": model_name, "code_version": code_version(),
                    "host": host_identity(), "pid": str(os.getpid())}
            if resume:
                tags["resumed"] = "true"
            run_id = tracker.start_run(run_name=run_name, tags=tags)
            result["run_id"] = run_id
        all_callbacks: list[Callback] = list(callbacks)
        if tracker is not None:
            from backend.ml_engine.mlflow_integration import MLflowCallback

            all_callbacks.append(MLflowCallback(tracker))

        try:
            outcome = run_training(
                request, output_dir, run_name=run_name, model_name=model_name, export_onnx=export_onnx,
                callbacks=all_callbacks, tracker=tracker, resume=resume, data=data, prepared=prepared,
            )
            result.update(outcome.to_result())
            if tracker is not None:
                result["version"] = self._register(tracker, outcome, model_name, run_id, training_mode)
                if auto_promote:
                    result.update(self._auto_promote(tracker, model_name, result["version"], threshold))
        except BaseException as exc:  # noqa: BLE001 - the result reports every failure; the run never stays RUNNING
            reason = _one_line(exc)
            logger.error("training %s failed: %s", run_name, reason)
            if tracker is not None:
                tracker.set_tags({"failure_reason": reason[:4000]})
                tracker.end_run(status="FAILED" if isinstance(exc, Exception) else "KILLED")
            if not isinstance(exc, Exception):
                raise
            result.update({"success": False, "error": reason, "error_type": type(exc).__name__})
            return result
        if tracker is not None:
            tracker.end_run(status="FINISHED")
        result["success"] = True
        return result

    @staticmethod
    def _register(tracker: MLflowTracker, outcome: TrainingOutcome, model_name: str, run_id: str | None,
                  training_mode: str) -> str:
        """A registry version whose tags and description say what it is (the guide's problem no. 2)."""
        assert outcome.model_uri is not None
        tm = outcome.test_metrics
        description = (
            f"HybridCNN-LSTM on {', '.join(outcome.symbols)} {outcome.timeframe}, run {outcome.run_name}: "
            f"test accuracy {tm['accuracy']:.3f}, macro F1 {tm['f1_macro']:.3f} "
            f"(majority baseline {outcome.baselines['majority']['accuracy']:.3f})."
        )
        return tracker.register_model(outcome.model_uri, model_name, tags=version_tags(outcome, run_id, training_mode),
                                      description=description)

    def _auto_promote(self, tracker: MLflowTracker, model_name: str, version: str, threshold: float) -> dict[str, Any]:
        """Through the model store's promotion gate (the one truth: the MLflow alias `production`)."""
        from backend.ml_engine.registry import PromotionGate, get_model_store
        from backend.ml_engine.verdicts import verdict_tag

        gate = PromotionGate.from_settings(self.settings, min_accuracy_for_promotion=threshold)
        store = get_model_store(tracker.settings, gate, client=tracker.client)
        try:
            decision = store.auto_promote(model_name, version)
        finally:
            store.close()
        tracker.set_tags({
            "promotion": "promoted" if decision.promoted else "refused",
            "promotion_reason": decision.reason[:4000],
            **verdict_tag(decision),
        })
        return {"promoted": decision.promoted, "promotion_reason": decision.reason,
                "promotion_checks": decision.verdict.to_dict() if decision.verdict else None}


def reap_orphaned_runs(tracker: MLflowTracker) -> list[str]:
    """End as KILLED the RUNNING runs of this host whose training process is gone (SIGKILL, OOM, power).

    A run records its host and pid when it starts; only runs of this host can be judged here.
    Returns the ids of the runs it ended.
    """
    host = host_identity()
    ended = []
    runs = tracker.client.search_runs(
        [tracker.experiment_id], filter_string=f"attributes.status = 'RUNNING' AND tags.host = '{host}'",
        max_results=200,
    )
    for run in runs:
        pid = run.data.tags.get("pid", "")
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            tracker.client.set_tag(run.info.run_id, "failure_reason", f"training process {pid} died before the run ended")
            tracker.client.set_terminated(run.info.run_id, status="KILLED")
            logger.warning("run %s (%s) was left RUNNING by dead process %s: marked KILLED",
                           run.info.run_id, run.info.run_name, pid)
            ended.append(run.info.run_id)
    return ended


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m backend.ml_engine.training_orchestrator",
        description="Train the HybridCNN-LSTM on market candles, evaluate it honestly, log it to MLflow "
        "(experiment model_training) and register a version. Defaults come from .env / environment.",
        epilog="Example: python -m backend.ml_engine.training_orchestrator --epochs 100 --batch-size 128 "
        "--lr 0.0005 --date-range 60",
    )
    p.add_argument("--epochs", type=positive_int, help="training epochs (default: ML_EPOCHS or 20)")
    p.add_argument("--batch-size", type=positive_int, help="batch size (default: ML_BATCH_SIZE or 128)")
    p.add_argument("--lr", type=positive_float, help="learning rate (default: ML_LEARNING_RATE or 0.001)")
    p.add_argument("--date-range", type=positive_float, metavar="DAYS", help="use only the last N days of candles")
    p.add_argument("--data", help="candle file (csv/parquet/feather), folder, or postgresql:// URL (default: bundled sample)")
    p.add_argument("--symbol", action="append", help="symbol to train on, e.g. ETH/BTC; repeat for several")
    p.add_argument("--timeframe", help="candle timeframe, e.g. 5m (default: ML_TIMEFRAME, else from file names)")
    p.add_argument("--seed", type=int, help="random seed; CPU runs with the same seed are repeatable")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where to train (default: auto)")
    p.add_argument("--window", type=positive_int, help="candles per input window (default: 60)")
    p.add_argument("--horizon", type=positive_int, help="label horizon in candles (default: 6)")
    p.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="registered model name (default: hybrid_cnn_lstm)")
    p.add_argument("--run-name", help="MLflow run name and output folder name (default: timestamped)")
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX export")
    p.add_argument("--no-mlflow", action="store_true", help="write local outputs only, no tracking")
    p.add_argument("--auto-promote", action="store_true", help="move alias production to the new version if it passes the gate")
    p.add_argument("--min-accuracy", type=float, help="promotion gate: minimal test accuracy")
    p.add_argument("--resume", action="store_true",
                   help="continue the run named by --run-name from its last checkpoint (after a crash or kill)")
    p.add_argument("--demo", action="store_true", help="small, quick configuration on the bundled data (used by make demo)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


DEMO_OVERRIDES = {"epochs": 3, "date_range": 10, "window": 32, "batch_size": 256}


def _print_summary(result: dict[str, Any], settings: Settings, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    tm = result["test_metrics"]
    base = result["baselines"]
    bt = result["backtest"]
    rows = [
        ("metric", "model", "majority", "prev. direction"),
        ("accuracy", f"{tm['accuracy']:.4f}", f"{base['majority']['accuracy']:.4f}", f"{base['previous_direction']['accuracy']:.4f}"),
        ("macro F1", f"{tm['f1_macro']:.4f}", f"{base['majority']['f1_macro']:.4f}", f"{base['previous_direction']['f1_macro']:.4f}"),
    ]
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    print("", file=stream)
    print(f"Test split ({result['rows']['test']} windows; train {result['rows']['train']}, val {result['rows']['val']})", file=stream)
    for i, r in enumerate(rows):
        print("  " + "  ".join(c.ljust(w[j]) for j, c in enumerate(r)), file=stream)
        if i == 0:
            print("  " + "  ".join("-" * w[j] for j in range(4)), file=stream)
    print("", file=stream)
    print("Backtest with fees     model       buy & hold", file=stream)
    print(f"  total return         {bt['total_return']:+.4f}     {bt['buy_and_hold_total_return']:+.4f}", file=stream)
    print(f"  Sharpe (annualised)  {bt['sharpe']:+.3f}      {bt['buy_and_hold_sharpe']:+.3f}", file=stream)
    print(f"  max drawdown         {bt['max_drawdown']:.4f}      {bt['buy_and_hold_max_drawdown']:.4f}", file=stream)
    print(f"  trades / win rate    {int(bt['n_trades'])} / {bt['win_rate']:.3f}", file=stream)
    print("", file=stream)
    if result.get("onnx_max_abs_diff") is not None:
        print(f"ONNX parity: max |onnx - torch| = {result['onnx_max_abs_diff']:.2e}", file=stream)
    print(f"Outputs:  {result['output_dir']}  (model.pt, model.onnx, metadata.json, plots)", file=stream)
    if result.get("run_id"):
        from backend.ml_engine.mlflow_integration.stores import mask_uri

        print(f"MLflow:   run {result['run_id']} in experiment '{EXPERIMENT_TRAINING}' at {mask_uri(settings.mlflow_tracking_uri)}", file=stream)
        print(f"Registry: {result.get('model_name', DEFAULT_MODEL_NAME)} version {result['version']}"
              + (" (promoted to production)" if result.get("promoted") else ""), file=stream)
        if result.get("promotion_reason") and not result.get("promoted"):
            print(f"Promotion refused: {result['promotion_reason']}", file=stream)
        print("Browse:   python start_mlflow_ui.py  ->  http://127.0.0.1:5000", file=stream)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.resume and not args.run_name:
        print("error: --resume needs --run-name (the run whose checkpoint to continue)", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        settings = Settings()
    except Exception as exc:  # pydantic ValidationError: bad .env value
        print(f"error: invalid settings: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT

    overrides: dict[str, Any] = dict(DEMO_OVERRIDES) if args.demo else {}
    overrides.update({k: v for k, v in {
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "date_range": args.date_range,
        "data": args.data, "symbols": args.symbol, "timeframe": args.timeframe, "seed": args.seed,
        "device": args.device, "window": args.window, "horizon": args.horizon,
    }.items() if v is not None})

    from backend.ml_engine.data import DataValidationError
    from backend.ml_engine.trainer import ProgressBarCallback

    try:
        request = TrainingRequest.from_settings(settings, **overrides)
    except (ValueError, TypeError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT

    orchestrator = TrainingOrchestrator(settings, tracking=not args.no_mlflow)
    try:
        result = orchestrator.train_model_sync(
            model_name=args.model_name, run_name=args.run_name, export_onnx=not args.no_onnx,
            auto_promote=args.auto_promote, min_accuracy_for_promotion=args.min_accuracy,
            callbacks=[ProgressBarCallback()], request=request, resume=args.resume,
        )
    except Exception as exc:  # store unreachable before training, and the like
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT if _is_bad_input(exc) else EXIT_FAILED
    if not result["success"]:
        print(f"error: {result['error']}", file=sys.stderr)
        return EXIT_BAD_INPUT if result.get("error_type") in {DataValidationError.__name__, "ValueError"} else EXIT_FAILED
    result["model_name"] = args.model_name
    _print_summary(result, settings)
    return EXIT_OK


def _is_bad_input(exc: BaseException) -> bool:
    from backend.ml_engine.data import DataValidationError

    return isinstance(exc, (DataValidationError, ValueError)) or type(exc).__name__ == "TrackingStoreUnavailable"


if __name__ == "__main__":
    sys.exit(main())
