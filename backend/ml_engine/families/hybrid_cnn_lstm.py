"""``hybrid_cnn_lstm``: the project's HybridCNN-LSTM (:mod:`backend.ml_engine.model`), the default family."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..model import HybridCNNLSTM, ModelConfig
from ._base import InputKind, ModelFamily, OptionSpec
from ._torch import TorchFitted, fit_torch

if TYPE_CHECKING:  # pragma: no cover
    from ..dataset import WindowDataset
    from ..trainer import TrainerConfig

__all__ = ["HybridCNNLSTMFamily"]


class HybridCNNLSTMFamily(ModelFamily):
    name: ClassVar[str] = "hybrid_cnn_lstm"
    title: ClassVar[str] = "Conv1d blocks -> LSTM -> attention pooling -> MLP head (PyTorch)"
    input_kind: ClassVar[InputKind] = "window"
    config_type: ClassVar[type] = ModelConfig

    def options(self) -> list[OptionSpec]:
        return [
            OptionSpec(
                "conv_channels", "ints", (64, 64), "output channels of each Conv1d block", minimum=1, maximum=512
            ),
            OptionSpec("kernel_size", "int", 5, "Conv1d kernel size (odd)", minimum=1, maximum=15),
            OptionSpec(
                "conv_norm", "str", "batch", "normalisation in the conv blocks", choices=("batch", "layer", "none")
            ),
            OptionSpec("activation", "str", "gelu", "activation", choices=("relu", "gelu")),
            OptionSpec("lstm_hidden", "int", 64, "LSTM hidden size", minimum=1, maximum=1024),
            OptionSpec("lstm_layers", "int", 2, "stacked LSTM layers", minimum=1, maximum=4),
            OptionSpec("dropout", "float", 0.2, "dropout probability", minimum=0.0, maximum=0.95),
            OptionSpec("bidirectional", "bool", False, "bidirectional LSTM"),
            OptionSpec("attention_dim", "int", 64, "width of the attention scorer", minimum=1, maximum=1024),
            OptionSpec("head_hidden", "int", 64, "width of the MLP head", minimum=1, maximum=1024),
        ]

    def _build(self, values: dict[str, Any], *, n_features: int, window: int) -> ModelConfig:
        return ModelConfig(n_features=n_features, window=window, **values)

    def config_from_dict(self, data: Mapping[str, Any]) -> ModelConfig:
        return ModelConfig.from_dict(dict(data))

    def fit(
        self,
        config: Any,
        train: WindowDataset,
        val: WindowDataset,
        trainer: TrainerConfig,
        *,
        callbacks: Sequence[Any] = (),
        resume: bool = False,
    ) -> TorchFitted:
        return fit_torch(self.name, HybridCNNLSTM, config, train, val, trainer, callbacks, resume)
