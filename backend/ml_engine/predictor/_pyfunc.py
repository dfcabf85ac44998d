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
                {"type": "double", "name": "open", ...}, ... "volume"]'
      outputs: '[{"type": "double", "name": "down"}, ... "flat", "up",
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

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from backend.ml_engine.errors import one_line

from ..data.candles import DEFAULT_MAX_FILL_GAP, DataValidationError, find_time_column
from ._bundle import ModelBundle, load_bundle, read_metadata
from ._fast import OHLCV
from ._request import decide, predict_last

__all__ = [
    "DEFAULT_MODEL_CONFIG",
    "LOADER_MODULE",
    "SOURCE",
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


def output_columns(class_names: tuple[str, ...] | list[str]) -> list[str]:
    """Columns of the pyfunc's output frame: the class probabilities, then signal, confidence, candle_time."""
    return [*class_names, *(name for name, _ in EXTRA_OUTPUTS)]


def candle_signature(class_names: tuple[str, ...] | list[str]) -> Any:
    """The MLmodel signature of the flavor: the candle frame in, probabilities and signal out."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    timestamp = ColSpec(AnyType(), "timestamp")  # type: ignore[no-untyped-call]  # mlflow: unannotated
    inputs = Schema([timestamp, *(ColSpec("double", c) for c in OHLCV)])
    outputs = Schema(
        [*(ColSpec("double", c) for c in class_names), *(ColSpec(kind, name) for name, kind in EXTRA_OUTPUTS)]
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


class CandleModel:
    """What `_load_pyfunc` returns: ``predict(candles) -> one-row DataFrame`` (see the module docstring)."""

    def __init__(
        self, bundle: ModelBundle, *, min_confidence: float = 0.0, max_fill_gap: int = DEFAULT_MAX_FILL_GAP
    ) -> None:
        if not 0.0 <= float(min_confidence) <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
        self.bundle = bundle
        self.min_confidence = float(min_confidence)
        self.max_fill_gap = int(max_fill_gap)
        self.columns = output_columns(bundle.class_names)

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """One candle frame -> one row for its last candle; bad candles -> ``MlflowException``
        with the Predictor's message and ``INVALID_PARAMETER_VALUE`` (HTTP 400 when served)."""
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        bundle = self.bundle
        try:
            probs, candle_time = predict_last(model_input, bundle, SOURCE, self.max_fill_gap)
        except (DataValidationError, TypeError) as exc:
            raise MlflowException(one_line(exc), error_code=INVALID_PARAMETER_VALUE) from None
        signal, confidence = decide(bundle.class_names, probs, self.min_confidence)
        row: dict[str, list[Any]] = {c: [float(p)] for c, p in zip(bundle.class_names, probs)}
        row.update(signal=[signal], confidence=[confidence], candle_time=[candle_time])
        return pd.DataFrame(row, columns=self.columns)


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


def _load_pyfunc(data_path: str, model_config: dict[str, Any] | None = None) -> CandleModel:
    """The flavor's loader (``mlflow.pyfunc.load_model`` calls it with the model folder)."""
    config = {**DEFAULT_MODEL_CONFIG, **(model_config or {})}
    bundle = load_model_folder(data_path, onnx_threads=int(config["onnx_threads"]))
    logger.info("pyfunc serving %s (%s) with %s", bundle.model_name, bundle.model_uri, bundle.backend)
    return CandleModel(bundle, min_confidence=float(config["min_confidence"]), max_fill_gap=int(config["max_fill_gap"]))


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
    try:
        result = _validate_serving_input(str(model_dir), serving_input)
    except Exception as exc:
        raise ValueError(
            f"the pyfunc flavor cannot serve its own candle example ({len(example)} candles up to "
            f"{example['timestamp'].iloc[-1] if len(example) else 'none'}): "
            f"{' '.join(str(exc).split())[-1000:]}"
        ) from exc
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
