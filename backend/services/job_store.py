"""Job records: one small table (``ml_jobs``) and the workers' heartbeats (``ml_job_workers``),
through SQLAlchemy, in the database at ``ML_JOBS_DATABASE_URL`` (SQLite under ``./mlruns`` by
default, PostgreSQL in production and tests).

The queue (huey) only carries job ids; everything a person asks about a job lives here, so it
survives a restart of the API or the worker:

* ``queued`` -> ``running`` (:meth:`JobStore.claim_next`: atomically, the head of the line, i.e.
  the queued job with the highest priority, then the oldest; within the optional cluster cap
  ``ML_MAX_CONCURRENT_TRAININGS``) -> ``finished`` | ``failed`` | ``cancelled``; ``queued`` ->
  ``cancelled`` directly;
* a running job writes ``heartbeat_at`` every few seconds; :meth:`JobStore.reap` fails running
  jobs whose heartbeat is older than the timeout, or whose worker process on this machine is gone
  (error ``worker died: ...``). The worker reaps when it starts, the API whenever it reads jobs.

The schema is managed by Alembic (:mod:`.migrations`): opening the store upgrades it to this
code's head, and refuses a database a newer release migrated.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backend.ml_engine.mlflow_integration.stores import resolve_tracking_uri

from . import migrations
from .redaction import mask_uri

__all__ = [
    "ACTIVE_STATUSES",
    "ClaimResult",
    "DuplicateJob",
    "JobRecord",
    "JobStore",
    "TERMINAL_STATUSES",
    "WorkerRecord",
    "host_identity",
    "pid_alive",
]

from backend.ml_engine.process import host_identity, pid_alive  # re-exported: part of __all__

logger = logging.getLogger(__name__)

QUEUED, RUNNING, FINISHED, FAILED, CANCELLED = "queued", "running", "finished", "failed", "cancelled"
ACTIVE_STATUSES = (QUEUED, RUNNING)
TERMINAL_STATUSES = (FINISHED, FAILED, CANCELLED)
#: Job kinds the cluster cap (``ML_MAX_CONCURRENT_TRAININGS``) counts (a leaderboard trains every family).
TRAINING_KINDS = ("train", "retrain", "leaderboard", "tune")
ClaimResult = Literal["claimed", "busy", "gone"]


class DuplicateJob(RuntimeError):
    """A job with this ``dedupe_key`` was already submitted (a schedule fired twice)."""


#: Advisory-lock key (namespace, id) serialising claims on PostgreSQL.
_PG_CLAIM_LOCK = (0x4D4C4A42, 1)  # "MLJB"

metadata = sa.MetaData()

jobs_table = sa.Table(
    "ml_jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("model_name", sa.String(256)),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("epoch", sa.Integer, nullable=False, default=0),
    sa.Column("epochs", sa.Integer),
    sa.Column("metrics", sa.JSON),
    sa.Column("result", sa.JSON),
    sa.Column("run_id", sa.String(64)),
    sa.Column("version", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("queue_task_id", sa.String(64)),
    sa.Column("worker_host", sa.String(255)),
    sa.Column("worker_pid", sa.Integer),
    #: hostname plus the pid namespace: pids are only compared inside the same one.
    sa.Column("host_id", sa.String(300)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
    # revision 0002 (the execution layer)
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("origin", sa.String(16), nullable=False, server_default="api"),
    sa.Column("dedupe_key", sa.String(200)),
    sa.Column("job_pid", sa.Integer),
    sa.Column("threads", sa.Integer),
)

workers_table = sa.Table(
    "ml_job_workers",
    metadata,
    sa.Column("id", sa.String(300), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host_id", sa.String(300), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("stopped_at", sa.DateTime(timezone=True)),
    # revision 0002
    sa.Column("slots", sa.Integer, nullable=False, server_default="1"),
    sa.Column("threads_per_job", sa.Integer),
    sa.Column("queue", sa.String(300)),
)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class JobRecord:
    """One row of ``ml_jobs``."""

    id: str
    kind: str
    status: str
    model_name: str | None
    params: dict[str, Any]
    epoch: int
    epochs: int | None
    metrics: dict[str, Any]
    result: dict[str, Any]
    run_id: str | None
    version: int | None
    error: str | None
    cancel_requested: bool
    queue_task_id: str | None
    worker_host: str | None
    worker_pid: int | None
    host_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    priority: int = 0
    origin: str = "api"
    dedupe_key: str | None = None
    job_pid: int | None = None
    threads: int | None = None

    @classmethod
    def from_row(cls, row: Any) -> JobRecord:
        m = row._mapping
        return cls(
            id=m["id"],
            kind=m["kind"],
            status=m["status"],
            model_name=m["model_name"],
            params=dict(m["params"] or {}),
            epoch=int(m["epoch"] or 0),
            epochs=m["epochs"],
            metrics=dict(m["metrics"] or {}),
            result=dict(m["result"] or {}),
            run_id=m["run_id"],
            version=m["version"],
            error=m["error"],
            cancel_requested=bool(m["cancel_requested"]),
            queue_task_id=m["queue_task_id"],
            worker_host=m["worker_host"],
            worker_pid=m["worker_pid"],
            host_id=m["host_id"],
            created_at=_aware(m["created_at"]),
            started_at=_aware(m["started_at"]),
            finished_at=_aware(m["finished_at"]),
            heartbeat_at=_aware(m["heartbeat_at"]),
            priority=int(m["priority"] or 0),
            origin=m["origin"] or "api",
            dedupe_key=m["dedupe_key"],
            job_pid=m["job_pid"],
            threads=m["threads"],
        )

    @property
    def worker_id(self) -> str | None:
        return f"{self.worker_host}:{self.worker_pid}" if self.worker_host else None


@dataclass(frozen=True)
class WorkerRecord:
    id: str
    host: str
    pid: int
    host_id: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None = None
    slots: int = 1
    threads_per_job: int | None = None
    queue: str | None = None


class JobStore:
    """The jobs table over one SQLAlchemy engine. Thread-safe (the engine pools connections)."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.display_url = mask_uri(url)
        resolved = resolve_tracking_uri(url)
        self.kind = resolved.split(":", 1)[0].split("+", 1)[0].lower()
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if self.kind == "sqlite":
            database = sa.engine.make_url(resolved).database
            if database and database != ":memory:":
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs = {"connect_args": {"timeout": 30, "check_same_thread": False}}
        elif self.kind == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": 5}
            kwargs["pool_size"] = 5
        self.engine: Engine = sa.create_engine(resolved, **kwargs)
        if self.kind == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            self.revision = migrations.upgrade(self.engine) if migrate else migrations.check(self.engine)
        except BaseException:
            self.engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"JobStore({self.display_url!r})"

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """Raise unless the database answers."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    # -- create and read ----------------------------------------------------------------------

    def create(
        self,
        kind: str,
        params: dict[str, Any],
        model_name: str | None,
        epochs: int | None,
        *,
        priority: int = 0,
        origin: str = "api",
        dedupe_key: str | None = None,
    ) -> JobRecord:
        """Record a queued job. With ``dedupe_key`` (a scheduled submission: schedule and fire time)
        a second job with the same key is refused with :class:`DuplicateJob`."""
        job_id = uuid.uuid4().hex
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    jobs_table.insert().values(
                        id=job_id,
                        kind=kind,
                        status=QUEUED,
                        model_name=model_name,
                        params=params,
                        epoch=0,
                        epochs=epochs,
                        metrics={},
                        result={},
                        cancel_requested=False,
                        created_at=_now(),
                        priority=int(priority),
                        origin=origin,
                        dedupe_key=dedupe_key,
                    )
                )
        except sa.exc.IntegrityError:
            if dedupe_key is None:
                raise
            raise DuplicateJob(f"a job with key {dedupe_key!r} was already submitted") from None
        record = self.get(job_id)
        assert record is not None
        return record

    def get(self, job_id: str) -> JobRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).first()
        return JobRecord.from_row(row) if row is not None else None

    def list(self, status: str | None = None, kind: str | None = None, limit: int = 50) -> list[JobRecord]:
        query = sa.select(jobs_table).order_by(jobs_table.c.created_at.desc(), jobs_table.c.id).limit(limit)
        if status is not None:
            query = query.where(jobs_table.c.status == status)
        if kind is not None:
            query = query.where(jobs_table.c.kind == kind)
        with self.engine.connect() as conn:
            return [JobRecord.from_row(r) for r in conn.execute(query)]

    def counts(self) -> dict[str, int]:
        query = sa.select(jobs_table.c.status, sa.func.count()).group_by(jobs_table.c.status)
        with self.engine.connect() as conn:
            return {status: int(n) for status, n in conn.execute(query)}

    def set_queue_task(self, job_id: str, task_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(jobs_table.update().where(jobs_table.c.id == job_id).values(queue_task_id=task_id))

    # -- lifecycle ----------------------------------------------------------------------------

    def claim_next(
        self, *, host: str, pid: int, host_id: str, limit: int | None = None
    ) -> tuple[ClaimResult, JobRecord | None]:
        """Atomically move the head of the line to running: the queued job with the highest
        priority, then the earliest submitted, whatever queue message woke the worker up.

        ``limit``: the optional cluster cap on running training jobs. Returns ``("claimed", job)``,
        ``("busy", None)`` when queued jobs wait for the cap, ``("gone", None)`` when nothing is
        queued (the message's job was cancelled or already run by another worker).
        """
        line = jobs_table.alias("line")
        head = (
            sa.select(line.c.id)
            .where(line.c.status == QUEUED)
            .order_by(line.c.priority.desc(), line.c.created_at, line.c.id)
            .limit(1)
            .scalar_subquery()
        )
        conditions = [jobs_table.c.id == head, jobs_table.c.status == QUEUED]
        running = jobs_table.alias("running")
        slots_taken = (
            sa.select(sa.func.count())
            .select_from(running)
            .where(running.c.status == RUNNING, running.c.kind.in_(TRAINING_KINDS))
            .scalar_subquery()
        )
        if limit is not None:
            conditions.append(slots_taken < int(limit))
        with self.engine.begin() as conn:
            if self.kind == "postgresql":
                # READ COMMITTED alone would let two claims take the same head or count the same free slot.
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _PG_CLAIM_LOCK[0], "b": _PG_CLAIM_LOCK[1]}
                )
            now = _now()  # taken under the lock: claims' started_at follow their order
            # On SQLite one UPDATE statement holds the write lock from its start: atomic as it is.
            claimed = conn.execute(
                jobs_table.update()
                .where(*conditions)
                .values(
                    status=RUNNING,
                    started_at=now,
                    heartbeat_at=now,
                    worker_host=host,
                    worker_pid=pid,
                    host_id=host_id,
                    error=None,
                )
                .returning(jobs_table.c.id)
            ).scalar()
            if claimed is None:
                waiting = conn.execute(
                    sa.select(sa.func.count()).select_from(jobs_table).where(jobs_table.c.status == QUEUED)
                ).scalar()
        if claimed is None:
            return ("busy" if waiting else "gone"), None
        return "claimed", self.get(str(claimed))

    def set_process(self, job_id: str, *, job_pid: int, threads: int) -> None:
        """Record the pid of the job's own process and the threads it may use."""
        with self.engine.begin() as conn:
            conn.execute(jobs_table.update().where(jobs_table.c.id == job_id).values(job_pid=job_pid, threads=threads))

    def _owned(self, job_id: str, pid: int, host_id: str) -> Any:
        return sa.and_(jobs_table.c.id == job_id, jobs_table.c.worker_pid == pid, jobs_table.c.host_id == host_id)

    def heartbeat(self, job_id: str, *, pid: int, host_id: str) -> bool:
        """Write the heartbeat of a running job; returns whether a cancellation was requested."""
        with self.engine.begin() as conn:
            conn.execute(
                jobs_table.update()
                .where(self._owned(job_id, pid, host_id), jobs_table.c.status == RUNNING)
                .values(heartbeat_at=_now())
            )
            return bool(
                conn.execute(sa.select(jobs_table.c.cancel_requested).where(jobs_table.c.id == job_id)).scalar()
            )

    def progress(self, job_id: str, epoch: int, metrics: dict[str, Any], *, pid: int, host_id: str) -> bool:
        """Record the epoch done and its metrics; returns whether a cancellation was requested."""
        with self.engine.begin() as conn:
            conn.execute(
                jobs_table.update()
                .where(self._owned(job_id, pid, host_id), jobs_table.c.status == RUNNING)
                .values(epoch=epoch, metrics=metrics, heartbeat_at=_now())
            )
            return bool(
                conn.execute(sa.select(jobs_table.c.cancel_requested).where(jobs_table.c.id == job_id)).scalar()
            )

    def stage(self, job_id: str, message: str, fraction: float, *, pid: int, host_id: str) -> bool:
        """Record what a job without epochs (a comparison) does now and how much of it is done, as
        ``result = {"stage", "fraction"}`` until :meth:`finish` writes the outcome; returns whether a
        cancellation was requested."""
        fraction = min(1.0, max(0.0, float(fraction))) if fraction == fraction else 0.0  # NaN -> 0
        with self.engine.begin() as conn:
            conn.execute(
                jobs_table.update()
                .where(self._owned(job_id, pid, host_id), jobs_table.c.status == RUNNING)
                .values(result={"stage": str(message)[:500], "fraction": fraction}, heartbeat_at=_now())
            )
            return bool(
                conn.execute(sa.select(jobs_table.c.cancel_requested).where(jobs_table.c.id == job_id)).scalar()
            )

    def set_run(self, job_id: str, run_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(jobs_table.update().where(jobs_table.c.id == job_id).values(run_id=run_id))

    def finish(
        self,
        job_id: str,
        status: str,
        *,
        pid: int,
        host_id: str,
        run_id: str | None = None,
        version: int | None = None,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """End a job this worker claimed (even if a reaper gave up on it meanwhile: the worker knows
        best). Returns False if the job belongs to another worker."""
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"status must be one of {TERMINAL_STATUSES}")
        values: dict[str, Any] = {"status": status, "finished_at": _now(), "error": error}
        if run_id is not None:
            values["run_id"] = run_id
        if version is not None:
            values["version"] = int(version)
        if result is not None:
            values["result"] = result
        with self.engine.begin() as conn:
            rows = conn.execute(jobs_table.update().where(self._owned(job_id, pid, host_id)).values(**values)).rowcount
        return rows == 1

    def fail_queued(self, job_id: str, error: str) -> None:
        """Fail a job that never reached a worker (the queue refused it)."""
        with self.engine.begin() as conn:
            conn.execute(
                jobs_table.update()
                .where(jobs_table.c.id == job_id, jobs_table.c.status == QUEUED)
                .values(status=FAILED, error=error, finished_at=_now())
            )

    def request_cancel(self, job_id: str) -> JobRecord | None:
        """Cancel a queued job at once; ask a running one to stop (its worker ends it cancelled).

        Returns the job after the change (unchanged when it had already ended), None if unknown.
        """
        with self.engine.begin() as conn:
            conn.execute(
                jobs_table.update()
                .where(jobs_table.c.id == job_id, jobs_table.c.status == QUEUED)
                .values(status=CANCELLED, finished_at=_now(), error="cancelled before it started")
            )
            conn.execute(
                jobs_table.update()
                .where(jobs_table.c.id == job_id, jobs_table.c.status == RUNNING)
                .values(cancel_requested=True)
            )
        return self.get(job_id)

    def reap(self, timeout_s: float, host_id: str | None = None) -> list[str]:
        """Fail running jobs whose heartbeat is older than ``timeout_s``, and (when ``host_id`` is
        given) those whose worker process on this machine no longer exists. Returns their ids."""
        now = _now()
        cutoff = now - timedelta(seconds=timeout_s)
        reaped: list[str] = []
        with self.engine.begin() as conn:
            stale = (
                conn.execute(
                    sa.select(jobs_table.c.id).where(jobs_table.c.status == RUNNING, jobs_table.c.heartbeat_at < cutoff)
                )
                .scalars()
                .all()
            )
            for job_id in stale:
                rows = conn.execute(
                    jobs_table.update()
                    .where(
                        jobs_table.c.id == job_id, jobs_table.c.status == RUNNING, jobs_table.c.heartbeat_at < cutoff
                    )
                    .values(
                        status=FAILED, finished_at=now, error=f"worker died: no heartbeat for more than {timeout_s:g} s"
                    )
                ).rowcount
                if rows:
                    reaped.append(job_id)
            if host_id is not None:
                local = conn.execute(
                    sa.select(jobs_table.c.id, jobs_table.c.worker_pid).where(
                        jobs_table.c.status == RUNNING, jobs_table.c.host_id == host_id
                    )
                ).all()
                for job_id, pid in local:
                    if pid is not None and not pid_alive(int(pid)):
                        rows = conn.execute(
                            jobs_table.update()
                            .where(
                                jobs_table.c.id == job_id,
                                jobs_table.c.status == RUNNING,
                                jobs_table.c.worker_pid == pid,
                            )
                            .values(status=FAILED, finished_at=now, error=f"worker died: process {pid} is gone")
                        ).rowcount
                        if rows:
                            reaped.append(job_id)
        for job_id in reaped:
            logger.warning("job %s failed: its worker died", job_id)
        return reaped

    # -- workers ------------------------------------------------------------------------------

    def register_worker(
        self,
        worker_id: str,
        *,
        host: str,
        pid: int,
        host_id: str,
        slots: int = 1,
        threads_per_job: int | None = None,
        queue: str | None = None,
    ) -> None:
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(workers_table.delete().where(workers_table.c.id == worker_id))
            conn.execute(
                workers_table.insert().values(
                    id=worker_id,
                    host=host,
                    pid=pid,
                    host_id=host_id,
                    started_at=now,
                    heartbeat_at=now,
                    slots=slots,
                    threads_per_job=threads_per_job,
                    queue=queue,
                )
            )

    def worker_heartbeat(self, worker_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(workers_table.update().where(workers_table.c.id == worker_id).values(heartbeat_at=_now()))

    def unregister_worker(self, worker_id: str) -> None:
        with contextlib.suppress(sa.exc.SQLAlchemyError), self.engine.begin() as conn:
            conn.execute(workers_table.update().where(workers_table.c.id == worker_id).values(stopped_at=_now()))

    def workers(self, since_s: float = 3600.0) -> list[WorkerRecord]:
        """Workers that were alive within the last ``since_s`` seconds and have not stopped."""
        cutoff = _now() - timedelta(seconds=since_s)
        query = (
            sa.select(workers_table)
            .where(workers_table.c.stopped_at.is_(None), workers_table.c.heartbeat_at >= cutoff)
            .order_by(workers_table.c.started_at)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            WorkerRecord(
                id=r.id,
                host=r.host,
                pid=r.pid,
                host_id=r.host_id,
                started_at=_aware(r.started_at),
                heartbeat_at=_aware(r.heartbeat_at),
                stopped_at=_aware(r.stopped_at),
                slots=int(r.slots or 1),
                threads_per_job=r.threads_per_job,
                queue=r.queue,
            )
            for r in rows
        ]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
