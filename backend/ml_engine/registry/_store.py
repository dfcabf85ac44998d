"""ModelStore: the only code that reads or writes the MLflow model registry (synchronous).

One ``MlflowClient``, the one ``models:/`` resolver (:mod:`._resolver`), the version-tag schema
(:mod:`._entities`), the promotion history, the gate (:mod:`._gate`) and the per-model lock
(:mod:`backend.ml_engine.locks`). The guide's async ``ModelRegistry`` (:mod:`._facade`) is a thin
face over it; the Predictor, the tracker's registration, retraining, the services and the
dashboard call this class directly.

Promotion history
-----------------
MLflow keeps no history of alias moves, so the store writes one entry per decision
(``promoted``, ``refused``, ``rolled_back``, ``archived``) as a registered-model tag
``history.<seq:06d>`` whose value is the entry as JSON (at most 5000 characters, the column size
of ``registered_model_tags.value``). A tag rather than a table of our own: it works on every
store (SQLite, PostgreSQL and an ``http://`` server, which exposes no database), lives next to
the alias it describes (backed up, renamed and deleted with the model, visible in the MLflow UI)
and needs no schema beside MLflow's. Entries are written inside the same critical section as the
alias change, so ``seq`` is gap-free and each entry's ``from_version`` equals the previous
entry's ``to_version`` unless somebody moved the alias outside this API (then the alias wins:
``from_version`` is always read from MLflow). The alias is moved before the entry is written: a
crash in between leaves the truth (the alias) right and one entry missing, never an entry that
claims a move that did not happen. Each entry carries the decision's :class:`~..verdicts.Verdict`
(codes and numbers) beside its English ``detail``, so front ends render it in their language.

Concurrency
-----------
Promote, rollback, archive, register and the alias setters read the current state, decide, then
write, under the model's lock (``Locks.hold("registry", name)``): a PostgreSQL advisory lock on
the coordination database when one is configured (the jobs database or a PostgreSQL tracking
store), whatever the tracking URI is; a file lock when everything is on one machine.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import one_line
from ..locks import Locks, LockTimeout, coordination_url, default_lock_dir
from ..mlflow_integration.stores import mask_uri, resolve_tracking_uri, store_kind
from ..verdicts import Check, Verdict
from ._entities import (
    ALIAS_CHALLENGER,
    ALIAS_PRODUCTION,
    ALIAS_STAGING,
    DECISION_ARCHIVED,
    DECISION_PROMOTED,
    DECISION_REFUSED,
    DECISION_ROLLED_BACK,
    DECISIONS,
    MAX_TAG_VALUE,
    MODEL_ID_TAG,
    TAG_ARCHIVED,
    TAG_ARCHIVED_AT,
    TAG_ARCHIVED_BY,
    TAG_ARCHIVED_REASON,
    TAG_PROMOTED_AT,
    TAG_PROMOTED_BY,
    TAG_REFUSED_REASON,
    TAG_VERSION_LABEL,
    ModelVersionInfo,
    PromotionDecision,
    PromotionEvent,
    RegisteredModelInfo,
    cut,
    metric_tag_key,
    metrics_from_tags,
    model_id_of_version,
    ms_to_dt,
    now_utc,
    to_float,
)
from ._errors import (
    ModelNotFoundError,
    ModelRegistryError,
    ModelVersionNotFoundError,
    NoPreviousVersionError,
    ProductionVersionError,
    RegistryLockTimeout,
)
from ._gate import PromotionGate
from ._resolver import ModelUri, ResolvedModel, parse_model_uri

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModel, Run
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel
    from mlflow.models import Model

    from ..config import Settings

__all__ = ["Evaluator", "ModelStore", "RegistryLock", "get_model_store"]

logger = logging.getLogger(__name__)

#: ``evaluate(name, version) -> {"test_accuracy": ..., "test_f1_macro": ...}`` on the same recent
#: holdout for every version it is asked about.
Evaluator = Callable[[str, int], Mapping[str, float]]

#: Registered-model tag prefix of history entries: ``history.000012`` = JSON.
HISTORY_TAG_PREFIX = "history."
_HISTORY_KEY_RE = re.compile(r"^history\.(\d+)$")
#: MLflow error codes meaning "no such model / version / alias".
_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"})
#: Seconds create_version waits for a model version to become READY.
DEFAULT_REGISTRATION_TIMEOUT_S = 300.0
LOCK_NAMESPACE = "registry"
METADATA_FILE = "artifacts/metadata.json"


def _is_not_found(exc: BaseException) -> bool:
    return getattr(exc, "error_code", None) in _NOT_FOUND_CODES


def _is_already_exists(exc: BaseException) -> bool:
    return getattr(exc, "error_code", None) in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS")


class RegistryLock:
    """The per-model lock of registry decisions (``Locks`` namespace ``registry``)."""

    def __init__(self, locks: Locks, timeout_s: float) -> None:
        self.locks = locks
        self.timeout_s = float(timeout_s)

    @property
    def kind(self) -> str:
        """``"postgresql-advisory"`` or ``"file"``."""
        return self.locks.kind

    @contextlib.contextmanager
    def hold(self, name: str) -> Iterator[None]:
        try:
            with self.locks.hold(LOCK_NAMESPACE, name, timeout_s=self.timeout_s):
                yield
        except LockTimeout as exc:
            raise RegistryLockTimeout(
                f"registry lock for model {name!r} not obtained within {self.timeout_s:g} s ({exc})"
            ) from None

    def close(self) -> None:
        self.locks.close()


class ModelStore:
    """Registered models, versions, aliases, the gate and the history (see the module docstring).

    Args:
        tracking_uri: MLflow tracking URI (``sqlite:///...``, ``postgresql://...``, ``http://...``).
        gate: the promotion gate; default :class:`PromotionGate()`.
        evaluator: ``evaluate(name, version) -> dict[str, float]`` judging versions on the same recent
            holdout; when given, champion and challenger are compared on its answers.
        registry_uri: model registry URI when it differs from ``tracking_uri``.
        experiment_name: experiment of the run :meth:`register_model` creates to upload a folder.
        artifact_location: artifact root for that experiment if it has to be created.
        lock_timeout_s: longest wait for the per-model lock (the evaluator runs inside it).
        coordination: PostgreSQL URL of the lock database (default: the tracking store when it is
            PostgreSQL, else file locks in ``lock_dir``).
        locks: the lock backend (:meth:`Locks.from_settings` at entry points); default from the above.
        client: an ``MlflowClient`` to share (the tracker passes its own).
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
        coordination: str | None = None,
        lock_dir: str | os.PathLike[str] | None = None,
        locks: Locks | None = None,
        client: MlflowClient | None = None,
    ) -> None:
        from ..config import EXPERIMENT_DEFAULT

        self.display_uri = mask_uri(tracking_uri)
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.registry_uri = resolve_tracking_uri(registry_uri) if registry_uri else self.tracking_uri
        self.gate = gate or PromotionGate()
        self.evaluator = evaluator
        self.experiment_name = experiment_name or EXPERIMENT_DEFAULT
        self.artifact_location = artifact_location
        if locks is None:
            url = coordination or coordination_url(None, self.registry_uri)
            locks = Locks(url, lock_dir or default_lock_dir(self.registry_uri))
        self.lock = RegistryLock(locks, lock_timeout_s)
        self._client = client
        self._client_guard = threading.Lock()

    def __repr__(self) -> str:
        return f"ModelStore({mask_uri(self.registry_uri)!r}, lock={self.lock.kind})"

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

    # ------------------------------------------------------------------ low-level reads

    def _get_registered_model(self, name: str) -> RegisteredModel:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(name)
        except MlflowException as exc:
            if _is_not_found(exc):
                raise ModelNotFoundError(
                    f"registered model {name!r} does not exist in {self.display_uri}: train and register one "
                    "first (TrainingOrchestrator().train_model(...))"
                ) from None
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

    def _get_alias(self, name: str, alias: str) -> ModelVersion:
        rm = self._get_registered_model(name)
        version = self._aliases(rm).get(alias)
        if version is None:
            aliases = ", ".join(f"{a}=v{v}" for a, v in sorted(self._aliases(rm).items())) or "none"
            hint = (
                ": promote a version first (ModelRegistry.promote or train with auto_promote=True)"
                if alias == ALIAS_PRODUCTION
                else ""
            )
            raise ModelVersionNotFoundError(
                f"registered model {name!r} has no alias {alias!r} (aliases: {aliases}) in {self.display_uri}{hint}"
            )
        return self._get_version(name, version)

    def _latest(self, name: str) -> ModelVersion:
        found = self.client.search_model_versions(
            filter_string=f"name = '{_quote(name)}'", max_results=1, order_by=["version_number DESC"]
        )
        if not found:
            self._get_registered_model(name)
            raise ModelVersionNotFoundError(f"registered model {name!r} has no versions (store {self.display_uri})")
        return found[0]

    @staticmethod
    def _aliases(rm: RegisteredModel) -> dict[str, int]:
        return {alias: int(v) for alias, v in (rm.aliases or {}).items()}

    def _production_of(self, rm: RegisteredModel) -> int | None:
        return self._aliases(rm).get(ALIAS_PRODUCTION)

    def _search_versions(self, name: str) -> list[ModelVersion]:
        out: list[ModelVersion] = []
        token: str | None = None
        while True:
            page = self.client.search_model_versions(f"name = '{_quote(name)}'", max_results=1000, page_token=token)
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

    def _recorded_metrics(self, mv: ModelVersion) -> dict[str, float]:
        """Metrics recorded for a version: its run's metrics, overridden by its version tags."""
        out: dict[str, float] = {}
        if mv.run_id:
            try:
                out.update(self.client.get_run(mv.run_id).data.metrics)
            except Exception as exc:  # noqa: BLE001 - a deleted run, or a server without it: tags still count
                logger.debug("run %s of %s v%s not readable: %s", mv.run_id, mv.name, mv.version, exc)
        out.update(metrics_from_tags(mv.tags or {}))
        return out

    # ------------------------------------------------------------------ resolution and files

    def resolve(self, uri: str | os.PathLike[str]) -> ResolvedModel:
        """What ``uri`` names (rules: :mod:`._resolver`). ``ModelNotFoundError`` /
        ``ModelVersionNotFoundError`` (with what exists and what to do) when nothing is there."""
        from mlflow.exceptions import MlflowException

        parsed = parse_model_uri(os.fspath(uri))
        try:
            return self._resolve(parsed)
        except MlflowException as exc:
            if _is_not_found(exc):
                raise ModelNotFoundError(f"{parsed.uri}: {one_line(exc)} (store {self.display_uri})") from None
            raise

    def _resolve(self, p: ModelUri) -> ResolvedModel:
        if p.kind == "local":
            path = Path(p.path)
            if not (path / "MLmodel").is_file():
                raise ModelNotFoundError(f"{p.uri}: not a models:/ or runs:/ URI, nor a folder with an MLmodel file")
            return ResolvedModel(p.uri, str(path.resolve()), local=True)
        if p.kind == "model_id":
            assert p.model_id is not None
            lm = self.client.get_logged_model(p.model_id)
            return ResolvedModel(p.uri, lm.artifact_location, model_id=lm.model_id, run_id=lm.source_run_id)
        if p.kind == "run":
            assert p.run_id is not None
            head, _, rest = p.path.partition("/")
            run = self.client.get_run(p.run_id)
            logged = self._logged_model_of_run(run, head)
            if logged is not None:
                location = logged.artifact_location.rstrip("/") + (f"/{rest}" if rest else "")
                return ResolvedModel(p.uri, location, model_id=logged.model_id, run_id=p.run_id)
            return ResolvedModel(p.uri, run.info.artifact_uri.rstrip("/") + f"/{p.path}", run_id=p.run_id)
        assert p.name is not None
        if p.kind == "alias":
            assert p.alias is not None
            mv = self._get_alias(p.name, p.alias)
        elif p.kind == "latest":
            mv = self._latest(p.name)
        else:
            mv = self._get_version(p.name, int(p.version or 0))
        return self._resolved_version(p.uri, mv)

    def _resolved_version(self, uri: str, mv: ModelVersion) -> ResolvedModel:
        model_id = model_id_of_version(mv)
        if model_id:
            location = self.client.get_logged_model(model_id).artifact_location
        else:
            location = self.client.get_model_version_download_uri(mv.name, str(mv.version))
        return ResolvedModel(
            uri, location, name=mv.name, version=int(mv.version), model_id=model_id, run_id=mv.run_id or None
        )

    def _logged_model_of_run(self, run: Run, name: str) -> LoggedModel | None:
        outputs = run.outputs.model_outputs if run.outputs is not None else []
        best: tuple[tuple[int, int], LoggedModel] | None = None
        for output in outputs:
            model = self.client.get_logged_model(output.model_id)
            if model.name != name:
                continue
            rank = (int(output.step or 0), int(model.creation_timestamp or 0))
            if best is None or rank > best[0]:
                best = (rank, model)
        return best[1] if best else None

    def download(self, model: ResolvedModel | str, dst: str | os.PathLike[str], path: str = "") -> Path:
        """Download the model folder (or ``path`` inside it) into ``dst``; returns the local path."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        resolved = model if isinstance(model, ResolvedModel) else self.resolve(model)
        if resolved.local:
            return Path(resolved.location) / path if path else Path(resolved.location)
        repo = get_artifact_repository(
            resolved.location, tracking_uri=self.tracking_uri, registry_uri=self.registry_uri
        )
        local: str = repo.download_artifacts(path, dst_path=os.fspath(dst))  # type: ignore[no-untyped-call]
        return Path(local)

    def read_mlmodel(self, model: ResolvedModel | str) -> Model:
        """The ``MLmodel`` of a model (a few hundred bytes downloaded): flavors, signature, model id."""
        from mlflow.models import Model

        with tempfile.TemporaryDirectory(prefix="mlmodel-") as tmp:
            return Model.load(str(self.download(model, tmp, "MLmodel")))

    def read_metadata(self, model: ResolvedModel | str) -> dict[str, Any]:
        """The model's ``artifacts/metadata.json`` (configs, pipeline, test metrics); for versions
        logged before it was kept in the model folder, the run's ``metadata.json``."""
        resolved = model if isinstance(model, ResolvedModel) else self.resolve(model)
        with tempfile.TemporaryDirectory(prefix="metadata-") as tmp:
            try:
                path = self.download(resolved, tmp, METADATA_FILE)
            except Exception:
                if not resolved.run_id:
                    raise
                path = Path(self.client.download_artifacts(resolved.run_id, "metadata.json", tmp))
            data: dict[str, Any] = json.loads(path.read_text())
            return data

    def _signature(self, name: str, version: int) -> tuple[bool, dict[str, Any]]:
        """Whether the version's MLmodel carries an input signature, and if not, why."""
        resolved = self._resolved_version(f"models:/{name}/{version}", self._get_version(name, version))
        try:
            signature = self.read_mlmodel(resolved).signature
        except Exception as exc:  # noqa: BLE001 - whatever keeps the MLmodel from being read: reported as unreadable
            return False, {"why": "unreadable", "uri": mask_uri(resolved.location), "error": type(exc).__name__}
        if signature is None or signature.inputs is None:
            return False, {"why": "no_signature"}
        return True, {}

    # ------------------------------------------------------------------ reads

    def _version_info(self, name: str, version: int | str) -> ModelVersionInfo:
        return ModelVersionInfo.from_mlflow(self._get_version(name, version))

    def _model_info(self, rm: RegisteredModel, include_versions: bool) -> RegisteredModelInfo:
        aliases = self._aliases(rm)
        versions: list[ModelVersionInfo] = []
        if include_versions:
            versions = sorted(
                (ModelVersionInfo.from_mlflow(mv, aliases) for mv in self._search_versions(rm.name)),
                key=lambda v: v.version,
                reverse=True,
            )
        tags = dict(rm.tags or {})
        history_keys = [k for k in tags if _HISTORY_KEY_RE.match(k)]
        for k in history_keys:
            del tags[k]
        return RegisteredModelInfo(
            name=rm.name,
            description=rm.description or None,
            created_at=ms_to_dt(rm.creation_timestamp),
            updated_at=ms_to_dt(rm.last_updated_timestamp),
            aliases=aliases,
            tags=tags,
            versions=versions,
            history_count=len(history_keys),
        )

    def list_models(self, include_versions: bool = True) -> list[RegisteredModelInfo]:
        """All registered models, sorted by name: aliases, tags, versions with key metrics."""
        models = [self._model_info(rm, include_versions) for rm in self._search_registered_models()]
        return sorted(models, key=lambda m: m.name)

    def get_model(self, name: str, include_versions: bool = True) -> RegisteredModelInfo:
        """One registered model (:class:`ModelNotFoundError` if unknown)."""
        return self._model_info(self._get_registered_model(name), include_versions)

    def list_versions(self, name: str) -> list[ModelVersionInfo]:
        """All versions of ``name``, newest first, with their aliases, tags and metrics."""
        return self._model_info(self._get_registered_model(name), True).versions

    def get_version(self, name: str, version: int | str) -> ModelVersionInfo:
        """One version (:class:`ModelVersionNotFoundError` if unknown)."""
        return self._version_info(name, version)

    def get_latest_version(self, name: str) -> ModelVersionInfo | None:
        """The newest version of ``name`` (the highest number); None when it has no versions
        (:class:`ModelNotFoundError` if the model is unknown). One query, not a listing."""
        try:
            return ModelVersionInfo.from_mlflow(self._latest(name))
        except ModelVersionNotFoundError:
            return None

    def get_alias_version(self, name: str, alias: str) -> ModelVersionInfo | None:
        """The version behind ``alias``; None when the alias is unset or the model unknown."""
        try:
            rm = self._get_registered_model(name)
        except ModelNotFoundError:
            return None
        version = self._aliases(rm).get(alias)
        if version is None:
            return None
        return ModelVersionInfo.from_mlflow(self._get_version(name, version), self._aliases(rm))

    def get_production_version(self, name: str) -> ModelVersionInfo | None:
        """The version behind the alias ``production``; None when there is none (or no such model)."""
        return self.get_alias_version(name, ALIAS_PRODUCTION)

    def history(self, name: str | None = None, limit: int = 100, decision: str | None = None) -> list[PromotionEvent]:
        """History entries, newest first: of one model, or of all models when ``name`` is None;
        optionally only one ``decision`` (``promoted``, ``refused``, ``rolled_back``, ``archived``)."""
        if decision is not None and decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}")
        if limit < 0:
            raise ValueError("limit must be >= 0")
        models = [self._get_registered_model(name)] if name is not None else self._search_registered_models()
        events = [e for rm in models for e in self._events_from_tags(rm.name, rm.tags or {})]
        if decision is not None:
            events = [e for e in events if e.decision == decision]
        events.sort(key=lambda e: (e.timestamp, e.seq), reverse=True)
        return events[:limit]

    # ------------------------------------------------------------------ history storage

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
        event = PromotionEvent(seq=max(seqs, default=0) + 1, timestamp=now_utc(), **fields)
        self.client.set_registered_model_tag(name, f"{HISTORY_TAG_PREFIX}{event.seq:06d}", event.to_json())
        logger.info(
            "model %r: %s v%s (production %s -> %s) by %s: %s",
            name,
            event.decision,
            event.version,
            event.from_version,
            event.to_version,
            event.actor,
            event.detail or event.reason,
        )
        return event

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

    # ------------------------------------------------------------------ registration

    def create_version(
        self,
        model_id: str,
        name: str,
        *,
        run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        registered_model_description: str | None = None,
        await_timeout_s: float = DEFAULT_REGISTRATION_TIMEOUT_S,
    ) -> ModelVersionInfo:
        """Register the LoggedModel ``model_id`` as a new version of ``name`` (created when missing);
        the version carries ``tags`` plus ``model_id`` and ``run_id``; waits until it is READY.

        MLflow's SQL registry store resolves a ``models:/<model_id>`` source with a fresh
        ``MlflowClient()`` (the *global* tracking URI; a TODO in MLflow says so) and stores no model
        id. On SQL stores the source is therefore the model's artifact location and the model id
        the version tag ``model_id``; a tracking server resolves ``models:/<id>`` with its own store.
        """
        logged = self.client.get_logged_model(model_id)
        run_id = run_id or logged.source_run_id
        self._ensure_registered_model(name, registered_model_description)
        version_tags = {str(k): str(v) for k, v in (tags or {}).items()}
        version_tags[MODEL_ID_TAG] = model_id
        if run_id:
            version_tags.setdefault("run_id", run_id)
        version_tags = {k: cut(v, MAX_TAG_VALUE) for k, v in version_tags.items()}
        source = f"models:/{model_id}" if store_kind(self.registry_uri) == "http" else logged.artifact_location
        mv = self.client.create_model_version(
            name=name,
            source=source,
            run_id=run_id,
            tags=version_tags,
            description=description,
            await_creation_for=0,
            model_id=model_id,
        )
        self._wait_ready(name, str(mv.version), await_timeout_s)
        logger.info("Registered models:/%s as %s version %s", model_id, name, mv.version)
        return self._version_info(name, mv.version)

    def _ensure_registered_model(self, name: str, description: str | None) -> None:
        from mlflow.exceptions import MlflowException

        text = description or (
            f"Модель {name}: версии регистрируются из запусков MLflow; production-версия — алиас "
            f"'production'.\n\nModel {name}: versions are registered from MLflow runs; the "
            f"production version is the alias 'production'."
        )
        try:
            self.client.create_registered_model(name, description=text)
            logger.info("Created registered model %r", name)
        except MlflowException as exc:
            if not _is_already_exists(exc):
                raise
            if description and not self.client.get_registered_model(name).description:
                self.client.update_registered_model(name, description=description)

    def _wait_ready(self, name: str, version: str, timeout_s: float) -> None:
        from mlflow.entities.model_registry.model_version_status import ModelVersionStatus

        deadline = time.monotonic() + timeout_s
        delay = 0.05
        while True:
            mv = self.client.get_model_version(name, version)
            status = (
                ModelVersionStatus.from_string(mv.status)  # type: ignore[no-untyped-call]
                if isinstance(mv.status, str)
                else mv.status
            )
            if status == ModelVersionStatus.READY:
                return
            if status == ModelVersionStatus.FAILED_REGISTRATION:
                raise ModelRegistryError(f"registration of {name} version {version} failed: {mv.status_message}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} version {version} not READY after {timeout_s:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def set_version_tags(self, name: str, version: int | str, tags: Mapping[str, Any]) -> None:
        """Set tags on a version (values as text, cut to MLflow's limit)."""
        for key, value in tags.items():
            self.client.set_model_version_tag(name, str(version), str(key), cut(str(value), MAX_TAG_VALUE))

    def register_model(
        self,
        name: str,
        version: int | str | None = None,
        model_path: str | os.PathLike[str] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> ModelVersionInfo:
        """Attach metrics and tags to a model version, creating it from ``model_path`` if needed.

        The guide's ``register_model(name=, version=, model_path=, metrics=)``:

        * ``version`` names an existing MLflow version (``7`` or ``"7"``) -> its tags are updated;
          nothing is uploaded (after a training the version already exists in MLflow);
        * otherwise (no such number, or a label such as a timestamp ``"20251216_101500"``), a version
          already tagged ``version_label=<version>`` is updated; failing that, ``model_path`` (an
          MLflow model folder, or any file/folder) is uploaded as the artifact ``model`` of a new
          run in ``experiment_name`` and registered as a new version (MLflow numbers it; the
          requested ``version`` is kept as the tag ``version_label``). No ``model_path`` ->
          :class:`ModelVersionNotFoundError`.

        ``metrics`` become version tags; unprefixed names are test metrics (``accuracy`` ->
        ``test_accuracy``), which is what the gate reads. Production status is not touched.
        """
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
                number = to_float(value)
                if number is not None:
                    new_tags[metric_tag_key(str(key))] = repr(number)
            new_tags.update({str(k): str(v) for k, v in (tags or {}).items()})
            self.set_version_tags(name, mv.version, new_tags)
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
        from ..mlflow_integration.experiments import ensure_experiment

        if not path.exists():
            raise FileNotFoundError(f"model_path {path} does not exist")
        exp_id = ensure_experiment(self.client, self.experiment_name, self.artifact_location)
        run = self.client.create_run(
            exp_id, run_name=f"register_{name}", tags={"registered_from": str(path), "source": "model_registry"}
        )
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

    # ------------------------------------------------------------------ decisions

    def promote(
        self,
        name: str,
        version: int | str,
        reason: str = "",
        actor: str = "manual",
        force: bool = False,
        candidate_metrics: Mapping[str, float] | None = None,
        *,
        evaluator: Evaluator | None = None,
        reason_check: Check | None = None,
    ) -> PromotionDecision:
        """Move ``production`` to ``version`` if it passes the gate (or unconditionally with ``force``).

        ``candidate_metrics`` (e.g. a training's fresh test metrics; unprefixed names mean
        ``test_*``) override the version's recorded metrics; ``evaluator`` overrides the store's.
        A refusal is returned (not raised), recorded in the history and tagged on the version as
        ``promotion_refused_reason``. Promoting the version already in production is a no-op
        (``promoted=False``, no entry). ``reason_check``: the engine's own reason as a code (it is
        rendered in the reader's language; ``reason`` keeps its English words).
        """
        version = int(version)
        extra = {
            metric_tag_key(str(k)): float(v) for k, v in (candidate_metrics or {}).items() if to_float(v) is not None
        }
        judge = evaluator if evaluator is not None else self.evaluator
        with self.lock.hold(name):
            rm = self._get_registered_model(name)
            current = self._production_of(rm)
            mv = self._get_version(name, version)
            if current == version:
                verdict = Verdict.of("already_in_production", version=version)
                return PromotionDecision(False, verdict.render(), current, version, verdict=verdict)
            archived = (mv.tags or {}).get(TAG_ARCHIVED, "").lower() == "true"
            candidate = {**self._recorded_metrics(mv), **extra}
            metrics: dict[str, Any]
            if force:
                verdict = Verdict.of("forced")
                metrics = {"candidate": candidate}
            else:
                verdict, metrics = self._judge(name, version, current, candidate, archived, judge)
            passed = force or verdict.passed
            detail = verdict.render()
            if passed:
                self.client.set_registered_model_alias(name, ALIAS_PRODUCTION, str(version))
                if self._aliases(rm).get(ALIAS_CHALLENGER) == version:
                    self.client.delete_registered_model_alias(name, ALIAS_CHALLENGER)
                self.set_version_tags(name, version, {TAG_PROMOTED_AT: now_utc().isoformat(), TAG_PROMOTED_BY: actor})
                # A forced promotion of an archived version un-archives it (the history keeps the record).
                stale = (TAG_REFUSED_REASON, TAG_ARCHIVED, TAG_ARCHIVED_AT, TAG_ARCHIVED_BY, TAG_ARCHIVED_REASON)
                for key in stale:
                    if key in (mv.tags or {}):
                        self.client.delete_model_version_tag(name, str(version), key)
                to_version: int | None = version
            else:
                self.set_version_tags(name, version, {TAG_REFUSED_REASON: detail})
                to_version = current
            event = self._append_event(
                rm.tags or {},
                name=name,
                decision=DECISION_PROMOTED if passed else DECISION_REFUSED,
                version=version,
                from_version=current,
                to_version=to_version,
                reason=reason,
                detail=detail,
                actor=actor,
                forced=force,
                metrics=metrics,
                verdict=verdict,
                reason_check=reason_check,
            )
            return PromotionDecision(passed, detail, current, version, metrics, force, event, verdict)

    def _judge(
        self,
        name: str,
        version: int,
        current: int | None,
        candidate: dict[str, float],
        archived: bool,
        judge: Evaluator | None,
    ) -> tuple[Verdict, dict[str, Any]]:
        champion: dict[str, float] | None = None
        if current is not None:
            try:
                champion = self._recorded_metrics(self._get_version(name, current))
            except ModelVersionNotFoundError:
                champion = {}  # the alias points at a deleted version: nothing to beat, and the gate says so
        source = "recorded_no_evaluator"
        failures: list[Check] = []
        if judge is not None:
            try:
                candidate = {**candidate, **_as_metric_keys(judge(name, version))}
                if current is not None:
                    champion = {**(champion or {}), **_as_metric_keys(judge(name, current))}
                source = "same_holdout"
            except Exception as exc:
                logger.exception("model %r: evaluator failed", name)
                failures.append(Check("evaluation_failed", False, {"error": f"{type(exc).__name__}: {exc}"}))
        signature_ok: bool | None = None
        problem: dict[str, Any] = {}
        if self.gate.require_signature:
            signature_ok, problem = self._signature(name, version)
        tags: dict[str, str] = {}
        if self.gate.min_dsr is not None or self.gate.max_pbo is not None:  # a search's DSR and PBO are tags
            tags = dict(self._get_version(name, version).tags or {})
        result = self.gate.check(
            candidate,
            champion,
            champion_version=current,
            signature_present=signature_ok,
            signature_problem=problem,
            archived=archived,
            metrics_source=source,
            tags=tags,
        )
        notes = (Check("no_evaluator"),) if judge is None else ()
        verdict = Verdict(tuple(failures) + result.checks, notes, gate=True)
        return verdict, {"candidate": candidate, "champion": champion, "source": source}

    def auto_promote(
        self,
        name: str,
        version: int | str,
        candidate_metrics: Mapping[str, float] | None = None,
        reason: str | None = None,
        actor: str = "auto",
        *,
        evaluator: Evaluator | None = None,
        reason_check: Check | None = None,
    ) -> PromotionDecision:
        """:meth:`promote` through the gate, never forced: what ``train_model(auto_promote=True)`` calls."""
        from ..verdicts import render

        check = reason_check or (Check("auto_after_training") if reason is None else None)
        text = reason if reason is not None else render(check) if check is not None else ""
        return self.promote(
            name,
            version,
            reason=text,
            actor=actor,
            force=False,
            candidate_metrics=candidate_metrics,
            evaluator=evaluator,
            reason_check=check,
        )

    def rollback(self, name: str, reason: str = "", actor: str = "manual") -> PromotionDecision:
        """Move ``production`` back to the previous production version, as the history tells it.

        Archived and deleted versions are skipped; the gate is not applied (the target was in
        production before). Raises :class:`NoPreviousVersionError` when there is nothing to go back to.
        """
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
            self.set_version_tags(name, version, {TAG_PROMOTED_AT: now_utc().isoformat(), TAG_PROMOTED_BY: actor})
            verdict = (
                Verdict.of("rolled_back", from_version=current, to_version=version)
                if current is not None
                else Verdict.of("restored", version=version)
            )
            detail = verdict.render()
            metrics = {"candidate": self._recorded_metrics(target)}
            event = self._append_event(
                rm.tags or {},
                name=name,
                decision=DECISION_ROLLED_BACK,
                version=version,
                from_version=current,
                to_version=version,
                reason=reason,
                detail=detail,
                actor=actor,
                forced=False,
                metrics=metrics,
                verdict=verdict,
            )
            return PromotionDecision(True, detail, current, version, metrics, False, event, verdict)

    def archive(
        self, name: str, version: int | str, reason: str = "", actor: str = "manual", force: bool = False
    ) -> PromotionEvent:
        """Tag ``version`` ``archived=true`` and remove every alias pointing at it.

        Archiving the production version raises :class:`ProductionVersionError` unless ``force``;
        forced, production is left unset (no model served) until a promotion or rollback.
        Archived versions are refused by the gate and skipped by rollback.
        """
        version = int(version)
        with self.lock.hold(name):
            rm = self._get_registered_model(name)
            self._get_version(name, version)
            aliases = self._aliases(rm)
            current = aliases.get(ALIAS_PRODUCTION)
            if current == version and not force:
                raise ProductionVersionError(
                    f"model {name!r}: v{version} is in production; promote or roll back first, or archive with "
                    "force=True"
                )
            for alias, v in aliases.items():
                if v == version:
                    self.client.delete_registered_model_alias(name, alias)
            self.set_version_tags(
                name,
                version,
                {
                    TAG_ARCHIVED: "true",
                    TAG_ARCHIVED_AT: now_utc().isoformat(),
                    TAG_ARCHIVED_BY: actor,
                    TAG_ARCHIVED_REASON: reason,
                },
            )
            verdict = Verdict.of("archived_version", version=version, was_production=current == version)
            return self._append_event(
                rm.tags or {},
                name=name,
                decision=DECISION_ARCHIVED,
                version=version,
                from_version=current,
                to_version=None if current == version else current,
                reason=reason,
                detail=verdict.render(),
                actor=actor,
                forced=force and current == version,
                metrics={},
                verdict=verdict,
            )

    def set_alias(self, name: str, alias: str, version: int | str) -> ModelVersionInfo:
        """Point ``challenger`` or ``staging`` at ``version`` (``production`` only via :meth:`promote`)."""
        if alias not in (ALIAS_CHALLENGER, ALIAS_STAGING):
            raise ValueError(f"alias must be {ALIAS_CHALLENGER!r} or {ALIAS_STAGING!r}; production moves via promote()")
        with self.lock.hold(name):
            mv = self._get_version(name, version)
            if (mv.tags or {}).get(TAG_ARCHIVED, "").lower() == "true":
                raise ModelRegistryError(f"model {name!r}: v{version} is archived")
            self.client.set_registered_model_alias(name, alias, str(version))
            return self._version_info(name, version)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``challenger`` or ``staging`` (``production`` only via archive/rollback/promote)."""
        if alias not in (ALIAS_CHALLENGER, ALIAS_STAGING):
            raise ValueError(f"alias must be {ALIAS_CHALLENGER!r} or {ALIAS_STAGING!r}")
        with self.lock.hold(name):
            if alias in self._aliases(self._get_registered_model(name)):
                self.client.delete_registered_model_alias(name, alias)


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


def _as_metric_keys(result: Mapping[str, Any]) -> dict[str, float]:
    """An evaluator's answer under the recorded metrics' names (``accuracy`` -> ``test_accuracy``), so
    the holdout value replaces the recorded one instead of sitting beside it."""
    return {metric_tag_key(str(k)): float(v) for k, v in dict(result).items()}


def get_model_store(
    settings: Settings | None = None,
    gate: PromotionGate | None = None,
    evaluator: Evaluator | None = None,
    *,
    experiment_name: str | None = None,
    client: MlflowClient | None = None,
) -> ModelStore:
    """The store over the configured tracking store: gate minimum from ``ML_MIN_ACCURACY_FOR_PROMOTION``,
    locks from :meth:`Locks.from_settings` (the coordination database ``ML_JOBS_DATABASE_URL`` or a
    PostgreSQL tracking store; else files beside a SQLite store or under ``ML_OUTPUT_DIR``)."""
    from ..config import Settings

    settings = settings or Settings()
    return ModelStore(
        settings.mlflow_tracking_uri,
        gate=gate or PromotionGate.from_settings(settings),
        evaluator=evaluator,
        experiment_name=experiment_name or settings.mlflow_experiment_name,
        artifact_location=settings.mlflow_artifact_location,
        locks=Locks.from_settings(settings),
        client=client,
    )
