"""Drift statistics (PSI, KS, calibration) and the drift decision on real candles of other markets."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_MARKET
from scipy.stats import ks_2samp

from backend.ml_engine.data import load_candles
from backend.ml_engine.drift import (
    DriftConfig,
    DriftReferenceError,
    compare_features,
    ks_test,
    psi,
    psi_bin_edges,
    psi_from_counts,
    recent_features,
    reference_chunk_psi,
    reference_from_metadata,
    span_rows,
)
from backend.ml_engine.features import FeatureConfig, feature_names

FCFG = FeatureConfig()
NAMES = feature_names(FCFG)
PIPELINE = {"feature_config": FCFG.to_dict(), "window": 16, "feature_names": NAMES}
RECENT_DAYS = 3.0


# --------------------------------------------------------------------------------------------
# pure statistics
# --------------------------------------------------------------------------------------------


def test_psi_is_zero_for_the_same_sample_and_grows_with_the_shift():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=5000)
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-12)
    small, large = psi(ref, rng.normal(0.1, 1, 2000)), psi(ref, rng.normal(1.0, 1, 2000))
    assert small < 0.1 < 0.2 < large
    # a sample entirely outside the reference's range: finite, large (empty bins floored at eps)
    far = psi(ref, rng.normal(50, 1, 500))
    assert np.isfinite(far) and far > 5


def test_psi_matches_the_formula_on_counts():
    p, q = np.array([50, 30, 20]), np.array([20, 30, 50])
    expected = sum((b / 100 - a / 100) * np.log((b / 100) / (a / 100)) for a, b in zip(p, q))
    assert psi_from_counts(p, q) == pytest.approx(expected)
    assert psi_from_counts(p, q) == pytest.approx(psi_from_counts(q, p))  # symmetric
    with pytest.raises(ValueError):
        psi_from_counts(p, q[:2])


def test_bin_edges_of_a_feature_with_repeated_values_are_unique():
    ref = np.r_[np.zeros(900), np.linspace(1, 2, 100)]
    edges = psi_bin_edges(ref, 10)
    assert np.all(np.diff(edges) > 0)
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-12)


def test_ks_test_is_scipys_two_sample_test():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=300), rng.normal(0.3, 1, size=200)
    ref = ks_2samp(a, b)
    assert ks_test(a, b) == pytest.approx((ref.statistic, ref.pvalue))


def test_reference_chunks_never_span_two_series_and_leave_the_chunk_out():
    rng = np.random.default_rng(2)
    ref = np.r_[rng.normal(0, 1, 400), rng.normal(5, 1, 400)]  # two very different series
    groups = np.r_[np.zeros(400), np.ones(400)]
    edges = psi_bin_edges(ref)
    mixed = reference_chunk_psi(ref, 100, edges)
    clean = reference_chunk_psi(ref, 100, edges, groups=groups)
    # chunks inside one series only: the 400-row boundary is never inside a chunk
    assert clean.size == mixed.size - 1
    # one series' chunk against the rest (which holds the other series) is far from it
    assert clean.min() > 1.0
    same = reference_chunk_psi(rng.normal(size=2000), 200, psi_bin_edges(rng.normal(size=2000)))
    assert same.size == 19 and same.max() < 0.2  # iid data: chunks look like the rest
    assert reference_chunk_psi(ref, 800, edges).size == 0  # nothing left to compare with


def test_compare_features_flags_only_shifted_features_and_drops_nan_rows():
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(3000, 4))
    cur = rng.normal(size=(600, 4))
    cur[:, 0] += 2.0  # one shifted feature
    cur[5, 1] = np.nan
    report = compare_features(ref, cur, ["a", "b", "c", "d"], DriftConfig(min_drift_share=0.5))
    assert [f.feature for f in report.features if f.drifted] == ["a"]
    assert report.n_current == 599
    assert report.drift_share == 0.25 and not report.drifted  # 1 of 4 < 0.5
    assert compare_features(ref, cur, list("abcd"), DriftConfig(min_drift_share=0.25)).drifted
    with pytest.raises(ValueError, match="do not match"):
        compare_features(ref, cur[:, :3], list("abcd"))
    with pytest.raises(ValueError, match="too few rows"):
        compare_features(ref, cur[:3], list("abcd"))


def test_drift_config_rejects_nonsense():
    for bad in (
        {"psi_threshold": -1},
        {"ks_pvalue_threshold": 0},
        {"min_drift_share": 1.5},
        {"bins": 1},
        {"null_margin": float("nan")},
    ):
        with pytest.raises(ValueError, match="DriftConfig"):
            DriftConfig(**bad)


def test_span_rows():
    assert span_rows(3, "5m") == 864
    assert span_rows(1, "30m") == 48
    assert span_rows(3, None) == 0


# --------------------------------------------------------------------------------------------
# real candles: the reference is the train rows of an ETH/BTC model, rebuilt from its metadata
# --------------------------------------------------------------------------------------------


def _metadata(train_start: str = "2018-01-10T12:00:00+00:00", train_end: str = "2018-01-24T00:00:00+00:00") -> dict:
    """What the orchestrator writes for a model trained on ETH/BTC (only the keys the reference needs)."""
    return {
        "pipeline": PIPELINE,
        "data": {"sources": [str(SHARED_MARKET / "ETH_BTC-5m.feather")], "symbols": ["ETH/BTC"], "timeframe": "5m"},
        "dataset": {"time_range": {"train": {"ETH/BTC": {"start": train_start, "end": train_end}}}},
    }


@pytest.fixture(scope="module")
def eth_reference():
    return reference_from_metadata(_metadata())


def _series(name: str, end: str | None = None):
    s = load_candles(SHARED_MARKET / name)[0]
    if end is not None:
        ts = pd.to_datetime(s.frame["timestamp"], utc=True)
        s = dataclasses.replace(s, frame=s.frame[(ts < pd.Timestamp(end, tz="UTC")).to_numpy()].reset_index(drop=True))
    return s


def _check(reference, series):
    current = recent_features([series], PIPELINE, RECENT_DAYS)
    return compare_features(
        reference.X,
        current.X,
        NAMES,
        DriftConfig(),
        reference_groups=reference.groups,
        min_chunk_rows=span_rows(RECENT_DAYS, "5m"),
    )


def test_reference_holds_exactly_the_training_rows(eth_reference):
    ref = eth_reference
    assert ref.info["kind"] == "training_rows" and ref.info["symbols"] == ["ETH/BTC"]
    rng = ref.info["time_range"]["ETH/BTC"]
    # the train range extended back by window - 1 = 15 candles, to the end of the range
    assert pd.Timestamp(rng["start"]) == pd.Timestamp("2018-01-10T12:00:00Z") - pd.Timedelta(minutes=5 * 15)
    assert ref.X.shape == (rng["rows"], len(NAMES)) and np.isfinite(ref.X).all()
    assert 3800 < ref.X.shape[0] < 4000  # 13.5 days of 5-minute candles


@pytest.mark.parametrize(
    "name, end, why",
    [
        ("ETH_BTC-5m.feather", None, "same pair, the held-out days after training (Jan 27-30)"),
        ("ETH_BTC-5m.feather", "2018-01-27", "same pair, the validation period (Jan 24-27)"),
    ],
)
def test_data_from_the_training_distribution_does_not_drift(eth_reference, name, end, why):
    report = _check(eth_reference, _series(name, end))
    assert not report.drifted, f"{why}: {report.summary}"
    assert report.n_drifted <= 2, report.summary  # measured: 1 and 2 of 22 (margin to the threshold: 4)
    assert report.calibrated


@pytest.mark.parametrize(
    "name, why",
    [
        ("XRP_USDT_USDT-5m-futures.feather", "another pair, quote currency, market type and year (2021 futures)"),
        ("UNITTEST_BTC-30m.feather", "another timeframe"),
        ("XRP_ETH-5m.feather", "another pair and period (2019)"),
    ],
)
def test_other_markets_drift(eth_reference, name, why):
    report = _check(eth_reference, _series(name))
    assert report.drifted, f"{why}: {report.summary}"
    assert report.n_drifted >= 7, report.summary  # measured: 8, 18, 17 of 22


def test_the_uncalibrated_rule_would_flag_the_same_pair(eth_reference):
    """Why the limits are calibrated: plain 'PSI > 0.2 and KS p < 0.01' calls the held-out ETH days drift."""
    current = recent_features([_series("ETH_BTC-5m.feather")], PIPELINE, RECENT_DAYS)
    plain = compare_features(eth_reference.X, current.X, NAMES, DriftConfig(null_margin=0.0))
    assert plain.drifted and plain.n_drifted >= 15 and not plain.calibrated


def test_report_table_and_files(eth_reference, tmp_path):
    report = _check(eth_reference, _series("UNITTEST_BTC-30m.feather"))
    table = report.format_table()
    assert table.splitlines()[0].split() == ["feature", "psi", "limit", "ks_stat", "ks_pvalue", "drifted"]
    assert all(name in table for name in NAMES) and "YES" in table
    paths = report.write(tmp_path)
    assert set(paths) == {"drift_report.json", "drift_report.csv", "drift_report.png"}
    data = json.loads(paths["drift_report.json"].read_text())
    assert data["drifted"] is True and len(data["features"]) == len(NAMES)
    assert set(data["features"][0]) == {
        "feature",
        "psi",
        "psi_limit",
        "reference_chunk_psi_max",
        "ks_statistic",
        "ks_pvalue",
        "drifted",
    }
    csv = pd.read_csv(paths["drift_report.csv"])
    assert list(csv["feature"]) == NAMES and csv["drifted"].sum() == report.n_drifted
    assert paths["drift_report.png"].read_bytes()[:4] == b"\x89PNG"


def test_reference_from_a_missing_source_says_which_and_what_to_do(tmp_path):
    meta = _metadata()
    meta["data"]["sources"] = [str(tmp_path / "gone.feather")]
    with pytest.raises(DriftReferenceError, match=r"gone\.feather.*--reference-data"):
        reference_from_metadata(meta)
    meta = _metadata("2020-01-01T00:00:00+00:00", "2020-01-05T00:00:00+00:00")
    with pytest.raises(DriftReferenceError, match="no candles in the training range"):
        reference_from_metadata(meta)
    with pytest.raises(DriftReferenceError, match="pipeline"):
        reference_from_metadata({"data": {}})


def test_explicit_reference_data_replaces_the_recorded_sources():
    ref = reference_from_metadata(_metadata(), reference_data=str(SHARED_MARKET / "LTC_BTC-5m.feather"))
    assert ref.info["kind"] == "explicit" and ref.info["symbols"] == ["LTC/BTC"]
    assert ref.X.shape[0] > 5000
