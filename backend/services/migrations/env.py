"""Alembic environment of the jobs database: always run on a connection handed over by
:func:`backend.services.migrations.upgrade` (never from alembic.ini; no logging configuration)."""

from __future__ import annotations

from alembic import context

from backend.services.migrations import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
