"""Candle series, the validation policy and its report.

One policy for every source (files, PostgreSQL, exchange), applied by `validate_candles`:

| rule                  | action                                                                  |
|-----------------------|-------------------------------------------------------------------------|
| missing_column        | error: open/high/low/close/volume or a time column is absent            |
| bad_timestamp         | error: time empty or not ISO 8601 / epoch number                       |
| mixed_timezones       | error: time strings carry different UTC offsets (or some none)         |
| non_finite            | error: NaN, inf or a non-number in OHLCV                               |
| non_positive_price    | error: open/high/low/close <= 0                                        |
| high_below_low        | error: high < low                                                      |
| price_outside_range   | error: open or close outside [low, high]                               |
| negative_volume       | error: volume < 0                                                      |
| duplicate_conflict    | error: same timestamp twice with different values                      |
| (duplicate identical) | repair: later copies dropped, counted (dropped_duplicates)             |
| (unsorted rows)       | repair: sorted, counted (reordered_rows)                               |
| timeframe_mismatch    | error: median spacing != timeframe, or a timestamp off the grid        |
| (market closure)      | none: not filled, no split (closures, closed_candles); see Sessions    |
| (gap <= max_fill_gap) | repair: OHLC = previous close, volume 0 (filled_gaps, filled_candles)  |
| (longer gap)          | repair: new `segment` id after it (long_gaps, segments)                |
| too_few_rows          | error: fewer than min_rows rows, or longest segment shorter            |

Errors are checked in this order; the first failing rule wins, at its first row.
Rows are 1-based data rows of the input (file header excluded).

Sessions
--------
`session` says when the market is closed; a scheduled closure is not a gap. Times are UTC and a
candle's time is its open time.

* ``"24/7"`` (crypto): never closed; every missing candle is a gap (the policy above as it was).
* ``"weekdays"`` (forex, futures, stocks): closed at the weekend. A candle slot is *closed*
  when it falls in the weekend: for daily bars (timeframe 1d) a slot on a Saturday or Sunday;
  for intraday bars a slot from Friday 20:00 to Monday 00:00 (forex and futures close on
  Friday 21:00-22:00 and open on Sunday 21:00-23:00 UTC; bars present in that window are kept).
  For daily bars, holidays too: a missing stretch with at most `HOLIDAY_MAX_WEEKDAYS` (3)
  weekdays missing is a closure as a whole (Good Friday, Christmas, a Monday holiday with its
  weekend). Intraday holidays (a whole missing weekday) and nightly closures of intraday stock
  bars are not closures: they are gaps like any other.
* ``"auto"`` (the default): ``"weekdays"`` when the span of the data holds at least one day's
  worth of Saturday candle slots and at most `AUTO_SATURDAY_SHARE` (2%) of those slots hold a
  candle; otherwise ``"24/7"`` (also when the data spans no whole Saturday: then no weekend
  closure can occur in it). The session used is ``report.session``.

Only timeframes up to 1d that divide a week evenly (1m, 5m, 1h, 4h, 1d, ...) have closures; any
other timeframe is treated as ``"24/7"``. Under ``"weekdays"``, each missing stretch between two
candles is split into its closed slots and its trading slots: closed slots are skipped (no
candle invented, counted in ``closures`` / ``closed_candles``), and only the trading slots count
against `max_fill_gap`: at most that many are forward-filled (at their own times), more split the
series (the long gap's ``closed`` slots are reported with it). So a weekend or a holiday leaves
the series continuous in trading time: one segment, consecutive rows, nothing synthetic.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..errors import one_line

logger = logging.getLogger(__name__)

PRICE_COLUMNS = ("open", "high", "low", "close")
OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")
#: Names accepted for the time column, in order of preference (case-insensitive).
TIME_COLUMN_NAMES = ("date", "datetime", "timestamp", "time")
DEFAULT_MAX_FILL_GAP = 3
#: Market sessions: "auto" detects "24/7" or "weekdays" from the data (module docstring).
SESSIONS = ("auto", "24/7", "weekdays")
DEFAULT_SESSION = "auto"
#: Daily bars: a missing stretch with at most this many weekdays missing is a holiday closure.
HOLIDAY_MAX_WEEKDAYS = 3
#: "auto": a weekday market has candles in at most this share of its Saturday slots.
AUTO_SATURDAY_SHARE = 0.02
#: The floor; callers pass window + horizon + feature warm-up.
DEFAULT_MIN_ROWS = 2

_UNNAMED = re.compile(r"^(unnamed: ?\d+|index|)$")
_TIMEFRAME = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# A time of day followed by an optional zone designator, at the end of the string.
_TZ_SUFFIX = r"(\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)\s*(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?\s*$"


class DataValidationError(ValueError):
    """Bad input data: names the source, the 1-based data row (or None) and the rule broken.

    ``str(err)`` is always one line: a detail quoting a parser's multi-line message is collapsed."""

    def __init__(self, source: str, row: int | None, rule: str, detail: str) -> None:
        detail = one_line(detail)
        super().__init__(source, row, rule, detail)
        self.source = source
        self.row = row
        self.rule = rule
        self.detail = detail

    def __str__(self) -> str:
        if self.row is None:
            return f"{self.source}: {self.rule}: {self.detail}"
        return f"{self.source}: row {self.row}: {self.rule}: {self.detail}"


@dataclass(frozen=True)
class LongGap:
    """A gap longer than max_fill_gap: the series is split between `start` and `end`."""

    start: pd.Timestamp  # last candle before the gap
    end: pd.Timestamp  # first candle after the gap
    missing: int  # candle slots missing in between
    closed: int = 0  # of which the market was closed (weekend), under a "weekdays" session

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": self.start.isoformat(), "end": self.end.isoformat(), "missing": self.missing}
        if self.closed:
            out["closed"] = self.closed
        return out


@dataclass
class ValidationReport:
    """Repairs applied by `validate_candles`, counted."""

    source: str
    timeframe: str = ""
    rows_in: int = 0
    rows_out: int = 0
    dropped_duplicates: int = 0
    reordered_rows: int = 0
    filled_gaps: int = 0
    filled_candles: int = 0
    segments: int = 0
    long_gaps: list[LongGap] = field(default_factory=list)
    session: str = "24/7"  # the session applied ("auto" resolved)
    closures: int = 0  # missing stretches that were (partly) market closures, left out
    closed_candles: int = 0  # candle slots of those closures (none invented)

    @property
    def repaired(self) -> bool:
        return bool(self.dropped_duplicates or self.reordered_rows or self.filled_gaps or self.long_gaps)

    def summary(self) -> str:
        """One line, e.g. for a log or a run description."""
        return (
            f"{self.source}: {self.rows_in} rows in, {self.rows_out} out; "
            f"{self.dropped_duplicates} duplicates dropped, {self.reordered_rows} rows reordered, "
            f"{self.filled_gaps} gaps filled ({self.filled_candles} candles), "
            f"{len(self.long_gaps)} long gaps -> {self.segments} segments"
        ) + (
            f"; {self.session} session: {self.closures} closures skipped ({self.closed_candles} candle slots)"
            if self.session != "24/7"
            else ""
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, for run metadata."""
        return {
            "source": self.source,
            "timeframe": self.timeframe,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped_duplicates": self.dropped_duplicates,
            "reordered_rows": self.reordered_rows,
            "filled_gaps": self.filled_gaps,
            "filled_candles": self.filled_candles,
            "segments": self.segments,
            "long_gaps": [g.to_dict() for g in self.long_gaps],
            "session": self.session,
            "closures": self.closures,
            "closed_candles": self.closed_candles,
        }

    def log(self, log: logging.Logger = logger) -> None:
        """Log each repair once (WARNING: repairs change the data); closures at INFO (nothing changed)."""
        if self.closures:
            log.info(
                "%s: %s session, %d market closures left out (%d candle slots, not filled, no split)",
                self.source,
                self.session,
                self.closures,
                self.closed_candles,
            )
        if self.dropped_duplicates:
            log.warning("%s: dropped %d duplicate rows (identical values)", self.source, self.dropped_duplicates)
        if self.reordered_rows:
            log.warning("%s: sorted by time, %d rows were out of order", self.source, self.reordered_rows)
        if self.filled_gaps:
            log.warning(
                "%s: forward-filled %d gaps (%d candles, volume 0)", self.source, self.filled_gaps, self.filled_candles
            )
        if self.long_gaps:
            log.warning(
                "%s: %d gaps too long to fill, split into %d segments: %s",
                self.source,
                len(self.long_gaps),
                self.segments,
                ", ".join(f"{g.start} .. {g.end} ({g.missing} missing)" for g in self.long_gaps[:5])
                + (f", ... {len(self.long_gaps) - 5} more" if len(self.long_gaps) > 5 else ""),
            )


@dataclass(frozen=True, eq=False)
class CandleSeries:
    """One symbol and timeframe of validated candles."""

    symbol: str  # "ETH/BTC"
    timeframe: str  # "5m"
    frame: pd.DataFrame  # timestamp (datetime64[ns, UTC]), open..volume (float64), segment (int64)
    source: str  # file path, "postgresql://user:***@host/db#table", "ccxt:binance"
    report: ValidationReport

    def __len__(self) -> int:
        return len(self.frame)


# --- timeframes ----------------------------------------------------------------------------


def timeframe_to_timedelta(timeframe: str) -> pd.Timedelta:
    """'5m' -> 5 minutes; units s, m, h, d, w (ccxt notation, months unsupported)."""
    m = _TIMEFRAME.match(timeframe.strip()) if isinstance(timeframe, str) else None
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"unknown timeframe {timeframe!r} (expected e.g. 1m, 5m, 1h, 1d, 1w)")
    return pd.Timedelta(seconds=int(m.group(1)) * _UNIT_SECONDS[m.group(2)])


def timedelta_to_timeframe(delta: pd.Timedelta) -> str:
    """5 minutes -> '5m'; the largest unit that divides it; str(delta) when not whole seconds."""
    ns = int(pd.Timedelta(delta).value)
    if ns <= 0 or ns % 1_000_000_000:
        return str(pd.Timedelta(delta))
    seconds = ns // 1_000_000_000
    for unit in ("w", "d", "h", "m", "s"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    raise AssertionError("unreachable")  # pragma: no cover


# --- column resolution and parsing ---------------------------------------------------------


def _fmt(value: float) -> str:
    return format(float(value), ".10g")


def find_time_column(columns: list[Any]) -> Any | None:
    """The time column: date/datetime/timestamp/time (any case), else the first unnamed column."""
    names: dict[str, Any] = {}
    for col in columns:
        names.setdefault(str(col).strip().lower() if col is not None else "", col)
    for candidate in TIME_COLUMN_NAMES:
        if candidate in names:
            return names[candidate]
    for col in columns:
        if col is None or _UNNAMED.match(str(col).strip().lower()):
            return col
    return None


def index_to_column(frame: pd.DataFrame) -> pd.DataFrame:
    """A DatetimeIndex or a named index becomes a column; any other index is dropped (RangeIndex after)."""
    if isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 and frame.index.step == 1:
        return frame
    keep = isinstance(frame.index, pd.DatetimeIndex) or any(n is not None for n in frame.index.names)
    return frame.reset_index(drop=not keep)


def _resolve_columns(frame: pd.DataFrame, source: str) -> dict[str, Any]:
    names: dict[str, Any] = {}
    for col in frame.columns:
        names.setdefault(str(col).strip().lower(), col)
    found = ", ".join(str(c) for c in frame.columns) or "none"
    resolved: dict[str, Any] = {}
    time_col = find_time_column(list(frame.columns))
    if time_col is None:
        raise DataValidationError(
            source,
            None,
            "missing_column",
            f"no time column (date, datetime, timestamp, time or an unnamed first column); columns: {found}",
        )
    resolved["timestamp"] = time_col
    for name in OHLCV_COLUMNS:
        if name not in names:
            raise DataValidationError(source, None, "missing_column", f"no {name!r} column; columns: {found}")
        resolved[name] = names[name]
    return resolved


def _tz_label(key: str) -> str:
    return "no time zone" if key == "" else key


def _normalise_offset(designator: pd.Series) -> pd.Series:
    """Zone designators -> '+HH:MM' ('' for naive)."""
    d = designator.fillna("").astype(object)
    utc = d.isin(["Z", "z", "UTC", "GMT"])
    digits = d.str.replace(":", "", regex=False)
    hours = digits.str.slice(0, 3)
    minutes = digits.str.slice(3, 5).replace("", "00")
    out = (hours + ":" + minutes).where(d != "", "")
    out = out.where(~utc, "+00:00")
    return out.replace("-00:00", "+00:00")


def _parse_string_times(values: pd.Series, source: str) -> pd.Series:
    s = values.astype(object)
    is_null = s.isna().to_numpy()
    if is_null.any():
        row = int(np.flatnonzero(is_null)[0]) + 1
        raise DataValidationError(source, row, "bad_timestamp", "empty time")
    text = s.astype(str).str.strip()
    numeric = pd.to_numeric(text, errors="coerce")
    if numeric.notna().all():
        return _parse_epoch(numeric.to_numpy(dtype="float64"), source)
    parts = text.str.extract(_TZ_SUFFIX, expand=True)
    has_time = parts[0].notna().to_numpy()  # strings without a time of day tell no zone
    keys = _normalise_offset(parts[1])
    first = ""
    if has_time.any():
        ref = int(np.flatnonzero(has_time)[0])
        first = keys.iloc[ref]
        differs = has_time & (keys != first).to_numpy()
        if differs.any():
            i = int(np.flatnonzero(differs)[0])
            raise DataValidationError(
                source,
                i + 1,
                "mixed_timezones",
                f"{text.iloc[i]!r} has {_tz_label(keys.iloc[i])}, row {ref + 1} has {_tz_label(first)}",
            )
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=first != "")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataValidationError(
            source, i + 1, "bad_timestamp", f"{text.iloc[i]!r} is not an ISO 8601 time or an epoch number"
        )
    if first == "":
        parsed = parsed.dt.tz_localize("UTC")  # naive times are UTC
    return parsed


_EPOCH_UNITS = ("s", "ms", "us", "ns")
_EPOCH_BOUNDS = np.array([1e11, 1e14, 1e17])  # below 1e11 seconds (year 5138), then ms, us, ns


def _parse_epoch(raw: np.ndarray, source: str) -> pd.Series:
    """Epoch numbers; the unit (s, ms, us, ns) is told by magnitude and must be the same for every row."""
    values = raw.astype("float64")
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataValidationError(
            source, i + 1, "bad_timestamp", "empty time" if np.isnan(values[i]) else "infinite time"
        )
    unit_idx = np.searchsorted(_EPOCH_BOUNDS, np.abs(values), side="right")
    differs = unit_idx != unit_idx[0]
    if differs.any():
        i = int(np.flatnonzero(differs)[0])
        raise DataValidationError(
            source,
            i + 1,
            "bad_timestamp",
            f"epoch {_fmt(values[i])} is in {_EPOCH_UNITS[unit_idx[i]]}, row 1 is in {_EPOCH_UNITS[unit_idx[0]]}",
        )
    exact = raw if np.issubdtype(raw.dtype, np.integer) else values  # int64 ns would lose digits as float
    return pd.Series(pd.to_datetime(exact, unit=_EPOCH_UNITS[unit_idx[0]], utc=True))


def parse_timestamps(values: pd.Series, source: str) -> pd.Series:
    """Datetimes, ISO strings or epoch s/ms/us/ns -> datetime64[ns, UTC] (naive means UTC)."""
    values = values.reset_index(drop=True)
    if len(values) == 0:
        return pd.Series(pd.DatetimeIndex([], tz="UTC", dtype="datetime64[ns, UTC]"))
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values.dtype):
        bad = values.isna().to_numpy()
        if bad.any():
            raise DataValidationError(source, int(np.flatnonzero(bad)[0]) + 1, "bad_timestamp", "empty time")
        parsed = values.dt.tz_convert("UTC") if values.dt.tz is not None else values.dt.tz_localize("UTC")
    elif pd.api.types.is_bool_dtype(values.dtype):
        raise DataValidationError(source, 1 if len(values) else None, "bad_timestamp", "time column holds booleans")
    elif pd.api.types.is_numeric_dtype(values.dtype):
        parsed = _parse_epoch(values.to_numpy(), source)
    else:
        parsed = _parse_string_times(values, source)
    return parsed.dt.as_unit("ns").reset_index(drop=True)


def _numeric_ohlcv(frame: pd.DataFrame, cols: dict[str, Any], source: str) -> np.ndarray:
    """(n, 5) float64 of OHLCV; the first non-finite or non-number cell raises non_finite."""
    n = len(frame)
    out = np.empty((n, 5), dtype="float64")
    raw_bad = np.zeros((n, 5), dtype=bool)
    for j, name in enumerate(OHLCV_COLUMNS):
        col = frame[cols[name]]
        if pd.api.types.is_bool_dtype(col.dtype):
            raw_bad[:, j] = True
            out[:, j] = np.nan
            continue
        num = pd.to_numeric(col, errors="coerce") if not pd.api.types.is_numeric_dtype(col.dtype) else col
        out[:, j] = np.asarray(num, dtype="float64")
        raw_bad[:, j] = np.isnan(out[:, j]) & col.notna().to_numpy()
    bad = ~np.isfinite(out)
    rows = np.flatnonzero(bad.any(axis=1))
    if len(rows):
        i = int(rows[0])
        j = int(np.flatnonzero(bad[i])[0])
        name = OHLCV_COLUMNS[j]
        if raw_bad[i, j]:
            detail = f"{name} is {frame[cols[name]].iloc[i]!r}, not a number"
        else:
            v = out[i, j]
            detail = f"{name} is {'NaN' if np.isnan(v) else ('inf' if v > 0 else '-inf')}"
        raise DataValidationError(source, i + 1, "non_finite", detail)
    return out


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _first_row(mask: npt.ArrayLike) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if len(idx) else None


def _check_values(v: np.ndarray, source: str) -> None:
    o, h, lo, c, vol = (v[:, j] for j in range(5))
    prices = v[:, :4]
    i = _first_row((prices <= 0).any(axis=1))
    if i is not None:
        j = int(np.flatnonzero(prices[i] <= 0)[0])
        raise DataValidationError(source, i + 1, "non_positive_price", f"{PRICE_COLUMNS[j]} is {_fmt(prices[i, j])}")
    i = _first_row(h < lo)
    if i is not None:
        raise DataValidationError(source, i + 1, "high_below_low", f"high {_fmt(h[i])} < low {_fmt(lo[i])}")
    outside = (o < lo) | (o > h) | (c < lo) | (c > h)
    i = _first_row(outside)
    if i is not None:
        name, val = ("open", o[i]) if (o[i] < lo[i] or o[i] > h[i]) else ("close", c[i])
        raise DataValidationError(
            source,
            i + 1,
            "price_outside_range",
            f"{name} {_fmt(val)} is outside [low {_fmt(lo[i])}, high {_fmt(h[i])}]",
        )
    i = _first_row(vol < 0)
    if i is not None:
        raise DataValidationError(source, i + 1, "negative_volume", f"volume is {_fmt(vol[i])}")


# --- sessions ------------------------------------------------------------------------------

_DAY_NS = 86_400 * 1_000_000_000
_WEEK_NS = 7 * _DAY_NS
_SATURDAY_NS = 5 * _DAY_NS  # from Monday 00:00
_WEEKEND_INTRADAY_NS = 4 * _DAY_NS + 20 * 3_600 * 1_000_000_000  # Friday 20:00


def _week_position(ts_ns: np.ndarray) -> np.ndarray:
    """ns since the Monday 00:00 UTC before each time (1970-01-01 was a Thursday)."""
    out: np.ndarray = (ts_ns + 3 * _DAY_NS) % _WEEK_NS
    return out


def session_applies(tf_ns: int) -> bool:
    """Whether a timeframe can have closures: up to 1d and dividing a week evenly."""
    return 0 < tf_ns <= _DAY_NS and _WEEK_NS % tf_ns == 0


@functools.lru_cache(maxsize=32)
def _slot_prefix(tf_ns: int, phase: int, kind: str) -> np.ndarray:
    """(P + 1,) int64 running count over the P = week / tf slots of a week (slot j opens at
    Monday 00:00 + phase + j * tf) of the slots that are closed (``kind="closed"``) or on a
    Saturday (``kind="saturday"``); read-only, cached (the predictor asks on every request)."""
    pos = phase + np.arange(_WEEK_NS // tf_ns, dtype=np.int64) * tf_ns
    if kind == "saturday":
        mask = (pos >= _SATURDAY_NS) & (pos < _SATURDAY_NS + _DAY_NS)
    elif tf_ns == _DAY_NS:
        mask = pos >= _SATURDAY_NS  # daily bars: Saturday and Sunday
    else:
        mask = pos >= _WEEKEND_INTRADAY_NS  # intraday: Friday 20:00 .. Monday 00:00
    prefix = np.concatenate([[0], np.cumsum(mask)]).astype(np.int64)
    prefix.flags.writeable = False
    return prefix


def _count_slots(prefix: np.ndarray, first: np.ndarray, count: np.ndarray) -> np.ndarray:
    """How many of the `count` consecutive slots from week slot `first` on are marked in `prefix`."""
    period = prefix.shape[0] - 1
    full, rest = np.divmod(count, period)
    stop = first + rest
    inside = prefix[np.minimum(stop, period)] - prefix[first]
    wrapped = prefix[np.maximum(stop - period, 0)]
    out: np.ndarray = full * prefix[period] + inside + np.where(stop > period, wrapped, 0)
    return out


def _slot_index(ts_ns: np.ndarray, tf_ns: int, phase: int) -> np.ndarray:
    out: np.ndarray = (_week_position(ts_ns) - phase) // tf_ns
    return out


def _is_closed(ts_ns: np.ndarray, tf_ns: int) -> np.ndarray:
    """(n,) bool: the slots at these times are closed under the "weekdays" session."""
    pos = _week_position(ts_ns)
    out: np.ndarray = pos >= (_SATURDAY_NS if tf_ns == _DAY_NS else _WEEKEND_INTRADAY_NS)
    return out


def detect_session(ts_ns: np.ndarray, tf_ns: int) -> str:
    """The "auto" rule on sorted, unique, on-grid times: "weekdays" or "24/7" (module docstring)."""
    if len(ts_ns) < 2 or not session_applies(tf_ns):
        return "24/7"
    phase = int(_week_position(ts_ns[:1])[0] % tf_ns)
    prefix = _slot_prefix(tf_ns, phase, "saturday")
    slots = (int(ts_ns[-1]) - int(ts_ns[0])) // tf_ns + 1
    saturday_slots = int(_count_slots(prefix, _slot_index(ts_ns[:1], tf_ns, phase), np.array([slots]))[0])
    if saturday_slots < _DAY_NS // tf_ns:
        return "24/7"  # no whole Saturday in the data: nothing to tell, and no weekend to skip
    pos = _week_position(ts_ns)
    on_saturday = int(((pos >= _SATURDAY_NS) & (pos < _SATURDAY_NS + _DAY_NS)).sum())
    return "weekdays" if on_saturday <= AUTO_SATURDAY_SHARE * saturday_slots else "24/7"


def resolve_session(session: str, ts_ns: np.ndarray, tf_ns: int) -> str:
    """ "24/7" or "weekdays": the session that applies to these times; ValueError for an unknown name."""
    if session not in SESSIONS:
        raise ValueError(f"unknown session {session!r} (expected one of {', '.join(SESSIONS)})")
    if session == "auto":
        return detect_session(ts_ns, tf_ns)
    return session if session_applies(tf_ns) else "24/7"


def _trading_missing(ts_ns: np.ndarray, missing: np.ndarray, tf_ns: int) -> np.ndarray:
    """(n - 1,) int64: the missing slots after each candle that fall in trading time under the
    "weekdays" session (daily holidays of at most HOLIDAY_MAX_WEEKDAYS weekdays count as closed)."""
    out = missing.copy()
    gaps = np.flatnonzero(missing > 0)
    if not gaps.size:
        return out
    phase = int(_week_position(ts_ns[:1])[0] % tf_ns)
    prefix = _slot_prefix(tf_ns, phase, "closed")
    period = prefix.shape[0] - 1
    first = (_slot_index(ts_ns[gaps], tf_ns, phase) + 1) % period
    trading = missing[gaps] - _count_slots(prefix, first, missing[gaps])
    if tf_ns == _DAY_NS:
        trading = np.where(trading <= HOLIDAY_MAX_WEEKDAYS, 0, trading)
    out[gaps] = trading
    return out


# --- the policy ----------------------------------------------------------------------------


def validate_candles(
    frame: pd.DataFrame,
    source: str,
    timeframe: str | None,
    max_fill_gap: int = DEFAULT_MAX_FILL_GAP,
    min_rows: int = DEFAULT_MIN_ROWS,
    session: str = DEFAULT_SESSION,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Apply the policy table above to a raw frame; returns the clean frame (with `segment`) and the report.

    `frame` may use any column case, any accepted time column and time encoding; with
    `timeframe=None` the timeframe is the median spacing of the data (see `report.timeframe`).
    `session` is "auto", "24/7" or "weekdays" (module docstring, Sessions).

    >>> clean, report = validate_candles(raw, "ADA_BTC-5m.feather", "5m", max_fill_gap=3)
    >>> report.summary()  # '... 3 gaps filled (3 candles), 2 long gaps -> 3 segments'
    """
    if max_fill_gap < 0:
        raise ValueError("max_fill_gap must be >= 0")
    if session not in SESSIONS:
        raise ValueError(f"unknown session {session!r} (expected one of {', '.join(SESSIONS)})")
    frame = index_to_column(frame)
    report = ValidationReport(source=source, rows_in=len(frame))
    cols = _resolve_columns(frame, source)
    ts = parse_timestamps(frame[cols["timestamp"]], source)
    values = _numeric_ohlcv(frame, cols, source)
    _check_values(values, source)
    ts_ns = ts.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view("int64")
    rows = np.arange(len(frame), dtype="int64")  # original positions, for messages

    # duplicates: identical copies dropped; different values refused
    key = pd.DataFrame({"t": ts_ns})
    dup_ts = key["t"].duplicated(keep="first").to_numpy()
    if dup_ts.any():
        full = pd.DataFrame(values, columns=list(OHLCV_COLUMNS))
        full.insert(0, "t", ts_ns)
        dup_full = full.duplicated(keep="first").to_numpy()
        i = _first_row(dup_ts & ~dup_full)
        if i is not None:
            first = int(np.flatnonzero(ts_ns == ts_ns[i])[0])
            raise DataValidationError(
                source,
                i + 1,
                "duplicate_conflict",
                f"timestamp {ts.iloc[i]} repeats row {first + 1} with different values",
            )
        keep = ~dup_ts
        report.dropped_duplicates = int(dup_ts.sum())
        ts_ns, values, rows = ts_ns[keep], values[keep], rows[keep]

    # unsorted rows: sorted, counted as rows earlier than a row above them
    if len(ts_ns) > 1:
        out_of_order = ts_ns[1:] < np.maximum.accumulate(ts_ns)[:-1]
        if out_of_order.any():
            report.reordered_rows = int(out_of_order.sum())
            order = np.argsort(ts_ns, kind="stable")
            ts_ns, values, rows = ts_ns[order], values[order], rows[order]

    # timeframe: median spacing, then every candle on the grid
    if timeframe is None:
        if len(ts_ns) < 2:
            raise DataValidationError(
                source, None, "too_few_rows", f"{_rows(len(ts_ns))}, need at least {max(min_rows, 2)}"
            )
        timeframe = timedelta_to_timeframe(pd.Timedelta(int(np.median(np.diff(ts_ns))), unit="ns"))
    try:
        tf_ns = int(timeframe_to_timedelta(timeframe).value)
    except ValueError as exc:
        raise DataValidationError(source, None, "timeframe_mismatch", str(exc)) from None
    report.timeframe = timeframe
    if len(ts_ns) >= 2:
        diffs = np.diff(ts_ns)
        median = int(np.median(diffs))
        if median != tf_ns:
            raise DataValidationError(
                source,
                None,
                "timeframe_mismatch",
                f"median spacing of the data is {timedelta_to_timeframe(pd.Timedelta(median, unit='ns'))}, "
                f"timeframe is {timeframe}",
            )
        off = (ts_ns - ts_ns[0]) % tf_ns != 0
        k = _first_row(off)
        if k is not None:
            raise DataValidationError(
                source,
                int(rows[k]) + 1,
                "timeframe_mismatch",
                f"{pd.Timestamp(ts_ns[k], tz='UTC')} is not on the {timeframe} grid of {pd.Timestamp(ts_ns[0], tz='UTC')}",
            )
        missing = diffs // tf_ns - 1
    else:
        missing = np.zeros(0, dtype="int64")

    # sessions: the missing slots in trading time (all of them under 24/7)
    report.session = resolve_session(session, ts_ns, tf_ns)
    closing = report.session != "24/7"
    trading = _trading_missing(ts_ns, missing, tf_ns) if closing else missing

    # gaps: short ones forward-filled, long ones start a new segment (counted in trading slots)
    long_gap = trading > max_fill_gap
    segment = np.concatenate([[0], np.cumsum(long_gap)]).astype("int64")
    report.long_gaps = [
        LongGap(
            pd.Timestamp(ts_ns[i], tz="UTC"),
            pd.Timestamp(ts_ns[i + 1], tz="UTC"),
            int(missing[i]),
            int(missing[i] - trading[i]),
        )
        for i in np.flatnonzero(long_gap)
    ]
    if closing:
        skipped = (missing > trading) & ~long_gap
        report.closures = int(skipped.sum())
        report.closed_candles = int((missing - trading)[skipped].sum())
    gap_rows = np.flatnonzero((trading >= 1) & ~long_gap)  # stretches with slots to fill
    n = len(ts_ns)
    if gap_rows.size:
        # every missing slot of those stretches, then only the ones in trading time
        per_gap = missing[gap_rows]
        src = np.repeat(gap_rows, per_gap)
        step = np.arange(int(per_gap.sum())) - np.repeat(np.cumsum(per_gap) - per_gap, per_gap) + 1
        new_ts = ts_ns[src] + step * tf_ns
        if closing:
            keep = ~_is_closed(new_ts, tf_ns)
            src, new_ts = src[keep], new_ts[keep]
        fill = np.bincount(src, minlength=n).astype("int64")
        total = int(new_ts.shape[0])
        report.filled_gaps = int(gap_rows.size)
        report.filled_candles = total
        rank = np.arange(total) - (np.cumsum(fill) - fill)[src] + 1
        pos_orig = np.arange(n) + np.concatenate([[0], np.cumsum(fill)[:-1]])
        pos_new = pos_orig[src] + rank
        out_ts = np.empty(n + total, dtype="int64")
        out_vals = np.empty((n + total, 5), dtype="float64")
        out_seg = np.empty(n + total, dtype="int64")
        out_ts[pos_orig], out_vals[pos_orig], out_seg[pos_orig] = ts_ns, values, segment
        prev_close = values[src, 3]
        out_ts[pos_new] = new_ts
        out_vals[pos_new, :4] = prev_close[:, None]
        out_vals[pos_new, 4] = 0.0
        out_seg[pos_new] = segment[src]
        ts_ns, values, segment = out_ts, out_vals, out_seg

    report.segments = int(segment[-1]) + 1 if len(segment) else 0
    report.rows_out = len(ts_ns)

    if len(ts_ns) < min_rows:
        raise DataValidationError(source, None, "too_few_rows", f"{_rows(len(ts_ns))}, need at least {min_rows}")
    longest = int(np.bincount(segment).max()) if len(segment) else 0
    if longest < min_rows:
        raise DataValidationError(
            source,
            None,
            "too_few_rows",
            f"longest contiguous segment has {_rows(longest)}, need at least {min_rows} "
            f"({report.segments} segments split by gaps over {max_fill_gap} candles"
            f"{' of trading time, ' + report.session + ' session' if closing else ''})",
        )

    clean = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(ts_ns, utc=True).as_unit("ns"),
            **{name: values[:, j] for j, name in enumerate(OHLCV_COLUMNS)},
            "segment": segment,
        }
    )
    report.log()
    return clean, report


def take_last_days(series: CandleSeries, days: float) -> CandleSeries:
    """The last `days` days of a series; refuses (rule date_range) when the data holds fewer."""
    if days <= 0:
        raise DataValidationError(series.source, None, "date_range", f"asked for {days} days, need a positive number")
    frame = series.frame
    tf = timeframe_to_timedelta(series.timeframe)
    if len(frame) == 0:
        raise DataValidationError(series.source, None, "date_range", f"asked for {days:g} days, the data is empty")
    first, last = frame["timestamp"].iloc[0], frame["timestamp"].iloc[-1]
    held = (last - first + tf) / pd.Timedelta(days=1)
    if days > held + 1e-9:
        raise DataValidationError(
            series.source,
            None,
            "date_range",
            f"asked for {days:g} days, the data holds {held:.1f} days ({first:%Y-%m-%d} .. {last:%Y-%m-%d})",
        )
    cutoff = last + tf - pd.Timedelta(days=days)
    part = frame[frame["timestamp"] >= cutoff].reset_index(drop=True)
    part["segment"] = pd.factorize(part["segment"])[0].astype("int64")
    return replace(series, frame=part)
