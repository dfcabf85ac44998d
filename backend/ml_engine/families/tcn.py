"""``tcn``: a small temporal convolutional network (Bai, Kolter and Koltun, 2018) in PyTorch.

``levels`` residual blocks of two causal dilated Conv1d (dilation 1, 2, 4, ...; left padding only,
so step ``t`` never sees ``t + 1``), ReLU, dropout and a 1x1 convolution on the skip path when the
width changes; the last time step's channels go through an MLP head. The receptive field is
``1 + 2 * (kernel_size - 1) * (2**levels - 1)`` rows (61 with the defaults: a 60-row window).
Only Conv1d, Pad, ReLU and Linear: a plain TorchScript ONNX export.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn
from torch.nn import functional

from ._base import InputKind, ModelFamily, OptionSpec
from ._torch import TorchFitted, fit_torch

if TYPE_CHECKING:  # pragma: no cover
    from ..dataset import WindowDataset
    from ..trainer import TrainerConfig

__all__ = ["TCN", "TCNConfig", "TCNFamily"]


@dataclass
class TCNConfig:
    n_features: int
    window: int
    n_classes: int = 3
    channels: int = 32
    """Width of every residual block."""
    levels: int = 4
    """Residual blocks; block i uses dilation 2**i."""
    kernel_size: int = 3
    dropout: float = 0.1
    head_hidden: int = 32

    def __post_init__(self) -> None:
        for name in ("n_features", "window", "channels", "levels", "kernel_size", "head_hidden"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TCNConfig: {name} must be an int >= 1, got {value!r}")
        if self.kernel_size < 2:
            raise ValueError(f"TCNConfig: kernel_size must be >= 2, got {self.kernel_size}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"TCNConfig: dropout must be in [0, 1), got {self.dropout!r}")
        self.dropout = float(self.dropout)

    @property
    def receptive_field(self) -> int:
        return int(1 + 2 * (self.kernel_size - 1) * (2**self.levels - 1))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TCNConfig:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"TCNConfig.from_dict: unknown keys {sorted(unknown)}")
        return cls(**dict(data))


class _CausalConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(c_in, c_out, kernel, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        out: torch.Tensor = self.conv(functional.pad(x, (self.pad, 0)))
        return out


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _CausalConv(c_in, c_out, kernel, dilation),
            nn.ReLU(),
            nn.Dropout(dropout),
            _CausalConv(c_out, c_out, kernel, dilation),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.skip: nn.Module = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.act(self.net(x) + self.skip(x))
        return out


class TCN(nn.Module):
    """(B, T, F) -> logits (B, n_classes)."""

    def __init__(self, cfg: TCNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        blocks: list[nn.Module] = []
        c_in = cfg.n_features
        for level in range(cfg.levels):
            blocks.append(_Block(c_in, cfg.channels, cfg.kernel_size, 2**level, cfg.dropout))
            c_in = cfg.channels
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Linear(cfg.channels, cfg.head_hidden),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.head_hidden, cfg.n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(x.transpose(1, 2))  # (B, C, T)
        out: torch.Tensor = self.head(h[:, :, -1])
        return out


class TCNFamily(ModelFamily):
    name: ClassVar[str] = "tcn"
    title: ClassVar[str] = "temporal convolutional network: causal dilated convolutions (PyTorch)"
    input_kind: ClassVar[InputKind] = "window"
    config_type: ClassVar[type] = TCNConfig

    def options(self) -> list[OptionSpec]:
        return [
            OptionSpec("channels", "int", 32, "width of every residual block", minimum=1, maximum=512),
            OptionSpec("levels", "int", 4, "residual blocks (dilations 1, 2, 4, ...)", minimum=1, maximum=10),
            OptionSpec("kernel_size", "int", 3, "kernel of the dilated convolutions", minimum=2, maximum=15),
            OptionSpec("dropout", "float", 0.1, "dropout probability", minimum=0.0, maximum=0.95),
            OptionSpec("head_hidden", "int", 32, "width of the MLP head", minimum=1, maximum=1024),
        ]

    def _build(self, values: dict[str, Any], *, n_features: int, window: int) -> TCNConfig:
        return TCNConfig(n_features=n_features, window=window, **values)

    def config_from_dict(self, data: Mapping[str, Any]) -> TCNConfig:
        return TCNConfig.from_dict(data)

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
        return fit_torch(self.name, TCN, config, train, val, trainer, callbacks, resume)
