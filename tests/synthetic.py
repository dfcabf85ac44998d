"""Synthetic candles with a planted, learnable pattern (trending regimes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def trending_candles(
    n: int = 6000,
    seed: int = 0,
    drift: float = 0.004,
    noise: float = 0.001,
    start: str = "2024-01-01",
    freq: str = "5min",
) -> pd.DataFrame:
    """Candles whose log returns follow regimes of 30-80 bars with drift +-`drift`.

    The direction over the next few bars equals the direction of the last few bars except near a
    regime switch, so a causal model can learn it; without that structure it could not.
    """
    rng = np.random.default_rng(seed)
    drifts = np.empty(n)
    i = 0
    sign = 1.0
    while i < n:
        length = int(rng.integers(30, 81))
        drifts[i : i + length] = sign * drift
        sign = -sign if rng.random() < 0.8 else sign
        i += length
    r = drifts + rng.normal(0.0, noise, n)
    close = 100.0 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.normal(0.0, noise / 2, n))
    high = np.maximum(open_, close) * (1 + wick)
    low = np.minimum(open_, close) * (1 - wick)
    volume = rng.lognormal(3.0, 0.5, n)
    return pd.DataFrame(
        {
            "date": pd.date_range(start, periods=n, freq=freq, tz="UTC"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )


def write_trending_csv(folder: Path, name: str = "SYN_USDT-5m.csv", **kwargs) -> Path:
    path = Path(folder) / name
    trending_candles(**kwargs).to_csv(path, index=False)
    return path
