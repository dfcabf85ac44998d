"""What the model store answers: versions, registered models, history entries, decisions; the tag schema."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..verdicts import Check, Verdict

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.entities.model_registry import ModelVersion

__all__ = [
    "ALIAS_CHALLENGER",
    "ALIAS_PRODUCTION",
    "ALIAS_STAGING",
    "DECISIONS",
    "MANAGED_ALIASES",
    "METRIC_PREFIXES",
    "MODEL_ID_TAG",
    "ModelVersionInfo",
    "PromotionDecision",
    "PromotionEvent",
    "RegisteredModelInfo",
    "metrics_from_tags",
    "model_id_of_version",
]

ALIAS_PRODUCTION = "production"
ALIAS_CHALLENGER = "challenger"
ALIAS_STAGING = "staging"
MANAGED_ALIASES = (ALIAS_PRODUCTION, ALIAS_CHALLENGER, ALIAS_STAGING)

#: Decisions a history entry can record.
DECISION_PROMOTED = "promoted"
DECISION_REFUSED = "refused"
DECISION_ROLLED_BACK = "rolled_back"
DECISION_ARCHIVED = "archived"
DECISIONS = (DECISION_PROMOTED, DECISION_REFUSED, DECISION_ROLLED_BACK, DECISION_ARCHIVED)

#: Size of ``registered_model_tags.value`` / ``model_version_tags.value`` in MLflow's schema.
MAX_TAG_VALUE = 5000

# Model-version tags (the version-tag schema; the training writes the rest: run_id, data_hash, ...).
MODEL_ID_TAG = "model_id"
"""The MLflow 3 LoggedModel id of a version (MLflow's SQL registry keeps none of its own)."""
TAG_ARCHIVED = "archived"
TAG_ARCHIVED_AT = "archived_at"
TAG_ARCHIVED_BY = "archived_by"
TAG_ARCHIVED_REASON = "archived_reason"
TAG_PROMOTED_AT = "promoted_at"
TAG_PROMOTED_BY = "promoted_by"
TAG_REFUSED_REASON = "promotion_refused_reason"
TAG_VERSION_LABEL = "version_label"

#: Tag keys with these prefixes and a numeric value are metrics (``test_accuracy`` = ``"0.81"``).
METRIC_PREFIXES = ("test_", "val_", "train_", "backtest_", "holdout_", "onnx_", "walk_forward_")


def now_utc() -> datetime:
    return datetime.now(UTC)


def ms_to_dt(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC) if ms else None


def to_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def cut(text: str, size: int) -> str:
    return text if len(text) <= size else text[: max(0, size - 3)] + "..."


def metrics_from_tags(tags: Mapping[str, str]) -> dict[str, float]:
    """The numeric tags among ``tags`` whose key starts with a metric prefix (``test_``, ``backtest_``...)."""
    out: dict[str, float] = {}
    for key, value in tags.items():
        if key.startswith(METRIC_PREFIXES):
            number = to_float(value)
            if number is not None:
                out[key] = number
    return out


def metric_tag_key(key: str) -> str:
    """Metric names as version-tag keys: unprefixed names are test metrics (the guide passes
    ``test_metrics`` = ``{"accuracy": ...}``), so ``accuracy`` -> ``test_accuracy``."""
    return key if key.startswith(METRIC_PREFIXES) else f"test_{key}"


def model_id_of_version(mv: ModelVersion) -> str | None:
    """The LoggedModel id of a registry version: its own field, our tag, or a ``models:/<id>`` source."""
    if getattr(mv, "model_id", None):
        return str(mv.model_id)
    tag = (getattr(mv, "tags", None) or {}).get(MODEL_ID_TAG)
    if tag:
        return str(tag)
    source = getattr(mv, "source", None) or ""
    if source.startswith("models:/"):
        rest = source[len("models:/") :]
        if rest and "/" not in rest and "@" not in rest:
            return rest
    return None


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered model version as this project sees it."""

    name: str
    version: int
    run_id: str | None
    source: str | None
    status: str | None
    description: str | None
    created_at: datetime | None
    updated_at: datetime | None
    aliases: tuple[str, ...]
    tags: dict[str, str]
    #: Numeric metric tags (``test_accuracy``, ``backtest_sharpe``, ``onnx_parity_max_abs_diff``...).
    metrics: dict[str, float]
    #: The MLflow 3 LoggedModel behind the version (None for versions registered from a plain folder).
    model_id: str | None = None

    @property
    def archived(self) -> bool:
        return self.tags.get(TAG_ARCHIVED, "").lower() == "true"

    @property
    def model_uri(self) -> str:
        """``models:/<name>/<version>``, loadable by ``mlflow.pyfunc.load_model``."""
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["aliases"] = list(self.aliases)
        d["created_at"] = self.created_at.isoformat() if self.created_at else None
        d["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        d["archived"] = self.archived
        d["model_uri"] = self.model_uri
        return d

    @classmethod
    def from_mlflow(cls, mv: ModelVersion, aliases: Mapping[str, int] | None = None) -> ModelVersionInfo:
        """Build from an MLflow ``ModelVersion``; ``aliases`` (alias -> version of the registered model)
        fills in aliases that ``search_model_versions`` leaves empty."""
        version = int(mv.version)
        names = set(mv.aliases or [])
        if aliases:
            names |= {a for a, v in aliases.items() if int(v) == version}
        tags = dict(mv.tags or {})
        return cls(
            name=mv.name,
            version=version,
            run_id=mv.run_id or None,
            source=mv.source,
            status=str(mv.status) if mv.status is not None else None,
            description=mv.description or None,
            created_at=ms_to_dt(mv.creation_timestamp),
            updated_at=ms_to_dt(mv.last_updated_timestamp),
            aliases=tuple(sorted(names)),
            tags=tags,
            metrics=metrics_from_tags(tags),
            model_id=model_id_of_version(mv),
        )


@dataclass(frozen=True)
class RegisteredModelInfo:
    """A registered model: its aliases, tags (history entries excluded) and versions, newest first."""

    name: str
    description: str | None
    created_at: datetime | None
    updated_at: datetime | None
    #: alias -> version, e.g. ``{"production": 3, "challenger": 4}``.
    aliases: dict[str, int]
    tags: dict[str, str]
    versions: list[ModelVersionInfo]
    history_count: int

    @property
    def production_version(self) -> int | None:
        return self.aliases.get(ALIAS_PRODUCTION)

    @property
    def latest_version(self) -> int | None:
        return max((v.version for v in self.versions), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "aliases": dict(self.aliases),
            "tags": dict(self.tags),
            "production_version": self.production_version,
            "latest_version": self.latest_version,
            "history_count": self.history_count,
            "versions": [v.to_dict() for v in self.versions],
        }


@dataclass(frozen=True)
class PromotionEvent:
    """One history entry.

    ``version`` is the version the decision is about; ``from_version`` / ``to_version`` the production
    version before and after (equal when production did not change); ``reason`` the caller's words
    (``reason_check`` when the engine itself gave the reason: render it in the reader's language);
    ``detail`` the decision's explanation in English and ``verdict`` the codes it was rendered from.
    """

    seq: int
    name: str
    decision: str
    version: int | None
    from_version: int | None
    to_version: int | None
    reason: str
    detail: str
    actor: str
    forced: bool
    timestamp: datetime
    metrics: dict[str, Any] = field(default_factory=dict)
    verdict: Verdict | None = None
    reason_check: Check | None = None

    @property
    def production_changed(self) -> bool:
        return self.from_version != self.to_version

    def detail_text(self, lang: str = "en") -> str:
        """``detail`` in ``lang``, rendered from the verdict (entries older than verdicts: as recorded)."""
        return self.verdict.render(lang) if self.verdict is not None else self.detail

    def reason_text(self, lang: str = "en") -> str:
        from ..verdicts import render

        return render(self.reason_check, lang) if self.reason_check is not None else self.reason

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["timestamp"] = self.timestamp.isoformat()
        d["verdict"] = self.verdict.to_dict() if self.verdict is not None else None
        d["reason_check"] = self.reason_check.to_dict() if self.reason_check is not None else None
        return d

    def to_json(self, limit: int = MAX_TAG_VALUE) -> str:
        """Compact JSON of at most ``limit`` characters (texts, then metrics, then the verdict are shortened)."""
        payload = self.to_dict()
        payload.pop("name")  # the tag lives on the registered model already
        text = json.dumps(payload, separators=(",", ":"), default=str)
        if len(text) <= limit:
            return text
        for key, size in (("detail", 1500), ("reason", 1000), ("detail", 300), ("reason", 200)):
            payload[key] = cut(payload[key], size)
            text = json.dumps(payload, separators=(",", ":"), default=str)
            if len(text) <= limit:
                return text
        payload["metrics"] = {"truncated": True}
        text = json.dumps(payload, separators=(",", ":"), default=str)
        if len(text) <= limit:
            return text
        payload["verdict"] = None  # the English detail stays
        return json.dumps(payload, separators=(",", ":"), default=str)[:limit]

    @classmethod
    def from_json(cls, name: str, seq: int, text: str) -> PromotionEvent:
        d = json.loads(text)

        def _ver(v: Any) -> int | None:
            return None if v is None else int(v)

        return cls(
            seq=int(d.get("seq", seq)),
            name=name,
            decision=str(d["decision"]),
            version=_ver(d.get("version")),
            from_version=_ver(d.get("from_version")),
            to_version=_ver(d.get("to_version")),
            reason=str(d.get("reason", "")),
            detail=str(d.get("detail", "")),
            actor=str(d.get("actor", "")),
            forced=bool(d.get("forced", False)),
            timestamp=datetime.fromisoformat(d["timestamp"]),
            metrics=dict(d.get("metrics") or {}),
            verdict=Verdict.from_dict(d["verdict"]) if d.get("verdict") else None,
            reason_check=Check.from_dict(d["reason_check"]) if d.get("reason_check") else None,
        )


@dataclass(frozen=True)
class PromotionDecision:
    """What a promotion or rollback decided.

    ``from_version`` is the production version when the decision was taken, ``to_version`` the
    version asked for (the candidate, or the rollback target), whether or not it was promoted.
    ``reason`` is the decision in English; ``verdict`` the codes it was rendered from
    (``verdict.render("ru")`` for Russian).
    """

    promoted: bool
    reason: str
    from_version: int | None
    to_version: int | None
    metrics: dict[str, Any] = field(default_factory=dict)
    forced: bool = False
    #: The history entry written for this decision (None for a no-op: already in production).
    event: PromotionEvent | None = None
    verdict: Verdict | None = None

    def reason_text(self, lang: str = "en") -> str:
        return self.verdict.render(lang) if self.verdict is not None else self.reason

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["event"] = self.event.to_dict() if self.event else None
        d["verdict"] = self.verdict.to_dict() if self.verdict is not None else None
        return d
