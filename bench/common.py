"""What every benchmark shares: the machine description, a throw-away PostgreSQL database, the report."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import platform
import shlex
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> str:
    """One line: CPUs, model, memory, Python, load average at the start."""
    try:
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        mem = f"{mem_kb / 2**20:.0f} GiB"
    except (OSError, StopIteration):
        mem = "?"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} CPUs ({cpu_model()}), {mem} RAM, Python {platform.python_version()}, "
        f"load average {load:.2f} at start"
    )


def command() -> str:
    return " ".join(shlex.quote(a) for a in [".venv/bin/python", *sys.argv])


def write_report(name: str, title: str, body: str) -> Path:
    """bench/results/<name>.md with the title, date, machine and the command that produced it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    path.write_text(
        f"# {title}\n\n- command: `{command()}`\n- date: {stamp}\n- machine: {machine()}\n\n{body.strip()}\n"
    )
    return path


def admin_connection():
    """An autocommit connection to the local server's `postgres` database (user postgres, trust auth)."""
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=5)
    conn.autocommit = True
    return conn


def create_database(prefix: str = "bench") -> str:
    """A fresh database on the local server; returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    conn = admin_connection()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return name


def drop_database(name: str) -> None:
    """Drop a database, ending its connections first."""
    conn = admin_connection()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    conn.close()


@contextlib.contextmanager
def temp_postgres_database(prefix: str = "bench") -> Iterator[str]:
    """A fresh database on the local server (user postgres, trust auth), dropped afterwards."""
    name = create_database(prefix)
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        drop_database(name)


#: What a benchmark measured again after an error (its report says so).
RETRIES: list[str] = []


def with_retry(what: str, measure: Callable[[], Any], wait_s: float = 15.0) -> Any:
    """``measure()``, once more after an error (a shared machine: another user's test may restart PostgreSQL)."""
    try:
        return measure()
    except Exception as exc:  # noqa: BLE001 - retried once, and said in the report
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
        logging.getLogger("bench").warning("%s failed (%s); once more in %g s", what, reason, wait_s)
        RETRIES.append(f"{what} ({reason})")
        time.sleep(wait_s)
        return measure()
