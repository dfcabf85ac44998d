"""The page «Сравнение моделей» under Streamlit's AppTest, over a real PostgreSQL store holding a real,
tiny comparison (``run_leaderboard``: two days of ETH/BTC, logistic regression and a 1-epoch network,
two folds): the table with intervals, the paired tests with their marks, the verdict, the chart, the
policy, the link to the run; in Russian and in English; and the form, which queues a comparison job
that a real worker runner then runs to the page's new table. The verdict and the marks are also
checked on hand-made rows, where the answer is known."""

from __future__ import annotations

from typing import Any

import pytest
from api_support import TOKEN, database, service_settings
from dashboard_support import assert_ok, assert_one_language, interface_texts, open_page

from backend.dashboard.i18n import t
from backend.dashboard.views import leaderboard as view
from backend.services import Services
from backend.services.schemas import LeaderboardPublic, LeaderboardRowPublic, PairedTestPublic

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MARKS = {t(f"leaderboard.mark.{k}", "ru") for k in ("better", "worse", "same")}
#: The stored comparison: a threshold policy, so the page's words for it are checked too.
STORED: dict[str, Any] = {
    "data": None,  # filled in: the bundled candles
    "symbols": ["ETH/BTC"],
    "date_range": 3.0,
    "window": 16,
    "horizon": 4,
    "families": ["logreg", "hybrid_cnn_lstm"],
    "folds": 2,
    "epochs": 1,
    "n_boot": 200,
    "policy": {"mode": "threshold", "threshold": 0.4, "fee": 0.001, "slippage": 0.0005},
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from backend.ml_engine.config import SAMPLE_DATA_DIR
    from backend.ml_engine.leaderboard import LeaderboardConfig, run_leaderboard

    tmp = tmp_path_factory.mktemp("dashboard_leaderboard")
    with database("test_dash_lb") as url:
        settings = service_settings(url, tmp)
        services = Services.from_settings(settings)
        config = LeaderboardConfig.from_settings(settings, **{**STORED, "data": str(SAMPLE_DATA_DIR)})
        result = run_leaderboard(config, settings=settings)
        yield {"services": services, "settings": settings, "url": url, "tmp": tmp, "result": result}
        services.close()


def board_of(env) -> LeaderboardPublic:
    return LeaderboardPublic.model_validate(env["result"].to_dict())


def texts(at) -> str:
    return "\n".join(interface_texts(at))


def test_the_page_shows_the_stored_comparison_in_russian(env):
    at = open_page(env["services"], "leaderboard", lang="ru")
    assert_ok(at)
    assert at.title[0].value == "Сравнение моделей"
    assert_one_language(at, "ru")
    board = board_of(env)

    # the verdict, in Russian, from the numbers
    sentence, _ = view.verdict_text(board.rows, "accuracy")
    shown = [m.value for m in [*at.success, *at.warning, *at.info]]
    assert sentence in shown and sentence.startswith("Лучшая модель — ")

    # the table: every model, each metric "value [low, high]", baselines in words
    table = at.dataframe[0].value
    assert list(table["Модель"]) == ["logreg", "hybrid_cnn_lstm", "самый частый класс", "повтор прошлого движения"]
    for column in (
        "Точность",
        "F1 (макро)",
        "Лог. потери",
        "Оценка Брайера",
        "Коэф. Шарпа",
        "Доходность",
        "Макс. просадка",
        "Ошибка калибровки (ECE)",
        "Сделок",
        "Обучение, с",
        "Задержка p50, мс",
        "Параметров",
    ):
        assert column in table.columns, column
    accuracy = board.rows[0].metrics["accuracy"]
    assert table["Точность"][0] == f"{accuracy.value:.3f} [{accuracy.low:.3f}, {accuracy.high:.3f}]"
    for row, cell in zip(board.rows, table["Коэф. Шарпа"]):
        if row.too_few_trades:
            assert cell.startswith("слишком мало сделок (")
        else:
            assert cell.count("[") == 1
    assert table["Параметров"][2] == "—"  # a baseline has no parameters to count

    # the paired tests: both metrics against both baselines, each with its mark
    tests = at.dataframe[1].value
    assert len(tests) == 2 * 2 * 2
    assert set(tests["Вывод"]) <= MARKS
    expected = [view.conclusion(test) for r in board.rows for test in [*r.tests.values(), *r.return_tests.values()]]
    assert list(tests["Вывод"]) == expected
    assert set(tests["Метрика"]) == {"Точность", "Чистый доход за свечу, б.п."}

    # the "?" explanations of the interval and of the p-value
    shown_texts = texts(at)
    assert "доверительный интервал блочного бутстрэпа" in shown_texts and "p-значение — вероятность" in shown_texts

    # the chart of the main metric, the policy in words, the run
    assert len(at.get("plotly_chart")) == 1
    policy = [m.value for m in at.markdown if m.value.startswith("**Правило сигналов:**")]
    assert policy == [
        "**Правило сигналов:** сделка, только если вероятность роста или падения не ниже 0.40, лонг и шорт, "
        "комиссия 0.10 % + проскальзывание 0.05 % за сделку"
    ]
    links = {link.proto.label: link.proto.query_string for link in at.get("page_link")}
    run_id = env["result"].run_id
    assert links[t("leaderboard.open_run", "ru", run=run_id[:12])] == f"run={run_id}"


def test_the_page_in_english(env):
    at = open_page(env["services"], "leaderboard", lang="en")
    assert_ok(at)
    assert at.title[0].value == "Model comparison"
    assert_one_language(at, "en")
    assert "Accuracy" in at.dataframe[0].value.columns
    assert set(at.dataframe[1].value["Conclusion"]) <= {
        t(f"leaderboard.mark.{k}", "en") for k in ("better", "worse", "same")
    }


def test_without_a_comparison_the_page_says_so(env, monkeypatch):
    monkeypatch.setattr("backend.ml_engine.leaderboard.latest_leaderboard", lambda settings: None)
    at = open_page(env["services"], "leaderboard", lang="ru")
    assert_ok(at)
    assert t("leaderboard.none", "ru") in [i.value for i in at.info]
    assert not at.get("plotly_chart")


def fill_form(at, **values: Any) -> None:
    at.multiselect(key="leaderboard.families").set_value(values.get("families", ["logreg"]))
    at.selectbox(key="leaderboard.data_source").set_value("sample")
    at.number_input(key="leaderboard.folds").set_value(2)
    at.number_input(key="leaderboard.epochs").set_value(1)
    at.number_input(key="leaderboard.date_range").set_value(3.0)
    at.number_input(key="leaderboard.n_boot").set_value(200)
    at.text_input(key="leaderboard.symbols").input("ETH/BTC")
    at.selectbox(key="leaderboard.mode").set_value("threshold")
    at.number_input(key="leaderboard.threshold").set_value(0.45)
    at.selectbox(key="leaderboard.direction").set_value("long_only")
    at.number_input(key="leaderboard.fee").set_value(0.2)
    at.text_input(key="leaderboard.token").input(values.get("token", TOKEN))


def test_the_form_queues_a_comparison_that_the_worker_runs_to_the_new_table(env):
    from backend.services.job_runner import JobRunner

    services = env["services"]
    at = open_page(services, "leaderboard", lang="ru")
    fill_form(at)
    at.button(key="leaderboard.submit").click().run()
    assert_ok(at)
    job_id = at.session_state["leaderboard.job"]
    job = services.jobs.get_job(job_id)
    assert job.kind == "leaderboard" and job.status == "queued"
    assert job.params["families"] == ["logreg"] and job.params["folds"] == 2 and job.params["data_source"] == "sample"
    assert job.params["policy"] == {
        "mode": "threshold",
        "threshold": 0.45,
        "direction": "long_only",
        "fee": 0.002,
        "slippage": 0.0,
    }
    assert any(s.value == t("leaderboard.queued", "ru", id=job_id[:12]) for s in at.success)
    assert "в очереди" in texts(at)
    listed = at.dataframe[-1].value
    assert job_id[:12] in set(listed["Задача"]) and "сравнение моделей" in set(listed["Вид"])

    assert JobRunner(env["settings"], services.jobs.store)(job_id) == "done"
    at.run()
    assert_ok(at)
    done = services.jobs.get_job(job_id)
    assert done.status == "finished", done.error
    assert t("leaderboard.finished", "ru") in [s.value for s in at.success]
    assert at.get("progress")[0].value == 100
    assert list(at.dataframe[0].value["Модель"]) == ["logreg", "самый частый класс", "повтор прошлого движения"]
    links = {link.proto.label: link.proto.query_string for link in at.get("page_link")}
    assert links[t("leaderboard.open_run", "ru", run=done.run_id[:12])] == f"run={done.run_id}"
    assert any("только лонг" in m.value for m in at.markdown)


def test_a_wrong_token_or_no_family_queues_nothing(env):
    services = env["services"]
    before = services.jobs.list_jobs(kind="leaderboard", limit=500).count
    at = open_page(services, "leaderboard", lang="ru")
    fill_form(at, token="wrong")
    at.button(key="leaderboard.submit").click().run()
    assert_ok(at)
    assert t("access.bad_token", "ru") in [e.value for e in at.error]
    fill_form(at, families=[])
    at.button(key="leaderboard.submit").click().run()
    assert t("leaderboard.invalid", "ru") in [e.value for e in at.error]
    assert services.jobs.list_jobs(kind="leaderboard", limit=500).count == before
    assert_one_language(at, "ru")


def test_read_only_without_a_configured_token(env):
    services = Services.from_settings(service_settings(env["url"], env["tmp"], token=None))
    try:
        at = open_page(services, "leaderboard", lang="ru")
        assert_ok(at)
        assert at.button(key="leaderboard.submit").disabled
        assert t("access.read_only", "ru") in [i.value for i in at.info]
    finally:
        services.close()


# -- the verdict and the marks on rows whose answer is known ---------------------------------------


def _test(diff: float, p: float, significant: bool, metric: str = "accuracy") -> PairedTestPublic:
    return PairedTestPublic(
        metric=metric, diff=diff, low=diff - 0.01, high=diff + 0.01, p_value=p, significant=significant
    )


def _row(name: str, acc: float, tests: dict[str, PairedTestPublic], **extra: Any) -> LeaderboardRowPublic:
    return LeaderboardRowPublic(
        name=name,
        kind="family" if tests else "baseline",
        metrics={"accuracy": {"value": acc, "low": acc - 0.02, "high": acc + 0.02}},
        tests=tests,
        **extra,
    )


def test_marks_read_the_p_value_and_the_sign():
    assert view.conclusion(_test(0.05, 0.01, True)) == "▲ значимо лучше"
    assert view.conclusion(_test(-0.05, 0.01, False)) == "▼ значимо хуже"  # significant means "beats"
    assert view.conclusion(_test(0.05, 0.2, False)) == "≈ незначимо"
    assert view.conclusion(_test(0.02, 0.04, False), alpha=0.01) == "≈ незначимо"
    assert view.conclusion(_test(-0.1, 0.001, False, metric="log_loss")) == "▲ значимо лучше"  # lower is better


def test_the_verdict_names_the_best_model_and_what_it_beats():
    bases = [_row("majority", 0.40, {}), _row("previous_direction", 0.38, {})]
    beats_all = {"majority": _test(0.1, 0.001, True), "previous_direction": _test(0.12, 0.001, True)}
    beats_one = {"majority": _test(0.1, 0.001, True), "previous_direction": _test(0.01, 0.4, False)}
    beats_none = {"majority": _test(0.01, 0.5, False), "previous_direction": _test(0.02, 0.3, False)}

    text, kind = view.verdict_text(
        [_row("tcn", 0.5, beats_all, n_trades=120), _row("logreg", 0.45, beats_none), *bases], "accuracy"
    )
    assert kind == "success"
    assert text == "Лучшая модель — tcn: Точность 0.500 [0.480, 0.520]. Она значимо лучше всех базовых стратегий."

    text, kind = view.verdict_text([_row("tcn", 0.5, beats_one), *bases], "accuracy")
    assert kind == "warning"
    assert "Значимо лучше базовых стратегий: самый частый класс." in text
    assert "Без значимого перевеса над: повтор прошлого движения" in text

    text, kind = view.verdict_text([_row("tcn", 0.5, beats_none), *bases], "accuracy")
    assert kind == "warning" and "ни одну базовую стратегию она значимо не превосходит" in text

    text, kind = view.verdict_text([_row("tcn", 0.5, beats_all, n_trades=4, too_few_trades=True), *bases], "accuracy")
    assert kind == "warning" and text.endswith(
        "Сделок слишком мало (4 < 30): доходности и коэффициенту Шарпа доверять нельзя."
    )

    assert view.verdict_text(bases, "accuracy") == (t("leaderboard.verdict.empty", "ru"), "info")


def test_the_chart_has_error_bars_and_the_baselines_as_lines():
    bases = [_row("majority", 0.40, {}), _row("previous_direction", 0.38, {})]
    rows = [_row("tcn", 0.5, {"majority": _test(0.1, 0.001, True)}), *bases]
    fig = view.metric_figure(rows, "accuracy", title="Точность", y_title="Точность")
    [trace] = fig.data
    assert list(trace.x) == ["tcn"] and list(trace.y) == [0.5]
    assert list(trace.error_y.array) == pytest.approx([0.02]) and list(trace.error_y.arrayminus) == pytest.approx(
        [0.02]
    )
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert sorted(s.y0 for s in lines) == [0.38, 0.40]
    assert {a.text for a in fig.layout.annotations} == {"самый частый класс", "повтор прошлого движения"}
