"""Errors of the predictor (the services map them: `ModelNotAvailableError` -> 404, `PredictorError` -> 503)."""

from __future__ import annotations

__all__ = ["ModelNotAvailableError", "PredictorError"]


class PredictorError(RuntimeError):
    """The predictor cannot load or run a model; the message says why."""


class ModelNotAvailableError(PredictorError, LookupError):
    """The registered model, alias, version or model file does not exist."""
