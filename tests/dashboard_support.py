"""Helpers of the dashboard tests (tests/test_dashboard_*.py) and bench/bench_dashboard.py.

One PostgreSQL database per test session holds the MLflow store and the jobs table, seeded through
the services the way a user would fill it: two real tiny trainings (the first promoted by the gate,
the second registered only) and two real retrainings by the pipeline (triggers ``manual`` and
``scheduled``, each with its drift check). The database is dropped when the session ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_support import TOKEN, database, service_settings

from backend.dashboard import i18n
from backend.dashboard.context import SERVICES_KEY

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "backend" / "dashboard" / "app.py"
MODEL = "hybrid_cnn_lstm"

#: A real training small enough for tests: three epochs (so there are learning curves) on two days of ETH/BTC.
TINY: dict[str, Any] = {
    "epochs": 3,
    "date_range": 2,
    "window": 16,
    "horizon": 4,
    "batch_size": 256,
    "symbols": ["ETH/BTC"],
    "data_source": "sample",
    "model": {"conv_channels": [16], "lstm_hidden": 16, "lstm_layers": 1},
}
TINY_RETRAIN: dict[str, Any] = {
    "trigger": "manual",
    "force": True,
    "data_source": "sample",
    "symbols": ["ETH/BTC"],
    "train_days": 2.0,
    "epochs": 1,
    "batch_size": 256,
    "n_folds": 1,
    "model": {"conv_channels": [16], "lstm_hidden": 16, "lstm_layers": 1},
}


@dataclass
class Seed:
    url: str
    tmp: Path
    services: Any
    first_run_id: str
    second_run_id: str
    retrain_run_id: str
    seconds: float

    def settings(self, **overrides: Any) -> Any:
        return service_settings(self.url, self.tmp, **overrides)


def seed_store(url: str, tmp: Path, token: str | None = TOKEN) -> Seed:
    """Fill an empty database through the services (see the module docstring)."""
    from backend.services import RetrainParams, Services, TrainingParams
    from backend.services.job_runner import JobRunner

    t0 = time.perf_counter()
    settings = service_settings(url, tmp, token=token)
    services = Services.from_settings(settings)
    runner = JobRunner(settings, services.jobs.store)

    def train(**extra: Any) -> str:
        job = services.jobs.submit_training(TrainingParams(**{**TINY, **extra}))
        assert runner(job.id) == "done"
        done = services.jobs.get_job(job.id)
        assert done.status == "finished", done.error
        return str(done.run_id)

    first = train(run_name="baseline_lr1e-3", auto_promote=True, min_accuracy_for_promotion=0.0)
    second = train(
        run_name="wider_lr3e-3", lr=0.003, model={"conv_channels": [16], "lstm_hidden": 24, "lstm_layers": 1}
    )
    retrain_ids = []
    for trigger in ("manual", "scheduled"):
        job = services.retraining.submit(RetrainParams(**{**TINY_RETRAIN, "trigger": trigger}))
        assert runner(job.id) == "done"
        retrain = services.jobs.get_job(job.id)
        assert retrain.status == "finished", retrain.error
        retrain_ids.append(str(retrain.run_id))
    seconds = time.perf_counter() - t0
    logger.info("dashboard test store seeded in %.1f s", seconds)
    return Seed(
        url=url,
        tmp=tmp,
        services=services,
        first_run_id=first,
        second_run_id=second,
        retrain_run_id=retrain_ids[-1],
        seconds=seconds,
    )


_SEED: dict[str, Seed] = {}


def session_seed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Seed:
    """The session's seeded store: built by the first test module that asks, dropped at the end."""
    if "seed" not in _SEED:
        tmp = tmp_path_factory.mktemp("dashboard")
        ctx = database("test_dash")
        url = ctx.__enter__()

        def drop() -> None:
            seed = _SEED.pop("seed", None)
            if seed is not None:
                seed.services.close()
            ctx.__exit__(None, None, None)

        request.config.add_cleanup(drop)
        _SEED["seed"] = seed_store(url, tmp)
    return _SEED["seed"]


# -- AppTest -------------------------------------------------------------------------------------


def open_page(
    services: Any, page: str | None = None, lang: str = "ru", query: dict[str, str] | None = None, timeout: float = 60
) -> Any:
    """An AppTest of the dashboard over ``services``, on ``page`` (a key of ``widgets.PAGE_PATHS``)."""
    from streamlit.testing.v1 import AppTest

    from backend.dashboard.widgets import PAGE_PATHS

    at = AppTest.from_file(str(APP), default_timeout=timeout)
    at.session_state[SERVICES_KEY] = services
    at.session_state[i18n.LANG_KEY] = lang
    at.run()
    if page is not None and page != "overview":
        at.switch_page(PAGE_PATHS[page])
    if query:
        for key, value in query.items():
            at.query_params[key] = value
    if (page is not None and page != "overview") or query:
        at.run()
    return at


#: Element types that carry data (tables, charts, code), not interface text.
DATA_TYPES = frozenset(
    {
        "dataframe",
        "arrow_data_frame",
        "table",
        "json",
        "code",
        "plotly_chart",
        "vega_lite_chart",
        "arrow_table",
        "deck_gl_json_chart",
        "graphviz_chart",
        "image",
        "imgs",
        "html",
    }
)


def interface_texts(at: Any) -> list[str]:
    """Every interface string the run rendered: headings, markdown, captions, alerts, widget labels,
    help, placeholders and options, tab and expander labels, metric labels, page links."""
    out: list[str] = []

    def add(value: Any) -> None:
        if isinstance(value, str) and value.strip():
            out.append(value)

    def walk(node: Any) -> None:
        children = getattr(node, "children", None)
        node_type = getattr(node, "type", "")
        if isinstance(children, dict):  # a block: tab, expander, column, form...
            with contextlib.suppress(Exception):  # blocks without a label
                add(node.label)  # tabs, expanders, status blocks
            for child in children.values():
                walk(child)
            return
        if node_type in DATA_TYPES:
            return
        for attr in ("label", "help", "placeholder", "body", "text"):
            with contextlib.suppress(Exception):  # element without that field
                add(getattr(node.proto, attr))
        for attr in ("options", "captions"):
            try:
                for option in getattr(node.proto, attr):
                    add(option if isinstance(option, str) else getattr(option, "content", None))
            except Exception:  # noqa: BLE001
                pass
        if node_type in ("metric",):
            add(getattr(node.proto, "body", None))

    walk(at._tree)
    return out


def foreign_fragments(lang: str) -> set[str]:
    """Pieces of the *other* language's texts that cannot occur in ``lang``'s interface: each text
    differing between the languages, cut at its placeholders, pieces of at least 4 characters."""
    other = "en" if lang == "ru" else "ru"
    out: set[str] = set()
    for key, text in i18n.TEXTS[other].items():
        if text == i18n.TEXTS[lang][key]:
            continue
        for piece in _pieces(text):
            # A lone lowercase word ("running", "scheduled") is also an identifier the data holds
            # (statuses, tag values, run names); phrases and capitalised words are interface text.
            lone_identifier = " " not in piece and piece.islower()
            if len(piece) >= 4 and piece not in i18n.TEXTS[lang][key] and not lone_identifier:
                out.add(piece)
    return out


def _pieces(text: str) -> list[str]:
    import string

    parts: list[str] = []
    for literal, _field, _spec, _conv in string.Formatter().parse(text):
        parts.extend(p.strip(" .,:;·—()*`\n") for p in literal.split("\n"))
    return [p for p in parts if p]


def assert_one_language(at: Any, lang: str) -> None:
    """No interface string of ``at`` holds a piece of the other language's table."""
    texts = interface_texts(at)
    assert texts, "nothing rendered"
    rendered = "\n".join(texts)
    leaks = sorted(p for p in foreign_fragments(lang) if re.search(rf"(?<!\w){re.escape(p)}(?!\w)", rendered))
    assert not leaks, f"{lang} page shows the other language's strings: {leaks[:10]}"


def assert_ok(at: Any) -> None:
    """The run raised nothing, and the app's guard reported no unexpected error either."""
    assert not at.exception, [e.value for e in at.exception]
    unexpected = {i18n.t("error.unexpected", lang) for lang in i18n.LANGUAGES}
    assert not [e.value for e in at.error if e.value in unexpected], [c.value for c in at.code]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_dashboard(env: dict[str, str], log: Path, timeout_s: float = 60.0) -> Iterator[str]:
    """``python -m backend.dashboard`` on a free loopback port with ``env``, its output in ``log``: yields the
    base URL once ``/_stcore/health`` answers, and always stops the server."""
    import subprocess
    import sys
    import urllib.request

    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.dashboard", "--port", str(port), "--address", "127.0.0.1"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def chromium_path() -> str | None:
    for path in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if path and Path(path).exists():
            return path
    return None
