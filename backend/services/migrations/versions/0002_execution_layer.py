"""The execution layer: job priority and origin (api, schedule), a unique key that makes a
scheduled submission happen once per fire time, the pid of the job's own process and its thread
count; each worker's slots, threads per job and queue.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ml_jobs") as batch:
        batch.add_column(sa.Column("priority", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("origin", sa.String(16), nullable=False, server_default="api"))
        batch.add_column(sa.Column("dedupe_key", sa.String(200)))
        batch.add_column(sa.Column("job_pid", sa.Integer))
        batch.add_column(sa.Column("threads", sa.Integer))
    op.create_index("ux_ml_jobs_dedupe_key", "ml_jobs", ["dedupe_key"], unique=True)
    # the claim reads the head of the line: queued jobs by priority, then submission time
    op.create_index("ix_ml_jobs_line", "ml_jobs", ["status", "priority", "created_at"])
    with op.batch_alter_table("ml_job_workers") as batch:
        batch.add_column(sa.Column("slots", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("threads_per_job", sa.Integer))
        batch.add_column(sa.Column("queue", sa.String(300)))


def downgrade() -> None:
    with op.batch_alter_table("ml_job_workers") as batch:
        batch.drop_column("queue")
        batch.drop_column("threads_per_job")
        batch.drop_column("slots")
    op.drop_index("ix_ml_jobs_line", "ml_jobs")
    op.drop_index("ux_ml_jobs_dedupe_key", "ml_jobs")
    with op.batch_alter_table("ml_jobs") as batch:
        batch.drop_column("threads")
        batch.drop_column("job_pid")
        batch.drop_column("dedupe_key")
        batch.drop_column("origin")
        batch.drop_column("priority")
