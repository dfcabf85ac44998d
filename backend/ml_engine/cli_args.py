"""What the command lines share: a parser whose errors are one line, and checked number types."""

from __future__ import annotations

import argparse
import math
from typing import Any

EXIT_BAD_INPUT = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse with bad input reported as one line (`error: ... (see --help)`), exit code 2."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see --help)\n")


def positive_int(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v!r}")
    return n


def positive_float(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {v!r}") from None
    if not (x > 0 and math.isfinite(x)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {v!r}")
    return x


def non_negative_float(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {v!r}") from None
    if not (x >= 0 and math.isfinite(x)):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {v!r}")
    return x


def family_option(text: str) -> tuple[str, str, str]:
    """``FAMILY.KEY=VALUE`` (``--model-option`` of the commands that span families) -> (family, key, value)."""
    key, sep, value = text.partition("=")
    family, dot, option = key.strip().partition(".")
    if not sep or not dot or not family.strip() or not option.strip():
        raise argparse.ArgumentTypeError(f"expected FAMILY.KEY=VALUE, got {text!r}")
    return family.strip().lower(), option.strip(), value.strip()


def unit_float(v: str) -> float:
    """A number in [0, 1) (a fee, a slippage)."""
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {v!r}") from None
    if not 0.0 <= x < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {v!r}")
    return x


def add_data_arguments(
    p: argparse.ArgumentParser, *, window_help: str = "candles per input window (default: 60)"
) -> None:
    """The candle flags every command that reads candles takes (training, leaderboard, tuning): same names, same help."""
    p.add_argument(
        "--data", help="candle file (csv/parquet/feather), folder, or postgresql:// URL (default: bundled sample)"
    )
    p.add_argument("--symbol", action="append", help="symbol to train on, e.g. ETH/BTC; repeat for several")
    p.add_argument("--timeframe", help="candle timeframe, e.g. 5m (default: ML_TIMEFRAME, else from file names)")
    p.add_argument("--date-range", type=positive_float, metavar="DAYS", help="use only the last N days of candles")
    p.add_argument("--window", type=positive_int, help=window_help)
    p.add_argument("--horizon", type=positive_int, help="label horizon in candles (default: 6)")
    p.add_argument(
        "--session",
        choices=["auto", "24/7", "weekdays"],
        help="when the market is closed: weekends (and daily holidays) are not gaps under weekdays "
        "(default: ML_SESSION or auto, detected from the data)",
    )


def add_policy_arguments(p: argparse.ArgumentParser) -> None:
    """The backtest's signal policy (``signal_policy.SignalPolicy``) as flags; read with :func:`policy_from_args`."""
    p.add_argument(
        "--signal-mode",
        choices=["argmax", "threshold"],
        help="how probabilities become trades in the backtest (default: argmax)",
    )
    p.add_argument(
        "--threshold", type=positive_float, help="with --signal-mode threshold: least probability of up/down to act"
    )
    p.add_argument("--long-only", action="store_true", help="long positions only (a down signal is flat)")
    p.add_argument("--fee", type=unit_float, help="cost per unit of position change (default 0.001 = 0.10%%)")
    p.add_argument("--slippage", type=unit_float, help="extra cost per unit of position change (default 0)")


def policy_from_args(args: argparse.Namespace) -> dict[str, Any] | None:
    """The flags of :func:`add_policy_arguments` as a ``SignalPolicy.from_dict`` dict (None: none given)."""
    values = {
        "mode": args.signal_mode,
        "threshold": args.threshold,
        "direction": "long_only" if args.long_only else None,
        "fee": args.fee,
        "slippage": args.slippage,
    }
    given = {k: v for k, v in values.items() if v is not None}
    return given or None
