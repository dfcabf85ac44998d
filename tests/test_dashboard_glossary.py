"""What the numbers mean and how to find runs: each metric's tooltip says what it measures, on which
data and what a good value is (different metrics, different texts, both languages); Справка lists the
metrics, the guide's names and the guide's filter examples, each of which finds runs on a store with
real tiny trainings; a filter MLflow refuses is explained in Russian with the fix.

The unit tests need nothing; the store tests use the seeded PostgreSQL store of
``dashboard_support.seed_store`` (two tiny trainings, two retrainings).
"""

from __future__ import annotations

import itertools
import math
import re

import pytest

from backend.dashboard.i18n import TEXTS, t
from backend.dashboard.metric_help import (
    GLOSSARY_METRICS,
    GUIDE_ALIASES,
    MEASURES,
    SPLITS,
    explain,
    metric_help,
)
from backend.dashboard.views.glossary import GUIDE_FILTERS, GUIDE_NAMES
from backend.services.runs import FilterError, FilterHint, diagnose_filter, filter_variant
from backend.services.schemas import RunPublic

CYRILLIC = re.compile(r"[А-Яа-яЁё]")
#: The metrics the pages show as headline numbers, baselines, backtest, curves, drift and tuning.
SHOWN = (
    "test_accuracy",
    "test_f1_macro",
    "backtest_sharpe",
    "backtest_total_return",
    "baseline_majority_accuracy",
    "baseline_previous_direction_accuracy",
    "backtest_buy_and_hold_total_return",
    "backtest_n_trades",
    "val_accuracy",
    "val_f1",
    "val_loss",
    "train_loss",
    "walk_forward_accuracy_mean",
    "psi",
    "ks_pvalue",
    "drift_share",
    "dsr",
    "pbo",
)


# -- tooltips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_tooltips_of_different_metrics_differ(lang: str) -> None:
    texts = {key: metric_help(key, lang) for key in SHOWN}
    generic = f"**{t('glossary.metric.term', lang)}**: {t('glossary.metric.desc', lang)}"
    for key, text in texts.items():
        assert text != generic, f"{key}: the generic sentence"
        assert f"**{key}**" in text, key
        assert bool(CYRILLIC.search(text)) == (lang == "ru"), (key, text)
    for a, b in itertools.combinations(SHOWN, 2):
        assert texts[a] != texts[b], (a, b)
    # what it measures, on which data, what a good value is: three parts in each
    labels = ("**Данные:**", "**Хорошее значение:**") if lang == "ru" else ("**Data:**", "**A good value:**")
    assert all(all(label in text for label in labels) for text in texts.values())


def test_each_headline_metric_names_its_yardstick_and_split() -> None:
    acc = metric_help("test_accuracy", "ru")
    assert "baseline_majority_accuracy" in acc and "тестовая выборка" in acc
    assert "валидационная выборка" in metric_help("val_accuracy", "ru")
    sharpe = metric_help("backtest_sharpe", "ru")
    assert "купить и держать" in sharpe and "30" in sharpe  # MIN_TRADES
    assert "0,2" in metric_help("psi", "ru") and "0,95" in metric_help("dsr", "ru")
    assert "0,5" in metric_help("pbo", "ru")
    # the guide's names say which project key they repeat
    assert "test_accuracy" in metric_help("accuracy", "ru") and "test_f1_macro" in metric_help("test_f1", "en")
    # walk-forward means are named as such, not as a test split
    wf = metric_help("walk_forward_accuracy_mean", "ru")
    assert "Среднее по фолдам" in wf and "скользящая проверка" in wf


def test_every_measure_and_split_has_its_texts_and_every_glossary_metric_is_explained() -> None:
    for m in MEASURES:
        assert f"metric.what.{m}" in TEXTS["ru"] and f"metric.good.{m}" in TEXTS["ru"], m
    for s in SPLITS:
        assert f"metric.split.{s}" in TEXTS["ru"], s
    for key in GLOSSARY_METRICS + SHOWN:
        assert explain(key) is not None, key
    h = explain("baseline_previous_direction_recall_down")
    assert h is not None and (h.measure, h.split, h.cls) == ("recall_class", "baseline_previous_direction", "down")
    assert explain("no_such_metric_at_all") is None
    assert metric_help("no_such_metric_at_all", "ru").startswith("**Метрика**")


def test_the_guides_metric_aliases_are_the_ones_training_logs() -> None:
    from backend.ml_engine.training._outcome import GUIDE_METRIC_ALIASES

    assert GUIDE_ALIASES == GUIDE_METRIC_ALIASES
    assert {(f"metrics.{a}", f"metrics.{k}") for a, k in GUIDE_METRIC_ALIASES.items()} <= set(GUIDE_NAMES)


# -- filter errors ------------------------------------------------------------------------------


def _mlflow_message(filter_string: str) -> str:
    from mlflow.exceptions import MlflowException
    from mlflow.utils.search_utils import SearchUtils

    with pytest.raises(MlflowException) as exc:
        SearchUtils.parse_search_filter(filter_string)
    return str(exc.value.message)


@pytest.mark.parametrize(
    ("bad", "code", "prefix", "fix"),
    [
        ("val_accuracy > 0.3", "missing_prefix", "metrics", "metrics.val_accuracy > 0.3"),
        (
            "val_accuracy > 0.3 AND trainer_epochs = '3'",
            "missing_prefix",
            "metrics",
            "metrics.val_accuracy > 0.3 AND params.trainer_epochs = '3'",
        ),
        ("training_mode = 'manual'", "missing_prefix", "tags", "tags.training_mode = 'manual'"),
        ("params.trainer_epochs = 50", "quote_value", "params", "params.trainer_epochs = '50'"),
        ("tags.trigger = scheduled", "quote_value", "tags", "tags.trigger = 'scheduled'"),
        ("metrics.val_loss < '0.5'", "number_expected", "metrics", "metrics.val_loss < 0.5"),
        ("metrics.val_loss < low", "number_expected", "metrics", None),
        ("metrics.accuracy > 0.8 OR metrics.val_loss < 0.5", "no_or", "", None),
        ("attributes.colour = 'red'", "attribute", "attributes", None),
        ("metrics.val_accuracy >", "clause", "", None),
    ],
)
def test_filter_errors_are_diagnosed_with_the_fix(bad: str, code: str, prefix: str, fix: str | None) -> None:
    hint = diagnose_filter(bad, _mlflow_message(bad))
    assert (hint.code, hint.prefix, hint.fix) == (code, prefix, fix)
    text = t(
        f"runs.filter_error.{code}", "ru", name=hint.key, prefix=hint.prefix, value=hint.value, allowed=hint.allowed
    )
    assert CYRILLIC.search(text) and "{" not in text
    if code == "missing_prefix":
        assert f"добавьте префикс {prefix}." in text and f"`{prefix}.{hint.key}`" in text


def test_a_bare_key_gets_the_prefix_it_has_on_the_store() -> None:
    message = _mlflow_message("data_hash = 'abc'")
    assert diagnose_filter("data_hash = 'abc'", message).prefix == "params"
    known = {"metrics": set(), "params": set(), "tags": {"data_hash"}}
    hint = diagnose_filter("data_hash = 'abc'", message, known)
    assert (hint.prefix, hint.fix) == ("tags", "tags.data_hash = 'abc'")


def test_a_comparator_the_store_refuses_lists_the_allowed_ones() -> None:
    message = "Invalid comparator '>' not one of '{'=', 'ILIKE', 'IS NOT NULL', 'IS NULL', '!=', 'LIKE'}'"
    hint = diagnose_filter("params.trainer_epochs > '3'", message)
    assert (hint.code, hint.prefix, hint.key, hint.value) == ("comparator", "params", "trainer_epochs", ">")
    assert hint.allowed == "=, !=, LIKE, ILIKE, IS NULL, IS NOT NULL"
    assert "Оператор `>`" in t("runs.filter_error.comparator", "ru", **_fields(hint))


def _fields(hint: FilterHint) -> dict[str, str]:
    return {"name": hint.key, "prefix": hint.prefix, "value": hint.value, "allowed": hint.allowed}


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "(((",
        "metrics.",
        "val-accuracy > 0.3",
        "`val accuracy` > 0.3",
        "metrics.a > 1 AND",
        "params.x = 'it''s'",
        "tags.`a.b` = unquoted value",
        "metrics.a > 1 AND b < 2 AND c = 'x' AND d > 4",
        "ИМЯ > 1",
        "a" * 5000,
    ],
)
def test_diagnosis_never_fails(bad: str) -> None:
    from backend.services.runs import _parse_error

    hint = diagnose_filter(bad, _parse_error(bad) or "some store error")
    assert isinstance(hint, FilterHint) and hint.code
    if hint.fix is not None:
        assert _parse_error(hint.fix) is None, hint


def test_filter_error_keeps_mlflows_message_and_adds_an_english_hint() -> None:
    message = _mlflow_message("val_accuracy > 0.3")
    err = FilterError(message, diagnose_filter("val_accuracy > 0.3", message))
    assert err.code == "invalid_request" and err.mlflow_message == message
    assert str(err).startswith("Invalid attribute key 'val_accuracy'")
    assert "add the prefix metrics." in str(err) and "metrics.val_accuracy > 0.3" in str(err)
    assert not CYRILLIC.search(str(err))


# -- variants of the guide's filters ------------------------------------------------------------


def _run(metrics: dict[str, float], params: dict[str, str], tags: dict[str, str] | None = None) -> RunPublic:
    return RunPublic(run_id="r1", experiment_id="1", status="FINISHED", metrics=metrics, params=params, tags=tags or {})


def test_a_variant_takes_the_values_of_a_run_that_carries_the_names() -> None:
    tiny = _run({"accuracy": 0.4339, "val_loss": 1.0973}, {"trainer_epochs": "3", "model_hidden_size": "16"})
    assert filter_variant("metrics.accuracy > 0.85", [tiny]) == "metrics.accuracy > 0.43"
    assert filter_variant("metrics.val_loss < 0.5", [tiny]) == "metrics.val_loss < 1.10"
    assert filter_variant("params.model_hidden_size = '128'", [tiny]) == "params.model_hidden_size = '16'"
    assert (
        filter_variant("metrics.accuracy > 0.8 AND params.trainer_epochs = '50'", [tiny])
        == "metrics.accuracy > 0.43 AND params.trainer_epochs = '3'"
    )
    # a value exactly on two decimals still satisfies the strict comparison
    assert filter_variant("metrics.accuracy > 0.85", [_run({"accuracy": 0.43}, {})]) == "metrics.accuracy > 0.42"
    # conditions the run already meets stay as written; runs without the names are skipped
    other = _run({"val_loss": 0.4}, {})
    assert filter_variant("metrics.val_loss < 0.5", [other, tiny]) == "metrics.val_loss < 0.5"
    assert filter_variant("tags.trigger = 'scheduled'", [tiny]) is None
    assert filter_variant("metrics.accuracy > 0.85", [_run({"accuracy": math.nan}, {})]) is None


# -- on a store with real tiny trainings ---------------------------------------------------------

store = pytest.mark.postgres


@pytest.fixture(scope="module")
def seed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    from dashboard_support import session_seed

    return session_seed(request, tmp_path_factory)


@store
@pytest.mark.slow
def test_training_runs_carry_the_guides_names_with_the_projects_values(seed) -> None:
    run = seed.services.runs.get_run(seed.first_run_id, history_max_points=1)
    assert run.metrics["accuracy"] == run.metrics["test_accuracy"]
    assert run.metrics["test_f1"] == run.metrics["test_f1_macro"]
    assert run.params["model_hidden_size"] == run.params["model_lstm_hidden"] == "16"
    for name in ("val_accuracy", "val_loss", "val_f1", "train_loss"):
        assert name in run.metrics, name
    assert {"trainer_epochs", "trainer_learning_rate"} <= set(run.params)
    assert run.tags["training_mode"] == "manual"
    # every metric a training and a retraining log has its own explanation
    retrain = seed.services.runs.get_run(seed.retrain_run_id, history_max_points=1)
    unexplained = sorted(k for k in {*run.metrics, *retrain.metrics} if explain(k) is None)
    assert not unexplained, unexplained


@store
@pytest.mark.slow
def test_every_guide_filter_example_finds_runs(seed) -> None:
    runs = seed.services.runs
    examples = runs.filter_examples(GUIDE_FILTERS)
    assert [e.guide for e in examples] == list(GUIDE_FILTERS)
    for e in examples:
        assert e.working, f"{e.guide}: neither it nor a variant finds a run"
        found = runs.search_runs(None, e.working, max_results=100)
        assert found.count >= 1, e.working
        if e.found == 0:  # the variant keeps the guide's names and comparators
            names = re.findall(r"([a-z]+\.[a-z_]+)\s*([<>=!]+)", e.guide)
            assert names == re.findall(r"([a-z]+\.[a-z_]+)\s*([<>=!]+)", e.working), (e.guide, e.working)
    by_guide = {e.guide: e for e in examples}
    # as written, these find the seeded runs (no threshold in them)
    assert by_guide["tags.training_mode = 'manual'"].found >= 2
    assert by_guide["tags.trigger = 'scheduled'"].found >= 1
    assert "auto_retraining" in by_guide["tags.trigger = 'scheduled'"].experiments
    # a tiny training has neither 50 epochs nor hidden size 128: a variant with its values
    assert by_guide["params.model_hidden_size = '128'"].variant in {
        "params.model_hidden_size = '16'",
        "params.model_hidden_size = '24'",
    }


@store
@pytest.mark.slow
def test_help_page_lists_the_metrics_the_names_and_every_guide_example_working(seed) -> None:
    from dashboard_support import assert_ok, assert_one_language, open_page

    for lang in ("ru", "en"):
        at = open_page(seed.services, "glossary", lang=lang)
        assert_ok(at)
        assert_one_language(at, lang)
    tables = [tb.value for tb in at.table]
    metrics = next(f for f in tables if f.index.name == "Metric")
    assert set(GLOSSARY_METRICS) == set(metrics.index)
    assert metrics["What it measures"].nunique() > 20
    at = open_page(seed.services, "glossary", lang="ru")
    tables = [tb.value for tb in at.table]
    table = next(f for f in tables if f.index.name == "Как в руководстве")
    assert list(table.index) == list(GUIDE_FILTERS)
    listed = next(c.value for c in at.code if "metrics." in c.value and "tags.trigger" in c.value).splitlines()
    assert len(listed) == len(GUIDE_FILTERS)
    for working in listed:
        assert seed.services.runs.search_runs(None, working, max_results=1).count == 1, working
    names = next(f for f in [tb.value for tb in at.table] if "Имя в проекте" in f.columns)
    assert "params.model_lstm_hidden" in set(names["Имя в проекте"])


@store
@pytest.mark.slow
def test_headline_tooltips_on_overview_differ(seed) -> None:
    from dashboard_support import open_page

    at = open_page(seed.services, "overview")
    helps = {m.label: m.help for m in at.metric if m.label in ("test_accuracy", "test_f1_macro", "backtest_sharpe")}
    assert set(helps) == {"test_accuracy", "test_f1_macro", "backtest_sharpe"}
    assert len(set(helps.values())) == 3
    assert helps["test_accuracy"] == metric_help("test_accuracy", "ru")


@store
@pytest.mark.slow
def test_runs_page_explains_a_refused_filter_in_russian_and_applies_the_fix(seed) -> None:
    from dashboard_support import assert_ok, assert_one_language, open_page

    at = open_page(seed.services, "runs")
    at.text_input(key="runs.filter").input("val_accuracy > 0").run()
    assert_ok(at)
    assert "добавьте префикс metrics." in at.error[0].value
    assert "Invalid" not in at.error[0].value
    assert "metrics.val_accuracy > 0" in [c.value for c in at.code]
    assert_one_language(at, "ru")
    at.button(key="runs.apply_fix").click().run()
    assert at.text_input(key="runs.filter").value == "metrics.val_accuracy > 0"
    assert not at.error and len(at.dataframe[0].value) >= 2


@store
@pytest.mark.slow
def test_an_empty_experiment_and_unknown_names_say_so(seed) -> None:
    from dashboard_support import open_page

    client = seed.services.runs.client
    if client.get_experiment_by_name("glossary_empty") is None:
        client.create_experiment("glossary_empty")
    at = open_page(seed.services, "runs")
    at.selectbox(key="runs.experiment").set_value("glossary_empty").run()
    infos = [i.value for i in at.info]
    assert t("runs.empty_experiment", "ru") in infos
    assert not any("подходящих под фильтр" in i for i in infos)
    at.selectbox(key="runs.experiment").set_value("model_training").run()
    at.text_input(key="runs.filter").input("metrics.no_such_metric > 0").run()
    assert "подходящих под фильтр" in " ".join(i.value for i in at.info)
    assert any("metrics.no_such_metric" in w.value for w in at.warning)


# -- in Chromium ---------------------------------------------------------------------------------


@store
@pytest.mark.slow
def test_in_chromium_tooltips_differ_and_help_lists_filters_that_find_runs(seed, tmp_path) -> None:
    """A real ``streamlit run`` in headless Chromium at 1400x1000: hovering the "?" of the headline
    metrics on Обзор shows a different explanation for each; every filter Справка offers to copy
    finds runs on the store."""

    from dashboard_support import chromium_path, running_dashboard
    from test_dashboard_e2e import CHROMIUM_ARGS, RENDERED, dashboard_env

    executable = chromium_path()
    if executable is None:
        pytest.fail("Debian's chromium is not installed (apt-get install -y chromium); no browser is downloaded")
    from playwright.sync_api import sync_playwright

    log = tmp_path / "streamlit.log"
    with running_dashboard(dashboard_env(seed), log) as base:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(base + "/")
            page.get_by_role("heading", name=t("overview.title", "ru")).first.wait_for(timeout=60_000)
            page.wait_for_selector(RENDERED, timeout=60_000)
            tips: dict[str, str] = {}
            for label in ("test_accuracy", "test_f1_macro"):
                tile = page.locator('[data-testid="stMetric"]').filter(
                    has=page.locator('[data-testid="stMetricLabel"]', has_text=label)
                )
                tile.first.locator('[data-testid="stTooltipHoverTarget"]').first.hover()
                tip = page.locator('[data-testid="stTooltipContent"]').last
                tip.wait_for(timeout=10_000)
                tips[label] = tip.inner_text()
                page.mouse.move(5, 5)
                page.wait_for_timeout(400)
            assert tips["test_accuracy"] != tips["test_f1_macro"], tips
            assert "тестовая выборка" in tips["test_accuracy"] and "baseline_majority_accuracy" in tips["test_accuracy"]
            assert "макро-F1" in tips["test_f1_macro"]
            page.goto(base + "/help")
            page.get_by_role("heading", name=t("glossary.title", "ru")).first.wait_for(timeout=60_000)
            page.wait_for_selector(RENDERED, timeout=60_000)
            # the examples run their searches as the page draws: wait for their block, then read every block
            page.locator('[data-testid="stCode"]', has_text="tags.trigger").first.wait_for(timeout=60_000)
            codes = page.locator('[data-testid="stCode"]').all_inner_texts()
            listed = next(c for c in codes if "tags.trigger" in c and "metrics." in c)
            filters = [line.strip() for line in listed.splitlines() if line.strip()]
            browser.close()
        assert len(filters) == len(GUIDE_FILTERS)
        for f in filters:
            assert seed.services.runs.search_runs(None, f, max_results=1).count == 1, f
