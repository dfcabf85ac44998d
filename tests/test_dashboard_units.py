"""Pieces of the dashboard without a store: it goes through the service layer only, the write-access
rule it shares with the API, the training form's mapping onto the API's schema, the comparison's
difference test, the charts, validation messages in Russian."""

from __future__ import annotations

import ast
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from backend.dashboard import charts
from backend.dashboard.views.compare import differing
from backend.dashboard.views.training import training_request
from backend.services.access import InvalidTokenError, ReadOnlyError, check_write_access
from backend.services.schemas import MetricPoint, TrainingParams

DASHBOARD = Path(__file__).resolve().parents[1] / "backend" / "dashboard"
TOKEN = "test-token-0123456789abcdef"


def test_the_dashboard_reads_and_acts_only_through_the_services() -> None:
    """No MLflow client, database driver or HTTP call of its own: only ``backend.services``."""
    forbidden = (
        "mlflow",
        "sqlalchemy",
        "psycopg",
        "psycopg2",
        "huey",
        "requests",
        "httpx",
        "backend.ml_engine.model_registry",
        "backend.ml_engine.mlflow_integration",
    )
    for path in DASHBOARD.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"
        assert "MlflowClient" not in path.read_text(), path.name


class _Settings:
    """The two fields ``check_write_access`` reads."""

    def __init__(self, token: str | None) -> None:
        self.api_token = SecretStr(token) if token else None
        self.read_only = token is None


def test_write_access_is_the_apis_rule() -> None:
    with pytest.raises(ReadOnlyError):
        check_write_access(_Settings(None), TOKEN)  # type: ignore[arg-type]
    for wrong in (None, "", "wrong", TOKEN + "x"):
        with pytest.raises(InvalidTokenError):
            check_write_access(_Settings(TOKEN), wrong)  # type: ignore[arg-type]
    check_write_access(_Settings(TOKEN), TOKEN)  # type: ignore[arg-type]
    assert ReadOnlyError.status_code == 403 and InvalidTokenError.status_code == 401


def test_training_form_maps_onto_the_apis_schema() -> None:
    values = {
        "model_name": "hybrid_cnn_lstm",
        "run_name": " ",
        "data_source": "sample",
        "epochs": 5,
        "batch_size": None,
        "lr": 0.0005,
        "date_range": None,
        "symbols": "eth/btc, LTC/BTC",
        "timeframe": "",
        "window": None,
        "horizon": None,
        "seed": None,
        "export_onnx": True,
        "auto_promote": False,
        "min_accuracy_for_promotion": None,
    }
    network = {
        "conv_channels": "16, 32",
        "kernel_size": None,
        "lstm_hidden": 24,
        "lstm_layers": None,
        "dropout": None,
        "attention_dim": None,
    }
    body = training_request(values, network)
    assert body == {
        "model_name": "hybrid_cnn_lstm",
        "data_source": "sample",
        "epochs": 5,
        "lr": 0.0005,
        "symbols": ["ETH/BTC", "LTC/BTC"],
        "export_onnx": True,
        "auto_promote": False,
        "model": {"conv_channels": [16, 32], "lstm_hidden": 24},
    }
    params = TrainingParams.model_validate(body)
    assert params.epochs == 5 and params.model is not None and params.model.conv_channels == [16, 32]
    with pytest.raises(ValidationError):  # "16x" is refused by the schema, not silently dropped
        TrainingParams.model_validate(training_request(values, {**network, "conv_channels": "16x"}))


def test_validation_messages_are_translated(monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.dashboard import widgets

    with pytest.raises(ValidationError) as exc:
        TrainingParams.model_validate({"epochs": 0, "run_name": "bad name", "model": {"kernel_size": 4}})
    lines = widgets.validation_messages(exc.value, "training.field")
    assert "Эпохи: должно быть не меньше 1" in lines
    assert any(line.startswith("Имя запуска: не соответствует шаблону") for line in lines)
    # an option of the family: the message names the option and why
    assert any(line.startswith("Архитектура сети:") and "kernel_size" in line for line in lines), lines


def test_differing_counts_a_missing_value_as_a_difference() -> None:
    diff = differing({"a": {"lr": "0.001", "epochs": "3"}, "b": {"lr": "0.003", "epochs": "3"}, "c": {"lr": "0.001"}})
    assert diff == {"epochs": True, "lr": True}
    assert differing({"a": {"x": 1}, "b": {"x": 1}}) == {"x": False}


def test_charts() -> None:
    history = {
        "a": [MetricPoint(step=s, value=1.0 / s, timestamp=0) for s in (1, 2, 3)],
        "b": [MetricPoint(step=s, value=0.5, timestamp=0) for s in (1, 2, 3)],
    }
    fig = charts.history_figure(history, title="Функция потерь", x_title="Шаг", y_title="Значение")
    assert [tr.name for tr in fig.data] == ["a", "b"] and list(fig.data[0].x) == [1, 2, 3]
    assert fig.layout.title.text == "Функция потерь" and fig.layout.xaxis.dtick == 1
    features = [
        {"feature": "rsi_14", "psi": 0.5, "psi_limit": 0.3, "ks_pvalue": 1e-5, "drifted": True},
        {"feature": "atr_14", "psi": 0.1, "psi_limit": 0.3, "ks_pvalue": 0.4, "drifted": False},
    ]
    psi = charts.drift_psi_figure(
        features, title="PSI", psi_name="PSI", limit_name="Порог", drifted_name="да", stable_name="нет"
    )
    assert list(psi.data[0].marker.color) == ["#d62728", "#1f77b4"] and list(psi.data[1].y) == [0.3, 0.3]
    ks = charts.drift_ks_figure(features, 0.01, title="KS", pvalue_name="p", threshold_name="порог")
    # -log10 p on a linear axis (taller = more drift, like PSI), the 0.01 threshold as a line at 2
    assert ks.layout.yaxis.type != "log" and [round(y, 6) for y in ks.data[0].y] == [5.0, round(-math.log10(0.4), 6)]
    assert [(s.y0, s.y1) for s in ks.layout.shapes] == [(2.0, 2.0)]


def test_durations_in_the_pages_language() -> None:
    from backend.dashboard.widgets import fmt_duration, fmt_num

    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert fmt_duration(start, start + timedelta(seconds=4)) == "4 с"
    assert fmt_duration(start, start + timedelta(minutes=2, seconds=5)) == "2 мин 5 с"
    assert fmt_duration(start, start + timedelta(hours=1, minutes=3)) == "1 ч 3 мин"
    assert fmt_duration(start, None) == "—" and fmt_num(None) == "—" and fmt_num(0.12345) == "0.1235"


def test_every_option_of_every_family_has_a_label_in_both_languages() -> None:
    from backend.dashboard.i18n import TEXTS
    from backend.ml_engine.families import family_names, get_family

    for name in family_names():
        assert f"training.family.{name}" in TEXTS["ru"], name
        for option in get_family(name).options():
            assert f"option.{option.name}" in TEXTS["ru"] and f"option.{option.name}" in TEXTS["en"], option.name


def test_a_sharpe_is_never_shown_without_its_trades() -> None:
    from backend.dashboard.widgets import fmt_sharpe

    assert fmt_sharpe({"backtest_sharpe": 17.46, "backtest_n_trades": 4}, "ru") == "слишком мало сделок (4 < 30)"
    assert fmt_sharpe({"backtest_sharpe": 17.46, "backtest_n_trades": 4}, "en") == "too few trades (4 < 30)"
    shown = fmt_sharpe(
        {"backtest_sharpe": 1.234, "backtest_n_trades": 57, "backtest_sharpe_low": -0.5, "backtest_sharpe_high": 2.9},
        "ru",
    )
    assert shown == "1.23 (57 сделок) [-0.50, 2.90]"
    assert "не записано" in fmt_sharpe({"backtest_sharpe": 2.0}, "ru")  # versions from before trades were recorded
    assert fmt_sharpe({}, "ru") == "—"


def test_a_headline_sharpe_tile_shows_no_number_below_the_minimum() -> None:
    from backend.dashboard.widgets import sharpe_value

    assert sharpe_value({"backtest_sharpe": 17.46, "backtest_n_trades": 4}) == "—"
    assert sharpe_value({"backtest_sharpe": 1.234, "backtest_n_trades": 57}) == "1.23"
