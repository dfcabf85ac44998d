"""Errors of the model store."""

from __future__ import annotations

__all__ = [
    "ModelNotFoundError",
    "ModelRegistryError",
    "ModelVersionNotFoundError",
    "NoPreviousVersionError",
    "ProductionVersionError",
    "RegistryLockTimeout",
]


class ModelRegistryError(RuntimeError):
    """Base class of the model store's errors."""


class ModelNotFoundError(ModelRegistryError, KeyError):
    """No registered model of that name (or no model behind a URI)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelVersionNotFoundError(ModelNotFoundError):
    """The registered model exists but has no such version (or alias)."""


class NoPreviousVersionError(ModelRegistryError):
    """A rollback found no earlier production version to go back to."""


class ProductionVersionError(ModelRegistryError):
    """The operation would remove the production version (archive without ``force=True``)."""


class RegistryLockTimeout(ModelRegistryError, TimeoutError):
    """The per-model registry lock was not obtained within ``lock_timeout_s``."""
