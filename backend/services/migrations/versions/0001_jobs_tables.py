"""The jobs tables as the code created them before migrations existed (``CREATE TABLE IF NOT
EXISTS``): a database made then is stamped at this revision, never re-created.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ml_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model_name", sa.String(256)),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("epochs", sa.Integer),
        sa.Column("metrics", sa.JSON),
        sa.Column("result", sa.JSON),
        sa.Column("run_id", sa.String(64)),
        sa.Column("version", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("queue_task_id", sa.String(64)),
        sa.Column("worker_host", sa.String(255)),
        sa.Column("worker_pid", sa.Integer),
        sa.Column("host_id", sa.String(300)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_ml_jobs_status", "ml_jobs", ["status"])
    op.create_index("ix_ml_jobs_created_at", "ml_jobs", ["created_at"])
    op.create_table(
        "ml_job_workers",
        sa.Column("id", sa.String(300), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("host_id", sa.String(300), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("ml_job_workers")
    op.drop_index("ix_ml_jobs_created_at", "ml_jobs")
    op.drop_index("ix_ml_jobs_status", "ml_jobs")
    op.drop_table("ml_jobs")
