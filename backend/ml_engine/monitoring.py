"""Live monitoring: the outcomes of logged predictions and the live quality of each served version.

    summary = resolve_and_roll_up(settings)          # the scheduled job (kind ``monitor``) calls this
    rows = live_metrics_frame(settings, "hybrid_cnn_lstm")   # the dashboard, /metrics, performance_drop

Rules (the same candle source as training, ``ML_DATA_PATH`` or the candles database):

* **Keyed by candle time.** A prediction is joined to the candle its window ended on (``candle_time``,
  the last candle's open time), never to the wall clock: a bot whose clock is off joins correctly.
* **Realised label** of a prediction made on candle ``t``: the training label of row ``t`` (the same
  :func:`~backend.ml_engine.labels.make_labels` with the version's label config: direction of the
  log return ``t -> t + horizon`` against the version's flat band).
* **Realised return** of its signal, after fees: enter at the open of ``t + 1`` (the first price after
  the prediction), exit at the open of ``t + 1 + horizon``; ``buy`` +1, ``sell`` -1, ``hold`` 0;
  minus ``2 * (fee + slippage)`` for a buy or a sell (a round trip; the version's signal policy, else
  the defaults). Each prediction is scored as its own trade.
* **Pending, resolved, expired.** A prediction stays pending until the source has the exit candle of its
  segment; when the source still lacks it ``ML_OUTCOME_EXPIRY_HOURS`` after the exit time, it expires
  (counted, never scored). Candles that arrive late resolve pending predictions normally; a resolved
  outcome is final: candles revised after resolution do not change it.
* **Live metrics per version and UTC day** of ``candle_time``: predictions, resolved, expired, accuracy,
  macro F1, expected calibration error, signal PnL after fees (sum of the trades' returns), hit rate
  (share of buy/sell trades with a positive return), coverage (distinct predicted candles / candles in
  the source that day for the predicted symbols) and latency p50/p95/p99. They live in
  ``ml_live_metrics`` (small: one row per version and day), so the dashboard never scans the log.
* A version deleted from the registry keeps its history: what the outcome join needs (label config,
  policy, test-time metrics) is kept in ``ml_prediction_versions`` when the version first serves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from .prediction_log import (
    EXPIRED,
    PENDING,
    RESOLVED,
    create_engine,
    ensure_schema,
    metadata,
    predictions_table,
    versions_table,
)

if TYPE_CHECKING:  # pragma: no cover
    from .config import Settings

__all__ = [
    "DEFAULT_EXPIRY_HOURS",
    "LIVE_METRICS",
    "MonitoringSnapshot",
    "MonitoringSummary",
    "live_metrics_frame",
    "live_metrics_table",
    "monitoring_snapshot",
    "prune",
    "resolve_and_roll_up",
    "resolve_outcomes",
    "roll_up",
    "shared_engine",
]

logger = logging.getLogger("backend.ml_engine.monitoring")

DEFAULT_EXPIRY_HOURS = 48.0
#: The live metrics of a version and day, in ``ml_live_metrics`` and on the dashboard.
LIVE_METRICS = (
    "accuracy",
    "f1_macro",
    "ece",
    "pnl",
    "hit_rate",
    "coverage",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
)
SIGNAL_POSITION = {"buy": 1.0, "sell": -1.0, "hold": 0.0}

live_metrics_table = sa.Table(
    "ml_live_metrics",
    metadata,
    sa.Column("model_name", sa.String(200), primary_key=True),
    sa.Column("model_version", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date(), primary_key=True),
    sa.Column("n_predictions", sa.Integer(), nullable=False),
    sa.Column("n_resolved", sa.Integer(), nullable=False),
    sa.Column("n_expired", sa.Integer(), nullable=False),
    sa.Column("n_trades", sa.Integer(), nullable=False),
    *(sa.Column(name, sa.Float(), nullable=True) for name in LIVE_METRICS),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


# ------------------------------------------------------------------------------------------ pure parts
def resolve_outcomes(
    predictions: pd.DataFrame,
    candles: pd.DataFrame,
    label_config: Mapping[str, Any],
    *,
    cost: float,
    now: pd.Timestamp,
    expiry_hours: float = DEFAULT_EXPIRY_HOURS,
    bar: pd.Timedelta,
) -> pd.DataFrame:
    """Outcomes of ``predictions`` (one symbol and timeframe; columns ``id``, ``candle_time``, ``signal``,
    ``horizon``) from ``candles`` (``timestamp``, ``open``, ``close``, optional ``segment``; sorted).

    Returns ``id``, ``outcome_status`` (resolved / expired / pending), ``realised_label`` (0 down, 1 flat,
    2 up; NaN unless resolved) and ``realised_return`` (after ``cost`` per side; NaN unless resolved)."""
    from .labels import UNDEFINED, LabelConfig, make_labels

    out = pd.DataFrame({"id": predictions["id"].to_numpy()})
    out["outcome_status"] = PENDING
    out["realised_label"] = np.nan
    out["realised_return"] = np.nan
    if predictions.empty:
        return out
    times = pd.to_datetime(predictions["candle_time"], utc=True)
    horizon = predictions["horizon"].to_numpy(dtype=np.int64)
    if not candles.empty:
        ts = pd.to_datetime(candles["timestamp"], utc=True)
        close = candles["close"].to_numpy(dtype=np.float64)
        open_ = candles["open"].to_numpy(dtype=np.float64)
        seg = candles["segment"].to_numpy() if "segment" in candles.columns else np.zeros(len(candles), np.int64)
        cfg = LabelConfig.from_dict(dict(label_config))
        labels_by_h: dict[int, np.ndarray] = {}
        rows = ts.searchsorted(times)
        found = (rows < len(ts)) & (ts.to_numpy()[np.minimum(rows, len(ts) - 1)] == times.to_numpy())
        for i in np.flatnonzero(found):
            t, h = int(rows[i]), int(horizon[i])
            entry, exit_ = t + 1, t + 1 + h
            if exit_ >= len(ts) or seg[exit_] != seg[t] or seg[entry] != seg[t]:
                continue  # the exit candle (of this run of candles) has not arrived
            if h not in labels_by_h:
                labels_by_h[h] = make_labels(close, _with_horizon(cfg, h), segment=seg)[0]
            label = int(labels_by_h[h][t])
            if label == UNDEFINED:
                continue
            position = SIGNAL_POSITION.get(str(predictions["signal"].iloc[i]), 0.0)
            gross = position * (open_[exit_] / open_[entry] - 1.0)
            out.loc[i, "outcome_status"] = RESOLVED
            out.loc[i, "realised_label"] = label
            out.loc[i, "realised_return"] = gross - 2.0 * cost * abs(position)
    # never resolvable in time: the source still lacks the exit candle long after it should exist
    exit_time = times + bar * (horizon + 1)
    late = (out["outcome_status"] == PENDING).to_numpy() & (
        (now - exit_time) > pd.Timedelta(hours=float(expiry_hours))
    ).to_numpy()
    out.loc[late, "outcome_status"] = EXPIRED
    return out


def _with_horizon(cfg: Any, horizon: int) -> Any:
    from .labels import LabelConfig

    return LabelConfig.from_dict({**cfg.to_dict(), "horizon": int(horizon)})


def day_metrics(
    rows: pd.DataFrame, class_names: Sequence[str], candles_in_day: Mapping[str, int] | None
) -> dict[str, float | int | None]:
    """Live metrics of one version and day from its prediction rows (``probabilities`` JSON, ``signal``,
    ``latency_ms``, ``outcome_status``, ``realised_label``, ``realised_return``, ``symbol``, ``candle_time``)."""
    from . import evaluation
    from .calibration import expected_calibration_error

    resolved = rows[rows["outcome_status"] == RESOLVED]
    out: dict[str, float | int | None] = {
        "n_predictions": len(rows),
        "n_resolved": len(resolved),
        "n_expired": int((rows["outcome_status"] == EXPIRED).sum()),
    }
    lat = rows["latency_ms"].to_numpy(dtype=np.float64)
    for q in (50, 95, 99):
        out[f"latency_p{q}_ms"] = float(np.percentile(lat, q)) if lat.size else None
    # coverage: over the symbols the source has candles for that day (a symbol without candles cannot be covered)
    total = sum(n for n in (candles_in_day or {}).values() if n > 0)
    if total:
        predicted = rows[rows["symbol"].isin([s for s, n in (candles_in_day or {}).items() if n > 0])]
        distinct = predicted[["symbol", "candle_time"]].drop_duplicates().shape[0]
        out["coverage"] = min(1.0, distinct / total)
    else:
        out["coverage"] = None
    trades = resolved[resolved["signal"].isin(["buy", "sell"])]
    out["n_trades"] = len(trades)
    if resolved.empty:
        out.update({"accuracy": None, "f1_macro": None, "ece": None, "pnl": None, "hit_rate": None})
        return out
    y = resolved["realised_label"].to_numpy(dtype=np.int64)
    proba = np.array(
        [[float(json.loads(p).get(c, 0.0)) for c in class_names] for p in resolved["probabilities"]],
        dtype=np.float64,
    )
    cls = evaluation.classification_metrics(y, proba.argmax(axis=1))
    out["accuracy"] = float(cls["accuracy"])
    out["f1_macro"] = float(cls["f1_macro"])
    out["ece"] = float(expected_calibration_error(proba, y))
    returns = trades["realised_return"].to_numpy(dtype=np.float64)
    out["pnl"] = float(returns.sum()) if returns.size else 0.0
    out["hit_rate"] = float((returns > 0).mean()) if returns.size else None
    return out


# ------------------------------------------------------------------------------------------ I/O
@dataclass
class MonitoringSummary:
    """What one run of the outcome job did."""

    resolved: int = 0
    expired: int = 0
    pending: int = 0
    versions_days: int = 0
    pruned: int = 0
    """Prediction rows deleted past ``ML_PREDICTION_RETENTION_DAYS`` (their days stay in ``ml_live_metrics``)."""
    logged_to_mlflow: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def summary(self) -> str:
        return (
            f"{self.resolved} resolved, {self.expired} expired, {self.pending} pending; "
            f"{self.versions_days} version-days rolled up"
        )


CandleLoader = Callable[[str, str, pd.Timestamp], pd.DataFrame]
"""(symbol, timeframe, since) -> candles (timestamp, open, high, low, close, volume[, segment]) from ``since``."""


def candle_loader(settings: Settings) -> CandleLoader:
    """Candles from the engine's source (``ML_DATA_PATH``: files or the candles database)."""
    from .data import load_candles

    def load(symbol: str, timeframe: str, since: pd.Timestamp) -> pd.DataFrame:
        days = max(1.0, (pd.Timestamp.now(tz="UTC") - since).total_seconds() / 86400.0 + 1.0)
        series = load_candles(
            str(settings.data_path),
            symbols=[symbol],
            timeframe=timeframe,
            date_range_days=days,
            table=settings.candles_table,
        )
        frames = [s.frame for s in series if s.symbol == symbol]
        return frames[0] if frames else pd.DataFrame(columns=["timestamp", "open", "close"])

    return load


_ENGINES: dict[str, sa.Engine] = {}
_ENGINES_GUARD = threading.Lock()


def _engine(settings: Settings, *, create: bool = True) -> sa.Engine:
    """An engine on the prediction log's database; ``create``: its tables made when missing (the writers)."""
    from .prediction_log import prediction_log_url

    engine = create_engine(prediction_log_url(settings))
    if create:
        ensure_schema(engine)
    return engine


def shared_engine(settings: Settings) -> sa.Engine:
    """One engine per prediction-log URL for the life of the process (readers that run often: the dashboard,
    ``/metrics``); never disposed by the callers."""
    from .prediction_log import prediction_log_url

    url = prediction_log_url(settings)
    with _ENGINES_GUARD:
        if url not in _ENGINES:
            _ENGINES[url] = create_engine(url)
        return _ENGINES[url]


def _utc_column(frame: pd.DataFrame, column: str) -> None:
    """SQLite hands back naive datetimes, PostgreSQL aware ones: always UTC-aware here."""
    if column in frame.columns and not frame.empty:
        frame[column] = pd.to_datetime(frame[column], utc=True)


def resolve_and_roll_up(
    settings: Settings,
    *,
    loader: CandleLoader | None = None,
    now: pd.Timestamp | None = None,
    expiry_hours: float | None = None,
    engine: sa.Engine | None = None,
    log_to_mlflow: bool = True,
) -> MonitoringSummary:
    """The outcome job: resolve every pending prediction whose horizon has passed, expire the hopeless, then
    recompute the live metrics of every (version, day) that changed and log them to MLflow."""
    from .signal_policy import SignalPolicy

    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    expiry = float(expiry_hours if expiry_hours is not None else settings.outcome_expiry_hours)
    loader = loader or candle_loader(settings)
    own = engine is None
    engine = engine or _engine(settings)
    ensure_schema(engine)
    summary = MonitoringSummary()
    touched: set[tuple[str, str, dt.date]] = set()
    try:
        versions = _versions(engine)
        p = predictions_table.c
        with engine.connect() as conn:
            groups = conn.execute(
                sa.select(p.symbol, p.timeframe, p.model_name, p.model_version, sa.func.min(p.candle_time))
                .where(p.outcome_status == PENDING)
                .group_by(p.symbol, p.timeframe, p.model_name, p.model_version)
            ).all()
        for symbol, timeframe, model_name, version, since in groups:
            info = versions.get((model_name, version))
            if info is None:
                summary.errors.append(f"{model_name} v{version}: no version record; its predictions stay pending")
                continue
            known = {f.name for f in dataclasses.fields(SignalPolicy)}
            policy = SignalPolicy.from_dict({k: v for k, v in (info["policy"] or {}).items() if k in known})
            bar = _bar(timeframe)
            since_ts = pd.Timestamp(since)
            since_ts = since_ts.tz_localize("UTC") if since_ts.tzinfo is None else since_ts.tz_convert("UTC")
            lookback = bar * (int(info["label_config"].get("vol_window", 60)) + 5)
            try:
                candles = loader(symbol, timeframe, since_ts - lookback)
            except Exception as exc:  # noqa: BLE001 - one symbol's source fails: the others go on
                summary.errors.append(f"{symbol} {timeframe}: candles not read: {type(exc).__name__}: {exc}")
                candles = pd.DataFrame(columns=["timestamp", "open", "close"])
            with engine.connect() as conn:
                pending = pd.DataFrame(
                    conn.execute(
                        sa.select(p.id, p.candle_time, p.signal, p.horizon).where(
                            p.outcome_status == PENDING,
                            p.symbol == symbol,
                            p.timeframe == timeframe,
                            p.model_name == model_name,
                            p.model_version == version,
                        )
                    ).all(),
                    columns=["id", "candle_time", "signal", "horizon"],
                )
            if pending.empty:
                continue
            outcomes = resolve_outcomes(
                pending,
                candles,
                info["label_config"],
                cost=float(policy.fee) + float(policy.slippage),
                now=now,
                expiry_hours=expiry,
                bar=bar,
            )
            done = outcomes[outcomes["outcome_status"] != PENDING]
            summary.resolved += int((done["outcome_status"] == RESOLVED).sum())
            summary.expired += int((done["outcome_status"] == EXPIRED).sum())
            summary.pending += int((outcomes["outcome_status"] == PENDING).sum())
            if done.empty:
                continue
            stamp = now.to_pydatetime()
            with engine.begin() as conn:
                conn.execute(
                    predictions_table.update()
                    .where(p.id == sa.bindparam("b_id"), p.outcome_status == PENDING)
                    .values(
                        outcome_status=sa.bindparam("b_status"),
                        realised_label=sa.bindparam("b_label"),
                        realised_return=sa.bindparam("b_return"),
                        resolved_at=stamp,
                    ),
                    [
                        {
                            "b_id": int(r.id),
                            "b_status": r.outcome_status,
                            "b_label": None if pd.isna(r.realised_label) else int(r.realised_label),
                            "b_return": None if pd.isna(r.realised_return) else float(r.realised_return),
                        }
                        for r in done.itertuples()
                    ],
                )
            days = pd.to_datetime(pending.set_index("id").loc[done["id"], "candle_time"], utc=True).dt.date
            touched.update((model_name, version, d) for d in set(days))
        touched |= _days_without_metrics(engine)
        for model_name, version, day in sorted(touched):
            info = versions.get((model_name, version))
            if info is None:
                continue
            roll_up(engine, model_name, version, day, info["class_names"], loader=loader, now=now)
            summary.versions_days += 1
        if log_to_mlflow and touched:
            summary.logged_to_mlflow = _log_to_mlflow(settings, engine, touched, versions, summary)
        summary.pruned = prune(engine, now - pd.Timedelta(days=float(settings.prediction_retention_days)))
    finally:
        if own:
            engine.dispose()
    logger.info("monitoring: %s", summary.summary)
    return summary


def prune(engine: sa.Engine, before: pd.Timestamp) -> int:
    """Delete logged predictions made for candles before ``before`` (after their days were rolled up)."""
    p = predictions_table.c
    with engine.begin() as conn:
        result = conn.execute(predictions_table.delete().where(p.candle_time < before.to_pydatetime()))
    return int(result.rowcount or 0)


def _bar(timeframe: str) -> pd.Timedelta:
    from .data.candles import timeframe_to_timedelta

    return pd.Timedelta(timeframe_to_timedelta(timeframe))


def _versions(engine: sa.Engine) -> dict[tuple[str, str], dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(versions_table)).mappings().all()
    return {
        (r["model_name"], r["model_version"]): {
            "model_id": r["model_id"],
            "class_names": json.loads(r["class_names"]),
            "label_config": json.loads(r["label_config"]),
            "policy": json.loads(r["policy"]),
            "test_metrics": json.loads(r["test_metrics"]),
            "run_id": r["run_id"],
        }
        for r in rows
    }


def _days_without_metrics(engine: sa.Engine) -> set[tuple[str, str, dt.date]]:
    """(version, day) pairs with predictions but no live-metrics row yet (new predictions, nothing resolved)."""
    p, m = predictions_table.c, live_metrics_table.c
    with engine.connect() as conn:
        have = {(r[0], r[1], r[2]) for r in conn.execute(sa.select(m.model_name, m.model_version, m.day))}
        newest = conn.execute(
            sa.select(p.model_name, p.model_version, sa.func.max(p.candle_time)).group_by(p.model_name, p.model_version)
        ).all()
    out = set()
    for name, version, latest in newest:
        day = pd.Timestamp(latest).date()
        if (name, version, day) not in have:
            out.add((name, version, day))
    return out


def roll_up(
    engine: sa.Engine,
    model_name: str,
    version: str,
    day: dt.date,
    class_names: Sequence[str],
    *,
    loader: CandleLoader | None = None,
    now: pd.Timestamp | None = None,
) -> dict[str, Any]:
    """Recompute the ``ml_live_metrics`` row of one version and day (replaced whole, in one transaction)."""
    p = predictions_table.c
    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    cols = [p.symbol, p.timeframe, p.candle_time, p.probabilities, p.signal, p.latency_ms]
    cols += [p.outcome_status, p.realised_label, p.realised_return]
    with engine.connect() as conn:
        rows = pd.DataFrame(
            conn.execute(
                sa.select(*cols).where(
                    p.model_name == model_name,
                    p.model_version == version,
                    p.candle_time >= start,
                    p.candle_time < end,
                )
            ).all(),
            columns=[c.name for c in cols],
        )
    candles_in_day: dict[str, int] | None = None
    if loader is not None and not rows.empty:
        candles_in_day = {}
        for (symbol, timeframe), _ in rows.groupby(["symbol", "timeframe"]):
            try:
                c = loader(str(symbol), str(timeframe), pd.Timestamp(start))
                ts = pd.to_datetime(c["timestamp"], utc=True)
                candles_in_day[str(symbol)] = int(((ts >= pd.Timestamp(start)) & (ts < pd.Timestamp(end))).sum())
            except Exception as exc:  # noqa: BLE001 - coverage unknown, the rest is still right
                logger.info("coverage of %s %s unknown: %s", symbol, timeframe, exc)
    values = day_metrics(rows, class_names, candles_in_day) if not rows.empty else None
    m = live_metrics_table.c
    with engine.begin() as conn:
        conn.execute(
            live_metrics_table.delete().where(m.model_name == model_name, m.model_version == version, m.day == day)
        )
        if values is not None:
            stamp = (now if now is not None else pd.Timestamp.now(tz="UTC")).to_pydatetime()
            conn.execute(
                live_metrics_table.insert().values(
                    model_name=model_name, model_version=version, day=day, updated_at=stamp, **values
                )
            )
    return values or {}


def live_metrics_frame(
    settings: Settings | None = None,
    model_name: str | None = None,
    *,
    engine: sa.Engine | None = None,
    since: dt.date | None = None,
) -> pd.DataFrame:
    """``ml_live_metrics`` rows (all versions, or one model's), oldest day first, with each version's test-time
    ``test_accuracy`` / ``test_f1_macro`` beside them (the reference lines)."""
    own = engine is None
    if engine is None:
        assert settings is not None, "settings or engine"
        engine = _engine(settings, create=False)
    try:
        if not sa.inspect(engine).has_table(live_metrics_table.name):
            return pd.DataFrame()  # nothing was ever rolled up here
        m, v = live_metrics_table.c, versions_table.c
        query = sa.select(live_metrics_table, v.test_metrics).join(
            versions_table, sa.and_(v.model_name == m.model_name, v.model_version == m.model_version), isouter=True
        )
        if model_name is not None:
            query = query.where(m.model_name == model_name)
        if since is not None:
            query = query.where(m.day >= since)
        with engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query.order_by(m.day, m.model_version)).mappings().all())
    finally:
        if own:
            engine.dispose()
    if frame.empty:
        return frame
    _utc_column(frame, "updated_at")
    tests = frame.pop("test_metrics").map(lambda s: json.loads(s) if s else {})
    frame["test_accuracy"] = tests.map(lambda d: d.get("accuracy"))
    frame["test_f1_macro"] = tests.map(lambda d: d.get("f1_macro"))
    return frame


@dataclass
class MonitoringSnapshot:
    """What the dashboard's monitoring page shows: the live metrics per version and day (the rolled-up table, with
    each version's test-time reference), and per version the predictions still pending and the newest one."""

    live: pd.DataFrame
    versions: pd.DataFrame
    """model_name, model_version, model_id, pending, expired, last_candle_time, test_accuracy, test_f1_macro."""


def monitoring_snapshot(
    settings: Settings | None = None, model_name: str | None = None, *, engine: sa.Engine | None = None
) -> MonitoringSnapshot:
    """The dashboard's one query set: index-backed per version, so it stays fast over millions of logged rows
    (``bench/bench_monitoring.py`` times it over 10 million)."""
    own = False
    if engine is None:
        assert settings is not None, "settings or engine"
        engine = shared_engine(settings)
    try:
        live = (
            live_metrics_frame(engine=engine)
            if model_name is None
            else live_metrics_frame(engine=engine, model_name=model_name)
        )
        inspector = sa.inspect(engine)
        if not inspector.has_table(versions_table.name):
            return MonitoringSnapshot(live=live, versions=pd.DataFrame())
        p, v = predictions_table.c, versions_table.c
        query = sa.select(versions_table)
        if model_name is not None:
            query = query.where(v.model_name == model_name)
        rows = []
        with engine.connect() as conn:
            for r in conn.execute(query.order_by(v.model_name, v.model_version)).mappings().all():
                mine = sa.and_(p.model_name == r["model_name"], p.model_version == r["model_version"])
                last = conn.execute(sa.select(sa.func.max(p.candle_time)).where(mine)).scalar()
                counts = {
                    str(status): int(n)
                    for status, n in conn.execute(
                        sa.select(p.outcome_status, sa.func.count())
                        .where(p.outcome_status.in_([PENDING, EXPIRED]), mine)
                        .group_by(p.outcome_status)
                    )
                }
                test = json.loads(r["test_metrics"] or "{}")
                rows.append(
                    {
                        "model_name": r["model_name"],
                        "model_version": r["model_version"],
                        "model_id": r["model_id"],
                        "pending": int(counts.get(PENDING, 0)),
                        "expired": int(counts.get(EXPIRED, 0)),
                        "last_candle_time": last,
                        "test_accuracy": test.get("accuracy"),
                        "test_f1_macro": test.get("f1_macro"),
                    }
                )
        versions = pd.DataFrame(rows)
        _utc_column(versions, "last_candle_time")
        return MonitoringSnapshot(live=live, versions=versions)
    finally:
        if own:
            engine.dispose()


def live_performance(
    settings: Settings,
    model_name: str,
    version: str,
    *,
    days: float,
    engine: sa.Engine | None = None,
    now: pd.Timestamp | None = None,
) -> dict[str, float] | None:
    """Accuracy and macro F1 of a version's resolved predictions over the ``days`` before ``now`` (by candle
    time), weighted by day; None when it has no resolved prediction there."""
    frame = live_metrics_frame(settings, model_name, engine=engine)
    if frame.empty:
        return None
    frame = frame[frame["model_version"] == str(version)]
    start = ((now if now is not None else pd.Timestamp.now(tz="UTC")) - pd.Timedelta(days=float(days))).date()
    frame = frame[(frame["day"] >= start) & (frame["n_resolved"] > 0)]
    if frame.empty:
        return None
    w = frame["n_resolved"].to_numpy(dtype=np.float64)
    return {
        "n_samples": float(w.sum()),
        "accuracy": float(np.average(frame["accuracy"].to_numpy(dtype=np.float64), weights=w)),
        "f1_macro": float(np.average(frame["f1_macro"].to_numpy(dtype=np.float64), weights=w)),
    }


def _log_to_mlflow(
    settings: Settings,
    engine: sa.Engine,
    touched: set[tuple[str, str, dt.date]],
    versions: Mapping[tuple[str, str], Mapping[str, Any]],
    summary: MonitoringSummary,
) -> int:
    """Each changed day's live metrics as ``live_<metric>`` on the version's training run, linked to its logged
    model (``model_id``), step = the day's ordinal: the MLflow model page shows live beside test quality."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from .mlflow_integration.stores import resolve_tracking_uri

    frame = live_metrics_frame(settings, engine=engine)
    if frame.empty:
        return 0
    uri = resolve_tracking_uri(settings.mlflow_tracking_uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    logged = 0
    for (name, version), rows in frame.groupby(["model_name", "model_version"]):
        info = versions.get((str(name), str(version)))
        if not info:
            continue
        run_id = info.get("run_id") or _source_run(client, str(name), str(version), info.get("model_id"))
        if not run_id:
            continue
        batch = []
        for r in rows.itertuples():
            if (name, version, r.day) not in touched:
                continue
            stamp = int(pd.Timestamp(r.day).tz_localize("UTC").timestamp() * 1000)
            for key in ("accuracy", "f1_macro", "ece", "pnl", "hit_rate", "coverage", "latency_p50_ms"):
                value = getattr(r, key)
                if value is None or not math.isfinite(float(value)):
                    continue
                batch.append(
                    Metric(
                        f"live_{key}",
                        float(value),
                        stamp,
                        int(r.day.toordinal()),
                        model_id=info.get("model_id"),
                    )
                )
        if not batch:
            continue
        try:
            client.log_batch(str(run_id), metrics=batch)
            logged += len(batch)
        except Exception as exc:  # noqa: BLE001 - a deleted run or a store blip: the table still has them
            summary.errors.append(f"{name} v{version}: live metrics not logged to MLflow: {type(exc).__name__}")
    return logged


def _source_run(client: Any, name: str, version: str, model_id: str | None) -> str | None:
    """The training run of a version: the registry's version, else its logged model's source run."""
    try:
        run = client.get_model_version(name, version).run_id
        if run:
            return str(run)
    except Exception:  # noqa: BLE001 - deleted from the registry: try the logged model
        logger.debug("version %s v%s not in the registry", name, version)
    if model_id:
        try:
            return str(client.get_logged_model(model_id).source_run_id or "") or None
        except Exception:  # noqa: BLE001 - gone too: the live metrics stay in the table only
            logger.debug("logged model %s not found", model_id)
    return None
