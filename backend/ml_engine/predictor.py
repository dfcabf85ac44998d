"""Predictor for the trading bot: raw recent candles -> class probabilities and a signal.

Usage::

    from backend.ml_engine.predictor import Predictor

    predictor = Predictor("hybrid_cnn_lstm")           # models:/hybrid_cnn_lstm@production
    pred = predictor.predict(candles)                  # DataFrame: timestamp + OHLCV, oldest first
    pred.signal, pred.confidence, pred.probabilities   # "buy", 0.61, {"down": .., "flat": .., "up": ..}

    Predictor.from_model_uri("models:/hybrid_cnn_lstm/7")   # a pinned version (evaluation, tests)

What a version brings
---------------------
A registry version's model folder (``MLflowTracker.log_model``) holds ``MLmodel``, the PyTorch
model (``data/model.pth``), ``model.onnx`` and ``artifacts/metadata.json``. The predictor
downloads the folder once into a local cache keyed by store, model name, version and MLflow
model id (``<cache_dir>/<store hash>/<name>/v<version>-<model id>``; written to a temporary
folder and renamed, so a half-downloaded folder is never used), then

* runs ``model.onnx`` with ONNX Runtime (CPU provider, ``onnx_threads`` intra-op threads, 1 by
  default: one prediction is a batch of one, where more threads cost more than they give), or the
  PyTorch model when the version has no ONNX file, ORT cannot load it, or ``prefer_onnx=False``
  (``backend`` says which: ``"onnxruntime"`` or ``"torch"``);
* turns candles into model input with the version's OWN ``metadata.json["pipeline"]`` through
  `pipeline.build_inference_windows`, the code path training used (features, window,
  normaliser statistics of that version): no train/serve skew, and a new version with other
  features or another window is served correctly the moment it is loaded.

Candles
-------
``predict`` / ``predict_proba`` take a DataFrame with a time column and OHLCV (any column case,
as `data.validate_candles` accepts), oldest first. The data policy of training applies: the frame
is validated by `validate_candles` with the model's timeframe and the default ``max_fill_gap``
(short gaps forward-filled, longer ones split segments, NaN / non-positive prices / high < low
refused with a `DataValidationError` naming the row and rule). A frame that is already clean
(sorted unique timestamps on the timeframe grid, no gap, finite valid prices: what the bot's
candle feed gives) is recognised by a compiled check (`_fast_clean`) that accepts only frames
`validate_candles` would return unchanged, and skips its ~2.5 ms of pandas work; anything else goes through
`validate_candles`. The last window needs ``pipeline["min_history_rows"]`` (feature lookback +
window - 1) consecutive candles in the last segment; fewer is a `DataValidationError` with rule
``too_few_rows``.

``predict`` computes features only on the last ``min_history_rows`` candles: every feature at
row t is computed from rows ``t - lookback + 1 .. t`` only (`features` module contract), so this
gives the training features bit for bit (tests/test_features.py), and its cost does not grow with
the frame. On that tail it calls the training feature function (`features.segment_features`,
only for the last ``window`` rows) and the version's `Normalizer` directly on numpy columns
(`_LastWindow`), skipping the DataFrame wrapper of `build_inference_windows` (~0.2 ms); for every
version it loads, the predictor checks that this gives the same bits as
`build_inference_windows` and otherwise uses the latter.
``predict_proba`` (evaluation) runs `build_inference_windows` on the whole frame, as training did.
Latency: ``bench/results/predictor.md``.

Hot reload
----------
A loaded version is an immutable `ModelBundle` (runner + pipeline + metadata + version).
``predict`` reads the current bundle reference ONCE and uses only it, so a request in flight
finishes on the version it started with. ``refresh()`` resolves the alias; if it moved, it
downloads and loads the new version completely (session created, pipeline checked), then swaps
the reference under a lock and returns True; the old bundle is freed when its last request
ends. Refreshes are serialised by their own lock, so two never load the same version twice.
With ``refresh_interval_s > 0`` (default 30 s) a ``predict`` call that finds the last check older
than that starts ``refresh()`` in a background thread and goes on with the current bundle: the
request path never waits for the registry or a download. Errors in a background refresh are
logged and the current version keeps serving. ``close()`` waits for a running refresh.
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import numba
import numpy as np
import pandas as pd

from .config import Settings
from .data.candles import (
    DEFAULT_MAX_FILL_GAP,
    DataValidationError,
    find_time_column,
    timeframe_to_timedelta,
    validate_candles,
)
from .pipeline import Normalizer, build_inference_windows, parse_pipeline
from .features import FeatureConfig, segment_features
from .labels import CLASS_NAMES

__all__ = [
    "ALIAS_PRODUCTION",
    "BACKEND_ONNX",
    "BACKEND_TORCH",
    "DEFAULT_MODEL_NAME",
    "SIGNALS",
    "ModelBundle",
    "ModelNotAvailableError",
    "Prediction",
    "Predictor",
    "PredictorError",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "hybrid_cnn_lstm"
ALIAS_PRODUCTION = "production"
BACKEND_ONNX = "onnxruntime"
BACKEND_TORCH = "torch"
ONNX_FILE = "model.onnx"
METADATA_FILE = "artifacts/metadata.json"
#: Trading signal per class name.
SIGNALS: dict[str, str] = {"down": "sell", "flat": "hold", "up": "buy"}
#: MLflow error codes that mean "no such model / version / alias" (anything else is a store error).
_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"})
#: Windows per model call in `Predictor.predict_proba`.
PROBA_BATCH = 512


class PredictorError(RuntimeError):
    """The predictor cannot load or run a model; the message says why."""


class ModelNotAvailableError(PredictorError, LookupError):
    """The registered model, alias, version or model file does not exist."""


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prediction:
    """One prediction from the last window of candles."""

    probabilities: dict[str, float]
    """Softmax class probabilities, e.g. ``{"down": 0.2, "flat": 0.3, "up": 0.5}``."""
    signal: str
    """``"sell"`` | ``"hold"`` | ``"buy"``: the arg-max class, ``"hold"`` when its probability is below
    the predictor's ``min_confidence``."""
    confidence: float
    """Probability of the arg-max class."""
    model_name: str
    model_version: str
    """Registry version (``"7"``), or the MLflow model id / ``"local"`` for an unregistered model."""
    backend: str
    """``"onnxruntime"`` or ``"torch"``."""
    candle_time: str
    """ISO 8601 (UTC) open time of the last candle used."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        self.input_name = inputs[0].name
        self.input_shape = list(inputs[0].shape)
        self.output_name = self.session.get_outputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # InferenceSession.run is thread-safe: concurrent requests share one session.
        return self.session.run([self.output_name], {self.input_name: x})[0]


class _TorchRunner:
    def __init__(self, module: Any) -> None:
        self.module = module

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():  # eval mode, no autograd: safe from several threads
            return self.module(torch.from_numpy(x)).float().numpy()


# --------------------------------------------------------------------------------------------
# the last window without the DataFrame wrapper
# --------------------------------------------------------------------------------------------

OHLCV: tuple[str, ...] = ("open", "high", "low", "close", "volume")


class _LastWindow:
    """The normalised last window of a tail of exactly ``min_history_rows`` candles.

    Calls the training feature function (`features.segment_features`, what `build_feature_matrix`
    runs per segment) and `Normalizer.transform` directly on numpy columns, skipping the
    DataFrame construction, pipeline parsing and window bookkeeping of `build_inference_windows`
    (~0.2 ms per prediction). Same functions on the same rows give the same bits; `Predictor`
    checks that for every version it loads (`verify`) and otherwise uses `build_inference_windows`.
    """

    def __init__(self, pipeline: Mapping[str, Any]) -> None:
        cfg, norm, window = parse_pipeline(pipeline)
        self.cfg: FeatureConfig = cfg
        self.norm: Normalizer = norm
        self.window = window
        self.rows = int(pipeline["min_history_rows"])

    def __call__(self, tail: np.ndarray) -> np.ndarray:
        """tail: (5, min_history_rows) float64 OHLCV rows, oldest first -> (1, T, F) float32."""
        t = self.window
        block = segment_features(tail[0], tail[1], tail[2], tail[3], tail[4], cfg=self.cfg,
                                 first_row=tail.shape[1] - t)  # (F, rows) float32, last t rows computed
        out = np.empty((1, t, block.shape[0]), dtype=np.float32)
        out[0] = block[:, -t:].T
        if np.isnan(out).any():
            raise ValueError("last window has NaN features (tail shorter than the feature lookback?)")
        return self.norm.transform(out, inplace=True)

    def verify(self, pipeline: Mapping[str, Any], seeds: tuple[int, ...] = (0, 1, 2)) -> float | None:
        """None when the windows equal `build_inference_windows`' bit for bit on synthetic candles;
        else the max abs difference (or inf when one path fails)."""
        worst = 0.0
        for seed in seeds:
            tail = _synthetic_tail(self.rows, seed)
            frame = pd.DataFrame({c: tail[j] for j, c in enumerate(OHLCV)})
            try:
                ref = build_inference_windows(frame, pipeline, last_only=True)
                got = self(tail)
            except Exception:  # noqa: BLE001 - any failure disables the direct path
                return math.inf
            if ref.shape != got.shape:
                return math.inf
            if not np.array_equal(ref, got):
                worst = max(worst, float(np.nanmax(np.abs(ref.astype(np.float64) - got))))
        return worst or None


def _synthetic_tail(rows: int, seed: int) -> np.ndarray:
    """(5, rows) valid OHLCV: a random walk with spread, a few flat candles and zero volumes."""
    rng = np.random.default_rng(seed)
    close = 0.05 * np.exp(np.cumsum(rng.normal(0.0, 0.003, rows)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.001, rows)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.001, rows)))
    volume = rng.lognormal(3.0, 1.0, rows)
    flat = rng.random(rows) < 0.05  # forward-filled candles: OHLC = previous close, volume 0
    open_[flat] = high[flat] = low[flat] = close[flat] = np.concatenate(([close[0]], close[:-1]))[flat]
    volume[flat] = 0.0
    return np.ascontiguousarray(np.stack([open_, high, low, close, volume]))


# --------------------------------------------------------------------------------------------
# resolution of a model URI to an artifact folder
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Resolved:
    name: str
    version: str
    model_id: str | None
    location: str
    """Artifact URI of the MLflow model folder, or a local folder."""
    model_uri: str
    local: bool = False


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80] or "_"


def _softmax_row(logits: np.ndarray) -> list[float]:
    """Softmax of one row of logits as Python floats, in float64 like `_softmax` (equal to it up
    to the last bit or two), without six numpy calls on three numbers."""
    z = logits.tolist()
    top = max(z)
    e = [math.exp(v - top) for v in z]
    total = math.fsum(e)
    return [v / total for v in e]


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


class Predictor:
    """Serves one registered model (``models:/<model_name>@<alias>``); see the module docstring."""

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL_NAME,
        alias: str = ALIAS_PRODUCTION,
        *,
        settings: Settings | None = None,
        tracking_uri: str | None = None,
        prefer_onnx: bool = True,
        refresh_interval_s: float | None = 30.0,
        min_confidence: float = 0.0,
        cache_dir: str | os.PathLike[str] | None = None,
        onnx_threads: int = 1,
        max_fill_gap: int = DEFAULT_MAX_FILL_GAP,
        direct_features: bool = True,
        _model_uri: str | None = None,
    ) -> None:
        """Load the version ``alias`` points at; `ModelNotAvailableError` when there is none.

        Args:
            model_name, alias: which registered model and alias to serve.
            settings: `Settings` (tracking URI, cache dir); ``Settings()`` when None.
            tracking_uri: overrides ``settings.mlflow_tracking_uri``.
            prefer_onnx: run ``model.onnx`` with ONNX Runtime when the version has it.
            refresh_interval_s: check the alias in the background at most this often, triggered by
                ``predict``; None or 0 turns the automatic check off (call ``refresh()`` yourself).
            min_confidence: below this top-class probability the signal is ``"hold"``.
            cache_dir: where version folders are downloaded (default ``<settings.cache_dir>/models``).
            onnx_threads: ONNX Runtime intra-op threads per session.
            max_fill_gap: candle gaps of at most this many candles are forward-filled (as in training).
            direct_features: compute the last window with `_LastWindow` (bit-identical, verified per
                version) instead of `build_inference_windows` on the tail; False for the latter.
        """
        if not 0.0 <= float(min_confidence) <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
        if onnx_threads < 1:
            raise ValueError("onnx_threads must be >= 1")
        self.settings = settings if settings is not None else Settings()
        from .mlflow_integration.stores import mask_uri, resolve_tracking_uri

        configured = tracking_uri if tracking_uri is not None else self.settings.mlflow_tracking_uri
        self.tracking_uri: str = resolve_tracking_uri(configured)
        self.display_uri: str = mask_uri(configured)
        self.model_name = model_name
        self.alias = alias
        self.prefer_onnx = bool(prefer_onnx)
        self.refresh_interval_s = float(refresh_interval_s or 0.0)
        self.min_confidence = float(min_confidence)
        self.onnx_threads = int(onnx_threads)
        self.max_fill_gap = int(max_fill_gap)
        self.direct_features = bool(direct_features)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else Path(self.settings.cache_dir) / "models"
        self._pinned_uri = _model_uri  # None: follow the alias
        self._client: Any = None
        self._swap_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._refresh_thread: threading.Thread | None = None
        self._closed = False
        self._next_check = time.monotonic() + self.refresh_interval_s
        self.refresh_errors = 0
        """Background refreshes that failed (logged; the current version kept serving)."""

        target = self._pinned_uri or f"models:/{model_name}@{alias}"
        if target.startswith(("models:", "runs:")):
            from .mlflow_integration.stores import (
                TrackingStoreUnavailable,
                check_tracking_store,
            )

            try:  # a clear, fast error (password masked) instead of MLflow's connection retries
                check_tracking_store(configured)
            except TrackingStoreUnavailable as exc:
                raise PredictorError(str(exc)) from exc
        self._bundle: ModelBundle = self._load(self._resolve(target))
        logger.info("Predictor serving %s version %s with %s (from %s)", self._bundle.model_name,
                    self._bundle.version, self._bundle.backend, self.display_uri)

    @classmethod
    def from_model_uri(cls, model_uri: str | os.PathLike[str], **kwargs: Any) -> Predictor:
        """A predictor for one model: ``models:/name/7``, ``models:/name/latest``, ``models:/name@alias``
        (then it follows the alias like the constructor), ``models:/<model_id>``, ``runs:/<run_id>/model``
        or a local MLflow model folder. Pinned predictors never refresh. Keyword arguments as ``__init__``."""
        uri = os.fspath(model_uri)
        if uri.startswith("models:/") and "@" in uri and "/" not in uri[len("models:/"):]:
            name, alias = uri[len("models:/"):].split("@", 1)
            return cls(name, alias, **kwargs)
        if "alias" in kwargs:
            raise TypeError("from_model_uri: a pinned model has no alias; use models:/name@alias instead")
        kwargs["refresh_interval_s"] = 0.0
        rest = uri[len("models:/"):] if uri.startswith("models:/") else ""
        model_name = kwargs.pop("model_name", None) or (rest.split("/", 1)[0] if "/" in rest else DEFAULT_MODEL_NAME)
        return cls(model_name, ALIAS_PRODUCTION, _model_uri=uri, **kwargs)

    # ---------------------------------------------------------------- state

    @property
    def bundle(self) -> ModelBundle:
        """The version serving now (read once per request)."""
        return self._bundle

    @property
    def version(self) -> str:
        return self._bundle.version

    @property
    def backend(self) -> str:
        return self._bundle.backend

    @property
    def pipeline(self) -> dict[str, Any]:
        """The serving version's feature pipeline (read only: shared with requests in flight)."""
        return self._bundle.pipeline

    @property
    def metadata(self) -> dict[str, Any]:
        """The serving version's ``metadata.json``."""
        return self._bundle.metadata

    @property
    def model_uri(self) -> str:
        return self._bundle.model_uri

    @property
    def pinned(self) -> bool:
        return self._pinned_uri is not None

    def __repr__(self) -> str:
        b = self._bundle
        return f"Predictor({b.model_name!r}, version={b.version!r}, backend={b.backend!r}, store={self.display_uri!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, timeout: float | None = 60.0) -> None:
        """Stop automatic refreshes and wait for one in progress."""
        self._closed = True
        thread = self._refresh_thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)

    # ---------------------------------------------------------------- MLflow

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    def _resolve(self, uri: str) -> _Resolved:
        """URI -> version, model id and artifact location; `ModelNotAvailableError` when missing."""
        from mlflow.exceptions import MlflowException

        from .mlflow_integration.mlflow_tracker import (
            model_id_of_version,
            parse_models_uri,
        )

        if not uri.startswith(("models:", "runs:")):
            path = Path(uri).expanduser()
            if not (path / "MLmodel").is_file():
                raise ModelNotAvailableError(f"{uri}: not a models:/ or runs:/ URI, nor a folder with an MLmodel file")
            return _Resolved(name=self.model_name, version="local", model_id=None, location=str(path.resolve()),
                             model_uri=str(path.resolve()), local=True)
        try:
            if uri.startswith("runs:"):
                run_id, _, sub = uri[len("runs:/"):].partition("/")
                art = sub.split("/", 1)[0] or "model"
                run = self.client.get_run(run_id)
                outputs = run.outputs.model_outputs if run.outputs is not None else []
                found = [self.client.get_logged_model(o.model_id) for o in outputs]
                found = [m for m in found if m.name == art]
                if not found:
                    raise ModelNotAvailableError(f"run {run_id} has no logged model named {art!r}")
                lm = max(found, key=lambda m: m.creation_timestamp)
                return _Resolved(self.model_name, lm.model_id, lm.model_id, lm.artifact_location, uri)
            model_id, name, suffix, alias = parse_models_uri(uri)
            if model_id is not None:
                lm = self.client.get_logged_model(model_id)
                return _Resolved(self.model_name, model_id, model_id, lm.artifact_location, uri)
            assert name is not None
            if alias is not None:
                mv = self.client.get_model_version_by_alias(name, alias)
            elif suffix is None or suffix.lower() == "latest":
                versions = self.client.search_model_versions(
                    filter_string=f"name = '{name}'", max_results=1, order_by=["version_number DESC"])
                if not versions:
                    raise ModelNotAvailableError(f"registered model {name!r} has no versions (store {self.display_uri})")
                mv = versions[0]
            elif suffix.isdigit():
                mv = self.client.get_model_version(name, suffix)
            else:
                raise ModelNotAvailableError(f"{uri}: stages are not supported; use a version number or an alias")
            model_id = model_id_of_version(mv)
            location = (self.client.get_logged_model(model_id).artifact_location if model_id
                        else self.client.get_model_version_download_uri(name, str(mv.version)))
            return _Resolved(name, str(mv.version), model_id, location, f"models:/{name}/{mv.version}")
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND_CODES:
                raise ModelNotAvailableError(self._explain_missing(uri, exc)) from exc
            raise PredictorError(f"model registry error for {uri} ({self.display_uri}): {exc}") from exc
        except PredictorError:
            raise
        except Exception as exc:
            raise PredictorError(f"cannot read {uri} from the model registry at {self.display_uri}: "
                                 f"{type(exc).__name__}: {exc}") from exc

    def _explain_missing(self, uri: str, exc: Exception) -> str:
        from mlflow.exceptions import MlflowException

        from .mlflow_integration.mlflow_tracker import parse_models_uri

        base = f"{uri}: {exc} (store {self.display_uri})"
        if not uri.startswith("models:"):
            return base
        _, name, _, alias = parse_models_uri(uri)
        if name is None:
            return base
        try:
            rm = self.client.get_registered_model(name)
        except MlflowException:
            return (f"registered model {name!r} does not exist in {self.display_uri}: train and register one "
                    f"first (TrainingOrchestrator().train_model(...))")
        if alias is not None:
            aliases = ", ".join(f"{a}=v{v}" for a, v in sorted((rm.aliases or {}).items())) or "none"
            return (f"registered model {name!r} has no alias {alias!r} (aliases: {aliases}) in {self.display_uri}: "
                    f"promote a version first (ModelRegistry.promote or train with auto_promote=True)")
        return base

    def _download(self, resolved: _Resolved) -> Path:
        """The version's model folder in the local cache (downloaded once, atomically)."""
        if resolved.local:
            return Path(resolved.location)
        store = hashlib.sha256(self.tracking_uri.encode()).hexdigest()[:12]
        key = f"v{resolved.version}-{resolved.model_id}" if resolved.model_id and resolved.version != resolved.model_id \
            else (resolved.model_id or hashlib.sha256(resolved.location.encode()).hexdigest()[:16])
        target = self.cache_dir / store / _safe(resolved.name) / _safe(key)
        if (target / "MLmodel").is_file():
            logger.debug("model cache hit: %s", target)
            return target
        from mlflow.store.artifact.artifact_repository_registry import (
            get_artifact_repository,
        )

        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
        started = time.perf_counter()
        try:
            repo = get_artifact_repository(resolved.location, tracking_uri=self.tracking_uri,
                                           registry_uri=self.tracking_uri)
            (tmp / "model").mkdir()
            local = Path(repo.download_artifacts("", dst_path=str(tmp / "model")))
            if not (local / "MLmodel").is_file():
                raise ModelNotAvailableError(f"{resolved.model_uri}: the artifact folder {resolved.location} has no MLmodel")
            try:
                os.replace(local, target)
            except OSError:
                if not (target / "MLmodel").is_file():  # not a concurrent download that won the race
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        logger.info("Downloaded %s into %s (%.2f s)", resolved.model_uri, target, time.perf_counter() - started)
        return target

    # ---------------------------------------------------------------- loading

    def _load(self, resolved: _Resolved) -> ModelBundle:
        """Download and load a version completely (a new bundle; the serving one is not touched)."""
        model_dir = self._download(resolved)
        meta_path = model_dir / METADATA_FILE
        if not meta_path.is_file():
            raise ModelNotAvailableError(
                f"{resolved.model_uri}: the model folder has no {METADATA_FILE}; its feature pipeline is unknown, "
                "so it cannot be served (log the model with TrainingOrchestrator / run_training)")
        metadata = json.loads(meta_path.read_text())
        pipeline = metadata.get("pipeline")
        if not isinstance(pipeline, dict):
            raise PredictorError(f"{resolved.model_uri}: {METADATA_FILE} has no 'pipeline'")
        n_features = len(pipeline["feature_names"])
        window = int(pipeline["window"])
        classes = tuple((metadata.get("label_definition") or {}).get("classes") or CLASS_NAMES)

        runner: Callable[[np.ndarray], np.ndarray] | None = None
        backend = BACKEND_TORCH
        onnx_path = model_dir / ONNX_FILE
        if self.prefer_onnx and onnx_path.is_file():
            try:
                onnx_runner = _OnnxRunner(onnx_path, self.onnx_threads)
                shape = onnx_runner.input_shape
                if len(shape) != 3 or (isinstance(shape[2], int) and shape[2] != n_features) \
                        or (isinstance(shape[1], int) and shape[1] != window):
                    raise PredictorError(f"ONNX input shape {shape} does not fit window {window} x {n_features} features")
                runner, backend = onnx_runner, BACKEND_ONNX
            except Exception as exc:  # noqa: BLE001 - the PyTorch model is the fallback
                logger.warning("%s: cannot serve %s with ONNX Runtime (%s); falling back to PyTorch",
                               resolved.model_uri, ONNX_FILE, exc)
        elif self.prefer_onnx:
            logger.warning("%s has no %s; serving it with PyTorch", resolved.model_uri, ONNX_FILE)
        if runner is None:
            runner = self._load_torch(model_dir, resolved)

        last_window: _LastWindow | None = None
        if self.direct_features:
            try:
                last_window = _LastWindow(pipeline)
                worst = last_window.verify(pipeline)
            except Exception as exc:  # noqa: BLE001
                worst = math.inf
                logger.debug("direct last-window path unavailable: %s", exc)
            if worst is not None:
                logger.warning("%s: the direct last-window features differ from build_inference_windows (max abs "
                               "diff %.3g); using build_inference_windows", resolved.model_uri, worst)
                last_window = None

        bundle = ModelBundle(
            model_name=resolved.name, version=resolved.version, model_id=resolved.model_id,
            model_uri=resolved.model_uri, backend=backend, model_dir=model_dir, pipeline=pipeline,
            metadata=metadata, runner=runner, window=window, min_history_rows=int(pipeline["min_history_rows"]),
            timeframe=(metadata.get("data") or {}).get("timeframe") or None, class_names=classes,
            last_window=last_window,
        )
        # One call on a zero window: a model that cannot run fails here, before it is swapped in.
        out = bundle.runner(np.zeros((1, window, n_features), dtype=np.float32))
        if out.shape != (1, len(classes)):
            raise PredictorError(f"{resolved.model_uri}: model output shape {out.shape}, expected (1, {len(classes)})")
        return bundle

    @staticmethod
    def _load_torch(model_dir: Path, resolved: _Resolved) -> _TorchRunner:
        import mlflow.pytorch

        if not (model_dir / "data").exists():
            raise ModelNotAvailableError(f"{resolved.model_uri}: neither {ONNX_FILE} nor a PyTorch model in {model_dir}")
        module = mlflow.pytorch.load_model(str(model_dir), map_location="cpu")
        with contextlib.suppress(Exception):  # exported GraphModules refuse eval()
            module.eval()
        return _TorchRunner(module)

    # ---------------------------------------------------------------- hot reload

    def refresh(self) -> bool:
        """Re-read the alias; if it moved, load the new version fully, then swap it in. True if swapped.

        Raises `ModelNotAvailableError` / `PredictorError` (and keeps the current version) when the
        alias is gone or the new version cannot be loaded. Pinned predictors return False."""
        if self.pinned:
            return False
        with self._refresh_lock:
            return self._refresh_locked()

    def _refresh_locked(self) -> bool:
        resolved = self._resolve(f"models:/{self.model_name}@{self.alias}")
        current = self._bundle
        self._next_check = time.monotonic() + self.refresh_interval_s
        if resolved.version == current.version and resolved.model_id == current.model_id:
            return False
        started = time.perf_counter()
        bundle = self._load(resolved)
        with self._swap_lock:
            old, self._bundle = self._bundle, bundle
        logger.info("Predictor %s: alias %r moved v%s -> v%s; now serving v%s with %s (loaded in %.2f s)",
                    self.model_name, self.alias, old.version, bundle.version, bundle.version, bundle.backend,
                    time.perf_counter() - started)
        return True

    def _maybe_refresh_in_background(self) -> None:
        if self.refresh_interval_s <= 0 or self._pinned_uri is not None or self._closed:
            return
        now = time.monotonic()
        if now < self._next_check:
            return
        if not self._refresh_lock.acquire(blocking=False):
            return  # a refresh is running
        self._next_check = now + self.refresh_interval_s
        thread = threading.Thread(target=self._background_refresh, name=f"predictor-refresh-{self.model_name}",
                                  daemon=True)
        self._refresh_thread = thread
        try:
            thread.start()
        except BaseException:
            self._refresh_lock.release()
            raise

    def _background_refresh(self) -> None:
        try:
            self._refresh_locked()
        except Exception as exc:  # noqa: BLE001 - keep serving the current version
            self.refresh_errors += 1
            logger.error("Predictor %s: background refresh failed, still serving v%s: %s",
                         self.model_name, self._bundle.version, exc)
        finally:
            self._refresh_lock.release()

    # ---------------------------------------------------------------- candles

    def _clean(self, candles: pd.DataFrame, bundle: ModelBundle, source: str
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(ts_ns int64 (n,), OHLCV float64 (5, n), segment int64 (n,) or None = one segment): the
        frame as `validate_candles` returns it, through a fast check when it needs no repair."""
        if not isinstance(candles, pd.DataFrame):
            raise TypeError(f"candles must be a pandas DataFrame, got {type(candles).__name__}")
        fast = _fast_clean(candles, bundle.timeframe, bundle.min_history_rows)
        if fast is not None:
            return fast[0], fast[1], None
        try:
            clean, _ = validate_candles(candles, source, bundle.timeframe, max_fill_gap=self.max_fill_gap, min_rows=1)
        except DataValidationError as exc:
            if exc.rule == "too_few_rows":
                raise self._too_few(bundle, source, len(candles), "") from None
            raise
        ts = clean["timestamp"].array.asi8
        values = np.stack([clean[c].to_numpy(dtype=np.float64) for c in OHLCV])  # (5, n)
        return ts, values, clean["segment"].to_numpy()

    @staticmethod
    def _too_few(bundle: ModelBundle, source: str, have: int, where: str) -> DataValidationError:
        return DataValidationError(
            source, None, "too_few_rows",
            f"{where or 'the frame has'} {have} candles; model {bundle.model_name} v{bundle.version} needs "
            f"{bundle.min_history_rows} consecutive candles (pipeline min_history_rows: feature lookback "
            f"{bundle.pipeline.get('lookback_rows')} + window {bundle.window} - 1)")

    def build_window(self, candles: pd.DataFrame, *, bundle: ModelBundle | None = None,
                     source: str = "candles") -> tuple[np.ndarray, str]:
        """Model input of the last window: ``((1, T, F) float32, ISO time of the last candle)``.

        Features are computed on the last ``min_history_rows`` candles of the last segment only."""
        bundle = bundle or self._bundle
        need = bundle.min_history_rows
        ts, values, segment = self._clean(candles, bundle, source)
        n = ts.shape[0]
        start = 0
        if segment is not None and n:
            start = int(np.searchsorted(segment, segment[-1], side="left"))  # segment ids are non-decreasing
        if n - start < need:
            where = (f"the last contiguous run (after the gap before {pd.Timestamp(int(ts[start]), tz='UTC').isoformat()})"
                     f" has" if start else "")
            raise self._too_few(bundle, source, n - start, where)
        tail = values[:, n - need:]  # (5, need); each row contiguous
        if bundle.last_window is not None:
            x = bundle.last_window(tail)
        else:
            frame = pd.DataFrame({c: tail[j] for j, c in enumerate(OHLCV)}, copy=False)
            x = np.ascontiguousarray(build_inference_windows(frame, bundle.pipeline, last_only=True), dtype=np.float32)
        return x, _iso_utc(int(ts[-1]))

    # ---------------------------------------------------------------- prediction

    def predict(self, candles: pd.DataFrame, *, source: str = "candles") -> Prediction:
        """Probabilities and signal for the window ending at the last candle of ``candles``.

        ``candles``: time column + OHLCV, oldest first, at least ``pipeline['min_history_rows']``
        consecutive candles at the end. `DataValidationError` for bad or too few candles."""
        self._maybe_refresh_in_background()
        bundle = self._bundle  # one reference for the whole request: a swap cannot mix versions
        x, candle_time = self.build_window(candles, bundle=bundle, source=source)
        probs = _softmax_row(bundle.runner(x)[0])
        return self._prediction(bundle, probs, candle_time)

    def _prediction(self, bundle: ModelBundle, probs: Sequence[float], candle_time: str) -> Prediction:
        idx = max(range(len(probs)), key=probs.__getitem__)  # the first maximum, as np.argmax
        confidence = float(probs[idx])
        name = bundle.class_names[idx]
        signal = SIGNALS.get(name, "hold")
        if confidence < self.min_confidence:
            signal = "hold"
        return Prediction(
            probabilities={c: float(p) for c, p in zip(bundle.class_names, probs)},
            signal=signal, confidence=confidence, model_name=bundle.model_name, model_version=bundle.version,
            backend=bundle.backend, candle_time=candle_time,
        )

    def predict_proba(self, candles: pd.DataFrame, *, source: str = "candles",
                      batch_size: int = PROBA_BATCH) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities for every valid window of ``candles``: ``(probs (n, C) float32, end rows (n,) int64)``.

        End rows index the validated frame, which is ``candles`` row for row unless validation
        repaired it (sorted, de-duplicated or gap-filled: logged as a warning). Features are
        computed on the whole frame, exactly as in training; memory is n * window * features * 4
        bytes for the windows."""
        bundle = self._bundle
        ts, values, segment = self._clean(candles, bundle, source)
        cols: dict[str, Any] = {"timestamp": pd.to_datetime(ts, utc=True)}
        cols.update({c: values[j] for j, c in enumerate(OHLCV)})
        if segment is not None:
            cols["segment"] = segment
        windows, ends = build_inference_windows(pd.DataFrame(cols), bundle.pipeline, return_ends=True)
        if len(ends) == 0:
            longest = int(np.bincount(segment).max()) if segment is not None and len(segment) else len(ts)
            raise self._too_few(bundle, source, longest, "the longest contiguous run has")
        out = np.empty((len(ends), len(bundle.class_names)), dtype=np.float32)
        for s in range(0, len(ends), batch_size):
            out[s:s + batch_size] = _softmax(bundle.runner(np.ascontiguousarray(windows[s:s + batch_size])))
        return out, ends.astype(np.int64)


# --------------------------------------------------------------------------------------------
# fast path of validation
# --------------------------------------------------------------------------------------------

_NAT = np.iinfo(np.int64).min


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _iso_utc(ns: int) -> str:
    """ISO 8601 UTC of nanoseconds since the epoch, as ``pd.Timestamp(ns, tz="UTC").isoformat()``
    writes it; through `datetime` (a few microseconds instead of pandas' Timestamp machinery)
    unless there are nanoseconds that `datetime` cannot hold."""
    if ns % 1000:
        return pd.Timestamp(ns, tz="UTC").isoformat()
    return (_EPOCH + datetime.timedelta(microseconds=ns // 1000)).isoformat()


@functools.lru_cache(maxsize=256)
def _column_layout(columns: tuple[Any, ...]) -> tuple[int, ...] | None:
    """Positions of (time, open, high, low, close, volume) in a frame with these columns, as
    `validate_candles` resolves the names; None if one is missing or a name repeats (then
    validation must run). Cached: a bot sends frames of the same layout on every request."""
    if len(set(columns)) != len(columns):
        return None
    time_col = find_time_column(list(columns))
    if time_col is None:
        return None
    lower: dict[str, int] = {}
    for pos, col in enumerate(columns):
        lower.setdefault(str(col).strip().lower(), pos)
    ohlcv = [lower.get(name) for name in OHLCV]
    if any(pos is None for pos in ohlcv):
        return None
    return (columns.index(time_col), *ohlcv)  # type: ignore[arg-type]


def _column_values(frame: pd.DataFrame, pos: int) -> Any:
    """The stored array (numpy or extension) of column ``pos``, read only.

    pandas' ``frame[name]`` builds a Series per call (~20 us, most of the fast path's time on a
    bot-sized frame); ``DataFrame._get_column_array`` returns the block's array without one. It
    is private, so any pandas without it takes the public route; the values are the same
    (tests/test_predictor.py compares the fast path with `validate_candles` on many frames)."""
    getter = getattr(frame, "_get_column_array", None)
    if getter is not None:
        return getter(pos)
    values = frame.iloc[:, pos].array
    return values.to_numpy() if isinstance(values, pd.arrays.NumpyExtensionArray) else values


@functools.lru_cache(maxsize=64)
def _step_ns(timeframe: str) -> int | None:
    try:
        return int(timeframe_to_timedelta(timeframe).value)
    except ValueError:
        return None


def _fast_clean(frame: pd.DataFrame, timeframe: str | None, min_rows: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(ts_ns, OHLCV (5, n) float64) when `validate_candles` would return ``frame`` unchanged as one
    segment (no repair, no error); None when it might not (then it must run).

    Accepted: a 0..n-1 RangeIndex, the time column `validate_candles` would pick holding
    datetimes (naive = UTC), numpy numeric OHLCV columns, unique column names, at least
    ``min_rows`` rows, timestamps exactly one timeframe apart (so sorted, unique, on the grid, no
    gap), finite values, positive prices, low <= open, close <= high, volume >= 0."""
    n = len(frame)
    if n < max(min_rows, 2):
        return None
    index = frame.index
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        return None
    try:
        layout = _column_layout(tuple(frame.columns))
    except TypeError:  # an unhashable column label
        return None
    if layout is None:
        return None
    arr = _column_values(frame, layout[0])
    if isinstance(arr, np.ndarray) and arr.dtype.kind == "M":
        arr = pd.array(arr)  # naive datetimes as numpy (the public route)
    if not isinstance(arr, pd.arrays.DatetimeArray):
        return None
    values = np.empty((5, n), dtype=np.float64)
    for j, pos in enumerate(layout[1:]):
        col = _column_values(frame, pos)
        if not isinstance(col, np.ndarray) or col.dtype.kind not in "fiu":
            return None
        values[j] = col
    # arr: DatetimeArray, int64 since the epoch (UTC for tz-aware), NaT = int64 min
    if arr.unit != "ns":
        arr = arr.as_unit("ns")
    ts_ns = arr.asi8  # naive times are taken as UTC, as validate_candles does
    step = _step_ns(timeframe) if timeframe else 0
    if step is None:
        return None
    return (ts_ns, values) if _clean_arrays(ts_ns, values, step) else None


@numba.njit(cache=True, nogil=True)
def _clean_arrays(ts_ns: np.ndarray, values: np.ndarray, step: int) -> bool:  # pragma: no cover - compiled
    """True when the times are exactly ``step`` ns apart (the first difference when ``step`` is 0;
    NaT, unsorted, duplicate or gap -> False) and every candle is valid: finite, 0 < low <=
    open, close <= high, 0 <= volume (NaN fails every comparison). One compiled pass instead of
    ~15 numpy calls."""
    n = ts_ns.shape[0]
    if n < 2 or ts_ns[0] == _NAT:
        return False
    if step == 0:
        step = ts_ns[1] - ts_ns[0]
    if step <= 0:
        return False
    for t in range(1, n):
        if ts_ns[t] == _NAT or ts_ns[t] - ts_ns[t - 1] != step:
            return False
    for t in range(n):
        o, h, lo, c, v = values[0, t], values[1, t], values[2, t], values[3, t], values[4, t]
        if not (lo > 0 and lo <= o <= h and lo <= c <= h and h < np.inf and 0 <= v < np.inf):
            return False
    return True
    return ts_ns, values
