"""The promotion gate's overfitting checks (issue 15, point 5): ``ML_GATE_MIN_DSR`` / ``ML_GATE_MAX_PBO``
read the Deflated Sharpe Ratio and the probability of backtest overfitting a hyperparameter search left
on the version (tags ``tuning_dsr`` / ``tuning_pbo``). Off by default: without them the gate's checks
are exactly what they were; with a threshold, a version without the tag is refused (fails closed)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from backend.ml_engine.config import Settings
from backend.ml_engine.registry import PromotionGate
from backend.ml_engine.registry._gate import TAG_DSR, TAG_PBO
from backend.ml_engine.verdicts import Check, Verdict

#: A candidate that passes every other check (first version, signature and ONNX parity fine).
GOOD = {"test_accuracy": 0.6, "test_f1_macro": 0.5, "onnx_parity_max_abs_diff": 1e-6}


def judge(gate: PromotionGate, tags: dict[str, Any] | None = None, **metrics: Any) -> dict[str, Check]:
    result = gate.check({**GOOD, **metrics}, None, signature_present=True, tags=tags)
    return {c.code: c for c in result.checks}


def test_the_tag_keys_are_named_once() -> None:
    assert (TAG_DSR, TAG_PBO) == ("tuning_dsr", "tuning_pbo")
    from backend.ml_engine.registry import _gate

    assert {"TAG_DSR", "TAG_PBO"} <= set(_gate.__all__)


def test_off_by_default_the_checks_are_exactly_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ML_GATE_MIN_DSR", raising=False)
    monkeypatch.delenv("ML_GATE_MAX_PBO", raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.gate_min_dsr is None and settings.gate_max_pbo is None
    gate = PromotionGate.from_settings(settings)
    assert gate == PromotionGate() and gate.min_dsr is None and gate.max_pbo is None
    tagged = {TAG_DSR: "0.01", TAG_PBO: "0.99"}  # dreadful statistics: not looked at while off
    for candidate, champion in ((GOOD, None), ({**GOOD, "test_accuracy": 0.4}, {"test_f1_macro": 0.9}), ({}, None)):
        before = PromotionGate().check(candidate, champion, champion_version=2, signature_present=True)
        for tags in (None, {}, tagged):
            after = gate.check(candidate, champion, champion_version=2, signature_present=True, tags=tags)
            assert after == before
        assert gate.check({**candidate, **tagged}, champion, champion_version=2, signature_present=True) == before
    assert [c.code for c in gate.check(GOOD, None, signature_present=True, tags=tagged).checks] == [
        "accuracy_ok",
        "first_version",
        "signature_ok",
        "onnx_parity_ok",
    ]


def test_settings_read_from_the_environment_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_GATE_MIN_DSR", "0.95")
    monkeypatch.setenv("ML_GATE_MAX_PBO", "0.2")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.gate_min_dsr, settings.gate_max_pbo) == (0.95, 0.2)
    gate = PromotionGate.from_settings(settings)
    assert (gate.min_dsr, gate.max_pbo) == (0.95, 0.2)
    assert PromotionGate.from_settings(settings, min_dsr=None).min_dsr is None  # overrides win
    for var, bad in (("ML_GATE_MIN_DSR", "1.5"), ("ML_GATE_MAX_PBO", "-0.1"), ("ML_GATE_MIN_DSR", "x")):
        monkeypatch.setenv(var, bad)
        with pytest.raises(ValidationError):
            Settings(_env_file=None)  # type: ignore[call-arg]
        monkeypatch.setenv(var, "0.5")


@pytest.mark.parametrize("kwargs", [{"min_dsr": 1.01}, {"min_dsr": -0.1}, {"max_pbo": math.nan}, {"max_pbo": 2}])
def test_thresholds_outside_zero_one_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be in \\[0, 1\\]"):
        PromotionGate(**kwargs)


def test_dsr_passes_at_or_above_the_minimum_and_refuses_below() -> None:
    gate = PromotionGate(min_dsr=0.95)
    ok = judge(gate, {TAG_DSR: "0.97"})
    assert ok["dsr_ok"] == Check("dsr_ok", True, {"tag": TAG_DSR, "value": 0.97, "min": 0.95})
    assert "pbo_ok" not in ok and "pbo_missing" not in ok  # only the threshold that is set is checked
    assert judge(gate, {TAG_DSR: "0.95"})["dsr_ok"].passed  # the minimum itself passes
    low = judge(gate, {TAG_DSR: "0.41"})["dsr_below_min"]
    assert not low.passed and low.params == {"tag": TAG_DSR, "value": 0.41, "min": 0.95}
    assert not judge(gate, {TAG_DSR: "nan"})["dsr_below_min"].passed
    result = gate.check(GOOD, None, signature_present=True, tags={TAG_DSR: "0.41"})
    assert not result.passed
    assert result.reason == "refused: Deflated Sharpe Ratio (tuning_dsr) 0.4100 < min 0.95"
    assert (
        result.verdict.render("ru") == "отказано: дефлированный коэффициент Шарпа (tuning_dsr) 0.4100 < минимума 0.95"
    )
    assert gate.check(GOOD, None, signature_present=True, tags={TAG_DSR: "0.97"}).passed


def test_pbo_passes_at_or_below_the_maximum_and_refuses_above() -> None:
    gate = PromotionGate(max_pbo=0.2)
    assert judge(gate, {TAG_PBO: "0.05"})["pbo_ok"] == Check(
        "pbo_ok", True, {"tag": TAG_PBO, "value": 0.05, "max": 0.2}
    )
    assert judge(gate, {TAG_PBO: "0.2"})["pbo_ok"].passed
    high = judge(gate, {TAG_PBO: "0.45"})["pbo_above_max"]
    assert not high.passed and high.params == {"tag": TAG_PBO, "value": 0.45, "max": 0.2}
    assert not judge(gate, {TAG_PBO: "nan"})["pbo_above_max"].passed
    result = gate.check(GOOD, None, signature_present=True, tags={TAG_PBO: "0.45"})
    assert result.reason == "refused: probability of backtest overfitting (tuning_pbo) 0.4500 > max 0.2"
    assert result.verdict.render("ru") == (
        "отказано: вероятность переобучения бэктеста (tuning_pbo) 0.4500 > максимума 0.2"
    )


def test_both_thresholds_each_their_own_check() -> None:
    gate = PromotionGate(min_dsr=0.9, max_pbo=0.3)
    good = gate.check(GOOD, None, signature_present=True, tags={TAG_DSR: "0.93", TAG_PBO: "0.1"})
    assert good.passed and [c.code for c in good.checks][-2:] == ["dsr_ok", "pbo_ok"]
    assert good.reason == (
        "gate passed: test_accuracy 0.6000 >= min 0.5; no production version yet (test_f1_macro 0.5000); "
        "signature present; ONNX parity 1e-06 <= 0.0001; Deflated Sharpe Ratio (tuning_dsr) 0.9300 >= min 0.9; "
        "probability of backtest overfitting (tuning_pbo) 0.1000 <= max 0.3"
    )
    assert good.verdict.render("ru").endswith(
        "дефлированный коэффициент Шарпа (tuning_dsr) 0.9300 ≥ минимума 0.9; "
        "вероятность переобучения бэктеста (tuning_pbo) 0.1000 ≤ максимума 0.3"
    )
    mixed = gate.check(GOOD, None, signature_present=True, tags={TAG_DSR: "0.93", TAG_PBO: "0.6"})
    assert not mixed.passed and [c.code for c in mixed.checks if not c.passed] == ["pbo_above_max"]


def test_a_version_without_the_tags_is_refused_while_a_threshold_is_set() -> None:
    gate = PromotionGate(min_dsr=0.95, max_pbo=0.2)
    for tags in (None, {}, {"study": "s1"}, {TAG_DSR: "", TAG_PBO: "not a number"}):
        result = gate.check(GOOD, None, signature_present=True, tags=tags)
        assert not result.passed
        assert [c for c in result.checks if not c.passed] == [
            Check("dsr_missing", False, {"tag": TAG_DSR, "min": 0.95}),
            Check("pbo_missing", False, {"tag": TAG_PBO, "max": 0.2}),
        ]
    result = gate.check(GOOD, None, signature_present=True)
    assert result.reason == (
        "refused: no tuning_dsr tag: no Deflated Sharpe Ratio of a hyperparameter search recorded (needs >= 0.95); "
        "no tuning_pbo tag: no probability of backtest overfitting of a hyperparameter search recorded (needs <= 0.2)"
    )
    assert result.verdict.render("ru") == (
        "отказано: нет тега tuning_dsr: дефлированный коэффициент Шарпа подбора гиперпараметров не записан "
        "(нужно ≥ 0.95); нет тега tuning_pbo: вероятность переобучения бэктеста при подборе гиперпараметров "
        "не записана (нужно ≤ 0.2)"
    )
    # only the statistic with a threshold is asked for
    only_dsr = PromotionGate(min_dsr=0.5).check(GOOD, None, signature_present=True, tags={TAG_DSR: "0.6"})
    assert only_dsr.passed


def test_the_statistics_are_found_among_the_metrics_too_and_the_tags_win() -> None:
    gate = PromotionGate(min_dsr=0.95, max_pbo=0.2)
    codes = judge(gate, None, tuning_dsr=0.97, tuning_pbo=0.1)
    assert {"dsr_ok", "pbo_ok"} <= set(codes)
    codes = judge(gate, {TAG_DSR: "0.5", TAG_PBO: "0.9"}, tuning_dsr=0.97, tuning_pbo=0.1)
    assert {"dsr_below_min", "pbo_above_max"} <= set(codes)


def test_the_checks_round_trip_as_a_history_entry_stores_them() -> None:
    gate = PromotionGate(min_dsr=0.95, max_pbo=0.2)
    verdict = gate.check(GOOD, None, signature_present=True, tags={TAG_DSR: "0.41"}).verdict
    again = Verdict.from_dict(verdict.to_dict())
    assert again == verdict
    assert again.render("en") == (
        "refused: Deflated Sharpe Ratio (tuning_dsr) 0.4100 < min 0.95; no tuning_pbo tag: no probability of "
        "backtest overfitting of a hyperparameter search recorded (needs <= 0.2)"
    )
