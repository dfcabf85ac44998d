"""``python -m backend.dashboard [--port 8501] [--address 127.0.0.1]``: ``streamlit run`` of the
dashboard with the project's flags (headless, no usage statistics, minimal toolbar).

Settings come from the environment and ``.env`` (``MLFLOW_TRACKING_URI``, ``ML_API_TOKEN``,
``ML_JOBS_DATABASE_URL``...), exactly as for the REST API.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
DEFAULT_PORT = 8501

# not __name__: under `python -m backend.dashboard` that is "__main__", outside "backend"
logger = logging.getLogger("backend.dashboard")


def streamlit_args(port: int = DEFAULT_PORT, address: str | None = None, headless: bool = True) -> list[str]:
    """Arguments after ``streamlit`` (``run <app> --server.port ...``), shared by tests and benchmarks."""
    args = [
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.headless",
        "true" if headless else "false",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--server.fileWatcherType",
        "none",
        "--theme.base",
        "light",
    ]
    if address:
        args += ["--server.address", address]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="HTTP port (default 8501)")
    parser.add_argument("--address", default=None, help="address to listen on (default: all interfaces)")
    args = parser.parse_args(argv)
    from streamlit.web import cli as stcli

    from backend.logging_setup import setup_logging

    setup_logging()  # backend.* records of the pages reach the console (ML_LOG_LEVEL, default INFO)
    logger.info("dashboard on http://%s:%d", args.address or "localhost", args.port)
    import threading

    from backend.dashboard.context import warm_up

    threading.Thread(target=warm_up, name="dashboard-warm-up", daemon=True).start()
    sys.argv = ["streamlit", *streamlit_args(args.port, args.address)]
    return int(stcli.main() or 0)


if __name__ == "__main__":
    sys.exit(main())
