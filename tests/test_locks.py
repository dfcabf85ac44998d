"""backend.ml_engine.locks: one lock module (PostgreSQL advisory locks or flock files).

Real PostgreSQL: every test that needs it gets its own database (``pg_url`` from conftest),
dropped afterwards. Lease loss is provoked the way it happens in production: the server ends
the lease connection's backend (``pg_terminate_backend``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import psycopg2
import pytest
from conftest import REPO, make_settings
from pydantic import SecretStr

from backend.ml_engine.locks import (
    NAMESPACES,
    Lease,
    LockError,
    LockLost,
    Locks,
    LockTimeout,
    coordination_url,
)

KINDS = ["postgresql-advisory", "file"]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _sql(url: str, query: str, params: tuple = ()) -> list[tuple]:
    """Run one statement on the test database from an independent (admin) connection."""
    conn = psycopg2.connect(url, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def _granted_pids(url: str, namespace: str, name: str) -> list[int]:
    """Backends the server says hold advisory lock (namespace, hashtext(name)) in this database."""
    rows = _sql(
        url,
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid = %s::bigint::oid AND objid = (hashtext(%s)::bigint & 4294967295)::oid "
        "AND objsubid = 2 ORDER BY pid",
        (NAMESPACES[namespace], name),
    )
    return [r[0] for r in rows]


def _terminate(url: str, pid: int, *, wait: bool = True) -> None:
    """pg_terminate_backend(pid); with ``wait``, until the backend is gone and holds no lock."""
    assert _sql(url, "SELECT pg_terminate_backend(%s)", (pid,)) == [(True,)]
    if not wait:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = _sql(
            url,
            "SELECT (SELECT count(*) FROM pg_stat_activity WHERE pid = %s) "
            "+ (SELECT count(*) FROM pg_locks WHERE pid = %s)",
            (pid, pid),
        )[0][0]
        if alive == 0:
            return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} still there 10 s after pg_terminate_backend")


def _wait_until(predicate, timeout_s: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s} s")
        time.sleep(0.01)


def _held_now(lease: Lease) -> bool:
    try:
        lease.check()
    except LockLost:
        return False
    return True


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def url(kind, request) -> str | None:
    """The coordination URL for ``kind``: a fresh PostgreSQL database, or None (file locks)."""
    return request.getfixturevalue("pg_url") if kind == "postgresql-advisory" else None


@pytest.fixture
def locks(url, tmp_path) -> Iterator[Locks]:
    lk = Locks(url, tmp_path / "locks")
    yield lk
    lk.close()


# ---------------------------------------------------------------------------------------------
# where the locks live
# ---------------------------------------------------------------------------------------------


def test_coordination_url_jobs_db_then_tracking_then_none(tmp_path):
    pg_jobs = "postgresql://u:pw@jobs-host:5432/jobs"
    pg_tracking = "postgresql+psycopg2://u:pw@mlflow-host/mlflow"
    sqlite_jobs = "sqlite:///mlruns/jobs.db"
    # the jobs database wins whatever the tracking store is
    for tracking in (pg_tracking, "sqlite:///mlruns/mlflow.db", "http://mlflow:5000", None):
        assert coordination_url(pg_jobs, tracking) == pg_jobs
    assert coordination_url("postgres://u@h/j", "http://mlflow:5000") == "postgres://u@h/j"
    # else the tracking store when it is PostgreSQL
    assert coordination_url(sqlite_jobs, pg_tracking) == pg_tracking
    assert coordination_url(None, pg_tracking) == pg_tracking
    # else nothing: file locks, one machine
    assert coordination_url(sqlite_jobs, "sqlite:///mlruns/mlflow.db") is None
    assert coordination_url(sqlite_jobs, "http://mlflow:5000") is None
    assert coordination_url(None, "https://mlflow.example.com") is None
    assert coordination_url(None, None) is None

    # from_settings: SecretStr jobs URL, no connection made (a host that does not exist is fine)
    s = SimpleNamespace(
        mlflow_tracking_uri="http://mlflow:5000", output_dir=str(tmp_path / "out"), jobs_database_url=SecretStr(pg_jobs)
    )
    lk = Locks.from_settings(s)
    assert lk.kind == "postgresql-advisory"
    assert "pw" not in repr(lk) and "jobs-host" in repr(lk)
    s = SimpleNamespace(
        mlflow_tracking_uri="http://mlflow:5000",
        output_dir=str(tmp_path / "out"),
        jobs_database_url=SecretStr(sqlite_jobs),
    )
    lk = Locks.from_settings(s)
    assert (lk.kind, lk.lock_dir) == ("file", tmp_path / "out" / ".locks")
    # the engine's Settings have no jobs database: a SQLite tracking store puts the files beside it
    lk = Locks.from_settings(make_settings(tmp_path))
    assert (lk.kind, lk.lock_dir) == ("file", tmp_path.resolve() / ".locks")
    lk = Locks.from_settings(make_settings(tmp_path, tracking_uri=pg_tracking))
    assert lk.kind == "postgresql-advisory"

    with pytest.raises(ValueError, match="PostgreSQL"):
        Locks("sqlite:///x.db", tmp_path)
    with pytest.raises(ValueError, match="unknown lock namespace"):
        Locks(None, tmp_path).try_lease("nope", "x")


def test_unreachable_database_is_a_lock_error_without_the_password(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="backend.ml_engine.locks")
    lk = Locks("postgresql://bob:s3cr3t-pw@127.0.0.1:1/nowhere", tmp_path)
    with pytest.raises(LockError) as err:
        lk.try_lease("retraining", "m")
    assert "s3cr3t-pw" not in str(err.value) and "***" in str(err.value)
    with pytest.raises(LockError) as err, lk.hold("registry", "m", timeout_s=1):
        pass
    assert not isinstance(err.value, LockTimeout) and "s3cr3t-pw" not in str(err.value)
    assert lk.holder("retraining", "m") is None
    assert "s3cr3t-pw" not in caplog.text


# ---------------------------------------------------------------------------------------------
# hold(): short critical sections
# ---------------------------------------------------------------------------------------------


def test_hold_excludes_threads(locks, kind):
    """Read-sleep-write of a shared counter from 4 threads: lost updates unless exclusive."""
    counter = {"value": 0}
    inside = {"now": 0, "max": 0}
    guard = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(8):
                with locks.hold("registry", "model-a", timeout_s=30):
                    with guard:
                        inside["now"] += 1
                        inside["max"] = max(inside["max"], inside["now"])
                    v = counter["value"]
                    time.sleep(0.003)
                    counter["value"] = v + 1
                    with guard:
                        inside["now"] -= 1
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert counter["value"] == 32
    assert inside["max"] == 1
    # another name is another lock: held at once without waiting
    with locks.hold("registry", "model-a", timeout_s=5), locks.hold("registry", "model-b", timeout_s=0):
        pass


_COUNTER_CHILD = textwrap.dedent("""
    import pathlib, sys, time
    from backend.ml_engine.locks import Locks
    url, lock_dir, counter, go, n = sys.argv[1] or None, sys.argv[2], pathlib.Path(sys.argv[3]), pathlib.Path(sys.argv[4]), int(sys.argv[5])
    locks = Locks(url, lock_dir)
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.002)
    for _ in range(n):
        with locks.hold("registry", "shared", timeout_s=30):
            v = int(counter.read_text())
            time.sleep(0.004)
            counter.write_text(str(v + 1))
    locks.close()
""")


def test_hold_excludes_processes(url, kind, tmp_path):
    """Two processes doing read-sleep-write on one counter file under the lock: no lost update."""
    counter, go = tmp_path / "counter", tmp_path / "go"
    counter.write_text("0")
    n = 12
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _COUNTER_CHILD, url or "", str(tmp_path / "locks"), str(counter), str(go), str(n)],
            cwd=REPO,
            env=_child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready", p.stderr.read() if p.stderr else ""
        go.touch()  # both start together: they contend
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert int(counter.read_text()) == 2 * n


def test_hold_times_out_and_says_who_holds_it(locks, kind):
    with locks.hold("registry", "m", timeout_s=5):
        t0 = time.monotonic()
        with pytest.raises(LockTimeout) as err, locks.hold("registry", "m", timeout_s=0.4):
            pass
        waited = time.monotonic() - t0
        assert 0.35 <= waited < 5, waited
        assert isinstance(err.value, TimeoutError)
        assert f"pid {os.getpid()} on " in str(err.value)  # the holder, named
        with pytest.raises(LockTimeout), locks.hold("registry", "m", timeout_s=0):
            pass
        # same name, other namespace: not the same lock
        with locks.hold("retraining", "m", timeout_s=0):
            pass
    with locks.hold("registry", "m", timeout_s=0):  # free again
        pass


def test_hold_released_on_exception(locks, kind, url):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), locks.hold("registry", "m", timeout_s=5):
        if url:
            assert len(_granted_pids(url, "registry", "m")) == 1
        raise Boom
    if url:
        assert _granted_pids(url, "registry", "m") == []
    assert locks.holder("registry", "m") is None
    t0 = time.monotonic()
    with locks.hold("registry", "m", timeout_s=0.5):
        pass
    assert time.monotonic() - t0 < 0.5


def test_hold_connection_killed_inside_raises_lock_lost(pg_url, tmp_path):
    """The critical section may have run unprotected: leaving it says so instead of returning."""
    lk = Locks(pg_url, tmp_path)
    with pytest.raises(LockLost, match="unprotected"), lk.hold("registry", "m", timeout_s=5):
        (pid,) = _granted_pids(pg_url, "registry", "m")
        _terminate(pg_url, pid)
    with lk.hold("registry", "m", timeout_s=1):
        pass
    lk.close()


# ---------------------------------------------------------------------------------------------
# try_lease(): long work
# ---------------------------------------------------------------------------------------------


_TRY_CHILD = textwrap.dedent("""
    import sys
    from backend.ml_engine.locks import Locks
    locks = Locks(sys.argv[1] or None, sys.argv[2])
    lease = locks.try_lease("retraining", "model-a")
    print("refused by " + str(locks.holder("retraining", "model-a")) if lease is None else "acquired")
    if lease is not None:
        lease.release()
    locks.close()
""")


def _try_in_child(url: str | None, lock_dir: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-c", _TRY_CHILD, url or "", str(lock_dir)],
        cwd=REPO,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_try_lease_refuses_a_second_holder_until_released(locks, kind, url, tmp_path):
    lease = locks.try_lease("retraining", "model-a", check_interval_s=0.05)
    assert lease is not None and lease.kind == kind and not lease.lost
    assert locks.try_lease("retraining", "model-a") is None
    who = locks.holder("retraining", "model-a")
    assert who is not None and f"pid {os.getpid()} on " in who
    if url:
        assert who.endswith(")") and f"database backend pid {lease.backend_pid}" in who
        # the same database through the psycopg2 URL form: the same lock
        other = Locks(url.replace("postgresql://", "postgresql+psycopg2://"), tmp_path)
        assert other.try_lease("retraining", "model-a") is None
        other.close()
    # another process is refused too, and told who holds it
    assert _try_in_child(url, tmp_path / "locks") == f"refused by {who}"
    # a lease and hold() share the key space
    with pytest.raises(LockTimeout), locks.hold("retraining", "model-a", timeout_s=0.1):
        pass
    time.sleep(0.2)  # several watcher rounds: a healthy lease stays held
    lease.check()
    assert not lease.lost

    lease.release()
    lease.release()  # idempotent
    with pytest.raises(LockLost, match="released"):
        lease.check()
    assert locks.holder("retraining", "model-a") is None
    if url:
        assert _granted_pids(url, "retraining", "model-a") == []
    assert _try_in_child(url, tmp_path / "locks") == "acquired"
    with locks.try_lease("retraining", "model-a") as again:
        assert again is not None
        again.check()
    last = locks.try_lease("retraining", "model-a")
    assert last is not None  # the with block released it
    last.release()


def test_close_releases_leases_still_held(locks, kind):
    lease = locks.try_lease("jobs", "job-1")
    assert lease is not None
    locks.close()
    assert lease.released
    with pytest.raises(LockLost):
        lease.check()
    again = locks.try_lease("jobs", "job-1")  # still usable after close
    assert again is not None
    again.release()


def test_file_lease_lost_when_the_lock_file_is_replaced(tmp_path):
    locks = Locks(None, tmp_path)
    lease = locks.try_lease("retraining", "m/1")  # a name that is not file-safe
    assert lease is not None
    lease.check()
    (path,) = tmp_path.glob("retraining-*.lock")
    plain = locks.try_lease("retraining", "m_1")  # "m/1" and "m_1" are different locks
    assert plain is not None
    plain.release()
    path.unlink()
    # a new file means someone else can flock it: the old lease must know it no longer excludes them
    with pytest.raises(LockLost, match="removed or replaced"):
        lease.check()
    assert lease.lost
    lease.release()


# ---------------------------------------------------------------------------------------------
# lease loss: the server ends the lease connection
# ---------------------------------------------------------------------------------------------


def test_lease_lost_when_another_session_takes_the_lock_first(pg_url, tmp_path):
    """(a) check() finds the connection gone, cannot re-acquire (taken) -> LockLost, for good."""
    holder_locks, rival_locks = Locks(pg_url, tmp_path), Locks(pg_url, tmp_path)
    lost: list[LockLost] = []
    # A watcher that will not run during the test: check() alone detects the loss here.
    lease = holder_locks.try_lease("retraining", "m", check_interval_s=600, on_lost=lost.append)
    assert lease is not None
    lease.check()
    assert rival_locks.try_lease("retraining", "m") is None
    old_pid = lease.backend_pid
    assert _granted_pids(pg_url, "retraining", "m") == [old_pid]

    _terminate(pg_url, old_pid)
    rival = rival_locks.try_lease("retraining", "m", check_interval_s=600)
    assert rival is not None  # the server released the terminated backend's lock

    for _ in range(3):  # whoever asks first, never both
        held_by_holder, held_by_rival = _held_now(lease), _held_now(rival)
        assert (held_by_holder, held_by_rival) == (False, True)
    assert lease.lost and lease.backend_pid is None
    assert len(lost) == 1 and isinstance(lost[0], LockLost) and "taken meanwhile" in str(lost[0])
    assert _granted_pids(pg_url, "retraining", "m") == [rival.backend_pid]

    # lost for good: even once the lock is free again, the old lease does not take it back
    rival.release()
    assert not _held_now(lease)
    assert _granted_pids(pg_url, "retraining", "m") == []
    lease.release()
    holder_locks.close()
    rival_locks.close()


def test_watcher_marks_the_lease_lost_without_a_check(pg_url, tmp_path):
    """(a) as above, found by the watcher thread: lost becomes True and on_lost runs once."""
    holder_locks, rival_locks = Locks(pg_url, tmp_path), Locks(pg_url, tmp_path)
    calls: list[str] = []
    lease = holder_locks.try_lease(
        "retraining", "m", check_interval_s=0.05, on_lost=lambda exc: calls.append(threading.current_thread().name)
    )
    assert lease is not None
    old_pid = lease.backend_pid
    # Keep the watcher out while the rival grabs the lock (else it may re-acquire first: test (b)).
    with lease._mutex:  # private on purpose: the only way to order the race deterministically
        _terminate(pg_url, old_pid)
        rival = rival_locks.try_lease("retraining", "m", check_interval_s=600)
        assert rival is not None
        assert not lease.lost  # nobody has looked yet
    _wait_until(lambda: lease.lost, 5, "watcher noticing the loss")
    assert len(calls) == 1 and calls[0].startswith("lease-watcher")
    assert not _held_now(lease) and _held_now(rival)
    assert len(calls) == 1  # on_lost only once
    assert _granted_pids(pg_url, "retraining", "m") == [rival.backend_pid]
    lease.release()
    rival.release()
    holder_locks.close()
    rival_locks.close()


def test_check_reacquires_when_nobody_took_the_lock(pg_url, tmp_path, caplog):
    """(b) the connection is gone but the lock is free: check() re-acquires on a new connection."""
    caplog.set_level(logging.WARNING, logger="backend.ml_engine.locks")
    locks = Locks(pg_url, tmp_path)
    lost: list[LockLost] = []
    lease = locks.try_lease("retraining", "m", check_interval_s=600, on_lost=lost.append)
    assert lease is not None
    seen = {lease.backend_pid}
    for attempt in range(3):
        old_pid = lease.backend_pid
        # every other round: check() right away, racing the dying backend (its lock goes last)
        _terminate(pg_url, old_pid, wait=attempt % 2 == 0)
        lease.check()
        _wait_until(lambda pid=old_pid: pid not in _granted_pids(pg_url, "retraining", "m"), 5, "old backend gone")
        lease.check()
        assert not lease.lost and not lost
        assert lease.backend_pid not in seen  # a new connection holds it
        seen.add(lease.backend_pid)
        assert _granted_pids(pg_url, "retraining", "m") == [lease.backend_pid]  # exactly one holder
        assert locks.try_lease("retraining", "m") is None
    assert "re-acquired" in caplog.text
    lease.release()
    assert _granted_pids(pg_url, "retraining", "m") == []
    locks.close()


def test_reacquire_waits_for_its_own_dying_backend_only(pg_url, tmp_path):
    """(b) A terminated backend releases its locks a moment after its client sees the connection
    end. Re-acquisition waits while the holder is the lease's *own* old backend, never for anyone
    else (test (a)). Staged with a session that plays the dying backend and exits 0.3 s later."""
    locks = Locks(pg_url, tmp_path)
    lease = locks.try_lease("retraining", "m", check_interval_s=600)
    assert lease is not None
    _terminate(pg_url, lease.backend_pid)
    dying = psycopg2.connect(pg_url)
    dying.autocommit = True
    with dying.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s, hashtext(%s)), pg_backend_pid()", (NAMESPACES["retraining"], "m"))
        dying_pid = cur.fetchone()[1]
    lease._pid = dying_pid  # private on purpose: stands for the old backend still exiting
    closer = threading.Timer(0.3, dying.close)
    closer.start()
    t0 = time.monotonic()
    lease.check()
    assert time.monotonic() - t0 >= 0.25  # it waited for the "dying" backend, then took the lock
    closer.join()
    assert not lease.lost and lease.backend_pid != dying_pid
    assert _granted_pids(pg_url, "retraining", "m") == [lease.backend_pid]
    lease.release()
    locks.close()


def test_watcher_reacquires_when_nobody_took_the_lock(pg_url, tmp_path):
    """(b) found by the watcher: it re-acquires without any check() from the work."""
    locks = Locks(pg_url, tmp_path)
    lease = locks.try_lease("jobs", "job-7", check_interval_s=0.05)
    assert lease is not None
    old_pid = lease.backend_pid
    _terminate(pg_url, old_pid, wait=False)
    _wait_until(
        lambda: (pids := _granted_pids(pg_url, "jobs", "job-7")) and pids[0] != old_pid,
        5,
        "re-acquisition by the watcher",
    )
    assert not lease.lost
    assert _granted_pids(pg_url, "jobs", "job-7") == [lease.backend_pid]
    lease.check()
    assert locks.try_lease("jobs", "job-7") is None
    lease.release()
    locks.close()
