"""HybridCNNLSTM and ModelConfig: shapes, config checks, parameter budget."""

from __future__ import annotations

import json

import pytest
import torch

from backend.ml_engine.model import HybridCNNLSTM, ModelConfig, count_parameters


def test_default_forward_shape_and_param_budget() -> None:
    for n_features in (8, 24, 40):
        model = HybridCNNLSTM(ModelConfig(n_features=n_features, window=64)).eval()
        assert 90_000 <= count_parameters(model) <= 300_000
        x = torch.randn(5, 64, n_features)
        logits = model(x)
        assert logits.shape == (5, 3)
        assert logits.dtype == torch.float32
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize(
    "overrides",
    [
        {"conv_norm": "layer", "activation": "relu"},
        {"conv_norm": "none", "bidirectional": True},
        {"conv_channels": (), "lstm_layers": 1, "dropout": 0.0},
        {"conv_channels": (8, 16, 32), "kernel_size": 3, "n_classes": 5},
    ],
)
def test_variants_forward_and_backward(overrides: dict) -> None:
    cfg = ModelConfig(n_features=6, window=20, lstm_hidden=16, attention_dim=8, head_hidden=8, **overrides)
    model = HybridCNNLSTM(cfg)
    x = torch.randn(4, 20, 6)
    logits = model(x)
    assert logits.shape == (4, cfg.n_classes)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_attention_weights_sum_to_one_and_any_window_length() -> None:
    model = HybridCNNLSTM(ModelConfig(n_features=3, window=30)).eval()
    for t in (1, 7, 30, 50):
        logits, weights = model.forward_with_attention(torch.randn(2, t, 3))
        assert logits.shape == (2, 3)
        assert weights.shape == (2, t)
        torch.testing.assert_close(weights.sum(dim=1), torch.ones(2))


def test_eval_mode_is_deterministic_and_batch_independent() -> None:
    torch.manual_seed(0)
    model = HybridCNNLSTM(ModelConfig(n_features=4, window=16)).eval()
    x = torch.randn(6, 16, 4)
    with torch.no_grad():
        full = model(x)
        single = torch.cat([model(x[i : i + 1]) for i in range(6)])
    torch.testing.assert_close(full, single, rtol=1e-5, atol=1e-5)


def test_config_roundtrip_json() -> None:
    cfg = ModelConfig(n_features=12, window=48, conv_channels=(16, 32), bidirectional=True)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert ModelConfig.from_dict(data) == cfg
    with pytest.raises(ValueError, match="unknown keys"):
        ModelConfig.from_dict({**data, "bogus": 1})


@pytest.mark.parametrize(
    "bad",
    [
        {"n_features": 0},
        {"window": 0},
        {"n_classes": 1},
        {"kernel_size": 4},
        {"conv_channels": (8, 0)},
        {"conv_norm": "group"},
        {"activation": "tanh"},
        {"lstm_hidden": 0},
        {"lstm_layers": 0},
        {"dropout": 1.0},
        {"dropout": -0.1},
        {"attention_dim": 0},
    ],
)
def test_config_rejects_bad_values(bad: dict) -> None:
    kwargs = {"n_features": 4, "window": 16, **bad}
    with pytest.raises(ValueError, match="ModelConfig"):
        ModelConfig(**kwargs)
