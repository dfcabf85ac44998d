"""What the tabular families share: the window's columns (:mod:`backend.ml_engine.tabular`), the
trainer's callbacks for a fit that has no epochs of its own, and an ONNX graph that ends in
``logits`` = log of the class probabilities (so softmax, and temperature scaling, work as for a
network)."""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from ..tabular import TabularConfig, window_features
from ._base import PARITY_TOLERANCE, FitSummary, FittedModel, InputKind

if TYPE_CHECKING:  # pragma: no cover
    import onnx

    from ..dataset import WindowDataset
    from ..onnx_export import OnnxExportResult

__all__ = ["TABULAR_INPUT", "FitProgress", "TabularConfigMixin", "TabularFitted", "dataset_features"]

#: Name of the ONNX input of a tabular graph ((B, D) float32).
TABULAR_INPUT = "features"


class TabularConfigMixin:
    """What the tabular families' config dataclasses share: ``lags`` and ``class_weight`` checks, and
    a JSON round trip that refuses unknown keys."""

    lags: tuple[int, ...]
    class_weight: str

    def _check_tabular(self) -> None:
        self.lags = tuple(int(k) for k in self.lags)
        TabularConfig(lags=self.lags)
        if self.class_weight not in ("balanced", "none"):
            raise ValueError(f"class_weight must be 'balanced' or 'none', got {self.class_weight!r}")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dataclasses.asdict(self)  # type: ignore[call-overload]
        d["lags"] = list(self.lags)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        if unknown:
            raise ValueError(f"{cls.__name__}.from_dict: unknown keys {sorted(unknown)}")
        return cls(**dict(data))  # the dataclass's own fields


def dataset_features(ds: WindowDataset, cfg: TabularConfig, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(tabular rows (N, D) float32, labels (N,)) of every window of ``ds``."""
    idx = np.arange(len(ds))
    parts = [
        window_features(ds.get_batch(idx[s : s + batch_size])[0].numpy(), cfg) for s in range(0, len(ds), batch_size)
    ]
    x = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
    return x, np.asarray(ds.labels, dtype=np.int64)


class FitProgress:
    """Stands for the Trainer in the callbacks' ``on_train_start``: a callback may set ``stop_training``."""

    def __init__(self, callbacks: Sequence[Any], epochs: int) -> None:
        from types import SimpleNamespace

        self.callbacks = list(callbacks)
        self.stop_training = False
        self.cfg = SimpleNamespace(epochs=epochs)  # what a progress bar reads
        self.start_epoch = 0

    def call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(*args)


class TabularFitted(FittedModel):
    """A fitted model on the window's tabular columns; ``logits`` = log of its probabilities."""

    input_kind: ClassVar[InputKind] = "tabular"
    exporter: ClassVar[str]

    def __init__(self, family: str, config: Any, tabular: TabularConfig, window: int, fit: FitSummary) -> None:
        self.family = family
        self.config = config
        self.tabular = tabular
        self.window = window
        self.fit = fit

    @abstractmethod
    def proba_of_features(self, x: np.ndarray) -> np.ndarray:
        """(N, D) tabular rows -> (N, C) probabilities from the native model."""

    @abstractmethod
    def _onnx_model(self, n_columns: int) -> onnx.ModelProto:
        """The converter's graph: input :data:`TABULAR_INPUT` (B, D), an output named ``probabilities``."""

    def logits(self, windows: np.ndarray) -> np.ndarray:
        p = self.proba_of_features(window_features(windows, self.tabular))
        with np.errstate(divide="ignore"):
            out: np.ndarray = np.log(p).astype(np.float32)
        return out

    def predict_proba(self, ds: WindowDataset, batch_size: int = 4096) -> np.ndarray:
        x, _ = dataset_features(ds, self.tabular, batch_size)
        return self.proba_of_features(x).astype(np.float32)

    def native_input(self, windows: np.ndarray) -> np.ndarray:
        return window_features(windows, self.tabular)

    def serving_metadata(self) -> dict[str, Any]:
        return {**super().serving_metadata(), "tabular": self.tabular.to_dict()}

    def export_onnx(self, example: np.ndarray, path: Path) -> OnnxExportResult:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper

        from ..onnx_export import OnnxExportResult, OnnxParityError
        from ._base import timed

        t0 = timed()
        x = window_features(example, self.tabular)
        model = self._onnx_model(x.shape[1])
        graph = model.graph
        probabilities = next((o.name for o in graph.output if "prob" in o.name), None)
        if probabilities is None:  # pragma: no cover - the converters name it so
            raise OnnxParityError(f"{self.family}: the converted graph has no probabilities output")
        graph.node.append(helper.make_node("Log", [probabilities], ["logits"], name="log_probabilities"))
        del graph.output[:]
        graph.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 3]))
        onnx.checker.check_model(model)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(model.SerializeToString())
        try:
            options = ort.SessionOptions()
            options.log_severity_level = 3
            session = ort.InferenceSession(str(tmp), options, providers=["CPUExecutionProvider"])
            got = session.run(["logits"], {TABULAR_INPUT: x})[0]
            from ._base import softmax

            diff = float(np.max(np.abs(softmax(got) - self.proba_of_features(x))))
            if not diff <= PARITY_TOLERANCE:
                raise OnnxParityError(
                    f"{self.family}: ONNX parity check failed: max abs probability diff {diff:.3g} > {PARITY_TOLERANCE:g}"
                )
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        return OnnxExportResult(
            path=path,
            max_abs_diff=diff,
            opset=int(opset),
            exporter=self.exporter,
            export_seconds=timed() - t0,
            max_abs_proba_diff=diff,
        )

    def save(self, out_dir: Path) -> Path:
        import joblib

        path = Path(out_dir) / "model.joblib"
        joblib.dump(
            {"family": self.family, "native": self.native, "tabular": self.tabular.to_dict(), "window": self.window},
            path,
        )
        return path
