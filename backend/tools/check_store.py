"""Check the MLflow tracking store: connection, schema version, a write and a read.

    python test_mlflow_postgres.py                      # the store from MLFLOW_TRACKING_URI / .env
    python test_mlflow_postgres.py --uri postgresql://user:pass@localhost:5432/mlflow_tracking

Steps: (1) connect (timeout 3 s) and say in plain words why not: server down (connection
refused), authentication failed, database missing, timeout; (2) read MLflow's schema revision
(table ``alembic_version``): empty database (MLflow creates its tables on first use), up to date,
or out of date (``mlflow db upgrade``); (3) create a throw-away experiment, write a run (param,
metric, tag) and read it back; (4) delete that experiment again (hard delete on SQL stores).
Passwords are masked in everything printed. Exit code 0 when every step passed, 1 otherwise.

Works for ``sqlite:///`` and ``http://`` stores too (step 2 is skipped for a server).
``tbml check-store`` and the guide's ``python test_mlflow_postgres.py`` run this module's `main`.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from backend.ml_engine.errors import one_line


def _say(step: str, status: str, detail: str = "") -> None:
    line = f"{step:<28} {status}"
    if detail:
        line += f": {detail}"
    print(line, flush=True)


def check_connection(uri: str, timeout: float) -> tuple[bool, str]:
    """(ok, detail) for one connection to the store."""
    from backend.ml_engine.mlflow_integration.stores import (
        TrackingStoreUnavailable,
        check_tracking_store,
        resolve_tracking_uri,
        store_kind,
    )

    started = time.perf_counter()
    try:
        check_tracking_store(uri, timeout=timeout)
    except TrackingStoreUnavailable as exc:
        return False, exc.reason
    elapsed_ms = (time.perf_counter() - started) * 1000
    detail = f"answered in {elapsed_ms:.0f} ms"
    if store_kind(uri) == "database":
        import sqlalchemy

        engine = sqlalchemy.create_engine(resolve_tracking_uri(uri), poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as conn:
                if engine.dialect.name == "postgresql":
                    version = conn.execute(sqlalchemy.text("SHOW server_version")).scalar()
                    detail = f"PostgreSQL {version}, {detail}"
        except Exception:  # noqa: BLE001 - the version is only informative
            pass
        finally:
            engine.dispose()
    return True, detail


def check_schema(uri: str) -> tuple[bool, str]:
    """(ok, detail) about MLflow's schema revision in the database."""
    import sqlalchemy
    from mlflow.store.db.utils import _get_latest_schema_revision

    from backend.ml_engine.mlflow_integration.stores import resolve_tracking_uri

    head = _get_latest_schema_revision()
    engine = sqlalchemy.create_engine(resolve_tracking_uri(uri), poolclass=sqlalchemy.pool.NullPool)
    try:
        tables = set(sqlalchemy.inspect(engine).get_table_names())
        if "alembic_version" not in tables:
            if not tables:
                return True, (
                    "the database is empty (fresh): MLflow creates its tables on first use "
                    f"(revision {head}); the write check below does it now"
                )
            return True, (
                f"the database has {len(tables)} other tables and no MLflow schema yet: MLflow will "
                "create its tables next to them on first use"
            )
        with engine.connect() as conn:
            current = conn.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    if current == head:
        return True, f"MLflow schema revision {current} (up to date with MLflow's {head})"
    return False, (
        f"MLflow schema revision {current}, but this MLflow ({_mlflow_version()}) needs {head}: take a "
        "backup, then run `mlflow db upgrade <uri>`"
    )


def _mlflow_version() -> str:
    import mlflow

    return mlflow.__version__


def create_scratch_experiment(uri: str) -> tuple[str, str | None]:
    """A throw-away experiment (id, local artifact folder or None) for the write check."""
    from mlflow import MlflowClient

    from backend.ml_engine.mlflow_integration.stores import resolve_tracking_uri, store_kind

    client = MlflowClient(tracking_uri=resolve_tracking_uri(uri))
    artifact_dir = None if store_kind(uri) == "http" else tempfile.mkdtemp(prefix="mlflow-check-")
    location = Path(artifact_dir).as_uri() if artifact_dir else None
    name = f"connection_check_{uuid.uuid4().hex[:12]}"
    try:
        return client.create_experiment(name, artifact_location=location), artifact_dir
    except BaseException:
        if artifact_dir:
            shutil.rmtree(artifact_dir, ignore_errors=True)
        raise


def check_write_read(uri: str, experiment_id: str) -> tuple[bool, str]:
    """(ok, detail) after writing a run (param, metric, tag, status) and reading it back."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    from backend.ml_engine.mlflow_integration.stores import resolve_tracking_uri

    client = MlflowClient(tracking_uri=resolve_tracking_uri(uri))
    run = client.create_run(experiment_id, run_name="connection_check")
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric("check_metric", 0.5, now, 0)],
        params=[Param("check_param", "ok")],
        tags=[RunTag("check_tag", "ok")],
        synchronous=True,
    )
    client.set_terminated(run_id)
    back = client.get_run(run_id)
    ok = (
        back.data.params.get("check_param") == "ok"
        and back.data.tags.get("check_tag") == "ok"
        and math.isclose(back.data.metrics.get("check_metric", float("nan")), 0.5)
        and back.info.status == "FINISHED"
    )
    if not ok:
        return False, f"run {run_id} read back differs from what was written"
    return True, f"run {run_id} written and read back (param, metric, tag, status)"


def cleanup(uri: str, experiment_id: str) -> tuple[bool, str]:
    """Delete the throw-away experiment: hard delete on SQL stores, soft delete on a server."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    from backend.ml_engine.mlflow_integration.stores import resolve_tracking_uri

    client = MlflowClient(tracking_uri=resolve_tracking_uri(uri))
    store = client._tracking_client.store
    runs = client.search_runs([experiment_id], run_view_type=ViewType.ALL)
    client.delete_experiment(experiment_id)  # soft: marks the experiment and its runs deleted
    if hasattr(store, "_hard_delete_experiment") and hasattr(store, "_hard_delete_run"):
        # what `mlflow gc` does, for this one experiment only
        for run in runs:
            store._hard_delete_run(run.info.run_id)
        store._hard_delete_experiment(experiment_id)
        return True, f"throw-away experiment {experiment_id} and its run deleted"
    return True, f"throw-away experiment {experiment_id} deleted (soft; `mlflow gc` on the server purges it)"


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Check the MLflow tracking store (default: MLFLOW_TRACKING_URI from the environment or .env): "
        "connection, schema version, a write and a read. Exit code 0 when OK, 1 otherwise.",
    )
    parser.add_argument("--uri", help="tracking store URI, e.g. postgresql://user:pass@localhost:5432/mlflow_tracking")
    parser.add_argument("--timeout", type=float, default=3.0, help="connection timeout in seconds (default 3)")
    args = parser.parse_args(argv)

    from backend.ml_engine.mlflow_integration.stores import (
        diagnose_connection_error,
        mask_secrets,
        mask_uri,
        store_kind,
    )

    uri = args.uri
    if uri is None:
        from backend.ml_engine.config import Settings

        uri = Settings().mlflow_tracking_uri
    try:
        kind = store_kind(uri)
    except ValueError as exc:
        print(f"RESULT: FAILED: {exc}")
        return 1
    print(f"MLflow tracking store: {mask_uri(uri)} ({kind})", flush=True)

    ok, detail = check_connection(uri, args.timeout)
    _say("[1/4] connection", "OK" if ok else "FAILED", detail)
    if not ok:
        print(f"RESULT: FAILED: {detail}")
        return 1

    if kind in ("database", "sqlite"):
        try:
            ok, detail = check_schema(uri)
        except Exception as exc:  # noqa: BLE001
            ok, detail = False, diagnose_connection_error(exc, uri)
        _say("[2/4] schema", "OK" if ok else "FAILED", detail)
        if not ok:
            print(f"RESULT: FAILED: {detail}")
            return 1
    else:
        _say("[2/4] schema", "SKIPPED", "an MLflow server manages its own database")

    experiment_id = None
    artifact_dir = None
    try:
        experiment_id, artifact_dir = create_scratch_experiment(uri)
        ok, detail = check_write_read(uri, experiment_id)
    except Exception as exc:  # noqa: BLE001
        ok, detail = False, mask_secrets(one_line(exc, typed=True), uri)
    _say("[3/4] write and read a run", "OK" if ok else "FAILED", detail)

    cleaned, cdetail = True, ""
    if experiment_id is not None:
        try:
            cleaned, cdetail = cleanup(uri, experiment_id)
        except Exception as exc:  # noqa: BLE001
            cleaned, cdetail = False, mask_secrets(f"{type(exc).__name__}: {exc}", uri)
        _say("[4/4] cleanup", "OK" if cleaned else "FAILED", cdetail)
    else:
        _say("[4/4] cleanup", "SKIPPED", "nothing was created")
    if artifact_dir:
        shutil.rmtree(artifact_dir, ignore_errors=True)

    if ok and cleaned:
        print("RESULT: OK")
        return 0
    print(f"RESULT: FAILED: {detail if not ok else cdetail}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
