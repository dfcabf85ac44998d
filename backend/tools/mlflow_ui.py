"""Start the MLflow UI over the configured tracking store and artifact root.

``tbml ui`` and the guide's ``python start_mlflow_ui.py`` run this module's `main`.

    python start_mlflow_ui.py                    # http://127.0.0.1:5000
    python start_mlflow_ui.py --host 0.0.0.0 --port 5000
    python start_mlflow_ui.py --dry-run          # print the command (password masked), start nothing

The store and artifact root come from ``MLFLOW_TRACKING_URI`` and ``MLFLOW_ARTIFACT_LOCATION``
(environment or ``.env``; defaults: ``sqlite:///mlruns/mlflow.db`` and ``./mlruns/artifacts``).
The command run is ``mlflow server --backend-store-uri <store> --default-artifact-root <root>``:
trackers write artifacts straight to ``<root>/<experiment>`` and this server reads them from there.
With ``--proxy-artifacts`` it passes ``--artifacts-destination <root>`` instead, so that other
machines using this server as their tracking URI (``http://host:5000``) upload artifacts through
it (and the guide's experiments are created with ``mlflow-artifacts:/<name>`` locations). Before
starting, the store is checked (a clear one-line error if it is unreachable) and the three
experiments of the guide are created with their descriptions.

MLflow's job runner (GenAI jobs, several extra processes) is off unless ``--enable-jobs`` is
given or ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION`` is set. If ``MLFLOW_TRACKING_URI`` already
points at an MLflow server (``http://...``) there is nothing to start: its own UI is printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit


def artifact_root_uri(root: str) -> str:
    """An absolute URI for the artifact root: local paths resolved to ``file://``."""
    scheme = urlsplit(root).scheme.lower()
    if scheme in ("", "file") or len(scheme) == 1:
        local = Path(urlsplit(root).path) if scheme == "file" else Path(root)
        return local.expanduser().resolve().as_uri()
    return root.rstrip("/")


def build_command(
    tracking_uri: str,
    artifact_root: str,
    host: str,
    port: int,
    workers: int,
    proxy_artifacts: bool = False,
    allowed_hosts: str | None = None,
) -> list[str]:
    """The ``mlflow server`` command line (with the real password: mask it before printing)."""
    from backend.ml_engine.mlflow_integration.stores import resolve_tracking_uri

    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", resolve_tracking_uri(tracking_uri)]
    root = artifact_root_uri(artifact_root)
    if proxy_artifacts:
        cmd += ["--serve-artifacts", "--artifacts-destination", root]
    else:
        cmd += ["--default-artifact-root", root]
    cmd += ["--host", host, "--port", str(port), "--workers", str(workers)]
    if allowed_hosts:
        cmd += ["--allowed-hosts", allowed_hosts]
    return cmd


def masked_command(cmd: list[str], tracking_uri: str) -> str:
    from backend.ml_engine.mlflow_integration.stores import mask_secrets, resolve_tracking_uri

    text = shlex.join(cmd)
    return mask_secrets(mask_secrets(text, resolve_tracking_uri(tracking_uri)), tracking_uri)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Start the MLflow UI (mlflow server) over MLFLOW_TRACKING_URI and MLFLOW_ARTIFACT_LOCATION.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    parser.add_argument("--tracking-uri", help="override MLFLOW_TRACKING_URI")
    parser.add_argument("--artifact-location", help="override MLFLOW_ARTIFACT_LOCATION")
    parser.add_argument(
        "--proxy-artifacts",
        action="store_true",
        help="serve artifact uploads/downloads through this server (--artifacts-destination) for remote clients",
    )
    parser.add_argument(
        "--allowed-hosts", help="passed to mlflow server --allowed-hosts (when exposing beyond localhost)"
    )
    parser.add_argument("--enable-jobs", action="store_true", help="keep MLflow's GenAI job runner on")
    parser.add_argument("--dry-run", action="store_true", help="print the command (password masked) and exit")
    args = parser.parse_args(argv)

    from backend.ml_engine.config import Settings
    from backend.ml_engine.mlflow_integration.stores import (
        TrackingStoreUnavailable,
        check_tracking_store,
        mask_uri,
        store_kind,
    )

    settings = Settings()
    tracking_uri = args.tracking_uri or settings.mlflow_tracking_uri
    artifact_root = args.artifact_location or settings.mlflow_artifact_location
    try:
        kind = store_kind(tracking_uri)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if kind == "http":
        print(f"MLFLOW_TRACKING_URI is an MLflow server already; its UI: {mask_uri(tracking_uri)}")
        return 0

    cmd = build_command(
        tracking_uri, artifact_root, args.host, args.port, args.workers, args.proxy_artifacts, args.allowed_hosts
    )
    shown_host = "localhost" if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{shown_host}:{args.port}"
    print(f"Tracking store: {mask_uri(tracking_uri)}")
    print(f"Artifact root:  {artifact_root_uri(artifact_root)}")
    print(f"Command: {masked_command(cmd, tracking_uri)}")
    if args.dry_run:
        print(f"MLflow UI would open at: {url}")
        return 0

    if importlib.util.find_spec("flask") is None:
        print(
            "error: `mlflow server` needs the full mlflow package (Flask, gunicorn), which a serving "
            "install (`pip install '.[serve]'`) leaves out: pip install '.[train]'",
            file=sys.stderr,
        )
        return 2
    try:
        check_tracking_store(tracking_uri)
    except TrackingStoreUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        from mlflow import MlflowClient

        from backend.ml_engine.mlflow_integration.experiments import ensure_project_experiments
        from backend.ml_engine.mlflow_integration.stores import resolve_tracking_uri

        resolved = resolve_tracking_uri(tracking_uri)
        # Proxied: experiments point at the server's artifact proxy, mlflow-artifacts:/<name>.
        root_for_experiments = "mlflow-artifacts:/" if args.proxy_artifacts else artifact_root
        ensure_project_experiments(MlflowClient(tracking_uri=resolved, registry_uri=resolved), root_for_experiments)
    except Exception as exc:  # noqa: BLE001 - the UI can still start; say why the experiments are missing
        from backend.ml_engine.mlflow_integration.stores import mask_secrets

        print(
            f"warning: could not create the project experiments: {mask_secrets(str(exc), tracking_uri)}",
            file=sys.stderr,
        )

    env = dict(os.environ)
    if not args.enable_jobs:
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    print(f"MLflow UI: {url}  (Ctrl+C stops it)", flush=True)
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
