"""Walk-forward folds: purged (no test window meets a training row or the purge gap), features built once."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import SAMPLE_DATA, TINY_MODEL
from hypothesis import given, settings, strategies as st

from backend.ml_engine import walk_forward as wf
from backend.ml_engine.data import load_candles
from backend.ml_engine.dataset import SplitConfig, prepare_dataset
from backend.ml_engine.labels import LabelConfig
from backend.ml_engine.model import ModelConfig
from backend.ml_engine.trainer import TrainerConfig
from backend.ml_engine.walk_forward import (
    Fold,
    ProductionScores,
    WalkForwardConfig,
    build_feature_table,
    check_fold_purged,
    fold_datasets,
    make_folds,
    run_walk_forward,
)

BAR = 300 * 10**9  # 5 minutes in ns


def _layout(lengths: list[int], window: int, horizon: int, holes: int = 0, seed: int = 0):
    """Rows of several aligned series (same clock), valid ends as a real table has them: the first
    window - 1 rows and the last horizon rows of each series are not ends; `holes` random rows invalid."""
    rng = np.random.default_rng(seed)
    sid, times, ends = [], [], []
    offset = 0
    for i, n in enumerate(lengths):
        sid.append(np.full(n, i))
        times.append(np.arange(n, dtype=np.int64) * BAR + i * 7 * BAR)  # slightly staggered starts
        e = np.arange(window - 1, n - horizon)
        if holes and e.size > holes:
            e = np.setdiff1d(e, rng.choice(e, holes, replace=False))
        ends.append(e + offset)
        offset += n
    return np.concatenate(sid), np.concatenate(times), np.concatenate(ends)


def _assert_clean(folds: list[Fold], sid: np.ndarray, times: np.ndarray, window: int, horizon: int) -> None:
    for f in folds:
        assert check_fold_purged(f, sid, window, horizon) == []
        # no test end inside any train/val row range nor inside the purge gap after it (per series)
        for s in np.unique(sid[f.test]):
            tr = np.r_[f.train, f.val]
            tr = tr[sid[tr] == s]
            te = f.test[sid[f.test] == s]
            if tr.size == 0:
                continue
            assert te.min() > tr.max() + f.gap - 1
            touched_train = set(np.concatenate([np.arange(t - window + 1, t + horizon + 1) for t in tr]).tolist())
            touched_test = set(np.concatenate([np.arange(e - window + 1, e + horizon + 1) for e in te]).tolist())
            assert not touched_train & touched_test
        # across series too: train labels end before any test window starts in time
        assert times[np.r_[f.train, f.val]].max() + f.gap * BAR <= times[f.test].min()
        assert np.intersect1d(f.train, f.val).size == 0 and np.intersect1d(f.train, f.test).size == 0


@pytest.mark.parametrize("mode", ["expanding", "sliding"])
def test_folds_are_purged_ordered_and_cover_the_tail(mode):
    window, horizon = 16, 4
    sid, times, ends = _layout([1500, 1400], window, horizon, holes=40)
    folds = make_folds(ends, sid, times, 5, gap=window + horizon, bar_ns=BAR, mode=mode)
    assert [f.index for f in folds] == list(range(5))
    _assert_clean(folds, sid, times, window, horizon)
    tests = [f.test for f in folds]
    for a, b in itertools.pairwise(tests):
        assert times[a].max() < times[b].min()  # test blocks follow each other, never overlap
    assert np.array_equal(np.sort(np.concatenate(tests)), np.sort(ends[times[ends] >= times[tests[0]].min()]))
    sizes = [f.train.size for f in folds]
    if mode == "expanding":
        assert sizes == sorted(sizes) and sizes[-1] > 1.5 * sizes[0]
        assert all(times[f.train].min() == times[ends].min() for f in folds)
    else:
        assert max(sizes) - min(sizes) < 0.1 * max(sizes)  # a fixed-length window slides
        starts = [times[f.train].min() for f in folds]
        assert starts == sorted(starts) and starts[-1] > starts[0]


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(300, 900), min_size=1, max_size=3),
    window=st.integers(2, 40),
    horizon=st.integers(1, 12),
    n_folds=st.integers(1, 6),
    mode=st.sampled_from(["expanding", "sliding"]),
    frac=st.floats(0.3, 0.7),
    extra_gap=st.integers(0, 30),
    holes=st.integers(0, 50),
)
def test_no_fold_test_range_overlaps_its_training_range_or_purge_gap(
    lengths, window, horizon, n_folds, mode, frac, extra_gap, holes
):
    sid, times, ends = _layout(lengths, window, horizon, holes=holes, seed=window)
    gap = window + horizon + extra_gap
    try:
        folds = make_folds(ends, sid, times, n_folds, gap=gap, bar_ns=BAR, mode=mode, initial_train_frac=frac)
    except ValueError as exc:  # too little data for that many folds: refused, never a leaky fold
        assert "too short" in str(exc)
        return
    _assert_clean(folds, sid, times, window, horizon)


def test_check_fold_purged_catches_a_leaky_fold():
    sid = np.zeros(200, dtype=int)
    leaky = Fold(0, train=np.arange(20, 100), val=np.arange(100, 110), test=np.arange(115, 150), gap=20)
    problems = check_fold_purged(leaky, sid, window=16, horizon=4)
    assert any("val end 109 is 6 rows before test end 115" in p for p in problems)
    assert any("train end 99 is 16 rows before" in p for p in problems)


def test_too_short_data_and_a_small_gap_are_refused():
    sid, times, ends = _layout([200], 16, 4)
    with pytest.raises(ValueError, match=r"fold 1/20.*too short for 20 folds"):
        make_folds(ends, sid, times, 20, gap=20, bar_ns=BAR, min_train_samples=32, min_test_samples=8)
    with pytest.raises(ValueError, match="below window \\+ horizon"):
        WalkForwardConfig(purge_gap=10).resolve_gap(16, 4)
    with pytest.raises(ValueError, match="mode"):
        WalkForwardConfig(mode="random")


# --------------------------------------------------------------------------------------------
# features once, normaliser per fold, real data
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def series():
    return load_candles(SAMPLE_DATA, symbols=["ETH/BTC", "LTC/BTC"], date_range_days=4)


def test_feature_table_is_prepare_datasets_data_before_normalisation(series):
    labels = LabelConfig(horizon=4)
    table = build_feature_table(series, None, labels, 16)
    prepared = prepare_dataset(series, None, labels, SplitConfig(), 16)
    assert np.array_equal(table.y, prepared.y)
    normalised = prepared.normalizer.transform(table.X)
    assert np.allclose(normalised, prepared.X, equal_nan=True, atol=1e-5)
    all_split_ends = np.concatenate([prepared.train.ends, prepared.val.ends, prepared.test.ends])
    assert np.isin(all_split_ends, table.ends).all()  # the table's ends are every valid end
    assert table.offsets == [0, len(series[0].frame)] and table.timeframe == "5m"
    np.testing.assert_array_equal(table.open, prepared.open)
    np.testing.assert_array_equal(table.open, np.concatenate([s.frame["open"].to_numpy(np.float64) for s in series]))


def test_fold_metrics_fill_at_the_next_open_and_count_trades(series):
    from backend.ml_engine import evaluation

    table = build_feature_table(series, None, LabelConfig(horizon=4), 16)
    rows = table.ends[:400]
    pred = np.random.default_rng(0).integers(0, 3, rows.size)
    run_ids = table.series_id[rows].astype(np.int64) * 1_000_000 + table.segment[rows]
    m = wf._metrics_of(table, rows, pred, 0.001)
    bt = evaluation.backtest(pred, table.close[rows], run_ids, fee=0.001, open_=table.open[rows])
    assert bt["fill"] == "next_open"
    assert m["backtest_total_return"] == pytest.approx(bt["total_return"])
    assert m["backtest_n_trades"] == bt["n_trades"] > 0
    at_close = wf.fold_metrics(table.y[rows], pred, table.close[rows], run_ids, 0.001, table.timeframe)
    assert at_close["backtest_total_return"] != pytest.approx(m["backtest_total_return"])
    assert set(wf.FOLD_METRICS) <= set(m)


def test_fold_normaliser_is_fitted_on_the_folds_training_rows_only(series):
    table = build_feature_table(series, None, LabelConfig(horizon=4), 16)
    fold = make_folds(table.ends, table.series_id, table.times_ns, 3, gap=20, bar_ns=table.bar_ns)[0]
    train, val, test, norm = fold_datasets(table, fold)
    rows = np.unique((fold.train[:, None] + np.arange(-15, 1)).ravel())
    assert np.allclose(norm.mean, table.X[rows].astype(np.float64).mean(axis=0), atol=1e-5)
    assert train.X is val.X is test.X and train.X is not table.X  # one normalised copy, raw table untouched
    assert np.isfinite(train.get_batch(np.arange(len(train)))[0].numpy()).all()


def test_walk_forward_builds_features_once_and_scores_both_models_on_the_same_rows(series, monkeypatch):
    from backend.ml_engine import features

    calls = []
    real = features.build_feature_matrix
    monkeypatch.setattr(features, "build_feature_matrix", lambda *a, **k: calls.append(1) or real(*a, **k))
    table = build_feature_table(series, None, LabelConfig(horizon=4), 16)
    assert len(calls) == len(series)

    # a stand-in production model that scores every other row: always predicts 'up'
    rows = table.ends[::2]
    proba = np.tile(np.array([[0.1, 0.1, 0.8]], dtype=np.float32), (rows.size, 1))
    production = ProductionScores(rows=rows, proba=proba, version="7")
    model = ModelConfig(n_features=1, window=16, **TINY_MODEL)
    trainer = TrainerConfig(epochs=1, batch_size=256, seed=5)
    result = run_walk_forward(table, WalkForwardConfig(n_folds=2), model, trainer, production=production)
    assert len(calls) == len(series)  # no fold rebuilt the features

    assert len(result.folds) == 2
    for fold in result.folds:
        assert fold.coverage == pytest.approx(0.5, abs=0.02)
        assert fold.candidate["n"] == fold.production["n"]  # same rows for both
        assert 0 < fold.production["accuracy"] < 0.6  # 'always up' is right on the up labels only
        assert fold.production["f1_macro"] < 0.25  # one class predicted: macro F1 <= 1/3 * 2p/(1+p)
        assert fold.train_seconds > 0 and fold.epochs == 1
    summary = result.summary()
    for key in (
        "walk_forward_accuracy_mean",
        "walk_forward_accuracy_std",
        "walk_forward_f1_macro_mean",
        "walk_forward_production_f1_macro_mean",
        "walk_forward_delta_f1_macro_mean",
        "walk_forward_backtest_sharpe_mean",
        "walk_forward_backtest_total_return_std",
    ):
        assert np.isfinite(summary[key]), key
    accs = [f.candidate["accuracy"] for f in result.folds]
    assert summary["walk_forward_accuracy_std"] == pytest.approx(np.std(accs, ddof=1))
    assert result.total_seconds >= result.train_seconds + result.feature_seconds * 0.99

    class Tracker:
        def __init__(self):
            self.logged = []

        def log_metrics(self, values, step=None):
            self.logged.append((step, dict(values)))

        def flush(self):
            pass

    t = Tracker()
    result.log_to(t)
    steps = [s for s, v in t.logged if "wf_accuracy" in v]
    assert steps == [1, 2]
    assert "wf_production_f1_macro" in t.logged[0][1] and "walk_forward_f1_macro_mean" in t.logged[-1][1]


def test_same_seed_same_walk_forward(series):
    table = build_feature_table(series, None, LabelConfig(horizon=4), 16)
    model = ModelConfig(n_features=1, window=16, **TINY_MODEL)
    trainer = TrainerConfig(epochs=1, batch_size=256, seed=11)
    a = run_walk_forward(table, WalkForwardConfig(n_folds=2, mode="sliding"), model, trainer)
    b = run_walk_forward(table, WalkForwardConfig(n_folds=2, mode="sliding"), model, trainer)
    assert [f.candidate for f in a.folds] == [f.candidate for f in b.folds]
    assert not a.has_production and "walk_forward_production_accuracy_mean" not in a.summary()


def test_production_lookup():
    scores = ProductionScores(rows=np.array([3, 5, 9]), proba=np.eye(3, dtype=np.float32))
    hit, proba = scores.lookup(np.array([1, 5, 9, 10]))
    assert hit.tolist() == [False, True, True, False]
    assert proba.tolist() == [[0, 1, 0], [0, 0, 1]]
    empty = ProductionScores(rows=np.empty(0, np.int64), proba=np.empty((0, 3), np.float32))
    assert not empty.lookup(np.array([1, 2]))[0].any()


def test_module_exports():
    assert set(wf.__all__) <= set(dir(wf))
