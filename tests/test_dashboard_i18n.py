"""The dashboard's translation table: complete in both languages, same placeholders, every key the
pages use present, every status / decision / trigger the services can return translated."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from backend.dashboard import i18n
from backend.dashboard.i18n import TEXTS, pick_language, placeholders, t

DASHBOARD = Path(__file__).resolve().parents[1] / "backend" / "dashboard"
CYRILLIC = re.compile(r"[А-Яа-яЁё]")
#: Texts that are the same in every language on purpose (codes, formats).
NEUTRAL = {"lang.ru", "lang.en", "validation.line", "retraining.psi"}


def test_both_languages_have_every_key_with_the_same_placeholders() -> None:
    assert set(TEXTS["ru"]) == set(TEXTS["en"])
    for key in TEXTS["ru"]:
        assert TEXTS["ru"][key].strip() and TEXTS["en"][key].strip(), key
        assert placeholders(TEXTS["ru"][key]) == placeholders(TEXTS["en"][key]), key


def test_each_text_is_written_in_its_language() -> None:
    for key in TEXTS["ru"]:
        if key in NEUTRAL:
            continue
        assert CYRILLIC.search(TEXTS["ru"][key]), f"ru {key}: {TEXTS['ru'][key]!r} has no Russian"
        assert not CYRILLIC.search(TEXTS["en"][key]), f"en {key}: {TEXTS['en'][key]!r} has Russian"


def _used_keys() -> set[str]:
    source = "\n".join(p.read_text() for p in DASHBOARD.rglob("*.py"))
    return set(re.findall(r"""\bt\(\s*["']([a-z_.A-Z0-9]+)["']""", source))


def test_every_key_the_pages_use_exists() -> None:
    used = _used_keys()
    assert len(used) > 150
    assert not sorted(k for k in used if k not in TEXTS["ru"])


def test_every_value_the_services_return_is_translated() -> None:
    from mlflow.entities import RunStatus
    from mlflow.entities.model_registry.model_version_status import ModelVersionStatus

    from backend.dashboard.views.glossary import TERMS
    from backend.dashboard.views.runs import SORT_KEYS
    from backend.ml_engine.retraining_pipeline import TRIGGERS
    from backend.services.schemas import JOB_KINDS, JOB_STATUSES, PromotionEventPublic

    decisions = typing.get_args(PromotionEventPublic.model_fields["decision"].annotation)
    keys = (
        [f"run.status.{RunStatus.to_string(s)}" for s in RunStatus.all_status()]
        + [f"version.status.{ModelVersionStatus.to_string(s)}" for s in ModelVersionStatus.all_status()]
        + [f"job.status.{s}" for s in JOB_STATUSES]
        + [f"job.kind.{k}" for k in JOB_KINDS]
        + [f"decision.{d}" for d in decisions]
        + [f"trigger.{x}" for x in TRIGGERS]
        + [f"glossary.{k}.{part}" for k, _ in TERMS for part in ("term", "desc", "where")]
        + [f"runs.sort.{k.split('.', 1)[1]}" for k in SORT_KEYS if k.startswith("attributes.")]
        + [f"lang.{code}" for code in i18n.LANGUAGES]
    )
    assert not [k for k in keys if k not in TEXTS["ru"]]


def test_the_guides_glossary_terms_are_there() -> None:
    from backend.dashboard.views.glossary import TERMS

    assert {"experiment", "run", "artifact", "metric", "parameter", "tag", "registry", "version", "alias"} <= {
        k for k, _ in TERMS
    }


def test_t_fills_placeholders_and_refuses_unknown_keys() -> None:
    assert t("runs.page_info", "ru", page=2, count=50) == "Страница 2 · запусков на ней: 50"
    assert t("runs.page_info", "en", page=2, count=50) == "Page 2 · 50 runs on it"
    assert t("overview.title", "ru") == "Обзор" and t("overview.title", "en") == "Overview"
    with pytest.raises(KeyError):
        t("no.such.key", "ru")


def test_pick_language_of_the_projects_bilingual_descriptions() -> None:
    from backend.ml_engine.mlflow_integration.experiments import EXPERIMENT_DESCRIPTIONS

    text = EXPERIMENT_DESCRIPTIONS["model_training"]
    ru, en = pick_language(text, "ru"), pick_language(text, "en")
    assert ru.startswith("Ручное обучение через TrainingOrchestrator") and not re.search("Manual training", ru)
    assert en.startswith("Manual training through TrainingOrchestrator") and not CYRILLIC.search(en)
    assert pick_language("only English here", "ru") == "only English here"  # nothing to choose from
    assert i18n.in_language("Привет", "ru") and i18n.in_language("hello", "en")
    assert not i18n.in_language("hello", "ru")


# -- the engine's verdicts: rendered from codes, never translated back from English ------------

#: Words the Russian renderings keep on purpose: the alias name, the format, the file's name, a
#: version's "v", the comparison "vs", the ``force=True`` argument, the method's name (walk-forward).
KEPT_IN_RUSSIAN = {"production", "ONNX", "MLmodel", "v", "vs", "force", "True", "walk", "forward"}
#: A word in Latin letters (the "e" of a number such as 3e-08 is no word).
LATIN_WORD = re.compile(r"(?<![0-9.])[A-Za-z]+")


def _without_values(text: str, params: dict) -> str:
    """``text`` with the text-valued parameters (metric names, errors, URIs: data, shown as they are) and
    non-finite numbers (``nan``, ``inf``) cut out."""
    for value in sorted((v for v in params.values() if isinstance(v, str)), key=len, reverse=True):
        text = text.replace(value, " ")
    return re.sub(r"(?<![A-Za-z])[-+]?(?:nan|inf)(?![A-Za-z])", " ", text)


def test_every_code_renders_in_russian_without_english_words() -> None:
    from verdict_support import SAMPLE_PARAMS

    from backend.ml_engine.verdicts import Check, catalogue, render

    assert set(SAMPLE_PARAMS) == set(catalogue()), "a code without sample parameters (or a sample of no code)"
    for code in catalogue():
        params = SAMPLE_PARAMS[code]
        for passed in (True, False):
            check = Check(code, passed, params)
            en, ru = render(check, "en"), render(check, "ru")
            assert en != ru, code
            assert CYRILLIC.search(ru), f"{code}: {ru!r} has no Russian"
            assert not CYRILLIC.search(en), f"{code}: {en!r} has Russian"
            en_words = set(LATIN_WORD.findall(_without_values(en, params))) - KEPT_IN_RUSSIAN
            ru_latin = set(LATIN_WORD.findall(_without_values(ru, params)))
            assert ru_latin <= KEPT_IN_RUSSIAN, f"{code}: Latin words {sorted(ru_latin - KEPT_IN_RUSSIAN)} in {ru!r}"
            assert not en_words & ru_latin, f"{code}: English words {sorted(en_words & ru_latin)} in {ru!r}"
            # the numbers and names of the English text are all in the Russian one
            assert set(re.findall(r"[-+]?\d[\d.e+-]*", en)) == set(re.findall(r"[-+]?\d[\d.e+-]*", ru)), code


def _assert_renders_in_both_languages(check, where: str) -> None:
    from backend.ml_engine.verdicts import catalogue, render

    assert check.code in catalogue(), f"{where}: code {check.code!r} is not in the catalogue"
    en, ru = render(check, "en"), render(check, "ru")
    args = ", ".join(f"{k}={v}" for k, v in check.params.items())
    fallbacks = {check.code, f"{check.code}: {args}", f"{check.code}: {dict(check.params)}"}  # render's "unknown"
    assert en and ru and en not in fallbacks and ru not in fallbacks, (where, check, en, ru)
    assert CYRILLIC.search(ru) and not CYRILLIC.search(en), (where, en, ru)
    assert not set(LATIN_WORD.findall(_without_values(ru, dict(check.params)))) - KEPT_IN_RUSSIAN, (where, ru)


def test_every_check_the_gate_makes_renders_in_both_languages() -> None:
    from verdict_support import gate_checks

    from backend.ml_engine.verdicts import Verdict

    checks = gate_checks()
    for check in checks:
        _assert_renders_in_both_languages(check, "gate")
    gate_codes = {
        "archived",
        "accuracy_missing",
        "accuracy_below_min",
        "accuracy_ok",
        "primary_missing",
        "first_version",
        "champion_metric_missing",
        "beats_production",
        "not_better",
        "signature_unchecked",
        "signature_missing",
        "signature_ok",
        "onnx_parity_missing",
        "onnx_parity_too_large",
        "onnx_parity_ok",
        "dsr_missing",
        "dsr_below_min",
        "dsr_ok",
        "pbo_missing",
        "pbo_above_max",
        "pbo_ok",
    }
    assert {c.code for c in checks} == gate_codes  # every branch of PromotionGate.check was taken
    assert {c.params.get("why") for c in checks if c.code == "signature_missing"} == {
        "no_signature",
        "unreadable",
        None,
    }
    refused = Verdict(tuple(c for c in checks if c.code == "archived")[:1], gate=True)
    assert (
        refused.render("ru") == "отказано: версия в архиве" and refused.render("en") == "refused: version is archived"
    )


def test_every_decision_of_the_model_store_renders_in_both_languages(tmp_path: Path) -> None:
    from verdict_support import gate_checks, store_decisions

    from backend.ml_engine.verdicts import catalogue

    codes: set[str] = set()
    for what, verdict, reason_check in store_decisions(tmp_path):
        assert verdict is not None, f"{what}: no verdict recorded"
        for check in (*verdict.checks, *verdict.notes, *([reason_check] if reason_check else [])):
            _assert_renders_in_both_languages(check, what)
            codes.add(check.code)
        ru, en = verdict.render("ru"), verdict.render("en")
        assert CYRILLIC.search(ru) and not CYRILLIC.search(en), (what, en, ru)
        if verdict.gate:
            assert ru.startswith(("отказано: ", "проверки пройдены: ")), (what, ru)
            assert en.startswith(("refused: ", "gate passed: ")), (what, en)
    store_only = {
        "forced",
        "already_in_production",
        "rolled_back",
        "restored",
        "archived_version",
        "evaluation_failed",
        "no_evaluator",
        "auto_after_training",
    }
    assert store_only <= codes, sorted(store_only - codes)
    # with the gate's own checks, every code but the retraining pipeline's reason was produced for real
    produced = codes | {c.code for c in gate_checks()}
    assert set(catalogue()) - produced == {"auto_retraining"}


def test_what_the_services_hand_the_pages_renders_in_either_language() -> None:
    """The dashboard renders from the codes the service returns (``event.detail_text(lang)``); an entry
    recorded before verdicts existed is shown as it was recorded."""
    from datetime import UTC, datetime

    from backend.ml_engine.registry import PromotionDecision, PromotionEvent
    from backend.ml_engine.verdicts import Check, Verdict
    from backend.services.models import decision_public, event_public

    verdict = Verdict((Check("archived", False), Check("signature_ok")), (Check("no_evaluator"),), gate=True)
    event = PromotionEvent(
        seq=3,
        name="m",
        decision="refused",
        version=2,
        from_version=1,
        to_version=1,
        reason="",
        detail=verdict.render(),
        actor="auto",
        forced=False,
        timestamp=datetime.now(UTC),
        verdict=verdict,
        reason_check=Check("auto_after_training"),
    )
    public = event_public(event, "en")
    assert public.message == public.detail == event.detail and public.detail.startswith("refused: version is archived")
    assert public.detail_text("ru").startswith("отказано: версия в архиве; ")
    assert public.reason_text("ru") == "автоматическое продвижение после обучения" and public.reason == ""
    ru = event_public(event, "ru")
    assert ru.message == public.detail_text("ru") and [c.text for c in ru.checks] == [
        "версия в архиве",
        "сигнатура есть",
    ]
    assert ru.reason_check is not None and ru.reason_check.text == public.reason_text("ru")

    old = PromotionEvent(
        seq=1,
        name="m",
        decision="promoted",
        version=1,
        from_version=None,
        to_version=1,
        reason="weekly retrain",
        detail="gate passed: signature present",
        actor="api",
        forced=False,
        timestamp=datetime.now(UTC),
    )
    for lang in i18n.LANGUAGES:
        shown = event_public(old, lang)
        assert shown.detail_text(lang) == shown.message == "gate passed: signature present"
        assert shown.reason_text(lang) == "weekly retrain" and shown.checks == [] and shown.verdict() is None

    decision = decision_public(PromotionDecision(False, verdict.render(), 1, 2, event=event, verdict=verdict), "ru")
    assert decision.reason == event.detail and decision.message == decision.reason_text("ru") == ru.message
    assert decision.event is not None and decision.event.message == ru.message
