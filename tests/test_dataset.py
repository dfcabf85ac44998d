"""prepare_dataset / WindowDataset / Normalizer: boundaries, purge gaps, train-only statistics,
zero-copy windows, train/serve parity."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from backend.ml_engine.dataset import (
    SPLITS,
    Normalizer,
    PreparedData,
    SplitConfig,
    WindowDataset,
    build_inference_windows,
    prepare_dataset,
    valid_window_ends,
)
from backend.ml_engine.features import FeatureConfig, build_feature_matrix, lookback_rows
from backend.ml_engine.labels import LabelConfig

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "backend" / "ml_engine" / "sample_data"
WINDOW = 60
HORIZON = 6


@dataclass
class FakeSeries:
    """Stand-in for data.CandleSeries (only what prepare_dataset reads)."""

    symbol: str
    timeframe: str
    frame: pd.DataFrame


def load_series(name: str, segment_breaks: tuple[int, ...] = ()) -> FakeSeries:
    frame = pd.read_feather(SAMPLE_DATA / name).rename(columns={"date": "timestamp"})
    frame["segment"] = np.searchsorted(np.asarray(segment_breaks), np.arange(len(frame)), side="right")
    return FakeSeries(symbol=name.split("-")[0].replace("_", "/"), timeframe="5m", frame=frame)


def all_series() -> list[FakeSeries]:
    return [
        load_series("ETH_BTC-5m.feather", segment_breaks=(2500, 4100)),  # two gaps -> three segments
        load_series("LTC_BTC-5m.feather"),
        load_series("ADA_BTC-5m.feather"),
    ]


@pytest.fixture(scope="module")
def prepared() -> PreparedData:
    return prepare_dataset(all_series(), FeatureConfig(), LabelConfig(horizon=HORIZON), SplitConfig(), window=WINDOW)


def test_shapes_and_dtypes(prepared: PreparedData):
    n = sum(len(s.frame) for s in all_series())
    assert prepared.X.shape == (n, len(prepared.feature_names)) and prepared.X.dtype == np.float32
    assert prepared.X.flags.c_contiguous
    assert prepared.y.shape == (n,) and prepared.y.dtype == np.int64
    assert prepared.timestamps.dtype == np.dtype("datetime64[ns]")
    assert prepared.close.dtype == np.float64 and prepared.future_return.dtype == np.float64
    frames = [s.frame for s in all_series()]
    np.testing.assert_array_equal(prepared.open, np.concatenate([f["open"].to_numpy(np.float64) for f in frames]))
    assert prepared.symbols == ["ETH/BTC", "LTC/BTC", "ADA/BTC"]
    assert prepared.window == WINDOW and prepared.horizon == HORIZON
    for name in SPLITS:
        x, y = prepared.split(name)[0]
        assert x.shape == (WINDOW, len(prepared.feature_names)) and x.dtype == torch.float32
        assert y.dtype == torch.int64 and y.ndim == 0


def test_no_window_crosses_series_or_segment_and_no_nan_or_undefined_label(prepared: PreparedData):
    for name in SPLITS:
        ds = prepared.split(name)
        rows = ds.row_indices(np.arange(len(ds)))  # (n, T)
        assert (prepared.series_id[rows] == prepared.series_id[rows[:, -1:]]).all()
        assert (prepared.segment[rows] == prepared.segment[rows[:, -1:]]).all()
        assert np.isfinite(prepared.X[rows]).all()
        assert (prepared.y[ds.ends] >= 0).all()
        # the label's horizon stays in the same series and segment
        fut = ds.ends + HORIZON
        assert (prepared.series_id[fut] == prepared.series_id[ds.ends]).all()
        assert (prepared.segment[fut] == prepared.segment[ds.ends]).all()
    # the segmented series really has windows in each of its three segments
    train_eth = prepared.train.ends[prepared.series_id[prepared.train.ends] == 0]
    assert set(np.unique(prepared.segment[train_eth])) == {0, 1}
    test_eth = prepared.test.ends[prepared.series_id[prepared.test.ends] == 0]
    assert set(np.unique(prepared.segment[test_eth])) == {2}


def test_splits_chronological_with_purge_gap(prepared: PreparedData):
    gap = WINDOW + HORIZON
    assert prepared.summary["purge_gap"] == gap
    for sid in range(len(prepared.symbols)):
        ends = {
            name: prepared.split(name).ends[prepared.series_id[prepared.split(name).ends] == sid] for name in SPLITS
        }
        assert all(e.size > 0 for e in ends.values())
        # min distance between any train end and any val end (and val / test)
        assert np.abs(ends["val"][:, None] - ends["train"][None, :]).min() >= gap
        assert np.abs(ends["test"][:, None] - ends["val"][None, :]).min() >= gap
        assert ends["train"].max() < ends["val"].min() and ends["val"].max() < ends["test"].min()
        ts = prepared.timestamps
        assert ts[ends["train"]].max() < ts[ends["val"]].min() < ts[ends["val"]].max() < ts[ends["test"]].min()
        # no val window row is a row any train label looked at
        assert ends["val"].min() - WINDOW + 1 > ends["train"].max() + HORIZON


def test_purge_gap_validation():
    with pytest.raises(ValueError, match="purge_gap"):
        prepare_dataset(
            all_series()[:1],
            split_cfg=SplitConfig(purge_gap=WINDOW + HORIZON - 1),
            window=WINDOW,
            label_cfg=LabelConfig(horizon=HORIZON),
        )
    with pytest.raises(ValueError, match="sum to 1"):
        SplitConfig(train_frac=0.8, val_frac=0.15, test_frac=0.15)
    bigger = prepare_dataset(
        all_series()[1:2], split_cfg=SplitConfig(purge_gap=500), window=WINDOW, label_cfg=LabelConfig(horizon=HORIZON)
    )
    assert bigger.val.ends.min() - bigger.train.ends.max() >= 500
    assert bigger.test.ends.min() - bigger.val.ends.max() >= 500


def test_too_short_data_raises_clear_error():
    short = load_series("ETH_BTC-5m.feather")
    short.frame = short.frame.iloc[:250].copy()
    with pytest.raises(ValueError, match=r"split 'val' is empty.*too short"):
        prepare_dataset([short], window=WINDOW, label_cfg=LabelConfig(horizon=HORIZON))
    with pytest.raises(ValueError, match="no series"):
        prepare_dataset([], window=WINDOW)


def test_normalizer_uses_train_rows_only(prepared: PreparedData):
    series = all_series()
    raw = np.concatenate([build_feature_matrix(s.frame, FeatureConfig()) for s in series])  # (N, F)
    covered = np.zeros(len(raw), dtype=bool)
    for e in prepared.train.ends:
        covered[e - WINDOW + 1 : e + 1] = True
    train_rows = raw[covered].astype(np.float64)
    np.testing.assert_allclose(prepared.normalizer.mean, train_rows.mean(axis=0), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(prepared.normalizer.std, train_rows.std(axis=0), rtol=1e-5, atol=1e-9)
    assert prepared.normalizer.mean.dtype == np.float32 and prepared.normalizer.std.dtype == np.float32
    # X is normalised with those statistics
    np.testing.assert_allclose(prepared.X[covered].mean(axis=0, dtype=np.float64), 0.0, atol=1e-4)
    np.testing.assert_allclose(prepared.X[covered].std(axis=0, dtype=np.float64), 1.0, atol=1e-3)

    # change every candle that val/test windows and labels see: statistics stay bit-identical
    rng = np.random.default_rng(5)
    changed = all_series()
    offset = 0
    for sid, s in enumerate(changed):
        n = len(s.frame)
        val_ends = prepared.val.ends[prepared.series_id[prepared.val.ends] == sid] - offset
        first = int(val_ends.min()) - WINDOW + 1
        assert first > prepared.train.ends[prepared.series_id[prepared.train.ends] == sid].max() - offset + HORIZON
        factor = np.exp(rng.normal(0, 0.05, n - first))
        for col in ("open", "high", "low", "close"):
            s.frame.loc[first:, col] = s.frame[col].to_numpy()[first:] * factor
        s.frame.loc[first:, "volume"] = rng.exponential(100.0, n - first)
        offset += n
    other = prepare_dataset(changed, FeatureConfig(), LabelConfig(horizon=HORIZON), SplitConfig(), window=WINDOW)
    np.testing.assert_array_equal(other.train.ends, prepared.train.ends)
    np.testing.assert_array_equal(other.normalizer.mean, prepared.normalizer.mean)
    np.testing.assert_array_equal(other.normalizer.std, prepared.normalizer.std)
    assert not np.array_equal(other.X[prepared.test.ends], prepared.X[prepared.test.ends])


def test_normalizer_constant_feature_and_round_trip():
    X = np.array([[1.0, 5.0], [3.0, 5.0], [100.0, 5.0]], dtype=np.float32)
    norm = Normalizer.fit(X, rows=np.array([True, True, False]), feature_names=["a", "b"])
    np.testing.assert_array_equal(norm.mean, [2.0, 5.0])
    np.testing.assert_array_equal(norm.std, [1.0, 1.0])  # std([1, 3]) = 1; constant -> 1
    again = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_array_equal(again.mean, norm.mean)
    np.testing.assert_array_equal(again.std, norm.std)
    assert again.feature_names == ["a", "b"]
    np.testing.assert_array_equal(norm.transform(X)[:2], [[-1.0, 0.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="NaN"):
        Normalizer.fit(np.array([[np.nan]], dtype=np.float32))


def test_windows_equal_x_slices_every_access_path(prepared: PreparedData):
    ds = prepared.train
    X = prepared.X
    g = torch.Generator().manual_seed(0)
    seen = []
    for xb, yb in ds.batches(256, shuffle=True, generator=g):
        assert xb.shape[1:] == (WINDOW, X.shape[1]) and xb.dtype == torch.float32 and yb.dtype == torch.int64
        seen.append(yb.shape[0])
    assert sum(seen) == len(ds) and max(seen) == 256
    idx = np.array([0, 7, len(ds) - 1, 123])
    xb, yb = ds.get_batch(idx)
    for k, i in enumerate(idx):
        e = ds.ends[i]
        np.testing.assert_array_equal(xb[k].numpy(), X[e - WINDOW + 1 : e + 1])
        assert yb[k].item() == prepared.y[e]
        x1, y1 = ds[int(i)]
        np.testing.assert_array_equal(x1.numpy(), X[e - WINDOW + 1 : e + 1])
        assert y1.item() == prepared.y[e]
    # a shuffled epoch visits every sample exactly once
    got = []
    for xb, _yb in ds.batches(1000, shuffle=True, generator=np.random.default_rng(1)):
        got.append(xb[:, -1, 0].numpy())
    np.testing.assert_array_equal(np.sort(np.concatenate(got)), np.sort(X[ds.ends, 0]))
    # DataLoader path (index-list sampler, no collate)
    xb, yb = next(iter(ds.loader(64, shuffle=False)))
    np.testing.assert_array_equal(xb.numpy(), X[ds.ends[:64, None] + np.arange(-WINDOW + 1, 1)])
    np.testing.assert_array_equal(yb.numpy(), prepared.y[ds.ends[:64]])


def test_window_dataset_shares_x_and_never_materialises(prepared: PreparedData):
    for name in SPLITS:
        ds = prepared.split(name)
        assert ds.X is prepared.X and np.shares_memory(ds.X, prepared.X)
        assert np.shares_memory(ds.y, prepared.y)
        assert ds.ends.nbytes == 8 * len(ds)  # only the end rows are stored per sample
    x, _ = prepared.train[0]
    assert not np.shares_memory(x.numpy(), prepared.X)  # a sample cannot write into X


def test_window_dataset_validation():
    X = np.zeros((10, 2), dtype=np.float32)
    y = np.zeros(10, dtype=np.int64)
    with pytest.raises(ValueError, match="outside"):
        WindowDataset(X, y, np.array([2]), window=4)
    with pytest.raises(ValueError, match="float32"):
        WindowDataset(X.astype(np.float64), y, np.array([5]), window=4)


def test_valid_window_ends():
    bad = np.array([1, 0, 0, 0, 0, 0, 1, 0, 0], dtype=bool)
    runs = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(np.flatnonzero(valid_window_ends(bad, runs, 2)), [2, 3, 5, 8])


def test_summary(prepared: PreparedData):
    s = prepared.summary
    json.dumps(s)
    for name in SPLITS:
        assert s["samples"][name] == len(prepared.split(name))
        assert sum(s["class_counts"][name].values()) == len(prepared.split(name))
        assert set(s["time_range"][name]) == set(prepared.symbols)
        assert sum(r["samples"] for r in s["time_range"][name].values()) == len(prepared.split(name))
    lb = lookback_rows(FeatureConfig())
    assert s["dropped_warmup_rows"] == (3 + 1 + 1) * (lb - 1)  # ETH has three segments
    assert s["series"][0]["segments"] == 3
    assert s["time_range"]["train"]["ETH/BTC"]["start"] < s["time_range"]["val"]["ETH/BTC"]["start"]


def test_inference_windows_parity_with_training(prepared: PreparedData):
    pipeline = json.loads(json.dumps(prepared.pipeline))  # as stored with the model
    assert pipeline["window"] == WINDOW and pipeline["normalizer"]["feature_names"] == prepared.feature_names
    series = all_series()
    offset = len(series[0].frame)
    lt = series[1]  # LTC/BTC, series id 1
    windows, ends = build_inference_windows(lt.frame, pipeline, return_ends=True)  # (n, T, F)
    assert windows.dtype == np.float32 and windows.shape[1:] == (WINDOW, len(prepared.feature_names))
    for name in SPLITS:
        ds = prepared.split(name)
        e = ds.ends[prepared.series_id[ds.ends] == 1]
        pos = np.searchsorted(ends, e - offset)
        np.testing.assert_array_equal(ends[pos], e - offset)
        np.testing.assert_array_equal(windows[pos], ds.get_batch(np.flatnonzero(prepared.series_id[ds.ends] == 1))[0])
    # the last window only, from just enough recent history (finite lookback)
    last_full = build_inference_windows(lt.frame, pipeline, last_only=True)
    assert last_full.shape == (1, WINDOW, len(prepared.feature_names))
    np.testing.assert_array_equal(last_full[0], windows[-1])
    tail = lt.frame.iloc[-pipeline["min_history_rows"] :].reset_index(drop=True)
    last_tail = build_inference_windows(tail, pipeline, last_only=True)
    np.testing.assert_allclose(last_tail, last_full, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="incomplete"):
        build_inference_windows(tail.iloc[1:], pipeline, last_only=True)
    # a gap in the last candles: the last segment is too short
    gapped = lt.frame.copy()
    gapped.loc[len(gapped) - 10 :, "segment"] = 1
    with pytest.raises(ValueError, match="incomplete"):
        build_inference_windows(gapped, pipeline, last_only=True)
