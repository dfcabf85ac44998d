"""What a retraining may change: :class:`RetrainingConfig`, triggers, run kinds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..config import DEFAULT_MODEL_NAME
from ..drift import DriftConfig
from ..walk_forward import WalkForwardConfig

__all__ = ["RUN_KIND_DRIFT_CHECK", "RUN_KIND_FOLD", "RUN_KIND_RETRAINING", "TRIGGERS", "RetrainingConfig"]

TRIGGERS = ("manual", "scheduled", "drift", "performance_drop")
RUN_KIND_RETRAINING = "retraining"
RUN_KIND_DRIFT_CHECK = "drift_check"
RUN_KIND_FOLD = "walk_forward_fold"


@dataclass
class RetrainingConfig:
    """Everything a retraining may change; None means 'from the settings' (or the production version)."""

    model_name: str = DEFAULT_MODEL_NAME
    """Registered model to retrain and promote."""

    data: str | None = None
    """Live candle source (file, folder, postgresql:// URL); None = settings.data_path."""

    symbols: list[str] = field(default_factory=list)
    """Symbols to use; empty = settings.symbols, else (folder or database) the production version's symbols."""

    timeframe: str | None = None
    """Candle timeframe; None = inferred from a file name, settings.timeframe for folders and databases."""

    train_days: float | None = 30.0
    """Train (walk-forward and final model) on the last N days of each series; None or more than
    the data holds = all of it."""

    recent_days: float = 3.0
    """Window of 'recent' candles for the drift and performance checks."""

    reference_data: str | None = None
    """Drift reference candles replacing the production version's recorded training sources."""

    drift: DriftConfig = field(default_factory=DriftConfig)
    """PSI / KS thresholds (see drift.py for the measured defaults)."""

    performance_margin: float = 0.05
    """performance_drop fires when recent accuracy or macro F1 is below the test-time value by more than this."""

    min_performance_samples: int = 100
    """Fewer realised recent labels than this: no performance verdict (not triggered)."""

    cooldown_hours: float = 6.0
    """Minimal time between the starts of two retrainings of one model (0 disables)."""

    walk_forward: WalkForwardConfig = field(default_factory=WalkForwardConfig)
    """Folds K, expanding/sliding, purge gap."""

    schedule_interval_minutes: float | None = 1440.0
    """``serve``: retrain every N minutes (ignored when schedule_cron is set)."""

    schedule_cron: str | None = None
    """``serve``: crontab expression ("0 3 * * *") for the scheduled retraining."""

    check_interval_minutes: float | None = None
    """``serve``: check drift and performance every N minutes between scheduled runs (None: at each scheduled tick)."""

    epochs: int | None = None
    """Training epochs (per fold and for the final model); None = settings.epochs."""

    batch_size: int | None = None
    learning_rate: float | None = None
    seed: int | None = None
    window: int | None = None
    """Window length; None = the production version's, else settings.window."""

    horizon: int | None = None
    """Label horizon; None = the production version's, else settings.horizon."""

    family: str | None = None
    """Model family of the candidate; None: production's family (the default family without one)."""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    """ModelConfig overrides (e.g. conv_channels, lstm_hidden)."""

    trainer_kwargs: dict[str, Any] = field(default_factory=dict)
    """TrainerConfig overrides (e.g. early_stopping_patience)."""

    min_accuracy_for_promotion: float | None = None
    """Gate: minimal walk-forward mean accuracy; None = settings.min_accuracy_for_promotion."""

    primary_metric: str = "test_f1_macro"
    """Gate: metric the candidate must beat production on (walk-forward means on the same folds)."""

    min_improvement: float = 0.0
    """Gate: the candidate must beat production on primary_metric by more than this."""

    fee: float = 0.001
    """Backtest fee per unit of position change."""

    lock_dir: str | None = None
    """Folder of lock files for http:// stores; None = <output_dir>/.locks."""

    def __post_init__(self) -> None:
        checks = [
            (bool(self.model_name) and isinstance(self.model_name, str), "model_name must be a non-empty string"),
            (self.train_days is None or self.train_days > 0, "train_days must be > 0"),
            (self.recent_days > 0 and math.isfinite(self.recent_days), "recent_days must be > 0"),
            (0 <= self.performance_margin < 1, "performance_margin must be in [0, 1)"),
            (self.min_performance_samples >= 1, "min_performance_samples must be >= 1"),
            (self.cooldown_hours >= 0 and math.isfinite(self.cooldown_hours), "cooldown_hours must be >= 0"),
            (
                self.schedule_interval_minutes is None or self.schedule_interval_minutes > 0,
                "schedule_interval_minutes must be > 0",
            ),
            (
                self.check_interval_minutes is None or self.check_interval_minutes > 0,
                "check_interval_minutes must be > 0",
            ),
            (self.epochs is None or self.epochs >= 1, "epochs must be >= 1"),
            (
                self.min_accuracy_for_promotion is None or 0 <= self.min_accuracy_for_promotion <= 1,
                "min_accuracy_for_promotion must be in [0, 1]",
            ),
            (self.min_improvement >= 0, "min_improvement must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"RetrainingConfig: {message}")
        self.symbols = list(self.symbols or [])

    def to_params(self) -> dict[str, Any]:
        """Flat, JSON-able parameters for the MLflow run (``retraining_*``)."""
        return {
            "model_name": self.model_name,
            "train_days": self.train_days,
            "recent_days": self.recent_days,
            "performance_margin": self.performance_margin,
            "cooldown_hours": self.cooldown_hours,
            "primary_metric": self.primary_metric,
            "min_improvement": self.min_improvement,
            "wf_n_folds": self.walk_forward.n_folds,
            "wf_mode": self.walk_forward.mode,
            "wf_initial_train_frac": self.walk_forward.initial_train_frac,
            **{f"drift_{k}": v for k, v in self.drift.to_dict().items()},
        }
