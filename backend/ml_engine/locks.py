"""One lock module for promotion, retraining and job claiming.

Where the locks live
====================

:func:`coordination_url` picks the *coordination database*, whatever the MLflow tracking URI is
(``sqlite:///``, ``postgresql://`` or ``http://``):

1. the jobs database (``ML_JOBS_DATABASE_URL``) when it is PostgreSQL, else
2. the tracking store when it is PostgreSQL, else
3. none: locks are ``flock`` files, which are correct only when every process runs on one machine.

With a coordination database every lock is a PostgreSQL advisory lock keyed
``(<namespace int4>, hashtext(<name>))``. The namespaces keep the values in use before this module
existed, so old and new code exclude each other: ``"registry"`` = ``0x4D4C5247`` ("MLRG"),
``"retraining"`` = ``0x4D4C5254`` ("MLRT"), ``"jobs"`` = ``0x4D4C4A42`` ("MLJB").

Two shapes of lock
==================

* :meth:`Locks.hold` -- a short critical section (a promotion's read-decide-write). Blocks up to
  ``timeout_s`` and raises :class:`LockTimeout` after that. PostgreSQL:
  ``pg_advisory_xact_lock`` inside a transaction on its own connection, bounded by ``lock_timeout``;
  the transaction's end releases it, and so does a crashed process's closed connection. File:
  ``flock`` on ``<lock_dir>/<namespace>-<name>.lock``, polled until the deadline.
* :meth:`Locks.try_lease` -- a lock held for long work (a retraining), never waited for: a
  :class:`Lease`, or None when someone else holds it (:meth:`Locks.holder` says who, when known).

Leases are re-checked
=====================

A PostgreSQL lease is a session-level ``pg_try_advisory_lock`` on a dedicated connection. If that
connection dies (server restart, network cut, ``pg_terminate_backend``) the server releases the
lock, and another process may take it. So a lease is re-checked:

* a daemon watcher thread asks every ``check_interval_s`` whether the lock is still granted to
  the lease connection's backend (``pg_locks`` for ``pg_backend_pid()``);
* :meth:`Lease.check` does the same synchronously; call it right before any write that must not
  happen without the lock, so that work done after a loss never reaches the outside world.

When the lease connection is found gone, the lease makes **one** re-acquisition attempt on a new
connection (``pg_try_advisory_lock``). It waits a little while the lock is still held by its own
old, dying backend (the server releases a terminated backend's locks a moment after the client
sees the connection end), never while anyone else holds it. Success: the lease goes on (a
warning is logged). Failure: the lease is *lost* for good (:attr:`Lease.lost`, ``on_lost``
called once, every later :meth:`Lease.check` raises :class:`LockLost`); it never re-acquires
later, so two holders never both pass :meth:`Lease.check`.

A file lease is an ``flock`` held by an open file description; it is never lost while the
process lives, unless the lock file is removed or replaced (then :meth:`Lease.check` raises,
because a new file could be locked by someone else).

All connections use SQLAlchemy's ``NullPool``: nothing lingers in a pool (a dropped test database
must not stay busy). Passwords are never logged (:func:`~.stores.mask_uri`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from backend.ml_engine.errors import one_line
from backend.ml_engine.mlflow_integration.stores import (
    diagnose_connection_error,
    mask_uri,
    resolve_tracking_uri,
    sqlite_path,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from backend.ml_engine.config import Settings

__all__ = [
    "LockError",
    "LockTimeout",
    "LockLost",
    "NAMESPACES",
    "coordination_url",
    "default_lock_dir",
    "Locks",
    "Lease",
]

logger = logging.getLogger(__name__)

#: Advisory-lock namespaces (first int4 key). "registry" and "retraining" are the values used
#: before this module existed; keep them so old and new code exclude each other.
NAMESPACES: dict[str, int] = {
    "registry": 0x4D4C5247,  # "MLRG"
    "retraining": 0x4D4C5254,  # "MLRT"
    "jobs": 0x4D4C4A42,  # "MLJB"
    "tuning": 0x4D4C5455,  # "MLTU"
}

#: Seconds a connection to the coordination database may take.
CONNECT_TIMEOUT_S = 10
#: How long a lease whose connection died waits for its own old backend to let go of the lock.
REACQUIRE_GRACE_S = 3.0
#: Prefix of ``application_name`` on lock connections, so a holder can be named.
_APP_PREFIX = "ml-lock "
_LOCK_NOT_AVAILABLE = "55P03"

_KEY_WHERE = (
    "l.locktype = 'advisory' AND l.granted "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid = CAST(:ns AS bigint)::oid "
    "AND l.objid = (hashtext(:name)::bigint & 4294967295)::oid "
    "AND l.objsubid = 2"
)
_SQL_TRY = "SELECT pg_try_advisory_lock(:ns, hashtext(:name)), pg_backend_pid()"
_SQL_UNLOCK = "SELECT pg_advisory_unlock(:ns, hashtext(:name))"
_SQL_HELD_BY_ME = f"SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE {_KEY_WHERE} AND l.pid = pg_backend_pid())"
_SQL_HOLDER = (
    "SELECT l.pid, a.application_name, host(a.client_addr), a.backend_start "
    f"FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid WHERE {_KEY_WHERE} "
    "ORDER BY l.pid LIMIT 1"
)


class LockError(RuntimeError):
    """A lock could not be taken or kept (the base of this module's errors)."""


class LockTimeout(LockError, TimeoutError):
    """:meth:`Locks.hold` did not obtain the lock within its timeout."""


class LockLost(LockError):
    """A lease found it no longer holds its lock (or was released): stop the work."""


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _is_postgresql(url: str | None) -> bool:
    if not url:
        return False
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme.lower().split("+", 1)[0] in ("postgresql", "postgres")


def coordination_url(jobs_database_url: str | None, tracking_uri: str | None) -> str | None:
    """The PostgreSQL URL locks live on: the jobs database when it is PostgreSQL, else the tracking
    store when it is PostgreSQL, else None (file locks: one machine). Returned as configured."""
    if _is_postgresql(jobs_database_url):
        return jobs_database_url
    if _is_postgresql(tracking_uri):
        return tracking_uri
    return None


def default_lock_dir(tracking_uri: str | None, output_dir: str | os.PathLike[str] = "./outputs") -> Path:
    """Where file locks live without a coordination database: beside a SQLite tracking database
    (every process using that store agrees on it), else ``<output_dir>/.locks`` (``ML_OUTPUT_DIR``'s
    default when not given)."""
    db_file = sqlite_path(tracking_uri) if tracking_uri else None
    if db_file is not None:
        return db_file.expanduser().resolve().parent / ".locks"
    return Path(output_dir) / ".locks"


def _namespace_key(namespace: str) -> int:
    try:
        return NAMESPACES[namespace]
    except KeyError:
        raise ValueError(f"unknown lock namespace {namespace!r} (known: {', '.join(sorted(NAMESPACES))})") from None


def _safe_name(name: str) -> str:
    """A file-name-safe form of ``name``; a hash suffix keeps altered names apart ("a/b" vs "a_b")."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    if safe != name or len(safe) > 100 or not safe:
        safe = f"{safe[:80]}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:12]}"
    return safe


def _holder_line() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now(UTC).isoformat(timespec='seconds')}"


def _app_name() -> str:
    return f"{_APP_PREFIX}pid {os.getpid()} on {socket.gethostname()}"[:63]


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)  # psycopg2 / psycopg 3
    return str(code) if code else None


def _libpq_version() -> int:
    try:
        import psycopg2

        return int(psycopg2.__libpq_version__)
    except ImportError:
        pass
    try:
        import psycopg

        return int(psycopg.pq.version())
    except ImportError:
        return 0


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale_file_holder(text: str) -> bool:
    """True when the holder line names a process of this host that no longer exists."""
    m = re.match(r"pid (\d+) on (\S+)", text)
    if m is None:
        return False
    return m.group(2) == socket.gethostname() and not _process_alive(int(m.group(1)))


# ---------------------------------------------------------------------------------------------
# leases
# ---------------------------------------------------------------------------------------------


class Lease:
    """A lock held for long work (a retraining); see the module docstring.

    Use it as a context manager or call :meth:`release`. Call :meth:`check` right before every
    write that must not happen without the lock.
    """

    kind: str
    namespace: str
    name: str
    description: str

    def __init__(self, namespace: str, name: str, description: str) -> None:
        self.namespace = namespace
        self.name = name
        self.description = description
        self._released = False
        self._lost_reason: str | None = None

    @property
    def lost(self) -> bool:
        """True once the lease found it no longer holds the lock (it never holds it again)."""
        return self._lost_reason is not None

    @property
    def released(self) -> bool:
        return self._released

    @property
    def backend_pid(self) -> int | None:
        """The database backend holding the lock now (PostgreSQL), else None."""
        return None

    def check(self) -> None:
        """Raise :class:`LockLost` unless the lock is held now."""
        raise NotImplementedError

    def release(self) -> None:
        """Release the lock; idempotent."""
        raise NotImplementedError

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self._released else ("lost" if self.lost else "held")
        return f"<Lease {self.description} {state}>"


class _FileLease(Lease):
    kind = "file"

    def __init__(self, namespace: str, name: str, path: Path, fh: IO[str]) -> None:
        super().__init__(namespace, name, f"lock file {path}")
        self._path = path
        self._fh: IO[str] | None = fh
        self._guard = threading.Lock()

    def check(self) -> None:
        with self._guard:
            if self._released or self._fh is None:
                raise LockLost(f"{self.description}: released")
            if self._lost_reason is not None:
                raise LockLost(f"{self.description}: {self._lost_reason}")
            try:
                mine = os.fstat(self._fh.fileno())
                now = os.stat(self._path)
                same = (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino)
            except FileNotFoundError:
                same = False
            if not same:
                # Someone removed or replaced the file: a new file could be locked by another holder.
                self._lost_reason = "the lock file was removed or replaced"
                logger.error("lease %s lost: %s", self.description, self._lost_reason)
                raise LockLost(f"{self.description}: {self._lost_reason}")

    def release(self) -> None:
        import fcntl

        with self._guard:
            if self._released:
                return
            self._released = True
            fh, self._fh = self._fh, None
        if fh is None:
            return
        try:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        except OSError:
            logger.debug("unlocking %s failed (closing the file releases it)", self._path, exc_info=True)
        finally:
            fh.close()
        logger.debug("lease %s released", self.description)


class _PgLease(Lease):
    kind = "postgresql-advisory"

    def __init__(
        self,
        locks: Locks,
        namespace: str,
        name: str,
        conn: Connection,
        backend_pid: int,
        check_interval_s: float,
        on_lost: Callable[[LockLost], None] | None,
    ) -> None:
        ns = _namespace_key(namespace)
        super().__init__(
            namespace, name, f"PostgreSQL advisory lock {namespace}/{name!r} ({ns:#x}, hashtext) on {locks.masked_url}"
        )
        self._locks = locks
        self._params: dict[str, Any] = {"ns": ns, "name": name}
        self._conn: Connection | None = conn
        self._pid: int | None = backend_pid
        self._interval = max(0.01, float(check_interval_s))
        self._on_lost = on_lost
        self._notified = False
        # One connection, two threads (the watcher and the caller of check/release): serialise.
        self._mutex = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"lease-watcher-{namespace}-{name}", daemon=True)
        self._thread.start()

    @property
    def backend_pid(self) -> int | None:
        return self._pid

    # -- checking --------------------------------------------------------------------------

    def check(self) -> None:
        try:
            with self._mutex:
                self._verify_locked()
        except LockLost as exc:
            self._notify(exc)
            raise

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with self._mutex:
                    if self._released:
                        return
                    self._verify_locked()
            except LockLost as exc:
                self._notify(exc)
                return
            except Exception as exc:  # noqa: BLE001 - the watcher must never die silently holding a lease
                with self._mutex:
                    self._mark_lost(f"the lease watcher failed: {type(exc).__name__}: {exc}")
                self._notify(LockLost(f"{self.description}: {self._lost_reason}"))
                return

    def _verify_locked(self) -> None:
        """Raise LockLost unless the lock is held now; re-acquire once if the connection died.

        Caller holds ``self._mutex``.
        """
        import sqlalchemy
        from sqlalchemy.exc import SQLAlchemyError

        if self._released:
            raise LockLost(f"{self.description}: released")
        if self._lost_reason is not None:
            raise LockLost(f"{self.description}: {self._lost_reason}")
        conn = self._conn
        try:
            if conn is None:
                raise LockError("no connection")
            held = bool(conn.execute(sqlalchemy.text(_SQL_HELD_BY_ME), self._params).scalar())
        except (SQLAlchemyError, OSError, LockError) as exc:
            reason = one_line(str(getattr(exc, "orig", None) or exc))
            logger.warning(
                "lease %s: connection to backend pid %s lost (%s); trying once to re-acquire",
                self.description,
                self._pid,
                self._locks.mask(reason),
            )
            self._drop_connection()
            self._reacquire()
            return
        if not held:
            self._mark_lost(f"the lock is no longer granted to backend pid {self._pid}")
            raise LockLost(f"{self.description}: {self._lost_reason}")

    def _reacquire(self) -> None:
        """One re-acquisition on a new connection; marks the lease lost (and raises) on failure."""
        import sqlalchemy
        from sqlalchemy.exc import SQLAlchemyError

        old_pid = self._pid
        self._pid = None
        try:
            conn = self._locks._connect(autocommit=True)
        except LockError as exc:
            self._mark_lost(f"connection lost and not re-established: {exc}")
            raise LockLost(f"{self.description}: {self._lost_reason}") from None
        deadline = time.monotonic() + REACQUIRE_GRACE_S
        try:
            while True:
                row = conn.execute(sqlalchemy.text(_SQL_TRY), self._params).one()
                if row[0]:
                    self._conn, self._pid = conn, int(row[1])
                    logger.warning(
                        "lease %s re-acquired on backend pid %s after losing backend pid %s",
                        self.description,
                        self._pid,
                        old_pid,
                    )
                    return
                holder = conn.execute(sqlalchemy.text(_SQL_HOLDER), self._params).first()
                holder_pid = None if holder is None else int(holder[0])
                # Our own old backend may still be exiting (it releases its locks last): wait for it,
                # but never for anyone else.
                if holder_pid in (old_pid, None) and time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
                who = self._locks._format_holder(holder) if holder is not None else "unknown"
                self._mark_lost(f"connection lost and the lock was taken meanwhile by {who}")
                break
        except SQLAlchemyError as exc:
            self._mark_lost(
                f"connection lost and re-acquiring failed: {self._locks.mask(str(getattr(exc, 'orig', None) or exc))}"
            )
        with contextlib.suppress(Exception):
            conn.close()
        raise LockLost(f"{self.description}: {self._lost_reason}")

    def _mark_lost(self, reason: str) -> None:
        if self._lost_reason is None:
            self._lost_reason = " ".join(reason.split())
            logger.error("lease %s lost: %s", self.description, self._lost_reason)
        self._drop_connection()

    def _notify(self, exc: LockLost) -> None:
        with self._mutex:
            if self._notified or self._released or self._on_lost is None:
                return
            self._notified = True
            callback = self._on_lost
        try:
            callback(exc)
        except Exception:  # a faulty callback must not break the watcher or check()
            logger.exception("on_lost callback of lease %s failed", self.description)

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.invalidate()  # closes the DBAPI connection: a live backend lets go of its locks
        except Exception:  # the connection is being thrown away either way
            logger.debug("invalidating the lease connection failed", exc_info=True)
        with contextlib.suppress(Exception):
            conn.close()

    # -- releasing -------------------------------------------------------------------------

    def release(self) -> None:
        import sqlalchemy

        with self._mutex:
            if self._released:
                return
            self._released = True
            self._stop.set()
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.execute(sqlalchemy.text(_SQL_UNLOCK), self._params)
                except Exception:  # closing the connection releases a session lock anyway
                    logger.debug("pg_advisory_unlock failed", exc_info=True)
                with contextlib.suppress(Exception):
                    conn.close()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=max(1.0, 2 * self._interval))
        self._locks._forget(self)
        logger.debug("lease %s released", self.description)


# ---------------------------------------------------------------------------------------------
# the factory
# ---------------------------------------------------------------------------------------------


class Locks:
    """Factory of locks over one coordination backend.

    ``url``: a PostgreSQL URL (``postgresql://``, ``postgresql+psycopg2://``...) or None for file
    locks in ``lock_dir``. ``kind``: ``"postgresql-advisory"`` or ``"file"``.
    """

    kind: str

    def __init__(self, url: str | None, lock_dir: str | os.PathLike[str]) -> None:
        if url is not None and not _is_postgresql(url):
            raise ValueError(f"locks need a PostgreSQL URL or None (file locks), not {mask_uri(url)}")
        self._configured_url = url
        self._url = resolve_tracking_uri(url) if url is not None else None
        self.kind = "postgresql-advisory" if url is not None else "file"
        self.lock_dir = Path(lock_dir)
        self._engine: Engine | None = None
        self._engine_guard = threading.Lock()
        self._leases: weakref.WeakSet[Lease] = weakref.WeakSet()

    @classmethod
    def from_settings(cls, settings: Settings) -> Locks:
        """Locks for a :class:`~backend.ml_engine.config.Settings` (or the services' settings).

        PostgreSQL per :func:`coordination_url` (``jobs_database_url`` when the settings have one).
        File locks go beside a SQLite tracking database (every process using that store agrees
        on it), else in ``<output_dir>/.locks``.
        """
        jobs = settings.jobs_database_url.get_secret_value()
        tracking = settings.mlflow_tracking_uri
        url = coordination_url(jobs or None, tracking)
        lock_dir = default_lock_dir(tracking, settings.output_dir)
        locks = cls(url, lock_dir)
        if url is None:
            logger.info(
                "locks are files in %s: correct only while every process runs on this machine "
                "(configure a PostgreSQL ML_JOBS_DATABASE_URL or tracking store for more)",
                lock_dir,
            )
        return locks

    # -- plumbing --------------------------------------------------------------------------

    @property
    def masked_url(self) -> str:
        return mask_uri(self._configured_url) if self._configured_url else str(self.lock_dir)

    def mask(self, text: str) -> str:
        """``text`` with this backend's password masked."""
        from backend.ml_engine.mlflow_integration.stores import mask_secrets

        return mask_secrets(text, self._configured_url or "")

    def __repr__(self) -> str:
        return f"Locks({self.kind}, {self.masked_url!r})"

    def _get_engine(self) -> Engine:
        with self._engine_guard:
            if self._engine is None:
                import sqlalchemy
                from sqlalchemy.pool import NullPool

                assert self._url is not None
                connect_args: dict[str, Any] = {
                    "connect_timeout": CONNECT_TIMEOUT_S,
                    # A dead peer is noticed in well under a minute, not after the kernel's hours.
                    "keepalives": 1,
                    "keepalives_idle": 10,
                    "keepalives_interval": 5,
                    "keepalives_count": 3,
                }
                if _libpq_version() >= 120000:
                    connect_args["tcp_user_timeout"] = 30_000
                engine = sqlalchemy.create_engine(self._url, poolclass=NullPool, connect_args=connect_args)

                @sqlalchemy.event.listens_for(engine, "do_connect")
                def _name_connection(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
                    cparams["application_name"] = _app_name()  # per connection: right pid after a fork

                self._engine = engine
            return self._engine

    def _connect(self, *, autocommit: bool = False) -> Connection:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            conn = self._get_engine().connect()
            if autocommit:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            return conn
        except SQLAlchemyError as exc:
            raise LockError(
                f"lock database {self.masked_url} is unavailable: "
                f"{diagnose_connection_error(exc, self._configured_url or '')}"
            ) from None

    def _lock_file(self, namespace: str, name: str) -> Path:
        _namespace_key(namespace)
        return self.lock_dir / f"{namespace}-{_safe_name(name)}.lock"

    def _forget(self, lease: Lease) -> None:
        self._leases.discard(lease)

    @staticmethod
    def _format_holder(row: Any) -> str:
        pid, app, addr, since = row[0], row[1], row[2], row[3]
        where = f" from {addr}" if addr else ""
        when = f", connected since {since.isoformat(timespec='seconds')}" if since is not None else ""
        if app and str(app).startswith(_APP_PREFIX):
            return f"{str(app)[len(_APP_PREFIX) :]} (database backend pid {pid}{where}{when})"
        named = f", application {app!r}" if app else ""
        return f"database backend pid {pid}{where}{named}{when}"

    # -- short critical sections -------------------------------------------------------------

    @contextlib.contextmanager
    def hold(self, namespace: str, name: str, timeout_s: float = 60.0) -> Iterator[None]:
        """Hold lock ``namespace/name`` for the ``with`` block, waiting up to ``timeout_s``.

        Raises :class:`LockTimeout` when not obtained in time, :class:`LockError` when the lock
        database is unreachable, and :class:`LockLost` on leaving the block when the PostgreSQL
        connection died inside it (the block may have run unprotected). An exception from the
        block releases the lock and propagates unchanged.
        """
        _namespace_key(namespace)
        if self.kind == "postgresql-advisory":
            with self._hold_pg(namespace, name, float(timeout_s)):
                yield
        else:
            with self._hold_file(namespace, name, float(timeout_s)):
                yield

    @contextlib.contextmanager
    def _hold_pg(self, namespace: str, name: str, timeout_s: float) -> Iterator[None]:
        import sqlalchemy
        from sqlalchemy.exc import OperationalError, SQLAlchemyError

        params = {"ns": _namespace_key(namespace), "name": name}
        t0 = time.monotonic()
        conn = self._connect()
        try:
            trans = conn.begin()
            ms = int((timeout_s - (time.monotonic() - t0)) * 1000)
            try:
                if ms >= 1:
                    # lock_timeout 0 would mean "wait forever"; 2**31-1 ms is its maximum.
                    conn.execute(
                        sqlalchemy.text("SELECT set_config('lock_timeout', :v, true)"), {"v": f"{min(ms, 2**31 - 1)}ms"}
                    )
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:ns, hashtext(:name))"), params)
                elif not conn.execute(
                    sqlalchemy.text("SELECT pg_try_advisory_xact_lock(:ns, hashtext(:name))"), params
                ).scalar():
                    raise LockTimeout(self._timeout_message(namespace, name, timeout_s))
            except OperationalError as exc:
                if _sqlstate(exc) == _LOCK_NOT_AVAILABLE:
                    raise LockTimeout(self._timeout_message(namespace, name, timeout_s)) from None
                raise LockError(
                    f"lock {namespace}/{name!r} on {self.masked_url}: "
                    f"{diagnose_connection_error(exc, self._configured_url or '')}"
                ) from None
            logger.debug("lock %s/%r acquired in %.3f s (pg advisory)", namespace, name, time.monotonic() - t0)
            try:
                yield
            except BaseException:
                with contextlib.suppress(Exception):
                    trans.rollback()
                raise
            try:
                trans.commit()  # ends the transaction: the advisory lock is released
            except SQLAlchemyError as exc:
                raise LockLost(
                    f"lock {namespace}/{name!r} on {self.masked_url}: the connection failed while "
                    f"the lock was held ({diagnose_connection_error(exc, self._configured_url or '')}); "
                    "the critical section may have run unprotected"
                ) from None
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    @contextlib.contextmanager
    def _hold_file(self, namespace: str, name: str, timeout_s: float) -> Iterator[None]:
        import fcntl

        path = self._lock_file(namespace, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout_s
        delay = 0.002
        # A fresh open file description per holder: flock conflicts between them even in one process.
        with open(path, "a+", encoding="utf-8") as fh:
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise LockTimeout(self._timeout_message(namespace, name, timeout_s)) from None
                    time.sleep(min(delay, left))
                    delay = min(delay * 2, 0.05)
            try:
                fh.seek(0)
                fh.truncate()
                fh.write(_holder_line())
                fh.flush()
                yield
            finally:
                with contextlib.suppress(OSError):
                    fh.seek(0)
                    fh.truncate()
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _timeout_message(self, namespace: str, name: str, timeout_s: float) -> str:
        who = self.holder(namespace, name)
        return f"lock {namespace}/{name!r} not obtained within {timeout_s:g} s" + (f" (held by {who})" if who else "")

    # -- leases ------------------------------------------------------------------------------

    def try_lease(
        self,
        namespace: str,
        name: str,
        *,
        check_interval_s: float = 5.0,
        on_lost: Callable[[LockLost], None] | None = None,
    ) -> Lease | None:
        """Take lock ``namespace/name`` for long work without waiting.

        Returns a :class:`Lease`, or None when another holder has it (:meth:`holder` says who,
        when known). ``check_interval_s``: how often the watcher re-checks a PostgreSQL lease;
        ``on_lost``: called once (from the watcher thread or :meth:`Lease.check`) when the lease
        is lost. Raises :class:`LockError` when the lock database is unreachable.
        """
        _namespace_key(namespace)
        lease: Lease | None
        if self.kind == "postgresql-advisory":
            lease = self._try_pg(namespace, name, check_interval_s, on_lost)
        else:
            lease = self._try_file(namespace, name)
        if lease is not None:
            self._leases.add(lease)
            logger.debug("lease %s taken", lease.description)
        return lease

    def _try_pg(
        self, namespace: str, name: str, check_interval_s: float, on_lost: Callable[[LockLost], None] | None
    ) -> Lease | None:
        import sqlalchemy
        from sqlalchemy.exc import SQLAlchemyError

        conn = self._connect(autocommit=True)
        try:
            got, pid = conn.execute(sqlalchemy.text(_SQL_TRY), {"ns": _namespace_key(namespace), "name": name}).one()
        except SQLAlchemyError as exc:
            with contextlib.suppress(Exception):
                conn.close()
            raise LockError(
                f"lock {namespace}/{name!r} on {self.masked_url}: "
                f"{diagnose_connection_error(exc, self._configured_url or '')}"
            ) from None
        except BaseException:
            with contextlib.suppress(Exception):
                conn.close()
            raise
        if not got:
            conn.close()
            return None
        return _PgLease(self, namespace, name, conn, int(pid), check_interval_s, on_lost)

    def _try_file(self, namespace: str, name: str) -> Lease | None:
        import fcntl

        path = self._lock_file(namespace, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - the lease owns the file until release
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return None
        except BaseException:
            fh.close()
            raise
        fh.seek(0)
        fh.truncate()
        fh.write(_holder_line())
        fh.flush()
        return _FileLease(namespace, name, path, fh)

    def holder(self, namespace: str, name: str) -> str | None:
        """Who holds lock ``namespace/name`` now, when known (None: free or unknown)."""
        _namespace_key(namespace)
        if self.kind == "postgresql-advisory":
            return self._pg_holder(namespace, name)
        path = self._lock_file(namespace, name)
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        if not text or _stale_file_holder(text):
            return None
        return text

    def _pg_holder(self, namespace: str, name: str) -> str | None:
        import sqlalchemy

        try:
            with self._connect(autocommit=True) as conn:
                row = conn.execute(
                    sqlalchemy.text(_SQL_HOLDER), {"ns": _namespace_key(namespace), "name": name}
                ).first()
        except Exception:  # "who holds it" is information; never fail a caller over it
            logger.debug("holder of %s/%r unknown", namespace, name, exc_info=True)
            return None
        return None if row is None else self._format_holder(row)

    # -- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Release leases still held (with a warning) and drop the engine; the object stays usable."""
        for lease in list(self._leases):
            if not lease.released:
                logger.warning("closing locks: releasing lease %s still held", lease.description)
                lease.release()
        with self._engine_guard:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()

    def __enter__(self) -> Locks:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
