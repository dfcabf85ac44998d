"""Model registry: production status, promotion gate, rollback and history over the MLflow registry.

One source of truth
-------------------
Which version of a model is in production is the MLflow registry alias ``production`` and
nothing else (stages are deprecated since MLflow 2.9 and are not used). ``challenger`` and
``staging`` are the other aliases this module manages. :class:`ModelRegistry` is the rich API
over that alias (promotion gate, rollback, archive, history); it keeps no state of its own, so it
cannot disagree with MLflow: every answer is read from MLflow when asked.

The user's guide calls it like this (the version already exists in MLflow after training)::

    model_registry = get_model_registry(Settings())
    await model_registry.register_model(name="hybrid_cnn_lstm", version=timestamp,
                                        model_path=model_path, metrics=test_metrics)
    decision = await model_registry.promote("hybrid_cnn_lstm", 7, reason="weekly retrain")
    if not decision.promoted:
        print(decision.reason)            # e.g. "refused: test_accuracy 0.4812 < min 0.5"
    await model_registry.rollback("hybrid_cnn_lstm", reason="live PnL dropped", actor="ops")

Promotion history: where and why
--------------------------------
MLflow keeps no history of alias moves, so the registry writes one entry per decision
(``promoted``, ``refused``, ``rolled_back``, ``archived``) as a **registered-model tag**
``history.<seq:06d>`` whose value is the entry as JSON (at most 5000 characters, the column size
of ``registered_model_tags.value``; long texts are cut to fit). Chosen over an event table in
the tracking database because:

* it works on every store the project supports: SQLite, PostgreSQL **and** an ``http://`` MLflow
  server (which exposes no database to write a table into);
* it lives inside MLflow next to the alias it describes: backed up, migrated, renamed and deleted
  together with the registered model, visible in the MLflow UI; no second schema to migrate
  beside MLflow's own Alembic history, nothing that could drift from MLflow;
* the volume is tiny (a few promotions a day); ``get_registered_model`` returns all entries in
  one call. The cost: a model with many thousands of entries carries them in every
  ``get_registered_model`` answer; no pruning is done (the history is an audit log).

Each entry holds ``seq``, ``timestamp`` (UTC), ``decision``, ``version`` (the version the decision
is about), ``from_version`` / ``to_version`` (the production version before and after; equal when
production did not change), ``reason`` (the caller's words), ``detail`` (the gate's explanation),
``actor``, ``forced`` and ``metrics`` (what decided it). Entries are written inside the same
critical section as the alias change (see below), so ``seq`` is gap-free and each entry's
``from_version`` equals the previous entry's ``to_version`` unless somebody moved the alias
outside this API (then the alias wins: ``from_version`` is always read from MLflow). The alias is
moved before the entry is written: a crash in between leaves the truth (the alias) right and one
entry missing, never an entry that claims a move that did not happen.

Concurrency: a real lock around read-decide-write
-------------------------------------------------
Promote, rollback, archive and the alias setters read the current production version, decide,
then write the alias and the history entry. That sequence runs under a per-model lock:

* PostgreSQL store: ``pg_advisory_xact_lock(<namespace>, hashtext(name))`` taken on a separate
  SQLAlchemy connection whose transaction is held for the critical section and committed at its
  end (which releases the lock; a crashed process releases it with its connection). Waiting is
  bounded by ``lock_timeout`` (``lock_timeout_s``). Works across threads, processes and machines
  that share the database.
* SQLite store: ``fcntl.flock`` on ``<db file>.registry.lock`` next to the database (one lock per
  database; SQLite serialises writers anyway). Works across threads and processes on one machine.
* File store: the same ``flock`` in the store's root folder.
* ``http://`` server (and anything else): **best effort**, a process-wide ``threading.Lock`` per
  (registry URI, model name). Safe for promotions from one process; two processes promoting the
  same model at the same instant through a server could interleave (MLflow still guarantees one
  version per alias, but a history entry could be overwritten). Run promotions from one service
  (the API) when using a server.

Blocking MLflow calls run in ``asyncio.to_thread``; a whole critical section runs in one worker
thread, so cancelling the awaiting task never leaves a lock held.

Promotion gate
--------------
:class:`PromotionGate` is applied by :meth:`ModelRegistry.promote` (and ``auto_promote``) unless
``force=True``: accuracy >= ``min_accuracy_for_promotion``; the candidate beats the current
production model on ``primary_metric`` by more than ``min_improvement`` (champion vs challenger);
a model signature is present; ONNX parity ``onnx_parity_max_abs_diff <= max_abs_diff``.
Champion and challenger are compared on the same recent holdout when an ``evaluator`` callable
``evaluate(name, version) -> dict[str, float]`` is given; without one the versions' recorded test
metrics (version tags such as ``test_accuracy``, falling back to the run's metrics) are compared
and the reason says so. A refusal is recorded in the history and as the version tag
``promotion_refused_reason``.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import inspect
import json
import logging
import math
import os
import re
import tempfile
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from backend.ml_engine.config import EXPERIMENT_DEFAULT, Settings
from backend.ml_engine.mlflow_integration.stores import mask_uri, resolve_tracking_uri

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

logger = logging.getLogger(__name__)

__all__ = [
    "ALIAS_CHALLENGER",
    "ALIAS_PRODUCTION",
    "ALIAS_STAGING",
    "DECISIONS",
    "Evaluator",
    "GateResult",
    "ModelNotFoundError",
    "ModelRegistry",
    "ModelRegistryError",
    "ModelVersionInfo",
    "ModelVersionNotFoundError",
    "NoPreviousVersionError",
    "ProductionVersionError",
    "PromotionDecision",
    "PromotionEvent",
    "PromotionGate",
    "RegisteredModelInfo",
    "RegistryLock",
    "RegistryLockTimeout",
    "get_model_registry",
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

#: Registered-model tag prefix of history entries: ``history.000012`` = JSON.
HISTORY_TAG_PREFIX = "history."
_HISTORY_KEY_RE = re.compile(r"^history\.(\d+)$")
#: Size of ``registered_model_tags.value`` in MLflow's schema.
MAX_TAG_VALUE = 5000

# Model-version tags written by this module.
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

#: Advisory-lock namespace (first int4 key) so our locks never collide with other users of the DB.
_PG_LOCK_NAMESPACE = 0x4D4C5247  # "MLRG"

#: ``evaluate(name, version) -> {"test_accuracy": ..., "test_f1_macro": ...}``, sync or async,
#: evaluating a version on the same recent holdout for every version it is asked about.
Evaluator = Callable[[str, int], "Mapping[str, float] | Awaitable[Mapping[str, float]]"]


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class ModelRegistryError(RuntimeError):
    """Base class of the registry's errors."""


class ModelNotFoundError(ModelRegistryError, KeyError):
    """No registered model of that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelVersionNotFoundError(ModelNotFoundError):
    """The registered model exists but has no such version."""


class NoPreviousVersionError(ModelRegistryError):
    """A rollback found no earlier production version to go back to."""


class ProductionVersionError(ModelRegistryError):
    """The operation would remove the production version (archive without ``force=True``)."""


class RegistryLockTimeout(ModelRegistryError, TimeoutError):
    """The per-model registry lock was not obtained within ``lock_timeout_s``."""


# ---------------------------------------------------------------------------------------------
# Value objects
# ---------------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _ms_to_dt(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc) if ms else None


def _to_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def metrics_from_tags(tags: Mapping[str, str]) -> dict[str, float]:
    """The numeric tags among ``tags`` whose key starts with a metric prefix (``test_``, ``backtest_``...)."""
    out: dict[str, float] = {}
    for key, value in tags.items():
        if key.startswith(METRIC_PREFIXES):
            number = _to_float(value)
            if number is not None:
                out[key] = number
    return out


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
            created_at=_ms_to_dt(mv.creation_timestamp),
            updated_at=_ms_to_dt(mv.last_updated_timestamp),
            aliases=tuple(sorted(names)),
            tags=tags,
            metrics=metrics_from_tags(tags),
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
    """One history entry (see the module docstring for the meaning of each field)."""

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

    @property
    def production_changed(self) -> bool:
        return self.from_version != self.to_version

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["timestamp"] = self.timestamp.isoformat()
        return d

    def to_json(self, limit: int = MAX_TAG_VALUE) -> str:
        """Compact JSON of at most ``limit`` characters (texts and then metrics are shortened to fit)."""
        payload = self.to_dict()
        payload.pop("name")  # the tag lives on the registered model already
        text = json.dumps(payload, separators=(",", ":"), default=str)
        if len(text) <= limit:
            return text
        for key, size in (("detail", 1500), ("reason", 1000), ("detail", 300), ("reason", 200)):
            payload[key] = _cut(payload[key], size)
            text = json.dumps(payload, separators=(",", ":"), default=str)
            if len(text) <= limit:
                return text
        payload["metrics"] = {"truncated": True}
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
        )


@dataclass(frozen=True)
class PromotionDecision:
    """What :meth:`ModelRegistry.promote` / :meth:`ModelRegistry.rollback` decided.

    ``from_version`` is the production version when the decision was taken, ``to_version`` the
    version asked for (the candidate, or the rollback target), whether or not it was promoted.
    """

    promoted: bool
    reason: str
    from_version: int | None
    to_version: int | None
    metrics: dict[str, Any] = field(default_factory=dict)
    forced: bool = False
    #: The history entry written for this decision (None for a no-op: already in production).
    event: PromotionEvent | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["event"] = self.event.to_dict() if self.event else None
        return d


def _cut(text: str, size: int) -> str:
    return text if len(text) <= size else text[: max(0, size - 3)] + "..."


# ---------------------------------------------------------------------------------------------
# Promotion gate (pure)
# ---------------------------------------------------------------------------------------------


def lookup_metric(metrics: Mapping[str, Any], key: str) -> float | None:
    """``metrics[key]`` as float, also accepting the key with or without the ``test_`` prefix
    (an evaluator may answer ``{"accuracy": ...}`` for the gate's ``test_accuracy``)."""
    candidates = [key, key[len("test_"):]] if key.startswith("test_") else [key, f"test_{key}"]
    for k in candidates:
        if k in metrics:
            return _to_float(metrics[k])
    return None


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict: ``passed`` and the human-readable ``failures`` and ``checks`` behind it."""

    passed: bool
    failures: tuple[str, ...]
    checks: tuple[str, ...]

    @property
    def reason(self) -> str:
        if self.passed:
            return "gate passed: " + "; ".join(self.checks)
        return "refused: " + "; ".join(self.failures)


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

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_accuracy_for_promotion <= 1.0:
            raise ValueError("min_accuracy_for_promotion must be in [0, 1]")
        if self.min_improvement < 0 or not math.isfinite(self.min_improvement):
            raise ValueError("min_improvement must be a finite number >= 0")
        if self.max_abs_diff < 0 or not math.isfinite(self.max_abs_diff):
            raise ValueError("max_abs_diff must be a finite number >= 0")
        for attr in ("primary_metric", "accuracy_metric", "onnx_parity_metric"):
            if not getattr(self, attr):
                raise ValueError(f"{attr} must be a metric name")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> PromotionGate:
        """A gate with ``min_accuracy_for_promotion`` from the service settings."""
        overrides.setdefault("min_accuracy_for_promotion", settings.min_accuracy_for_promotion)
        return cls(**overrides)

    def check(
        self,
        candidate: Mapping[str, Any],
        champion: Mapping[str, Any] | None,
        *,
        champion_version: int | None = None,
        signature_present: bool | None = None,
        signature_detail: str = "",
        archived: bool = False,
        metrics_source: str = "recorded test metrics",
    ) -> GateResult:
        """Judge a candidate. Pure: all inputs are given, nothing is read.

        ``candidate``/``champion`` are metric dicts (``champion`` None when nothing is in
        production); ``signature_present`` None means not checked.
        """
        failures: list[str] = []
        checks: list[str] = []

        if archived:
            failures.append("version is archived")

        acc = lookup_metric(candidate, self.accuracy_metric)
        if acc is None:
            failures.append(f"no {self.accuracy_metric} recorded")
        elif not math.isfinite(acc) or acc < self.min_accuracy_for_promotion:
            failures.append(f"{self.accuracy_metric} {acc:.4f} < min {self.min_accuracy_for_promotion:g}")
        else:
            checks.append(f"{self.accuracy_metric} {acc:.4f} >= min {self.min_accuracy_for_promotion:g}")

        pm = self.primary_metric
        cand = lookup_metric(candidate, pm)
        if cand is None or not math.isfinite(cand):
            failures.append(f"candidate has no finite {pm}")
        elif champion is None:
            checks.append(f"no production version yet ({pm} {cand:.4f})")
        else:
            champ = lookup_metric(champion, pm)
            if champ is None or not math.isfinite(champ):
                failures.append(
                    f"production v{champion_version} has no finite {pm} to compare against (use force=True)"
                )
            else:
                gain = cand - champ if self.greater_is_better else champ - cand
                sign = ">" if self.greater_is_better else "<"
                text = (f"{pm} {cand:.4f} vs production v{champion_version} {champ:.4f} "
                        f"(gain {gain:+.4f}, needs > {self.min_improvement:g}) on {metrics_source}")
                if gain > self.min_improvement:
                    checks.append(text.replace(" vs ", f" {sign} ", 1))
                else:
                    failures.append(f"not better than production: {text}")

        if self.require_signature:
            if signature_present is None:
                failures.append("signature not checked")
            elif not signature_present:
                failures.append("model signature missing" + (f" ({signature_detail})" if signature_detail else ""))
            else:
                checks.append("signature present")

        if self.require_onnx_parity:
            diff = lookup_metric(candidate, self.onnx_parity_metric)
            if diff is None:
                failures.append(f"ONNX parity not recorded ({self.onnx_parity_metric})")
            elif not math.isfinite(diff) or diff > self.max_abs_diff:
                failures.append(f"ONNX parity {self.onnx_parity_metric} {diff:.3g} > {self.max_abs_diff:g}")
            else:
                checks.append(f"ONNX parity {diff:.3g} <= {self.max_abs_diff:g}")

        return GateResult(passed=not failures, failures=tuple(failures), checks=tuple(checks))


# ---------------------------------------------------------------------------------------------
# Locks
# ---------------------------------------------------------------------------------------------


_PROCESS_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


class RegistryLock:
    """A per-model lock chosen by the registry URI's kind (see the module docstring).

    ``kind`` is ``"postgresql-advisory"``, ``"file"`` or ``"process"``.
    """

    def __init__(self, registry_uri: str, timeout_s: float = 60.0) -> None:
        self.uri = registry_uri
        self.timeout_s = float(timeout_s)
        self._engine: Any = None
        self._lock_file: Path | None = None
        scheme = urlsplit(registry_uri).scheme.lower()
        base = scheme.split("+", 1)[0]
        if base in ("postgresql", "postgres"):
            self.kind = "postgresql-advisory"
        elif base == "sqlite" and _has_fcntl():
            from sqlalchemy.engine import make_url

            database = make_url(registry_uri).database
            if database and database != ":memory:" and not database.startswith("file::memory"):
                self._lock_file = Path(database).expanduser().resolve().with_name(Path(database).name + ".registry.lock")
                self.kind = "file"
            else:
                self.kind = "process"
        elif base in ("", "file") and _has_fcntl():
            root = Path(urlsplit(registry_uri).path if base == "file" else registry_uri).expanduser().resolve()
            self._lock_file = root / ".model_registry.lock"
            self.kind = "file"
        else:
            self.kind = "process"

    @contextlib.contextmanager
    def hold(self, name: str) -> Iterator[None]:
        """Hold the lock for model ``name`` for the duration of the ``with`` block."""
        if self.kind == "postgresql-advisory":
            with self._hold_pg(name):
                yield
        elif self.kind == "file":
            with self._hold_file():
                yield
        else:
            with self._hold_process(name):
                yield

    def _pg_engine(self) -> Any:
        if self._engine is None:
            import sqlalchemy
            from sqlalchemy.pool import NullPool

            # NullPool: the lock connection lives for one critical section only; nothing lingers
            # (a pooled idle connection would keep a dropped test database busy).
            self._engine = sqlalchemy.create_engine(self.uri, poolclass=NullPool)
        return self._engine

    @contextlib.contextmanager
    def _hold_pg(self, name: str) -> Iterator[None]:
        import sqlalchemy
        from sqlalchemy.exc import OperationalError

        t0 = time.monotonic()
        with self._pg_engine().connect() as conn:
            with conn.begin():
                conn.execute(sqlalchemy.text("SELECT set_config('lock_timeout', :v, true)"),
                             {"v": f"{int(self.timeout_s * 1000)}ms"})
                try:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:ns, hashtext(:name))"),
                                 {"ns": _PG_LOCK_NAMESPACE, "name": name})
                except OperationalError as exc:
                    code = getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
                    if code == "55P03":  # lock_not_available (psycopg2: pgcode, psycopg 3: sqlstate)
                        raise RegistryLockTimeout(
                            f"registry lock for model {name!r} not obtained within {self.timeout_s:g} s"
                        ) from None
                    raise
                logger.debug("registry lock %r acquired in %.3f s (pg advisory)", name, time.monotonic() - t0)
                yield
            # leaving conn.begin() commits: the transaction-scoped advisory lock is released

    @contextlib.contextmanager
    def _hold_file(self) -> Iterator[None]:
        import fcntl

        assert self._lock_file is not None
        self._lock_file.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.timeout_s
        # A fresh open file description per holder: flock conflicts between them even in one process.
        with open(self._lock_file, "a+") as fh:
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise RegistryLockTimeout(
                            f"registry lock file {self._lock_file} not obtained within {self.timeout_s:g} s"
                        ) from None
                    time.sleep(0.01)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _hold_process(self, name: str) -> Iterator[None]:
        with _PROCESS_LOCKS_GUARD:
            lock = _PROCESS_LOCKS.setdefault((self.uri, name), threading.Lock())
        if not lock.acquire(timeout=self.timeout_s):
            raise RegistryLockTimeout(f"registry lock for model {name!r} not obtained within {self.timeout_s:g} s")
        try:
            yield
        finally:
            lock.release()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _has_fcntl() -> bool:
    return importlib.util.find_spec("fcntl") is not None


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------


def _is_not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def _is_already_exists(exc: Exception) -> bool:
    return getattr(exc, "error_code", None) == "RESOURCE_ALREADY_EXISTS"


def _metric_tag_key(key: str) -> str:
    """Metric names as version-tag keys: unprefixed names are test metrics (the guide passes
    ``test_metrics`` = ``{"accuracy": ...}``), so ``accuracy`` -> ``test_accuracy``."""
    return key if key.startswith(METRIC_PREFIXES) else f"test_{key}"


def _format_number(value: float) -> str:
    return repr(float(value))


class ModelRegistry:
    """Production status, promotion gate, rollback, archive and history over the MLflow registry.

    All public methods are coroutines; blocking MLflow calls run in ``asyncio.to_thread``.

    Args:
        tracking_uri: MLflow tracking URI (``sqlite:///...``, ``postgresql://...``, ``http://...``).
        gate: the promotion gate; default :class:`PromotionGate()`.
        evaluator: ``evaluate(name, version) -> dict[str, float]`` (sync or async) evaluating a
            version on the same recent holdout; when given, champion and challenger are compared
            on its answers instead of their recorded test metrics.
        registry_uri: model registry URI when it differs from ``tracking_uri``.
        experiment_name: experiment for the run :meth:`register_model` creates when it has to
            upload a ``model_path``.
        artifact_location: artifact root for that experiment if it has to be created.
        lock_timeout_s: longest wait for the per-model lock. The evaluator runs inside the
            critical section (champion and challenger are judged against the production version
            of that moment), so keep this above the time one evaluation of two versions takes.
    """

    def __init__(
        self,
        tracking_uri: str,
        gate: PromotionGate | None = None,
        evaluator: Evaluator | None = None,
        *,
        registry_uri: str | None = None,
        experiment_name: str | None = None,
        artifact_location: str | None = None,
        lock_timeout_s: float = 60.0,
    ) -> None:
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.registry_uri = resolve_tracking_uri(registry_uri) if registry_uri else self.tracking_uri
        self.gate = gate or PromotionGate()
        self.evaluator = evaluator
        self.experiment_name = experiment_name or EXPERIMENT_DEFAULT
        self.artifact_location = artifact_location
        self.lock = RegistryLock(self.registry_uri, timeout_s=lock_timeout_s)
        self._client: MlflowClient | None = None
        self._client_guard = threading.Lock()
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"ModelRegistry({mask_uri(self.registry_uri)!r}, lock={self.lock.kind})"

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def client(self) -> MlflowClient:
        """The ``MlflowClient`` (created on first use: opening a fresh SQL store creates its schema)."""
        if self._client is None:
            with self._client_guard:
                if self._client is None:
                    from mlflow import MlflowClient

                    self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        return self._client

    def close(self) -> None:
        """Release the lock engine (the MLflow client holds nothing that needs closing)."""
        self.lock.close()

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _run_locked(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a critical section in a worker thread; ``fn`` takes the real (cross-process) lock.

        Tasks of this process queue on an ``asyncio.Lock`` per model first, so waiters do not each
        park a worker thread of the default executor (an async evaluator that itself needs
        ``to_thread`` would otherwise find the executor full of threads waiting for the lock).
        """
        loop = asyncio.get_running_loop()
        locks = self._async_locks.setdefault(loop, {})
        lock = locks.setdefault(name, asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(fn, *args)

    def _get_registered_model(self, name: str) -> RegisteredModel:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(name)
        except MlflowException as exc:
            if _is_not_found(exc):
                raise ModelNotFoundError(f"registered model {name!r} not found") from None
            raise

    def _get_version(self, name: str, version: int | str) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version(name, str(version))
        except MlflowException as exc:
            if _is_not_found(exc):
                self._get_registered_model(name)  # raises ModelNotFoundError for an unknown model
                raise ModelVersionNotFoundError(f"model {name!r} has no version {version}") from None
            raise

    def _version_info(self, name: str, version: int | str) -> ModelVersionInfo:
        return ModelVersionInfo.from_mlflow(self._get_version(name, version))

    @staticmethod
    def _aliases(rm: RegisteredModel) -> dict[str, int]:
        return {alias: int(v) for alias, v in (rm.aliases or {}).items()}

    def _production_of(self, rm: RegisteredModel) -> int | None:
        return self._aliases(rm).get(ALIAS_PRODUCTION)

    def _recorded_metrics(self, mv: ModelVersion) -> dict[str, float]:
        """Metrics recorded for a version: its run's metrics, overridden by its version tags."""
        out: dict[str, float] = {}
        if mv.run_id:
            try:
                out.update(self.client.get_run(mv.run_id).data.metrics)
            except Exception as exc:  # a deleted run, or a server without it: tags still count
                logger.debug("run %s of %s v%s not readable: %s", mv.run_id, mv.name, mv.version, exc)
        out.update(metrics_from_tags(mv.tags or {}))
        return out

    def _signature(self, name: str, version: int) -> tuple[bool, str]:
        """Whether the version's MLmodel carries an input signature. Downloads only the MLmodel
        file (a few hundred bytes) from the version's storage location."""
        import mlflow.artifacts
        from mlflow.models import Model

        uri = self.client.get_model_version_download_uri(name, str(version))
        with tempfile.TemporaryDirectory(prefix="mlmodel-") as tmp:
            try:
                path = mlflow.artifacts.download_artifacts(
                    artifact_uri=uri.rstrip("/") + "/MLmodel", dst_path=tmp,
                    tracking_uri=self.tracking_uri, registry_uri=self.registry_uri,
                )
                signature = Model.load(path).signature
            except Exception as exc:
                return False, f"no readable MLmodel at {uri}: {type(exc).__name__}"
        if signature is None or signature.inputs is None:
            return False, "MLmodel has no signature"
        return True, ""

    def _call_evaluator(self, name: str, version: int, loop: asyncio.AbstractEventLoop | None) -> dict[str, float]:
        assert self.evaluator is not None
        result = self.evaluator(name, version)
        if inspect.isawaitable(result):
            if loop is not None and loop.is_running():
                result = asyncio.run_coroutine_threadsafe(_as_coroutine(result), loop).result()
            else:
                result = asyncio.run(_as_coroutine(result))
        # Same names as the recorded metrics (``accuracy`` -> ``test_accuracy``), so that the
        # holdout answer replaces the recorded value instead of sitting beside it.
        return {_metric_tag_key(str(k)): float(v) for k, v in dict(result).items()}

    # -- history storage ---------------------------------------------------------------------

    @staticmethod
    def _events_from_tags(name: str, tags: Mapping[str, str]) -> list[PromotionEvent]:
        events = []
        for key, value in tags.items():
            m = _HISTORY_KEY_RE.match(key)
            if not m:
                continue
            try:
                events.append(PromotionEvent.from_json(name, int(m.group(1)), value))
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning("model %r: unreadable history entry %s: %s", name, key, exc)
        events.sort(key=lambda e: e.seq)
        return events

    def _append_event(self, rm_tags: Mapping[str, str], **fields: Any) -> PromotionEvent:
        """Write the next history entry. Must be called under the model's lock with fresh tags."""
        name = fields["name"]
        seqs = [int(m.group(1)) for k in rm_tags if (m := _HISTORY_KEY_RE.match(k))]
        event = PromotionEvent(seq=max(seqs, default=0) + 1, timestamp=_now(), **fields)
        self.client.set_registered_model_tag(name, f"{HISTORY_TAG_PREFIX}{event.seq:06d}", event.to_json())
        logger.info(
            "model %r: %s v%s (production %s -> %s) by %s: %s",
            name, event.decision, event.version, event.from_version, event.to_version, event.actor,
            event.detail or event.reason,
        )
        return event

    # -- register ----------------------------------------------------------------------------

    async def register_model(
        self,
        name: str,
        version: int | str | None = None,
        model_path: str | os.PathLike[str] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> ModelVersionInfo:
        """Attach metrics and tags to a model version, creating it from ``model_path`` if needed.

        The guide's call ``await model_registry.register_model(name=, version=, model_path=, metrics=)``:

        * ``version`` names an existing MLflow version (``7`` or ``"7"``) -> its tags are updated;
          nothing is uploaded (after a training the version already exists in MLflow);
        * otherwise (no such number, or a label such as a timestamp ``"20251216_101500"``), a version
          already tagged ``version_label=<version>`` is updated; failing that, ``model_path`` (an
          MLflow model folder, or any file/folder) is uploaded as the artifact ``model`` of a new
          run in ``experiment_name`` and registered as a new version (MLflow numbers it; the
          requested ``version`` is kept as the tag ``version_label``). No ``model_path`` ->
          :class:`ModelVersionNotFoundError`.

        ``metrics`` become version tags; unprefixed names are test metrics (``accuracy`` ->
        ``test_accuracy``), which is what the promotion gate reads. Production status is not
        touched: use :meth:`promote`.
        """
        return await self._run_locked(name, self._register_sync, name, version, model_path, metrics, tags, description)

    def _register_sync(
        self,
        name: str,
        version: int | str | None,
        model_path: str | os.PathLike[str] | None,
        metrics: Mapping[str, float] | None,
        tags: Mapping[str, Any] | None,
        description: str | None,
    ) -> ModelVersionInfo:
        from mlflow.exceptions import MlflowException

        with self.lock.hold(name):
            mv = self._find_version(name, version)
            if mv is None:
                if model_path is None:
                    raise ModelVersionNotFoundError(
                        f"model {name!r} has no version {version!r} and no model_path was given to create it"
                    )
                try:
                    self.client.create_registered_model(name)
                except MlflowException as exc:
                    if not _is_already_exists(exc):
                        raise
                mv = self._create_version_from_path(name, version, Path(model_path))
            new_tags: dict[str, str] = {}
            for key, value in (metrics or {}).items():
                if _to_float(value) is not None:
                    new_tags[_metric_tag_key(str(key))] = _format_number(float(value))
            for key, value in (tags or {}).items():
                new_tags[str(key)] = str(value)
            for key, value in new_tags.items():
                self.client.set_model_version_tag(name, str(mv.version), key, value)
            if description is not None:
                self.client.update_model_version(name, str(mv.version), description=description)
            logger.info("model %r v%s: registered %d tags", name, mv.version, len(new_tags))
            return self._version_info(name, mv.version)

    def _find_version(self, name: str, version: int | str | None) -> ModelVersion | None:
        from mlflow.exceptions import MlflowException

        if version is None:
            return None
        label = str(version)
        if label.isdigit():
            try:
                return self.client.get_model_version(name, label)
            except MlflowException as exc:
                if not _is_not_found(exc):
                    raise
        for mv in self._search_versions(name):
            if (mv.tags or {}).get(TAG_VERSION_LABEL) == label:
                return mv
        return None

    def _create_version_from_path(self, name: str, version: int | str | None, path: Path) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        if not path.exists():
            raise FileNotFoundError(f"model_path {path} does not exist")
        exp = self.client.get_experiment_by_name(self.experiment_name)
        if exp is None:
            try:
                exp_id = self.client.create_experiment(self.experiment_name, artifact_location=self.artifact_location)
            except MlflowException as exc:
                if not _is_already_exists(exc):
                    raise
                exp_id = self.client.get_experiment_by_name(self.experiment_name).experiment_id
        else:
            exp_id = exp.experiment_id
        run = self.client.create_run(exp_id, run_name=f"register_{name}",
                                     tags={"registered_from": str(path), "source": "model_registry"})
        run_id = run.info.run_id
        try:
            if path.is_dir():
                self.client.log_artifacts(run_id, str(path), "model")
            else:
                self.client.log_artifact(run_id, str(path), "model")
        except Exception:
            self.client.set_terminated(run_id, "FAILED")
            raise
        self.client.set_terminated(run_id, "FINISHED")
        version_tags = {TAG_VERSION_LABEL: str(version)} if version is not None else {}
        mv = self.client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id, tags=version_tags)
        if version is not None and str(version) != str(mv.version):
            logger.info("model %r: %s registered as MLflow version %s", name, version, mv.version)
        return mv

    # -- read --------------------------------------------------------------------------------

    def _search_versions(self, name: str) -> list[ModelVersion]:
        escaped = name.replace("'", "\\'")
        out: list[ModelVersion] = []
        token: str | None = None
        while True:
            page = self.client.search_model_versions(f"name = '{escaped}'", max_results=1000, page_token=token)
            out.extend(page)
            token = getattr(page, "token", None)
            if not token:
                return out

    def _search_registered_models(self) -> list[RegisteredModel]:
        out: list[RegisteredModel] = []
        token: str | None = None
        while True:
            page = self.client.search_registered_models(max_results=1000, page_token=token)
            out.extend(page)
            token = getattr(page, "token", None)
            if not token:
                return out

    def _model_info(self, rm: RegisteredModel, include_versions: bool) -> RegisteredModelInfo:
        aliases = self._aliases(rm)
        versions = []
        if include_versions:
            versions = sorted(
                (ModelVersionInfo.from_mlflow(mv, aliases) for mv in self._search_versions(rm.name)),
                key=lambda v: v.version, reverse=True,
            )
        tags = dict(rm.tags or {})
        history_keys = [k for k in tags if _HISTORY_KEY_RE.match(k)]
        for k in history_keys:
            del tags[k]
        return RegisteredModelInfo(
            name=rm.name,
            description=rm.description or None,
            created_at=_ms_to_dt(rm.creation_timestamp),
            updated_at=_ms_to_dt(rm.last_updated_timestamp),
            aliases=aliases,
            tags=tags,
            versions=versions,
            history_count=len(history_keys),
        )

    async def list_models(self, include_versions: bool = True) -> list[RegisteredModelInfo]:
        """All registered models, sorted by name: aliases, tags, versions with key metrics."""

        def _sync() -> list[RegisteredModelInfo]:
            models = [self._model_info(rm, include_versions) for rm in self._search_registered_models()]
            return sorted(models, key=lambda m: m.name)

        return await self._run(_sync)

    async def get_model(self, name: str, include_versions: bool = True) -> RegisteredModelInfo:
        """One registered model (:class:`ModelNotFoundError` if unknown)."""
        return await self._run(lambda: self._model_info(self._get_registered_model(name), include_versions))

    async def list_versions(self, name: str) -> list[ModelVersionInfo]:
        """All versions of ``name``, newest first, with their aliases, tags and metrics."""

        def _sync() -> list[ModelVersionInfo]:
            return self._model_info(self._get_registered_model(name), True).versions

        return await self._run(_sync)

    async def get_version(self, name: str, version: int | str) -> ModelVersionInfo:
        """One version (:class:`ModelVersionNotFoundError` if unknown)."""
        return await self._run(self._version_info, name, version)

    async def get_production_version(self, name: str) -> ModelVersionInfo | None:
        """The version behind the alias ``production``; None when there is none (or no such model)."""
        return await self.get_alias_version(name, ALIAS_PRODUCTION)

    async def get_alias_version(self, name: str, alias: str) -> ModelVersionInfo | None:
        """The version behind ``alias``; None when the alias is unset or the model unknown."""

        def _sync() -> ModelVersionInfo | None:
            try:
                rm = self._get_registered_model(name)
            except ModelNotFoundError:
                return None
            version = self._aliases(rm).get(alias)
            if version is None:
                return None
            return ModelVersionInfo.from_mlflow(self._get_version(name, version), self._aliases(rm))

        return await self._run(_sync)

    async def history(
        self, name: str | None = None, limit: int = 100, decision: str | None = None
    ) -> list[PromotionEvent]:
        """History entries, newest first: of one model, or of all models when ``name`` is None;
        optionally only one ``decision`` (``promoted``, ``refused``, ``rolled_back``, ``archived``)."""
        if decision is not None and decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}")
        if limit < 0:
            raise ValueError("limit must be >= 0")

        def _sync() -> list[PromotionEvent]:
            if name is not None:
                models = [self._get_registered_model(name)]
            else:
                models = self._search_registered_models()
            events = [e for rm in models for e in self._events_from_tags(rm.name, rm.tags or {})]
            if decision is not None:
                events = [e for e in events if e.decision == decision]
            events.sort(key=lambda e: (e.timestamp, e.seq), reverse=True)
            return events[:limit]

        return await self._run(_sync)

    # -- promote -----------------------------------------------------------------------------

    async def promote(
        self,
        name: str,
        version: int | str,
        reason: str = "",
        actor: str = "manual",
        force: bool = False,
        candidate_metrics: Mapping[str, float] | None = None,
    ) -> PromotionDecision:
        """Move ``production`` to ``version`` if it passes the gate (or unconditionally with ``force``).

        ``candidate_metrics`` (e.g. the training's fresh test metrics, unprefixed names meaning
        ``test_*``) override the version's recorded metrics. A refusal is returned (not raised),
        recorded in the history and tagged on the version as ``promotion_refused_reason``.
        Promoting the version already in production is a no-op (``promoted=False``, no entry).
        Raises :class:`ModelNotFoundError` / :class:`ModelVersionNotFoundError` for unknown ones.
        """
        loop = asyncio.get_running_loop()
        extra = {_metric_tag_key(str(k)): float(v) for k, v in (candidate_metrics or {}).items()
                 if _to_float(v) is not None}
        return await self._run_locked(name, self._promote_sync, name, int(version), reason, actor, force, extra, loop)

    async def auto_promote(
        self,
        name: str,
        version: int | str,
        candidate_metrics: Mapping[str, float] | None = None,
        reason: str = "automatic promotion after training",
        actor: str = "auto",
    ) -> PromotionDecision:
        """:meth:`promote` through the gate, never forced: what ``train_model(auto_promote=True)`` calls."""
        return await self.promote(name, version, reason=reason, actor=actor, force=False,
                                  candidate_metrics=candidate_metrics)

    def _promote_sync(
        self,
        name: str,
        version: int,
        reason: str,
        actor: str,
        force: bool,
        candidate_metrics: dict[str, float],
        loop: asyncio.AbstractEventLoop | None,
    ) -> PromotionDecision:
        with self.lock.hold(name):
            rm = self._get_registered_model(name)
            current = self._production_of(rm)
            mv = self._get_version(name, version)
            if current == version:
                return PromotionDecision(False, f"v{version} is already in production", current, version)
            archived = (mv.tags or {}).get(TAG_ARCHIVED, "").lower() == "true"
            candidate = {**self._recorded_metrics(mv), **candidate_metrics}
            if force:
                detail = "forced: promotion gate skipped"
                metrics: dict[str, Any] = {"candidate": candidate}
                passed = True
            else:
                champion: dict[str, float] | None = None
                if current is not None:
                    try:
                        champion = self._recorded_metrics(self._get_version(name, current))
                    except ModelVersionNotFoundError:
                        champion = {}  # alias points at a deleted version: nothing to beat but say so
                source = "recorded test metrics (no evaluator: not the same holdout)"
                failures: list[str] = []
                if self.evaluator is not None:
                    try:
                        candidate = {**candidate, **self._call_evaluator(name, version, loop)}
                        if current is not None:
                            champion = {**(champion or {}), **self._call_evaluator(name, current, loop)}
                        source = "the same recent holdout"
                    except Exception as exc:
                        logger.exception("model %r: evaluator failed", name)
                        failures.append(f"holdout evaluation failed: {type(exc).__name__}: {exc}")
                signature_ok, signature_detail = (None, "")
                if self.gate.require_signature:
                    signature_ok, signature_detail = self._signature(name, version)
                result = self.gate.check(
                    candidate, champion, champion_version=current, signature_present=signature_ok,
                    signature_detail=signature_detail, archived=archived, metrics_source=source,
                )
                passed = result.passed and not failures
                detail = ("refused: " + "; ".join(failures + list(result.failures))) if not passed else result.reason
                if self.evaluator is None:
                    detail += "; compared recorded test metrics from version tags (no holdout evaluator)"
                metrics = {"candidate": candidate, "champion": champion, "source": source}

            if passed:
                self.client.set_registered_model_alias(name, ALIAS_PRODUCTION, str(version))
                if self._aliases(rm).get(ALIAS_CHALLENGER) == version:
                    self.client.delete_registered_model_alias(name, ALIAS_CHALLENGER)
                self.client.set_model_version_tag(name, str(version), TAG_PROMOTED_AT, _now().isoformat())
                self.client.set_model_version_tag(name, str(version), TAG_PROMOTED_BY, actor)
                # A forced promotion of an archived version un-archives it (the history keeps the record).
                stale = (TAG_REFUSED_REASON, TAG_ARCHIVED, TAG_ARCHIVED_AT, TAG_ARCHIVED_BY, TAG_ARCHIVED_REASON)
                for key in stale:
                    if key in (mv.tags or {}):
                        self.client.delete_model_version_tag(name, str(version), key)
                to_version: int | None = version
            else:
                self.client.set_model_version_tag(name, str(version), TAG_REFUSED_REASON, _cut(detail, MAX_TAG_VALUE))
                to_version = current
            event = self._append_event(
                rm.tags or {}, name=name, decision=DECISION_PROMOTED if passed else DECISION_REFUSED,
                version=version, from_version=current, to_version=to_version, reason=reason, detail=detail,
                actor=actor, forced=force, metrics=metrics,
            )
            return PromotionDecision(passed, detail, current, version, metrics, force, event)

    # -- rollback ----------------------------------------------------------------------------

    @staticmethod
    def production_lineage(events: list[PromotionEvent]) -> list[int]:
        """Replay the history into the stack of production versions (oldest first): a promotion
        pushes its version, a rollback pops back to its target."""
        stack: list[int] = []
        for e in sorted(events, key=lambda e: e.seq):
            if e.decision == DECISION_PROMOTED and e.to_version is not None:
                stack.append(e.to_version)
            elif e.decision == DECISION_ROLLED_BACK and e.to_version is not None:
                while stack and stack[-1] != e.to_version:
                    stack.pop()
                if not stack:
                    stack.append(e.to_version)
        return stack

    async def rollback(self, name: str, reason: str = "", actor: str = "manual") -> PromotionDecision:
        """Move ``production`` back to the previous production version, as the history tells it.

        Archived and deleted versions are skipped; the gate is not applied (the target was in
        production before). Raises :class:`NoPreviousVersionError` when there is nothing to go back to.
        """
        return await self._run_locked(name, self._rollback_sync, name, reason, actor)

    def _rollback_sync(self, name: str, reason: str, actor: str) -> PromotionDecision:
        with self.lock.hold(name):
            rm = self._get_registered_model(name)
            current = self._production_of(rm)
            events = self._events_from_tags(name, rm.tags or {})
            lineage = self.production_lineage(events)
            if current is not None and current in lineage:
                last = len(lineage) - 1 - lineage[::-1].index(current)
                lineage = lineage[:last]
            target: ModelVersion | None = None
            for candidate in reversed(lineage):
                if candidate == current:
                    continue
                try:
                    mv = self._get_version(name, candidate)
                except ModelVersionNotFoundError:
                    continue
                if (mv.tags or {}).get(TAG_ARCHIVED, "").lower() == "true":
                    continue
                target = mv
                break
            if target is None:
                raise NoPreviousVersionError(
                    f"model {name!r}: no previous production version to roll back to "
                    f"(production is {'v' + str(current) if current is not None else 'unset'}; "
                    f"{sum(e.production_changed for e in events)} production changes in the history)"
                )
            version = int(target.version)
            self.client.set_registered_model_alias(name, ALIAS_PRODUCTION, str(version))
            self.client.set_model_version_tag(name, str(version), TAG_PROMOTED_AT, _now().isoformat())
            self.client.set_model_version_tag(name, str(version), TAG_PROMOTED_BY, actor)
            detail = f"rolled back from v{current} to v{version}" if current is not None else f"restored v{version}"
            metrics = {"candidate": self._recorded_metrics(target)}
            event = self._append_event(
                rm.tags or {}, name=name, decision=DECISION_ROLLED_BACK, version=version, from_version=current,
                to_version=version, reason=reason, detail=detail, actor=actor, forced=False, metrics=metrics,
            )
            return PromotionDecision(True, detail, current, version, metrics, False, event)

    # -- archive and aliases -----------------------------------------------------------------

    async def archive(
        self, name: str, version: int | str, reason: str = "", actor: str = "manual", force: bool = False
    ) -> PromotionEvent:
        """Tag ``version`` ``archived=true`` and remove every alias pointing at it.

        Archiving the production version raises :class:`ProductionVersionError` unless ``force``;
        forced, production is left unset (no model served) until a promotion or rollback.
        Archived versions are refused by the gate and skipped by rollback.
        """
        return await self._run_locked(name, self._archive_sync, name, int(version), reason, actor, force)

    def _archive_sync(self, name: str, version: int, reason: str, actor: str, force: bool) -> PromotionEvent:
        with self.lock.hold(name):
            rm = self._get_registered_model(name)
            self._get_version(name, version)
            aliases = self._aliases(rm)
            current = aliases.get(ALIAS_PRODUCTION)
            if current == version and not force:
                raise ProductionVersionError(
                    f"model {name!r}: v{version} is in production; promote or roll back first, or archive with force=True"
                )
            for alias, v in aliases.items():
                if v == version:
                    self.client.delete_registered_model_alias(name, alias)
            for key, value in ((TAG_ARCHIVED, "true"), (TAG_ARCHIVED_AT, _now().isoformat()),
                               (TAG_ARCHIVED_BY, actor), (TAG_ARCHIVED_REASON, _cut(reason, MAX_TAG_VALUE))):
                self.client.set_model_version_tag(name, str(version), key, value)
            after = None if current == version else current
            detail = f"archived v{version}" + (" (was production; production now unset)" if current == version else "")
            return self._append_event(
                rm.tags or {}, name=name, decision=DECISION_ARCHIVED, version=version, from_version=current,
                to_version=after, reason=reason, detail=detail, actor=actor, forced=force and current == version,
                metrics={},
            )

    async def set_alias(self, name: str, alias: str, version: int | str) -> ModelVersionInfo:
        """Point ``challenger`` or ``staging`` at ``version`` (``production`` only via :meth:`promote`)."""
        if alias not in (ALIAS_CHALLENGER, ALIAS_STAGING):
            raise ValueError(f"alias must be {ALIAS_CHALLENGER!r} or {ALIAS_STAGING!r}; production moves via promote()")

        def _sync() -> ModelVersionInfo:
            with self.lock.hold(name):
                mv = self._get_version(name, version)
                if (mv.tags or {}).get(TAG_ARCHIVED, "").lower() == "true":
                    raise ModelRegistryError(f"model {name!r}: v{version} is archived")
                self.client.set_registered_model_alias(name, alias, str(version))
                return self._version_info(name, version)

        return await self._run_locked(name, _sync)

    async def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``challenger`` or ``staging`` (``production`` only via archive/rollback/promote)."""
        if alias not in (ALIAS_CHALLENGER, ALIAS_STAGING):
            raise ValueError(f"alias must be {ALIAS_CHALLENGER!r} or {ALIAS_STAGING!r}")

        def _sync() -> None:
            with self.lock.hold(name):
                if alias in self._aliases(self._get_registered_model(name)):
                    self.client.delete_registered_model_alias(name, alias)

        await self._run_locked(name, _sync)


async def _as_coroutine(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def get_model_registry(
    settings: Settings | None = None,
    gate: PromotionGate | None = None,
    evaluator: Evaluator | None = None,
) -> ModelRegistry:
    """The registry over the configured store: ``MLFLOW_TRACKING_URI``, the gate's minimal accuracy
    from ``ML_MIN_ACCURACY_FOR_PROMOTION``; artifacts of uploaded models under ``MLFLOW_ARTIFACT_LOCATION``."""
    settings = settings or Settings()
    return ModelRegistry(
        settings.mlflow_tracking_uri,
        gate=gate or PromotionGate.from_settings(settings),
        evaluator=evaluator,
        experiment_name=settings.mlflow_experiment_name,
        artifact_location=settings.mlflow_artifact_location,
    )
