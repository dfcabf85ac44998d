"""The model-family interface: a typed config, fit, class probabilities, ONNX export with parity, size.

A family (:class:`ModelFamily`) turns the windows of a :class:`~backend.ml_engine.dataset.WindowDataset`
into a :class:`FittedModel`. Every fitted model answers the same questions whatever it is inside:
logits of ``(B, T, F)`` windows, probabilities of a dataset, an ONNX file whose probabilities match
the native model's to :data:`PARITY_TOLERANCE`, its parameter count, and what MLflow saves.

Two kinds of input (:attr:`ModelFamily.input_kind`):

* ``window``: the ONNX graph reads the ``(B, T, F)`` window (``candles`` -> ``logits``);
* ``tabular``: the graph reads :func:`backend.ml_engine.tabular.window_features` of the window
  (``features`` (B, D) -> ``logits`` = log of the class probabilities); the Predictor and the pyfunc
  compute those columns with the same numpy function before calling ONNX Runtime.
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..dataset import WindowDataset
    from ..onnx_export import OnnxExportResult
    from ..trainer import TrainerConfig

__all__ = [
    "PARITY_TOLERANCE",
    "FamilyError",
    "FamilyOptionsError",
    "FitSummary",
    "FittedModel",
    "ModelFamily",
    "NotExportableError",
    "OptionSpec",
    "UnknownFamilyError",
    "softmax",
]

#: Largest allowed |ONNX Runtime probability - native probability| on the export example.
PARITY_TOLERANCE = 1e-5

InputKind = Literal["window", "tabular"]


class FamilyError(ValueError):
    """A family or its options cannot be used as asked; the message is one line for the user."""


class UnknownFamilyError(FamilyError):
    pass


class FamilyOptionsError(FamilyError):
    pass


class NotExportableError(FamilyError):
    """The configuration cannot be exported to ONNX, so it could never be served."""


@dataclass(frozen=True)
class OptionSpec:
    """One option of a family, for ``--help``, the API schema and the dashboard's form."""

    name: str
    kind: Literal["int", "float", "bool", "str", "ints"]
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if isinstance(self.default, tuple):
            d["default"] = list(self.default)
        return d


@dataclass(frozen=True)
class FitSummary:
    """How a fit went, whatever the family: the trainer's epochs or the booster's rounds."""

    history: list[dict[str, float]]
    """One entry per epoch (sequence models) or per logged round (boosting): epoch, train_loss, val_loss, val_accuracy..."""
    best_epoch: int
    best_metric: float
    monitor: str
    stopped_early: bool
    fit_seconds: float
    resumed_from_epoch: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


class FittedModel(ABC):
    """A trained model of one family."""

    family: str
    config: Any
    fit: FitSummary
    #: MLflow flavor that saves :attr:`native` ("pytorch", "lightgbm" or "sklearn").
    mlflow_flavor: ClassVar[str]
    input_kind: ClassVar[InputKind]

    @property
    @abstractmethod
    def native(self) -> Any:
        """The object MLflow's flavor saves (a torch module, a LightGBM booster, a scikit-learn pipeline)."""

    @abstractmethod
    def logits(self, windows: np.ndarray) -> np.ndarray:
        """``(B, T, F)`` float32 windows -> ``(B, C)`` logits from the native model (softmax gives the probabilities)."""

    @abstractmethod
    def export_onnx(self, example: np.ndarray, path: Path) -> OnnxExportResult:
        """Write ``model.onnx`` and check its probabilities against the native model's on ``example``
        (``(B, T, F)`` windows): ``OnnxParityError`` above :data:`PARITY_TOLERANCE`."""

    @abstractmethod
    def n_parameters(self) -> int:
        """Trainable parameters (weights; for trees: split thresholds and leaf values)."""

    @abstractmethod
    def save(self, out_dir: Path) -> Path:
        """Write the native model into ``out_dir``; returns the file."""

    def native_input(self, windows: np.ndarray) -> np.ndarray:
        """What :attr:`native` takes for ``(B, T, F)`` windows (the windows, or their tabular rows)."""
        return windows

    def serving_metadata(self) -> dict[str, Any]:
        """What the Predictor needs to turn a window into this model's input (``metadata.json["model"]``)."""
        return {"family": self.family, "input": self.input_kind}

    def predict_logits(self, ds: WindowDataset, batch_size: int = 4096) -> np.ndarray:
        """Logits ``(N, C)`` of every window of ``ds`` in order."""
        idx = np.arange(len(ds))
        out = [self.logits(ds.get_batch(idx[s : s + batch_size])[0].numpy()) for s in range(0, len(ds), batch_size)]
        if not out:
            return np.zeros((0, 3), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def predict_proba(self, ds: WindowDataset, batch_size: int = 4096) -> np.ndarray:
        """Probabilities ``(N, C)`` float32 of every window of ``ds`` in order."""
        return softmax(self.predict_logits(ds, batch_size)).astype(np.float32)


class ModelFamily(ABC):
    """One kind of model: its config type, its options and how to fit it."""

    name: ClassVar[str]
    title: ClassVar[str]
    """One line for ``--help`` and the dashboard."""
    input_kind: ClassVar[InputKind]
    config_type: ClassVar[type]

    # ------------------------------------------------------------------ configs
    @abstractmethod
    def options(self) -> list[OptionSpec]:
        """The options a user may set (``--model-option name=value``, the API's ``model``, the form)."""

    def make_config(self, options: Mapping[str, Any], *, n_features: int, window: int) -> Any:
        """The config with ``options`` over the defaults; unknown options or bad values: `FamilyOptionsError`."""
        specs = {o.name: o for o in self.options()}
        unknown = sorted(set(options) - set(specs))
        if unknown:
            raise FamilyOptionsError(
                f"{self.name}: unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                f"(options of {self.name}: {', '.join(sorted(specs))})"
            )
        values = {k: _coerce(self.name, specs[k], v) for k, v in options.items()}
        try:
            return self._build(values, n_features=n_features, window=window)
        except FamilyError:
            raise
        except (TypeError, ValueError) as exc:
            raise FamilyOptionsError(f"{self.name}: {exc}") from exc

    @abstractmethod
    def _build(self, values: dict[str, Any], *, n_features: int, window: int) -> Any:
        """The config of validated option values."""

    @abstractmethod
    def config_from_dict(self, data: Mapping[str, Any]) -> Any: ...

    def config_to_dict(self, config: Any) -> dict[str, Any]:
        if hasattr(config, "to_dict"):
            out: dict[str, Any] = config.to_dict()
            return out
        return dataclasses.asdict(config)

    def with_shape(self, config: Any, *, n_features: int, window: int) -> Any:
        """The config for data with ``n_features`` features and windows of ``window`` rows."""
        names = {f.name for f in dataclasses.fields(config)}
        changes = {k: v for k, v in (("n_features", n_features), ("window", window)) if k in names}
        return dataclasses.replace(config, **changes) if changes else config

    def export_problem(self, config: Any) -> str | None:
        """Why ``config`` cannot be exported to ONNX (and so never served), or None."""
        return None

    def check_exportable(self, config: Any) -> None:
        problem = self.export_problem(config)
        if problem:
            raise NotExportableError(f"{self.name}: {problem}")

    # ------------------------------------------------------------------ training
    @abstractmethod
    def fit(
        self,
        config: Any,
        train: WindowDataset,
        val: WindowDataset,
        trainer: TrainerConfig,
        *,
        callbacks: Sequence[Any] = (),
        resume: bool = False,
    ) -> FittedModel:
        """Fit on ``train`` with early stopping on ``val``; callbacks get the trainer's hooks."""


def _coerce(family: str, spec: OptionSpec, value: Any) -> Any:
    """An option value of the spec's type (strings from the CLI are parsed); one-line errors."""

    def bad(why: str) -> FamilyOptionsError:
        return FamilyOptionsError(f"{family}: option {spec.name}={value!r}: {why}")

    if spec.kind == "bool":
        if isinstance(value, bool):
            out: Any = value
        elif isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            out = value.lower() in ("true", "1", "yes")
        else:
            raise bad("expected true or false")
    elif spec.kind == "int":
        if isinstance(value, bool):
            raise bad("expected an integer")
        try:
            out = int(value) if isinstance(value, (int, str)) else None
        except ValueError:
            out = None
        if out is None or (isinstance(value, float)):
            raise bad("expected an integer")
    elif spec.kind == "float":
        if isinstance(value, bool):
            raise bad("expected a number")
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise bad("expected a number") from None
        if not np.isfinite(out):
            raise bad("expected a finite number")
    elif spec.kind == "ints":
        items = value.split(",") if isinstance(value, str) else value
        try:
            out = tuple(int(v) for v in items)
        except (TypeError, ValueError):
            raise bad("expected integers separated by commas") from None
        if any(isinstance(v, bool) or (isinstance(v, float) and not float(v).is_integer()) for v in items):
            raise bad("expected integers separated by commas")
        for v in out:
            if spec.minimum is not None and v < spec.minimum:
                raise bad(f"each value must be >= {spec.minimum:g}")
            if spec.maximum is not None and v > spec.maximum:
                raise bad(f"each value must be <= {spec.maximum:g}")
        return out
    else:
        out = str(value)
        if spec.choices and out not in spec.choices:
            raise bad(f"expected one of {', '.join(spec.choices)}")
        return out
    if spec.kind in ("int", "float"):
        if spec.minimum is not None and out < spec.minimum:
            raise bad(f"must be >= {spec.minimum:g}")
        if spec.maximum is not None and out > spec.maximum:
            raise bad(f"must be <= {spec.maximum:g}")
    return out


def timed() -> float:
    return time.perf_counter()
