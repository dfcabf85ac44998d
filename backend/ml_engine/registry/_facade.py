"""The guide's async ``ModelRegistry``: a thin face over :class:`ModelStore` for asyncio callers.

    model_registry = get_model_registry(Settings())
    await model_registry.register_model(name="hybrid_cnn_lstm", version=timestamp,
                                        model_path=model_path, metrics=test_metrics)
    decision = await model_registry.promote("hybrid_cnn_lstm", 7, reason="weekly retrain")

Every method runs the store's synchronous method in a worker thread. Tasks of one event loop
queue on an ``asyncio.Lock`` per model first, so waiters do not each park a thread of the default
executor. An ``evaluator`` may be a coroutine function: it is run on the caller's loop.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ._entities import ALIAS_PRODUCTION, ModelVersionInfo, PromotionDecision, PromotionEvent, RegisteredModelInfo
from ._gate import PromotionGate
from ._store import ModelStore, RegistryLock

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient

    from ..config import Settings

__all__ = ["AsyncEvaluator", "ModelRegistry", "get_model_registry"]

T = TypeVar("T")

#: ``evaluate(name, version) -> {"test_accuracy": ...}``, sync or async.
AsyncEvaluator = Callable[[str, int], "Mapping[str, float] | Awaitable[Mapping[str, float]]"]


class ModelRegistry:
    """Production status, promotion gate, rollback, archive and history, as coroutines.

    Arguments as :class:`ModelStore`; ``store`` wraps an existing store instead.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        gate: PromotionGate | None = None,
        evaluator: AsyncEvaluator | None = None,
        *,
        store: ModelStore | None = None,
        **store_kwargs: Any,
    ) -> None:
        if store is None:
            if tracking_uri is None:
                raise TypeError("ModelRegistry needs a tracking_uri or a store")
            store = ModelStore(tracking_uri, gate=gate, **store_kwargs)
        elif gate is not None:
            store.gate = gate
        self.store = store
        self.evaluator = evaluator
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return repr(self.store).replace("ModelStore", "ModelRegistry", 1)

    # -- the store's parts, for callers that used them -------------------------------------------

    @property
    def tracking_uri(self) -> str:
        return self.store.tracking_uri

    @property
    def registry_uri(self) -> str:
        return self.store.registry_uri

    @property
    def gate(self) -> PromotionGate:
        return self.store.gate

    @property
    def lock(self) -> RegistryLock:
        return self.store.lock

    @property
    def client(self) -> MlflowClient:
        return self.store.client

    production_lineage = staticmethod(ModelStore.production_lineage)

    def close(self) -> None:
        self.store.close()

    # -- plumbing ---------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _run_locked(self, name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        lock = self._async_locks.setdefault(loop, {}).setdefault(name, asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(fn, *args, **kwargs)

    def _sync_evaluator(self, loop: asyncio.AbstractEventLoop) -> Callable[[str, int], Mapping[str, float]] | None:
        evaluator = self.evaluator
        if evaluator is None:
            return None

        def evaluate(name: str, version: int) -> Mapping[str, float]:
            result = evaluator(name, version)
            if inspect.isawaitable(result):
                return asyncio.run_coroutine_threadsafe(_awaited(result), loop).result()
            return result

        return evaluate

    # -- reads ------------------------------------------------------------------------------

    async def list_models(self, include_versions: bool = True) -> list[RegisteredModelInfo]:
        return await self._run(self.store.list_models, include_versions)

    async def get_model(self, name: str, include_versions: bool = True) -> RegisteredModelInfo:
        return await self._run(self.store.get_model, name, include_versions)

    async def list_versions(self, name: str) -> list[ModelVersionInfo]:
        return await self._run(self.store.list_versions, name)

    async def get_version(self, name: str, version: int | str) -> ModelVersionInfo:
        return await self._run(self.store.get_version, name, version)

    async def get_production_version(self, name: str) -> ModelVersionInfo | None:
        return await self.get_alias_version(name, ALIAS_PRODUCTION)

    async def get_alias_version(self, name: str, alias: str) -> ModelVersionInfo | None:
        return await self._run(self.store.get_alias_version, name, alias)

    async def history(
        self, name: str | None = None, limit: int = 100, decision: str | None = None
    ) -> list[PromotionEvent]:
        return await self._run(self.store.history, name, limit, decision)

    # -- writes -----------------------------------------------------------------------------

    async def register_model(
        self,
        name: str,
        version: int | str | None = None,
        model_path: str | os.PathLike[str] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> ModelVersionInfo:
        """The guide's call; see :meth:`ModelStore.register_model`."""
        return await self._run_locked(
            name, self.store.register_model, name, version, model_path, metrics, tags, description
        )

    async def promote(
        self,
        name: str,
        version: int | str,
        reason: str = "",
        actor: str = "manual",
        force: bool = False,
        candidate_metrics: Mapping[str, float] | None = None,
    ) -> PromotionDecision:
        """See :meth:`ModelStore.promote`."""
        evaluator = self._sync_evaluator(asyncio.get_running_loop())
        return await self._run_locked(
            name, self.store.promote, name, version, reason, actor, force, candidate_metrics, evaluator=evaluator
        )

    async def auto_promote(
        self,
        name: str,
        version: int | str,
        candidate_metrics: Mapping[str, float] | None = None,
        reason: str | None = None,
        actor: str = "auto",
    ) -> PromotionDecision:
        """See :meth:`ModelStore.auto_promote`."""
        evaluator = self._sync_evaluator(asyncio.get_running_loop())
        return await self._run_locked(
            name, self.store.auto_promote, name, version, candidate_metrics, reason, actor, evaluator=evaluator
        )

    async def rollback(self, name: str, reason: str = "", actor: str = "manual") -> PromotionDecision:
        return await self._run_locked(name, self.store.rollback, name, reason, actor)

    async def archive(
        self, name: str, version: int | str, reason: str = "", actor: str = "manual", force: bool = False
    ) -> PromotionEvent:
        return await self._run_locked(name, self.store.archive, name, version, reason, actor, force)

    async def set_alias(self, name: str, alias: str, version: int | str) -> ModelVersionInfo:
        return await self._run_locked(name, self.store.set_alias, name, alias, version)

    async def delete_alias(self, name: str, alias: str) -> None:
        await self._run_locked(name, self.store.delete_alias, name, alias)


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


def get_model_registry(
    settings: Settings | None = None, gate: PromotionGate | None = None, evaluator: AsyncEvaluator | None = None
) -> ModelRegistry:
    """The guide's registry over the configured store (see :func:`get_model_store`)."""
    from ._store import get_model_store

    return ModelRegistry(store=get_model_store(settings, gate), evaluator=evaluator)
