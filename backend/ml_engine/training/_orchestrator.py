"""TrainingOrchestrator: a training as an MLflow run in ``model_training``, registered and maybe promoted."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import DEFAULT_MODEL_NAME, EXPERIMENT_TRAINING, Settings
from ..errors import one_line
from ..process import host_identity, pid_alive
from ._outcome import TrainingOutcome, version_tags
from ._pipeline import load_training_data, prepare_training_data, run_training
from ._provenance import code_version
from ._request import REQUEST_FILE, TrainingRequest

if TYPE_CHECKING:  # pragma: no cover
    from ..mlflow_integration import MLflowTracker
    from ..trainer import Callback

__all__ = ["TrainingOrchestrator", "reap_orphaned_runs"]

logger = logging.getLogger("backend.ml_engine.training_orchestrator")


class TrainingOrchestrator:
    """Runs trainings end to end and records each in MLflow (`model_training`)."""

    def __init__(
        self, settings: Settings | None = None, *, experiment_name: str = EXPERIMENT_TRAINING, tracking: bool = True
    ) -> None:
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
        run_name = run_name or f"{model_name}_{datetime.now(UTC):%Y%m%d_%H%M%S_%f}"
        output_dir = Path(settings.output_dir) / run_name
        result: dict[str, Any] = {
            "success": False,
            "run_name": run_name,
            "run_id": None,
            "version": None,
            "promoted": False,
            "test_metrics": {},
        }
        # Everything that can refuse the input runs before an MLflow run exists: a refused training
        # leaves no empty FAILED run behind.
        try:
            if resume:
                saved = output_dir / REQUEST_FILE
                if not (output_dir / "checkpoints" / "last.pt").exists() or not saved.exists():
                    raise ValueError(f"nothing to resume: no checkpoint of run {run_name!r} in {output_dir}")
                request = TrainingRequest.from_dict(json.loads(saved.read_text()))  # the interrupted run's config
            request = request or TrainingRequest.from_settings(settings, **overrides)
            from backend.ml_engine.families import get_family

            family = get_family(request.family)
            if export_onnx:
                family.check_exportable(request.model)  # a model that could never be served is not trained
            elif family.input_kind == "tabular":
                raise ValueError(f"{family.name} is served from its ONNX export only; it cannot be trained without it")
            data = load_training_data(request)
            prepared = prepare_training_data(request, data)
        except Exception as exc:  # noqa: BLE001 - reported in the result, as every failure
            reason = one_line(exc)
            logger.error("training %s refused: %s", run_name, reason)
            result.update({"error": reason, "error_type": type(exc).__name__})
            return result
        threshold = (
            settings.min_accuracy_for_promotion if min_accuracy_for_promotion is None else min_accuracy_for_promotion
        )

        tracker: MLflowTracker | None = None
        run_id: str | None = None
        if self.tracking:
            from backend.ml_engine.mlflow_integration import get_mlflow_tracker

            # Raises a clear error before any training when the store is unreachable.
            tracker = get_mlflow_tracker(experiment_name=self.experiment_name, settings=settings)
            reap_orphaned_runs(tracker)
            tags = {
                "training_mode": training_mode,
                "model_name": model_name,
                "code_version": code_version(),
                "host": host_identity(),
                "pid": str(os.getpid()),
            }
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
                request,
                output_dir,
                run_name=run_name,
                model_name=model_name,
                export_onnx=export_onnx,
                callbacks=all_callbacks,
                tracker=tracker,
                resume=resume,
                data=data,
                prepared=prepared,
            )
            result.update(outcome.to_result())
            if tracker is not None:
                result["version"] = self._register(tracker, outcome, model_name, run_id, training_mode)
                if auto_promote:
                    result.update(self._auto_promote(tracker, model_name, result["version"], threshold))
        except BaseException as exc:
            reason = one_line(exc)
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
    def _register(
        tracker: MLflowTracker, outcome: TrainingOutcome, model_name: str, run_id: str | None, training_mode: str
    ) -> str:
        """A registry version whose tags and description say what it is (the guide's problem no. 2)."""
        assert outcome.model_uri is not None
        tm = outcome.test_metrics
        description = (
            f"HybridCNN-LSTM on {', '.join(outcome.symbols)} {outcome.timeframe}, run {outcome.run_name}: "
            f"test accuracy {tm['accuracy']:.3f}, macro F1 {tm['f1_macro']:.3f} "
            f"(majority baseline {outcome.baselines['majority']['accuracy']:.3f})."
        )
        return tracker.register_model(
            outcome.model_uri, model_name, tags=version_tags(outcome, run_id, training_mode), description=description
        )

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
        tracker.set_tags(
            {
                "promotion": "promoted" if decision.promoted else "refused",
                "promotion_reason": decision.reason[:4000],
                **verdict_tag(decision),
            }
        )
        return {
            "promoted": decision.promoted,
            "promotion_reason": decision.reason,
            "promotion_checks": decision.verdict.to_dict() if decision.verdict else None,
        }


def reap_orphaned_runs(tracker: MLflowTracker) -> list[str]:
    """End as KILLED the RUNNING runs of this host whose training process is gone (SIGKILL, OOM, power).

    A run records its host and pid when it starts; only runs of this host can be judged here.
    Returns the ids of the runs it ended.
    """
    host = host_identity()
    ended = []
    runs = tracker.client.search_runs(
        [tracker.experiment_id],
        filter_string=f"attributes.status = 'RUNNING' AND tags.host = '{host}'",
        max_results=200,
    )
    for run in runs:
        pid = run.data.tags.get("pid", "")
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            tracker.client.set_tag(
                run.info.run_id, "failure_reason", f"training process {pid} died before the run ended"
            )
            tracker.client.set_terminated(run.info.run_id, status="KILLED")
            logger.warning(
                "run %s (%s) was left RUNNING by dead process %s: marked KILLED",
                run.info.run_id,
                run.info.run_name,
                pid,
            )
            ended.append(run.info.run_id)
    return ended
