"""What the PyTorch families share: the project's Trainer (early stopping, callbacks, checkpoints,
exact resume) and the TorchScript ONNX export with probability parity."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ._base import PARITY_TOLERANCE, FitSummary, FittedModel, InputKind

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ..dataset import WindowDataset
    from ..onnx_export import OnnxExportResult
    from ..trainer import Trainer, TrainerConfig

__all__ = ["TorchFitted", "fit_torch"]


class TorchFitted(FittedModel):
    """A fitted PyTorch module (``(B, T, F)`` -> logits) and the Trainer that fitted it."""

    mlflow_flavor: ClassVar[str] = "pytorch"
    input_kind: ClassVar[InputKind] = "window"

    def __init__(self, family: str, config: Any, trainer: Trainer, fit: FitSummary) -> None:
        self.family = family
        self.config = config
        self.trainer = trainer
        self.fit = fit

    @property
    def native(self) -> nn.Module:
        return self.trainer.model

    @property
    def module(self) -> nn.Module:
        return self.trainer.model

    def logits(self, windows: np.ndarray) -> np.ndarray:
        import torch

        model = self.trainer.model.to("cpu")
        was = model.training
        model.eval()
        try:
            with torch.inference_mode():
                out: np.ndarray = (
                    model(torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))).float().numpy()
                )
        finally:
            model.train(was)
        return out

    def predict_proba(self, ds: WindowDataset, batch_size: int = 4096) -> np.ndarray:
        return self.trainer.predict_proba(ds)

    def export_onnx(self, example: np.ndarray, path: Path) -> OnnxExportResult:
        from ..onnx_export import export_onnx

        return export_onnx(self.trainer.model, example, path, probability_tolerance=PARITY_TOLERANCE)

    def n_parameters(self) -> int:
        from ..model import count_parameters

        return count_parameters(self.trainer.model)

    def save(self, out_dir: Path) -> Path:
        import torch

        path = Path(out_dir) / "model.pt"
        self.trainer.model.eval()
        torch.save(
            {
                "family": self.family,
                "state_dict": self.trainer.model.state_dict(),
                "model_config": _as_dict(self.config),
            },
            path,
        )
        return path


def fit_torch(
    family: str,
    module_factory: Any,
    config: Any,
    train: WindowDataset,
    val: WindowDataset,
    trainer_cfg: TrainerConfig,
    callbacks: Sequence[Any],
    resume: bool,
) -> TorchFitted:
    """Seed, build the module, fit it with the project's Trainer."""
    from ..trainer import Trainer, seed_everything

    seed_everything(trainer_cfg.seed)  # the initial weights repeat with the seed
    trainer = Trainer(module_factory(config), trainer_cfg, callbacks=list(callbacks))
    result = trainer.fit(train, val, resume=resume)
    summary = FitSummary(
        history=list(result.history),
        best_epoch=result.best_epoch,
        best_metric=result.best_metric,
        monitor=result.monitor,
        stopped_early=result.stopped_early,
        fit_seconds=result.train_seconds,
        resumed_from_epoch=result.resumed_from_epoch,
    )
    return TorchFitted(family, config, trainer, summary)


def _as_dict(config: Any) -> dict[str, Any]:
    out: dict[str, Any] = config.to_dict()
    return out
