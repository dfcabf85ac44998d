"""The page «Мониторинг» under Streamlit's AppTest, over a real prediction log (SQLite, the jobs database) filled
the way the engine fills it (``PredictionLog`` with the versions described) and rolled up by the real outcome job
(``resolve_and_roll_up`` with an injected candle loader, as tests/test_monitoring.py does), and a real MLflow
registry (PostgreSQL) where v2 is in production and v1 was deleted: the version picker's default, the tiles of
the newest day with the rolled-up numbers and the verdict against the test value, the dashed reference lines,
the explanation in Russian and in English, a deleted version still shown; the empty state; and the recompute
button: refused next to it without the API token (nothing queued), a job of kind ``monitor`` with it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from api_support import TOKEN, database, service_settings
from dashboard_support import assert_ok, assert_one_language, interface_texts, open_page

from backend.dashboard.i18n import t
from backend.dashboard.views import monitoring as view
from backend.ml_engine.config import DEFAULT_MODEL_NAME as MODEL
from backend.ml_engine.monitoring import live_metrics_frame, resolve_and_roll_up
from backend.ml_engine.prediction_log import PredictionLog, PredictionRecord, version_row
from backend.services import Services

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BAR = pd.Timedelta(minutes=5)
START = pd.Timestamp("2026-03-02 00:00", tz="UTC")
H = 3
FEE = 0.001
LABELS = {"horizon": H, "threshold_mode": "fixed", "threshold": 0.002, "vol_window": 60, "vol_multiplier": 0.3}
CLASSES = ["down", "flat", "up"]
#: The versions' test-time values: the reference lines.
TEST = {"1": (0.5, 0.45), "2": (0.8, 0.75)}


def _candles(n: int = 2 * 288) -> pd.DataFrame:
    """Two days of 5m candles; every open is the previous close."""
    rng = np.random.default_rng(5)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.003, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(START, periods=n, freq=BAR),
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "volume": 1.0,
        }
    )


def _label(candles: pd.DataFrame, t_row: int) -> int:
    c = candles["close"].to_numpy()
    r = np.log(c[t_row + H] / c[t_row])
    return 2 if r > 0.002 else (0 if r < -0.002 else 1)


def _record(version: str, when: pd.Timestamp, guess: int, symbol: str = "ETH/BTC", latency: float = 2.0):
    probs = [0.1, 0.1, 0.1]
    probs[guess] = 0.8
    return PredictionRecord(
        symbol=symbol,
        timeframe="5m",
        candle_time=when,
        model_name=MODEL,
        model_version=version,
        probabilities=dict(zip(CLASSES, probs, strict=True)),
        signal=["sell", "hold", "buy"][guess],
        confidence=0.8,
        latency_ms=latency,
        input_digest="x",
        horizon=H,
    )


def _fill(url: str, candles: pd.DataFrame) -> None:
    """v1: the first day, half right; v2: both days, two of three right; plus a pending and an expired one of v2."""
    records = []
    for k, row in enumerate(range(10, 280, 5)):
        truth = _label(candles, row)
        records.append(_record("1", candles["timestamp"].iloc[row], truth if k % 2 else (truth + 1) % 3))
    for k, row in enumerate(range(12, 570, 4)):
        truth = _label(candles, row)
        records.append(
            _record("2", candles["timestamp"].iloc[row], truth if k % 3 else (truth + 2) % 3, latency=float(k % 20))
        )
    records.append(_record("2", candles["timestamp"].iloc[574], 2))  # its exit candle is not there yet
    records.append(_record("2", START + pd.Timedelta(hours=30), 0, symbol="XRP/BTC"))  # never any candles
    with PredictionLog(url, flush_interval_s=0.05) as log:
        for version, (acc, f1) in TEST.items():
            metadata = {
                "label_config": LABELS,
                "signal_policy": {"fee": FEE, "slippage": 0.0},
                "test_metrics": {"accuracy": acc, "f1_macro": f1},
            }
            log.describe_version(version_row(MODEL, version, None, metadata, CLASSES))
        for r in records:
            log.record(r)
        assert log.flush(30)


def _register(url: str, tmp) -> None:
    """v1 and v2 registered, v2 in production, v1 deleted again: its history stays in the log only."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    client.create_registered_model(MODEL)
    for v in ("1", "2"):
        source = tmp / "artifacts" / f"model_v{v}"
        source.mkdir(parents=True, exist_ok=True)
        client.create_model_version(MODEL, str(source))
    client.set_registered_model_alias(MODEL, "production", "2")
    client.delete_model_version(MODEL, "1")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dashboard_monitoring")
    with database("test_dash_mon") as url:
        settings = service_settings(url, tmp, jobs_database_url=f"sqlite:///{tmp}/jobs.db", prediction_log=True)
        candles = _candles()
        _fill(settings.jobs_database_url.get_secret_value(), candles)
        now = candles["timestamp"].iloc[-1] + pd.Timedelta(minutes=30)
        summary = resolve_and_roll_up(
            settings,
            loader=lambda symbol, *_: candles if symbol == "ETH/BTC" else candles.iloc[:0],
            now=now,
            expiry_hours=1.0,
            log_to_mlflow=False,
        )
        assert summary.pending == 1 and summary.expired == 1 and not summary.errors, summary
        _register(url, tmp)
        services = Services.from_settings(settings)
        yield {"services": services, "settings": settings, "url": url, "tmp": tmp}
        services.close()


def texts(at) -> str:
    return "\n".join(interface_texts(at))


def tiles(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def newest(settings, version: str) -> pd.Series:
    frame = live_metrics_frame(settings, MODEL)
    return frame[frame["model_version"] == version].sort_values("day").iloc[-1]


def reference_lines(at) -> dict[str, list[float]]:
    """The dashed traces of the quality chart: name -> y."""
    [spec] = [s for s in map(json.loads, (c.proto.spec for c in at.get("plotly_chart"))) if _is_quality(s)]
    return {tr["name"]: tr["y"] for tr in spec["data"] if tr.get("line", {}).get("dash") == "dash"}


def _is_quality(spec: dict) -> bool:
    return spec["layout"]["title"]["text"] in {t("monitoring.chart.quality", lang) for lang in ("ru", "en")}


def column_with_button(at, key: str):
    found = [c for c in at.columns if any(b.key == key for b in c.button)]
    assert found, f"no column holds button {key}"
    return found[-1]


def monitor_jobs(services) -> list:
    return services.jobs.list_jobs(kind="monitor", limit=100).data


def test_the_page_shows_the_production_version_its_newest_day_and_the_test_lines_in_russian(env):
    settings = env["settings"]
    at = open_page(env["services"], "monitoring", lang="ru")
    assert_ok(at)
    assert at.title[0].value == "Мониторинг"
    assert_one_language(at, "ru")

    # the default: the default model's production version (it has live days)
    assert at.selectbox(key=view.MODEL_KEY).value == MODEL
    picker = at.selectbox(key=f"{view.VERSION_KEY}.{MODEL}")
    assert picker.value == "2"
    assert picker.options == ["v2 · production (в работе)", "v1 · нет в реестре"]
    assert f"{MODEL}, версия 2" in [h.value for h in at.header]

    # the tiles: the rolled-up numbers of the newest day, formatted
    day = newest(settings, "2")
    assert str(day["day"]) == "2026-03-03"
    shown = tiles(at)
    assert shown["Точность"] == f"{100 * day['accuracy']:.1f} %"
    assert shown["Макро-F1"] == f"{100 * day['f1_macro']:.1f} %"
    assert shown["PnL сигналов"] == f"{100 * day['pnl']:+.2f} %"
    assert shown["Доля прибыльных сделок"] == f"{100 * day['hit_rate']:.1f} %"
    assert shown["Покрытие свечей"] == f"{100 * day['coverage']:.1f} %"
    assert (shown["Ждут исхода"], shown["Просрочены"]) == ("1", "1")
    last = (START + 574 * BAR).to_pydatetime()
    assert shown["Свеча последнего прогноза, UTC"] == "2026-03-03 23:50" == view.short_time(last)
    captions = [c.value for c in at.caption]
    below = 100 * (TEST["2"][0] - day["accuracy"])
    assert below > view.LEVEL_PP  # two of three right against a test accuracy of 80 %
    assert f"ниже тестовой на {below:.1f} п.п. (на тесте 80.0 %)" in captions
    assert f"сделок: {int(day['n_trades'])}" in captions
    assert "Последний день: 2026-03-03" in [s.value for s in at.subheader]

    # the charts: quality with the dashed test values, PnL, rates, ECE, latency
    assert len(at.get("plotly_chart")) == 5
    assert reference_lines(at) == {"Точность на тесте": [0.8, 0.8], "Макро-F1 на тесте": [0.75, 0.75]}
    table = next(d.value for d in at.dataframe if "День" in d.value.columns)
    assert list(table["День"]) == ["2026-03-03", "2026-03-02"]
    assert table["Точность"][0] == f"{100 * day['accuracy']:.1f} %"

    # how outcomes are computed and how performance_drop uses them
    words = texts(at)
    assert "Каждый прогноз привязан к свече, на которой закончилось его окно" in words
    assert "по цене открытия следующей свечи" in words and "каждые 15 минут" in words
    assert "**Триггер переобучения performance_drop** теперь сначала смотрит на живые исходы" in words
    assert at.button(key=view.RECOMPUTE_BUTTON).label == "Пересчитать сейчас"


def test_the_page_in_english(env):
    at = open_page(env["services"], "monitoring", lang="en")
    assert_ok(at)
    assert at.title[0].value == "Monitoring"
    assert_one_language(at, "en")
    day = newest(env["settings"], "2")
    assert tiles(at)["Accuracy"] == f"{100 * day['accuracy']:.1f} %"
    below = 100 * (TEST["2"][0] - day["accuracy"])
    assert f"below the test value by {below:.1f} pp (test: 80.0 %)" in [c.value for c in at.caption]
    assert reference_lines(at) == {"Test accuracy": [0.8, 0.8], "Test macro F1": [0.75, 0.75]}
    words = texts(at)
    assert "Each prediction is tied to the candle its window ended on" in words
    assert "The performance_drop retraining trigger" in words
    assert at.button(key=view.RECOMPUTE_BUTTON).label == "Recompute now"


def test_a_version_deleted_from_the_registry_still_shows(env):
    at = open_page(env["services"], "monitoring", lang="ru", query={"model": MODEL, "version": "1"})
    assert_ok(at)
    assert at.selectbox(key=f"{view.VERSION_KEY}.{MODEL}").value == "1"
    assert f"{MODEL}, версия 1" in [h.value for h in at.header]
    assert t("monitoring.deleted_caption", "ru") in [c.value for c in at.caption]
    day = newest(env["settings"], "1")
    assert str(day["day"]) == "2026-03-02"
    assert tiles(at)["Точность"] == f"{100 * day['accuracy']:.1f} %"
    assert (tiles(at)["Ждут исхода"], tiles(at)["Просрочены"]) == ("0", "0")
    assert reference_lines(at)["Точность на тесте"] == [0.5, 0.5]


def test_the_default_version_and_the_verdict_rules():
    assert view.default_version(["3", "2", "1"], {"2", "1"}, "2") == "2"
    assert view.default_version(["3", "2", "1"], {"2", "1"}, "3") == "2"  # production has no live day yet
    assert view.default_version(["3", "2", "1"], set(), None) == "3"
    assert sorted(["9", "10", "x"], key=view.version_key) == ["9", "10", "x"]
    assert view.accuracy_verdict(0.795, 0.8) == "на уровне теста (80.0 %)"
    assert view.accuracy_verdict(0.70, 0.8) == "ниже тестовой на 10.0 п.п. (на тесте 80.0 %)"
    assert view.accuracy_verdict(0.70, None) == t("monitoring.verdict.no_test", "ru")
    assert (view.pct(0.61666), view.signed_pct(-0.01234), view.count(7.0), view.ms(None)) == (
        "61.7 %",
        "-1.23 %",
        "7",
        "—",
    )


def test_without_recorded_predictions_the_page_says_what_it_will_show(env):
    settings = service_settings(
        env["url"], env["tmp"], jobs_database_url=f"sqlite:///{env['tmp']}/empty.db", prediction_log=True
    )
    services = Services.from_settings(settings)
    try:
        at = open_page(services, "monitoring", lang="ru")
        assert_ok(at)
        assert_one_language(at, "ru")
        assert t("monitoring.none", "ru") in [i.value for i in at.info]
        words = texts(at)
        assert "точность и макро-F1 рядом с тестовыми значениями" in words
        assert "Запись включена по умолчанию (`ML_PREDICTION_LOG=1`)" in words
        assert "`POST /predict`" in words and "`Predictor`" in words and "pyfunc" in words
        assert t("monitoring.recording_off", "ru") not in [w.value for w in at.warning]
        assert not at.get("plotly_chart") and not at.metric
        assert at.button(key=view.RECOMPUTE_BUTTON).label == "Пересчитать сейчас"
    finally:
        services.close()


def test_recompute_without_the_token_is_refused_next_to_the_button_and_queues_nothing(env):
    services = env["services"]
    before = len(monitor_jobs(services))
    at = open_page(services, "monitoring", lang="ru")
    at.button(key=view.RECOMPUTE_BUTTON).click().run()
    assert_ok(at)
    column = column_with_button(at, view.RECOMPUTE_BUTTON)
    assert t("access.bad_token", "ru") in [e.value for e in column.error]
    assert len(monitor_jobs(services)) == before


def test_recompute_with_the_token_queues_a_monitor_job_shown_next_to_the_button(env):
    services = env["services"]
    before = {j.id for j in monitor_jobs(services)}
    at = open_page(services, "monitoring", lang="ru")
    at.text_input(key=view.TOKEN_KEY).input(TOKEN)
    at.button(key=view.RECOMPUTE_BUTTON).click().run()
    assert_ok(at)
    [job] = [j for j in monitor_jobs(services) if j.id not in before]
    try:
        assert job.kind == "monitor" and job.status == "queued" and job.origin == "api"
        column = column_with_button(at, view.RECOMPUTE_BUTTON)
        assert t("monitoring.queued", "ru", id=job.id[:12]) in [s.value for s in column.success]
        assert any(job.id[:12] in m.value and "в очереди" in m.value for m in column.markdown)
        assert t("monitoring.follow", "ru", id=job.id) in [c.value for c in column.caption]
        assert_one_language(at, "ru")
    finally:
        services.jobs.cancel_job(job.id)  # leave no queued job behind


def test_read_only_without_a_configured_token(env):
    settings = service_settings(
        env["url"], env["tmp"], token=None, jobs_database_url=env["settings"].jobs_database_url.get_secret_value()
    )
    services = Services.from_settings(settings)
    try:
        at = open_page(services, "monitoring", lang="ru")
        assert_ok(at)
        assert at.button(key=view.RECOMPUTE_BUTTON).disabled
        assert t("access.read_only", "ru") in [i.value for i in at.info]
        assert t("monitoring.recording_off", "ru") in [w.value for w in at.warning]  # ML_PREDICTION_LOG=0 here
    finally:
        services.close()
