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
