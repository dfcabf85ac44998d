"""Signal policy: how class probabilities become positions, and what a position change costs.

One frozen, JSON-able value the leaderboard, the backtest and the bot share:

- ``mode="argmax"``: the most likely class decides (up -> +1, down -> -1, flat -> 0; ties -> the
  lowest class id, i.e. down before flat before up, as ``numpy.argmax``).
- ``mode="threshold"``: act only when P(up) or P(down) is at least ``threshold``: long when
  P(up) >= threshold and P(up) > P(down), short when P(down) >= threshold and P(down) > P(up),
  otherwise flat (equal up and down probabilities stay flat).
- ``direction="long_only"``: a short becomes flat (spot markets without borrowing).
- Costs: ``fee`` and ``slippage`` per unit of position change (a flip long -> short is 2 units),
  charged together by :func:`backend.ml_engine.evaluation.backtest`.

Hard class predictions (:meth:`SignalPolicy.positions_from_classes`) are read as one-hot
probabilities: the predicted class has probability 1, so a threshold never holds them back.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["SignalPolicy", "SignalMode", "Direction"]

SignalMode = Literal["argmax", "threshold"]
Direction = Literal["long_short", "long_only"]
_MODES = ("argmax", "threshold")
_DIRECTIONS = ("long_short", "long_only")
_DOWN, _FLAT, _UP = 0, 1, 2


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class SignalPolicy:
    """Probabilities (N, 3) of down/flat/up -> positions in {-1, 0, 1}, and the trading costs."""

    mode: SignalMode = "argmax"
    """'argmax' or 'threshold' (module docstring)."""
    threshold: float = 0.5
    """Least probability of up (down) to go long (short); only in mode 'threshold'; in (0, 1]."""
    direction: Direction = "long_short"
    """'long_short' or 'long_only' (shorts become flat)."""
    fee: float = 0.001
    """Cost per unit of position change (0.001 = 0.10 %)."""
    slippage: float = 0.0
    """Extra cost per unit of position change, added to the fee."""

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"SignalPolicy: mode must be one of {_MODES}, got {self.mode!r}")
        if self.direction not in _DIRECTIONS:
            raise ValueError(f"SignalPolicy: direction must be one of {_DIRECTIONS}, got {self.direction!r}")
        t = _number(self.threshold)
        if t is None or not 0.0 < t <= 1.0:
            raise ValueError(f"SignalPolicy: threshold must be a number in (0, 1], got {self.threshold!r}")
        for name in ("fee", "slippage"):
            v = _number(getattr(self, name))
            if v is None or not 0.0 <= v < 1.0:
                raise ValueError(f"SignalPolicy: {name} must be a number in [0, 1), got {getattr(self, name)!r}")
        if float(self.fee) + float(self.slippage) >= 1.0:
            raise ValueError(f"SignalPolicy: fee + slippage must be < 1, got {float(self.fee) + float(self.slippage)}")
        for name in ("threshold", "fee", "slippage"):  # ints and numpy scalars -> float, for to_dict and equality
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def cost(self) -> float:
        """fee + slippage per unit of position change."""
        return float(self.fee + self.slippage)

    # ---------------------------------------------------------------------------- positions

    def positions(self, proba: ArrayLike) -> np.ndarray:
        """(N,) float positions in {-1, 0, 1} from (N, 3) probabilities of down, flat, up."""
        p = np.asarray(proba, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3:
            raise ValueError(f"SignalPolicy.positions: proba must be (N, 3) (down, flat, up), got shape {p.shape}")
        if not np.all(np.isfinite(p)):
            raise ValueError("SignalPolicy.positions: proba must be finite")
        if self.mode == "argmax":
            pos = np.array([-1.0, 0.0, 1.0])[p.argmax(axis=1)]
        else:
            up, down = p[:, _UP], p[:, _DOWN]
            pos = np.zeros(p.shape[0])
            pos[(up >= self.threshold) & (up > down)] = 1.0
            pos[(down >= self.threshold) & (down > up)] = -1.0
        if self.direction == "long_only":
            pos = np.maximum(pos, 0.0)
        out: np.ndarray = pos
        return out

    def positions_from_classes(self, pred: ArrayLike) -> np.ndarray:
        """(N,) positions from hard class ids (0 down, 1 flat, 2 up), read as one-hot probabilities."""
        c = np.asarray(pred)
        if c.ndim != 1:
            raise ValueError(f"SignalPolicy.positions_from_classes: pred must be 1-D, got shape {c.shape}")
        if c.size and (not np.all(np.isin(c, (_DOWN, _FLAT, _UP)))):
            raise ValueError("SignalPolicy.positions_from_classes: pred must hold class ids 0, 1 or 2")
        return self.positions(np.eye(3)[c.astype(np.int64)])

    # ---------------------------------------------------------------------------- backtest

    def backtest(
        self,
        proba: ArrayLike,
        close: ArrayLike,
        *,
        open_: ArrayLike | None = None,
        series_id: ArrayLike | None = None,
        timeframe: str = "5m",
        periods_per_year: float | None = None,
    ) -> dict[str, Any]:
        """:func:`evaluation.backtest` of this policy's positions with its fee and slippage."""
        from .evaluation import backtest

        return backtest(
            None,
            close,
            series_id,
            fee=self.fee,
            timeframe=timeframe,
            open_=open_,
            positions=self.positions(proba),
            slippage=self.slippage,
            periods_per_year=periods_per_year,
        )

    # ---------------------------------------------------------------------------- words and dicts

    def describe(self) -> str:
        """One line, e.g. "argmax, long and short, fee 0.10% + slippage 0.00% per trade"."""
        rule = "argmax" if self.mode == "argmax" else f"threshold {self.threshold:.2f}"
        side = "long and short" if self.direction == "long_short" else "long only"
        return f"{rule}, {side}, fee {self.fee:.2%} + slippage {self.slippage:.2%} per trade"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignalPolicy:
        """The inverse of :meth:`to_dict`; missing keys take the defaults, unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise ValueError(f"SignalPolicy.from_dict: expected a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise ValueError(f"SignalPolicy.from_dict: unknown keys {unknown} (known: {sorted(known)})")
        return cls(**dict(data))
