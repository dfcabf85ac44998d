"""Trainer: learning a planted pattern, seeds, exact resume, divergence, early stopping, callbacks."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from backend.ml_engine.model import HybridCNNLSTM, ModelConfig
from backend.ml_engine.trainer import (
    BEST_NAME,
    CHECKPOINT_NAME,
    BaseCallback,
    Callback,
    ProgressBarCallback,
    Trainer,
    TrainerConfig,
    TrainingDivergedError,
    compute_class_weights,
)

T, F = 16, 4


def planted(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows (n, T, F); label = sign of mean(feature 0 over the last 5 steps) with a flat band."""
    g = np.random.default_rng(seed)
    x = g.normal(size=(n, T, F)).astype(np.float32)
    m = x[:, -5:, 0].mean(axis=1)
    y = np.where(m > 0.2, 2, np.where(m < -0.2, 0, 1)).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


@pytest.fixture(scope="module")
def data() -> tuple[TensorDataset, TensorDataset]:
    return TensorDataset(*planted(1024, 0)), TensorDataset(*planted(512, 1))


def small_model(seed: int = 0, dropout: float = 0.1) -> HybridCNNLSTM:
    torch.manual_seed(seed)
    return HybridCNNLSTM(
        ModelConfig(
            n_features=F,
            window=T,
            conv_channels=(16,),
            lstm_hidden=24,
            lstm_layers=2,
            attention_dim=16,
            head_hidden=16,
            dropout=dropout,
        )
    )


def cfg(**kw: Any) -> TrainerConfig:
    base = dict(epochs=2, batch_size=64, learning_rate=3e-3, seed=7, device="cpu", log_every_n_steps=5)
    base.update(kw)
    return TrainerConfig(**base)


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def strip_time(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "epoch_seconds"} for h in history]


def test_learns_planted_pattern_and_not_shuffled_labels(data) -> None:
    train, val = data
    majority = np.bincount(val.tensors[1].numpy()).max() / len(val)
    model = small_model()
    learn = dict(epochs=6, early_stopping_patience=None, batch_size=32, learning_rate=1e-2)
    trainer = Trainer(model, cfg(**learn))
    result = trainer.fit(train, val)
    best_acc = result.history[result.best_epoch - 1]["val_accuracy"]
    assert best_acc > majority + 0.3, (best_acc, majority)
    assert len(result.history) == 6 and not result.stopped_early
    assert set(result.history[0]) == {
        "epoch",
        "train_loss",
        "val_loss",
        "val_accuracy",
        "val_f1",
        "learning_rate",
        "epoch_seconds",
    }
    proba = trainer.predict_proba(val)
    assert proba.shape == (len(val), 3) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    # the model holds the best epoch's weights: evaluating reproduces the recorded val metrics
    ev = trainer.evaluate(val)
    assert ev["accuracy"] == pytest.approx(best_acc)
    assert ev["f1_macro"] == pytest.approx(result.history[result.best_epoch - 1]["val_f1"])

    perm = torch.from_numpy(np.random.default_rng(5).permutation(len(train)))
    shuffled = TensorDataset(train.tensors[0], train.tensors[1][perm])
    noise_trainer = Trainer(small_model(), cfg(**learn))
    noise_trainer.fit(shuffled, val)
    noise_acc = noise_trainer.evaluate(val)["accuracy"]
    assert noise_acc < majority + 0.1, (noise_acc, majority)


def test_same_seed_gives_bit_identical_weights(data) -> None:
    train, val = data
    m1, m2 = small_model(1), small_model(1)
    r1 = Trainer(m1, cfg()).fit(train, val)
    r2 = Trainer(m2, cfg()).fit(train, val)
    assert_same_weights(m1, m2)
    assert strip_time(r1.history) == strip_time(r2.history)
    m3 = small_model(1)
    Trainer(m3, cfg(seed=8)).fit(train, val)
    assert not all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m3.state_dict().values()))


class Interrupt(Exception):
    pass


class InterruptAt(BaseCallback):
    """Simulates a crash after `epoch` (the checkpoint for it is already written); consumes RNG on purpose."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_batch_end(self, step: int, metrics: dict) -> None:
        torch.rand(10)
        np.random.rand(3)

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        torch.rand(10)
        if epoch == self.epoch:
            raise Interrupt


@pytest.mark.parametrize("scheduler", ["cosine", "plateau"])
def test_resume_equals_uninterrupted_run(data, tmp_path: Path, scheduler: str) -> None:
    train, val = data
    sub_train = TensorDataset(*(t[:512] for t in train.tensors))
    kw = dict(epochs=4, lr_scheduler=scheduler, early_stopping_patience=None, early_stopping_metric="val_loss")
    straight = small_model(2)
    r_straight = Trainer(straight, cfg(checkpoint_dir=str(tmp_path / "a"), **kw)).fit(sub_train, val)

    first = small_model(2)
    with pytest.raises(Interrupt):
        Trainer(first, cfg(checkpoint_dir=str(tmp_path / "b"), **kw), callbacks=[InterruptAt(2)]).fit(sub_train, val)
    ckpt = torch.load(tmp_path / "b" / CHECKPOINT_NAME, weights_only=True)
    assert ckpt["epoch"] == 2

    resumed = small_model(99)  # different init: everything must come from the checkpoint
    trainer = Trainer(resumed, cfg(checkpoint_dir=str(tmp_path / "b"), **kw), callbacks=[InterruptAt(-1)])
    r_resumed = trainer.fit(sub_train, val, resume=True)
    assert r_resumed.resumed_from_epoch == 2
    assert r_resumed.epochs_run == 4 and len(r_resumed.history) == 4
    assert_same_weights(straight, resumed)
    assert strip_time(r_straight.history) == strip_time(r_resumed.history)
    assert r_straight.best_epoch == r_resumed.best_epoch

    # the final checkpoints agree too (last weights, not just the best ones)
    a = torch.load(tmp_path / "a" / CHECKPOINT_NAME, weights_only=True)
    b = torch.load(tmp_path / "b" / CHECKPOINT_NAME, weights_only=True)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert not list((tmp_path / "b").glob("*.tmp"))

    # resuming a finished run trains nothing and restores the best weights
    again = small_model(5)
    r_again = Trainer(again, cfg(checkpoint_dir=str(tmp_path / "b"), **kw)).fit(sub_train, val, resume=True)
    assert r_again.epochs_run == 4 and r_again.best_epoch == r_straight.best_epoch
    assert_same_weights(straight, again)


def test_resume_needs_checkpoint_dir_and_tolerates_missing_file(data, tmp_path: Path) -> None:
    train, val = data
    with pytest.raises(ValueError, match="checkpoint_dir"):
        Trainer(small_model(), cfg(epochs=1)).fit(train, val, resume=True)
    result = Trainer(small_model(), cfg(epochs=1, checkpoint_dir=str(tmp_path))).fit(train, val, resume=True)
    assert result.resumed_from_epoch == 0 and (tmp_path / CHECKPOINT_NAME).exists() and (tmp_path / BEST_NAME).exists()


def test_nan_input_raises_before_anything_is_saved(data, tmp_path: Path) -> None:
    train, val = data
    x = train.tensors[0].clone()
    x[:, 3, 1] = float("nan")
    with pytest.raises(TrainingDivergedError, match=r"epoch 1, step 1") as info:
        Trainer(small_model(), cfg(checkpoint_dir=str(tmp_path))).fit(TensorDataset(x, train.tensors[1]), val)
    assert info.value.epoch == 1 and info.value.step == 1
    assert not (tmp_path / CHECKPOINT_NAME).exists() and not (tmp_path / BEST_NAME).exists()


class PoisonAfter(BaseCallback):
    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        with torch.no_grad():
            next(self.model.parameters()).fill_(float("inf"))


def test_divergence_mid_training_keeps_last_good_checkpoint(data, tmp_path: Path) -> None:
    train, val = data
    model = small_model()
    with pytest.raises(TrainingDivergedError, match="epoch 2") as info:
        Trainer(model, cfg(epochs=3, checkpoint_dir=str(tmp_path)), callbacks=[PoisonAfter(model)]).fit(train, val)
    assert info.value.epoch == 2
    best = torch.load(tmp_path / BEST_NAME, weights_only=True)
    last = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert best["epoch"] == 1 and last["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in best["model"].values() if v.is_floating_point())


def test_huge_learning_rate_diverges(data) -> None:
    train, val = data
    with pytest.raises(TrainingDivergedError, match="non-finite"):
        Trainer(small_model(), cfg(epochs=3, learning_rate=1e30, grad_clip_norm=None)).fit(train, val)


def test_early_stopping_restores_best_weights(data, tmp_path: Path) -> None:
    train, val = data
    model = small_model()
    c = cfg(epochs=6, early_stopping_patience=2, early_stopping_min_delta=10.0, checkpoint_dir=str(tmp_path))
    result = Trainer(model, c).fit(train, val)
    assert result.stopped_early and result.epochs_run == 3 and result.best_epoch == 1
    assert result.best_metric == pytest.approx(result.history[0]["val_f1"])
    best = torch.load(tmp_path / BEST_NAME, weights_only=True)["model"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, best[k]), k


def test_val_loss_monitor_and_cosine_schedule(data) -> None:
    train, val = data
    result = Trainer(small_model(), cfg(epochs=3, early_stopping_metric="val_loss", learning_rate=1e-3)).fit(train, val)
    assert result.monitor == "val_loss"
    assert result.best_metric == pytest.approx(min(h["val_loss"] for h in result.history))
    lrs = [h["learning_rate"] for h in result.history]
    assert lrs[0] == pytest.approx(1e-3) and lrs[0] > lrs[1] > lrs[2]


class Recorder(BaseCallback):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_train_start(self, trainer: Trainer) -> None:
        self.events.append(("start", trainer.start_epoch))

    def on_batch_end(self, step: int, metrics: dict) -> None:
        assert set(metrics) >= {"batch_loss", "learning_rate"}
        self.events.append(("batch", step))

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        self.events.append(("epoch", epoch))

    def on_train_end(self, result) -> None:
        self.events.append(("end", result.best_epoch))


class OnlyEpochs:
    """Implements a single hook: the others are optional."""

    def __init__(self) -> None:
        self.epochs: list[int] = []

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        self.epochs.append(epoch)


def test_callbacks_and_progress_bar(data) -> None:
    train, val = data
    rec, only = Recorder(), OnlyEpochs()
    out = io.StringIO()
    result = Trainer(
        small_model(), cfg(epochs=2, log_every_n_steps=4), callbacks=[rec, only, ProgressBarCallback(file=out)]
    ).fit(train, val)
    steps_per_epoch = len(train) // 64
    assert rec.events[0] == ("start", 0)
    assert [s for kind, s in rec.events if kind == "batch"] == list(range(4, 2 * steps_per_epoch + 1, 4))
    assert [e for kind, e in rec.events if kind == "epoch"] == [1, 2]
    assert rec.events[-1] == ("end", result.best_epoch)
    assert only.epochs == [1, 2]
    assert isinstance(rec, Callback)
    assert "2/2" in out.getvalue()


class StopAfterFirst(BaseCallback):
    def __init__(self) -> None:
        self.trainer: Trainer | None = None

    def on_train_start(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        assert self.trainer is not None
        self.trainer.stop_training = True


def test_callback_can_stop_training(data) -> None:
    train, val = data
    result = Trainer(small_model(), cfg(epochs=5), callbacks=[StopAfterFirst()]).fit(train, val)
    assert result.epochs_run == 1 and result.stopped_early


class BatchesDataset(Dataset):
    """Mimics WindowDataset: items plus a fast `batches()` path."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y
        self.batch_calls = 0

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i]

    def batches(
        self, batch_size: int, shuffle: bool, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.batch_calls += 1
        order = torch.randperm(len(self.y), generator=generator) if shuffle else torch.arange(len(self.y))
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            yield self.x[idx], self.y[idx]


def test_uses_batches_method_when_present(data, tmp_path: Path) -> None:
    train, val = data
    tr, va = BatchesDataset(*train.tensors), BatchesDataset(*val.tensors)
    kw = dict(epochs=3, early_stopping_patience=None)
    model = small_model(3)
    trainer = Trainer(model, cfg(**kw))
    trainer.fit(tr, va)
    assert tr.batch_calls >= 3 and va.batch_calls >= 3
    np.testing.assert_allclose(trainer.predict_proba(va), trainer.predict_proba(val), atol=1e-6)

    # exact resume also holds on the batches() path
    straight = small_model(3)
    Trainer(straight, cfg(checkpoint_dir=str(tmp_path / "a"), **kw)).fit(tr, va)
    assert_same_weights(model, straight)
    with pytest.raises(Interrupt):
        Trainer(small_model(3), cfg(checkpoint_dir=str(tmp_path / "b"), **kw), callbacks=[InterruptAt(1)]).fit(tr, va)
    resumed = small_model(4)
    Trainer(resumed, cfg(checkpoint_dir=str(tmp_path / "b"), **kw)).fit(tr, va, resume=True)
    assert_same_weights(straight, resumed)


def test_class_weights() -> None:
    np.testing.assert_allclose(compute_class_weights(np.array([0, 0, 1, 2]), 3), [4 / 6, 4 / 3, 4 / 3])
    np.testing.assert_allclose(compute_class_weights(np.array([0, 0, 2, 2]), 3), [2 / 3, 1.0, 2 / 3])
    t = Trainer(small_model(), cfg(epochs=1))
    ds = TensorDataset(*planted(256, 3))
    r = t.fit(ds, ds)
    counts = np.bincount(ds.tensors[1].numpy(), minlength=3)
    np.testing.assert_allclose(r.class_weights, 256 / (3 * counts), rtol=1e-6)
    r2 = Trainer(small_model(), cfg(epochs=1, class_weights="none")).fit(ds, ds)
    assert r2.class_weights is None


def test_trainer_config_checks_and_roundtrip() -> None:
    c = TrainerConfig(early_stopping_metric="val_loss")
    assert c.monitor_mode == "min" and TrainerConfig().monitor_mode == "max"
    assert TrainerConfig.from_dict(c.to_dict()) == c
    for bad in (
        {"epochs": 0},
        {"lr_scheduler": "step"},
        {"early_stopping_metric": "f1"},
        {"device": "tpu"},
        {"class_weights": "inverse"},
        {"learning_rate": 0.0},
        {"grad_clip_norm": 0.0},
        {"num_threads": 0},
    ):
        with pytest.raises(ValueError, match="TrainerConfig"):
            TrainerConfig(**bad)
    with pytest.raises(ValueError, match="unknown keys"):
        TrainerConfig.from_dict({"epochs": 1, "bogus": 2})
    assert Trainer(small_model(), TrainerConfig(device="auto")).device.type == (
        "cuda" if torch.cuda.is_available() else "cpu"
    )
