"""Registered models: list, versions with their input/output schema, history, promote, rollback.

A thin, synchronous face of :class:`~backend.ml_engine.model_registry.ModelRegistry` (the one
truth about production: the MLflow alias) for the REST API and the dashboard::

    service = ModelService(ServiceSettings())
    for model in service.list_models().data:
        print(model.name, model.production_version)
    decision = service.promote("hybrid_cnn_lstm", 7, reason="weekly retrain")

Methods block (they call MLflow); call them from a thread, not from inside a running event loop.
"""
from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from backend.ml_engine.model_registry import (
    ModelNotFoundError,
    ModelRegistry,
    ModelRegistryError,
    ModelVersionInfo,
    NoPreviousVersionError,
    RegistryLockTimeout,
    get_model_registry,
)

from ._mlflow import ensure_store_reachable, translate_errors
from .errors import ConflictError, NotFoundError, UnavailableError
from .redaction import mask_uri, redact, redact_mapping
from .schemas import (
    ModelPublic,
    ModelsPublic,
    ModelVersionDetail,
    ProductionModel,
    PromotionDecisionPublic,
    PromotionEventPublic,
    PromotionHistoryPublic,
    SignaturePublic,
    json_safe,
)
from .settings import ServiceSettings

__all__ = ["ModelService"]

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


class ModelService:
    """Registry reads and decisions for front ends; errors are :mod:`backend.services.errors`."""

    def __init__(self, settings: ServiceSettings, registry: ModelRegistry | None = None) -> None:
        self.settings = settings
        self._registry = registry
        self._guard = threading.Lock()
        self._secrets = settings.secrets()

    @property
    def registry(self) -> ModelRegistry:
        if self._registry is None:
            with self._guard:
                if self._registry is None:
                    self._registry = get_model_registry(self.settings)
        return self._registry

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            ensure_store_reachable(self.settings.mlflow_tracking_uri)
        except UnavailableError:
            coro.close()
            raise
        with translate_errors(self._secrets, "MLflow tracking"):
            try:
                return asyncio.run(coro)
            except ModelNotFoundError as exc:
                raise NotFoundError(str(exc)) from None
            except NoPreviousVersionError as exc:
                raise ConflictError(str(exc)) from None
            except RegistryLockTimeout as exc:
                raise UnavailableError(str(exc)) from None
            except ModelRegistryError as exc:
                raise ConflictError(redact(str(exc), self._secrets)) from None

    # -- reads -----------------------------------------------------------------------------

    def list_models(self) -> ModelsPublic:
        """Every registered model with aliases, tags and versions (newest first) and their key metrics."""
        models = self._run(self.registry.list_models(include_versions=True))
        data = [self._model_public(m) for m in models]
        return ModelsPublic(data=data, count=len(data))

    def get_model(self, name: str) -> ModelPublic:
        return self._model_public(self._run(self.registry.get_model(name, include_versions=True)))

    def _model_public(self, info: Any) -> ModelPublic:
        d = info.to_dict()
        d["tags"] = redact_mapping(d["tags"], self._secrets)
        d["description"] = redact(d["description"], self._secrets) if d.get("description") else None
        d["versions"] = [_version_public(v, self._secrets) for v in info.versions]
        return ModelPublic.model_validate(d)

    def get_version(self, name: str, version: int) -> ModelVersionDetail:
        """One version with the input/output schema from its MLmodel signature."""
        info = self._run(self.registry.get_version(name, version))
        detail = ModelVersionDetail.model_validate(_version_public(info, self._secrets))
        return self._with_mlmodel(detail)

    def _with_mlmodel(self, detail: ModelVersionDetail) -> ModelVersionDetail:
        import mlflow.artifacts
        from mlflow.models import Model

        registry = self.registry
        try:
            with translate_errors(self._secrets, "MLflow tracking"):
                uri = registry.client.get_model_version_download_uri(detail.name, str(detail.version))
            with tempfile.TemporaryDirectory(prefix="mlmodel-") as tmp:
                path = mlflow.artifacts.download_artifacts(
                    artifact_uri=uri.rstrip("/") + "/MLmodel", dst_path=tmp,
                    tracking_uri=registry.tracking_uri, registry_uri=registry.registry_uri,
                )
                mlmodel = Model.load(path)
        except (NotFoundError, UnavailableError):
            raise
        except Exception as exc:  # a version whose artifacts are gone or were never a model
            reason = redact(f"{type(exc).__name__}: {' '.join(str(exc).split())}", self._secrets)
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
        return detail.model_copy(update={
            "signature": signature,
            "flavors": sorted(mlmodel.flavors or {}),
            "has_input_example": bool(getattr(mlmodel, "saved_input_example_info", None)),
            "model_id": getattr(mlmodel, "model_id", None) or detail.tags.get("model_id"),
        })

    def history(self, name: str, limit: int = 100, decision: str | None = None) -> PromotionHistoryPublic:
        """The model's promotion history, newest first."""
        events = self._run(self.registry.history(name, limit=limit, decision=decision))
        data = [PromotionEventPublic.model_validate(json_safe(e.to_dict())) for e in events]
        return PromotionHistoryPublic(data=data, count=len(data))

    def production_models(self) -> list[ProductionModel]:
        """For each registered model: the version behind ``production`` and the latest version."""
        models = self._run(self.registry.list_models(include_versions=False))
        out = []
        for m in models:
            latest = None
            try:
                escaped = m.name.replace("'", "\\'")
                page = self.registry.client.search_model_versions(
                    f"name = '{escaped}'", max_results=1, order_by=["version_number DESC"])
                latest = max((int(v.version) for v in page), default=None)
            except Exception:  # noqa: BLE001 - the latest version is a nicety in a health answer
                latest = None
            out.append(ProductionModel(name=m.name, production_version=m.production_version, latest_version=latest))
        return out

    # -- decisions -------------------------------------------------------------------------

    def promote(
        self, name: str, version: int, reason: str = "", force: bool = False, actor: str = "api"
    ) -> PromotionDecisionPublic:
        """Move ``production`` to ``version`` through the promotion gate (or past it with ``force``).

        A refusal is an answer (``promoted`` false, ``reason`` why), recorded in the history.
        """
        decision = self._run(self.registry.promote(name, version, reason=reason, actor=actor, force=force))
        return PromotionDecisionPublic.model_validate(json_safe(decision.to_dict()))

    def rollback(self, name: str, reason: str = "", actor: str = "api") -> PromotionDecisionPublic:
        """Move ``production`` back to the previous production version (:class:`ConflictError` if none)."""
        decision = self._run(self.registry.rollback(name, reason=reason, actor=actor))
        return PromotionDecisionPublic.model_validate(json_safe(decision.to_dict()))
