"""Alembic migrations of the jobs database (``ml_jobs``, ``ml_job_workers``).

Every process that opens the jobs store (API, worker, scheduler, dashboard) brings the schema to
this code's head on start (:func:`upgrade`), under a lock so that several processes starting at
once migrate it once. A database created before migrations existed (the tables are there, the
version table is not) is stamped at the first revision, which is exactly that schema, then
upgraded: every row is kept. A database at a revision this code does not know (a newer release
migrated it) is refused with :class:`SchemaTooNew`: upgrade the package on this machine first.

The version table is ``ml_jobs_alembic_version``, not alembic's default: the jobs tables may live in
the MLflow tracking database, whose own schema MLflow versions in ``alembic_version``.

    python -m backend.services.migrations current      # the database's revision and this code's head
    python -m backend.services.migrations upgrade      # what every process does on start
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

__all__ = [
    "BASELINE",
    "VERSION_TABLE",
    "SchemaTooNew",
    "check",
    "current_revision",
    "head_revision",
    "upgrade",
]

logger = logging.getLogger(__name__)

VERSION_TABLE = "ml_jobs_alembic_version"
#: The schema the code wrote with ``CREATE TABLE IF NOT EXISTS`` before migrations existed.
BASELINE = "0001"
_HERE = Path(__file__).resolve().parent
#: (namespace, key) of the PostgreSQL advisory lock held while migrating ("MLJB", 2).
_PG_MIGRATE_LOCK = (0x4D4C4A42, 2)


class SchemaTooNew(RuntimeError):
    """The jobs database was migrated by a newer release than this process runs."""


def _config(connection: Connection | None = None):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.set_main_option("version_table", VERSION_TABLE)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _script():  # type: ignore[no-untyped-def]
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """The newest revision this code knows."""
    head = _script().get_current_head()
    assert head is not None
    return str(head)


def _current(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def current_revision(engine: Engine) -> str | None:
    """The database's revision (None: never migrated; tables may still exist from before)."""
    with engine.connect() as conn:
        return _current(conn)


def _known(revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return _script().get_revision(revision) is not None
    except CommandError:
        return False


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """One connection holding the migration lock: a PostgreSQL advisory lock, or (SQLite) a file
    lock beside the database file."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                sa.text("SELECT pg_advisory_lock(:a, :b)"), {"a": _PG_MIGRATE_LOCK[0], "b": _PG_MIGRATE_LOCK[1]}
            )
            conn.commit()
            try:
                yield conn
            finally:
                conn.rollback()
                conn.execute(
                    sa.text("SELECT pg_advisory_unlock(:a, :b)"), {"a": _PG_MIGRATE_LOCK[0], "b": _PG_MIGRATE_LOCK[1]}
                )
                conn.commit()
        else:
            database = engine.url.database
            if not database or database == ":memory:":
                yield conn
                return
            from backend.ml_engine.locks import Locks

            with Locks(None, Path(database).expanduser().resolve().parent / ".locks").hold("jobs", "migrate", 120.0):
                yield conn


def upgrade(engine: Engine) -> str:
    """Bring the jobs schema to this code's head; returns the revision it is at now.

    Raises :class:`SchemaTooNew` when the database is at a revision this code does not know.
    """
    from alembic import command

    head = head_revision()
    with _migration_lock(engine) as conn:
        current = _current(conn)
        if current == head:
            return head
        if current is not None and not _known(current):
            raise SchemaTooNew(
                f"the jobs database is at schema revision {current}, newer than this code knows (head {head}): "
                "upgrade the package on this machine (pip install -U ...) before starting it"
            )
        cfg = _config(conn)
        if current is None and sa.inspect(conn).has_table("ml_jobs"):
            logger.info("jobs database made before migrations: stamped at %s, then upgraded", BASELINE)
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, "head")
        conn.commit()
        logger.info("jobs database schema: %s -> %s", current or "empty", head)
    return head


def check(engine: Engine) -> str | None:
    """The database's revision, refusing one newer than this code (no change is made)."""
    current = current_revision(engine)
    if current is not None and not _known(current):
        raise SchemaTooNew(
            f"the jobs database is at schema revision {current}, newer than this code knows "
            f"(head {head_revision()}): upgrade the package on this machine"
        )
    return current


def main(argv: Sequence[str] | None = None) -> int:
    from backend.ml_engine.config import Settings
    from backend.ml_engine.mlflow_integration.stores import resolve_tracking_uri

    from ..redaction import mask_uri

    parser = argparse.ArgumentParser(
        prog="python -m backend.services.migrations",
        description="Schema of the jobs database (ML_JOBS_DATABASE_URL): show or upgrade it.",
    )
    parser.add_argument("command", choices=["current", "upgrade"])
    parser.add_argument("--url", help="database URL (default: ML_JOBS_DATABASE_URL)")
    args = parser.parse_args(argv)
    url = args.url or Settings().jobs_database_url.get_secret_value()
    engine = sa.create_engine(resolve_tracking_uri(url))
    try:
        if args.command == "upgrade":
            revision = upgrade(engine)
            print(f"{mask_uri(url)}: at {revision} (head)")
        else:
            current = current_revision(engine)
            print(f"{mask_uri(url)}: at {current or 'none'}; this code's head is {head_revision()}")
    except SchemaTooNew as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0
