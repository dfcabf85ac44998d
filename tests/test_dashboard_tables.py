"""The dashboard's tables and drift charts (issue 17): what matters without scrolling sideways, counts as
integers, a comparison that highlights only meaningful differences and flags runs tested on different
data, drift charts that read the same way (PSI and -log10 p of KS, thresholds as lines), and a server
log without tracebacks or progress bars from a normal render.

The frame-building functions (:mod:`backend.dashboard.tables`, :mod:`backend.dashboard.charts`,
``widgets.jobs_frame``) are checked without a store; the pages under AppTest over the seeded PostgreSQL
store (``dashboard_support.seed_store``); the server's log with a real ``python -m backend.dashboard``
and headless Chromium.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from backend.dashboard import charts, tables
from backend.dashboard.i18n import t
from backend.dashboard.widgets import fmt_sharpe, jobs_frame
from backend.services.schemas import JobPublic, RunPublic

# -- counts ------------------------------------------------------------------------------------

COUNTS = {
    "backtest_n_bars": 129.0,
    "backtest_n_trades": 2.0,
    "test_n": 1380.0,
    "baseline_majority_n": 1380.0,
    "test_support_up": 19.0,
    "best_epoch": 3.0,
    "walk_forward_folds": 3.0,
    "drift_recent_rows": 865.0,
    "drift_features": 0.0,
    "wf_n": 239.0,
    "backtest_periods_per_year": 105120.0,
}
NOT_COUNTS = {
    "test_accuracy": 1.0,
    "epoch_seconds": 1.0,
    "drift_share": 0.0,
    "learning_rate": 0.001,
    "walk_forward_accuracy_std": 0.0,
}


def test_counts_are_integers_and_other_metrics_are_not() -> None:
    for key, value in COUNTS.items():
        assert tables.is_count(key), key
        assert tables.fmt_metric(key, value) == str(int(value)), key
    for key in NOT_COUNTS:
        assert not tables.is_count(key), key
    assert tables.fmt_metric("test_accuracy", 1.0) == "1.0000"
    assert tables.fmt_metric("epoch_seconds", 1.0) == "1.0000"
    assert tables.fmt_metric("walk_forward_backtest_n_trades_mean", 2.5) == "2.5000"  # a mean of counts
    assert tables.fmt_metric("backtest_n_bars", None) == "—" and tables.fmt_metric("test_n", math.nan) == "—"


def _run(name: str, metrics: dict[str, float], params: dict[str, str] | None = None, **extra: Any) -> RunPublic:
    return RunPublic(
        run_id=f"{name:0<32}"[:32],
        run_name=name,
        experiment_id="1",
        status="FINISHED",
        start_time=datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
        end_time=datetime(2026, 11, 30, 12, 1, tzinfo=UTC),
        metrics=metrics,
        params=params or {},
        **extra,
    )


TRAINED = {
    "test_accuracy": 0.3396,
    "test_f1_macro": 0.2619,
    "test_n": 53.0,
    "backtest_sharpe": 15.77,
    "backtest_n_trades": 4.0,
    "backtest_n_bars": 53.0,
    "val_accuracy": 0.3462,
    "val_loss": 1.0978,
}


def test_runs_table_puts_the_key_columns_first_and_the_rest_on_demand() -> None:
    runs = [_run("a", TRAINED, {"trainer_epochs": "3"}), _run("b", {**TRAINED, "test_accuracy": 0.41})]
    frame = tables.runs_frame(runs)
    key = [t("col.run_name"), t("col.status"), "test_accuracy", "test_f1_macro", "backtest_sharpe", t("col.started")]
    assert list(frame.columns) == key  # nothing else until asked for: it fits a 1400 px window
    assert frame["backtest_sharpe"][0] == fmt_sharpe(TRAINED) and "4" in frame["backtest_sharpe"][0]  # its trades
    wide = tables.runs_frame(runs, ["backtest_n_bars", "val_loss", "test_accuracy"], ["trainer_epochs"], details=True)
    assert list(wide.columns[: len(key)]) == key
    assert list(wide.columns[len(key) :]) == [
        t("col.duration"),
        "metrics.backtest_n_bars",
        "metrics.val_loss",
        "params.trainer_epochs",
        t("col.run_id"),
    ]
    assert str(wide["metrics.backtest_n_bars"].dtype) == "Int64" and list(wide["metrics.backtest_n_bars"]) == [53, 53]
    assert list(wide["params.trainer_epochs"]) == ["3", "—"]
    # runs that only validated: their validation metrics take the key metrics' place
    only_val = tables.runs_frame([_run("p", {"val_accuracy": 0.5})])
    assert list(only_val.columns) == [t("col.run_name"), t("col.status"), "val_accuracy", t("col.started")]


REAL_METRICS = {
    **TRAINED,
    "accuracy": 0.3396,
    "test_f1": 0.2619,
    "test_log_loss": 1.1055,
    "test_support_up": 19.0,
    "baseline_majority_accuracy": 0.2264,
    "baseline_majority_f1_macro": 0.1231,
    "baseline_majority_n": 53.0,
    "baseline_previous_direction_accuracy": 0.2453,
    "baseline_previous_direction_n": 53.0,
    "backtest_buy_and_hold_sharpe": -22.2,
    "backtest_buy_and_hold_total_return": -0.0107,
    "backtest_total_return": 0.0053,
    "backtest_periods_per_year": 105120.0,
    "best_epoch": 3.0,
    "train_loss": 1.103,
    "epoch_seconds": 0.0265,
    "walk_forward_folds": 1.0,
    "walk_forward_accuracy_mean": 0.3305,
    "wf_n": 239.0,
    "drift_share": 0.0,
}


def test_a_runs_metrics_come_in_groups_with_the_yardsticks_beside_them() -> None:
    groups = {g.id: f for g, f in tables.metric_groups(REAL_METRICS, {"val_loss": 3})}
    assert list(groups) == ["test", "backtest", "validation", "walk_forward", "other"]
    test = groups["test"].set_index(t("col.metric"))
    assert list(test.columns) == ["test_…", "baseline_majority_…", "baseline_previous_direction_…"]
    assert list(test.index[:2]) == ["accuracy", "f1_macro"]  # the headline rows first
    assert list(test.loc["accuracy"]) == ["0.3396", "0.2264", "0.2453"]  # the model beside its baselines
    assert list(test.loc["n"]) == ["53", "53", "53"] and test.loc["log_loss", "baseline_majority_…"] == "—"
    backtest = groups["backtest"].set_index(t("col.metric"))
    assert list(backtest.columns) == ["backtest_…", "backtest_buy_and_hold_…"]
    assert list(backtest.loc["sharpe"]) == ["15.7700", "-22.2000"]
    assert backtest.loc["n_bars", "backtest_…"] == "53" and backtest.loc["periods_per_year", "backtest_…"] == "105120"
    validation = groups["validation"].set_index(t("col.metric"))
    assert list(validation.index[:3]) == ["val_accuracy", "val_loss", "train_loss"]
    assert validation.loc["best_epoch", t("col.value")] == "3" and validation.loc["val_loss", t("col.points")] == 3
    assert set(groups["walk_forward"][t("col.metric")]) == {"walk_forward_folds", "walk_forward_accuracy_mean", "wf_n"}
    assert set(groups["other"][t("col.metric")]) == {"accuracy", "drift_share"}
    # every metric in exactly one place, and no count written as a float anywhere
    shown = sum(len(f) * (len(f.columns) - 1 if g.pivot else 1) for g, f in tables.metric_groups(REAL_METRICS))
    assert shown >= len(REAL_METRICS)
    cells = [str(v) for _, f in tables.metric_groups(REAL_METRICS) for v in f.to_numpy().ravel()]
    assert not [c for c in cells if re.fullmatch(r"-?[1-9]\d*\.0+", c)], cells  # "129.0000"


# -- comparison --------------------------------------------------------------------------------


def test_comparison_highlights_only_differences_above_the_threshold() -> None:
    assert pytest.approx(0.05) == tables.REL_DIFF_THRESHOLD
    a = {"test_accuracy": 0.3396, "val_accuracy": 0.3462, "test_f1_macro": 0.26, "epoch_seconds": 0.02}
    b = {"test_accuracy": 0.3450, "val_accuracy": 0.4500, "test_f1_macro": 0.26, "epoch_seconds": 0.09}
    c = {"test_accuracy": 0.3400, "val_accuracy": 0.3500, "test_f1_macro": 0.26, "backtest_sharpe": 1.0}
    diff = tables.meaningful_differences({"a": a, "b": b, "c": c})
    assert diff == {
        "test_accuracy": False,  # 0.3396..0.345: 1.6 % apart
        "val_accuracy": True,  # 0.3462..0.45: 23 % apart
        "test_f1_macro": False,
        "epoch_seconds": False,  # a wall-clock time, never
        "backtest_sharpe": False,  # one run has it, the others do not: nothing to weigh
    }
    # numeric params are compared as numbers, text as text
    params = tables.meaningful_differences(
        {
            "a": {"lr": "0.001", "epochs": "50", "device": "cpu"},
            "b": {"lr": "0.003", "epochs": "50.0", "device": "cuda"},
        }
    )
    assert params == {"device": True, "epochs": False, "lr": True}
    # the threshold is the knob: at 1 % the accuracy rows differ too
    assert tables.meaningful_differences({"a": a, "b": b}, threshold=0.01)["test_accuracy"] is True


def test_runs_tested_on_different_data_are_flagged() -> None:
    same = {"data_hash": "f622f1707c", "data_rows_test": "350"}
    one = _run("one", {"test_n": 53.0, "backtest_n_bars": 53.0}, same)
    two = _run("two", {"test_n": 53.0, "backtest_n_bars": 53.0}, same)
    other = _run(
        "other", {"test_n": 1380.0, "backtest_n_bars": 129.0}, {"data_rows_test": "1500"}, tags={"data_hash": "0b1e"}
    )
    fp = {r.run_name: tables.data_fingerprint(r) for r in (one, two, other)}
    assert fp["other"]["data_hash"] == "0b1e" and fp["other"]["test_n"] == "1380"  # the tag when no param
    assert tables.different_data({"one": fp["one"], "two": fp["two"]}) == []
    assert tables.different_data(fp) == ["data_hash", "data_rows_test", "test_n", "backtest_n_bars"]
    # what a run did not record is unknown, not a difference
    assert tables.different_data({"one": fp["one"], "bare": tables.data_fingerprint(_run("bare", {}))}) == []


# -- drift charts ------------------------------------------------------------------------------

FEATURES = [
    {"feature": "volatility_10", "psi": 0.9, "psi_limit": 0.3, "ks_pvalue": 1e-234, "drifted": True},
    {"feature": "rsi_14", "psi": 0.25, "psi_limit": 0.2, "ks_pvalue": 0.003, "drifted": True},
    {"feature": "atr_14", "psi": 0.05, "psi_limit": 0.2, "ks_pvalue": 0.4, "drifted": False},
]


def test_drift_charts_read_the_same_way_with_thresholds_as_lines() -> None:
    psi = charts.drift_psi_figure(
        FEATURES,
        title="PSI",
        psi_name="PSI",
        limit_name="Порог",
        drifted_name="да",
        stable_name="нет",
        threshold=0.2,
        threshold_name="порог PSI 0.2",
    )
    ks = charts.drift_ks_figure(
        FEATURES, 0.01, title="KS", pvalue_name="p", threshold_name="порог", value_name="-log10 p"
    )
    for fig in (psi, ks):
        bars = fig.data[0]
        assert list(bars.x) == ["volatility_10", "rsi_14", "atr_14"]  # same features, same order
        assert fig.layout.yaxis.type in (None, "linear", "-")  # no log axis
        assert fig.layout.xaxis.automargin is True and list(fig.layout.xaxis.tickvals) == list(bars.x)  # unclipped
        assert list(bars.marker.color) == [charts.DRIFTED_COLOR, charts.DRIFTED_COLOR, charts.STABLE_COLOR]
    assert list(psi.data[0].y) == [0.9, 0.25, 0.05]
    assert [(s.y0, s.y1, s.line.dash) for s in psi.layout.shapes] == [(0.2, 0.2, "dash")]
    heights = list(ks.data[0].y)
    # -log10 p: taller = more drift, like PSI; 1e-234 capped at -log10(KS_PVALUE_FLOOR) instead of towering
    assert heights == pytest.approx([-math.log10(charts.KS_PVALUE_FLOOR), -math.log10(0.003), -math.log10(0.4)])
    assert heights[0] > heights[1] > 2 > heights[2] > 0
    assert [(s.y0, s.y1, s.line.dash) for s in ks.layout.shapes] == [(2.0, 2.0, "dash")]  # -log10(0.01)
    assert ks.data[0].customdata[0][0] == 1e-234  # the hover keeps the real p-value
    # a calibrated limit far above every PSI does not flatten the bars: drawn at the top, value in the hover
    quiet = [{"feature": "atr_14", "psi": 0.05, "psi_limit": 4.3, "ks_pvalue": 0.4, "drifted": False}]
    fig = charts.drift_psi_figure(
        quiet, title="PSI", psi_name="PSI", limit_name="Порог", drifted_name="да", stable_name="нет", threshold=0.2
    )
    assert tuple(fig.layout.yaxis.range) == pytest.approx((0, 0.3))
    assert list(fig.data[1].y) == pytest.approx([0.3]) and list(fig.data[1].customdata) == [4.3]
    assert list(fig.data[1].marker.symbol) == ["triangle-up"]


# -- the jobs table ----------------------------------------------------------------------------


def test_jobs_table_is_one_type_per_column_so_arrow_takes_it() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    jobs = [
        JobPublic(id="a" * 32, kind="train", status="finished", model_name="m", version=5, created_at=now),
        JobPublic(id="b" * 32, kind="train", status="cancelled", model_name="m", created_at=now),
    ]
    frame = jobs_frame(jobs)
    assert list(frame[t("col.version")]) == ["v5", "—"]
    pa.Table.from_pandas(frame)  # a mixed int / str column raises ArrowTypeError here (and in Streamlit)
    for col in frame.columns:
        assert {type(v) for v in frame[col]} == {str}, col


# -- the pages over the seeded store (AppTest) ---------------------------------------------------

DIFFERENT_DATA_EXPERIMENT = "dashboard_tables_other_data"


@pytest.fixture(scope="module")
def seed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from dashboard_support import session_seed

    return session_seed(request, tmp_path_factory)


@pytest.fixture(scope="module")
def other_data_run(seed: Any) -> str:
    """A copy of the first training's run as if tested on other candles (another data hash, more rows)."""
    client = seed.services.runs.client
    first = client.get_run(seed.first_run_id)
    exp = client.get_experiment_by_name(DIFFERENT_DATA_EXPERIMENT)
    exp_id = exp.experiment_id if exp else client.create_experiment(DIFFERENT_DATA_EXPERIMENT)
    run = client.create_run(exp_id, run_name="other_candles")
    for key, value in first.data.params.items():
        if key == "data_hash":
            value = "0b1e" + value[4:]
        elif key == "data_rows_test":
            value = str(int(value) * 4)
        client.log_param(run.info.run_id, key, value)
    for key, value in first.data.metrics.items():
        client.log_metric(run.info.run_id, key, value * 4 if key in ("test_n", "backtest_n_bars") else value)
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)


def _open(seed: Any, page: str, **query: str) -> Any:
    from dashboard_support import assert_ok, open_page

    at = open_page(seed.services, page, query=query or None)
    assert_ok(at)
    return at


@pytest.mark.postgres
@pytest.mark.slow
def test_runs_page_shows_the_key_columns_first_and_more_on_demand(seed: Any) -> None:
    at = _open(seed, "runs")
    table = at.dataframe[0].value
    assert list(table.columns) == [
        "Запуск",
        "Статус",
        "test_accuracy",
        "test_f1_macro",
        "backtest_sharpe",
        t("col.started", "ru"),
    ]
    assert {"baseline_lr1e-3", "wider_lr3e-3"} <= set(table["Запуск"])
    at.multiselect(key="runs.metric_cols").set_value(["backtest_n_bars", "val_accuracy"])
    at.multiselect(key="runs.param_cols").set_value(["trainer_epochs"])
    at.checkbox(key="runs.details").check().run()
    table = at.dataframe[0].value
    assert list(table.columns[6:]) == [
        t("col.duration", "ru"),
        "metrics.backtest_n_bars",
        "metrics.val_accuracy",
        "params.trainer_epochs",
        t("col.run_id", "ru"),
    ]
    assert str(table["metrics.backtest_n_bars"].dtype) == "Int64"


@pytest.mark.postgres
@pytest.mark.slow
def test_a_runs_metrics_are_grouped_with_counts_as_integers(seed: Any) -> None:
    at = _open(seed, "runs", run=seed.first_run_id)
    metric_col = t("col.metric", "ru")
    frames = [f.value for f in at.dataframe if metric_col in f.value.columns]
    labels = [e.label for e in at.expander]
    groups = [lbl for lbl in labels if re.search(r"\(\d+\)$", lbl)]
    assert groups[:3] == [
        t("tables.group.test", "ru", n=len(frames[0])),
        t("tables.group.backtest", "ru", n=len(frames[1])),
        t("tables.group.validation", "ru", n=len(frames[2])),
    ]
    test = frames[0].set_index(metric_col)
    assert list(test.index[:2]) == ["accuracy", "f1_macro"]
    assert {"test_…", "baseline_majority_…", "baseline_previous_direction_…"} <= set(test.columns)
    assert re.fullmatch(r"\d+", test.loc["n", "test_…"])  # windows counted, not "53.0000"
    backtest = frames[1].set_index(metric_col)
    for row in ("n_trades", "n_bars"):
        assert re.fullmatch(r"\d+", backtest.loc[row, "backtest_…"]), backtest.loc[row]
    assert max(len(f) for f in frames) < 40  # no 70-row list
    pivoted = [f.set_index(metric_col) for f in frames[:2]]  # test and backtest: one column per prefix
    counts = [
        f.loc[row, col] for f in pivoted for col in f.columns for row in f.index if tables.is_count(col[:-1] + row)
    ]
    assert len(counts) > 10 and all(re.fullmatch(r"\d+|—", c) for c in counts), counts  # "129", not "129.0000"
    listed = [f.set_index(metric_col)[t("col.value", "ru")] for f in frames if t("col.value", "ru") in f.columns]
    counted = {k: v for col in listed for k, v in col.items() if tables.is_count(k)}
    assert "best_epoch" in counted and all(re.fullmatch(r"-?\d+", v) for v in counted.values()), counted


@pytest.mark.postgres
@pytest.mark.slow
def test_compare_highlights_a_limited_set_and_flags_other_data(seed: Any, other_data_run: str) -> None:
    runs = seed.services.runs
    first, second = runs.get_run(seed.first_run_id), runs.get_run(seed.second_run_id)
    at = _open(seed, "compare", runs=f"{seed.first_run_id},{seed.second_run_id}")
    metric_col = t("col.metric", "ru")
    metrics = next(f.value for f in at.dataframe if f.value.index.name == metric_col)
    legend = [c.value for c in at.caption if c.value.startswith("Подсвечены строки")]
    highlighted = [int(re.search(r": (\d+) из (\d+)\.$", text).group(1)) for text in legend]
    exact = tables.meaningful_differences({"a": first.metrics, "b": second.metrics}, threshold=0.0)
    wanted = tables.meaningful_differences({"a": first.metrics, "b": second.metrics})
    assert highlighted[1] == sum(wanted.values()) < sum(exact.values())  # the threshold leaves noise out
    assert sum(wanted.values()) < len(metrics) * 0.75
    assert t("tables.same_data", "ru") in [s.value for s in at.success]  # the two trainings share their candles

    at = _open(seed, "compare", runs=f"{seed.first_run_id},{other_data_run}")
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("Запуски обучены и проверены на разных данных") and "data_hash" in w for w in warnings)
    data = next(f.value for f in at.dataframe if f.value.index.name == t("tables.data_key", "ru"))
    assert data.loc["data_hash"].nunique() == 2 and data.loc["test_n"].nunique() == 2


@pytest.mark.postgres
@pytest.mark.slow
def test_the_drift_charts_plot_psi_and_minus_log10_p_with_threshold_lines(seed: Any) -> None:
    from backend.services.overview import OverviewService

    services = seed.services
    overview = OverviewService(services.models, services.runs, services.jobs)
    status = overview.latest_drift("hybrid_cnn_lstm")
    report = overview.drift_report(status.run_id)
    features = {f["feature"]: f for f in report["features"]}
    at = _open(seed, "retraining")
    figures = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        title = spec["layout"].get("title", {}).get("text", "")
        figures[title] = spec
    psi = figures[t("drift.psi_chart", "ru")]
    ks = figures[t("drift.ks_chart", "ru")]
    psi_bars, ks_bars = psi["data"][0], ks["data"][0]
    assert psi_bars["x"] == ks_bars["x"] == list(features)
    assert psi_bars["y"] == pytest.approx([features[f]["psi"] for f in psi_bars["x"]])
    assert ks_bars["y"] == pytest.approx([charts.neg_log10_pvalue(features[f]["ks_pvalue"]) for f in ks_bars["x"]])
    config = report["config"]
    assert [s["y0"] for s in psi["layout"]["shapes"]] == pytest.approx([config["psi_threshold"]])
    assert [s["y0"] for s in ks["layout"]["shapes"]] == pytest.approx([-math.log10(config["ks_pvalue_threshold"])])
    for spec in (psi, ks):
        assert spec["layout"]["yaxis"].get("type") != "log"
        assert spec["layout"]["xaxis"]["automargin"] is True
    # the per-feature table keeps the uncapped -log10 p beside the p-value
    table = next(f.value for f in at.dataframe if t("drift.neg_log10_p", "ru") in f.value.columns)
    expected = [-math.log10(max(features[f]["ks_pvalue"], 1e-300)) for f in table[t("col.feature", "ru")]]
    assert list(table[t("drift.neg_log10_p", "ru")]) == pytest.approx(expected)


# -- the server's log from a normal render (real server, headless Chromium) -------------------------

RENDERED = "[data-testid=stApp][data-test-script-state=notRunning]"
#: What a normal render must not leave in the server's log.
LOG_NOISE = ("Traceback", "ArrowTypeError", "Downloading artifacts")


@pytest.fixture(scope="module")
def server_log(seed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``python -m backend.dashboard`` over the seeded store, its stdout and stderr in a file; the
    environment has no MLFLOW_* of this process (the dashboard must quieten MLflow by itself)."""
    from dashboard_support import running_dashboard
    from test_dashboard_e2e import dashboard_env

    env = dashboard_env(seed)  # MLFLOW_* of this process left out, as a deployment would have
    log = tmp_path_factory.mktemp("dashboard_tables") / "server.log"
    with running_dashboard(env, log) as base:
        yield base, log


@pytest.mark.postgres
@pytest.mark.slow
def test_a_normal_render_of_every_page_leaves_no_traceback_or_progress_bar_in_the_log(
    seed: Any, server_log: tuple[str, Path]
) -> None:
    from dashboard_support import chromium_path
    from playwright.sync_api import sync_playwright

    from backend.services import TrainingParams

    # a job without a version beside jobs with one: the "Версия" column mixes both
    job = seed.services.jobs.submit_training(TrainingParams(epochs=1, data_source="sample"))
    seed.services.jobs.cancel_job(job.id)
    base, log = server_log
    paths = [
        ("/", "Обзор"),
        ("/runs", "Эксперименты и запуски"),
        (f"/runs?run={seed.first_run_id}", "Эксперименты и запуски"),
        (f"/compare?runs={seed.first_run_id},{seed.second_run_id}", "Сравнение запусков"),
        ("/leaderboard", "Сравнение моделей"),
        ("/tuning", t("tuning.title", "ru")),
        ("/models", "Модели"),
        ("/training", "Обучение модели"),
        ("/retraining", "Переобучение и дрейф"),
        ("/monitoring", t("monitoring.title", "ru")),
        ("/help", "Справка"),
    ]
    executable = chromium_path()
    if executable is None:
        pytest.fail("Debian's chromium is not installed (apt-get install -y chromium); no browser is downloaded")
    overflow: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
            headless=True,
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="ru-RU")
        for path, heading in paths:
            page.goto(base + path)
            page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)
            page.wait_for_selector(RENDERED, timeout=60_000)
            page.wait_for_timeout(500)
            assert page.locator("[data-testid=stException]").count() == 0, path
            if path == "/runs":  # the runs table fits: no horizontal scroll bar at 1400 px
                page.wait_for_selector("[data-testid=stDataFrame] .dvn-scroller", timeout=30_000)
                overflow = page.evaluate(
                    """() => { const s = document.querySelector('[data-testid=stDataFrame] .dvn-scroller');
                         return s ? {scroll: s.scrollWidth, client: s.clientWidth} : null; }"""
                )
        browser.close()
    text = log.read_text(errors="replace")
    found = {noise: text.count(noise) for noise in LOG_NOISE if noise in text}
    assert not found, f"server log after a normal render: {found}\n{text[-4000:]}"
    assert overflow and overflow["scroll"] <= overflow["client"] + 1, overflow
