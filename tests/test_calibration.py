"""Calibration: ECE and reliability bins, temperature scaling recovers a known T, reliability diagram PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.ml_engine.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    logits_from_proba,
    negative_log_likelihood,
    reliability_curve,
    softmax,
)
from backend.ml_engine.plots import plot_reliability


def sample_labels(rng: np.random.Generator, proba: np.ndarray) -> np.ndarray:
    """One label per row drawn from its own class probabilities."""
    u = rng.random(proba.shape[0])[:, None]
    out: np.ndarray = (u > np.cumsum(proba, axis=1)).sum(axis=1)
    return np.minimum(out, proba.shape[1] - 1)


def logits_and_labels(seed: int, n: int, t0: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, (n, 3))
    return logits, sample_labels(rng, softmax(logits / t0))


def test_ece_near_zero_when_labels_follow_the_probabilities() -> None:
    rng = np.random.default_rng(0)
    proba = softmax(rng.normal(0, 1.5, (40_000, 3)))
    y = sample_labels(rng, proba)
    assert expected_calibration_error(proba, y) < 0.01  # sampling noise only
    conf, acc, count = reliability_curve(proba, y, 15)
    ok = count > 500
    np.testing.assert_allclose(acc[ok], conf[ok], atol=0.03)


def test_ece_by_hand_and_bins() -> None:
    proba = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6]])
    y = np.array([0, 1, 1, 0])
    # bins of width 0.2: 0.9, 0.9 -> (0.8, 1]; 0.5 -> (0.4, 0.6]; 0.6 -> (0.4, 0.6] (right-closed)
    conf, acc, count = reliability_curve(proba, y, n_bins=5)
    assert count.tolist() == [0, 0, 2, 0, 2]
    assert conf[2] == pytest.approx(0.55) and acc[2] == pytest.approx(0.5)
    assert conf[4] == pytest.approx(0.9) and acc[4] == pytest.approx(0.5)
    assert np.isnan(conf[0]) and np.isnan(acc[3])
    expected = (2 * abs(0.5 - 0.55) + 2 * abs(0.5 - 0.9)) / 4
    assert expected_calibration_error(proba, y, n_bins=5) == pytest.approx(expected)
    assert expected_calibration_error(np.eye(3), [0, 1, 2]) == 0.0


@pytest.mark.parametrize("t0", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_a_known_temperature(t0: float) -> None:
    logits, y = logits_and_labels(1, 20_000, t0)
    assert fit_temperature(logits, y) == pytest.approx(t0, rel=0.06)


def test_temperature_lowers_nll_of_an_overconfident_model_and_keeps_the_argmax() -> None:
    true_logits, y = logits_and_labels(2, 10_000, 1.0)
    overconfident = 3.0 * true_logits  # the model's logits are 3x too sharp
    t = fit_temperature(overconfident, y)
    assert t == pytest.approx(3.0, rel=0.1)
    assert negative_log_likelihood(overconfident, y, t) < negative_log_likelihood(overconfident, y) - 0.1
    calibrated = apply_temperature(overconfident, t)
    np.testing.assert_array_equal(calibrated.argmax(1), overconfident.argmax(1))
    np.testing.assert_allclose(calibrated.sum(1), 1.0)
    before = expected_calibration_error(softmax(overconfident), y)
    assert expected_calibration_error(calibrated, y) < before / 3
    # probabilities in: the same fit through log p
    assert fit_temperature(logits_from_proba(softmax(overconfident)), y) == pytest.approx(t, rel=1e-3)


def test_validation() -> None:
    with pytest.raises(ValueError, match="proba"):
        expected_calibration_error(np.ones(3), [0])
    with pytest.raises(ValueError, match="class ids"):
        expected_calibration_error(np.eye(3), [0, 1, 3])
    with pytest.raises(ValueError, match="n_bins"):
        reliability_curve(np.eye(3), [0, 1, 2], n_bins=0)
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(np.eye(3), 0.0)
    with pytest.raises(ValueError, match="bounds"):
        fit_temperature(np.eye(3), [0, 1, 2], bounds=(2.0, 1.0))


def test_plot_reliability_writes_png(tmp_path: Path) -> None:
    logits, y = logits_and_labels(3, 2000, 1.0)
    curves = {
        "raw x3": reliability_curve(softmax(3 * logits), y, 10),
        "calibrated": reliability_curve(apply_temperature(3 * logits, 3.0), y, 10),
    }
    out = plot_reliability(curves, tmp_path / "r" / "reliability.png", title="test")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        plot_reliability({}, tmp_path / "x.png")
