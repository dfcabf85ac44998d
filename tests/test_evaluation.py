"""evaluation (metrics vs scikit-learn, baselines, backtest by hand) and plots."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from backend.ml_engine.evaluation import (
    MIN_TRADES,
    backtest,
    backtest_equity,
    baseline_metrics,
    baseline_predictions,
    classification_metrics,
    direction_from_returns,
    format_sharpe,
    periods_per_year,
    scalar_metrics,
    timeframe_minutes,
)
from backend.ml_engine.plots import plot_confusion_matrix, plot_equity_curve, plot_learning_curves
from backend.ml_engine.signal_policy import SignalPolicy

NAMES = ("down", "flat", "up")


@pytest.mark.parametrize("seed", range(6))
def test_classification_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    y_true = rng.integers(0, 3, n)
    y_pred = rng.integers(0, 3, n)
    if seed == 4:
        y_pred[y_pred == 2] = 1  # a class never predicted
    if seed == 5:
        y_true[y_true == 0] = 2  # a class never present
    m = classification_metrics(y_true, y_pred)
    labels = [0, 1, 2]
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))
    p = skm.precision_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    r = skm.recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    f = skm.f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    for i, name in enumerate(NAMES):
        assert m[f"precision_{name}"] == pytest.approx(p[i])
        assert m[f"recall_{name}"] == pytest.approx(r[i])
        assert m[f"f1_{name}"] == pytest.approx(f[i])
        assert m[f"support_{name}"] == int(np.sum(y_true == i))
    assert m["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    assert m["n"] == n


def test_classification_metrics_validation() -> None:
    with pytest.raises(ValueError, match="empty"):
        classification_metrics([], [])
    with pytest.raises(ValueError, match="class ids"):
        classification_metrics([0, 3], [0, 1])
    with pytest.raises(ValueError, match="class ids"):
        classification_metrics([0, -1], [0, 1])
    with pytest.raises(ValueError, match="length"):
        classification_metrics([0, 1], [0])
    with pytest.raises(ValueError, match="class_names"):
        classification_metrics([0], [0], class_names=("a", "b"))


def test_direction_and_baselines() -> None:
    r = np.array([0.02, -0.02, 0.001, np.nan, 0.006])
    assert direction_from_returns(r, 0.005).tolist() == [2, 0, 1, 1, 2]
    assert direction_from_returns(r, np.array([0.03, 0.01, 0.0, 0.0, 0.01])).tolist() == [1, 0, 2, 1, 1]

    y_train = np.array([0, 1, 1, 2, 1, 0])  # majority: flat
    y_true = np.array([1, 2, 2, 0])
    prev = np.array([1, 2, 0, 0])
    preds = baseline_predictions(y_true, y_train, prev)
    assert preds["majority"].tolist() == [1, 1, 1, 1]
    assert preds["previous_direction"].tolist() == prev.tolist()
    m = baseline_metrics(y_true, y_train, prev)
    assert m["majority"]["accuracy"] == pytest.approx(0.25)
    assert m["previous_direction"]["accuracy"] == pytest.approx(0.75)
    assert set(baseline_metrics(y_true, y_train)) == {"majority"}
    with pytest.raises(ValueError, match="rows"):
        baseline_predictions(y_true, y_train, prev[:2])


def test_timeframes() -> None:
    assert timeframe_minutes("5m") == 5
    assert timeframe_minutes("4h") == 240
    assert timeframe_minutes("1d") == 1440
    assert periods_per_year("5m") == 365 * 24 * 12
    with pytest.raises(ValueError):
        timeframe_minutes("5x")


def test_backtest_by_hand() -> None:
    close = np.array([100.0, 110.0, 99.0, 99.0, 108.9])
    pred = np.array([2, 0, 1, 2, 0])  # long, short, flat, long, (last bar: nothing)
    fee = 0.01
    res = backtest(pred, close, fee=fee, timeframe="1h")
    r = np.array([0.1, -0.1, 0.0, 0.1, 0.0])
    pos = np.array([1, -1, 0, 1, 0])
    cost = np.abs(np.diff(np.r_[0, pos])) * fee  # 1, 2, 1, 1, 1 units
    net = pos * r - cost
    equity = np.cumprod(1 + net)
    assert res["total_return"] == pytest.approx(equity[-1] - 1)
    assert res["n_trades"] == 5
    np.testing.assert_allclose(res["equity"][0]["strategy"], equity)
    assert res["win_rate"] == pytest.approx(3 / 3)  # every in-position bar made 0.1 - fees > 0
    assert res["exposure"] == pytest.approx(3 / 5)
    peak = np.maximum.accumulate(np.r_[1.0, equity])
    assert res["max_drawdown"] == pytest.approx(np.max(1 - np.r_[1.0, equity] / peak))
    assert res["max_drawdown"] >= 0
    expected_sharpe = net.mean() / net.std(ddof=1) * math.sqrt(365 * 24)
    assert res["sharpe"] == pytest.approx(expected_sharpe)
    bh_net = np.array([0.1 - fee, -0.1, 0.0, 0.1, -fee])
    assert res["buy_and_hold_total_return"] == pytest.approx(np.prod(1 + bh_net) - 1)
    assert res["n_bars"] == 5 and res["n_series"] == 1


def test_backtest_zero_fee_all_flat_and_sign() -> None:
    close = np.linspace(100, 120, 50)
    flat = backtest(np.ones(50, dtype=int), close, fee=0.001)
    assert flat["total_return"] == 0.0 and flat["sharpe"] == 0.0 and flat["max_drawdown"] == 0.0
    assert flat["n_trades"] == 0 and flat["win_rate"] == 0.0
    long = backtest(np.full(50, 2), close, fee=0.0)
    assert long["total_return"] == pytest.approx(0.2)
    assert long["total_return"] == pytest.approx(long["buy_and_hold_total_return"])
    short = backtest(np.zeros(50, dtype=int), close, fee=0.0)
    assert short["total_return"] < 0 and short["max_drawdown"] > 0


def test_backtest_multi_series_is_equal_weight_mean_and_no_cross_series_return() -> None:
    rng = np.random.default_rng(1)
    c1 = 100 * np.cumprod(1 + rng.normal(0, 0.01, 40))
    c2 = 5 * np.cumprod(1 + rng.normal(0, 0.01, 25))
    p1 = rng.integers(0, 3, 40)
    p2 = rng.integers(0, 3, 25)
    both = backtest(np.r_[p1, p2], np.r_[c1, c2], np.r_[np.zeros(40, int), np.ones(25, int)], fee=0.0005)
    a = backtest(p1, c1, fee=0.0005)
    b = backtest(p2, c2, fee=0.0005)
    for key in ("total_return", "sharpe", "max_drawdown", "buy_and_hold_total_return", "buy_and_hold_sharpe"):
        assert both[key] == pytest.approx((a[key] + b[key]) / 2)
    assert both["n_trades"] == a["n_trades"] + b["n_trades"]
    assert both["per_series"][0]["total_return"] == pytest.approx(a["total_return"])
    assert both["per_series"][1]["total_return"] == pytest.approx(b["total_return"])
    eq = backtest_equity(np.r_[p1, p2], np.r_[c1, c2], np.r_[np.zeros(40, int), np.ones(25, int)], fee=0.0005)
    assert len(eq[0]["strategy"]) == 40 and len(eq[1]["buy_and_hold"]) == 25
    flat = scalar_metrics(both, prefix="test_")
    assert "test_sharpe" in flat and "test_per_series" not in flat and "test_equity" not in flat
    assert all(isinstance(v, float) for v in flat.values())


def test_backtest_validation() -> None:
    with pytest.raises(ValueError):
        backtest([2, 2], [1.0, -1.0])
    with pytest.raises(ValueError):
        backtest([2, 2], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        backtest([2, 2], [1.0, 2.0], fee=1.5)


def _is_png(path: Path) -> bool:
    return path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_write_png(tmp_path: Path) -> None:
    cm = [[5, 1, 0], [2, 7, 1], [0, 0, 4]]
    assert _is_png(plot_confusion_matrix(cm, tmp_path / "a" / "cm.png"))
    history = [
        {"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "val_accuracy": 0.3 + e / 10, "val_f1": 0.2 + e / 10}
        for e in range(1, 5)
    ]
    assert _is_png(plot_learning_curves(history, tmp_path / "lc.png"))
    res = backtest(np.array([2, 0, 1, 2, 2, 0]), np.array([1, 1.1, 1.0, 1.05, 1.2, 1.1]), np.array([0, 0, 0, 1, 1, 1]))
    assert _is_png(plot_equity_curve(res["equity"], tmp_path / "eq.png"))
    assert _is_png(plot_equity_curve(res["equity"][1], tmp_path / "eq1.png"))
    with pytest.raises(ValueError):
        plot_confusion_matrix([[1, 2], [3, 4]], tmp_path / "bad.png")


# --------------------------------------------------------------------------------------------
# fills at the next open
# --------------------------------------------------------------------------------------------

OPEN5 = np.array([50.0, 100.0, 110.0, 99.0, 108.9])
CLOSE5 = np.array([100.0, 90.0, 120.0, 80.0, 100.0])  # must not matter when opens are given


def test_next_open_fill_by_hand() -> None:
    """Signal at close[t], filled at open[t+1], held to open[t+2]: r[t] = open[t+2] / open[t+1] - 1."""
    pred = np.array([2, 0, 2, 1, 2])  # long, short, long, flat, (last two rows: nothing)
    fee = 0.01
    res = backtest(pred, CLOSE5, fee=fee, timeframe="1h", open_=OPEN5)
    # r = [110/100 - 1, 99/110 - 1, 108.9/99 - 1, -, -] = [0.1, -0.1, 0.1, 0, 0]
    pos = np.array([1, -1, 1, 0, 0])  # the last two rows have no pair of next opens
    cost = np.array([1, 2, 2, 1, 0]) * fee  # entry, flip, flip, exit at open[4]
    net = np.array([0.1, 0.1, 0.1, 0.0, 0.0]) - cost
    np.testing.assert_allclose(net, [0.09, 0.08, 0.08, -0.01, 0.0])
    equity = np.cumprod(1 + net)
    np.testing.assert_allclose(res["equity"][0]["strategy"], equity)
    assert res["total_return"] == pytest.approx(equity[-1] - 1)
    assert res["n_trades"] == 4 and res["too_few_trades"] and res["fill"] == "next_open"
    assert res["exposure"] == pytest.approx(3 / 5) and res["win_rate"] == pytest.approx(1.0)
    assert res["sharpe"] == pytest.approx(net.mean() / net.std(ddof=1) * math.sqrt(365 * 24))
    bh_net = np.array([0.1 - fee, -0.1, 0.1, -fee, 0.0])  # long from open[1] to open[4]
    np.testing.assert_allclose(res["equity"][0]["buy_and_hold"], np.cumprod(1 + bh_net))
    assert np.abs(pos).sum() == 3
    # the same predictions filled at the close trade the close-to-close returns instead
    at_close = backtest(pred, CLOSE5, fee=fee, timeframe="1h")
    assert at_close["fill"] == "close" and at_close["total_return"] != pytest.approx(res["total_return"])


def test_next_open_differs_from_close_fill_by_one_bar_of_lag() -> None:
    """On a trending series a perfect close-to-close signal loses its first bar when filled at the next open."""
    o = 100 * 1.01 ** np.arange(12)
    c = o * 1.01  # close[t] = open[t+1]: then next-open returns are the close returns one bar later
    long = np.full(12, 2)
    at_open = backtest(long, c, fee=0.0, open_=o)
    at_close = backtest(long, c, fee=0.0)
    assert at_close["total_return"] == pytest.approx(1.01**11 - 1)
    assert at_open["total_return"] == pytest.approx(1.01**10 - 1)


def test_next_open_series_are_separate_and_short_series_do_nothing() -> None:
    o = np.r_[OPEN5, 10.0, 11.0]
    c = np.r_[CLOSE5, 10.0, 11.0]
    sid = np.r_[np.zeros(5, int), np.ones(2, int)]
    res = backtest(np.full(7, 2), c, sid, fee=0.0, open_=o)
    one = backtest(np.full(5, 2), CLOSE5, fee=0.0, open_=OPEN5)
    assert res["per_series"][0]["total_return"] == pytest.approx(one["total_return"])
    assert res["per_series"][1]["total_return"] == 0.0 and res["per_series"][1]["n_trades"] == 0


def test_long_only_and_threshold_policies_by_hand() -> None:
    proba = np.array(
        [
            [0.10, 0.20, 0.70],  # up (threshold 0.6 passes)
            [0.55, 0.40, 0.05],  # down by argmax; below the 0.6 threshold
            [0.10, 0.25, 0.65],  # up
            [0.30, 0.50, 0.20],  # flat
            [0.00, 0.00, 1.00],  # last two rows: nothing
        ]
    )
    fee = 0.01
    argmax_long_only = SignalPolicy(direction="long_only", fee=fee)
    pos = argmax_long_only.positions(proba)
    assert pos.tolist() == [1, 0, 1, 0, 1]
    res = argmax_long_only.backtest(proba, CLOSE5, open_=OPEN5, timeframe="1h")
    net = np.array([0.1 - fee, -fee, 0.1 - fee, -fee, 0.0])  # r = [0.1, -0.1, 0.1, 0, 0]
    np.testing.assert_allclose(res["equity"][0]["strategy"], np.cumprod(1 + net))
    assert res["n_trades"] == 4
    threshold = SignalPolicy(mode="threshold", threshold=0.6, fee=fee)
    assert threshold.positions(proba).tolist() == [1, 0, 1, 0, 1]
    assert SignalPolicy(fee=fee).positions(proba).tolist() == [1, -1, 1, 0, 1]
    same = threshold.backtest(proba, CLOSE5, open_=OPEN5, timeframe="1h")
    assert same["total_return"] == pytest.approx(res["total_return"])


def test_slippage_adds_to_the_fee() -> None:
    pred = np.array([2, 0, 2, 1, 2])
    a = backtest(pred, CLOSE5, fee=0.01, open_=OPEN5, slippage=0.005)
    b = backtest(pred, CLOSE5, fee=0.015, open_=OPEN5)
    np.testing.assert_allclose(a["equity"][0]["strategy"], b["equity"][0]["strategy"])
    assert a["slippage"] == 0.005 and a["fee"] == 0.01
    pos = SignalPolicy().positions_from_classes(pred)
    c = backtest(None, CLOSE5, fee=0.01, open_=OPEN5, slippage=0.005, positions=pos)
    assert c["total_return"] == pytest.approx(a["total_return"])


def test_too_few_trades_and_format_sharpe() -> None:
    rng = np.random.default_rng(0)
    o = 100 * np.cumprod(1 + rng.normal(0, 0.01, 200))
    flips = np.where(np.arange(200) % 2 == 0, 2, 0)  # a flip every bar: ~200 trades
    many = backtest(flips, o, fee=0.001, open_=o)
    assert many["n_trades"] >= MIN_TRADES and not many["too_few_trades"]
    few = backtest(np.r_[np.full(100, 2), np.full(100, 1)], o, fee=0.001, open_=o)
    assert few["n_trades"] == 2 and few["too_few_trades"] and few["per_series"][0]["too_few_trades"]
    assert "too_few_trades" not in scalar_metrics(few)  # a flag, not a metric
    assert format_sharpe(1.234, 57) == "1.23 (57 trades)"
    assert format_sharpe(1.234, 4) == "too few trades (4 < 30)"
    assert format_sharpe(-0.5, 4, lang="ru") == "слишком мало сделок (4 < 30)"
    assert format_sharpe(1.234, 57, lang="ru") == "1.23 (57 сделок)"
    assert format_sharpe(2.0, 31, lang="ru") == "2.00 (31 сделка)"
    assert format_sharpe(2.0, 42, lang="ru") == "2.00 (42 сделки)"
    assert format_sharpe(2.0, 111, lang="ru") == "2.00 (111 сделок)"
    with pytest.raises(ValueError, match="lang"):
        format_sharpe(1.0, 40, lang="de")


def test_periods_per_year_override() -> None:
    rng = np.random.default_rng(1)
    c = 100 * np.cumprod(1 + rng.normal(0.001, 0.01, 100))
    pred = rng.integers(0, 3, 100)
    crypto = backtest(pred, c, timeframe="1d")
    stocks = backtest(pred, c, timeframe="1d", periods_per_year=252)
    assert crypto["periods_per_year"] == 365 and stocks["periods_per_year"] == 252
    assert stocks["sharpe"] == pytest.approx(crypto["sharpe"] * math.sqrt(252 / 365))
    assert stocks["total_return"] == crypto["total_return"]
    with pytest.raises(ValueError, match="periods_per_year"):
        backtest(pred, c, periods_per_year=0)


def test_backtest_validation_of_the_new_arguments() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        backtest([2, 2], [1.0, 2.0], positions=[1.0, 1.0])
    with pytest.raises(ValueError, match="exactly one"):
        backtest(None, [1.0, 2.0])
    with pytest.raises(ValueError, match="positions"):
        backtest(None, [1.0, 2.0], positions=[2.0, 0.0])
    with pytest.raises(ValueError, match="open_"):
        backtest([2, 2], [1.0, 2.0], open_=[1.0])
    with pytest.raises(ValueError, match="open_"):
        backtest([2, 2], [1.0, 2.0], open_=[1.0, 0.0])
    with pytest.raises(ValueError, match="slippage"):
        backtest([2, 2], [1.0, 2.0], slippage=-0.1)
    eq = backtest_equity([2, 0, 2, 1, 2], CLOSE5, open_=OPEN5, slippage=0.001)
    assert len(eq[0]["strategy"]) == 5
