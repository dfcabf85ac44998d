"""HybridCNN-LSTM classifier for candle windows.

Pure torch: no I/O, no MLflow, no printing.

Input ``(B, T, F)`` float32 (batch, window length, features), output logits ``(B, n_classes)``.

Architecture::

    (B, T, F) -> Conv1d blocks (same padding, norm, activation, dropout) -> (B, T, C)
              -> LSTM (layers, hidden, dropout)                          -> (B, T, H)
              -> additive attention pooling over time                     -> (B, H)
              -> MLP head (Linear, activation, dropout, Linear)            -> (B, n_classes)

Only ops with stable ONNX export (Conv1d, BatchNorm/LayerNorm, ReLU/GELU, LSTM, Linear,
tanh, softmax, sum) are used; the window length is not baked in, so any ``T`` works.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

__all__ = ["ModelConfig", "HybridCNNLSTM", "count_parameters"]

_NORMS = ("batch", "layer", "none")
_ACTIVATIONS = ("relu", "gelu")


@dataclass
class ModelConfig:
    """Hyper-parameters of :class:`HybridCNNLSTM`. JSON-able via :meth:`to_dict` / :meth:`from_dict`."""

    n_features: int
    """Number of input features F per time step (columns of the feature matrix)."""

    window: int
    """Window length T the model is trained on (recorded for the predictor; the network accepts any T >= 1)."""

    n_classes: int = 3
    """Number of output classes (0 = down, 1 = flat, 2 = up)."""

    conv_channels: tuple[int, ...] = (64, 64)
    """Output channels of each Conv1d block, in order; empty tuple = no conv blocks (LSTM sees raw features)."""

    kernel_size: int = 5
    """Conv1d kernel size; odd, so that 'same' padding (kernel_size // 2) keeps T unchanged."""

    conv_norm: str = "batch"
    """Normalisation in each conv block: 'batch' (BatchNorm1d), 'layer' (LayerNorm over channels) or 'none'."""

    activation: str = "gelu"
    """Activation of the conv blocks and the head: 'relu' or 'gelu'."""

    lstm_hidden: int = 64
    """Hidden size H of each LSTM layer (per direction)."""

    lstm_layers: int = 2
    """Number of stacked LSTM layers."""

    dropout: float = 0.2
    """Dropout probability used after conv blocks, between LSTM layers (if lstm_layers > 1) and in the head."""

    bidirectional: bool = False
    """Bidirectional LSTM. The window ends at the prediction time, so this is still causal w.r.t. the label."""

    attention_dim: int = 64
    """Width of the additive (Bahdanau) attention scorer: score_t = v . tanh(W h_t + b)."""

    head_hidden: int = 64
    """Width of the hidden layer of the classifier MLP head."""

    def __post_init__(self) -> None:
        self.conv_channels = tuple(int(c) for c in self.conv_channels)
        checks: list[tuple[bool, str]] = [
            (
                isinstance(self.n_features, int) and self.n_features >= 1,
                f"n_features must be an int >= 1, got {self.n_features!r}",
            ),
            (isinstance(self.window, int) and self.window >= 1, f"window must be an int >= 1, got {self.window!r}"),
            (
                isinstance(self.n_classes, int) and self.n_classes >= 2,
                f"n_classes must be an int >= 2, got {self.n_classes!r}",
            ),
            (all(c >= 1 for c in self.conv_channels), f"conv_channels must all be >= 1, got {self.conv_channels!r}"),
            (
                isinstance(self.kernel_size, int) and self.kernel_size >= 1 and self.kernel_size % 2 == 1,
                f"kernel_size must be an odd int >= 1 (same padding), got {self.kernel_size!r}",
            ),
            (self.conv_norm in _NORMS, f"conv_norm must be one of {_NORMS}, got {self.conv_norm!r}"),
            (self.activation in _ACTIVATIONS, f"activation must be one of {_ACTIVATIONS}, got {self.activation!r}"),
            (
                isinstance(self.lstm_hidden, int) and self.lstm_hidden >= 1,
                f"lstm_hidden must be an int >= 1, got {self.lstm_hidden!r}",
            ),
            (
                isinstance(self.lstm_layers, int) and self.lstm_layers >= 1,
                f"lstm_layers must be an int >= 1, got {self.lstm_layers!r}",
            ),
            (0.0 <= float(self.dropout) < 1.0, f"dropout must be in [0, 1), got {self.dropout!r}"),
            (
                isinstance(self.attention_dim, int) and self.attention_dim >= 1,
                f"attention_dim must be an int >= 1, got {self.attention_dim!r}",
            ),
            (
                isinstance(self.head_hidden, int) and self.head_hidden >= 1,
                f"head_hidden must be an int >= 1, got {self.head_hidden!r}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"ModelConfig: {message}")
        self.dropout = float(self.dropout)
        self.bidirectional = bool(self.bidirectional)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        d = asdict(self)
        d["conv_channels"] = list(self.conv_channels)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"ModelConfig.from_dict: unknown keys {sorted(unknown)}")
        return cls(**data)


def _activation(name: str) -> nn.Module:
    return nn.GELU() if name == "gelu" else nn.ReLU()


class _ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel dim of a (B, C, T) tensor."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.norm(x.transpose(1, 2))
        return out.transpose(1, 2)  # (B, C, T)


class _ConvBlock(nn.Module):
    """Conv1d (same padding) -> norm -> activation -> dropout on (B, C_in, T)."""

    def __init__(self, c_in: int, c_out: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, cfg.kernel_size, padding=cfg.kernel_size // 2, bias=cfg.conv_norm == "none")
        if cfg.conv_norm == "batch":
            self.norm: nn.Module = nn.BatchNorm1d(c_out)
        elif cfg.conv_norm == "layer":
            self.norm = _ChannelLayerNorm(c_out)
        else:
            self.norm = nn.Identity()
        self.act = _activation(cfg.activation)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, T)
        out: torch.Tensor = self.drop(self.act(self.norm(self.conv(x))))
        return out  # (B, C_out, T)


class AdditivePooling(nn.Module):
    """Additive attention pooling over time: a_t = softmax_t(v . tanh(W h_t + b)), out = sum_t a_t h_t."""

    def __init__(self, dim: int, attention_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (B, T, D)
        scores = self.score(torch.tanh(self.proj(h)))  # (B, T, 1)
        weights = torch.softmax(scores, dim=1)  # (B, T, 1)
        pooled = (weights * h).sum(dim=1)  # (B, D)
        return pooled, weights.squeeze(-1)  # (B, D), (B, T)


class HybridCNNLSTM(nn.Module):
    """Conv1d feature extractor -> LSTM -> additive attention pooling -> MLP head -> logits (B, n_classes)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        blocks: list[nn.Module] = []
        c_in = cfg.n_features
        for c_out in cfg.conv_channels:
            blocks.append(_ConvBlock(c_in, c_out, cfg))
            c_in = c_out
        self.conv = nn.Sequential(*blocks)
        self.lstm = nn.LSTM(
            input_size=c_in,
            hidden_size=cfg.lstm_hidden,
            num_layers=cfg.lstm_layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.lstm_layers > 1 else 0.0,
            bidirectional=cfg.bidirectional,
        )
        d = cfg.lstm_hidden * (2 if cfg.bidirectional else 1)
        self.attention = AdditivePooling(d, cfg.attention_dim)
        self.head = nn.Sequential(
            nn.Linear(d, cfg.head_hidden),
            _activation(cfg.activation),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.head_hidden, cfg.n_classes),
        )

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, n_classes) and attention weights (B, T) for input (B, T, F)."""
        h = self.conv(x.transpose(1, 2))  # (B, C, T)
        h, _ = self.lstm(h.transpose(1, 2))  # (B, T, H)
        pooled, weights = self.attention(h)  # (B, H), (B, T)
        return self.head(pooled), weights  # (B, n_classes), (B, T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, F)
        logits, _ = self.forward_with_attention(x)
        return logits  # (B, n_classes)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
