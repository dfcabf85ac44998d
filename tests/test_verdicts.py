"""Verdicts (backend/ml_engine/verdicts.py): every code's words in English and Russian from its
parameters, the fallback for a code this version does not know, the gate's one-line form, and the
round trips that keep the codes (``Verdict`` to and from a dict, a history entry to and from JSON)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from verdict_support import SAMPLE_PARAMS

from backend.ml_engine.registry import PromotionDecision, PromotionEvent
from backend.ml_engine.verdicts import LANGUAGES, Check, Verdict, catalogue, render, render_reason

#: code -> (English, Russian) of ``SAMPLE_PARAMS[code]``.
EXPECTED: dict[str, tuple[str, str]] = {
    "archived": ("version is archived", "версия в архиве"),
    "accuracy_missing": ("no test_accuracy recorded", "метрика test_accuracy не записана"),
    "accuracy_below_min": ("test_accuracy 0.4812 < min 0.5", "test_accuracy 0.4812 < минимума 0.5"),
    "accuracy_ok": ("test_accuracy 0.6100 >= min 0.5", "test_accuracy 0.6100 ≥ минимума 0.5"),
    "primary_missing": ("candidate has no finite test_f1_macro", "у кандидата нет конечного значения test_f1_macro"),
    "first_version": (
        "no production version yet (test_f1_macro 0.5200)",
        "в production ещё нет версии (test_f1_macro 0.5200)",
    ),
    "champion_metric_missing": (
        "production v3 has no finite test_f1_macro to compare against (use force=True)",
        "у версии из production (v3) нет конечного значения test_f1_macro для сравнения (нужен force=True)",
    ),
    "beats_production": (
        "test_f1_macro 0.6000 > production v3 0.5000 (gain +0.1000, needs > 0) on the same recent holdout",
        "лучше версии из production (v3): test_f1_macro 0.6000 > 0.5000 (прирост +0.1000, нужно > 0) на одной и той же "
        "свежей отложенной выборке",
    ),
    "not_better": (
        "not better than production: test_f1_macro 0.5000 vs production v3 0.9000 (gain -0.4000, needs > 0.05) on recorded test metrics",
        "не лучше версии из production (v3): test_f1_macro 0.5000 против 0.9000 (прирост -0.4000, нужно > 0.05) на "
        "записанных тестовых метриках",
    ),
    "signature_unchecked": ("signature not checked", "сигнатура не проверена"),
    "signature_missing": (
        "model signature missing (no readable MLmodel at models:/m/1: OSError)",
        "нет сигнатуры модели (MLmodel не читается: models:/m/1: OSError)",
    ),
    "signature_ok": ("signature present", "сигнатура есть"),
    "onnx_parity_missing": (
        "ONNX parity not recorded (onnx_parity_max_abs_diff)",
        "паритет ONNX не записан (onnx_parity_max_abs_diff)",
    ),
    "onnx_parity_too_large": (
        "ONNX parity onnx_parity_max_abs_diff 0.1 > 0.0001",
        "паритет ONNX: onnx_parity_max_abs_diff 0.1 > 0.0001",
    ),
    "onnx_parity_ok": ("ONNX parity 3e-08 <= 0.0001", "паритет ONNX 3e-08 ≤ 0.0001"),
    "dsr_missing": (
        "no tuning_dsr tag: no Deflated Sharpe Ratio of a hyperparameter search recorded (needs >= 0.95)",
        "нет тега tuning_dsr: дефлированный коэффициент Шарпа подбора гиперпараметров не записан (нужно ≥ 0.95)",
    ),
    "dsr_below_min": (
        "Deflated Sharpe Ratio (tuning_dsr) 0.4123 < min 0.95",
        "дефлированный коэффициент Шарпа (tuning_dsr) 0.4123 < минимума 0.95",
    ),
    "dsr_ok": (
        "Deflated Sharpe Ratio (tuning_dsr) 0.9700 >= min 0.95",
        "дефлированный коэффициент Шарпа (tuning_dsr) 0.9700 ≥ минимума 0.95",
    ),
    "pbo_missing": (
        "no tuning_pbo tag: no probability of backtest overfitting of a hyperparameter search recorded (needs <= 0.2)",
        "нет тега tuning_pbo: вероятность переобучения бэктеста при подборе гиперпараметров не записана (нужно ≤ 0.2)",
    ),
    "pbo_above_max": (
        "probability of backtest overfitting (tuning_pbo) 0.4500 > max 0.2",
        "вероятность переобучения бэктеста (tuning_pbo) 0.4500 > максимума 0.2",
    ),
    "pbo_ok": (
        "probability of backtest overfitting (tuning_pbo) 0.0500 <= max 0.2",
        "вероятность переобучения бэктеста (tuning_pbo) 0.0500 ≤ максимума 0.2",
    ),
    "evaluation_failed": (
        "holdout evaluation failed: ValueError: no candles",
        "оценка на отложенной выборке не удалась: ValueError: no candles",
    ),
    "no_evaluator": (
        "compared recorded test metrics from version tags (no holdout evaluator)",
        "сравнивались метрики, записанные при обучении: общей свежей выборки не было, данные у версий могут различаться",
    ),
    "forced": ("forced: promotion gate skipped", "принудительно: проверки пропущены"),
    "already_in_production": ("v3 is already in production", "v3 уже в production"),
    "rolled_back": ("rolled back from v3 to v2", "откат с v3 на v2"),
    "restored": ("restored v2", "восстановлена v2"),
    "archived_version": (
        "archived v2 (was production; production now unset)",
        "v2 в архиве (была в production; теперь production не задан)",
    ),
    "auto_after_training": ("automatic promotion after training", "автоматическое продвижение после обучения"),
    "auto_retraining": (
        "auto retraining (drift); walk-forward over 5 folds; production v2 scored on 4 folds",
        "автоматическое переобучение (из-за дрейфа данных); walk-forward по 5 фолдам; production v2 scored on 4 folds",
    ),
}


def test_the_expected_table_covers_the_catalogue() -> None:
    assert set(EXPECTED) == set(catalogue()) == set(SAMPLE_PARAMS)
    assert LANGUAGES == ("en", "ru")


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_every_code_renders_its_parameters_in_both_languages(code: str) -> None:
    en, ru = EXPECTED[code]
    for passed in (True, False):  # the words do not depend on the outcome; the prefix of a list does
        check = Check(code, passed, SAMPLE_PARAMS[code])
        assert render(check, "en") == en
        assert render(check, "ru") == ru
        assert render(check.to_dict(), "ru") == ru  # a recorded (JSON) check renders the same
    assert render(Check(code, True, SAMPLE_PARAMS[code])) == en  # English by default


def test_variants_of_codes_with_optional_parameters() -> None:
    def both(code: str, **params: object) -> tuple[str, str]:
        return render(Check(code, False, params), "en"), render(Check(code, False, params), "ru")

    assert both("signature_missing", why="no_signature") == (
        "model signature missing (MLmodel has no signature)",
        "нет сигнатуры модели (в MLmodel её нет)",
    )
    assert both("signature_missing") == ("model signature missing", "нет сигнатуры модели")
    assert both("archived_version", version=4, was_production=False) == ("archived v4", "v4 в архиве")
    assert both("auto_retraining", trigger="scheduled", folds=3) == (
        "auto retraining (scheduled); walk-forward over 3 folds",
        "автоматическое переобучение (по расписанию); walk-forward по 3 фолдам",
    )
    lower = dict(SAMPLE_PARAMS["beats_production"], greater_is_better=False, value=0.4, champion_value=0.5)
    assert render(Check("beats_production", True, lower)).startswith("test_f1_macro 0.4000 < production v3 0.5000")
    unknown_source = dict(SAMPLE_PARAMS["not_better"], source="a_new_source")
    assert render(Check("not_better", False, unknown_source), "ru").endswith("на a_new_source")


def test_numbers_that_are_not_finite_or_not_numbers_are_shown_as_they_are() -> None:
    nan = {"metric": "test_accuracy", "value": math.nan, "min": 0.5}
    assert render(Check("accuracy_below_min", False, nan)) == "test_accuracy nan < min 0.5"
    assert (
        render(Check("accuracy_below_min", False, {**nan, "value": None}), "ru") == "test_accuracy None < минимума 0.5"
    )
    assert render(Check("onnx_parity_too_large", False, {"metric": "d", "value": math.inf, "max": 1e-4})) == (
        "ONNX parity d inf > 0.0001"
    )


def test_an_unknown_code_or_a_missing_parameter_falls_back_to_the_code() -> None:
    assert render(Check("brand_new_check", False, {"x": 1, "y": "z"}), "ru") == "brand_new_check: x=1, y=z"
    assert render(Check("brand_new_check"), "en") == "brand_new_check"
    assert render({"code": "brand_new_check"}, "ru") == "brand_new_check"
    # a known code written without the parameters its words need: the code and what is known
    assert render(Check("accuracy_below_min", False, {"metric": "test_accuracy"}), "ru") == (
        "accuracy_below_min: {'metric': 'test_accuracy'}"
    )
    assert render(Check("rolled_back", True, {"from_version": 3})) == "rolled_back: {'from_version': 3}"
    # an unknown language is English
    assert render(Check("archived", False), "de") == "version is archived"


def test_render_reason_introduces_the_gates_checks_and_appends_notes() -> None:
    ok = Check("accuracy_ok", True, SAMPLE_PARAMS["accuracy_ok"])
    low = Check("accuracy_below_min", False, SAMPLE_PARAMS["accuracy_below_min"])
    archived = Check("archived", False)
    note = Check("no_evaluator")
    assert render_reason([ok, low, archived], "en") == "refused: test_accuracy 0.4812 < min 0.5; version is archived"
    assert render_reason([ok, low, archived], "ru") == "отказано: test_accuracy 0.4812 < минимума 0.5; версия в архиве"
    assert render_reason([ok], "ru", notes=[note]) == (
        "проверки пройдены: test_accuracy 0.6100 ≥ минимума 0.5; "
        "сравнивались метрики, записанные при обучении: общей свежей выборки не было, данные у версий могут различаться"
    )
    assert render_reason([ok.to_dict(), archived.to_dict()], "en", gate=False) == (
        "test_accuracy 0.6100 >= min 0.5; version is archived"
    )
    assert render_reason([], "en", gate=False, notes=[note.to_dict()]) == render(note)


def test_verdict_round_trip_and_its_words() -> None:
    checks = (
        Check("evaluation_failed", False, {"error": "ValueError: no candles"}),
        Check("accuracy_ok", True, SAMPLE_PARAMS["accuracy_ok"]),
        Check("signature_unchecked", False),
    )
    verdict = Verdict(checks, (Check("no_evaluator"),), gate=True)
    assert not verdict.passed and [c.code for c in verdict.failures] == ["evaluation_failed", "signature_unchecked"]
    data = json.loads(json.dumps(verdict.to_dict()))  # what a history entry stores
    assert data == {
        "checks": [
            {"code": "evaluation_failed", "passed": False, "params": {"error": "ValueError: no candles"}},
            {"code": "accuracy_ok", "passed": True, "params": SAMPLE_PARAMS["accuracy_ok"]},
            {"code": "signature_unchecked", "passed": False, "params": {}},
        ],
        "notes": [{"code": "no_evaluator", "passed": True, "params": {}}],
        "gate": True,
    }
    again = Verdict.from_dict(data)
    assert again == verdict
    assert again.render("en") == (
        "refused: holdout evaluation failed: ValueError: no candles; signature not checked; "
        "compared recorded test metrics from version tags (no holdout evaluator)"
    )
    assert again.render("ru") == (
        "отказано: оценка на отложенной выборке не удалась: ValueError: no candles; "
        "сигнатура не проверена; сравнивались метрики, записанные при обучении: общей свежей выборки не было, "
        "данные у версий могут различаться"
    )
    one = Verdict.of("rolled_back", from_version=3, to_version=2)
    assert one.passed and not one.gate and Verdict.from_dict(one.to_dict()) == one
    assert (one.render("en"), one.render("ru")) == ("rolled back from v3 to v2", "откат с v3 на v2")
    assert Verdict.from_dict({}) == Verdict()
    assert Check.from_dict({"code": "forced"}) == Check("forced", True, {})


def _event(**overrides: object) -> PromotionEvent:
    verdict = Verdict(
        (Check("archived", False), Check("accuracy_ok", True, SAMPLE_PARAMS["accuracy_ok"])),
        (Check("no_evaluator"),),
        gate=True,
    )
    fields: dict = dict(
        seq=7,
        name="m",
        decision="refused",
        version=4,
        from_version=3,
        to_version=3,
        reason="",
        detail=verdict.render("en"),
        actor="auto",
        forced=False,
        timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        metrics={"candidate": {"test_accuracy": 0.61}},
        verdict=verdict,
        reason_check=Check("auto_after_training"),
    )
    fields.update(overrides)
    return PromotionEvent(**fields)


def test_history_entry_json_round_trip_keeps_the_verdict() -> None:
    event = _event()
    text = event.to_json()
    assert len(text) <= 5000 and "name" not in json.loads(text)
    again = PromotionEvent.from_json("m", 7, text)
    assert again == event
    assert (
        again.detail
        == "refused: version is archived; compared recorded test metrics from version tags (no holdout evaluator)"
    )
    assert again.detail_text("ru") == (
        "отказано: версия в архиве; сравнивались метрики, записанные при обучении: общей свежей выборки не было, "
        "данные у версий могут различаться"
    )
    assert again.reason_text("ru") == "автоматическое продвижение после обучения"
    assert again.reason_text("en") == "automatic promotion after training"


def test_an_entry_recorded_before_verdicts_is_shown_as_recorded() -> None:
    old = {
        "seq": 2,
        "decision": "promoted",
        "version": 2,
        "from_version": 1,
        "to_version": 2,
        "reason": "weekly retrain",
        "detail": "gate passed: signature present",
        "actor": "api",
        "forced": False,
        "timestamp": "2025-06-01T10:00:00+00:00",
        "metrics": {},
    }
    event = PromotionEvent.from_json("m", 2, json.dumps(old))
    assert event.verdict is None and event.reason_check is None
    assert event.detail_text("ru") == "gate passed: signature present"
    assert event.reason_text("ru") == "weekly retrain"
    assert PromotionEvent.from_json("m", 2, event.to_json()) == event


def test_a_long_entry_is_cut_to_the_tag_size_keeping_the_verdict_as_long_as_it_can() -> None:
    event = _event(reason="r" * 3000, detail="d" * 3000)
    text = event.to_json()
    assert len(text) <= 5000
    again = PromotionEvent.from_json("m", 7, text)
    assert again.verdict == event.verdict and len(again.reason) < 3000 and len(again.detail) < 3000
    assert again.detail_text("ru").startswith("отказано: версия в архиве")


def test_a_decision_renders_its_reason_from_the_verdict() -> None:
    verdict = Verdict.of("already_in_production", version=3)
    decision = PromotionDecision(False, verdict.render(), 3, 3, verdict=verdict)
    assert decision.reason == "v3 is already in production" and decision.reason_text("ru") == "v3 уже в production"
    assert PromotionDecision(True, "as recorded", 1, 2).reason_text("ru") == "as recorded"
    assert decision.to_dict()["verdict"] == verdict.to_dict()
