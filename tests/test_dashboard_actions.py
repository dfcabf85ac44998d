"""Dashboard actions answer where the eye is, and the Модели page tells a bot developer what to load.

* In headless Chromium at 1400x1000 over a real ``streamlit run`` (the session-seeded PostgreSQL store
  of ``dashboard_support``): the button is scrolled to the bottom edge of the screen (the worst place),
  clicked, and the action's result — the token error, the gate's refusal with its checks, the training
  form's token error — must lie inside the viewport, in the feedback container under that button.
* Under AppTest: the result stays until the next action (another widget's rerun keeps it, the next
  action replaces it), and the "Для бота" panel shows the real model name and version in its URIs and
  code, the version's feature names in order, links into the MLflow UI and the version's plots. On
  Мониторинг (recompute) and Сравнение моделей (the form, the job's cancel) the token error, the invalid
  form and the queued job each show in that button's feedback container and replace one another.
* The leaderboard's and tuning's run links go to ``ML_MLFLOW_UI_URL``, whatever the tracking store is.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from api_support import TOKEN
from dashboard_support import MODEL, Seed, assert_ok, assert_one_language, open_page, session_seed
from test_dashboard_e2e import (
    RENDERED,
    browser as browser,
    open_and_wait,
    server as server,
)

from backend.dashboard.i18n import t
from backend.dashboard.widgets import feedback_key

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

VIEWPORT = {"width": 1400, "height": 1000}
BAD_TOKEN = t("access.bad_token", "ru")


@pytest.fixture(scope="module")
def seed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return session_seed(request, tmp_path_factory)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    p = browser.new_page(viewport=VIEWPORT, locale="ru-RU")
    yield p
    p.close()


# -- helpers -------------------------------------------------------------------------------------


def feedback_box(page: Any, page_prefix: str, slot: str) -> Any:
    return page.locator(f".st-key-{feedback_key(page_prefix, slot)}")


def wait_rendered(page: Any) -> None:
    page.wait_for_timeout(300)  # the rerun starts
    page.wait_for_selector(RENDERED, timeout=60_000)
    page.wait_for_timeout(600)  # the result draws, the view settles


def click_at_the_bottom_edge(page: Any, button: Any) -> None:
    """Scroll ``button`` to the bottom of the screen, as a user reaching it from above would, and click."""
    button.evaluate("b => b.scrollIntoView({block: 'end'})")
    page.wait_for_timeout(250)
    box = button.bounding_box()
    assert box and box["y"] + box["height"] > VIEWPORT["height"] - 120, box  # really at the bottom edge
    button.click()


def assert_in_viewport(box: Any, what: str) -> None:
    assert box is not None, f"{what}: not rendered"
    assert box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"], f"{what} is off-screen: {box}"
    assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT["width"], f"{what} is off-screen: {box}"


def check_confirm(page: Any, text: str) -> None:
    page.get_by_text(text).first.click()
    wait_rendered(page)


def feedback_block(at: Any, page_prefix: str, slot: str) -> Any | None:
    """The AppTest block of a feedback container (its id ends with the container's key)."""
    key = feedback_key(page_prefix, slot)

    def walk(node: Any) -> Any | None:
        children = getattr(node, "children", None)
        if not isinstance(children, dict):
            return None
        if str(getattr(getattr(node, "proto", None), "id", "")).endswith("-" + key):
            return node
        for child in children.values():
            found = walk(child)
            if found is not None:
                return found
        return None

    return walk(at._tree)


def texts_in(block: Any) -> list[str]:
    out: list[str] = []

    def walk(node: Any) -> None:
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for child in children.values():
                walk(child)
            return
        value = getattr(node, "value", None)
        if isinstance(value, str):
            out.append(value)

    walk(block)
    return out


# -- in the browser ------------------------------------------------------------------------------


def test_promote_without_a_token_answers_under_the_button_on_screen(server: str, page: Any, seed: Seed) -> None:
    models = seed.services.models
    before = models.get_model(MODEL).production_version
    history = models.history(MODEL).count
    open_and_wait(page, f"{server}/models?model={MODEL}", "Модели")
    check_confirm(page, "Подтверждаю: перевести production")
    button = page.get_by_role("button", name=t("models.promote_button", "ru"), exact=True)
    click_at_the_bottom_edge(page, button)
    box = feedback_box(page, "models.", "promote")
    box.wait_for(timeout=60_000)
    wait_rendered(page)
    assert BAD_TOKEN in box.inner_text()
    assert_in_viewport(box.bounding_box(), "the token error")
    # said once, under the button: not also at the top of the page
    assert page.get_by_text(BAD_TOKEN).count() == 1
    assert models.get_model(MODEL).production_version == before and models.history(MODEL).count == history


def test_a_gate_refusal_is_shown_with_its_checks_under_the_button(server: str, page: Any, seed: Seed) -> None:
    models = seed.services.models
    model = models.get_model(MODEL)
    before = model.production_version
    target = next(v.version for v in model.versions if v.version != before)  # the form's default choice
    models.store.archive(MODEL, target, reason="test: a refusal", actor="tests")
    try:
        open_and_wait(page, f"{server}/models?model={MODEL}", "Модели")
        page.get_by_label(t("access.token", "ru"), exact=True).fill(TOKEN)
        check_confirm(page, f"Подтверждаю: перевести production модели {MODEL} на версию v{target}")
        button = page.get_by_role("button", name=t("models.promote_button", "ru"), exact=True)
        click_at_the_bottom_edge(page, button)
        box = feedback_box(page, "models.", "promote")
        box.wait_for(timeout=60_000)
        wait_rendered(page)
        text = box.inner_text()
        assert t("models.refused", "ru") in text and "версия в архиве" in text, text
        assert_in_viewport(box.bounding_box(), "the gate's refusal")
        assert models.get_model(MODEL).production_version == before
    finally:
        models.store.client.delete_model_version_tag(MODEL, str(target), "archived")


def test_starting_a_training_without_a_token_answers_under_the_form_on_screen(
    server: str,
    page: Any,
    seed: Seed,
) -> None:
    jobs = seed.services.jobs.list_jobs(kind="train", limit=500).count
    open_and_wait(page, f"{server}/training", "Обучение модели")
    button = page.get_by_role("button", name=t("training.submit", "ru"), exact=True)
    click_at_the_bottom_edge(page, button)
    box = feedback_box(page, "training.", "submit")
    box.wait_for(timeout=60_000)
    wait_rendered(page)
    assert BAD_TOKEN in box.inner_text()
    assert_in_viewport(box.bounding_box(), "the training form's token error")
    assert seed.services.jobs.list_jobs(kind="train", limit=500).count == jobs


# -- under AppTest -------------------------------------------------------------------------------


def _promote_without_token(at: Any) -> None:
    at.checkbox(key="models.promote_confirm").check().run()
    at.button(key="models.promote_button").click().run()


def test_the_result_stays_until_the_next_action_and_only_under_its_own_button(seed: Seed) -> None:
    at = open_page(seed.services, "models", query={"model": MODEL})
    _promote_without_token(at)
    assert_ok(at)
    promote = feedback_block(at, "models.", "promote")
    assert promote is not None and BAD_TOKEN in texts_in(promote)
    assert [e.value for e in at.error] == [BAD_TOKEN]  # nowhere else on the page

    at.text_input(key="models.rollback_reason").input("другая правка").run()  # a rerun, not an action
    promote = feedback_block(at, "models.", "promote")
    assert promote is not None and BAD_TOKEN in texts_in(promote)

    at.checkbox(key="models.rollback_confirm").check().run()
    at.button(key="models.rollback_button").click().run()  # the next action replaces it
    assert feedback_block(at, "models.", "promote") is None
    rollback = feedback_block(at, "models.", "rollback")
    assert rollback is not None and BAD_TOKEN in texts_in(rollback)
    assert [e.value for e in at.error] == [BAD_TOKEN]


def test_the_for_the_bot_panel_names_the_real_model_version_features_and_links(seed: Seed) -> None:
    models = seed.services.models
    model = models.get_model(MODEL)
    version = next(v for v in model.versions if v.version != model.production_version and v.run_id)
    v = version.version
    at = open_page(seed.services, "models", query={"model": MODEL, "version": str(v)})
    assert_ok(at)
    assert t("models.tab.bot", "ru") == "Для бота"
    assert "Для бота" in [tab.label for tab in at.tabs]

    codes = [c.value for c in at.code]
    assert f"models:/{MODEL}@production" in codes and f"models:/{MODEL}/{v}" in codes
    predictor = next(c for c in codes if "from backend.ml_engine.predictor import Predictor" in c)
    assert f'Predictor("{MODEL}")' in predictor
    assert f'Predictor.from_model_uri("models:/{MODEL}/{v}")' in predictor
    assert "pred = predictor.predict(candles)" in predictor
    pyfunc = next(c for c in codes if "mlflow.pyfunc.load_model" in c)
    assert f'mlflow.pyfunc.load_model("models:/{MODEL}/{v}")' in pyfunc
    curl = next(c for c in codes if c.lstrip("# ").startswith("candles.json") or "curl " in c)
    assert "curl -s -X POST http://127.0.0.1:8000/api/ml-management/predict" in curl
    assert f'"model_name": "{MODEL}"' in curl
    assert not [c for c in codes if "{" in c and re.search(r"\{(name|version|rows)\}", c)]  # nothing unfilled
    # the version is not in production: the page says what Predictor(name) and /predict serve instead
    assert t("models.bot.not_production", "ru", name=MODEL, production=model.production_version) in [
        i.value for i in at.info
    ]

    # the features in the order the version's pipeline computes them, and the window they make
    pipeline = models.store.read_metadata(f"models:/{MODEL}/{v}")["pipeline"]
    expected = list(pipeline["feature_names"])
    assert len(expected) > 5
    table = next(d.value for d in at.dataframe if t("col.feature", "ru") in d.value.columns)
    assert list(table[t("col.feature", "ru")]) == expected
    assert list(table["#"]) == list(range(len(expected)))
    schema = t(
        "models.bot.schema_text",
        "ru",
        rows=pipeline["min_history_rows"],
        window=pipeline["window"],
        n=len(expected),
    )
    assert schema in [m.value for m in at.markdown]

    # links into the MLflow UI (ML_MLFLOW_UI_URL) and the version's plots, viewable full size
    base = seed.services.settings.mlflow_ui_url
    experiment = models.store.client.get_run(version.run_id).info.experiment_id
    links = "\n".join(m.value for m in at.markdown)
    assert f"({base}/#/models/{MODEL}/versions/{v})" in links
    assert f"({base}/#/experiments/{experiment}/runs/{version.run_id})" in links
    captions = {c for image in at.image for c in image.captions}
    assert {
        t(f"models.bot.plot.{k}", "ru") for k in ("confusion_matrix", "equity_curve", "learning_curves")
    } <= captions
    downloads = {b.label for b in at.download_button}
    assert {"Скачать confusion_matrix.png", "Скачать equity_curve.png", "Скачать learning_curves.png"} <= downloads
    assert_one_language(at, "ru")


def test_the_panel_in_english(seed: Seed) -> None:
    at = open_page(seed.services, "models", lang="en", query={"model": MODEL})
    assert_ok(at)
    assert "For the bot" in [tab.label for tab in at.tabs]
    assert any("# the production version, follows the alias" in c.value for c in at.code)
    assert_one_language(at, "en")


def test_snippets_and_links_are_built_from_the_name_and_version() -> None:
    from backend.api.main import API_PREFIX
    from backend.dashboard.views import models as view

    assert view.API_URL.endswith(API_PREFIX)
    assert view.model_uris("m1", 7) == ("models:/m1@production", "models:/m1/7")
    assert 'Predictor.from_model_uri("models:/m1/7")' in view.predictor_snippet("m1", 7, 75, "5m")
    assert "75" in view.predictor_snippet("m1", 7, 75, "5m")
    assert 'load_model("models:/m1/7")' in view.pyfunc_snippet("m1", 7, "sqlite:///x.db")
    assert "mlflow models serve -m models:/m1/7" in view.serve_snippet("m1", 7)
    assert view.mlflow_model_link("http://ui:5000/", "a b", 3) == "http://ui:5000/#/models/a%20b/versions/3"
    assert view.mlflow_run_link("http://ui:5000", "abc", "4") == "http://ui:5000/#/experiments/4/runs/abc"
    assert view.mlflow_run_link("http://ui:5000", "abc", None) == "http://ui:5000/#/runs/abc"


def test_the_mlflow_ui_address_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from backend.services.settings import ServiceSettings

    monkeypatch.delenv("ML_MLFLOW_UI_URL", raising=False)
    assert ServiceSettings(_env_file=None).mlflow_ui_url == "http://127.0.0.1:5000"  # type: ignore[call-arg]
    monkeypatch.setenv("ML_MLFLOW_UI_URL", "https://mlflow.example.org/")
    assert ServiceSettings(_env_file=None).mlflow_ui_url == "https://mlflow.example.org"  # type: ignore[call-arg]
    monkeypatch.setenv("ML_MLFLOW_UI_URL", "mlflow.example.org")
    with pytest.raises(ValidationError):
        ServiceSettings(_env_file=None)  # type: ignore[call-arg]


# -- Мониторинг and Сравнение моделей: the same feedback under their buttons --------------------


def _jobs(services: Any, kind: str) -> set[str]:
    return {j.id for j in services.jobs.list_jobs(kind=kind, limit=500).data}


def _cancel_quietly(services: Any, job_id: str) -> None:
    from backend.services.errors import ConflictError

    with contextlib.suppress(ConflictError):
        services.jobs.cancel_job(job_id)  # leave no queued job behind


def test_recompute_on_monitoring_answers_under_its_button_until_the_next_action(seed: Seed) -> None:
    from backend.dashboard.views import monitoring as view

    services = seed.services
    before = _jobs(services, "monitor")
    at = open_page(services, "monitoring")
    assert feedback_block(at, "monitoring.", "recompute") is None  # nothing before an action
    at.button(key=view.RECOMPUTE_BUTTON).click().run()
    assert_ok(at)
    box = feedback_block(at, "monitoring.", "recompute")
    assert box is not None and BAD_TOKEN in texts_in(box)
    assert [e.value for e in at.error].count(BAD_TOKEN) == 1  # nowhere else on the page
    assert _jobs(services, "monitor") == before

    at.run()  # a rerun, not an action: the answer stays
    box = feedback_block(at, "monitoring.", "recompute")
    assert box is not None and BAD_TOKEN in texts_in(box)

    at.text_input(key=view.TOKEN_KEY).input(TOKEN)
    at.button(key=view.RECOMPUTE_BUTTON).click().run()  # the next action replaces it
    assert_ok(at)
    [job] = [j for j in _jobs(services, "monitor") if j not in before]
    try:
        box = feedback_block(at, "monitoring.", "recompute")
        assert box is not None
        shown = texts_in(box)
        assert t("monitoring.queued", "ru", id=job[:12]) in shown and BAD_TOKEN not in shown
        assert BAD_TOKEN not in [e.value for e in at.error]
        at.run()
        box = feedback_block(at, "monitoring.", "recompute")
        assert box is not None and t("monitoring.queued", "ru", id=job[:12]) in texts_in(box)
    finally:
        _cancel_quietly(services, job)


def test_the_comparison_form_answers_under_its_button_until_the_next_action(seed: Seed) -> None:
    services = seed.services
    before = _jobs(services, "leaderboard")
    at = open_page(services, "leaderboard")
    assert feedback_block(at, "leaderboard.", "submit") is None
    at.button(key="leaderboard.submit").click().run()  # no token
    assert_ok(at)
    box = feedback_block(at, "leaderboard.", "submit")
    assert box is not None and BAD_TOKEN in texts_in(box)
    assert [e.value for e in at.error].count(BAD_TOKEN) == 1
    assert _jobs(services, "leaderboard") == before

    at.multiselect(key="leaderboard.families").set_value([])
    at.button(key="leaderboard.submit").click().run()  # an invalid form: its lines replace the token error
    assert_ok(at)
    box = feedback_block(at, "leaderboard.", "submit")
    assert box is not None
    shown = texts_in(box)
    assert t("leaderboard.invalid", "ru") in shown and f"- {t('leaderboard.pick_family', 'ru')}" in shown
    assert BAD_TOKEN not in shown and BAD_TOKEN not in [e.value for e in at.error]
    assert _jobs(services, "leaderboard") == before

    at.multiselect(key="leaderboard.families").set_value(["logreg"])
    at.text_input(key="leaderboard.token").input(TOKEN)
    at.button(key="leaderboard.submit").click().run()  # queued: said under the button
    assert_ok(at)
    [job] = [j for j in _jobs(services, "leaderboard") if j not in before]
    try:
        assert at.session_state["leaderboard.job"] == job
        box = feedback_block(at, "leaderboard.", "submit")
        assert box is not None
        shown = texts_in(box)
        assert t("leaderboard.queued", "ru", id=job[:12]) in shown and t("leaderboard.invalid", "ru") not in shown

        at.button(key="leaderboard.cancel_button").click().run()  # the next action, another button
        assert_ok(at)
        assert feedback_block(at, "leaderboard.", "submit") is None
        cancel = feedback_block(at, "leaderboard.", "cancel")
        assert cancel is not None and BAD_TOKEN in texts_in(cancel)
        assert [e.value for e in at.error].count(BAD_TOKEN) == 1
        assert services.jobs.get_job(job).status == "queued"

        at.text_input(key="leaderboard.cancel_token").input(TOKEN)
        at.button(key="leaderboard.cancel_button").click().run()
        assert_ok(at)
        assert services.jobs.get_job(job).status == "cancelled"
        cancel = feedback_block(at, "leaderboard.", "cancel")
        assert cancel is not None and t("training.cancel_sent", "ru") in texts_in(cancel)
        assert BAD_TOKEN not in [e.value for e in at.error]
        assert_one_language(at, "ru")
    finally:
        _cancel_quietly(services, job)


def test_leaderboard_and_tuning_link_runs_to_the_mlflow_ui_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from backend.dashboard import context, widgets
    from backend.dashboard.views import leaderboard, models, tuning

    ui = "https://mlflow.example.org:5443"

    def fake(store: str, get_run: Any) -> Any:
        settings = SimpleNamespace(mlflow_ui_url=ui, mlflow_tracking_uri=store)
        return SimpleNamespace(settings=settings, runs=SimpleNamespace(client=SimpleNamespace(get_run=get_run)))

    def found(run_id: str) -> Any:
        return SimpleNamespace(info=SimpleNamespace(experiment_id="7", run_id=run_id))

    def gone(run_id: str) -> Any:
        raise RuntimeError(f"run {run_id} not found")

    # a database as the tracking store (no http): the pages still link, to ML_MLFLOW_UI_URL
    for n, (page, store) in enumerate(
        [(leaderboard, "postgresql://u@h/db"), (tuning, "sqlite:///mlflow.db"), (leaderboard, "http://tracking:5000")]
    ):
        store = f"{store}?case={n}"  # the experiment lookup is cached per store and run
        monkeypatch.setattr(context, "services", lambda s=store: fake(s, found))
        assert page.mlflow_run_url(f"run{n}") == f"{ui}/#/experiments/7/runs/run{n}"
        monkeypatch.setattr(context, "services", lambda s=store: fake(s + "-gone", gone))
        assert page.mlflow_run_url(f"run{n}") == f"{ui}/#/runs/run{n}"  # the direct route
    # one builder for every page: the Для бота panel's
    assert leaderboard.mlflow_run_url is widgets.mlflow_run_url is tuning.mlflow_run_url
    assert models.mlflow_run_link is widgets.mlflow_run_link and models.mlflow_model_link is widgets.mlflow_model_link
