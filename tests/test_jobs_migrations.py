"""The jobs tables are managed by Alembic: a database made by the code before migrations keeps
every row when upgraded; a database migrated by a newer release is refused with a clear line; two
processes opening a fresh database at once migrate it once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from conftest import REPO

from backend.services import migrations
from backend.services.job_store import JobStore
from backend.services.migrations import VERSION_TABLE, SchemaTooNew

pytestmark = pytest.mark.postgres


def _legacy_metadata() -> sa.MetaData:
    """The schema exactly as backend/services/job_store.py created it before migrations
    (``metadata.create_all``, commit c3ae7f2): frozen here on purpose."""
    md = sa.MetaData()
    sa.Table(
        "ml_jobs",
        md,
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
        sa.Column("host_id", sa.String(300)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
        sa.Index("ix_ml_jobs_status", "status"),
        sa.Index("ix_ml_jobs_created_at", "created_at"),
    )
    sa.Table(
        "ml_job_workers",
        md,
        sa.Column("id", sa.String(300), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("host_id", sa.String(300), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True)),
    )
    return md


LEGACY_ROWS = [
    {
        "id": f"{i:032x}",
        "kind": kind,
        "status": status,
        "model_name": "hybrid_cnn_lstm",
        "params": {"epochs": i + 1, "symbols": ["ETH/BTC"]},
        "epoch": i,
        "epochs": i + 1,
        "metrics": {"val_loss": 1.0 / (i + 1)},
        "result": {"run_name": f"r{i}"} if status == "finished" else {},
        "run_id": f"run{i}" if status != "queued" else None,
        "version": i if status == "finished" else None,
        "error": "boom" if status == "failed" else None,
        "cancel_requested": status == "cancelled",
        "queue_task_id": f"task{i}",
        "worker_host": "old-host" if status != "queued" else None,
        "worker_pid": 4242 if status != "queued" else None,
        "host_id": "old-host|pid:[1]" if status != "queued" else None,
        "created_at": datetime(2026, 11, 1, 12, i, tzinfo=UTC),
        "started_at": datetime(2026, 11, 1, 12, i, 5, tzinfo=UTC) if status != "queued" else None,
        "finished_at": datetime(2026, 11, 1, 12, i, 50, tzinfo=UTC)
        if status in ("finished", "failed", "cancelled")
        else None,
        "heartbeat_at": None,
    }
    for i, (kind, status) in enumerate(
        [
            ("train", "finished"),
            ("train", "failed"),
            ("retrain", "cancelled"),
            ("train", "queued"),
            ("retrain", "finished"),
        ]
    )
]


def _make_legacy(url: str) -> None:
    engine = sa.create_engine(url)
    md = _legacy_metadata()
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(md.tables["ml_jobs"].insert(), LEGACY_ROWS)
        conn.execute(
            md.tables["ml_job_workers"].insert(),
            [
                {
                    "id": "old-host:4242",
                    "host": "old-host",
                    "pid": 4242,
                    "host_id": "old-host|pid:[1]",
                    "started_at": datetime(2026, 11, 1, tzinfo=UTC),
                    "heartbeat_at": datetime(2026, 11, 1, tzinfo=UTC),
                }
            ],
        )
        # the MLflow tracking store's own alembic table may share the database: never touched
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('mlflow-head')"))
    engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_database_made_before_migrations_keeps_every_row(backend, pg_url, tmp_path):
    url = pg_url if backend == "postgresql" else f"sqlite:///{tmp_path}/jobs.db"
    _make_legacy(url)
    store = JobStore(url)
    try:
        assert store.revision == migrations.head_revision()
        for row in LEGACY_ROWS:
            job = store.get(row["id"])
            assert job is not None
            assert (job.kind, job.status, job.params, job.epoch, job.metrics, job.result) == (
                row["kind"],
                row["status"],
                row["params"],
                row["epoch"],
                row["metrics"],
                row["result"],
            )
            assert (job.run_id, job.version, job.error, job.worker_pid) == (
                row["run_id"],
                row["version"],
                row["error"],
                row["worker_pid"],
            )
            assert job.created_at == row["created_at"]
            assert (job.priority, job.origin, job.dedupe_key) == (0, "api", None)  # the new columns' defaults
        assert len(store.list(limit=100)) == len(LEGACY_ROWS)
        # the legacy queued job is still claimable, in the new way
        claim, job = store.claim_next(host="h", pid=os.getpid(), host_id="h|x")
        assert claim == "claimed" and job is not None and job.id == LEGACY_ROWS[3]["id"]
        # new jobs work next to the old ones
        new = store.create("train", {}, "m", 1, priority=3, origin="schedule", dedupe_key="s@1")
        assert (new.priority, new.origin) == (3, "schedule")
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "mlflow-head"
            assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar() == "0002"
    finally:
        store.close()


def test_a_fresh_database_is_created_at_head_and_reopening_changes_nothing(pg_url):
    first = JobStore(pg_url)
    job = first.create("train", {"epochs": 1}, "m", 1)
    first.close()
    second = JobStore(pg_url)
    try:
        assert second.revision == migrations.head_revision()
        assert second.get(job.id) is not None
    finally:
        second.close()


def test_two_processes_opening_a_fresh_database_at_once_both_succeed(pg_url):
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_store() -> None:
        try:
            barrier.wait()
            JobStore(pg_url).close()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert migrations.current_revision(sa.create_engine(pg_url)) == migrations.head_revision()


def _stamp_newer(url: str) -> None:
    JobStore(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()


def test_a_database_migrated_by_a_newer_release_is_refused(pg_url):
    _stamp_newer(pg_url)
    with pytest.raises(SchemaTooNew, match="revision 9999, newer than this code knows"):
        JobStore(pg_url)
    with pytest.raises(SchemaTooNew):
        JobStore(pg_url, migrate=False)


def test_a_worker_started_against_a_newer_schema_refuses_with_one_line(pg_url, tmp_path):
    _stamp_newer(pg_url)
    env = {
        **os.environ,
        "ML_JOBS_DATABASE_URL": pg_url,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "ML_HUEY_SQLITE_PATH": str(tmp_path / "huey.db"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "backend.services.worker"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "refusing to start" in line]
    assert len(lines) == 1 and "newer than this code knows" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_migrations_command_shows_and_upgrades(pg_url, tmp_path):
    _make_legacy(pg_url)
    run = [sys.executable, "-m", "backend.services.migrations"]
    before = subprocess.run([*run, "current", "--url", pg_url], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert before.returncode == 0 and "at none" in before.stdout, before.stderr
    up = subprocess.run([*run, "upgrade", "--url", pg_url], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert up.returncode == 0 and "at 0002 (head)" in up.stdout, up.stderr
    assert JobStore(pg_url).get(LEGACY_ROWS[0]["id"]) is not None
