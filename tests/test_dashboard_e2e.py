"""The dashboard end to end: a real ``streamlit run`` (``python -m backend.dashboard``) on a free
loopback port over the seeded PostgreSQL store, driven by headless Chromium (Debian's ``chromium``,
no browser download). Each page is opened, waited for (its Russian heading, then the script's end)
and photographed at 1280x800.

Screenshots go to a temporary folder; ``DASHBOARD_SCREENSHOTS=docs/screenshots`` writes the ones the
README shows (``make screenshots``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import REPO, Seed, chromium_path, running_dashboard, session_seed

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

logger = logging.getLogger(__name__)

VIEWPORT = {"width": 1280, "height": 800}
#: Chromium flags for a container: no sandbox (root), no GPU, nothing phoning home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
RENDERED = "[data-testid=stApp][data-test-script-state=notRunning]"


@pytest.fixture(scope="module")
def seed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return session_seed(request, tmp_path_factory)


def dashboard_env(seed: Seed) -> dict[str, str]:
    """The environment a deployed dashboard would have: the services' settings as variables."""
    settings = seed.settings()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ML_", "MLFLOW_"))}
    env.update(
        {
            "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
            "MLFLOW_ARTIFACT_LOCATION": settings.mlflow_artifact_location,
            "ML_JOBS_DATABASE_URL": settings.jobs_database_url.get_secret_value(),
            "ML_HUEY_SQLITE_PATH": settings.huey_sqlite_path,
            "ML_OUTPUT_DIR": settings.output_dir,
            "ML_CACHE_DIR": settings.cache_dir,
            "ML_API_TOKEN": settings.api_token.get_secret_value() if settings.api_token else "",
            "ML_DEVICE": "cpu",
        }
    )
    return env


@pytest.fixture(scope="module")
def server(seed: Seed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("dashboard_server") / "streamlit.log"
    with running_dashboard(dashboard_env(seed), log) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        pytest.fail("Debian's chromium is not installed (apt-get install -y chromium); no browser is downloaded")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("DASHBOARD_SCREENSHOTS")
    path = (
        (REPO / target)
        if target and not Path(target).is_absolute()
        else Path(target)
        if target
        else tmp_path_factory.mktemp("screenshots")
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_and_wait(page: Any, url: str, heading: str, timeout_ms: int = 60_000) -> float:
    """Go to ``url``; wait for ``heading`` and for the script to finish; seconds to the heading."""
    t0 = time.perf_counter()
    page.goto(url)
    page.get_by_role("heading", name=heading).first.wait_for(timeout=timeout_ms)
    seconds = time.perf_counter() - t0
    page.wait_for_selector(RENDERED, timeout=timeout_ms)
    page.wait_for_timeout(300)  # charts draw after the script ends
    assert page.locator("[data-testid=stException]").count() == 0, f"{url}: the page raised"
    assert page.get_by_text("Page not found").count() == 0, f"{url}: no such page"
    return seconds


def scroll_to(page: Any, text: str) -> None:
    """Bring the element showing ``text`` to the top of the view."""
    page.get_by_text(text, exact=True).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(250)


def pages(seed: Seed) -> list[tuple[str, str, list[tuple[str, str | None]]]]:
    """(path and query, Russian heading to wait for, [(screenshot name, text to scroll to or None)])."""
    pair = f"{seed.first_run_id},{seed.second_run_id}"
    return [
        ("/", "Обзор", [("overview", None), ("overview_runs", "Последние запуски")]),
        ("/runs", "Эксперименты и запуски", [("runs", None)]),
        (f"/runs?run={seed.first_run_id}", "Запуск baseline_lr1e-3", [("run", "Запуск baseline_lr1e-3")]),
        (
            f"/compare?runs={pair}",
            "Сравнение запусков",
            [("compare", "Параметры"), ("compare_charts", "Истории метрик")],
        ),
        ("/models", "Модели", [("models", None), ("models_bot", "Для бота")]),
        ("/training", "Обучение модели", [("training_form", None)]),
        ("/retraining", "Переобучение и дрейф", [("retraining", None), ("drift", "Отчёт о дрейфе")]),
        (
            "/leaderboard",
            "Сравнение моделей",
            [("leaderboard", None), ("leaderboard_tests", "Парные тесты против базовых стратегий")],
        ),
        ("/help", "Справка", [("help", None), ("help_filters", "Фильтры запусков")]),
    ]


#: Sidebar titles of the pages reached by a click (no reload) rather than by a new URL.
NAV_TITLES = {
    "/runs": "Эксперименты и запуски",
    "/models": "Модели",
    "/training": "Обучение",
    "/retraining": "Переобучение и дрейф",
    "/help": "Справка",
}


def click_and_wait(page: Any, title: str, heading: str, timeout_ms: int = 60_000) -> float:
    """Open a page from the sidebar (the app stays loaded); seconds to its heading."""
    t0 = time.perf_counter()
    page.locator("[data-testid=stSidebarNav]").get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", name=heading).first.wait_for(timeout=timeout_ms)
    seconds = time.perf_counter() - t0
    page.wait_for_selector(RENDERED, timeout=timeout_ms)
    page.wait_for_timeout(300)
    assert page.locator("[data-testid=stException]").count() == 0, f"{title}: the page raised"
    return seconds


@pytest.fixture(scope="module")
def comparison(seed: Seed) -> Any:
    """A small real comparison of the four families in the seed's store (the page shows the latest)."""
    from backend.ml_engine.config import SAMPLE_DATA_DIR
    from backend.ml_engine.leaderboard import LeaderboardConfig, run_leaderboard

    settings = seed.settings()
    config = LeaderboardConfig.from_settings(
        settings,
        data=str(SAMPLE_DATA_DIR),
        symbols=["ETH/BTC"],
        date_range=3.0,
        window=16,
        horizon=4,
        folds=2,
        epochs=1,
        n_boot=200,
    )
    return run_leaderboard(config, settings=settings)


def test_every_page_renders_in_chromium(server: str, browser: Any, seed: Seed, shots: Path, comparison: Any) -> None:
    page = browser.new_page(viewport=VIEWPORT, locale="ru-RU")
    timings: dict[str, float] = {}
    for path, heading, views in pages(seed):
        if path in NAV_TITLES:
            timings[path] = click_and_wait(page, NAV_TITLES[path], heading)
        else:
            timings[path] = open_and_wait(page, server + path, heading)
        for name, anchor in views:
            if anchor:
                scroll_to(page, anchor)
            file = shots / f"{name}.png"
            page.screenshot(path=str(file))
            assert file.stat().st_size > 10_000, f"{file} looks empty"
    logger.info("time to heading: %s", {k: round(v, 2) for k, v in timings.items()})
    page.close()


def test_language_switch_in_the_browser(server: str, browser: Any, shots: Path) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    open_and_wait(page, server + "/", "Обзор")
    page.get_by_text("EN", exact=True).click()
    page.get_by_role("heading", name="Overview").first.wait_for(timeout=30_000)
    page.wait_for_selector(RENDERED, timeout=30_000)
    assert page.get_by_role("heading", name="Обзор").count() == 0
    page.get_by_role("link", name="Models").first.click()  # the sidebar, in English now
    page.get_by_role("heading", name="Versions").first.wait_for(timeout=30_000)
    page.wait_for_selector(RENDERED, timeout=30_000)
    page.wait_for_timeout(400)
    assert page.get_by_role("heading", name="Версии").count() == 0
    page.screenshot(path=str(shots / "models_en.png"))
    page.close()


def test_training_from_the_browser_followed_live_to_its_run(server: str, browser: Any, seed: Seed, shots: Path) -> None:
    """Fill the form, submit with the token; a worker runner trains the job meanwhile; the page's
    polling fragment shows it finish without a reload and links the run."""
    import threading

    from api_support import TOKEN

    from backend.services.job_runner import JobRunner

    page = browser.new_page(viewport=VIEWPORT, locale="ru-RU")
    open_and_wait(page, server + "/training", "Обучение модели")
    for label, value in (
        ("Имя запуска", "browser_run"),
        ("Эпохи", "1"),
        ("Размер батча", "256"),
        ("Последние N дней данных", "2"),
        ("Пары через запятую", "ETH/BTC"),
        ("Окно, свечей", "16"),
        ("Горизонт метки, свечей", "4"),
        ("Токен API", TOKEN),
    ):
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_text("Параметры модели hybrid_cnn_lstm (необязательно)").click()
    for label, value in (
        ("conv_channels — каналы свёрток по блокам", "16"),
        ("lstm_hidden — нейронов LSTM", "16"),
        ("lstm_layers — слоёв LSTM", "1"),
    ):
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Запустить обучение").click()
    page.get_by_text("поставлена в очередь").first.wait_for(timeout=30_000)

    job = seed.services.jobs.list_jobs(kind="train", status="queued", limit=1).data[0]
    assert job.params["run_name"] == "browser_run" and job.params["epochs"] == 1
    worker = threading.Thread(target=JobRunner(seed.services.settings, seed.services.jobs.store), args=(job.id,))
    worker.start()
    try:
        page.get_by_text("Обучение завершено.").first.wait_for(timeout=180_000)  # by polling, no reload
    finally:
        worker.join(timeout=180)
    done = seed.services.jobs.get_job(job.id)
    assert done.status == "finished" and done.run_id
    link = page.get_by_role("link", name=f"Открыть запуск {done.run_id[:12]}")
    assert f"run={done.run_id}" in (link.get_attribute("href") or "")
    page.wait_for_selector(RENDERED, timeout=30_000)
    page.wait_for_timeout(400)
    scroll_to(page, "Ход обучения")
    page.screenshot(path=str(shots / "training.png"))
    link.click()
    page.get_by_role("heading", name="Запуск browser_run").first.wait_for(timeout=30_000)
    page.close()
