"""Registered models: list, versions with their input/output schema, history, promote, rollback.

A thin, synchronous face of the model store (:class:`~backend.ml_engine.registry.ModelStore`, the
only code that reads or writes the MLflow model registry; production is the MLflow alias) for the
REST API and the dashboard::

    service = ModelService(ServiceSettings())
    for model in service.list_models().data:
        print(model.name, model.production_version)
    decision = service.promote("hybrid_cnn_lstm", 7, reason="weekly retrain", lang="ru")
    decision.message, [c.text for c in decision.checks]     # the verdict in Russian, from its codes

Verdicts come as codes with parameters (``checks``, ``notes``) and are rendered in ``lang`` (``en``
or ``ru``); ``reason`` and ``detail`` keep the English words MLflow stores.

Methods block (they call MLflow); call them from a thread, not from inside a running event loop.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from backend.ml_engine.errors import one_line
from backend.ml_engine.registry import (
    ModelNotFoundError,
    ModelRegistryError,
    ModelStore,
    ModelVersionInfo,
    NoPreviousVersionError,
    PromotionDecision,
    PromotionEvent,
    RegisteredModelInfo,
    RegistryLockTimeout,
    get_model_store,
)

from ._mlflow import ensure_store_reachable, translate_errors
from .errors import ConflictError, NotFoundError, UnavailableError
from .redaction import mask_uri, redact, redact_mapping, redact_tree
from .schemas import (
    CheckPublic,
    Lang,
    ModelPublic,
    ModelsPublic,
    ModelVersionDetail,
    ProductionModel,
    PromotionDecisionPublic,
    PromotionEventPublic,
    PromotionHistoryPublic,
    SignaturePublic,
    VerdictFields,
    json_safe,
)
from .settings import ServiceSettings

__all__ = ["ModelService", "decision_public", "event_public"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _version_public(info: ModelVersionInfo, secrets: list[str]) -> dict[str, Any]:
    d = info.to_dict()
    d["metrics"] = json_safe(d["metrics"])
    d["tags"] = redact_mapping(d["tags"], secrets)
    d["source"] = redact(mask_uri(d["source"]), secrets) if d.get("source") else None
    d["description"] = redact(d["description"], secrets) if d.get("description") else None
    return d


def _parse_schema(text: Any) -> list[dict[str, Any]] | None:
    if text is None:
        return None
    value = json.loads(text) if isinstance(text, str) else text
    return list(value) if isinstance(value, list) else None


def event_public(event: PromotionEvent, lang: Lang = "en", secrets: list[str] | None = None) -> PromotionEventPublic:
    """A history entry for front ends: its verdict as codes and as words in ``lang``; secrets masked."""
    d = json_safe(event.to_dict())
    d.pop("verdict", None)
    d.pop("reason_check", None)
    d.update(VerdictFields.fields_of(event.verdict, event.detail, lang))
    if event.reason_check is not None:
        d["reason_check"] = CheckPublic.of(event.reason_check, lang)
    public = PromotionEventPublic.model_validate(d)
    return PromotionEventPublic.model_validate(redact_tree(public.model_dump(), secrets)) if secrets else public


def decision_public(
    decision: PromotionDecision, lang: Lang = "en", secrets: list[str] | None = None
) -> PromotionDecisionPublic:
    """A promotion or rollback for front ends: its verdict as codes and as words in ``lang``."""
    d = json_safe(decision.to_dict())
    d.pop("verdict", None)
    d.update(VerdictFields.fields_of(decision.verdict, decision.reason, lang))
    d["event"] = event_public(decision.event, lang) if decision.event is not None else None
    public = PromotionDecisionPublic.model_validate(d)
    return PromotionDecisionPublic.model_validate(redact_tree(public.model_dump(), secrets)) if secrets else public


class ModelService:
    """Registry reads and decisions for front ends; errors are :mod:`backend.services.errors`."""

    def __init__(self, settings: ServiceSettings, store: ModelStore | None = None) -> None:
        self.settings = settings
        self._store = store
        self._guard = threading.Lock()
        self._secrets = settings.secrets()

    @property
    def store(self) -> ModelStore:
        """The model store over the configured tracking store (built on first use)."""
        if self._store is None:
            with self._guard:
                if self._store is None:
                    self._store = get_model_store(self.settings)
        return self._store

    @property
    def registry(self) -> ModelStore:
        """The same store (the name the API's startup log line uses)."""
        return self.store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def _call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``method(*args, **kwargs)`` of the store, its errors as service errors (messages redacted)."""
        ensure_store_reachable(self.settings.mlflow_tracking_uri)
        with translate_errors(self._secrets, "MLflow tracking"):
            try:
                return method(*args, **kwargs)
            except ModelNotFoundError as exc:
                raise NotFoundError(redact(str(exc), self._secrets)) from None
            except NoPreviousVersionError as exc:
                raise ConflictError(redact(str(exc), self._secrets)) from None
            except RegistryLockTimeout as exc:
                raise UnavailableError(redact(str(exc), self._secrets)) from None
            except ModelRegistryError as exc:
                raise ConflictError(redact(str(exc), self._secrets)) from None

    # -- reads -----------------------------------------------------------------------------

    def list_models(self) -> ModelsPublic:
        """Every registered model with aliases, tags and versions (newest first) and their key metrics."""
        models = self._call(self.store.list_models, include_versions=True)
        data = [self._model_public(m) for m in models]
        return ModelsPublic(data=data, count=len(data))

    def get_model(self, name: str) -> ModelPublic:
        return self._model_public(self._call(self.store.get_model, name, include_versions=True))

    def _model_public(self, info: RegisteredModelInfo) -> ModelPublic:
        d = info.to_dict()
        d["tags"] = redact_mapping(d["tags"], self._secrets)
        d["description"] = redact(d["description"], self._secrets) if d.get("description") else None
        d["versions"] = [_version_public(v, self._secrets) for v in info.versions]
        return ModelPublic.model_validate(d)

    def get_version(self, name: str, version: int) -> ModelVersionDetail:
        """One version with the input/output schema from its MLmodel signature."""
        info = self._call(self.store.get_version, name, version)
        detail = ModelVersionDetail.model_validate(_version_public(info, self._secrets))
        return self._with_mlmodel(detail)

    def _with_mlmodel(self, detail: ModelVersionDetail) -> ModelVersionDetail:
        store = self.store
        try:
            resolved = self._call(store.resolve, f"models:/{detail.name}/{detail.version}")
            mlmodel = store.read_mlmodel(resolved)
        except (NotFoundError, UnavailableError):
            raise
        except Exception as exc:  # noqa: BLE001 - a version whose artifacts are gone or were never a model
            reason = redact(one_line(exc, typed=True), self._secrets)
            logger.info("model %s v%s: MLmodel not readable: %s", detail.name, detail.version, reason)
            return detail.model_copy(update={"mlmodel_error": reason[:500]})
        signature = None
        if mlmodel.signature is not None:
            sig = mlmodel.signature.to_dict()
            signature = SignaturePublic(
                inputs=_parse_schema(sig.get("inputs")),
                outputs=_parse_schema(sig.get("outputs")),
                params=_parse_schema(sig.get("params")),
            )
        return detail.model_copy(
            update={
                "signature": signature,
                "flavors": sorted(mlmodel.flavors or {}),
                "has_input_example": bool(getattr(mlmodel, "saved_input_example_info", None)),
                "model_id": getattr(mlmodel, "model_id", None) or detail.tags.get("model_id"),
            }
        )

    def history(
        self, name: str, limit: int = 100, decision: str | None = None, lang: Lang = "en"
    ) -> PromotionHistoryPublic:
        """The model's promotion history, newest first; verdicts rendered in ``lang``."""
        events = self._call(self.store.history, name, limit=limit, decision=decision)
        data = [event_public(e, lang, self._secrets) for e in events]
        return PromotionHistoryPublic(data=data, count=len(data))

    def production_models(self) -> list[ProductionModel]:
        """For each registered model: the version behind ``production`` and the latest version."""
        models = self._call(self.store.list_models, include_versions=False)
        out = []
        for m in models:
            try:
                newest = self.store.get_latest_version(m.name)
                latest = newest.version if newest is not None else None
            except Exception:  # noqa: BLE001 - the latest version is a nicety in a health answer
                latest = None
            out.append(ProductionModel(name=m.name, production_version=m.production_version, latest_version=latest))
        return out

    # -- decisions -------------------------------------------------------------------------

    def promote(
        self, name: str, version: int, reason: str = "", force: bool = False, actor: str = "api", lang: Lang = "en"
    ) -> PromotionDecisionPublic:
        """Move ``production`` to ``version`` through the promotion gate (or past it with ``force``).

        A refusal is an answer (``promoted`` false, ``reason`` why in English, ``checks`` and
        ``message`` in ``lang``), recorded in the history.
        """
        decision = self._call(self.store.promote, name, version, reason=reason, actor=actor, force=force)
        return decision_public(decision, lang, self._secrets)

    def rollback(self, name: str, reason: str = "", actor: str = "api", lang: Lang = "en") -> PromotionDecisionPublic:
        """Move ``production`` back to the previous production version (:class:`ConflictError` if none)."""
        decision = self._call(self.store.rollback, name, reason=reason, actor=actor)
        return decision_public(decision, lang, self._secrets)
