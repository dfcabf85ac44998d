"""Where a training came from: the code version, a hash of every candle, the library versions."""

from __future__ import annotations

import contextlib
import hashlib
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..data.candles import CandleSeries

__all__ = ["code_version", "data_hash", "library_versions"]


def code_version() -> str:
    """The git commit of the working tree when there is one, else the package version."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        if sha.returncode == 0 and sha.stdout.strip():
            return sha.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trading-bot-ml-engine")
    except PackageNotFoundError:
        return "unknown"


def data_hash(series_list: Sequence[CandleSeries]) -> str:
    """SHA-256 over every candle of every series (timestamps and OHLCV), first 32 hex characters."""
    h = hashlib.sha256()
    for s in sorted(series_list, key=lambda s: s.symbol):
        h.update(s.symbol.encode())
        h.update(s.timeframe.encode())
        f = s.frame
        h.update(f["timestamp"].astype("int64").to_numpy().tobytes())
        h.update(f[["open", "high", "low", "close", "volume"]].to_numpy(dtype="float64").tobytes())
    return h.hexdigest()[:32]


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("torch", "numpy", "pandas", "mlflow", "onnx", "onnxruntime"):
        with contextlib.suppress(PackageNotFoundError):  # not installed (a serving host has no torch)
            out[name] = version(name)
    return out
