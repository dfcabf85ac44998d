"""What one training is: :class:`TrainingRequest` (typed configs), built from the settings or saved for ``--resume``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..signal_policy import SignalPolicy

if TYPE_CHECKING:  # pragma: no cover
    from ..dataset import SplitConfig
    from ..features import FeatureConfig
    from ..labels import LabelConfig
    from ..trainer import TrainerConfig

__all__ = ["REQUEST_FILE", "DataSpec", "TrainingRequest", "as_dict"]

#: The exact request of a training, written beside its checkpoints so that ``--resume`` continues it.
REQUEST_FILE = "request.json"


@dataclass
class DataSpec:
    """Where the candles come from and which part of them to use."""

    path: str
    """A file, a folder of files, or a postgresql:// URL of a candles table."""
    symbols: list[str] = field(default_factory=list)
    """Symbols to use; empty means every file in a folder."""
    timeframe: str | None = None
    """Candle timeframe such as 5m; None infers it from file names."""
    date_range_days: float | None = None
    """Use only the last N days of every series."""
    max_fill_gap: int = 3
    """Gaps of at most this many candles are forward-filled; longer gaps split a series."""
    table: str = "candles"
    """Table name when `path` is a PostgreSQL URL."""
    session: str = "auto"
    """When the market is closed: "auto", "24/7" or "weekdays" (closures are not gaps; `data.candles`)."""


@dataclass
class TrainingRequest:
    """The full, typed description of one training."""

    data: DataSpec
    features: FeatureConfig
    labels: LabelConfig
    split: SplitConfig
    model: Any
    """The family's config (``ModelConfig`` for the default ``hybrid_cnn_lstm``; see ``families``)."""
    trainer: TrainerConfig
    window: int = 60
    fee: float = 0.001
    family: str = "hybrid_cnn_lstm"
    """The model family (``backend.ml_engine.families``)."""
    policy: SignalPolicy | None = None
    """How probabilities become trades in the backtest; None: arg-max, long and short, ``fee``."""
    calibrate: bool = False
    """Fit a temperature on the validation split; stored with the version, applied when serving."""

    @property
    def signal_policy(self) -> SignalPolicy:
        return self.policy if self.policy is not None else SignalPolicy(fee=self.fee)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TrainingRequest:
        """Defaults from settings; overrides use flat names (epochs, batch_size, lr, date_range, family,
        model_kwargs = the family's options, ...). A bad family or option: ``families.FamilyError``."""
        from backend.ml_engine.dataset import SplitConfig
        from backend.ml_engine.families import get_family
        from backend.ml_engine.features import FeatureConfig
        from backend.ml_engine.labels import LabelConfig
        from backend.ml_engine.trainer import TrainerConfig

        o = {k: v for k, v in overrides.items() if v is not None}
        window = int(o.get("window", settings.window))
        horizon = int(o.get("horizon", settings.horizon))
        data = DataSpec(
            path=str(o.get("data", settings.data_path)),
            symbols=list(o.get("symbols") or settings.symbol_list),
            timeframe=o.get("timeframe", settings.timeframe),
            date_range_days=o.get("date_range"),
            max_fill_gap=int(o.get("max_fill_gap", settings.max_fill_gap)),
            table=settings.candles_table,
            session=str(o.get("session", settings.session)),
        )
        labels = LabelConfig(horizon=horizon)
        features = FeatureConfig()
        split = SplitConfig(purge_gap=window + horizon)
        family = get_family(o.get("family"))
        # n_features is set once the data is known
        model = family.make_config(dict(o.get("model_kwargs") or {}), n_features=1, window=window)
        trainer = TrainerConfig(
            epochs=int(o.get("epochs", settings.epochs)),
            batch_size=int(o.get("batch_size", settings.batch_size)),
            learning_rate=float(o.get("lr", settings.learning_rate)),
            seed=int(o.get("seed", settings.seed)),
            device=str(o.get("device", settings.device)),
            **dict(o.get("trainer_kwargs") or {}),
        )
        policy = o.get("policy")
        if isinstance(policy, dict):
            policy = SignalPolicy.from_dict(policy)
        return cls(
            data=data,
            features=features,
            labels=labels,
            split=split,
            model=model,
            trainer=trainer,
            window=window,
            family=family.name,
            fee=policy.fee if policy is not None else 0.001,
            policy=policy,
            calibrate=bool(o.get("calibrate", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": dataclasses.asdict(self.data),
            "features": as_dict(self.features),
            "labels": as_dict(self.labels),
            "split": as_dict(self.split),
            "model": as_dict(self.model),
            "trainer": as_dict(self.trainer),
            "window": self.window,
            "fee": self.fee,
            "family": self.family,
            "policy": self.policy.to_dict() if self.policy is not None else None,
            "calibrate": self.calibrate,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingRequest:
        from backend.ml_engine.dataset import SplitConfig
        from backend.ml_engine.families import get_family
        from backend.ml_engine.features import FeatureConfig
        from backend.ml_engine.labels import LabelConfig
        from backend.ml_engine.trainer import TrainerConfig

        family = get_family(d.get("family"))  # requests written before the families: the default
        return cls(
            data=DataSpec(**d["data"]),
            features=FeatureConfig.from_dict(d["features"]),
            labels=LabelConfig.from_dict(d["labels"]),
            split=SplitConfig.from_dict(d["split"]),
            model=family.config_from_dict(d["model"]),
            trainer=TrainerConfig.from_dict(d["trainer"]),
            window=int(d["window"]),
            fee=float(d["fee"]),
            family=family.name,
            policy=SignalPolicy.from_dict(d["policy"]) if d.get("policy") else None,
            calibrate=bool(d.get("calibrate", False)),
        )


def as_dict(obj: Any) -> dict[str, Any]:
    """A config as a JSON-able dict (``to_dict`` when it has one, else its dataclass fields)."""
    if hasattr(obj, "to_dict"):
        out: dict[str, Any] = obj.to_dict()
        return out
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return dict(obj)
