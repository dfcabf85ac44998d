"""`Predictor`: serves one registered model's alias, with hot reload (see the package docstring); `Prediction`, its answer."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import pandas as pd

from ..config import DEFAULT_MODEL_NAME, Settings
from ..data.candles import DEFAULT_MAX_FILL_GAP
from ..pipeline import build_inference_windows
from ..prediction_log import PredictionLog, PredictionRecord, input_digest, version_row
from ..prediction_traces import PredictionTracer
from ..registry import ALIAS_PRODUCTION, ModelRegistryError, ModelStore, ResolvedModel, parse_model_uri
from ._bundle import ModelBundle, load_bundle
from ._errors import PredictorError
from ._fast import OHLCV, _softmax, _softmax_row
from ._request import build_window, clean_candles, decide, predict_last, too_few
from ._store import ModelCache

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient

__all__ = ["PROBA_BATCH", "Prediction", "Predictor"]

logger = logging.getLogger("backend.ml_engine.predictor")

#: Windows per model call in `Predictor.predict_proba`.
PROBA_BATCH = 512


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


class Predictor:
    """Serves one registered model (``models:/<model_name>@<alias>``); see the package docstring."""

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
        record: bool | PredictionLog | None = None,
        symbol: str | None = None,
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
            record: record every prediction in the prediction log (`PredictionLog`: buffered, written in
                batches by a background thread; never slows or fails a prediction). True: a log on
                ``ML_PREDICTION_LOG_URL`` (else the jobs database); a `PredictionLog`: that one (not closed
                here); None: ``ML_PREDICTION_LOG`` (default on); False: off.
            symbol: the symbol recorded when ``predict`` is not told one (e.g. the bot's only pair).
        """
        if not 0.0 <= float(min_confidence) <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
        if onnx_threads < 1:
            raise ValueError("onnx_threads must be >= 1")
        self.settings = settings if settings is not None else Settings()
        from ..mlflow_integration.stores import mask_uri, resolve_tracking_uri

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
        self.store = ModelStore(configured)
        """The model store: the one resolver of model URIs, and where model files come from."""
        self._models = ModelCache(self.store, self.cache_dir)
        self._pinned_uri = _model_uri  # None: follow the alias
        self._swap_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._refresh_thread: threading.Thread | None = None
        self._closed = False
        self._next_check = time.monotonic() + self.refresh_interval_s
        self.symbol = symbol
        self.prediction_log: PredictionLog | None = None
        """Where predictions are recorded (None: not recorded)."""
        self._owns_log = False
        if isinstance(record, PredictionLog):
            self.prediction_log = record
        elif record or (record is None and self.settings.prediction_log):
            self.prediction_log = PredictionLog.from_settings(self.settings)
            self._owns_log = True
        self.tracer: PredictionTracer | None = PredictionTracer.from_settings(self.settings, self.tracking_uri)
        """A sampled share of the recorded predictions also written as MLflow traces (``ML_TRACE_SAMPLE_RATE``;
        None: 0). Traces are drawn from the recorded predictions: with no prediction log there are none."""
        if self.tracer is not None and self.prediction_log is None:
            logger.warning("ML_TRACE_SAMPLE_RATE is set but predictions are not recorded: no traces")
        self._described: ModelBundle | None = None
        self.refresh_errors = 0
        """Background refreshes that failed (logged; the current version kept serving)."""

        target = self._pinned_uri or f"models:/{model_name}@{alias}"
        if target.startswith(("models:", "runs:")):
            from ..mlflow_integration.stores import (
                TrackingStoreUnavailable,
                check_tracking_store,
            )

            try:  # a clear, fast error (password masked) instead of MLflow's connection retries
                check_tracking_store(configured)
            except TrackingStoreUnavailable as exc:
                raise PredictorError(str(exc)) from exc
        self._bundle: ModelBundle = self._load(self._models.resolve(target))
        logger.info(
            "Predictor serving %s version %s with %s (from %s)",
            self._bundle.model_name,
            self._bundle.version,
            self._bundle.backend,
            self.display_uri,
        )

    @classmethod
    def from_model_uri(cls, model_uri: str | os.PathLike[str], **kwargs: Any) -> Predictor:
        """A predictor for one model: ``models:/name/7``, ``models:/name/latest``, ``models:/name@alias``
        (then it follows the alias like the constructor; so do the stage names ``models:/name/Production``
        and ``models:/name/Staging``, which mean those aliases), ``models:/<model_id>``,
        ``runs:/<run_id>/model`` or a local MLflow model folder. Pinned predictors never refresh.
        Keyword arguments as ``__init__``. URIs are read by the model store's rules."""
        uri = os.fspath(model_uri)
        try:
            parsed = parse_model_uri(uri)
        except ModelRegistryError:
            parsed = None  # refused (a stage other than Production/Staging, malformed): the store says why at load
        if parsed is not None and parsed.kind == "alias" and parsed.name and parsed.alias:
            return cls(parsed.name, parsed.alias, **kwargs)
        if "alias" in kwargs:
            raise TypeError("from_model_uri: a pinned model has no alias; use models:/name@alias instead")
        kwargs["refresh_interval_s"] = 0.0
        name = parsed.name if parsed is not None else None
        model_name = kwargs.pop("model_name", None) or name or DEFAULT_MODEL_NAME
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

    @property
    def client(self) -> MlflowClient:
        """The model store's MLflow client (the predictor makes no registry calls of its own)."""
        return self.store.client

    def __repr__(self) -> str:
        b = self._bundle
        return f"Predictor({b.model_name!r}, version={b.version!r}, backend={b.backend!r}, store={self.display_uri!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, timeout: float | None = 60.0) -> None:
        """Stop automatic refreshes and wait for one in progress; write the predictions still buffered."""
        self._closed = True
        thread = self._refresh_thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)
        if self._owns_log and self.prediction_log is not None:
            self.prediction_log.close(timeout=min(10.0, timeout or 10.0))

    # ---------------------------------------------------------------- loading

    def _load(self, resolved: ResolvedModel) -> ModelBundle:
        """Download and load a version completely (a new bundle; the serving one is not touched)."""
        name = resolved.name or self.model_name
        model_dir = self._models.folder(resolved, name)
        return load_bundle(
            model_dir,
            model_name=name,
            version=resolved.label,
            model_id=resolved.model_id,
            model_uri=resolved.pinned_uri,
            prefer_onnx=self.prefer_onnx,
            onnx_threads=self.onnx_threads,
            direct_features=self.direct_features,
        )

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
        resolved = self._models.resolve(f"models:/{self.model_name}@{self.alias}")
        current = self._bundle
        self._next_check = time.monotonic() + self.refresh_interval_s
        if resolved.label == current.version and resolved.model_id == current.model_id:
            return False
        started = time.perf_counter()
        bundle = self._load(resolved)
        with self._swap_lock:
            old, self._bundle = self._bundle, bundle
        logger.info(
            "Predictor %s: alias %r moved v%s -> v%s; now serving v%s with %s (loaded in %.2f s)",
            self.model_name,
            self.alias,
            old.version,
            bundle.version,
            bundle.version,
            bundle.backend,
            time.perf_counter() - started,
        )
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
        thread = threading.Thread(
            target=self._background_refresh, name=f"predictor-refresh-{self.model_name}", daemon=True
        )
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
            logger.error(
                "Predictor %s: background refresh failed, still serving v%s: %s",
                self.model_name,
                self._bundle.version,
                exc,
            )
        finally:
            self._refresh_lock.release()

    # ---------------------------------------------------------------- candles

    def build_window(
        self, candles: pd.DataFrame, *, bundle: ModelBundle | None = None, source: str = "candles"
    ) -> tuple[np.ndarray, str]:
        """Model input of the last window: ``((1, T, F) float32, ISO time of the last candle)``.

        Features are computed on the last ``min_history_rows`` candles of the last segment only."""
        return build_window(candles, bundle or self._bundle, source, self.max_fill_gap)

    # ---------------------------------------------------------------- prediction

    def predict(self, candles: pd.DataFrame, *, source: str = "candles", symbol: str | None = None) -> Prediction:
        """Probabilities and signal for the window ending at the last candle of ``candles``.

        ``candles``: time column + OHLCV, oldest first, at least ``pipeline['min_history_rows']``
        consecutive candles at the end. `DataValidationError` for bad or too few candles. ``symbol``:
        what the prediction log records (default: the predictor's ``symbol``)."""
        t0 = time.perf_counter()
        self._maybe_refresh_in_background()
        bundle = self._bundle  # one reference for the whole request: a swap cannot mix versions
        if self.prediction_log is None:
            probs, candle_time = predict_last(candles, bundle, source, self.max_fill_gap)
            return self._prediction(bundle, probs, candle_time)
        x, candle_time = build_window(candles, bundle, source, self.max_fill_gap)
        probs = _softmax_row(bundle.runner(x)[0])
        prediction = self._prediction(bundle, probs, candle_time)
        self._record(bundle, prediction, x[0], symbol, (time.perf_counter() - t0) * 1000.0)
        return prediction

    def predict_many(
        self, candles_by_symbol: Mapping[str, pd.DataFrame], *, source: str = "candles"
    ) -> dict[str, Prediction]:
        """One prediction per symbol, every window in ONE model call (ONNX Runtime batches them).

        ``{symbol: candles}`` as for :meth:`predict`; the answer keeps the order of the input. A symbol
        whose candles are bad raises `DataValidationError` naming it (nothing is predicted then)."""
        t0 = time.perf_counter()
        self._maybe_refresh_in_background()
        bundle = self._bundle
        if not candles_by_symbol:
            return {}
        symbols = list(candles_by_symbol)
        windows, times = [], []
        for sym in symbols:
            x, candle_time = build_window(candles_by_symbol[sym], bundle, f"{source} {sym}", self.max_fill_gap)
            windows.append(x[0])
            times.append(candle_time)
        batch = np.ascontiguousarray(np.stack(windows), dtype=np.float32)
        probs = _softmax(bundle.runner(batch))
        latency_ms = (time.perf_counter() - t0) * 1000.0
        out = {sym: self._prediction(bundle, probs[i].tolist(), times[i]) for i, sym in enumerate(symbols)}
        if self.prediction_log is not None:
            per = latency_ms / len(symbols)
            for i, sym in enumerate(symbols):
                self._record(bundle, out[sym], batch[i], sym, per)
        return out

    def _record(
        self, bundle: ModelBundle, prediction: Prediction, window: np.ndarray, symbol: str | None, ms: float
    ) -> None:
        """Hand one prediction to the log; a recording fault is logged, never raised into the request."""
        log = self.prediction_log
        if log is None:
            return
        try:
            labels = bundle.metadata.get("label_definition") or bundle.metadata.get("label_config") or {}
            if self._described is not bundle:  # once per loaded version, not per prediction
                log.describe_version(
                    version_row(bundle.model_name, bundle.version, bundle.model_id, bundle.metadata, bundle.class_names)
                )
                self._described = bundle
            record = PredictionRecord(
                symbol=symbol or self.symbol or "unknown",
                timeframe=bundle.timeframe or "unknown",
                candle_time=prediction.candle_time,
                model_name=bundle.model_name,
                model_version=bundle.version,
                model_id=bundle.model_id,
                probabilities=prediction.probabilities,
                signal=prediction.signal,
                confidence=prediction.confidence,
                latency_ms=ms,
                input_digest=input_digest(window),
                horizon=int(labels.get("horizon") or 1),
                source=self.record_source,
            )
            log.record(record)
        except Exception:
            logger.warning("prediction not recorded", exc_info=True)
            return
        if self.tracer is not None:  # a random share, written by a background thread (never raises)
            self.tracer.maybe_trace(record, window.shape)

    record_source = "predictor"
    """What the prediction log's ``source`` column says (the API and the pyfunc set their own)."""

    def _prediction(self, bundle: ModelBundle, probs: Sequence[float], candle_time: str) -> Prediction:
        signal, confidence = decide(bundle.class_names, probs, self.min_confidence)
        return Prediction(
            probabilities={c: float(p) for c, p in zip(bundle.class_names, probs)},
            signal=signal,
            confidence=confidence,
            model_name=bundle.model_name,
            model_version=bundle.version,
            backend=bundle.backend,
            candle_time=candle_time,
        )

    def predict_proba(
        self, candles: pd.DataFrame, *, source: str = "candles", batch_size: int = PROBA_BATCH
    ) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities for every valid window of ``candles``: ``(probs (n, C) float32, end rows (n,) int64)``.

        End rows index the validated frame, which is ``candles`` row for row unless validation
        repaired it (sorted, de-duplicated or gap-filled: logged as a warning). Features are
        computed on the whole frame, exactly as in training; memory is n * window * features * 4
        bytes for the windows."""
        bundle = self._bundle
        ts, values, segment = clean_candles(candles, bundle, source, self.max_fill_gap)
        cols: dict[str, Any] = {"timestamp": pd.to_datetime(ts, utc=True)}
        cols.update({c: values[j] for j, c in enumerate(OHLCV)})
        if segment is not None:
            cols["segment"] = segment
        windows, ends = build_inference_windows(pd.DataFrame(cols), bundle.pipeline, return_ends=True)
        if len(ends) == 0:
            longest = int(np.bincount(segment).max()) if segment is not None and len(segment) else len(ts)
            raise too_few(bundle, source, longest, "the longest contiguous run has")
        out = np.empty((len(ends), len(bundle.class_names)), dtype=np.float32)
        for s in range(0, len(ends), batch_size):
            out[s : s + batch_size] = _softmax(bundle.runner(np.ascontiguousarray(windows[s : s + batch_size])))
        return out, ends.astype(np.int64)
