"""The scheduler: cron or interval schedules that submit retraining jobs through the job system.

    python -m backend.services.scheduler --cron "0 3 * * *"                  # nightly retraining
    python -m backend.services.scheduler --interval 360 --check-interval 30   # every 6 h; checks every 30 min

Scheduled work goes through the same path as ``POST /retrain`` (:meth:`JobService.submit_retraining`):
it shows in ``/jobs`` and the dashboard (origin ``schedule``), waits its turn, takes a worker slot
and can be cancelled. Each fire submits one job:

* the schedule (``--cron`` / ``--interval``): a scheduler tick (``checks_first``): drift, then
  performance, retraining for the first that fires, else because it is time (trigger ``scheduled``);
* ``--check-interval``: drift and performance checks only (retraining only when one fires);
* ``--monitor-interval`` (default every 15 minutes): the outcome job of the prediction log (kind
  ``monitor``): logged predictions whose horizon has passed get their realised label and return, the
  live metrics per version and day are rolled up, old rows pruned.

Exactly one scheduler fires in the cluster however many are started: each holds or waits for the
leader lease ``jobs/scheduler`` (a PostgreSQL advisory lock on the coordination database, file lock
on one machine) and only the leader submits; if it dies, a standby takes over within
``--poll`` seconds. Fire times are aligned to the clock (interval schedules count from 2000-01-01
UTC), and each job carries the key ``<schedule>@<fire time>`` that the jobs table keeps unique, so
even two leaders for a moment (a lease lost and taken over) submit a fire once.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from backend.logging_setup import setup_logging
from backend.ml_engine.config import DEFAULT_MODEL_NAME
from backend.ml_engine.errors import one_line

from .errors import ConflictError, ServiceError
from .jobs import JobService
from .schemas import RetrainParams
from .settings import ServiceSettings

if TYPE_CHECKING:  # pragma: no cover
    from backend.ml_engine.locks import Lease, Locks

__all__ = ["Schedule", "Scheduler", "build_schedules", "main"]

logger = logging.getLogger("backend.services.scheduler")

LEADER_LOCK = ("jobs", "scheduler")
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _trigger(cron: str | None, interval_minutes: float | None) -> Any:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if cron is not None:
        try:
            return CronTrigger.from_crontab(cron, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"invalid cron expression {cron!r}: {exc}") from None
    if interval_minutes is None or interval_minutes <= 0:
        raise ValueError("a schedule needs --cron EXPRESSION or --interval MINUTES > 0")
    return IntervalTrigger(minutes=float(interval_minutes), start_date=_EPOCH, timezone="UTC")


@dataclass
class Schedule:
    """One schedule: a trigger (APScheduler's fire-time arithmetic) and the job it submits."""

    name: str
    trigger: Any
    params: RetrainParams | None
    """The retraining a fire submits; None: the outcome job (kind ``monitor``)."""
    next_fire: datetime | None = field(default=None)

    def first_fire(self, now: datetime) -> datetime | None:
        return self.trigger.get_next_fire_time(None, now)  # type: ignore[no-any-return]

    def after(self, fire: datetime, now: datetime) -> datetime | None:
        """The next fire after ``fire`` that is still ahead of ``now`` (missed fires coalesce)."""
        nxt = self.trigger.get_next_fire_time(fire, now)
        while nxt is not None and nxt <= now:
            nxt = self.trigger.get_next_fire_time(nxt, now)
        return nxt  # type: ignore[no-any-return]


def build_schedules(
    params: RetrainParams,
    *,
    cron: str | None = None,
    interval_minutes: float | None = None,
    check_interval_minutes: float | None = None,
    monitor_interval_minutes: float | None = None,
) -> list[Schedule]:
    """The schedules of one model: the retraining schedule, optionally check-only ticks, and the outcome job of
    the prediction log (live monitoring) every ``monitor_interval_minutes``."""
    model = params.model_name
    schedules = [
        Schedule(
            f"retrain:{model}",
            _trigger(cron, interval_minutes),
            params.model_copy(update={"trigger": "scheduled", "checks_first": True, "force": False}),
        )
    ]
    if check_interval_minutes:
        schedules.append(
            Schedule(
                f"checks:{model}",
                _trigger(None, check_interval_minutes),
                params.model_copy(update={"trigger": "drift", "checks_first": True, "force": False}),
            )
        )
    if monitor_interval_minutes:
        schedules.append(Schedule("monitor", _trigger(None, monitor_interval_minutes), None))
    return schedules


class Scheduler:
    """Submits the schedules' jobs while it holds the leader lease; stands by otherwise."""

    def __init__(
        self,
        settings: ServiceSettings,
        schedules: Sequence[Schedule],
        *,
        jobs: JobService | None = None,
        locks: Locks | None = None,
        poll_s: float = 1.0,
    ) -> None:
        from backend.ml_engine.locks import Locks

        self.settings = settings
        self.schedules = list(schedules)
        self.jobs = jobs if jobs is not None else JobService(settings)
        self.locks = locks if locks is not None else Locks.from_settings(settings)
        self.poll_s = poll_s
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
        self.lease: Lease | None = None
        self.submitted: list[str] = []

    @property
    def leader(self) -> bool:
        return self.lease is not None

    def _lead(self) -> bool:
        """Take, keep or lose the leader lease; returns whether this scheduler leads now."""
        if self.lease is not None:
            try:
                self.lease.check()
                return True
            except Exception as exc:  # noqa: BLE001 - LockLost, database gone: stand by and try again
                logger.warning("scheduler %s: leadership lost (%s); standing by", self.identity, one_line(exc))
                self._release()
        try:
            self.lease = self.locks.try_lease(*LEADER_LOCK)
        except Exception as exc:  # noqa: BLE001 - the lock database unreachable: try again next poll
            logger.warning("scheduler %s: leader lock not available: %s", self.identity, one_line(exc))
            self.lease = None
        if self.lease is not None:
            logger.info("scheduler %s leads: %s", self.identity, ", ".join(self._describe()))
        return self.lease is not None

    def _release(self) -> None:
        if self.lease is not None:
            try:
                self.lease.release()
            except Exception:  # the connection may be gone already
                logger.debug("lease release failed", exc_info=True)
            self.lease = None

    def _describe(self) -> list[str]:
        return [f"{s.name} next {s.next_fire:%Y-%m-%d %H:%M:%S} UTC" for s in self.schedules if s.next_fire]

    def step(self, now: datetime | None = None) -> list[str]:
        """One pass: lead or stand by, submit every due fire. Returns the job ids submitted."""
        now = now or datetime.now(UTC)
        for schedule in self.schedules:
            if schedule.next_fire is None:
                schedule.next_fire = schedule.first_fire(now)
        leading = self._lead()
        submitted: list[str] = []
        for schedule in self.schedules:
            fire = schedule.next_fire
            if fire is None or fire > now:
                continue
            if leading:
                job_id = self._submit(schedule, fire)
                if job_id is not None:
                    submitted.append(job_id)
            schedule.next_fire = schedule.after(fire, now)
        self.submitted.extend(submitted)
        return submitted

    def _submit(self, schedule: Schedule, fire: datetime) -> str | None:
        key = f"{schedule.name}@{fire.isoformat()}"
        try:
            if schedule.params is None:
                job = self.jobs.submit_monitoring(origin="schedule", dedupe_key=key)
            else:
                job = self.jobs.submit_retraining(schedule.params, origin="schedule", dedupe_key=key)
        except ConflictError:
            logger.info("%s: already submitted (another scheduler)", key)
            return None
        except ServiceError as exc:  # queue or jobs database down: this fire is lost, said loudly
            logger.error("%s: not submitted: %s", key, exc)
            return None
        logger.info("%s: job %s queued by scheduler %s", key, job.id, self.identity)
        try:
            if not any(w.alive for w in self.jobs.workers()):
                logger.warning(
                    "no live worker: job %s waits until one starts (python -m backend.services.worker)", job.id
                )
        except ServiceError:
            pass
        return job.id

    def run(self, stop: threading.Event) -> None:
        """Step until ``stop`` is set, sleeping ``poll_s`` between passes (or until the next fire)."""
        logger.info("scheduler %s started: %d schedule(s)", self.identity, len(self.schedules))
        try:
            while not stop.is_set():
                self.step()
                now = datetime.now(UTC)
                fires = [s.next_fire for s in self.schedules if s.next_fire is not None]
                wait = self.poll_s
                if fires and self.leader:
                    wait = max(0.05, min(wait, (min(fires) - now).total_seconds()))
                stop.wait(wait)
        finally:
            self._release()
            self.jobs.close()
            logger.info("scheduler %s stopped", self.identity)


def _parser() -> argparse.ArgumentParser:
    from backend.ml_engine.cli_args import positive_float, positive_int

    p = argparse.ArgumentParser(
        prog="python -m backend.services.scheduler",
        description="Submit scheduled retraining jobs through the job system (workers run them). Start one "
        "or several: exactly one leads and fires.",
    )
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", metavar="EXPR", help='crontab expression in UTC, e.g. "0 3 * * *"')
    when.add_argument("--interval", type=positive_float, metavar="MINUTES", help="retraining every N minutes")
    p.add_argument(
        "--check-interval", type=positive_float, metavar="MINUTES", help="drift / performance checks every N minutes"
    )
    p.add_argument(
        "--monitor-interval",
        type=float,
        default=15.0,
        metavar="MINUTES",
        help="the outcome job of the prediction log (live monitoring) every N minutes; 0: never (default 15)",
    )
    p.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="registered model (default: hybrid_cnn_lstm)")
    p.add_argument(
        "--data-source",
        default="default",
        help="data source name the workers resolve (default: their ML_DATA_PATH / candles database)",
    )
    p.add_argument("--symbol", action="append", help="symbol, e.g. ETH/BTC; repeat for several")
    p.add_argument("--timeframe", help="candle timeframe, e.g. 5m")
    p.add_argument("--train-days", type=positive_float, help="train on the last N days (default 30)")
    p.add_argument("--recent-days", type=positive_float, help="recent window of the checks in days (default 3)")
    p.add_argument("--folds", type=positive_int, help="walk-forward folds (default 5)")
    p.add_argument("--epochs", type=positive_int, help="epochs per training (default: ML_EPOCHS)")
    p.add_argument("--batch-size", type=positive_int, help="batch size (default: ML_BATCH_SIZE)")
    p.add_argument("--lr", type=positive_float, help="learning rate (default: ML_LEARNING_RATE)")
    p.add_argument("--min-accuracy", type=float, help="promotion gate: minimal walk-forward accuracy")
    p.add_argument("--priority", type=int, default=0, help="priority of the submitted jobs, -10..10 (default 0)")
    p.add_argument("--poll", type=positive_float, default=1.0, help="seconds between leadership checks (default 1)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def params_from_args(args: argparse.Namespace) -> RetrainParams:
    values: dict[str, Any] = {
        "model_name": args.model_name,
        "data_source": args.data_source,
        "symbols": args.symbol,
        "timeframe": args.timeframe,
        "train_days": args.train_days,
        "recent_days": args.recent_days,
        "n_folds": args.folds,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "min_accuracy_for_promotion": args.min_accuracy,
        "priority": args.priority,
        "reason": "schedule",
    }
    return RetrainParams.model_validate({k: v for k, v in values.items() if v is not None})


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    setup_logging("DEBUG" if args.verbose else None, loggers=("backend", "apscheduler"))
    try:
        settings = ServiceSettings()
        if not args.verbose:
            setup_logging(settings.log_level, loggers=("backend",), fmt=settings.log_format)
        schedules = build_schedules(
            params_from_args(args),
            cron=args.cron,
            interval_minutes=args.interval,
            check_interval_minutes=args.check_interval,
            monitor_interval_minutes=args.monitor_interval if args.monitor_interval > 0 else None,
        )
    except Exception as exc:  # noqa: BLE001 - bad settings or arguments: one line, exit 2
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        logger.info("received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    Scheduler(settings, schedules, poll_s=args.poll).run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
