"""What a retraining attempt answers: :class:`RetrainingResult`, :class:`PerformanceReport`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..drift import DriftReport

__all__ = [
    "STATUS_COMPLETED",
    "STATUS_FAILED",
    "STATUS_REFUSED",
    "STATUS_SKIPPED",
    "NoProductionModel",
    "PerformanceReport",
    "ProductionVersion",
    "RetrainingResult",
]

STATUS_COMPLETED = "completed"
STATUS_SKIPPED = "skipped"
STATUS_REFUSED = "refused"
STATUS_FAILED = "failed"


class NoProductionModel(LookupError):
    """The model has no ``production`` version (drift and performance checks need one)."""


@dataclass
class ProductionVersion:
    """The version behind the ``production`` alias and its ``metadata.json``."""

    version: int
    run_id: str | None
    metadata: dict[str, Any]


@dataclass
class PerformanceReport:
    """The production model on recently realised labels against its test-time metrics."""

    version: str
    n_samples: int
    accuracy: float
    f1_macro: float
    reference_accuracy: float
    reference_f1_macro: float
    margin: float
    min_samples: int
    dropped: bool
    window: dict[str, Any] = field(default_factory=dict)
    source: str = "re-evaluation"
    """``live``: the prediction log's resolved outcomes; ``re-evaluation``: the version re-scored recent candles."""

    @property
    def summary(self) -> str:
        if self.n_samples < self.min_samples:
            return (
                f"no verdict: only {self.n_samples} realised recent labels (need {self.min_samples}) "
                f"for production v{self.version}"
            )
        verdict = "performance drop" if self.dropped else "no performance drop"
        where = "live predictions" if self.source == "live" else "recent labels"
        return (
            f"{verdict}: production v{self.version} on {self.n_samples} {where}: accuracy "
            f"{self.accuracy:.4f} (test {self.reference_accuracy:.4f}), macro F1 {self.f1_macro:.4f} "
            f"(test {self.reference_f1_macro:.4f}); margin {self.margin:g}"
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["summary"] = self.summary
        return d


@dataclass
class RetrainingResult:
    """What one retraining attempt did, and why."""

    status: str
    """'completed' (trained, registered; promoted or refused by the gate), 'skipped' (check negative
    or cooldown), 'refused' (another retraining holds the lock) or 'failed'."""
    trigger: str
    model_name: str
    reason: str
    run_id: str | None = None
    version: str | None = None
    promoted: bool = False
    promotion_reason: str | None = None
    production_before: int | None = None
    production_after: int | None = None
    drift: DriftReport | None = None
    performance: PerformanceReport | None = None
    walk_forward: dict[str, Any] | None = None
    seconds: float = 0.0
    error_type: str | None = None

    @property
    def success(self) -> bool:
        return self.status == STATUS_COMPLETED

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("drift", "performance")}
        d["drift"] = self.drift.to_dict() if self.drift else None
        d["performance"] = self.performance.to_dict() if self.performance else None
        d["success"] = self.success
        return d
