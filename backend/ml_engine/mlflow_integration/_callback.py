"""The trainer callback that logs into a tracker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..trainer import Trainer, TrainResult
    from .mlflow_tracker import MLflowTracker

__all__ = ["MLflowCallback"]


class MLflowCallback:
    """Trainer callback (``backend.ml_engine.trainer`` hooks) that logs into a tracker.

    ``on_batch_end(step, metrics)``: the batch values (keys prefixed ``batch_``, e.g.
    ``batch_loss``, ``batch_learning_rate``) at the global optimiser step, buffered;
    ``on_epoch_end(epoch, metrics)``: the epoch row (``train_loss``, ``val_accuracy``, ...) at
    step = epoch, then one flush; ``on_train_end(result)``: ``best_epoch`` and ``best_<monitor>``,
    flushed. Non-numeric values and the ``epoch`` counter itself are skipped.
    """

    def __init__(self, tracker: MLflowTracker) -> None:
        self.tracker = tracker

    @staticmethod
    def _numbers(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
        out: dict[str, float] = {}
        for key, value in metrics.items():
            if key == "epoch" or isinstance(value, bool):
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            name = key if not prefix or key.startswith(prefix) else f"{prefix}{key}"
            out[name] = number
        return out

    def on_train_start(self, trainer: Trainer) -> None:
        pass

    def on_batch_end(self, step: int, metrics: Mapping[str, Any]) -> None:
        self.tracker.log_metrics(self._numbers(metrics, prefix="batch_"), step=step)

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        self.tracker.log_metrics(self._numbers(metrics), step=epoch)
        self.tracker.flush_or_keep()  # a database restart must not stop the training

    def on_train_end(self, result: TrainResult) -> None:
        final: dict[str, float] = {}
        if getattr(result, "best_epoch", None) is not None:
            final["best_epoch"] = float(result.best_epoch)
        monitor = getattr(result, "monitor", None)
        best = getattr(result, "best_metric", None)
        if monitor and best is not None:
            final[f"best_{monitor}"] = float(best)
        if final:
            self.tracker.log_metrics(final)
        self.tracker.flush(retry_s=self.tracker.end_retry_s)
