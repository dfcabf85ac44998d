"""The model store: the only code that touches the MLflow model registry.

Which version of a model is in production is the MLflow alias ``production`` and nothing else
(stages are deprecated since MLflow 2.9 and are read only as aliases). The store adds what MLflow
lacks over that alias: a promotion gate, rollback, archive and a durable history, under a
per-model lock.

    from backend.ml_engine.registry import get_model_store

    store = get_model_store(settings)                       # synchronous: services, workers, CLIs
    decision = store.promote("hybrid_cnn_lstm", 7, reason="weekly retrain")
    decision.promoted, decision.reason, decision.verdict.render("ru")
    store.resolve("models:/hybrid_cnn_lstm@production")     # the one reading of a model URI

    from backend.ml_engine.model_registry import get_model_registry   # the guide's async face
    await get_model_registry(settings).promote("hybrid_cnn_lstm", 7)

Modules: ``_store`` (the synchronous core), ``_facade`` (the async ``ModelRegistry``), ``_gate``
(pure promotion gate), ``_resolver`` (model URIs), ``_entities`` (answers and the tag schema),
``_errors``.
"""

from ._entities import (
    ALIAS_CHALLENGER,
    ALIAS_PRODUCTION,
    ALIAS_STAGING,
    DECISIONS,
    MANAGED_ALIASES,
    METRIC_PREFIXES,
    MODEL_ID_TAG,
    ModelVersionInfo,
    PromotionDecision,
    PromotionEvent,
    RegisteredModelInfo,
    metrics_from_tags,
    model_id_of_version,
)
from ._errors import (
    ModelNotFoundError,
    ModelRegistryError,
    ModelVersionNotFoundError,
    NoPreviousVersionError,
    ProductionVersionError,
    RegistryLockTimeout,
)
from ._facade import AsyncEvaluator, ModelRegistry, get_model_registry
from ._gate import GateResult, PromotionGate, lookup_metric
from ._resolver import ModelUri, ResolvedModel, parse_model_uri
from ._store import Evaluator, ModelStore, RegistryLock, get_model_store

__all__ = [
    "ALIAS_CHALLENGER",
    "ALIAS_PRODUCTION",
    "ALIAS_STAGING",
    "DECISIONS",
    "MANAGED_ALIASES",
    "METRIC_PREFIXES",
    "MODEL_ID_TAG",
    "AsyncEvaluator",
    "Evaluator",
    "GateResult",
    "ModelNotFoundError",
    "ModelRegistry",
    "ModelRegistryError",
    "ModelStore",
    "ModelUri",
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
    "ResolvedModel",
    "get_model_registry",
    "get_model_store",
    "lookup_metric",
    "metrics_from_tags",
    "model_id_of_version",
    "parse_model_uri",
]
