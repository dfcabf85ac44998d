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
        + [f"job.status.{s}" for s in JOB_STATUSES] + [f"job.kind.{k}" for k in JOB_KINDS]
        + [f"decision.{d}" for d in decisions] + [f"trigger.{x}" for x in TRIGGERS]
        + [f"glossary.{k}.{part}" for k, _ in TERMS for part in ("term", "desc", "where")]
        + [f"runs.sort.{k.split('.', 1)[1]}" for k in SORT_KEYS if k.startswith("attributes.")]
        + [f"lang.{code}" for code in i18n.LANGUAGES]
    )
    assert not [k for k in keys if k not in TEXTS["ru"]]


def test_the_guides_glossary_terms_are_there() -> None:
    from backend.dashboard.views.glossary import TERMS

    assert {"experiment", "run", "artifact", "metric", "parameter", "tag", "registry", "version", "alias"} <= {
        k for k, _ in TERMS}


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


def _gate_texts() -> list[str]:
    """Every sentence the promotion gate can write, produced by the gate itself."""
    from backend.ml_engine.model_registry import PromotionGate

    ok = {"test_accuracy": 0.6, "test_f1_macro": 0.5, "onnx_parity_max_abs_diff": 3e-8}
    texts = []
    for gate in (PromotionGate(), PromotionGate(primary_metric="test_loss", greater_is_better=False)):
        pm = gate.primary_metric
        cases = [
            dict(candidate={}, champion=None, signature_present=None, archived=True),
            dict(candidate={**ok, "test_accuracy": 0.4, pm: 0.5}, champion=None, signature_present=False,
                 signature_detail="MLmodel has no signature"),
            dict(candidate={**ok, pm: 0.5, "onnx_parity_max_abs_diff": 0.1}, champion={}, champion_version=3,
                 signature_present=False, signature_detail="no readable MLmodel at models:/m/1: OSError"),
            dict(candidate={**ok, pm: 0.5}, champion={pm: 0.9}, champion_version=3, signature_present=True),
            dict(candidate={**ok, pm: 0.9}, champion={pm: 0.5}, champion_version=3, signature_present=True,
                 metrics_source="the same recent holdout"),
            dict(candidate={**ok, pm: 0.9}, champion={pm: 0.5}, champion_version=3, signature_present=True,
                 metrics_source="recorded test metrics (no evaluator: not the same holdout)"),
            dict(candidate={"test_accuracy": 0.6, pm: 0.5}, champion=None, signature_present=True),
        ]
        for case in cases:
            candidate, champion = case.pop("candidate"), case.pop("champion")
            texts.append(gate.check(candidate, champion, **case).reason)
    return texts


REGISTRY_TEXTS = [  # written by ModelRegistry and the retraining pipeline around the gate's verdict
    "forced: promotion gate skipped",
    "v3 is already in production",
    "refused: holdout evaluation failed: ValueError: no candles; signature not checked",
    "gate passed: signature present; compared recorded test metrics from version tags (no holdout evaluator)",
    "rolled back from v3 to v2",
    "restored v2",
    "archived v2",
    "archived v2 (was production; production now unset)",
    "automatic promotion after training",
    "auto retraining (drift); walk-forward over 5 folds",
]


def test_every_gate_and_registry_sentence_reads_in_russian() -> None:
    from backend.dashboard.i18n import engine_text, in_language

    texts = _gate_texts() + REGISTRY_TEXTS
    assert any("refused: " in x for x in texts) and any("gate passed: " in x for x in texts)
    for text in texts:
        ru = engine_text(text, "ru")
        for clause in ru.split("; "):
            assert in_language(clause, "ru"), f"untranslated {clause!r} in {text!r} -> {ru!r}"
        assert engine_text(text, "en") == text
    # numbers, metric names and versions survive; unknown text (a person's reason) is left alone
    ru = engine_text("refused: test_accuracy 0.4812 < min 0.5", "ru")
    assert ru == "отказано: test_accuracy 0.4812 < минимума 0.5"
    assert engine_text("weekly retrain", "ru") == "weekly retrain"
