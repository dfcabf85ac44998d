"""Model families: one module per family, one interface (:class:`ModelFamily` / :class:`FittedModel`).

=================== ========= ===================================================================
family              input     model
=================== ========= ===================================================================
``hybrid_cnn_lstm`` window    Conv1d -> LSTM -> attention -> MLP (PyTorch), the default
``tcn``             window    temporal convolutional network, causal dilated convolutions (PyTorch)
``lightgbm``        tabular   gradient-boosted trees on the window's last row, lags and statistics
``logreg``          tabular   multinomial logistic regression on the same columns
=================== ========= ===================================================================

Every family is trained by the same orchestrator (``--model``), tracked, registered, gated and served
the same way: the version's ``model.onnx`` through ONNX Runtime, whose probabilities match the native
model's to :data:`PARITY_TOLERANCE` at export time.
"""

from __future__ import annotations

from typing import Any

from ._base import (
    PARITY_TOLERANCE,
    FamilyError,
    FamilyOptionsError,
    FitSummary,
    FittedModel,
    ModelFamily,
    NotExportableError,
    OptionSpec,
    UnknownFamilyError,
    softmax,
)

__all__ = [
    "DEFAULT_FAMILY",
    "PARITY_TOLERANCE",
    "FamilyError",
    "FamilyOptionsError",
    "FitSummary",
    "FittedModel",
    "ModelFamily",
    "NotExportableError",
    "OptionSpec",
    "UnknownFamilyError",
    "family_names",
    "get_family",
    "make_config",
    "register_family",
    "softmax",
]

DEFAULT_FAMILY = "hybrid_cnn_lstm"

_FAMILIES: dict[str, ModelFamily] = {}


def _builtin() -> dict[str, ModelFamily]:
    if not _FAMILIES:
        from .hybrid_cnn_lstm import HybridCNNLSTMFamily
        from .lightgbm import LightGBMFamily
        from .logreg import LogRegFamily
        from .tcn import TCNFamily

        for fam in (HybridCNNLSTMFamily(), TCNFamily(), LightGBMFamily(), LogRegFamily()):
            _FAMILIES.setdefault(fam.name, fam)
    return _FAMILIES


def family_names() -> list[str]:
    """The families in their documented order (the default first)."""
    return list(_builtin())


def get_family(name: str | None) -> ModelFamily:
    """The family called ``name`` (None: the default); `UnknownFamilyError` names the known ones."""
    families = _builtin()
    key = DEFAULT_FAMILY if name is None else str(name).strip().lower()
    if key not in families:
        raise UnknownFamilyError(f"unknown model family {name!r}; choose one of: {', '.join(families)}")
    return families[key]


def register_family(family: ModelFamily) -> None:
    """Add a family (plugins, tests); a name already taken is refused."""
    families = _builtin()
    if family.name in families:
        raise FamilyError(f"model family {family.name!r} exists already")
    families[family.name] = family


def make_config(name: str | None, options: dict[str, Any] | None, *, n_features: int = 1, window: int = 60) -> Any:
    """Validated config of family ``name`` with ``options`` (`FamilyError` subclasses, one line each)."""
    return get_family(name).make_config(options or {}, n_features=n_features, window=window)
