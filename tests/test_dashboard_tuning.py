"""The page «Подбор гиперпараметров» under Streamlit's AppTest, over a real PostgreSQL jobs table and a
real, tiny Optuna study run in-process (``run_study``: three logistic-regression trials on four days of
the bundled candles, two folds, finalized: the holdout read once, DSR and PBO): the studies table, the
trials table with the states in words, DSR and PBO with their explanations, the holdout beside the best
validation value, the charts; in Russian and in English; the empty state; and the actions: promoting the
best trial queues a ``tune`` job (action ``register``) only with the API token, the refusal or the job
shown next to the button."""

from __future__ import annotations

import pytest
from api_support import TOKEN, database, service_settings
from dashboard_support import assert_ok, assert_one_language, interface_texts, open_page

from backend.dashboard.i18n import t
from backend.dashboard.views import tuning as view
from backend.dashboard.widgets import fmt_num
from backend.services import Services
from backend.services.schemas import TrialPublic

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

STUDY = "dash-study"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from backend.ml_engine.config import SAMPLE_DATA_DIR
    from backend.ml_engine.tuning import TuningConfig, run_study

    tmp = tmp_path_factory.mktemp("dashboard_tuning")
    storage = f"sqlite:///{tmp}/optuna.db"
    with database("test_dash_tune") as url:
        settings = service_settings(url, tmp, tuning_storage=storage)
        config = TuningConfig.from_settings(
            settings,
            data=str(SAMPLE_DATA_DIR),
            family="logreg",
            n_trials=3,
            date_range=4.0,
            folds=2,
            study_name=STUDY,
            storage=storage,
        )
        result = run_study(config, settings=settings, tracking=False)
        services = Services.from_settings(settings)
        yield {"services": services, "settings": settings, "url": url, "tmp": tmp, "result": result}
        services.close()


def texts(at) -> str:
    return "\n".join(interface_texts(at))


def column_with_button(at, key: str):
    """The innermost column holding the button ``key``: where its outcome must appear."""
    found = [c for c in at.columns if any(b.key == key for b in c.button)]
    assert found, f"no column holds button {key}"
    return found[-1]


def tune_jobs(services) -> list:
    return services.jobs.list_jobs(kind="tune", limit=500).data


def test_the_page_shows_the_study_its_trials_dsr_pbo_and_the_holdout_in_russian(env):
    result = env["result"]
    at = open_page(env["services"], "tuning", lang="ru")
    assert_ok(at)
    assert at.title[0].value == "Подбор гиперпараметров"
    assert_one_language(at, "ru")

    studies = at.dataframe[0].value
    assert list(studies["Поиск"]) == [STUDY]
    assert studies["Семейство"][0] == "logreg" and studies["Итоги подведены"][0] == "да"
    assert studies["Trials по состояниям"][0].startswith("завершён ")
    assert at.selectbox[0].value == STUDY

    # the trials table: three rows, states in Russian words
    trials = next(d.value for d in at.dataframe if "Состояние" in d.value.columns)
    assert len(trials) == 3 and list(trials["Номер"]) == [0, 1, 2]
    assert set(trials["Состояние"]) <= {"завершён", "остановлен досрочно (pruning)", "ошибка"}
    assert "C=" in trials["Гиперпараметры"][0] or trials["Гиперпараметры"][0] != "—"

    # DSR and PBO as tiles, each with its explanation in Russian
    tiles = {m.label: m.value for m in at.metric}
    assert tiles[t("tuning.dsr", "ru")] == fmt_num(result.dsr["dsr"], 3)
    assert tiles[t("tuning.pbo", "ru")] == fmt_num(result.pbo["pbo"], 3)
    shown = texts(at)
    assert "вероятность того, что истинный коэффициент Шарпа лучшего trial выше нуля" in shown
    assert "Bailey и López de Prado, 2014" in shown
    assert "ниже медианы на проверочных" in shown and "не лучше подбрасывания монеты" in shown

    # the holdout beside the best validation value, read once for the trial it names
    best_label = t("tuning.best_value", "ru", objective="точность")
    holdout_label = t("tuning.holdout_value", "ru", objective="точность")
    assert tiles[best_label] == fmt_num(result.best_value)
    assert tiles[holdout_label] == fmt_num(float(result.holdout["metrics"]["accuracy"]))
    assert t("tuning.holdout_trial", "ru", n=result.holdout["trial"]) in [c.value for c in at.caption]

    # Optuna's charts with the page's words; no MLflow run (tracking was off)
    charts = at.get("plotly_chart")
    assert len(charts) >= 1
    assert "История оптимизации" in charts[0].proto.spec
    assert t("tuning.no_mlflow", "ru") in [c.value for c in at.caption]
    assert "python -m backend.ml_engine.tuning run --trials 20 --parallel 2" in [c.value for c in at.code]


def test_the_page_in_english(env):
    at = open_page(env["services"], "tuning", lang="en")
    assert_ok(at)
    assert at.title[0].value == "Hyperparameter search"
    assert_one_language(at, "en")
    trials = next(d.value for d in at.dataframe if "State" in d.value.columns)
    assert set(trials["State"]) <= {"complete", "stopped early (pruned)", "failed"}
    assert "the probability that the best trial's true Sharpe ratio is above zero" in texts(at)


def test_without_a_study_the_page_says_what_one_is_and_how_to_start_it(env):
    settings = service_settings(env["url"], env["tmp"], tuning_storage=f"sqlite:///{env['tmp']}/empty.db")
    services = Services.from_settings(settings)
    try:
        at = open_page(services, "tuning", lang="ru")
        assert_ok(at)
        assert t("tuning.none", "ru") in [i.value for i in at.info]
        assert "python -m backend.ml_engine.tuning run --trials 20 --parallel 2" in [c.value for c in at.code]
        assert not at.get("plotly_chart") and not at.metric
        assert at.button(key="tuning.submit")  # the form to start one is there
    finally:
        services.close()


def test_promote_without_the_token_is_refused_next_to_the_button_and_queues_nothing(env):
    services = env["services"]
    before = len(tune_jobs(services))
    at = open_page(services, "tuning", lang="ru")
    at.button(key="tuning.promote_button").click().run()
    assert_ok(at)
    column = column_with_button(at, "tuning.promote_button")
    assert t("access.bad_token", "ru") in [e.value for e in column.error]
    assert len(tune_jobs(services)) == before


def test_promote_with_the_token_queues_a_register_job_shown_next_to_the_button(env):
    services = env["services"]
    before = {j.id for j in tune_jobs(services)}
    at = open_page(services, "tuning", lang="ru")
    at.text_input(key="tuning.token").input(TOKEN)
    at.button(key="tuning.promote_button").click().run()
    assert_ok(at)
    [job] = [j for j in tune_jobs(services) if j.id not in before]
    assert job.kind == "tune" and job.status == "queued"
    assert job.params["action"] == "register" and job.params["study"] == STUDY and job.params["promote"] is True
    column = column_with_button(at, "tuning.promote_button")
    assert t("tuning.promote_queued", "ru", id=job.id[:12]) in [s.value for s in column.success]
    assert any(job.id[:12] in m.value and "в очереди" in m.value for m in column.markdown)
    assert t("tuning.follow", "ru", id=job.id) in [c.value for c in column.caption]
    # the job is also listed with the search jobs
    listed = at.dataframe[-1].value
    assert job.id[:12] in set(listed["Задача"]) and "продвижение лучшего" in set(listed["Действие"])
    assert_one_language(at, "ru")


def test_read_only_without_a_configured_token(env):
    services = Services.from_settings(service_settings(env["url"], env["tmp"], token=None, **_storage(env)))
    try:
        at = open_page(services, "tuning", lang="ru")
        assert_ok(at)
        assert at.button(key="tuning.promote_button").disabled and at.button(key="tuning.stop_button").disabled
        assert at.button(key="tuning.submit").disabled
        assert t("access.read_only", "ru") in [i.value for i in at.info]
    finally:
        services.close()


def _storage(env) -> dict:
    return {"tuning_storage": env["settings"].tuning_storage.get_secret_value()}


def test_the_form_refuses_a_wrong_token_and_creates_no_study(env):
    services = env["services"]
    at = open_page(services, "tuning", lang="ru")
    at.selectbox(key="tuning.family").set_value("logreg")
    at.number_input(key="tuning.trials").set_value(2)
    at.text_input(key="tuning.study").input("form-study")
    at.text_input(key="tuning.form_token").input("wrong")
    at.button(key="tuning.submit").click().run()
    assert_ok(at)
    assert t("access.bad_token", "ru") in [e.value for e in at.error]
    assert list(at.dataframe[0].value["Поиск"]) == [STUDY]


def test_running_trials_refresh_and_the_stop_button_needs_the_token(env, monkeypatch):
    """Last of the page's tests: it stops the study for real."""
    from backend.services.tuning import TuningService

    real = TuningService.study

    def running(self, name):  # a worker runs a fourth trial
        study = real(self, name)
        if study.stop_requested:
            return study
        extra = TrialPublic(number=3, state="RUNNING", params={"C": 1.0}, host="worker-9")
        return study.model_copy(
            update={
                "jobs_running": 1,
                "remaining": 1,
                "states": {**study.states, "RUNNING": 1},
                "trials": [*study.trials, extra],
            }
        )

    monkeypatch.setattr(TuningService, "study", running)
    services = env["services"]
    at = open_page(services, "tuning", lang="ru")
    assert_ok(at)
    assert t("tuning.live", "ru", s=int(view.TRIALS_POLL_S)) in [c.value for c in at.caption]
    trials = next(d.value for d in at.dataframe if "Состояние" in d.value.columns)
    assert len(trials) == 4 and trials["Состояние"][3] == "идёт" and trials["Хост"][3] == "worker-9"

    at.button(key="tuning.stop_button").click().run()
    assert t("access.bad_token", "ru") in [e.value for e in column_with_button(at, "tuning.stop_button").error]
    service = TuningService(env["settings"], services.jobs)
    assert not real(service, STUDY).stop_requested

    at.text_input(key="tuning.token").input(TOKEN)
    at.button(key="tuning.stop_button").click().run()
    assert_ok(at)
    assert real(service, STUDY).stop_requested
    assert t("tuning.stopped", "ru") in [s.value for s in column_with_button(at, "tuning.stop_button").success]
    assert t("tuning.stop_requested", "ru") in [w.value for w in at.warning]  # the trials now say so too


# -- pieces --------------------------------------------------------------------------------------


def test_trial_states_in_words_and_the_trials_table():
    states = ["COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"]
    words = [view.state_label(s) for s in states]
    assert words == ["завершён", "остановлен досрочно (pruning)", "ошибка", "идёт", "ждёт (повтор)"]
    trials = [
        TrialPublic(number=0, state="COMPLETE", value=0.51, params={"C": 0.123456}, seconds=1.5, host="w1"),
        TrialPublic(number=1, state="FAIL", error="worker died", host="w2"),
        TrialPublic(number=2, state="RUNNING", retry_of=1, params={"C": 2.0}),
    ]
    trials.append(TrialPublic(number=3, state="PRUNED", value=0.4, error="pruned after fold 1/2"))
    frame = view.trials_frame(trials)
    assert list(frame["Состояние"]) == ["завершён", "ошибка", "идёт", "остановлен досрочно (pruning)"]
    assert list(frame["Значение"]) == ["0.5100", "—", "—", "0.4000 (промежуточное)"]
    assert list(frame["Повтор trial"]) == ["—", "—", "#1", "—"] and frame["Гиперпараметры"][0] == "C=0.1235"
    assert view.states_text({"FAIL": 1, "COMPLETE": 2}) == "завершён 2 · ошибка 1"
    assert view.tune_request({"family": "", "trials": 5, "parallel": 2, "study": " s1 ", "date_range": None}) == {
        "trials": 5,
        "parallel": 2,
        "study": "s1",
    }
