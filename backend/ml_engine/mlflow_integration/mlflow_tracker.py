"""MLflowTracker: one training's window onto MLflow, built on ``MlflowClient`` with explicit run ids.

Usage (the user's guide)::

    from backend.ml_engine.mlflow_integration import get_mlflow_tracker

    tracker = get_mlflow_tracker(experiment_name="model_training")
    with tracker.run(run_name="my_experiment_v1", tags={"training_mode": "manual"}):
        tracker.log_params({"model": {"hidden_size": 128}, "trainer": {"epochs": 50}})
        for epoch in range(50):
            for step, loss in ...:
                tracker.log_metrics({"train_loss": loss}, step=step)      # buffered
            tracker.log_metrics({"val_accuracy": acc}, step=epoch)
            tracker.flush()                                               # one log_batch per epoch
        uri = tracker.log_model(model, "model", input_example=x_batch, onnx_path="model.onnx")
        version = tracker.register_model(uri, "hybrid_cnn_lstm", tags={...}, description="...")
    best = tracker.get_best_run(metric="val_accuracy", order="DESC")
    model = tracker.load_model("models:/hybrid_cnn_lstm/latest")

Design decisions
----------------

**No fluent (global) run state.** ``mlflow.start_run()`` keeps the active run per thread, and
asyncio tasks on one loop share a thread, so two trainings in one process could log into each
other's run. A tracker holds its own run id (a small stack, for nested runs) and every call goes
through ``MlflowClient`` with that id; two trackers never share mutable state. One tracker per
training. A tracker's own methods are guarded by a lock, so a trainer thread and the event loop
may both use it.

**log_model without the fluent API.** ``mlflow.pytorch.log_model`` ends in ``Model.log``, which
resolves the *global* tracking URI and the fluent active run/experiment, and registers through a
fresh global client. Instead the tracker does the same steps with its own client
(:mod:`._models`); the result is the same ``models:/<model_id>`` URI ``mlflow.pytorch.log_model``
returns. Registration and loading go through the model store (:mod:`backend.ml_engine.registry`),
the only code that touches the registry and the one reader of ``models:/`` URIs.

**Always a signature and an input example.** ``log_model`` refuses to run without an input
example (``ValueError``); the signature is inferred from that example and the model's output on
it when not given, so the registry never shows an empty input/output schema. Pip requirements
are explicit (``torch``, ``numpy``, ``onnxruntime``, ``cloudpickle`` pinned to the installed
versions; MLflow adds itself), so MLflow never imports the model in a subprocess to infer them.

**Serialization: pickle by default, measured.** MLflow 3 defaults to ``"pt2"`` (``torch.export``).
On this 2-core machine ``log_model`` of the project's HybridCNNLSTM (103k parameters, T=60, F=22)
took 2.8 s with pt2 against 0.09 s with pickle (``bench/results/tracking.md``); for a
256k-parameter CNN-LSTM, ``save_model`` alone took 6-8 s against 0.02-0.4 s. A pt2 model loads as a
``torch.fx.GraphModule``, not the original class (no config attributes, no ``train()``). The
ONNX file logged next to the model is the safe, fast format the predictor serves, so the
PyTorch flavor's job is reproducibility and fine-tuning, where pickle's faithful object is what
we want. Pickle runs code when loaded: load only models from your own tracking store
(``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false`` refuses them). ``serialization_format="pt2"``
remains available per call. The model is saved as a CPU, eval-mode copy; the caller's module is
not touched.

**Metrics are buffered.** ``log_metrics`` only appends to a buffer; ``flush()`` sends it with one
``MlflowClient.log_batch`` (split at MLflow's 1000-metric limit). Call it once per epoch; it also
runs by itself every ``flush_every`` buffered values, before a nested run starts, and always at
``end_run``, also when training failed. One ``log_metric`` call per value costs ~4-5 ms on SQLite
and PostgreSQL here, the buffered path ~0.2 ms per value (``bench/results/tracking.md``). Within
one flush the same ``(key, step)`` logged twice keeps the last value, without error. A flush that fails for a store error keeps its
values for the next try; one rejected as invalid is dropped and the error raised.

**Non-finite values.** NaN is logged as NaN (MLflow stores an ``is_nan`` flag and reads it back
as NaN; it is never turned into 0.0). +inf/-inf are clamped by MLflow's SQL store to
+-1.7976931348623157e308 (the largest double). Either way the key is added to the run tag
``nonfinite_metrics`` (comma-separated, sorted) and a warning is logged once per key and run.
Search filters never match a NaN value and ``order_by`` puts NaN last; ``get_best_run`` skips it.

**Parameters.** Nested dicts are flattened with ``_`` (``{"model": {"hidden": 64}}`` ->
``model_hidden``); dataclasses and pydantic models are flattened like dicts. Values longer than
MLflow's limit (6000 characters) are truncated with a warning; more than 100 params go in
several batches. ``SecretStr`` values and URIs with a password are masked.

**Failures.** ``with tracker.run(...)``: an exception in the body flushes the buffer, sets the
tag ``failure_reason`` (``"TypeName: message"``) and ends the run FAILED (KILLED for
KeyboardInterrupt / cancellation), then re-raises. A store that is unreachable when the tracker
is built raises ``TrackingStoreUnavailable`` (one line, password masked) before any training.

**Versions** returned by ``register_model`` are strings (``"3"``): MLflow's REST API returns
strings while its SQL store returns ints, so the tracker normalises; ``int(version)`` for arithmetic.

Downloads show MLflow's progress bars; ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false`` hides them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NOTE
from mlflow.utils.validation import (
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
)

from ..config import Settings
from ..registry import MODEL_ID_TAG, ModelStore, get_model_store
from ._callback import MLflowCallback
from ._datasets import dataset_digest, dataset_input
from ._models import SerializationFormat, default_pip_requirements, log_pytorch_model
from ._values import (
    RunsPage,
    first_line,
    flatten_params,
    is_transient,
    now_ms,
    param_text,
    quote_key,
    retry_transient,
    run_to_dict,
    truncate,
)
from .experiments import ensure_experiment, ensure_project_experiments
from .stores import DEFAULT_CHECK_TIMEOUT_S, check_tracking_store, mask_uri, resolve_tracking_uri

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..data.candles import CandleSeries

__all__ = [
    "DEFAULT_FLUSH_EVERY",
    "FAILURE_TAG",
    "MODEL_ID_TAG",
    "NONFINITE_TAG",
    "MLflowCallback",
    "MLflowTracker",
    "RunsPage",
    "dataset_digest",
    "default_pip_requirements",
    "flatten_params",
    "get_mlflow_tracker",
    "is_transient",
    "run_to_dict",
]

logger = logging.getLogger(__name__)

#: Buffered metric values that trigger a flush by themselves (MLflow's per-request limit).
DEFAULT_FLUSH_EVERY = MAX_METRICS_PER_BATCH
#: Run tag listing metric keys that received NaN or +-inf.
NONFINITE_TAG = "nonfinite_metrics"
#: Run tag with the error that ended a run FAILED.
FAILURE_TAG = "failure_reason"
#: Seconds register_model waits for a model version to become READY.
DEFAULT_REGISTRATION_TIMEOUT_S = 300.0

_TERMINAL = {"FINISHED", "FAILED", "KILLED"}


class MLflowTracker:
    """Logs one training (and its nested runs) into one MLflow experiment; see the module doc."""

    def __init__(
        self,
        experiment_name: str | None = None,
        *,
        tracking_uri: str | None = None,
        artifact_location: str | None = None,
        settings: Settings | None = None,
        flush_every: int = DEFAULT_FLUSH_EVERY,
        check_store: bool = True,
        check_timeout: float = DEFAULT_CHECK_TIMEOUT_S,
    ) -> None:
        if flush_every < 1:
            raise ValueError("flush_every must be >= 1")
        settings = settings if settings is not None else Settings()
        configured = tracking_uri if tracking_uri is not None else settings.mlflow_tracking_uri
        artifacts = artifact_location if artifact_location is not None else settings.mlflow_artifact_location
        #: The settings with this tracker's store: the model store it hands out uses the same.
        self.settings: Settings = settings.model_copy(
            update={"mlflow_tracking_uri": configured, "mlflow_artifact_location": artifacts}
        )
        self.experiment_name: str = experiment_name or settings.mlflow_experiment_name
        self.artifact_location: str = (
            artifact_location if artifact_location is not None else settings.mlflow_artifact_location
        )
        self.display_uri: str = mask_uri(configured)
        if check_store:
            check_tracking_store(configured, timeout=check_timeout)
        self.tracking_uri: str = resolve_tracking_uri(configured)
        self.flush_every = int(flush_every)
        #: How long end_run keeps retrying a store that is briefly down (a PostgreSQL restart).
        self.end_retry_s = 60.0
        self.client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        # The guide's three experiments are created together, in its order, so that on a fresh store
        # their ids are the guide's: trading_bot_ml 1, model_training 2, auto_retraining 3.
        project = ensure_project_experiments(self.client, self.artifact_location)
        self.experiment_id: str = project.get(self.experiment_name) or ensure_experiment(
            self.client, self.experiment_name, self.artifact_location
        )

        self._lock = threading.RLock()
        self._stack: list[str] = []
        self._buffer: list[Metric] = []
        self._nonfinite: dict[str, set[str]] = {}
        self._nonfinite_sent: dict[str, int] = {}
        self._last_run_id: str | None = None
        self._models: ModelStore | None = None

    def __repr__(self) -> str:
        return f"MLflowTracker(experiment={self.experiment_name!r}, store={self.display_uri!r}, run={self.run_id!r})"

    # ---------------------------------------------------------------- runs

    @property
    def run_id(self) -> str | None:
        """The active (innermost) run of this tracker, or None."""
        with self._lock:
            return self._stack[-1] if self._stack else None

    @property
    def last_run_id(self) -> str | None:
        """The active run, else the run this tracker ended last."""
        with self._lock:
            return self._stack[-1] if self._stack else self._last_run_id

    def _require_run(self) -> str:
        run_id = self.run_id
        if run_id is None:
            raise RuntimeError("no active run: call start_run() first (or use `with tracker.run(...)`)")
        return run_id

    def start_run(
        self,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        nested: bool = False,
        description: str | None = None,
    ) -> str:
        """Create a run in this tracker's experiment and make it the active one; returns its id.

        ``nested=True`` starts a child of the active run (tag ``mlflow.parentRunId``); without
        it a second ``start_run`` while a run is active is an error. ``description`` becomes the
        run's note (``mlflow.note.content``), shown by the MLflow UI.
        """
        with self._lock:
            if self._stack and not nested:
                raise RuntimeError(f"run {self._stack[-1]} is still active: end_run() first, or pass nested=True")
            all_tags = self._context_tags()
            all_tags.update({str(k): param_text(v) for k, v in (tags or {}).items()})
            if self._stack:
                self._flush_locked()
                all_tags[MLFLOW_PARENT_RUN_ID] = self._stack[-1]
            if description:
                all_tags[MLFLOW_RUN_NOTE] = description
            all_tags = {k: truncate(v, MAX_TAG_VAL_LENGTH, "Tag", k) for k, v in all_tags.items()}
            run = self.client.create_run(self.experiment_id, tags=all_tags, run_name=run_name)
            run_id: str = run.info.run_id
            self._stack.append(run_id)
            logger.info("Started MLflow run %s (%s) in experiment %r", run_id, run.info.run_name, self.experiment_name)
            return run_id

    @staticmethod
    def _context_tags() -> dict[str, str]:
        """Source / user / git tags as the fluent API would set them (no run state involved)."""
        try:
            from mlflow.tracking.context.registry import resolve_tags

            return {str(k): str(v) for k, v in resolve_tags({}).items()}
        except Exception:  # pragma: no cover - a context provider failing must not stop training
            logger.debug("Could not resolve MLflow context tags", exc_info=True)
            return {}

    def end_run(self, status: str = "FINISHED") -> None:
        """Flush the buffer and end the active run with ``status`` (FINISHED, FAILED, KILLED).

        The run is ended even when the final flush fails; the flush error is raised afterwards.
        Without an active run this logs a warning and does nothing.
        """
        with self._lock:
            if not self._stack:
                logger.warning("end_run(): no active run")
                return
            self._end_top_locked(status)

    def _end_top_locked(self, status: str) -> None:
        status = status.upper()
        if status not in _TERMINAL:
            raise ValueError(f"status must be one of {sorted(_TERMINAL)}, got {status!r}")
        run_id = self._stack[-1]
        flush_error: BaseException | None = None
        try:
            retry_transient(self._flush_locked, self.end_retry_s, "final metric flush")
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the run is ended
            flush_error = exc
            logger.error("Final metric flush of run %s failed: %s", run_id, exc)
        try:
            retry_transient(lambda: self.client.set_terminated(run_id, status=status), self.end_retry_s, "end run")
        finally:
            self._stack.pop()
            self._last_run_id = run_id
            self._nonfinite.pop(run_id, None)
            self._nonfinite_sent.pop(run_id, None)
            self._buffer = []
        logger.info("Ended MLflow run %s: %s", run_id, status)
        if flush_error is not None:
            raise flush_error

    @contextlib.contextmanager
    def run(
        self,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        nested: bool = False,
        description: str | None = None,
    ) -> Iterator[str]:
        """``with tracker.run(...) as run_id:`` starts a run and always ends it: FINISHED, or on an
        exception FAILED (KILLED for KeyboardInterrupt / cancellation) with the tag
        ``failure_reason``; buffered metrics are flushed in every case. Runs nested inside the
        body and left open are ended first."""
        run_id = self.start_run(run_name=run_name, tags=tags, nested=nested, description=description)
        try:
            yield run_id
        except BaseException as exc:
            killed = isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError, SystemExit))
            status = "KILLED" if killed else "FAILED"
            reason = f"{type(exc).__name__}: {exc}".strip()
            with self._lock:
                self._end_through_locked(run_id, status, reason)
            raise
        else:
            with self._lock:
                self._end_through_locked(run_id, "FINISHED", None)

    def _end_through_locked(self, run_id: str, status: str, reason: str | None) -> None:
        if run_id not in self._stack:
            return  # ended inside the body already
        while self._stack:  # nested runs left open inside the body end first, the same way
            top = self._stack[-1]
            try:
                if reason is not None:
                    self._log_tags_now(top, {FAILURE_TAG: reason})
                self._end_top_locked(status)
            except Exception:
                if reason is None:
                    raise
                logger.exception("Could not end run %s cleanly after a failure", top)
                if self._stack and self._stack[-1] == top:
                    self._stack.pop()
            if top == run_id:
                break

    # ---------------------------------------------------------------- params, tags

    def log_params(self, params: Mapping[str, Any]) -> dict[str, str]:
        """Log params (nested configs flattened with ``_``); returns what was logged, key -> text.

        Values over MLflow's 6000-character limit are truncated with a warning; more than 100
        params are sent in several batches. MLflow refuses to change a param's value in a run.
        """
        run_id = self._require_run()
        flat = {k: param_text(v) for k, v in flatten_params(params).items()}
        flat = {k: truncate(v, MAX_PARAM_VAL_LENGTH, "Param", k) for k, v in flat.items()}
        items = [Param(k, v) for k, v in flat.items()]
        for i in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(run_id, params=items[i : i + MAX_PARAMS_TAGS_PER_BATCH], synchronous=True)
        return flat

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set run tags now (not buffered); values over MLflow's limit are truncated with a warning."""
        self._log_tags_now(self._require_run(), tags)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def _log_tags_now(self, run_id: str, tags: Mapping[str, Any]) -> None:
        items = [RunTag(str(k), truncate(param_text(v), MAX_TAG_VAL_LENGTH, "Tag", str(k))) for k, v in tags.items()]
        for i in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(run_id, tags=items[i : i + MAX_PARAMS_TAGS_PER_BATCH], synchronous=True)

    # ---------------------------------------------------------------- metrics

    def log_metrics(
        self,
        metrics: Mapping[str, Any],
        step: int | None = None,
        timestamp_ms: int | None = None,
        *,
        model_id: str | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
    ) -> None:
        """Buffer metric values for the active run (sent by :meth:`flush`; see the module doc).

        Values must convert with ``float()`` (Python/numpy numbers, 0-d tensors); anything else
        raises ``TypeError`` at once. NaN and +-inf are kept and reported in ``nonfinite_metrics``.
        With ``model_id`` the values are also the LoggedModel's metrics (the MLflow model page
        shows them; ``search_logged_models`` filters and orders by them), measured on the dataset
        ``dataset_name``/``dataset_digest`` (an input of the run).
        """
        timestamp = timestamp_ms if timestamp_ms is not None else now_ms()
        step_value = int(step) if step is not None else 0
        converted: list[tuple[str, float]] = []
        for key, value in metrics.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"metric {key!r}: value {value!r} is not a number") from None
            converted.append((str(key), number))
        with self._lock:
            run_id = self._require_run()
            for key, number in converted:
                if not math.isfinite(number):
                    seen = self._nonfinite.setdefault(run_id, set())
                    if key not in seen:
                        seen.add(key)
                        logger.warning(
                            "Run %s: metric %r is %s at step %d (kept as %s; listed in tag %s)",
                            run_id,
                            key,
                            number,
                            step_value,
                            "NaN" if math.isnan(number) else "+-1.79e308 by MLflow",
                            NONFINITE_TAG,
                        )
                self._buffer.append(
                    Metric(
                        key,
                        number,
                        timestamp,
                        step_value,
                        model_id=model_id,
                        dataset_name=dataset_name,
                        dataset_digest=dataset_digest,
                    )
                )
            if len(self._buffer) >= self.flush_every:
                try:
                    self._flush_locked()
                except Exception as exc:  # kept buffered on a transient error
                    if not is_transient(exc):
                        raise
                    logger.warning(
                        "MLflow store unavailable (%s); keeping %d metric values buffered",
                        first_line(exc),
                        len(self._buffer),
                    )

    def log_metric(self, key: str, value: Any, step: int | None = None) -> None:
        self.log_metrics({key: value}, step=step)

    @property
    def buffered(self) -> int:
        """Metric values waiting for the next flush."""
        with self._lock:
            return len(self._buffer)

    def flush(self, retry_s: float = 0.0) -> int:
        """Send buffered metrics with ``log_batch``; returns how many values were sent (after
        dropping all but the last value of a repeated ``(key, step)``).

        A transient store error (database restarting, server unreachable) is retried for up to
        ``retry_s`` seconds; if it persists the values stay buffered and the error is raised.
        """
        with self._lock:
            return retry_transient(self._flush_locked, retry_s, "metric flush")

    def flush_or_keep(self) -> bool:
        """:meth:`flush` that never stops a training over a transient store error: the values stay
        buffered (nothing is lost) and go out with the next flush. Returns True if sent."""
        try:
            self.flush()
            return True
        except Exception as exc:  # only transient errors are swallowed
            if not is_transient(exc):
                raise
            logger.warning(
                "MLflow store unavailable (%s); keeping %d metric values buffered", first_line(exc), len(self._buffer)
            )
            return False

    def _flush_locked(self) -> int:
        run_id = self._stack[-1] if self._stack else None
        pending_tags: list[RunTag] = []
        if run_id is not None:
            keys = self._nonfinite.get(run_id, set())
            if len(keys) != self._nonfinite_sent.get(run_id, 0):
                pending_tags.append(RunTag(NONFINITE_TAG, ",".join(sorted(keys))))
        if not self._buffer and not pending_tags:
            return 0
        if run_id is None:  # pragma: no cover - buffer is emptied when a run ends
            self._buffer = []
            return 0
        latest: dict[tuple[str, int, str | None], Metric] = {}
        for metric in self._buffer:
            key = (metric.key, metric.step, metric.model_id)
            latest.pop(key, None)  # keep the order of the last occurrence
            latest[key] = metric
        batch = list(latest.values())
        self._buffer = []
        sent = 0
        try:
            first = True
            while first or sent < len(batch):
                chunk = batch[sent : sent + MAX_METRICS_PER_BATCH]
                self.client.log_batch(run_id, metrics=chunk, tags=pending_tags if first else (), synchronous=True)
                if first and pending_tags:
                    self._nonfinite_sent[run_id] = len(self._nonfinite.get(run_id, set()))
                first = False
                sent += len(chunk)
        except MlflowException as exc:
            if exc.error_code == "INVALID_PARAMETER_VALUE":
                logger.error("MLflow rejected %d metric values of run %s: %s", len(batch) - sent, run_id, exc)
                raise
            self._buffer = batch[sent:] + self._buffer
            raise
        except Exception:
            self._buffer = batch[sent:] + self._buffer
            raise
        return sent

    # ---------------------------------------------------------------- artifacts, datasets

    def log_artifact(self, local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        """Upload a file or folder to the active run's artifacts."""
        self.client.log_artifact(self._require_run(), os.fspath(local_path), artifact_path)

    def log_artifacts(self, local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        """Upload a folder's contents to the active run's artifacts."""
        self.client.log_artifacts(self._require_run(), os.fspath(local_dir), artifact_path)

    def log_dict(self, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        """Write a dict as JSON (or YAML for .yaml/.yml) into the run's artifacts."""
        self.client.log_dict(self._require_run(), dict(dictionary), artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self._require_run(), text, artifact_file)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        """Save a matplotlib (or plotly) figure into the run's artifacts, e.g. ``plots/loss.png``."""
        self.client.log_figure(self._require_run(), figure, artifact_file)

    def log_image(self, image: Any, artifact_file: str) -> None:
        """Save an image (numpy array or PIL image) into the run's artifacts."""
        self.client.log_image(self._require_run(), image, artifact_file=artifact_file)

    def log_input(
        self,
        dataset: Any,
        *,
        name: str | None = None,
        source: str | None = None,
        targets: str | None = None,
        context: str = "training",
        tags: Mapping[str, str] | None = None,
        digest: str | None = None,
    ) -> str:
        """Log a dataset as an input of the active run (lineage in the UI); returns its digest.

        ``dataset``: a pandas DataFrame (wrapped with ``mlflow.data.from_pandas`` and a digest over
        the whole frame, see :func:`dataset_digest`) or an ``mlflow.data.Dataset``. ``source`` is
        a path or URI (passwords masked); ``context`` is e.g. training / validation / testing.
        """
        run_id = self._require_run()
        entry = dataset_input(
            dataset, name=name, source=source, targets=targets, context=context, tags=tags, digest=digest
        )
        self.client.log_inputs(run_id, datasets=[entry])
        return str(entry.dataset.digest)

    def log_dataset(
        self,
        series: CandleSeries | Sequence[CandleSeries],
        digest: str | None = None,
        context: str = "training",
    ) -> list[str]:
        """Log candle series (a ``CandleSeries`` or a list of them) as dataset inputs of the run.

        One dataset per series: name ``"<symbol> <timeframe>"``, source the series' source
        (path, ``postgresql://host/db#table`` with the password masked, ``ccxt:<exchange>``),
        digest over the whole frame. ``digest`` (e.g. the training's overall data hash) is used as
        the digest of a single series and added as input tag ``data_hash`` to every dataset.
        Returns the digests logged.
        """
        items: list[CandleSeries] = (
            list(series) if isinstance(series, (list, tuple)) else [cast("CandleSeries", series)]
        )
        digests = []
        for s in items:
            frame = s.frame
            own = digest if (digest and len(items) == 1) else None
            tags = {"symbol": str(s.symbol), "timeframe": str(s.timeframe), "rows": str(len(frame))}
            if digest:
                tags["data_hash"] = digest
            digests.append(
                self.log_input(
                    frame,
                    name=f"{s.symbol} {s.timeframe}",
                    source=str(s.source),
                    context=context,
                    tags=tags,
                    digest=own,
                )
            )
        return digests

    # ---------------------------------------------------------------- models

    def log_model(
        self,
        model: Any,
        model_name: str = "model",
        signature: Any = None,
        input_example: Any = None,
        onnx_path: str | os.PathLike[str] | None = None,
        artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
        pip_requirements: Sequence[str] | None = None,
        serialization_format: SerializationFormat = "pickle",
        metadata: Mapping[str, Any] | None = None,
        step: int = 0,
        serving_example: pd.DataFrame | None = None,
        flavor: str = "pytorch",
    ) -> str:
        """Log a PyTorch model as an MLflow 3 LoggedModel of the active run; returns ``models:/<model_id>``.

        ``flavor``: ``pytorch`` (default), or ``lightgbm`` / ``sklearn`` for the tabular model families
        (their native model; ``signature`` is then required).

        ``input_example`` (array or tensor, e.g. a (B, T, F) float32 batch) is required; at most
        5 rows are stored. ``signature`` is inferred from it and the model's output when not
        given. ``onnx_path`` and ``artifacts`` (name -> file or folder) are uploaded to the run's
        artifacts (root) and copied into the model folder (``<file name>`` for the ONNX file,
        ``artifacts/<file name>`` for the others), so a ``models:/`` URI alone gives the serving
        files. ``runs:/<run_id>/<model_name>`` also resolves to this model.

        ``serving_example``: a real candle frame (timestamp + OHLCV, at least the pipeline's
        ``min_history_rows`` rows; the last ``min_history_rows`` are stored). When given, the model's
        ``python_function`` flavor is the predictor's candle pyfunc (raw candles in, probabilities and
        signal out, ONNX Runtime, no torch; ``backend.ml_engine.predictor._pyfunc``), its signature the
        candle frame in and ``down, flat, up, signal, confidence, candle_time`` out, and its input
        example that frame, in place of the tensor signature and example (the PyTorch flavor is kept).
        It needs ``onnx_path`` (``model.onnx``) and ``artifacts={"metadata.json": ...}``; a flavor
        that cannot answer its own example fails the call (``ValueError``).
        """
        model_id = log_pytorch_model(
            self.client,
            self.experiment_id,
            self._require_run(),
            model,
            flavor=flavor,
            name=model_name,
            signature=signature,
            input_example=input_example,
            onnx_path=onnx_path,
            artifacts=artifacts,
            pip_requirements=pip_requirements,
            serialization_format=serialization_format,
            metadata=metadata,
            step=step,
            serving_example=serving_example,
        )
        return f"models:/{model_id}"

    @property
    def models(self) -> ModelStore:
        """The model store over this tracker's client (registration and loading go through it)."""
        if self._models is None:
            self._models = get_model_store(self.settings, experiment_name=self.experiment_name, client=self.client)
        return self._models

    def register_model(
        self,
        model_uri: str,
        model_name: str,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
        run_id: str | None = None,
        registered_model_description: str | None = None,
        await_timeout_s: float = DEFAULT_REGISTRATION_TIMEOUT_S,
    ) -> str:
        """Register ``model_uri`` (``models:/<model_id>`` or ``runs:/<run_id>/<name>``) as a new
        version of ``model_name``; returns the version as a string (``"3"``).

        The registered model is created when missing, with ``registered_model_description`` (or a
        default). The version carries ``description`` and ``tags`` plus ``run_id``, ``model_id``
        and ``experiment`` tags (never an empty tag list); waits until it is READY.
        """
        model_id = self.models.resolve(model_uri).model_id
        if not model_id:
            raise ValueError(f"{model_uri} names no MLflow 3 logged model (registered from a legacy source)")
        version_tags = {"experiment": self.experiment_name}
        version_tags.update({str(k): param_text(v) for k, v in (tags or {}).items()})
        info = self.models.create_version(
            model_id,
            model_name,
            run_id=run_id or self.last_run_id,
            tags=version_tags,
            description=description,
            registered_model_description=registered_model_description,
            await_timeout_s=await_timeout_s,
        )
        return str(info.version)

    def resolve_model_location(self, model_uri: str) -> str:
        """The artifact URI holding the MLflow model that ``model_uri`` names (the model store's rules)."""
        return self.models.resolve(model_uri).location

    def load_model(self, model_uri: str) -> Any:
        """Load a logged model's native object: ``runs:/<run_id>/<name>``, ``models:/<name>/latest``,
        ``models:/<name>/<version>``, ``models:/<name>@<alias>`` or ``models:/<model_id>``
        (resolved by the model store, as the Predictor does).

        A PyTorch model comes back in eval mode (a ``torch.fx.GraphModule`` for pt2 models); a
        ``lightgbm`` or ``sklearn`` family's model as its Booster or scikit-learn pipeline (they take
        ``backend.ml_engine.tabular.window_features`` of a window). Serving goes through the Predictor."""
        import importlib

        from mlflow.models import Model

        resolved = self.models.resolve(model_uri)
        with tempfile.TemporaryDirectory(prefix="mlflow-load-") as tmp:
            folder = str(self.models.download(resolved, tmp))
            flavors = Model.load(os.path.join(folder, "MLmodel")).flavors
            flavor = next((f for f in ("pytorch", "lightgbm", "sklearn") if f in flavors), "pytorch")
            model = importlib.import_module(f"mlflow.{flavor}").load_model(folder)
        if flavor == "pytorch":
            with contextlib.suppress(Exception):  # exported GraphModules refuse train()/eval()
                model.eval()
        return model

    # ---------------------------------------------------------------- search

    def search_runs_page(
        self,
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        experiment_ids: Sequence[str] | None = None,
        run_view_type: int = ViewType.ACTIVE_ONLY,
    ) -> RunsPage:
        """One page of runs (dicts as :func:`run_to_dict`) and the token of the next page."""
        found = self.client.search_runs(
            experiment_ids=list(experiment_ids) if experiment_ids else [self.experiment_id],
            filter_string=filter_string or "",
            run_view_type=run_view_type,
            max_results=max_results,
            order_by=list(order_by) if order_by else None,
            page_token=page_token,
        )
        return RunsPage([run_to_dict(r) for r in found], found.token or None)

    def search_runs(
        self,
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        experiment_ids: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Runs of this tracker's experiment (or ``experiment_ids``) matching an MLflow filter
        (``"metrics.val_accuracy > 0.7"``, ``"params.trainer_epochs = '50'"``, AND only), as dicts
        with ``run_id``, ``metrics.<k>``, ``params.<k>``, ``tags.<k>``; see :meth:`search_runs_page`
        for the next-page token."""
        return self.search_runs_page(filter_string, order_by, max_results, page_token, experiment_ids).runs

    def get_best_run(
        self, metric: str = "val_accuracy", order: str = "DESC", filter_string: str = ""
    ) -> dict[str, Any] | None:
        """The run with the highest (``DESC``) or lowest (``ASC``) finite value of ``metric``, as a
        dict (``best['run_id']``, ``best['metrics.val_accuracy']``); None when no run has it."""
        order = order.upper()
        if order not in ("ASC", "DESC"):
            raise ValueError("order must be 'ASC' or 'DESC'")
        key = f"metrics.{quote_key(metric)}"
        token: str | None = None
        while True:
            page = self.search_runs_page(filter_string, [f"{key} {order}"], 100, token)
            for run in page.runs:
                value = run.get(f"metrics.{metric}")
                if value is not None and math.isfinite(value):
                    return run
                if value is None:
                    return None  # runs without the metric sort last
            token = page.next_page_token
            if not token:
                return None

    def get_run(self, run_id: str | None = None) -> dict[str, Any]:
        """A run (default: the active or last one) as a dict."""
        rid = run_id or self.last_run_id
        if rid is None:
            raise RuntimeError("no run to read")
        return run_to_dict(self.client.get_run(rid))


def get_mlflow_tracker(
    experiment_name: str | None = None,
    settings: Settings | None = None,
    **kwargs: Any,
) -> MLflowTracker:
    """A new tracker for ``experiment_name`` (default ``MLFLOW_EXPERIMENT_NAME``) over the store in
    ``settings`` (default ``Settings()``: env and ``.env``). Checks the store first and raises
    :class:`TrackingStoreUnavailable` when it cannot be reached. Extra keyword arguments go to
    :class:`MLflowTracker` (``tracking_uri``, ``artifact_location``, ``flush_every``, ...)."""
    return MLflowTracker(experiment_name, settings=settings, **kwargs)
