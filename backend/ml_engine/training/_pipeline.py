"""One training, start to end: read and validate the candles, prepare windows, train, evaluate, write, log."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import DEFAULT_MODEL_NAME
from ._outcome import SplitRows, TrainingOutcome
from ._provenance import code_version, data_hash, library_versions
from ._request import REQUEST_FILE, TrainingRequest, as_dict

if TYPE_CHECKING:  # pragma: no cover
    from ..data.candles import CandleSeries
    from ..dataset import PreparedData
    from ..mlflow_integration import MLflowTracker
    from ..trainer import Callback

__all__ = ["TrainingData", "TrainingFailed", "load_training_data", "prepare_training_data", "run_training"]

logger = logging.getLogger("backend.ml_engine.training_orchestrator")


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
        spec.path,
        symbols=spec.symbols or None,
        timeframe=spec.timeframe,
        max_fill_gap=spec.max_fill_gap,
        min_rows=request.window + request.labels.horizon + 1,
        date_range_days=spec.date_range_days,
        table=spec.table,
        session=spec.session,
    )
    for s in series:
        logger.info(
            "data %s %s: %d candles from %s; %s", s.symbol, s.timeframe, len(s.frame), s.source, s.report.summary()
        )
    return TrainingData(tuple(series), data_hash(series))


def prepare_training_data(request: TrainingRequest, data: TrainingData) -> PreparedData:
    """Features, labels, purged splits and the normaliser (``ValueError`` when a split would be empty)."""
    from backend.ml_engine.dataset import prepare_dataset

    return prepare_dataset(list(data.series), request.features, request.labels, request.split, request.window)


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

    from backend.ml_engine import evaluation, plots
    from backend.ml_engine.families import get_family

    t_start = time.perf_counter()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)

    # 1. data ---------------------------------------------------------------------------
    data = data or load_training_data(request)
    prepared = prepared or prepare_training_data(request, data)
    series, digest = list(data.series), data.digest
    n_features = len(prepared.feature_names)
    family = get_family(request.family)
    request.model = family.with_shape(request.model, n_features=n_features, window=request.window)
    if export_onnx:  # never train a model that could not be served
        family.check_exportable(request.model)
    request.trainer = dataclasses.replace(request.trainer, checkpoint_dir=str(out / "checkpoints"))
    if not resume:  # the exact request, so that --resume continues the same training
        (out / REQUEST_FILE).write_text(json.dumps(request.to_dict(), indent=2, default=_json_default))

    symbols = list(data.symbols)
    timeframe = data.timeframe
    datasets: dict[str, Any] = {}
    if tracker is not None:
        from backend.ml_engine.lineage import split_datasets

        tracker.set_tags(
            {"symbol": ",".join(symbols), "timeframe": timeframe, "data_hash": digest, "model_family": family.name}
        )
        model_params = {"family": family.name, **as_dict(request.model)}
        if hasattr(request.model, "lstm_hidden"):
            model_params["hidden_size"] = request.model.lstm_hidden  # the guide's name (params.model_hidden_size)
        tracker.log_params(
            {
                "model": model_params,
                "trainer": {k: v for k, v in as_dict(request.trainer).items() if k != "checkpoint_dir"},
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
            tracker.log_input(
                ds.frame,
                name=ds.name,
                source=ds.source,
                context=ds.context,
                digest=ds.digest,
                tags={"split": ds.split, "rows": str(len(ds.frame)), "data_hash": digest},
            )

    # 2. train --------------------------------------------------------------------------
    t_fit = time.perf_counter()
    fitted = family.fit(
        request.model, prepared.train, prepared.val, request.trainer, callbacks=list(callbacks), resume=resume
    )
    result = fitted.fit
    fit_seconds = time.perf_counter() - t_fit

    # 3. evaluate on the test split -------------------------------------------------------
    from backend.ml_engine import calibration as calib
    from backend.ml_engine.families import softmax

    test_logits = fitted.predict_logits(prepared.test)
    calibration_info: dict[str, Any] = {}
    if request.calibrate:  # temperature scaling fitted on the validation split, never on test
        val_logits = fitted.predict_logits(prepared.val)
        val_y = prepared.val.labels
        temperature = calib.fit_temperature(val_logits, val_y)
        calibration_info = {
            "method": "temperature",
            "temperature": temperature,
            "fitted_on": "val",
            "val_ece_before": calib.expected_calibration_error(softmax(val_logits), val_y),
            "val_ece_after": calib.expected_calibration_error(softmax(val_logits / temperature), val_y),
        }
        test_logits = test_logits / np.float32(temperature)
        logger.info(
            "temperature scaling: T = %.3f (val ECE %.4f -> %.4f)",
            temperature,
            calibration_info["val_ece_before"],
            calibration_info["val_ece_after"],
        )
    proba = softmax(test_logits)
    y_pred = proba.argmax(axis=1)
    ends = prepared.test.ends
    y_true = prepared.y[ends]
    test_metrics = evaluation.classification_metrics(y_true, y_pred)
    test_metrics.update(evaluation.probability_metrics(y_true, proba))
    test_metrics["ece"] = calib.expected_calibration_error(proba, y_true)
    # Previous direction: the last move fully realised at t is the label of row t - horizon.
    prev = prepared.y[ends - prepared.horizon]
    prev = np.where(prev < 0, 1, prev)
    baselines = evaluation.baseline_metrics(y_true, y_train=prepared.train.labels, prev_direction=prev)
    # A backtest return must never span a gap: series and segment together identify a run of bars.
    run_ids = prepared.series_id[ends].astype(np.int64) * 1_000_000 + prepared.segment[ends]
    policy = request.signal_policy
    bt = evaluation.backtest(
        None,
        prepared.close[ends],
        run_ids,
        fee=policy.fee,
        slippage=policy.slippage,
        timeframe=timeframe,
        open_=prepared.open[ends],
        positions=policy.positions(proba),
    )
    bt.update(evaluation.sharpe_interval(bt, block=max(prepared.horizon, 1), seed=request.trainer.seed))

    # 4. outputs ------------------------------------------------------------------------
    native_path = fitted.save(out)
    example = prepared.test.get_batch(np.arange(min(8, len(prepared.test))))[0].numpy()  # (B, T, F) real batch
    onnx_info: dict[str, Any] = {}
    if export_onnx:
        # the parity check runs on up to 256 real test windows: |ONNX - native| of the probabilities <= 1e-5
        parity_batch = prepared.test.get_batch(np.arange(min(256, len(prepared.test))))[0].numpy()
        res = fitted.export_onnx(parity_batch, out / "model.onnx")
        onnx_info = {
            "path": str(res.path),
            "max_abs_diff": res.max_abs_diff,
            "max_abs_proba_diff": res.max_abs_proba_diff,
            "opset": res.opset,
            "exporter": res.exporter,
        }
        logger.info("ONNX parity: max |onnx - native| probabilities = %.2e", res.max_abs_proba_diff or 0.0)

    plot_paths = {
        "confusion_matrix.png": plots.plot_confusion_matrix(
            test_metrics["confusion_matrix"], out / "confusion_matrix.png"
        ),
        "learning_curves.png": plots.plot_learning_curves(result.history, out / "learning_curves.png"),
        "reliability.png": plots.plot_reliability(
            {family.name: calib.reliability_curve(proba, y_true)},
            out / "reliability.png",
            title=f"Reliability on the test split (ECE {test_metrics['ece']:.3f})",
        ),
        "equity_curve.png": plots.plot_equity_curve(
            {_run_label(prepared.symbols, k): v for k, v in bt["equity"].items()},
            out / "equity_curve.png",
            title="Test-split backtest with fees: model vs buy & hold",
        ),
    }
    backtest_scalars = evaluation.scalar_metrics(bt)

    metadata = {
        "model_name": model_name,
        "run_name": run_name,
        "created_at": datetime.now(UTC).isoformat(),
        "code_version": code_version(),
        "model_family": family.name,
        "model": {**fitted.serving_metadata(), "n_parameters": fitted.n_parameters()},
        "model_config": as_dict(request.model),
        "trainer_config": as_dict(request.trainer),
        "feature_config": as_dict(request.features),
        "label_config": as_dict(request.labels),
        "split_config": as_dict(request.split),
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
            **result.extra,
        },
        "test_metrics": test_metrics,
        "baselines": baselines,
        "backtest": backtest_scalars,
        "signal_policy": {**policy.to_dict(), "description": policy.describe()},
        "calibration": calibration_info or None,
        "onnx": onnx_info,
        "library_versions": library_versions(),
    }
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2, default=_json_default))

    outcome = TrainingOutcome(
        run_name=run_name,
        output_dir=out,
        model_path=native_path,
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
        family=family.name,
        n_parameters=fitted.n_parameters(),
        signal_policy=policy.describe(),
        temperature=calibration_info.get("temperature"),
    )

    if tracker is not None:
        for p in plot_paths.values():
            tracker.log_artifact(str(p), artifact_path="plots")
        first_test_ends = prepared.test.ends[prepared.series_id[prepared.test.ends] == 0]  # rows of series[0].frame
        native_example = fitted.native_input(example)
        signature = None
        if fitted.mlflow_flavor != "pytorch":  # the pytorch flavor infers it from the module's output
            from mlflow.models import infer_signature

            from backend.ml_engine.families import softmax

            signature = infer_signature(native_example, softmax(fitted.logits(example)).astype(np.float32))
        model_uri = tracker.log_model(
            fitted.native,
            model_name="model",
            flavor=fitted.mlflow_flavor,
            signature=signature,
            input_example=native_example,
            onnx_path=onnx_info.get("path"),
            artifacts={"metadata.json": str(out / "metadata.json")},
            # the candle pyfunc's example: the last min_history_rows candles of the first series' test split
            serving_example=series[0]
            .frame.iloc[: int(first_test_ends.max()) + 1]
            .tail(prepared.pipeline["min_history_rows"])
            if onnx_info and len(first_test_ends)
            else None,
        )
        outcome = dataclasses.replace(
            outcome,
            model_uri=model_uri,
            dataset_digests={k: d.digest for k, d in datasets.items()},
            wall_seconds=time.perf_counter() - t_start,
        )
        # The final metrics belong to the logged model, measured on the test dataset: the MLflow model
        # page shows them, and search_logged_models filters and orders by them.
        test_ds = datasets["test"]
        tracker.log_metrics(
            outcome.final_metrics(), model_id=outcome.model_id, dataset_name=test_ds.name, dataset_digest=test_ds.digest
        )
        tracker.flush()
    return outcome


def _run_label(symbols: Sequence[str], run_id: int) -> str:
    """'ETH/BTC' for the first segment of a series, 'ADA/BTC #2' for a later one."""
    series, segment = divmod(int(run_id), 1_000_000)
    return symbols[series] + (f" #{segment + 1}" if segment else "")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)
