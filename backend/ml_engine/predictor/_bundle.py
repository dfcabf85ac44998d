"""A loaded version: the model folder turned into an immutable `ModelBundle`.

A model folder (``MLflowTracker.log_model``) holds ``MLmodel``, the PyTorch model
(``data/model.pth``), ``model.onnx`` and ``artifacts/metadata.json``. `load_bundle`

* runs ``model.onnx`` with ONNX Runtime (CPU provider, ``onnx_threads`` intra-op threads, 1 by
  default: one prediction is a batch of one, where more threads cost more than they give), or the
  PyTorch model when the version has no ONNX file, ORT cannot load it, or ``prefer_onnx=False``
  (``backend`` says which: ``"onnxruntime"`` or ``"torch"``); with ``allow_torch=False`` (the
  pyfunc flavor) there is no PyTorch fallback and torch is never imported;
* turns candles into model input with the version's OWN ``metadata.json["pipeline"]`` through
  `pipeline.build_inference_windows`, the code path training used (features, window,
  normaliser statistics of that version): no train/serve skew, and a new version with other
  features or another window is served correctly the moment it is loaded;
* for a tabular family (``metadata.json["model"]["input"] == "tabular"``: LightGBM, logistic
  regression) computes the window's columns with `backend.ml_engine.tabular.window_features`,
  the function the model was trained on, before ONNX Runtime; the PyTorch fallback does not apply;
* divides the logits by the version's fitted temperature (``metadata.json["calibration"]
  ["temperature"]``) when it has one, so its probabilities are the calibrated ones;
* checks the direct last-window path (`._fast._LastWindow`) against `build_inference_windows`
  bit for bit, and runs the model once on a zero window, so a version that cannot run fails
  here, before it is swapped in.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..labels import CLASS_NAMES
from ._errors import ModelNotAvailableError, PredictorError
from ._fast import _LastWindow

__all__ = [
    "BACKEND_ONNX",
    "BACKEND_TORCH",
    "METADATA_FILE",
    "ONNX_FILE",
    "ModelBundle",
    "load_bundle",
    "read_metadata",
]

logger = logging.getLogger("backend.ml_engine.predictor")

BACKEND_ONNX = "onnxruntime"
BACKEND_TORCH = "torch"
ONNX_FILE = "model.onnx"
METADATA_FILE = "artifacts/metadata.json"


@dataclass(frozen=True, eq=False)
class ModelBundle:
    """One loaded version: immutable, swapped as a whole by `Predictor.refresh`."""

    model_name: str
    version: str
    model_id: str | None
    model_uri: str
    """A URI naming exactly this version (``models:/name/7``) or the local folder."""
    backend: str
    model_dir: Path
    pipeline: dict[str, Any]
    metadata: dict[str, Any]
    runner: Callable[[np.ndarray], np.ndarray]
    """(B, T, F) float32 -> (B, C) logits."""
    window: int
    min_history_rows: int
    timeframe: str | None
    class_names: tuple[str, ...]
    last_window: _LastWindow | None = None
    """Direct last-window feature path (verified bit for bit against `build_inference_windows` at
    load); None: `build_inference_windows` is called on the tail."""
    loaded_at: float = field(default_factory=time.time)


# --------------------------------------------------------------------------------------------
# model runners
# --------------------------------------------------------------------------------------------


class _OnnxRunner:
    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise PredictorError(f"{path}: expected one ONNX input, found {[i.name for i in inputs]}")
        self.input_name: str = inputs[0].name
        self.input_shape: list[Any] = list(inputs[0].shape)
        outputs = [o.name for o in self.session.get_outputs()]
        self.output_name: str = "logits" if "logits" in outputs else outputs[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # InferenceSession.run is thread-safe: concurrent requests share one session.
        out: np.ndarray = self.session.run([self.output_name], {self.input_name: x})[0]
        return out


class _TabularRunner:
    """Windows -> the tabular columns the model was trained on -> ONNX Runtime."""

    def __init__(self, onnx_runner: _OnnxRunner, tabular: Any) -> None:
        self.onnx = onnx_runner
        self.tabular = tabular

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from ..tabular import window_features

        return self.onnx(window_features(x, self.tabular))


class _ScaledRunner:
    """Logits divided by a fitted temperature (calibrated probabilities after the softmax)."""

    def __init__(self, runner: Callable[[np.ndarray], np.ndarray], temperature: float) -> None:
        self.runner = runner
        self.temperature = float(temperature)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = (self.runner(x) / np.float32(self.temperature)).astype(np.float32, copy=False)
        return out


class _TorchRunner:
    def __init__(self, module: Any) -> None:
        self.module = module

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():  # eval mode, no autograd: safe from several threads
            out: np.ndarray = self.module(torch.from_numpy(x)).float().numpy()
            return out


def _load_torch(model_dir: Path, model_uri: str) -> _TorchRunner:
    import mlflow.pytorch

    if not (model_dir / "data").exists():
        raise ModelNotAvailableError(f"{model_uri}: neither {ONNX_FILE} nor a PyTorch model in {model_dir}")
    module = mlflow.pytorch.load_model(str(model_dir), map_location="cpu")
    with contextlib.suppress(Exception):  # exported GraphModules refuse eval()
        module.eval()
    return _TorchRunner(module)


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------


def read_metadata(model_dir: Path, model_uri: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metadata, pipeline) of a model folder; `ModelNotAvailableError` / `PredictorError` when missing."""
    meta_path = model_dir / METADATA_FILE
    if not meta_path.is_file():
        raise ModelNotAvailableError(
            f"{model_uri}: the model folder has no {METADATA_FILE}; its feature pipeline is unknown, "
            "so it cannot be served (log the model with TrainingOrchestrator / run_training)"
        )
    metadata: dict[str, Any] = json.loads(meta_path.read_text())
    pipeline = metadata.get("pipeline")
    if not isinstance(pipeline, dict):
        raise PredictorError(f"{model_uri}: {METADATA_FILE} has no 'pipeline'")
    return metadata, pipeline


def load_bundle(
    model_dir: Path,
    *,
    model_name: str,
    version: str,
    model_id: str | None,
    model_uri: str,
    prefer_onnx: bool = True,
    onnx_threads: int = 1,
    direct_features: bool = True,
    allow_torch: bool = True,
) -> ModelBundle:
    """Load a model folder completely (a new bundle; nothing serving is touched).

    ``allow_torch=False``: ONNX Runtime or nothing (`PredictorError` when the folder has no usable
    ``model.onnx``); torch is then never imported."""
    metadata, pipeline = read_metadata(model_dir, model_uri)
    n_features = len(pipeline["feature_names"])
    window = int(pipeline["window"])
    classes = tuple((metadata.get("label_definition") or {}).get("classes") or CLASS_NAMES)

    runner: Callable[[np.ndarray], np.ndarray] | None = None
    backend = BACKEND_TORCH
    onnx_path = model_dir / ONNX_FILE
    model_info = metadata.get("model") or {}
    tabular = None
    if model_info.get("input") == "tabular":
        from ..tabular import TabularConfig

        tabular = TabularConfig.from_dict(model_info.get("tabular") or {})
        if not onnx_path.is_file():
            raise ModelNotAvailableError(
                f"{model_uri}: a {model_info.get('family')} model is served from {ONNX_FILE}, which the folder lacks"
            )
        allow_torch = False  # its native model is not a PyTorch module
    if (prefer_onnx or not allow_torch) and onnx_path.is_file():
        try:
            onnx_runner = _OnnxRunner(onnx_path, onnx_threads)
            shape = onnx_runner.input_shape
            if tabular is not None:
                if len(shape) != 2:
                    raise PredictorError(f"ONNX input shape {shape}: a tabular model takes (batch, columns)")
                runner, backend = _TabularRunner(onnx_runner, tabular), BACKEND_ONNX
            elif (
                len(shape) != 3
                or (isinstance(shape[2], int) and shape[2] != n_features)
                or (isinstance(shape[1], int) and shape[1] != window)
            ):
                raise PredictorError(f"ONNX input shape {shape} does not fit window {window} x {n_features} features")
            else:
                runner, backend = onnx_runner, BACKEND_ONNX
        except Exception as exc:  # the PyTorch model is the fallback (re-raised without one)
            if not allow_torch:
                raise PredictorError(f"{model_uri}: cannot run {ONNX_FILE} with ONNX Runtime: {exc}") from exc
            logger.warning(
                "%s: cannot serve %s with ONNX Runtime (%s); falling back to PyTorch", model_uri, ONNX_FILE, exc
            )
    elif not allow_torch:
        raise ModelNotAvailableError(
            f"{model_uri}: the model folder has no {ONNX_FILE}; it is served with ONNX "
            "Runtime only (log the model with an ONNX export)"
        )
    elif prefer_onnx:
        logger.warning("%s has no %s; serving it with PyTorch", model_uri, ONNX_FILE)
    if runner is None:
        runner = _load_torch(model_dir, model_uri)
    temperature = (metadata.get("calibration") or {}).get("temperature")
    if temperature is not None:
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise PredictorError(f"{model_uri}: calibration temperature {temperature!r} is not a positive number")
        if temperature != 1.0:
            runner = _ScaledRunner(runner, float(temperature))

    last_window: _LastWindow | None = None
    if direct_features:
        worst: float | None
        try:
            last_window = _LastWindow(pipeline)
            worst = last_window.verify(pipeline)
        except Exception as exc:  # noqa: BLE001
            worst = math.inf
            logger.debug("direct last-window path unavailable: %s", exc)
        if worst is not None:
            logger.warning(
                "%s: the direct last-window features differ from build_inference_windows (max abs "
                "diff %.3g); using build_inference_windows",
                model_uri,
                worst,
            )
            last_window = None

    bundle = ModelBundle(
        model_name=model_name,
        version=version,
        model_id=model_id,
        model_uri=model_uri,
        backend=backend,
        model_dir=model_dir,
        pipeline=pipeline,
        metadata=metadata,
        runner=runner,
        window=window,
        min_history_rows=int(pipeline["min_history_rows"]),
        timeframe=(metadata.get("data") or {}).get("timeframe") or None,
        class_names=classes,
        last_window=last_window,
    )
    # One call on a zero window: a model that cannot run fails here, before it is swapped in.
    out = bundle.runner(np.zeros((1, window, n_features), dtype=np.float32))
    if out.shape != (1, len(classes)):
        raise PredictorError(f"{model_uri}: model output shape {out.shape}, expected (1, {len(classes)})")
    return bundle
