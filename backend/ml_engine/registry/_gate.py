"""The promotion gate: when a version may become ``production``. Pure: inputs in, checks out."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..verdicts import Check, Verdict, render

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Settings

__all__ = ["TAG_DSR", "TAG_PBO", "GateResult", "PromotionGate", "lookup_metric"]

#: Version tag of the Deflated Sharpe Ratio of the hyperparameter search the version won (a number as
#: text, in [0, 1]); set by the search (``tuning``), read by the gate when ``min_dsr`` is set.
TAG_DSR = "tuning_dsr"
#: Version tag of the probability of backtest overfitting of that search (a number as text, in [0, 1]).
TAG_PBO = "tuning_pbo"


def _tag_number(key: str, tags: Mapping[str, Any] | None, metrics: Mapping[str, Any]) -> float | None:
    """The number under ``key`` in the version's ``tags`` (first) or its ``metrics``; None when it is in
    neither or is not a number (NaN is a number: the check shows it and refuses)."""
    for source in (tags or {}, metrics):
        if key in source:
            try:
                return float(source[key])
            except (TypeError, ValueError):
                return None
    return None


def lookup_metric(metrics: Mapping[str, Any], key: str) -> float | None:
    """``metrics[key]`` as float, also accepting the key with or without the ``test_`` prefix
    (an evaluator may answer ``{"accuracy": ...}`` for the gate's ``test_accuracy``)."""
    candidates = [key, key[len("test_") :]] if key.startswith("test_") else [key, f"test_{key}"]
    for k in candidates:
        if k in metrics:
            try:
                return float(metrics[k])
            except (TypeError, ValueError):
                return None
    return None


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict: every check it made, each a code with its numbers."""

    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[str, ...]:
        """The failed checks in English."""
        return tuple(render(c) for c in self.checks if not c.passed)

    @property
    def verdict(self) -> Verdict:
        return Verdict(self.checks, gate=True)

    @property
    def reason(self) -> str:
        """``"gate passed: ..."`` or ``"refused: ..."`` in English."""
        return self.verdict.render("en")


@dataclass(frozen=True)
class PromotionGate:
    """When a version may become ``production``. Used by auto-promotion and by manual promotion
    unless ``force=True``.

    Example::

        gate = PromotionGate(min_accuracy_for_promotion=0.75, primary_metric="backtest_sharpe",
                             min_improvement=0.05)
        registry = ModelRegistry(uri, gate=gate, evaluator=holdout_evaluator)
    """

    #: The candidate's accuracy (``accuracy_metric``) must be at least this (the guide's name).
    min_accuracy_for_promotion: float = 0.5
    #: Metric compared between challenger and champion, e.g. ``test_f1_macro`` or ``backtest_sharpe``.
    primary_metric: str = "test_f1_macro"
    #: The challenger must beat the champion on ``primary_metric`` by more than this.
    min_improvement: float = 0.0
    #: False for metrics where lower is better (a loss, a drawdown).
    greater_is_better: bool = True
    #: The version's MLmodel must carry an input signature.
    require_signature: bool = True
    #: ``onnx_parity_metric`` must be recorded and at most ``max_abs_diff``.
    require_onnx_parity: bool = True
    #: Largest allowed max-abs difference between ONNX Runtime and PyTorch outputs.
    max_abs_diff: float = 1e-4
    #: Metric holding the accuracy checked against ``min_accuracy_for_promotion``.
    accuracy_metric: str = "test_accuracy"
    #: Metric (version tag) holding the ONNX parity max-abs difference.
    onnx_parity_metric: str = "onnx_parity_max_abs_diff"
    #: The smallest Deflated Sharpe Ratio (tag ``tuning_dsr``) of the search the candidate came from;
    #: None (the default): not checked. ``ML_GATE_MIN_DSR``.
    min_dsr: float | None = None
    #: The largest probability of backtest overfitting (tag ``tuning_pbo``) of that search; None (the
    #: default): not checked. ``ML_GATE_MAX_PBO``.
    max_pbo: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_accuracy_for_promotion <= 1.0:
            raise ValueError("min_accuracy_for_promotion must be in [0, 1]")
        if self.min_improvement < 0 or not math.isfinite(self.min_improvement):
            raise ValueError("min_improvement must be a finite number >= 0")
        if self.max_abs_diff < 0 or not math.isfinite(self.max_abs_diff):
            raise ValueError("max_abs_diff must be a finite number >= 0")
        for attr in ("min_dsr", "max_pbo"):
            value = getattr(self, attr)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{attr} must be in [0, 1] or None (not checked)")
        for attr in ("primary_metric", "accuracy_metric", "onnx_parity_metric"):
            if not getattr(self, attr):
                raise ValueError(f"{attr} must be a metric name")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> PromotionGate:
        """A gate with ``min_accuracy_for_promotion``, ``min_dsr`` (``ML_GATE_MIN_DSR``) and ``max_pbo``
        (``ML_GATE_MAX_PBO``) from the service settings; ``overrides`` win."""
        overrides.setdefault("min_accuracy_for_promotion", settings.min_accuracy_for_promotion)
        overrides.setdefault("min_dsr", settings.gate_min_dsr)
        overrides.setdefault("max_pbo", settings.gate_max_pbo)
        return cls(**overrides)

    def check(
        self,
        candidate: Mapping[str, Any],
        champion: Mapping[str, Any] | None,
        *,
        champion_version: int | None = None,
        signature_present: bool | None = None,
        signature_problem: Mapping[str, Any] | None = None,
        archived: bool = False,
        metrics_source: str = "recorded",
        tags: Mapping[str, Any] | None = None,
    ) -> GateResult:
        """Judge a candidate. Pure: all inputs are given, nothing is read.

        ``candidate``/``champion`` are metric dicts (``champion`` None when nothing is in
        production); ``signature_present`` None means not checked; ``signature_problem`` the
        parameters of a missing signature (``{"why": "no_signature"}``); ``metrics_source`` names
        what was compared (``recorded``, ``recorded_no_evaluator``, ``same_holdout``); ``tags`` the
        candidate's version tags, where a search leaves ``tuning_dsr`` / ``tuning_pbo`` (looked up
        there first, then in ``candidate``).

        Overfitting checks (only with ``min_dsr`` / ``max_pbo`` set; unset, the checks are exactly
        those without them): ``dsr_ok`` when DSR >= ``min_dsr``, else ``dsr_below_min`` (NaN too);
        ``pbo_ok`` when PBO <= ``max_pbo``, else ``pbo_above_max``. A candidate WITHOUT the tag (or
        with text that is no number) is refused: ``dsr_missing`` / ``pbo_missing``. Setting a
        threshold asks for evidence that the edge is more than search luck, and a gate that lets a
        version through for lacking that evidence would reward exactly the versions nobody measured:
        a hand-tuned model is the winner of an unrecorded search, a re-registered one has lost its
        tags, a search whose statistics could not be computed (PBO needs two completed trials) wrote
        none, and the gate cannot tell these from "not searched". Like a missing accuracy or ONNX
        parity, missing evidence fails closed; ``force=True`` promotes such a version past the gate,
        on record. Set the thresholds where production versions come from searches (a retraining's
        versions carry no such tags and are then refused).
        """
        checks: list[Check] = []
        if archived:
            checks.append(Check("archived", False))

        metric = self.accuracy_metric
        acc = lookup_metric(candidate, metric)
        if acc is None:
            checks.append(Check("accuracy_missing", False, {"metric": metric}))
        else:
            ok = math.isfinite(acc) and acc >= self.min_accuracy_for_promotion
            code = "accuracy_ok" if ok else "accuracy_below_min"
            checks.append(Check(code, ok, {"metric": metric, "value": acc, "min": self.min_accuracy_for_promotion}))

        pm = self.primary_metric
        cand = lookup_metric(candidate, pm)
        if cand is None or not math.isfinite(cand):
            checks.append(Check("primary_missing", False, {"metric": pm}))
        elif champion is None:
            checks.append(Check("first_version", True, {"metric": pm, "value": cand}))
        else:
            champ = lookup_metric(champion, pm)
            if champ is None or not math.isfinite(champ):
                checks.append(
                    Check("champion_metric_missing", False, {"metric": pm, "champion_version": champion_version})
                )
            else:
                gain = cand - champ if self.greater_is_better else champ - cand
                params = {
                    "metric": pm,
                    "value": cand,
                    "champion_version": champion_version,
                    "champion_value": champ,
                    "gain": gain,
                    "min_improvement": self.min_improvement,
                    "greater_is_better": self.greater_is_better,
                    "source": metrics_source,
                }
                better = gain > self.min_improvement
                checks.append(Check("beats_production" if better else "not_better", better, params))

        if self.require_signature:
            if signature_present is None:
                checks.append(Check("signature_unchecked", False))
            elif not signature_present:
                checks.append(Check("signature_missing", False, dict(signature_problem or {})))
            else:
                checks.append(Check("signature_ok", True))

        if self.require_onnx_parity:
            diff = lookup_metric(candidate, self.onnx_parity_metric)
            if diff is None:
                checks.append(Check("onnx_parity_missing", False, {"metric": self.onnx_parity_metric}))
            elif not math.isfinite(diff) or diff > self.max_abs_diff:
                checks.append(
                    Check(
                        "onnx_parity_too_large",
                        False,
                        {"metric": self.onnx_parity_metric, "value": diff, "max": self.max_abs_diff},
                    )
                )
            else:
                checks.append(Check("onnx_parity_ok", True, {"value": diff, "max": self.max_abs_diff}))

        if self.min_dsr is not None:
            dsr = _tag_number(TAG_DSR, tags, candidate)
            if dsr is None:
                checks.append(Check("dsr_missing", False, {"tag": TAG_DSR, "min": self.min_dsr}))
            else:
                ok = math.isfinite(dsr) and dsr >= self.min_dsr
                checks.append(
                    Check("dsr_ok" if ok else "dsr_below_min", ok, {"tag": TAG_DSR, "value": dsr, "min": self.min_dsr})
                )
        if self.max_pbo is not None:
            pbo = _tag_number(TAG_PBO, tags, candidate)
            if pbo is None:
                checks.append(Check("pbo_missing", False, {"tag": TAG_PBO, "max": self.max_pbo}))
            else:
                ok = math.isfinite(pbo) and pbo <= self.max_pbo
                checks.append(
                    Check("pbo_ok" if ok else "pbo_above_max", ok, {"tag": TAG_PBO, "value": pbo, "max": self.max_pbo})
                )

        return GateResult(tuple(checks))
