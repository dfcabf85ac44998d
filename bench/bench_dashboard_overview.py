"""Benchmark: the first render of Обзор (the dashboard's start page) in headless Chromium.

1. A store: ``--url`` of an existing one (its files under ``--tmp``), or a fresh PostgreSQL database
   seeded as the dashboard tests seed theirs (``tests/dashboard_support.seed_store``: two tiny real
   trainings, one promoted, and two retrainings with drift checks; dropped afterwards).
2. ``python -m backend.dashboard`` on a free port (it warms its services up in the background).
3. Debian's ``chromium``, ``--settle`` seconds after the server answers its health check: the
   server's first browser session on ``/``, then ``--repeat`` new sessions each on ``/`` and on
   ``/help`` (a page without store calls: Streamlit's own cost). For each: seconds to the heading
   and to the end of the script (every table drawn).
   The difference between the two pages is Обзор's own cost; the rest is Streamlit's (frontend,
   websocket, fonts) and grows with the machine's load.

    .venv/bin/python bench/bench_dashboard_overview.py                  # writes bench/results/dashboard_overview.md
    .venv/bin/python bench/bench_dashboard_overview.py --url postgresql://postgres@127.0.0.1:5432/db --tmp /tmp/store
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, temp_postgres_database, write_report

sys.path.insert(0, str(REPO / "tests"))

logger = logging.getLogger("bench_dashboard_overview")

TARGET_S = 2.0
RENDERED = "[data-testid=stApp][data-test-script-state=notRunning]"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
PAGES = (("/", "Обзор"), ("/help", "Справка"))


@contextlib.contextmanager
def store(url: str | None, tmp: str | None) -> Iterator[tuple[str, Path, float | None]]:
    """(url, folder of its artifacts and caches, seconds spent seeding or None)."""
    if url:
        yield url, Path(tmp or tempfile.mkdtemp(prefix="bench_overview_")), None
        return
    from dashboard_support import seed_store

    with temp_postgres_database("bench_overview") as fresh, tempfile.TemporaryDirectory(prefix="bench_overview_") as d:
        seed = seed_store(fresh, Path(d))
        seconds = seed.seconds
        seed.services.close()
        yield fresh, Path(d), seconds


def server_env(url: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ML_", "MLFLOW_"))}
    env.update(
        {
            "MLFLOW_TRACKING_URI": url,
            "MLFLOW_ARTIFACT_LOCATION": str(tmp / "artifacts"),
            "ML_JOBS_DATABASE_URL": url,
            "ML_HUEY_SQLITE_PATH": str(tmp / "huey.db"),
            "ML_OUTPUT_DIR": str(tmp / "outputs"),
            "ML_CACHE_DIR": str(tmp / "cache"),
            "ML_DEVICE": "cpu",
        }
    )
    return env


def open_page(browser: object, base: str, path: str, heading: str) -> tuple[float, float]:
    """A new browser session on ``path``: (seconds to ``heading``, seconds to the script's end)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="ru-RU")  # type: ignore[attr-defined]
    try:
        t0 = time.perf_counter()
        page.goto(base + path)
        page.get_by_role("heading", name=heading).first.wait_for(timeout=120_000)
        to_heading = time.perf_counter() - t0
        page.wait_for_selector(RENDERED, timeout=120_000)
        return to_heading, time.perf_counter() - t0
    finally:
        page.close()


def measure(
    url: str, tmp: Path, repeat: int, settle: float
) -> tuple[tuple[float, float], dict[str, list[tuple[float, float]]]]:
    from dashboard_support import chromium_path, free_port
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise RuntimeError("chromium not installed (apt-get install -y chromium)")
    port = free_port()
    log_path = tmp / "streamlit.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.dashboard", "--port", str(port), "--address", "127.0.0.1"],
            cwd=REPO,
            env=server_env(url, tmp),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    warm: dict[str, list[tuple[float, float]]] = {path: [] for path, _ in PAGES}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start:\n{log_path.read_text()[-2000:]}") from None
                time.sleep(0.2)
        time.sleep(settle)  # the server imports MLflow meanwhile (context.warm_up)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
            cold = open_page(browser, base, "/", "Обзор")
            for _ in range(repeat):
                for path, heading in PAGES:
                    warm[path].append(open_page(browser, base, path, heading))
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return cold, warm


def row(what: str, values: list[tuple[float, float]]) -> str:
    heads, ends = [h for h, _ in values], [e for _, e in values]
    return (
        f"| {what} | {len(values)} | {statistics.median(heads):.2f} | {max(heads):.2f} | "
        f"{statistics.median(ends):.2f} | {max(ends):.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--url", help="an existing store (else a fresh one is seeded and dropped)")
    parser.add_argument("--tmp", help="the existing store's folder (artifacts, caches)")
    parser.add_argument("--repeat", type=int, default=5, help="new sessions per page on the warm server")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds between the cold session and the warm ones")
    parser.add_argument("--out", default="dashboard_overview", help="report name under bench/results/")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("streamlit", "httpx", "alembic", "backend"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    with store(args.url, args.tmp) as (url, tmp, seeded):
        cold, warm = measure(url, tmp, args.repeat, args.settle)
    overview = [e for _, e in [cold, *warm["/"]]]
    heads = [h for h, _ in [cold, *warm["/"]]]
    helps = [e for _, e in warm["/help"]]
    lines = [
        "Обзор (`/`) over a store seeded like the dashboard tests' (two tiny trainings, one in production, two "
        "retrainings with drift checks)"
        + (f", seeded in {seeded:.0f} s" if seeded else "")
        + ". Each measurement is a new browser session (a new tab): Streamlit runs the page's script for it. "
        "Seconds from `goto` to the page's heading and to the end of the script (every table drawn).",
        "",
        "| what | sessions | heading, median | heading, max | script end, median | script end, max |",
        "|---|---:|---:|---:|---:|---:|",
        row(f"Обзор, the server's first session ({args.settle:g} s after its start)", [cold]),
        row("Обзор, later sessions", warm["/"]),
        row("Справка (no store calls: Streamlit's own cost)", warm["/help"]),
        "",
        f"Обзор's own share (its script's store calls and tables): the later sessions' median end minus "
        f"Справка's: {statistics.median(e for _, e in warm['/']) - statistics.median(helps):+.2f} s.",
        "",
        f"Target: the first render of Обзор under {TARGET_S:.0f} s on a warm server. The heading (the page "
        f"rendered and readable): median {statistics.median(heads):.2f} s, "
        f"{'met' if statistics.median(heads) < TARGET_S else 'NOT met'}; the script's end (every table drawn): "
        f"median {statistics.median(overview):.2f} s, {'met' if statistics.median(overview) < TARGET_S else 'NOT met'}"
        f" (Справка, which reads nothing from the store, ends at {statistics.median(helps):.2f} s on this machine).",
    ]
    path = write_report(args.out, "Dashboard: first render of Обзор", "\n".join(lines))
    print("\n".join(lines))
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
