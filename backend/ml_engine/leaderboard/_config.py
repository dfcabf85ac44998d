"""What one leaderboard compares: :class:`LeaderboardConfig` (data, windows, folds, families, policy, bootstrap)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..signal_policy import SignalPolicy
from ..training import DataSpec

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Settings

__all__ = ["BASELINES", "LeaderboardConfig", "QUICK_OVERRIDES"]

#: The naive baselines every family is tested against, in the order of the table.
BASELINES: tuple[str, ...] = ("majority", "previous_direction")

#: ``--quick``: a few days, one epoch, two folds, 200 resamples (seconds to a minute on 2 cores).
QUICK_OVERRIDES: dict[str, Any] = {"date_range": 4.0, "epochs": 1, "folds": 2, "n_boot": 200}

_FLAT_KEYS = (
    "data",
    "symbols",
    "timeframe",
    "date_range",
    "window",
    "horizon",
    "session",
    "families",
    "folds",
    "epochs",
    "batch_size",
    "seed",
    "n_boot",
    "alpha",
    "policy",
    "model_options",
)


@dataclass
class LeaderboardConfig:
    """Every family with its default config (``model_options`` override single options) and the naive
    baselines on the same walk-forward folds of ``data``."""

    data: DataSpec
    window: int = 60
    horizon: int = 6
    families: tuple[str, ...] = ()
    """Families to compare; () = every family (``families.family_names()``)."""
    folds: int = 3
    """Walk-forward folds (expanding window; ``walk_forward.make_folds``)."""
    epochs: int = 5
    """Most epochs of the networks (early stopping applies); the tabular families ignore it."""
    batch_size: int = 256
    seed: int = 42
    policy: SignalPolicy = field(default_factory=SignalPolicy)
    n_boot: int = 1000
    alpha: float = 0.05
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-family option overrides, e.g. ``{"lightgbm": {"num_leaves": 15}}``."""

    def __post_init__(self) -> None:
        self.families = tuple(str(f).strip().lower() for f in self.families if str(f).strip())
        if isinstance(self.policy, Mapping):
            self.policy = SignalPolicy.from_dict(self.policy)
        for name, lo in (("window", 2), ("horizon", 1), ("folds", 1), ("epochs", 1), ("batch_size", 1), ("n_boot", 10)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"LeaderboardConfig: {name} must be an int >= {lo}, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"LeaderboardConfig: seed must be an int, got {self.seed!r}")
        if not (isinstance(self.alpha, (int, float)) and 0.0 < float(self.alpha) < 0.5):
            raise ValueError(f"LeaderboardConfig: alpha must be in (0, 0.5), got {self.alpha!r}")
        self.alpha = float(self.alpha)
        if not isinstance(self.model_options, Mapping) or not all(
            isinstance(v, Mapping) for v in self.model_options.values()
        ):
            raise ValueError("LeaderboardConfig: model_options must map a family name to a mapping of its options")
        self.model_options = {str(k).strip().lower(): dict(v) for k, v in self.model_options.items()}

    # ------------------------------------------------------------------ families
    def family_list(self) -> list[str]:
        """The families to compare, checked (`families.UnknownFamilyError` names the known ones)."""
        from ..families import family_names, get_family

        names = list(self.families) or family_names()
        out: list[str] = []
        for name in names:
            fam = get_family(name)
            if fam.name not in out:
                out.append(fam.name)
        return out

    def validate(self, n_features: int = 1) -> dict[str, Any]:
        """Each family's config (defaults + ``model_options``); one-line `families.FamilyError` for an
        unknown family, an option the family does not have, or options for a family not compared."""
        from ..families import FamilyOptionsError, get_family

        names = self.family_list()
        stray = sorted(set(self.model_options) - set(names))
        if stray:
            raise FamilyOptionsError(
                f"model options for {', '.join(stray)}, which {'is' if len(stray) == 1 else 'are'} not compared "
                f"(families: {', '.join(names)})"
            )
        return {
            name: get_family(name).make_config(
                self.model_options.get(name, {}), n_features=n_features, window=self.window
            )
            for name in names
        }

    # ------------------------------------------------------------------ dicts
    def to_dict(self) -> dict[str, Any]:
        return {
            "data": dataclasses.asdict(self.data),
            "window": self.window,
            "horizon": self.horizon,
            "families": list(self.families),
            "folds": self.folds,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "policy": self.policy.to_dict(),
            "n_boot": self.n_boot,
            "alpha": self.alpha,
            "model_options": {k: dict(v) for k, v in self.model_options.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LeaderboardConfig:
        """The inverse of :meth:`to_dict`; missing keys take the defaults, unknown keys are an error."""
        if not isinstance(d, Mapping):
            raise ValueError(f"LeaderboardConfig.from_dict: expected a mapping, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in d if k not in known)
        if unknown:
            raise ValueError(f"LeaderboardConfig.from_dict: unknown keys {unknown} (known: {sorted(known)})")
        if "data" not in d:
            raise ValueError("LeaderboardConfig.from_dict: 'data' is required")
        values = dict(d)
        data = values.pop("data")
        spec = data if isinstance(data, DataSpec) else DataSpec(**dict(data))
        if "families" in values:
            values["families"] = tuple(values["families"] or ())
        if "policy" in values and not isinstance(values["policy"], SignalPolicy):
            values["policy"] = SignalPolicy.from_dict(values["policy"] or {})
        return cls(data=spec, **values)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> LeaderboardConfig:
        """Data, window, horizon and seed from ``settings`` (env / .env); the rest from the
        defaults above. Overrides (None = not given): data, symbols, timeframe, date_range, window,
        horizon, session, families (a list or "a,b"), folds, epochs, batch_size, seed, n_boot, alpha,
        policy (a dict of `SignalPolicy` fields), model_options."""
        unknown = sorted(set(overrides) - set(_FLAT_KEYS))
        if unknown:
            raise ValueError(f"LeaderboardConfig.from_settings: unknown overrides {unknown}")
        o = {k: v for k, v in overrides.items() if v is not None}
        data = DataSpec(
            path=str(o.get("data", settings.data_path)),
            symbols=list(o.get("symbols") or settings.symbol_list),
            timeframe=o.get("timeframe", settings.timeframe),
            date_range_days=float(o["date_range"]) if "date_range" in o else None,
            max_fill_gap=int(settings.max_fill_gap),
            table=settings.candles_table,
            session=str(o.get("session", settings.session)),
        )
        families = o.get("families", ())
        if isinstance(families, str):
            families = families.split(",")
        policy = o.get("policy")
        if policy is None:
            policy_obj = SignalPolicy()
        elif isinstance(policy, SignalPolicy):
            policy_obj = policy
        else:
            policy_obj = SignalPolicy.from_dict(policy)
        kwargs: dict[str, Any] = {
            k: o[k] for k in ("folds", "epochs", "batch_size", "n_boot", "alpha", "model_options") if k in o
        }
        return cls(
            data=data,
            window=int(o.get("window", settings.window)),
            horizon=int(o.get("horizon", settings.horizon)),
            families=tuple(families),
            seed=int(o.get("seed", settings.seed)),
            policy=policy_obj,
            **kwargs,
        )
