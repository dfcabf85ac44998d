"""The ``python_function`` flavor of every logged version: raw candles in, probabilities and signal out.

A model logged with a serving example (``MLflowTracker.log_model(..., serving_example=candles)``,
what the training does) keeps its PyTorch flavor (``mlflow.pytorch.load_model``,
``MLflowTracker.load_model``), but its ``python_function`` flavor is this module::

    flavors:
      python_function:
        loader_module: backend.ml_engine.predictor._pyfunc
        config: {max_fill_gap: 3, min_confidence: 0.0, onnx_threads: 1}   # model_config
        env: {conda: conda.yaml, virtualenv: python_env.yaml}
      pytorch: {model_data: data, pytorch_version: 2.13.0+cpu, ...}
    signature:
      inputs: '[{"type": "any", "name": "timestamp", "required": true},
                {"type": "double", "name": "open", ...}, ... "volume",
                {"type": "string", "name": "symbol", "required": false}]'
      outputs: '[{"type": "string", "name": "symbol", "required": false},
                 {"type": "double", "name": "down"}, ... "flat", "up",
                 {"type": "string", "name": "signal"}, {"type": "double", "name": "confidence"},
                 {"type": "string", "name": "candle_time"}]'
    saved_input_example_info: {artifact_path: input_example.json, type: dataframe, ...}

so ``mlflow.pyfunc.load_model("models:/hybrid_cnn_lstm@production").predict(candles)`` and
``mlflow models serve -m models:/hybrid_cnn_lstm@production --env-manager local`` run the
Predictor's own code: `_load_pyfunc` builds the same `ModelBundle` from the folder (``model.onnx``
+ ``artifacts/metadata.json``, ONNX Runtime only: torch is never imported), and ``predict`` runs
the same request functions (`._request`: validation and its fast path, last window, ONNX Runtime,
softmax, signal).

Input and output
----------------
One input is one candle frame of one symbol (timestamp + open, high, low, close, volume, oldest
first, at least ``min_history_rows`` consecutive candles at the end); the output is one row for
its last candle: the class probabilities (``down``, ``flat``, ``up``: the version's classes), the
``signal`` (``sell`` / ``hold`` / ``buy``; ``hold`` below ``model_config["min_confidence"]``),
``confidence`` (the top probability) and ``candle_time`` (ISO 8601 UTC open time of the last
candle). The registry version is not in the output: the model folder is written before it is
registered, so the pyfunc knows its MLflow model id, not the version number.

Several symbols in one request: an optional ``symbol`` column (string; optional in the signature, so
clients that never send it still validate) groups the rows by symbol, each group one candle frame as
above. Every group's last window is predicted in ONE model call (one ONNX Runtime run of the stacked
windows, as ``Predictor.predict_many``) and the output has one row per symbol, in the order the
symbols first appear, with the ``symbol`` column first. Bad candles of one symbol fail the request
with a message naming it (``candles ETH/BTC: ...``); a row without a symbol is refused. Without the
column nothing changes. A version logged before the column existed has no ``symbol`` in its
signature: MLflow drops the column (with a warning) and the rows are read as one frame.

Recording
---------
When the serving process has ``ML_PREDICTION_LOG`` on (``Settings()`` read by `_load_pyfunc`), each
prediction is recorded in the prediction log (`PredictionLog`, ``ML_PREDICTION_LOG_URL`` else the
jobs database) with ``source = "pyfunc"``, the model id as the version (what the pyfunc knows) and
the ``symbol`` column's value (``"unknown"`` without it); with ``ML_TRACE_SAMPLE_RATE`` above 0 a
random share is also written as MLflow traces (`backend.ml_engine.prediction_traces`). Recording is
a buffer append written by a background thread: it never slows or fails a request, and a log that
cannot be set up at load is logged and skipped. What is buffered is written at interpreter exit.

The ``timestamp`` column is typed ``any``, not ``datetime``: MLflow's ``datetime`` type is
timezone-naive, and its schema enforcement (``mlflow.models.utils._enforce_mlflow_datatype``,
3.17) refuses a timezone-aware column outright, although ``infer_signature`` types one as
``datetime``; the candle frames of this project (``load_candles``, the API, the bot's feed) are
UTC-aware, and JSON times usually carry ``Z`` / ``+00:00``, which MLflow's JSON parser turns into
timezone-aware values too. With ``any`` the column reaches the Predictor's validation as given
(datetimes, aware or naive = UTC, ISO strings with or without an offset, epoch numbers), and a bad
time gets the Predictor's ``bad_timestamp`` error, like every other bad candle. The stored input
example shows the format: ISO 8601 UTC strings.

Bad candles (too few rows, NaN, high < low, a gap that leaves too few candles, conflicting
duplicates...) raise ``MlflowException(<the Predictor's one-line DataValidationError text>,
error_code=INVALID_PARAMETER_VALUE)``: the scoring server answers 400 with that text in its JSON
error. Unsorted rows and identical duplicates are repaired, as the Predictor repairs them. The
messages name the model as the Predictor names a model loaded by its id (``model hybrid_cnn_lstm
vm-...``).

Serving needs this package importable (``pip install '.[serve]'``), as the Predictor does.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from backend.ml_engine.errors import one_line

from ..data.candles import DEFAULT_MAX_FILL_GAP, DataValidationError, find_time_column
from ._bundle import ModelBundle, load_bundle, read_metadata
from ._fast import OHLCV, _softmax, _softmax_row
from ._request import build_window, decide, predict_last

if TYPE_CHECKING:  # pragma: no cover
    from ..prediction_log import PredictionLog
    from ..prediction_traces import PredictionTracer

__all__ = [
    "DEFAULT_MODEL_CONFIG",
    "LOADER_MODULE",
    "RECORD_SOURCE",
    "SOURCE",
    "SYMBOL_COLUMN",
    "CandleModel",
    "add_pyfunc_flavor",
    "candle_frame",
    "candle_signature",
    "load_model_folder",
    "output_columns",
]

logger = logging.getLogger("backend.ml_engine.predictor")

#: The ``loader_module`` of the flavor: this module (``mlflow.pyfunc.load_model`` calls `_load_pyfunc`).
LOADER_MODULE = __name__
#: Source label of the candles in error messages (what ``Predictor.predict`` uses by default).
SOURCE = "candles"
#: ``model_config`` written with the flavor: the keys a loader may override
#: (``mlflow.pyfunc.load_model(uri, model_config={"min_confidence": 0.6})``).
DEFAULT_MODEL_CONFIG: dict[str, Any] = {"min_confidence": 0.0, "onnx_threads": 1, "max_fill_gap": DEFAULT_MAX_FILL_GAP}
#: Output columns after the class probabilities.
EXTRA_OUTPUTS: tuple[tuple[str, str], ...] = (("signal", "string"), ("confidence", "double"), ("candle_time", "string"))
#: The optional input column that names each row's symbol (and the first output column when given).
SYMBOL_COLUMN = "symbol"
#: What the prediction log's ``source`` column says for the pyfunc's predictions.
RECORD_SOURCE = "pyfunc"


def output_columns(class_names: tuple[str, ...] | list[str]) -> list[str]:
    """Columns of the pyfunc's output frame: the class probabilities, then signal, confidence, candle_time."""
    return [*class_names, *(name for name, _ in EXTRA_OUTPUTS)]


def candle_signature(class_names: tuple[str, ...] | list[str]) -> Any:
    """The MLmodel signature of the flavor: the candle frame in, probabilities and signal out."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    timestamp = ColSpec(AnyType(), "timestamp")  # type: ignore[no-untyped-call]  # mlflow: unannotated
    symbol = ColSpec("string", SYMBOL_COLUMN, required=False)  # optional: frames without it still validate
    inputs = Schema([timestamp, *(ColSpec("double", c) for c in OHLCV), symbol])
    outputs = Schema(
        [
            ColSpec("string", SYMBOL_COLUMN, required=False),  # only when the input has it
            *(ColSpec("double", c) for c in class_names),
            *(ColSpec(kind, name) for name, kind in EXTRA_OUTPUTS),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def candle_frame(candles: pd.DataFrame) -> pd.DataFrame:
    """``candles`` in the signature's columns: ``timestamp`` (UTC, datetime64[ns, UTC]) + OHLCV float64,
    a 0..n-1 index; columns found as `validate_candles` finds them (any case, any time column)."""
    columns = list(candles.columns)
    time_col = find_time_column(columns)
    lower = {str(c).strip().lower(): c for c in reversed(columns)}  # the first of equal names wins
    missing = [c for c in OHLCV if c not in lower]
    if time_col is None or missing:
        raise ValueError(f"not a candle frame: columns {columns} (need a time column and {list(OHLCV)})")
    stamps = pd.to_datetime(candles[time_col], utc=True).dt.as_unit("ns")
    frame = pd.DataFrame({"timestamp": stamps.array})
    for c in OHLCV:
        frame[c] = candles[lower[c]].to_numpy(dtype="float64")
    return frame


def _invalid(message: str) -> Exception:
    """``MlflowException(message, INVALID_PARAMETER_VALUE)``: HTTP 400 when served."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


class CandleModel:
    """What `_load_pyfunc` returns: ``predict(candles) -> one row per symbol`` (see the module docstring)."""

    def __init__(
        self,
        bundle: ModelBundle,
        *,
        min_confidence: float = 0.0,
        max_fill_gap: int = DEFAULT_MAX_FILL_GAP,
        prediction_log: PredictionLog | None = None,
        tracer: PredictionTracer | None = None,
    ) -> None:
        if not 0.0 <= float(min_confidence) <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
        self.bundle = bundle
        self.min_confidence = float(min_confidence)
        self.max_fill_gap = int(max_fill_gap)
        self.columns = output_columns(bundle.class_names)
        self.prediction_log = prediction_log
        """Where predictions are recorded (source ``pyfunc``); None: not recorded."""
        self.tracer = tracer
        """Samples the recorded predictions into MLflow traces (``ML_TRACE_SAMPLE_RATE``); None: none."""

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """One candle frame -> one row for its last candle; with a ``symbol`` column, one row per symbol
        (one model call). Bad candles -> ``MlflowException`` with the Predictor's message and
        ``INVALID_PARAMETER_VALUE`` (HTTP 400 when served)."""
        if isinstance(model_input, pd.DataFrame) and SYMBOL_COLUMN in model_input.columns and len(model_input):
            return self._predict_symbols(model_input)
        bundle = self.bundle
        t0 = time.perf_counter()
        window: np.ndarray | None = None
        try:
            if self.prediction_log is None:
                probs, candle_time = predict_last(model_input, bundle, SOURCE, self.max_fill_gap)
            else:  # the same steps as predict_last, keeping the window for the log's digest
                x, candle_time = build_window(model_input, bundle, SOURCE, self.max_fill_gap)
                window = x[0]
                probs = _softmax_row(bundle.runner(x)[0])
        except (DataValidationError, TypeError) as exc:
            raise _invalid(one_line(exc)) from None
        signal, confidence = decide(bundle.class_names, probs, self.min_confidence)
        if window is not None:
            self._record(window, None, probs, signal, confidence, candle_time, (time.perf_counter() - t0) * 1000.0)
        row: dict[str, list[Any]] = {c: [float(p)] for c, p in zip(bundle.class_names, probs)}
        row.update(signal=[signal], confidence=[confidence], candle_time=[candle_time])
        return pd.DataFrame(row, columns=self.columns)

    def _predict_symbols(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One row per symbol of the ``symbol`` column, every last window in one model call."""
        bundle = self.bundle
        t0 = time.perf_counter()
        labels = frame[SYMBOL_COLUMN]
        missing = labels.isna() | (labels.astype(str).str.strip() == "")
        if bool(missing.any()):
            first = int(np.flatnonzero(missing.to_numpy())[0]) + 1
            raise _invalid(f"{SOURCE}: row {first}: no_symbol: {int(missing.sum())} row(s) have no {SYMBOL_COLUMN}")
        candles = frame.drop(columns=[SYMBOL_COLUMN])
        codes, uniques = pd.factorize(labels.astype(str).str.strip(), sort=False)  # symbols in order of appearance
        order = np.argsort(codes, kind="stable")
        groups = np.split(order, np.searchsorted(codes[order], np.arange(1, len(uniques))))
        symbols: list[str] = []
        windows: list[np.ndarray] = []
        times: list[str] = []
        try:
            for symbol, rows in zip(uniques, groups):
                x, candle_time = build_window(
                    candles.iloc[rows].reset_index(drop=True), bundle, f"{SOURCE} {symbol}", self.max_fill_gap
                )
                symbols.append(str(symbol))
                windows.append(x[0])
                times.append(candle_time)
        except (DataValidationError, TypeError) as exc:
            raise _invalid(one_line(exc)) from None
        batch = np.ascontiguousarray(np.stack(windows), dtype=np.float32)
        probs = _softmax(bundle.runner(batch))
        ms = (time.perf_counter() - t0) * 1000.0 / len(symbols)
        out: dict[str, list[Any]] = {SYMBOL_COLUMN: symbols, **{c: [] for c in self.columns}}
        for i, symbol in enumerate(symbols):
            row_probs = [float(p) for p in probs[i]]
            signal, confidence = decide(bundle.class_names, row_probs, self.min_confidence)
            for c, p in zip(bundle.class_names, row_probs):
                out[c].append(p)
            out["signal"].append(signal)
            out["confidence"].append(confidence)
            out["candle_time"].append(times[i])
            if self.prediction_log is not None:
                self._record(batch[i], symbol, row_probs, signal, confidence, times[i], ms)
        return pd.DataFrame(out, columns=[SYMBOL_COLUMN, *self.columns])

    def _record(
        self,
        window: np.ndarray,
        symbol: str | None,
        probs: list[float],
        signal: str,
        confidence: float,
        candle_time: str,
        ms: float,
    ) -> None:
        """Hand one prediction to the log (and maybe the tracer); a fault is logged, never raised."""
        log = self.prediction_log
        if log is None:
            return
        from ..prediction_log import PredictionRecord, input_digest, version_row

        bundle = self.bundle
        try:
            labels = bundle.metadata.get("label_definition") or bundle.metadata.get("label_config") or {}
            log.describe_version(
                version_row(bundle.model_name, bundle.version, bundle.model_id, bundle.metadata, bundle.class_names)
            )
            record = PredictionRecord(
                symbol=symbol or "unknown",
                timeframe=bundle.timeframe or "unknown",
                candle_time=candle_time,
                model_name=bundle.model_name,
                model_version=bundle.version,
                model_id=bundle.model_id,
                probabilities={c: float(p) for c, p in zip(bundle.class_names, probs)},
                signal=signal,
                confidence=float(confidence),
                latency_ms=ms,
                input_digest=input_digest(window),
                horizon=int(labels.get("horizon") or 1),
                source=RECORD_SOURCE,
            )
            log.record(record)
        except Exception:
            logger.warning("pyfunc prediction not recorded", exc_info=True)
            return
        if self.tracer is not None:
            self.tracer.maybe_trace(record, window.shape)


def load_model_folder(path: str | Path, *, onnx_threads: int = 1, direct_features: bool = True) -> ModelBundle:
    """The `ModelBundle` of a model folder, ONNX Runtime only, named by its MLflow model id."""
    from mlflow.models import Model

    model_dir = Path(path)
    model_id = Model.load(str(model_dir / "MLmodel")).model_id
    metadata, _ = read_metadata(model_dir, str(model_dir))
    return load_bundle(
        model_dir,
        model_name=str(metadata.get("model_name") or "model"),
        version=model_id or "local",
        model_id=model_id,
        model_uri=f"models:/{model_id}" if model_id else str(model_dir),
        prefer_onnx=True,
        onnx_threads=onnx_threads,
        direct_features=direct_features,
        allow_torch=False,
    )


#: Set while `add_pyfunc_flavor` checks a model folder through MLflow's serving path: that load and
#: prediction of the stored example is a check at logging time, not a served prediction, so it records
#: nothing (and starts no prediction-log writer in a training process).
_CHECKING: contextvars.ContextVar[bool] = contextvars.ContextVar("pyfunc_checking_example", default=False)


def _recording() -> tuple[PredictionLog | None, PredictionTracer | None]:
    """The prediction log and tracer of this serving process, from ``Settings()`` (``ML_PREDICTION_LOG``,
    ``ML_TRACE_SAMPLE_RATE``); (None, None) when off or when they cannot be set up (logged: serving goes on)."""
    if _CHECKING.get():
        return None, None
    try:
        from ..config import Settings

        settings = Settings()
        if not settings.prediction_log:
            return None, None
        from ..prediction_log import PredictionLog
        from ..prediction_traces import PredictionTracer

        log = PredictionLog.from_settings(settings)
        atexit.register(log.close)  # what is buffered is written when the server stops
        try:
            tracer = PredictionTracer.from_settings(settings)
        except Exception:
            logger.warning("pyfunc: prediction traces not set up; serving without them", exc_info=True)
            tracer = None
        return log, tracer
    except Exception:
        logger.warning("pyfunc: the prediction log could not be set up; serving without recording", exc_info=True)
        return None, None


def _load_pyfunc(data_path: str, model_config: dict[str, Any] | None = None) -> CandleModel:
    """The flavor's loader (``mlflow.pyfunc.load_model`` calls it with the model folder)."""
    config = {**DEFAULT_MODEL_CONFIG, **(model_config or {})}
    bundle = load_model_folder(data_path, onnx_threads=int(config["onnx_threads"]))
    log, tracer = _recording()
    logger.info(
        "pyfunc serving %s (%s) with %s%s",
        bundle.model_name,
        bundle.model_uri,
        bundle.backend,
        f"; recording to the prediction log (source {RECORD_SOURCE})" if log is not None else "",
    )
    return CandleModel(
        bundle,
        min_confidence=float(config["min_confidence"]),
        max_fill_gap=int(config["max_fill_gap"]),
        prediction_log=log,
        tracer=tracer,
    )


# --------------------------------------------------------------------------------------------
# writing the flavor (at log time, into the saved model folder)
# --------------------------------------------------------------------------------------------


def add_pyfunc_flavor(model_dir: Path, serving_example: pd.DataFrame) -> None:
    """Make ``model_dir`` (a saved MLflow model with ``model.onnx`` and ``artifacts/metadata.json``) a
    candle pyfunc: this module as the ``python_function`` loader, the candle signature, and the last
    ``min_history_rows`` rows of ``serving_example`` as the input example (replacing the tensor
    example). Then checks the stored example through MLflow's serving path (JSON parsing, schema
    enforcement, this loader) and raises ``ValueError`` when it does not give one row per the
    signature: a version whose pyfunc cannot serve its own example is never logged."""
    from mlflow.models import Model
    from mlflow.models.utils import _save_example, _validate_serving_input
    from mlflow.pyfunc import FLAVOR_NAME, add_to_model

    mlmodel_path = model_dir / "MLmodel"
    model = Model.load(str(mlmodel_path))
    metadata, pipeline = read_metadata(model_dir, str(model_dir))
    classes = tuple((metadata.get("label_definition") or {}).get("classes") or ())
    if not classes:
        from ..labels import CLASS_NAMES

        classes = tuple(CLASS_NAMES)
    need = int(pipeline["min_history_rows"])
    example = candle_frame(serving_example)
    if len(example) > need:
        example = example.iloc[-need:].reset_index(drop=True)

    # the candle example replaces the tensor one written by mlflow.pytorch.save_model
    old = model.saved_input_example_info or {}
    for key in ("artifact_path", "serving_input_path"):
        if old.get(key):
            (model_dir / str(old[key])).unlink(missing_ok=True)
    _save_example(model, example, str(model_dir))  # sets model.saved_input_example_info
    model.signature = candle_signature(classes)

    previous = model.flavors.pop(FLAVOR_NAME, None) or {}
    env = previous.get("env") or {}
    add_to_model(  # type: ignore[no-untyped-call]  # mlflow: unannotated
        model,
        loader_module=LOADER_MODULE,
        conda_env=env.get("conda"),
        python_env=env.get("virtualenv"),
        model_config=dict(DEFAULT_MODEL_CONFIG),
    )
    model.save(str(mlmodel_path))

    serving_input = model.get_serving_input(str(model_dir))
    if serving_input is None:  # pragma: no cover - _save_example always writes it for a frame
        raise ValueError(f"{model_dir}: no serving input example was written")
    checking = _CHECKING.set(True)
    try:
        result = _validate_serving_input(str(model_dir), serving_input)
    except Exception as exc:
        raise ValueError(
            f"the pyfunc flavor cannot serve its own candle example ({len(example)} candles up to "
            f"{example['timestamp'].iloc[-1] if len(example) else 'none'}): "
            f"{' '.join(str(exc).split())[-1000:]}"
        ) from exc
    finally:
        _CHECKING.reset(checking)
    if not isinstance(result, pd.DataFrame) or list(result.columns) != output_columns(classes) or len(result) != 1:
        got = (
            f"{len(result)} rows of {list(result.columns)}"
            if isinstance(result, pd.DataFrame)
            else type(result).__name__
        )
        raise ValueError(
            f"the pyfunc flavor answered its candle example with {got}, expected one row of {output_columns(classes)}"
        )
    logger.debug("pyfunc flavor written to %s; example answered %s", model_dir, result.iloc[0].to_dict())
