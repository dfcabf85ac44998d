"""Every dashboard page under Streamlit's AppTest, over a real PostgreSQL store seeded with real
tiny trainings, a promoted version and retrainings (``dashboard_support.seed_store``).

The services are injected through ``st.session_state`` (``context.SERVICES_KEY``): the same
:class:`~backend.services.Services` the REST API is built from. Each page must render without an
exception, in one language only (no string of the other language's table), and its actions must
reach the services: promote / rollback move the real ``production`` alias, the training form
queues a real job that a real worker runner then trains.
"""

from __future__ import annotations

import time

import pytest
from api_support import TOKEN
from dashboard_support import (
    MODEL,
    Seed,
    assert_ok,
    assert_one_language,
    interface_texts,
    open_page,
    session_seed,
)

from backend.dashboard.i18n import t
from backend.services import Services
from backend.services.errors import InvalidRequestError

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PAGES = (
    "overview",
    "runs",
    "compare",
    "leaderboard",
    "tuning",
    "models",
    "training",
    "retraining",
    "monitoring",
    "glossary",
)
TITLES = {
    "overview": "overview.title",
    "runs": "runs.title",
    "compare": "compare.title",
    "leaderboard": "leaderboard.title",
    "tuning": "tuning.title",
    "models": "models.title",
    "training": "training.title",
    "retraining": "retraining.title",
    "monitoring": "monitoring.title",
    "glossary": "glossary.title",
}
PAGING_EXPERIMENT = "dashboard_paging"
PAGING_RUNS = 30


@pytest.fixture(scope="module")
def seed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Seed:
    seed = session_seed(request, tmp_path_factory)
    # Runs enough for two pages of 25, created with the stock client (a test may; the dashboard may not).
    client = seed.services.runs.client
    if client.get_experiment_by_name(PAGING_EXPERIMENT) is None:
        exp = client.create_experiment(PAGING_EXPERIMENT)
        day_ago_ms = int((time.time() - 86_400) * 1000)  # older than the seeded runs: "latest runs" stay theirs
        for i in range(PAGING_RUNS):
            run = client.create_run(
                exp,
                run_name=f"paging_{i:02d}",
                start_time=day_ago_ms + i,
                tags={"batch": "even" if i % 2 == 0 else "odd"},
            )
            client.log_metric(run.info.run_id, "val_accuracy", i / 100)
            client.set_terminated(run.info.run_id)
    return seed


@pytest.fixture(scope="module")
def read_only(seed: Seed) -> Services:
    """The same store with no ML_API_TOKEN: the dashboard must not change anything."""
    services = Services.from_settings(seed.settings(token=None))
    yield services
    services.close()


def texts(at) -> str:
    return "\n".join(interface_texts(at))


# -- every page, both languages ----------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_in_russian_only(seed: Seed, page: str) -> None:
    at = open_page(seed.services, page, lang="ru")
    assert_ok(at)
    assert at.title[0].value == t(TITLES[page], "ru")
    assert_one_language(at, "ru")


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_in_english_only(seed: Seed, page: str) -> None:
    at = open_page(seed.services, page, lang="en")
    assert_ok(at)
    assert at.title[0].value == t(TITLES[page], "en")
    assert_one_language(at, "en")


def test_language_switch_in_the_sidebar(seed: Seed) -> None:
    at = open_page(seed.services)
    assert at.title[0].value == "Обзор"
    assert at.sidebar.radio[0].label == "Язык"
    at.sidebar.radio[0].set_value("en").run()
    assert at.title[0].value == "Overview" and at.sidebar.radio[0].label == "Language"
    assert_one_language(at, "en")


# -- overview ----------------------------------------------------------------------------------


def test_overview_shows_production_latest_runs_jobs_and_drift(seed: Seed) -> None:
    at = open_page(seed.services)
    assert_ok(at)
    assert MODEL in [s.value for s in at.subheader]
    labels = [m.label for m in at.metric]
    assert "Версия в production" in labels and "test_accuracy" in labels
    production = seed.services.models.get_model(MODEL).production_version
    assert f"v{production}" in [m.value for m in at.metric]
    shown = texts(at)
    assert "Причина, как она записана в истории:" in shown  # when and why it was promoted
    runs = at.dataframe[0].value
    assert {"baseline_lr1e-3", "wider_lr3e-3"} <= set(runs["Запуск"])
    drift = [m.value for m in [*at.success, *at.error] if m.value.startswith(f"{MODEL}:")]
    assert drift and ("дрейфа нет" in drift[0] or "обнаружен дрейф" in drift[0])


# -- experiments and runs ----------------------------------------------------------------------


def test_runs_page_lists_runs_with_each_experiments_purpose(seed: Seed) -> None:
    at = open_page(seed.services, "runs")
    picker = at.selectbox(key="runs.experiment")
    assert picker.value == "model_training"
    assert any(o.startswith("model_training — Ручное обучение") for o in picker.options)
    assert any(o.startswith("auto_retraining — Автоматическое переобучение") for o in picker.options)
    table = at.dataframe[0].value
    assert {"baseline_lr1e-3", "wider_lr3e-3"} <= set(table["Запуск"])
    # key columns only (more on demand: tests/test_dashboard_tables.py)
    assert {"test_accuracy", "backtest_sharpe"} <= set(table.columns) and "params.trainer_epochs" not in table.columns
    guide = [c.value for c in at.code]
    assert any("tags.trigger = 'scheduled'" in c and "params.trainer_epochs = '50'" in c for c in guide)


def test_runs_filter_in_mlflow_syntax_and_the_parsers_message(seed: Seed) -> None:
    at = open_page(seed.services, "runs")
    at.text_input(key="runs.filter").input("params.trainer_learning_rate = '0.003'").run()
    assert list(at.dataframe[0].value["Запуск"]) == ["wider_lr3e-3"]

    bad = "metrics.val_accuracy >"
    with pytest.raises(InvalidRequestError) as parser:
        seed.services.runs.search_runs(["model_training"], bad)
    at.text_input(key="runs.filter").input(bad).run()
    assert_ok(at)
    # explained in Russian (services.runs.FilterHint), MLflow's own message folded below as it is
    assert at.error[0].value.startswith("Условие не разобрано")
    assert parser.value.mlflow_message in [c.value for c in at.code]
    assert_one_language(at, "ru")


def test_runs_sort_and_page_tokens(seed: Seed) -> None:
    at = open_page(seed.services, "runs")
    at.selectbox(key="runs.experiment").set_value(PAGING_EXPERIMENT).run()
    at.selectbox(key="runs.sort").set_value("attributes.run_name").run()
    at.selectbox(key="runs.direction").set_value("ASC").run()
    at.selectbox(key="runs.size").set_value(25).run()
    first = list(at.dataframe[0].value["Запуск"])
    assert first == [f"paging_{i:02d}" for i in range(25)]
    assert at.button(key="runs.prev").disabled and not at.button(key="runs.next").disabled
    at.button(key="runs.next").click().run()
    assert list(at.dataframe[0].value["Запуск"]) == [f"paging_{i:02d}" for i in range(25, PAGING_RUNS)]
    assert at.button(key="runs.next").disabled and "Страница 2" in texts(at)
    at.button(key="runs.prev").click().run()
    assert list(at.dataframe[0].value["Запуск"]) == first
    # A new query starts again from its first page.
    at.text_input(key="runs.filter").input("tags.batch = 'odd'").run()
    assert len(at.dataframe[0].value) == PAGING_RUNS // 2 and at.button(key="runs.prev").disabled


def test_run_page_params_metrics_tags_artifacts_and_curves(seed: Seed) -> None:
    at = open_page(seed.services, "runs", query={"run": seed.first_run_id})
    assert_ok(at)
    assert "Запуск baseline_lr1e-3" in [h.value for h in at.header]
    assert [tab.label for tab in at.tabs] == ["Кривые обучения", "Метрики", "Параметры", "Теги", "Артефакты"]
    assert len(at.get("plotly_chart")) == 2  # loss, and accuracy / F1, over 3 epochs
    frames = [f.value for f in at.dataframe]
    metrics = [f for f in frames if "Метрика" in f.columns]  # in groups: test_* beside the baselines, val_*...
    assert "accuracy" in set(metrics[0]["Метрика"]) and "test_…" in metrics[0].columns
    assert "val_accuracy" in {m for f in metrics for m in f["Метрика"]}
    params = next(f for f in frames if "Параметр" in f.columns)
    assert params.set_index("Параметр").loc["trainer_epochs", "Значение"] == "3"
    tags = next(f for f in frames if "Тег" in f.columns)
    assert "training_mode" in set(tags["Тег"]) and not any(k.startswith("mlflow.") for k in tags["Тег"])
    artifacts = next(f for f in frames if "Путь" in f.columns)
    assert {"metadata.json", "model.onnx"} <= set(artifacts["Путь"])
    assert_one_language(at, "ru")


# -- comparison --------------------------------------------------------------------------------


def test_compare_two_runs_side_by_side(seed: Seed) -> None:
    at = open_page(seed.services, "compare", query={"runs": f"{seed.first_run_id},{seed.second_run_id}"})
    assert_ok(at)
    assert at.multiselect(key="compare.runs").value == [seed.first_run_id, seed.second_run_id]
    legend = [c.value for c in at.caption if c.value.startswith("Подсвечены строки")]
    assert legend and not legend[0].startswith("Подсвечены строки с различающимися значениями: 0 ")
    params = next(f.value for f in at.dataframe if f.value.index.name == "Параметр")
    assert params.shape[1] == 2
    assert params.loc["trainer_learning_rate"].nunique() == 2  # the runs differ there
    assert len(at.get("plotly_chart")) == 4  # train_loss, val_loss, val_accuracy, val_f1 overlaid
    at.checkbox(key="compare.only_diff").check().run()
    params = next(f.value for f in at.dataframe if f.value.index.name == "Параметр")
    assert all(row.nunique() == 2 for _, row in params.iterrows())


def test_compare_asks_for_two_to_five_runs(seed: Seed) -> None:
    at = open_page(seed.services, "compare")
    assert at.info[0].value == "Выберите от 2 до 5 запусков."


# -- models: schema, history, promote and rollback ----------------------------------------------


def test_models_page_shows_versions_schema_aliases_and_history(seed: Seed) -> None:
    at = open_page(seed.services, "models", query={"model": MODEL, "version": "1"})
    assert_ok(at)
    assert "hybrid_cnn_lstm, версия 1" in [s.value for s in at.subheader]
    # the served schema: raw candles in, probabilities and the signal out (the candle pyfunc)
    schemas = [(list(f.value["Имя"]), list(f.value["Тип"])) for f in at.dataframe if "Форма" in f.value.columns]
    assert schemas == [
        (
            ["timestamp", "open", "high", "low", "close", "volume", "symbol"],  # symbol: optional (several at once)
            ["any", "double", "double", "double", "double", "double", "string"],
        ),
        (
            ["symbol", "down", "flat", "up", "signal", "confidence", "candle_time"],
            ["string", "double", "double", "double", "string", "double", "string"],
        ),
    ]
    versions = next(f.value for f in at.dataframe if "Алиасы" in f.value.columns)
    assert len(versions) >= 4 and "production" in set(versions["Алиасы"])
    history = next(f.value for f in at.dataframe if "Решение" in f.value.columns)
    assert "продвинута" in set(history["Решение"])
    assert any("`production` → v" in m.value for m in at.markdown)


def _promote(at, version: int, token: str | None) -> None:
    if token is not None:
        at.text_input(key="models.token").input(token)
    at.selectbox(key="models.promote_version").set_value(version)
    at.text_input(key="models.promote_reason").input("проверка из панели")
    at.checkbox(key="models.promote_force").check()
    at.checkbox(key="models.promote_confirm").check().run()
    at.button(key="models.promote_button").click().run()


def test_promote_and_roll_back_through_the_registry(seed: Seed) -> None:
    models = seed.services.models
    before = models.get_model(MODEL).production_version
    target = next(v.version for v in models.get_model(MODEL).versions if v.version != before)
    at = open_page(seed.services, "models", query={"model": MODEL})

    at.selectbox(key="models.promote_version").set_value(target)
    at.run()
    assert at.button(key="models.promote_button").disabled  # not confirmed yet
    _promote(at, target, TOKEN)
    assert_ok(at)
    assert at.success[0].value == f"Готово: production переведён с v{before} на v{target}."
    assert models.get_model(MODEL).production_version == target
    event = models.history(MODEL, limit=1).data[0]
    assert (event.decision, event.actor, event.forced, event.reason) == (
        "promoted",
        "dashboard",
        True,
        "проверка из панели",
    )
    assert not at.checkbox(key="models.promote_confirm").value  # confirmation is per action

    at.text_input(key="models.rollback_reason").input("откат из панели")
    at.checkbox(key="models.rollback_confirm").check().run()
    at.button(key="models.rollback_button").click().run()
    assert at.success[0].value == f"Готово: откат с v{target} на v{before}."
    assert models.get_model(MODEL).production_version == before
    assert models.history(MODEL, limit=1).data[0].decision == "rolled_back"


def test_promote_with_a_wrong_token_changes_nothing(seed: Seed) -> None:
    models = seed.services.models
    before = models.get_model(MODEL).production_version
    target = next(v.version for v in models.get_model(MODEL).versions if v.version != before)
    history = models.history(MODEL).count
    at = open_page(seed.services, "models", query={"model": MODEL})
    _promote(at, target, "wrong-token-0123456789")
    assert at.error[0].value == t("access.bad_token", "ru")
    assert models.get_model(MODEL).production_version == before and models.history(MODEL).count == history


def test_read_only_without_a_configured_token(read_only: Services, seed: Seed) -> None:
    at = open_page(read_only, "models", query={"model": MODEL})
    assert t("access.read_only", "ru") in [i.value for i in at.info]
    assert at.button(key="models.promote_button").disabled and at.button(key="models.rollback_button").disabled
    assert not [w for w in at.text_input if w.key == "models.token"]
    at = open_page(read_only, "training")
    assert t("access.read_only", "ru") in [i.value for i in at.info]
    assert at.button(key="training.submit").disabled


def test_a_refused_promotion_reads_in_russian(seed: Seed) -> None:
    # the gate returns codes (MLflow keeps their English words too); the Russian page renders them in Russian
    models = seed.services.models
    before = models.get_model(MODEL).production_version
    target = [v.version for v in models.get_model(MODEL).versions if v.version != before][-1]
    store = models.store
    store.archive(MODEL, target, reason="test", actor="tests")
    try:
        at = open_page(seed.services, "models", query={"model": MODEL})
        at.text_input(key="models.token").input(TOKEN)
        at.selectbox(key="models.promote_version").set_value(target)
        at.checkbox(key="models.promote_confirm").check().run()
        at.button(key="models.promote_button").click().run()
        assert_ok(at)
        assert at.warning[0].value == t("models.refused", "ru")
        verdict = [m.value for m in at.markdown if m.value.startswith("отказано: ")]
        assert verdict and "версия в архиве" in verdict[0], [m.value for m in at.markdown]
        assert models.get_model(MODEL).production_version == before
        history = next(f.value for f in at.dataframe if "Решение" in f.value.columns)
        verdicts = list(history[t("col.detail", "ru")])
        assert any(str(d).startswith("отказано: ") for d in verdicts), verdicts
    finally:
        store.client.delete_model_version_tag(MODEL, str(target), "archived")


def test_promote_calls_the_model_service(seed: Seed, monkeypatch: pytest.MonkeyPatch) -> None:
    service = type(seed.services.models)
    real = service.promote
    calls: list[tuple] = []

    def spy(self, name, version, reason="", force=False, actor="api"):
        calls.append((name, version, reason, force, actor))
        return real(self, name, version, reason=reason, force=force, actor=actor)

    monkeypatch.setattr(service, "promote", spy)
    at = open_page(seed.services, "models", query={"model": MODEL})
    target = at.selectbox(key="models.promote_version").value
    _promote(at, target, TOKEN)
    assert calls == [(MODEL, target, "проверка из панели", True, "dashboard")]
    seed.services.models.rollback(MODEL, reason="test cleanup", actor="tests")


# -- training ----------------------------------------------------------------------------------


def test_training_form_rejects_what_the_api_rejects(seed: Seed) -> None:
    jobs_before = seed.services.jobs.list_jobs(kind="train", limit=500).count
    at = open_page(seed.services, "training")
    at.text_input(key="training.run_name").input("имя с пробелами")
    at.number_input(key="training.lr").set_value(0.0)
    at.text_input(key="training.token").input(TOKEN)
    at.button(key="training.submit").click().run()
    assert at.error[0].value == t("training.invalid", "ru")
    lines = [m.value for m in at.markdown if m.value.startswith("- ")]
    assert any(line.startswith("- Имя запуска: не соответствует шаблону") for line in lines)
    assert any(line.startswith("- Скорость обучения: должно быть больше 0") for line in lines)
    assert seed.services.jobs.list_jobs(kind="train", limit=500).count == jobs_before
    assert_one_language(at, "ru")


def test_training_form_queues_a_job_and_follows_it_to_the_run(seed: Seed) -> None:
    from backend.services.job_runner import JobRunner

    at = open_page(seed.services, "training")
    at.text_input(key="training.run_name").input("dashboard_form_run")
    at.selectbox(key="training.data_source").set_value("sample")
    for key, value in (
        ("epochs", 1),
        ("batch_size", 256),
        ("date_range", 2.0),
        ("window", 16),
        ("horizon", 4),
        ("opt.hybrid_cnn_lstm.lstm_hidden", 16),
        ("opt.hybrid_cnn_lstm.lstm_layers", 1),
    ):
        at.number_input(key=f"training.{key}").set_value(value)
    at.text_input(key="training.symbols").input("ETH/BTC")
    at.text_input(key="training.opt.hybrid_cnn_lstm.conv_channels").input("16")
    at.text_input(key="training.token").input(TOKEN)
    at.button(key="training.submit").click().run()
    assert_ok(at)
    job_id = at.session_state["training.job"]
    job = seed.services.jobs.get_job(job_id)
    assert job.status == "queued" and job.kind == "train"
    assert job.params["run_name"] == "dashboard_form_run" and job.params["epochs"] == 1
    assert job.params["model"] == {
        "family": "hybrid_cnn_lstm",
        "conv_channels": [16],
        "lstm_hidden": 16,
        "lstm_layers": 1,
    }
    assert any(s.value.startswith(f"Задача {job_id[:12]} поставлена в очередь") for s in at.success)
    assert "в очереди" in texts(at)

    # The worker's runner trains it (in this process); the page follows the job to its run.
    assert JobRunner(seed.services.settings, seed.services.jobs.store)(job_id) == "done"
    at.run()
    done = seed.services.jobs.get_job(job_id)
    assert done.status == "finished", done.error
    assert t("job.finished", "ru") in [s.value for s in at.success]
    assert at.get("progress")[0].value == 100
    links = {link.proto.label: link.proto.query_string for link in at.get("page_link")}
    assert links[t("job.open_run", "ru", run=done.run_id[:12])] == f"run={done.run_id}"


def test_start_training_calls_the_job_service(seed: Seed, monkeypatch: pytest.MonkeyPatch) -> None:
    service = type(seed.services.jobs)
    real = service.submit_training
    seen = []

    def spy(self, params):
        seen.append(params)
        return real(self, params)

    monkeypatch.setattr(service, "submit_training", spy)
    at = open_page(seed.services, "training")
    at.number_input(key="training.epochs").set_value(7)
    at.text_input(key="training.token").input(TOKEN)
    at.button(key="training.submit").click().run()
    assert len(seen) == 1 and seen[0].epochs == 7 and seen[0].model_name == MODEL
    seed.services.jobs.cancel_job(at.session_state["training.job"])  # leave no queued job behind


# -- retraining and drift ----------------------------------------------------------------------


def test_retraining_runs_with_trigger_and_decision_and_the_drift_charts(seed: Seed) -> None:
    at = open_page(seed.services, "retraining")
    assert_ok(at)
    runs = at.dataframe[0].value
    assert {"вручную", "по расписанию"} <= set(runs["Причина запуска"])
    assert set(runs["Решение"]) <= {"продвинута", "отклонена", "—"} and len(runs) >= 2
    # the gate's reason is rendered from its codes in the page's language (recorded as a verdict tag)
    decided = [r for r in runs["Причина"] if r != "—"]
    assert decided and all(r.startswith(("проверки пройдены: ", "отказано: ")) for r in decided), decided
    charts = at.get("plotly_chart")
    assert len(charts) == 3  # walk-forward trend, PSI per feature, KS p-values
    assert any(c.startswith("Отчёт записан запуском") for c in [c.value for c in at.caption])
    assert_one_language(at, "ru")


def test_check_drift_now_calls_the_retraining_service(seed: Seed, monkeypatch: pytest.MonkeyPatch) -> None:
    service = type(seed.services.retraining)
    calls = []
    real = service.check_drift

    def spy(self, model_name, recent_days=None, data_source="default"):
        calls.append((model_name, recent_days, data_source))
        return real(self, model_name, recent_days=recent_days, data_source=data_source)

    monkeypatch.setattr(service, "check_drift", spy)
    at = open_page(seed.services, "retraining")
    at.number_input(key="retraining.recent_days").set_value(1.0)
    at.selectbox(key="retraining.drift_source").set_value("sample")
    at.button(key="retraining.check_now").click().run()
    assert_ok(at)
    assert calls == [(MODEL, 1.0, "sample")]
    assert t("retraining.drift_fresh", "ru") in [c.value for c in at.caption]
    assert len(at.get("plotly_chart")) == 3


def test_queue_a_retraining(seed: Seed) -> None:
    at = open_page(seed.services, "retraining")
    at.selectbox(key="retraining.trigger").set_value("drift")
    at.text_input(key="retraining.reason").input("проверка")
    at.text_input(key="retraining.token").input(TOKEN)
    at.button(key="retraining.submit").click().run()
    assert_ok(at)
    job = seed.services.jobs.get_job(at.session_state["retraining.job"])
    assert job.kind == "retrain" and job.params["trigger"] == "drift" and job.params["reason"] == "проверка"
    seed.services.jobs.cancel_job(job.id)  # leave no queued job behind


def test_a_queued_training_is_followed_and_cancelled_from_the_training_page(seed: Seed) -> None:
    from backend.services import TrainingParams

    job = seed.services.jobs.submit_training(TrainingParams(epochs=1, data_source="sample"))
    at = open_page(seed.services, "training")
    at.selectbox(key=next(s.key for s in at.selectbox if s.label == t("training.follow", "ru"))).set_value(job.id).run()
    assert at.session_state["training.job"] == job.id
    at.text_input(key="training.cancel_token").input(TOKEN)
    at.button(key="training.cancel_button").click().run()
    assert_ok(at)
    assert seed.services.jobs.get_job(job.id).status == "cancelled"


def test_scheduled_retraining_jobs_show_on_the_page_and_can_be_cancelled(seed: Seed) -> None:
    from backend.services import RetrainParams

    job = seed.services.jobs.submit_retraining(
        RetrainParams(model_name=MODEL, trigger="scheduled", checks_first=True),
        origin="schedule",
        dedupe_key=f"retrain:{MODEL}@test-{time.time_ns()}",
    )
    at = open_page(seed.services, "retraining")
    assert_ok(at)
    table = next(df.value for df in at.dataframe if t("col.origin", "ru") in df.value.columns)
    row = table[table[t("col.job", "ru")] == job.id[:12]].iloc[0]
    assert row[t("col.origin", "ru")] == "по расписанию" and row[t("col.status", "ru")] == "в очереди"
    at.selectbox(key="retraining.follow").set_value(job.id).run()
    at.text_input(key="retraining.cancel_token").input(TOKEN)
    at.button(key="retraining.cancel_button").click().run()
    assert_ok(at)
    assert seed.services.jobs.get_job(job.id).status == "cancelled"


# -- help --------------------------------------------------------------------------------------


def test_glossary_has_the_guides_terms_in_russian(seed: Seed) -> None:
    at = open_page(seed.services, "glossary")
    table = at.table[0].value
    assert {
        "Эксперимент",
        "Запуск",
        "Артефакт",
        "Метрика",
        "Параметр",
        "Тег",
        "Реестр моделей",
        "Версия модели",
        "Алиас",
    } <= set(table.index)
    assert "Можно ли сделать интерфейс MLflow на русском языке?" in [e.label for e in at.expander]


# -- failures ----------------------------------------------------------------------------------


def test_a_store_outage_is_a_message_in_the_pages_language(seed: Seed, monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.services.errors import UnavailableError

    def down(self, include_deleted=False):
        raise UnavailableError("MLflow tracking store unavailable: connection refused")

    monkeypatch.setattr(type(seed.services.runs), "list_experiments", down)
    at = open_page(seed.services, "runs")
    assert_ok(at)
    assert at.error[0].value == "Хранилище недоступно. Сообщение сервиса:"
    assert [c.value for c in at.code] == ["MLflow tracking store unavailable: connection refused"]


def test_an_unexpected_error_is_caught_and_logged_not_a_traceback(seed: Seed, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self, *args, **kwargs):
        raise RuntimeError(f"driver exploded at {seed.url}")

    monkeypatch.setattr(type(seed.services.jobs), "list_jobs", boom)
    at = open_page(seed.services, "training")
    assert not at.exception
    assert at.error[-1].value == t("error.unexpected", "ru")
    message = at.code[-1].value
    assert message.startswith("RuntimeError: driver exploded at postgresql://")


def test_training_form_lists_each_familys_options_and_queues_its_policy(seed: Seed) -> None:
    at = open_page(seed.services, "training")
    assert at.selectbox(key="training.family").options[:1] == [
        "hybrid_cnn_lstm — свёртки + LSTM + внимание (по умолчанию)"
    ]
    at.selectbox(key="training.family").set_value("lightgbm").run()
    assert_ok(at)
    at.number_input(key="training.opt.lightgbm.num_leaves").set_value(15)
    with pytest.raises(KeyError):  # the network's options are not offered for trees
        at.number_input(key="training.opt.hybrid_cnn_lstm.lstm_hidden")
    at.selectbox(key="training.direction").set_value("long_only")
    at.checkbox(key="training.calibrate").check()
    at.text_input(key="training.token").input(TOKEN)
    at.button(key="training.submit").click().run()
    assert_ok(at)
    job = seed.services.jobs.get_job(at.session_state["training.job"])
    assert job.params["model"] == {"family": "lightgbm", "num_leaves": 15}
    assert job.params["policy"]["direction"] == "long_only" and job.params["calibrate"] is True
    assert_one_language(at, "ru")
    seed.services.jobs.cancel_job(job.id)  # leave no queued job behind
