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


def delayed_cue_candles(
    n: int = 6000,
    seed: int = 0,
    delay: int = 30,
    lead: int = 6,
    jump: float = 0.01,
    wick: float = 0.01,
    noise: float = 0.0005,
    gap: tuple[int, int] = (40, 48),
    start: str = "2024-01-01",
    freq: str = "5min",
) -> pd.DataFrame:
    """Candles whose next jump is announced `delay` candles ahead by a one-candle wick, and only there.

    Events every `gap` candles (drawn in [gap[0], gap[1]]): at candle ``s`` a long upper wick (the
    coming jump is up) or lower wick (down) of size `wick`, close untouched; at ``s + delay - lead ..
    s + delay - 1`` the volume is high (a sign-free "jump soon" cue); at ``s + delay`` the close jumps
    by ``+-jump``. Elsewhere small noise returns. At the rows whose label sees the jump (``s + delay -
    lead`` and after) the wick lies ``delay - lead`` to ``delay - 1`` candles back: a model whose window
    is shorter cannot tell the direction (the wick moves no close-based feature; ATR and the volume cue
    carry no sign); one whose window reaches it can. With ``gap[0] >= delay + 10`` an earlier event's
    wick is more than 64 candles back.
    """
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, noise, n)
    up_wick = np.abs(rng.normal(0.0, noise / 2, n))
    down_wick = np.abs(rng.normal(0.0, noise / 2, n))
    volume = rng.lognormal(3.0, 0.3, n)
    s = int(rng.integers(gap[0], gap[1] + 1))
    while s + delay < n:
        sign = 1.0 if rng.random() < 0.5 else -1.0
        (up_wick if sign > 0 else down_wick)[s] = wick
        volume[s + delay - lead : s + delay] *= 8.0
        r[s + delay] = sign * jump + rng.normal(0.0, noise)
        s += int(rng.integers(gap[0], gap[1] + 1))
    close = 100.0 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * np.exp(up_wick)
    low = np.minimum(open_, close) * np.exp(-down_wick)
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


def write_delayed_cue_csv(folder: Path, name: str = "CUE_USDT-5m.csv", **kwargs) -> Path:
    path = Path(folder) / name
    delayed_cue_candles(**kwargs).to_csv(path, index=False)
    return path
