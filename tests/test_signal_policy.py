"""SignalPolicy: argmax / threshold / long only positions, validation, dict round trip, one-line description."""

from __future__ import annotations

import numpy as np
import pytest

from backend.ml_engine.signal_policy import SignalPolicy

PROBA = np.array(
    [
        [0.1, 0.2, 0.7],  # up
        [0.6, 0.3, 0.1],  # down
        [0.2, 0.6, 0.2],  # flat
        [0.45, 0.1, 0.45],  # up = down: argmax takes down (lowest id), threshold stays flat
        [0.35, 0.3, 0.35],
    ]
)


def test_argmax_long_short_and_long_only() -> None:
    assert SignalPolicy().positions(PROBA).tolist() == [1, -1, 0, -1, -1]
    assert SignalPolicy(direction="long_only").positions(PROBA).tolist() == [1, 0, 0, 0, 0]
    assert SignalPolicy().positions(PROBA).dtype == np.float64


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [(0.65, [1, 0, 0, 0, 0]), (0.55, [1, -1, 0, 0, 0]), (0.3, [1, -1, 0, 0, 0]), (1.0, [0, 0, 0, 0, 0])],
)
def test_threshold_mode(threshold: float, expected: list[int]) -> None:
    policy = SignalPolicy(mode="threshold", threshold=threshold)
    assert policy.positions(PROBA).tolist() == expected
    long_only = SignalPolicy(mode="threshold", threshold=threshold, direction="long_only")
    assert long_only.positions(PROBA).tolist() == [max(p, 0) for p in expected]


def test_positions_from_classes_are_one_hot_probabilities() -> None:
    pred = np.array([2, 0, 1, 2])
    assert SignalPolicy().positions_from_classes(pred).tolist() == [1, -1, 0, 1]
    assert SignalPolicy(mode="threshold", threshold=0.9).positions_from_classes(pred).tolist() == [1, -1, 0, 1]
    assert SignalPolicy(direction="long_only").positions_from_classes(pred).tolist() == [1, 0, 0, 1]
    with pytest.raises(ValueError, match="class ids"):
        SignalPolicy().positions_from_classes([0, 3])


def test_dict_round_trip_and_unknown_keys() -> None:
    policy = SignalPolicy(mode="threshold", threshold=0.6, direction="long_only", fee=0.0005, slippage=0.0002)
    d = policy.to_dict()
    assert d == {"mode": "threshold", "threshold": 0.6, "direction": "long_only", "fee": 0.0005, "slippage": 0.0002}
    assert SignalPolicy.from_dict(d) == policy
    assert SignalPolicy.from_dict({}) == SignalPolicy()
    with pytest.raises(ValueError, match=r"unknown keys \['fees'\]"):
        SignalPolicy.from_dict({"fees": 0.001})
    assert SignalPolicy(fee=0, threshold=1).to_dict()["fee"] == 0.0  # ints become floats


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "top"}, "mode"),
        ({"direction": "short_only"}, "direction"),
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": True}, "threshold"),
        ({"fee": -0.001}, "fee"),
        ({"fee": float("nan")}, "fee"),
        ({"slippage": 1.0}, "slippage"),
        ({"fee": 0.6, "slippage": 0.5}, "fee \\+ slippage"),
    ],
)
def test_validation_is_one_line(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        SignalPolicy(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)


def test_positions_validation() -> None:
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        SignalPolicy().positions(np.ones((3, 2)))
    with pytest.raises(ValueError, match="finite"):
        SignalPolicy().positions(np.array([[np.nan, 0.5, 0.5]]))


def test_describe() -> None:
    assert SignalPolicy().describe() == "argmax, long and short, fee 0.10% + slippage 0.00% per trade"
    assert (
        SignalPolicy(mode="threshold", threshold=0.6, direction="long_only", slippage=0.0005).describe()
        == "threshold 0.60, long only, fee 0.10% + slippage 0.05% per trade"
    )
    assert SignalPolicy(fee=0.001, slippage=0.0005).cost == pytest.approx(0.0015)
