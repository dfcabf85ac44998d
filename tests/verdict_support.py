"""Helpers of the verdict tests (tests/test_verdicts.py, tests/test_dashboard_i18n.py): parameters for
every code of the catalogue, and every check the promotion gate and the model store produce, made
by the gate and the store themselves (not written by hand)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from backend.ml_engine.verdicts import Check, Verdict

#: Parameters of each code, as deciding code writes them (finite numbers; NaN is tested apart).
SAMPLE_PARAMS: dict[str, dict[str, Any]] = {
    "archived": {},
    "accuracy_missing": {"metric": "test_accuracy"},
    "accuracy_below_min": {"metric": "test_accuracy", "value": 0.4812, "min": 0.5},
    "accuracy_ok": {"metric": "test_accuracy", "value": 0.61, "min": 0.5},
    "primary_missing": {"metric": "test_f1_macro"},
    "first_version": {"metric": "test_f1_macro", "value": 0.52},
    "champion_metric_missing": {"metric": "test_f1_macro", "champion_version": 3},
    "beats_production": {
        "metric": "test_f1_macro",
        "value": 0.6,
        "champion_version": 3,
        "champion_value": 0.5,
        "gain": 0.1,
        "min_improvement": 0.0,
        "greater_is_better": True,
        "source": "same_holdout",
    },
    "not_better": {
        "metric": "test_f1_macro",
        "value": 0.5,
        "champion_version": 3,
        "champion_value": 0.9,
        "gain": -0.4,
        "min_improvement": 0.05,
        "greater_is_better": True,
        "source": "recorded",
    },
    "signature_unchecked": {},
    "signature_missing": {"why": "unreadable", "uri": "models:/m/1", "error": "OSError"},
    "signature_ok": {},
    "onnx_parity_missing": {"metric": "onnx_parity_max_abs_diff"},
    "onnx_parity_too_large": {"metric": "onnx_parity_max_abs_diff", "value": 0.1, "max": 0.0001},
    "onnx_parity_ok": {"value": 3e-08, "max": 0.0001},
    "dsr_missing": {"tag": "tuning_dsr", "min": 0.95},
    "dsr_below_min": {"tag": "tuning_dsr", "value": 0.4123, "min": 0.95},
    "dsr_ok": {"tag": "tuning_dsr", "value": 0.97, "min": 0.95},
    "pbo_missing": {"tag": "tuning_pbo", "max": 0.2},
    "pbo_above_max": {"tag": "tuning_pbo", "value": 0.45, "max": 0.2},
    "pbo_ok": {"tag": "tuning_pbo", "value": 0.05, "max": 0.2},
    "evaluation_failed": {"error": "ValueError: no candles"},
    "no_evaluator": {},
    "forced": {},
    "already_in_production": {"version": 3},
    "rolled_back": {"from_version": 3, "to_version": 2},
    "restored": {"version": 2},
    "archived_version": {"version": 2, "was_production": True},
    "auto_after_training": {},
    "auto_retraining": {"trigger": "drift", "folds": 5, "note": "production v2 scored on 4 folds"},
}


def gate_checks() -> list[Check]:
    """Every check :meth:`PromotionGate.check` makes, over every branch, for a metric where higher is
    better and one where lower is better."""
    from backend.ml_engine.registry import PromotionGate

    checks: list[Check] = []
    for gate in (
        PromotionGate(),
        PromotionGate(primary_metric="test_loss", greater_is_better=False, min_improvement=0.01),
    ):
        pm = gate.primary_metric
        ok = {"test_accuracy": 0.6, "onnx_parity_max_abs_diff": 3e-8}
        good, bad = (0.9, 0.5) if gate.greater_is_better else (0.1, 0.5)
        cases: list[dict[str, Any]] = [
            dict(candidate={}, champion=None, signature_present=None, archived=True),
            dict(
                candidate={**ok, "test_accuracy": 0.4, pm: 0.5},
                champion=None,
                signature_present=False,
                signature_problem={"why": "no_signature"},
            ),
            dict(
                candidate={**ok, "test_accuracy": float("nan"), pm: float("inf"), "onnx_parity_max_abs_diff": 0.1},
                champion={},
                champion_version=3,
                signature_present=False,
                signature_problem={"why": "unreadable", "uri": "models:/m/1", "error": "OSError"},
            ),
            dict(candidate={**ok, pm: 0.5}, champion={}, champion_version=3, signature_present=False),
            dict(candidate={**ok, pm: bad}, champion={pm: good}, champion_version=3, signature_present=True),
            dict(
                candidate={**ok, pm: good},
                champion={pm: bad},
                champion_version=3,
                signature_present=True,
                metrics_source="same_holdout",
            ),
            dict(
                candidate={**ok, pm: good},
                champion={pm: bad},
                champion_version=3,
                signature_present=True,
                metrics_source="recorded_no_evaluator",
            ),
            dict(candidate={"test_accuracy": 0.6, pm: 0.5}, champion=None, signature_present=True),
        ]
        for case in cases:
            candidate, champion = case.pop("candidate"), case.pop("champion")
            checks.extend(gate.check(candidate, champion, **case).checks)
    # the overfitting checks (ML_GATE_MIN_DSR, ML_GATE_MAX_PBO): missing, too weak, good
    search = PromotionGate(min_dsr=0.95, max_pbo=0.2)
    for tags in ({}, {"tuning_dsr": "0.41", "tuning_pbo": "0.45"}, {"tuning_dsr": "0.97", "tuning_pbo": "0.05"}):
        checks.extend(search.check({"test_accuracy": 0.6}, None, signature_present=True, tags=tags).checks)
    return checks


def _model_folder(root: Path, signed: bool) -> Path:
    """A folder with an MLmodel file (an input signature or none) and nothing else."""
    import numpy as np
    from mlflow.models import Model
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    root.mkdir(parents=True)
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float32"), (-1, 4))])) if signed else None
    Model(signature=signature).save(str(root / "MLmodel"))
    return root


def store_decisions(tmp: Path) -> Iterator[tuple[str, Verdict | None, Check | None]]:
    """Drive a real :class:`ModelStore` (SQLite under ``tmp``) through every decision it takes; yields
    ``(what, verdict, reason_check)`` of each decision and history entry."""
    from backend.ml_engine.registry import ModelStore

    signed, unsigned = _model_folder(tmp / "signed", True), _model_folder(tmp / "unsigned", False)
    junk = tmp / "junk.bin"
    junk.write_bytes(b"not a model")
    store = ModelStore(
        f"sqlite:///{tmp}/mlflow.db",
        experiment_name="verdicts",
        artifact_location=(tmp / "artifacts").as_uri(),
        lock_dir=tmp / "locks",
    )
    good = {"accuracy": 0.6, "f1_macro": 0.5, "onnx_parity_max_abs_diff": 1e-6}
    better = {"accuracy": 0.7, "f1_macro": 0.6, "onnx_parity_max_abs_diff": 1e-6}
    try:
        name = "verdicts"
        v1 = store.register_model(name, "a", signed, metrics=good).version
        v2 = store.register_model(name, "b", signed, metrics=better).version
        v3 = store.register_model(name, "c", unsigned, metrics={"accuracy": 0.2}).version
        v4 = store.register_model(name, "d", junk, metrics=better).version
        steps = itertools.chain(
            [("first promotion", store.auto_promote(name, v1))],  # first_version, auto reason
            [("already", store.promote(name, v1))],  # already_in_production
            [("better", store.promote(name, v2, reason="weekly"))],  # beats_production
            [("worse", store.promote(name, v3))],  # accuracy, signature missing
            [("unreadable", store.promote(name, v4))],  # signature unreadable
            [("evaluator fails", store.promote(name, v1, evaluator=_failing))],  # evaluation_failed
            [("same holdout", store.promote(name, v1, evaluator=_holdout))],  # not_better on same holdout
            [("forced", store.promote(name, v3, force=True))],  # forced
            [("rollback", store.rollback(name))],  # rolled_back
        )
        for what, decision in steps:
            yield what, decision.verdict, decision.event.reason_check if decision.event else None
        archived = store.archive(name, v3)  # archived_version
        yield "archive", archived.verdict, None
        refused = store.promote(name, v3)  # archived (gate)
        yield "archived refused", refused.verdict, None
        current = store.get_production_version(name)
        assert current is not None
        gone = store.archive(name, current.version, force=True)  # was production
        yield "archive production", gone.verdict, None
        restored = store.rollback(name)  # restored
        yield "restore", restored.verdict, None
        for event in store.history(name, limit=1000):
            yield f"history {event.seq}", event.verdict, event.reason_check
    finally:
        store.close()


def _failing(name: str, version: int) -> dict[str, float]:
    raise ValueError("no candles")


def _holdout(name: str, version: int) -> dict[str, float]:
    return {"accuracy": 0.6, "f1_macro": 0.5}
