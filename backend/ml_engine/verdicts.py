"""Verdicts: what deciding code found, as a code with parameters, and its words in English or Russian.

Code that decides (the promotion gate, rollback, archive) returns :class:`Check` values; words for
people are rendered from them at the edge (:func:`render`, :func:`render_reason`) in the language
the reader asked for. Nothing parses sentences back: a message reworded here is reworded in both
languages at once, and a code without Russian words fails ``tests/test_verdicts.py``.

    >>> c = Check("accuracy_below_min", False, {"metric": "test_accuracy", "value": 0.48, "min": 0.5})
    >>> render(c, "en")
    'test_accuracy 0.4800 < min 0.5'
    >>> render(c, "ru")
    'test_accuracy 0.4800 < минимума 0.5'

The English words are what the registry stores in MLflow (version tag
``promotion_refused_reason``, history ``detail``) and what the API's ``reason`` fields carry; the
codes and parameters travel beside them (history ``checks``, the API's ``checks``), so any front
end renders them in its own language.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "LANGUAGES",
    "Check",
    "Lang",
    "Verdict",
    "catalogue",
    "render",
    "render_reason",
    "verdict_tag",
    "walk_forward_name",
]

#: Run tag holding a decision's verdict as JSON, beside its English ``promotion_reason``.
VERDICT_TAG = "promotion_verdict"
#: MLflow's limit on a tag value.
_MAX_TAG = 5000

Lang = Literal["en", "ru"]
LANGUAGES: tuple[Lang, ...] = ("en", "ru")


@dataclass(frozen=True)
class Check:
    """One finding: ``code`` names it (see :func:`catalogue`), ``passed`` says whether it is in favour,
    ``params`` are the numbers and names the words need (JSON-able)."""

    code: str
    passed: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "passed": self.passed, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Check:
        return cls(str(d["code"]), bool(d.get("passed", True)), dict(d.get("params") or {}))


def _num(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec``; NaN, None and text are shown as they are."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "nan"
    return format(number, spec)


_SOURCES: dict[str, tuple[str, str]] = {
    "recorded": ("recorded test metrics", "записанных тестовых метриках"),
    "recorded_no_evaluator": (
        "recorded test metrics (no evaluator: not the same holdout)",
        "записанных тестовых метриках",
    ),
    "same_holdout": ("the same recent holdout", "одной и той же свежей отложенной выборке"),
}
#: The same sources when the candidate's numbers are walk-forward means (a retraining's verdict).
_SOURCES_WALK_FORWARD: dict[str, tuple[str, str]] = {
    "same_holdout": ("the same walk-forward folds", "тех же фолдах walk-forward"),
    "recorded_no_evaluator": ("the candidate's walk-forward folds", "фолдах walk-forward кандидата"),
}


def _source(p: Mapping[str, Any], ru: bool) -> str:
    key = str(p.get("source", "recorded"))
    words = (_SOURCES_WALK_FORWARD if p.get(_WALK_FORWARD) else {}).get(key) or _SOURCES.get(key)
    return key if words is None else words[ru]


#: Parameter :func:`render` adds when the candidate's numbers are walk-forward means.
_WALK_FORWARD = "_walk_forward"


def walk_forward_name(metric: str) -> str:
    """The name of the walk-forward mean behind a gate metric: ``test_accuracy`` ->
    ``walk_forward_accuracy_mean`` (the run metric and version tag a retraining records)."""
    base = metric[len("test_") :] if metric.startswith("test_") else metric
    return f"walk_forward_{base}_mean"


def _relabel(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` of a check on walk-forward means: the candidate's metric named as what it is; the
    champion's too when it was scored on the same folds, else its recorded test metric keeps its name."""
    p = dict(params)
    p[_WALK_FORWARD] = True
    metric = p.get("metric")
    if isinstance(metric, str) and metric.startswith("test_"):
        p["metric"] = walk_forward_name(metric)
        p["champion_metric"] = p["metric"] if p.get("source") == "same_holdout" else metric
    return p


def _comparison(p: Mapping[str, Any], ru: bool, sign: str) -> str:
    champion_metric = p.get("champion_metric", p["metric"])
    champion = f"{champion_metric} " if champion_metric != p["metric"] else ""
    if ru:
        return (
            f"{p['metric']} {_num(p['value'], '.4f')} {sign} {champion}{_num(p['champion_value'], '.4f')} "
            f"(прирост {_num(p['gain'], '+.4f')}, нужно > {_num(p['min_improvement'], 'g')}) на {_source(p, ru)}"
        )
    return (
        f"{p['metric']} {_num(p['value'], '.4f')} {sign} production v{p['champion_version']} "
        f"{champion}{_num(p['champion_value'], '.4f')} (gain {_num(p['gain'], '+.4f')}, needs > "
        f"{_num(p['min_improvement'], 'g')}) on {_source(p, ru)}"
    )


def _production_ru(p: Mapping[str, Any]) -> str:
    return f"версии из production (v{p['champion_version']})"


#: What started a retraining, in Russian (the pipeline's trigger codes).
_TRIGGERS_RU = {
    "manual": "вручную",
    "scheduled": "по расписанию",
    "drift": "из-за дрейфа данных",
    "performance_drop": "из-за падения качества",
}


def _retraining_note(note: str, ru: bool) -> str:
    """The walk-forward note of a retraining (free text the pipeline writes) in Russian where it is known."""
    if not ru:
        return note
    m = re.fullmatch(r"production v(\d+) scored none of the test windows", note)
    if m:
        return f"версия из production (v{m[1]}) не дала прогнозов ни на одном тестовом окне"
    m = re.fullmatch(r"production v(\d+) could not score the walk-forward data: (.*)", note, flags=re.S)
    if m:
        return f"версия из production (v{m[1]}) не смогла оценить данные walk-forward: {m[2]}"
    return note


def _signature_missing(p: Mapping[str, Any], ru: bool) -> str:
    why = p.get("why")
    if why == "no_signature":
        return "нет сигнатуры модели (в MLmodel её нет)" if ru else "model signature missing (MLmodel has no signature)"
    if why == "unreadable":
        where = f"{p.get('uri')}: {p.get('error')}"
        return (
            f"нет сигнатуры модели (MLmodel не читается: {where})"
            if ru
            else f"model signature missing (no readable MLmodel at {where})"
        )
    return "нет сигнатуры модели" if ru else "model signature missing"


Renderer = Callable[[Mapping[str, Any], bool], str]


def _fixed(en: str, ru: str) -> Renderer:
    return lambda p, is_ru: (ru if is_ru else en).format(**p)


#: code -> renderer(params, russian?) for every code deciding code may write.
_CATALOGUE: dict[str, Renderer] = {
    # the gate
    "archived": _fixed("version is archived", "версия в архиве"),
    "accuracy_missing": _fixed("no {metric} recorded", "метрика {metric} не записана"),
    "accuracy_below_min": lambda p, ru: (
        f"{p['metric']} {_num(p['value'], '.4f')} {'< минимума' if ru else '< min'} {_num(p['min'], 'g')}"
    ),
    "accuracy_ok": lambda p, ru: (
        f"{p['metric']} {_num(p['value'], '.4f')} {'≥ минимума' if ru else '>= min'} {_num(p['min'], 'g')}"
    ),
    "primary_missing": _fixed("candidate has no finite {metric}", "у кандидата нет конечного значения {metric}"),
    "first_version": lambda p, ru: (
        f"{'в production ещё нет версии' if ru else 'no production version yet'} "
        f"({p['metric']} {_num(p['value'], '.4f')})"
    ),
    "champion_metric_missing": lambda p, ru: (
        f"у {_production_ru(p)} нет конечного значения {p['metric']} для сравнения (нужен force=True)"
        if ru
        else f"production v{p['champion_version']} has no finite {p['metric']} to compare against (use force=True)"
    ),
    "beats_production": lambda p, ru: (
        (f"лучше {_production_ru(p)}: " if ru else "")
        + _comparison(p, ru, ">" if p.get("greater_is_better", True) else "<")
    ),
    "not_better": lambda p, ru: (
        f"не лучше {_production_ru(p)}: " + _comparison(p, ru, "против")
        if ru
        else "not better than production: " + _comparison(p, ru, "vs")
    ),
    "signature_unchecked": _fixed("signature not checked", "сигнатура не проверена"),
    "signature_missing": _signature_missing,
    "signature_ok": _fixed("signature present", "сигнатура есть"),
    "onnx_parity_missing": _fixed("ONNX parity not recorded ({metric})", "паритет ONNX не записан ({metric})"),
    "onnx_parity_too_large": lambda p, ru: (
        f"{'паритет ONNX:' if ru else 'ONNX parity'} {p['metric']} {_num(p['value'], '.3g')} > {_num(p['max'], 'g')}"
    ),
    "onnx_parity_ok": lambda p, ru: (
        f"{'паритет ONNX' if ru else 'ONNX parity'} {_num(p['value'], '.3g')} {'≤' if ru else '<='} "
        f"{_num(p['max'], 'g')}"
    ),
    # the gate's overfitting checks (ML_GATE_MIN_DSR, ML_GATE_MAX_PBO): statistics of the search a version won
    "dsr_missing": lambda p, ru: (
        f"нет тега {p['tag']}: дефлированный коэффициент Шарпа подбора гиперпараметров не записан "
        f"(нужно ≥ {_num(p['min'], 'g')})"
        if ru
        else f"no {p['tag']} tag: no Deflated Sharpe Ratio of a hyperparameter search recorded "
        f"(needs >= {_num(p['min'], 'g')})"
    ),
    "dsr_below_min": lambda p, ru: (
        f"{'дефлированный коэффициент Шарпа' if ru else 'Deflated Sharpe Ratio'} ({p['tag']}) "
        f"{_num(p['value'], '.4f')} {'< минимума' if ru else '< min'} {_num(p['min'], 'g')}"
    ),
    "dsr_ok": lambda p, ru: (
        f"{'дефлированный коэффициент Шарпа' if ru else 'Deflated Sharpe Ratio'} ({p['tag']}) "
        f"{_num(p['value'], '.4f')} {'≥ минимума' if ru else '>= min'} {_num(p['min'], 'g')}"
    ),
    "pbo_missing": lambda p, ru: (
        f"нет тега {p['tag']}: вероятность переобучения бэктеста при подборе гиперпараметров не записана "
        f"(нужно ≤ {_num(p['max'], 'g')})"
        if ru
        else f"no {p['tag']} tag: no probability of backtest overfitting of a hyperparameter search recorded "
        f"(needs <= {_num(p['max'], 'g')})"
    ),
    "pbo_above_max": lambda p, ru: (
        f"{'вероятность переобучения бэктеста' if ru else 'probability of backtest overfitting'} ({p['tag']}) "
        f"{_num(p['value'], '.4f')} {'> максимума' if ru else '> max'} {_num(p['max'], 'g')}"
    ),
    "pbo_ok": lambda p, ru: (
        f"{'вероятность переобучения бэктеста' if ru else 'probability of backtest overfitting'} ({p['tag']}) "
        f"{_num(p['value'], '.4f')} {'≤ максимума' if ru else '<= max'} {_num(p['max'], 'g')}"
    ),
    "evaluation_failed": _fixed(
        "holdout evaluation failed: {error}", "оценка на отложенной выборке не удалась: {error}"
    ),
    "no_evaluator": lambda p, ru: (
        (
            "число версии из production — её тестовая метрика, записанная при обучении (на фолдах она не оценивалась)"
            if ru
            else "production's number is its recorded test metric (not scored on the folds)"
        )
        if p.get(_WALK_FORWARD)
        else (
            "сравнивались метрики, записанные при обучении: общей свежей выборки не было, данные у версий могут "
            "различаться"
            if ru
            else "compared recorded test metrics from version tags (no holdout evaluator)"
        )
    ),
    # decisions of the registry
    "forced": _fixed("forced: promotion gate skipped", "принудительно: проверки пропущены"),
    "already_in_production": _fixed("v{version} is already in production", "v{version} уже в production"),
    "rolled_back": _fixed(
        "rolled back from v{from_version} to v{to_version}", "откат с v{from_version} на v{to_version}"
    ),
    "restored": _fixed("restored v{version}", "восстановлена v{version}"),
    "archived_version": lambda p, ru: (
        (f"v{p['version']} в архиве" if ru else f"archived v{p['version']}")
        + (
            (" (была в production; теперь production не задан)" if ru else " (was production; production now unset)")
            if p.get("was_production")
            else ""
        )
    ),
    # reasons the engine gives for its own promotions
    "auto_after_training": _fixed("automatic promotion after training", "автоматическое продвижение после обучения"),
    "auto_retraining": lambda p, ru: (
        (
            f"автоматическое переобучение ({_TRIGGERS_RU.get(str(p['trigger']), p['trigger'])}); "
            f"walk-forward по {p['folds']} фолдам"
            if ru
            else f"auto retraining ({p['trigger']}); walk-forward over {p['folds']} folds"
        )
        + (f"; {_retraining_note(str(p['note']), ru)}" if p.get("note") else "")
    ),
}

#: How a list of gate checks is introduced.
_PREFIX: dict[bool, tuple[str, str]] = {
    True: ("gate passed: ", "проверки пройдены: "),
    False: ("refused: ", "отказано: "),
}


def catalogue() -> tuple[str, ...]:
    """Every code :func:`render` knows."""
    return tuple(_CATALOGUE)


def render(check: Check | Mapping[str, Any], lang: str = "en", *, walk_forward: bool = False) -> str:
    """The words of one check in ``lang`` (``en`` or ``ru``). Unknown codes are shown as
    ``code: params`` rather than failing (an entry written by a newer version, say).

    ``walk_forward``: the candidate's numbers are walk-forward means (a retraining's verdict), so
    the gate's ``test_accuracy`` is named ``walk_forward_accuracy_mean``, what it is."""
    c = check if isinstance(check, Check) else Check.from_dict(check)
    renderer = _CATALOGUE.get(c.code)
    if renderer is None:
        args = ", ".join(f"{k}={v}" for k, v in c.params.items())
        return f"{c.code}: {args}" if args else c.code
    try:
        return renderer(_relabel(c.params) if walk_forward else c.params, lang == "ru")
    except (KeyError, IndexError, ValueError):  # a parameter missing: still say what is known
        return f"{c.code}: {dict(c.params)}"


def render_reason(
    checks: Sequence[Check | Mapping[str, Any]] | Iterable[Check],
    lang: str = "en",
    *,
    gate: bool = True,
    notes: Sequence[Check | Mapping[str, Any]] = (),
    walk_forward: bool = False,
) -> str:
    """A gate verdict as one line: ``"refused: <failed checks>"`` or ``"gate passed: <checks>"``
    (``gate=True``), or the checks joined with ``"; "`` (``gate=False``); ``notes`` are appended.
    ``walk_forward``: see :func:`render`."""
    items = [c if isinstance(c, Check) else Check.from_dict(c) for c in checks]
    ru = lang == "ru"
    if gate:
        passed = all(c.passed for c in items)
        shown = items if passed else [c for c in items if not c.passed]
        text = _PREFIX[passed][ru] + "; ".join(render(c, lang, walk_forward=walk_forward) for c in shown)
    else:
        text = "; ".join(render(c, lang, walk_forward=walk_forward) for c in items)
    extra = [render(n, lang, walk_forward=walk_forward) for n in notes]
    return "; ".join([text, *extra]) if extra and text else (text or "; ".join(extra))


@dataclass(frozen=True)
class Verdict:
    """A decision's findings: ``checks`` (with ``gate=True`` they are the promotion gate's, rendered
    as ``"refused: ..."`` / ``"gate passed: ..."``) and ``notes`` said after them."""

    checks: tuple[Check, ...] = ()
    notes: tuple[Check, ...] = ()
    gate: bool = False

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def render(self, lang: str = "en", *, walk_forward: bool = False) -> str:
        """The verdict as one line in ``lang``; ``walk_forward``: see :func:`render`."""
        return render_reason(self.checks, lang, gate=self.gate, notes=self.notes, walk_forward=walk_forward)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": [c.to_dict() for c in self.checks],
            "notes": [n.to_dict() for n in self.notes],
            "gate": self.gate,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        return cls(
            tuple(Check.from_dict(c) for c in d.get("checks") or ()),
            tuple(Check.from_dict(n) for n in d.get("notes") or ()),
            bool(d.get("gate", False)),
        )

    @classmethod
    def of(cls, code: str, **params: Any) -> Verdict:
        """A verdict of one passed check (a rollback, an archive, a forced promotion)."""
        return cls((Check(code, True, params),))


def verdict_tag(decision: Any) -> dict[str, str]:
    """``{"promotion_verdict": <JSON>}`` for a decision that carries a :class:`Verdict` (empty when it
    has none or the JSON would not fit a tag): front ends render the run's reason from it."""
    import json

    verdict = getattr(decision, "verdict", None)
    if verdict is None:
        return {}
    text = json.dumps(verdict.to_dict(), separators=(",", ":"), default=str)
    return {VERDICT_TAG: text} if len(text) <= _MAX_TAG else {}
