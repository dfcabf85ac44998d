"""Training loop for the candle classifier: class weights, early stopping, LR schedule,
atomic per-epoch checkpoints with exact resume, divergence detection and callbacks.

Datasets: any ``torch.utils.data.Dataset`` whose items are ``(x (T, F) float32, y int64)``.
If the dataset has a ``batches(batch_size, shuffle, generator)`` method yielding
``(xb (B, T, F), yb (B,))`` tensors (``WindowDataset``), it is used (no per-item collation);
otherwise a single-process ``DataLoader`` is used. Shuffling always draws from the trainer's
own ``torch.Generator`` so it is repeatable and checkpointed.

Reproducibility: with the same seed, model initialisation and data, two CPU runs give
bit-identical weights, and a run interrupted after any epoch and resumed with
``fit(..., resume=True)`` ends with the same weights as an uninterrupted one. Callbacks run
with the RNG states saved and restored around them, so they cannot perturb training.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, Protocol, cast, runtime_checkable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .evaluation import classification_metrics

__all__ = [
    "TrainerConfig",
    "Trainer",
    "TrainResult",
    "TrainingDivergedError",
    "Callback",
    "BaseCallback",
    "ProgressBarCallback",
    "compute_class_weights",
    "CHECKPOINT_NAME",
    "BEST_NAME",
]

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.pt"
BEST_NAME = "best.pt"
_METRICS = ("val_loss", "val_f1", "val_accuracy", "train_loss")
_SCHEDULERS = ("cosine", "plateau", "none")
_CHECKPOINT_VERSION = 1

SampleDataset = Dataset[Any]
"""What the Trainer takes: any Dataset of ``(x, y)`` pairs of tensors or arrays (see the module docstring)."""


class TrainingDivergedError(RuntimeError):
    """A training or validation loss became NaN or inf."""

    def __init__(self, epoch: int, step: int | None, loss: float, where: str = "train") -> None:
        self.epoch = epoch
        self.step = step
        self.loss = loss
        self.where = where
        at = f"epoch {epoch}" + (f", step {step}" if step is not None else "")
        super().__init__(
            f"training diverged: non-finite {where} loss ({loss}) at {at}; "
            "lower the learning rate, enable grad clipping, or check the input for NaN/inf"
        )


@dataclass
class TrainerConfig:
    """Settings of :class:`Trainer`. JSON-able via :meth:`to_dict` / :meth:`from_dict`."""

    epochs: int = 20
    """Maximum number of epochs (total, including epochs done before a resume)."""

    batch_size: int = 256
    """Mini-batch size for training and evaluation."""

    learning_rate: float = 1e-3
    """Initial AdamW learning rate."""

    weight_decay: float = 1e-4
    """AdamW decoupled weight decay."""

    early_stopping_patience: int | None = 5
    """Stop after this many epochs without improvement of the monitored metric; None or 0 disables."""

    early_stopping_metric: str = "val_f1"
    """Monitored metric, also used to pick the best weights: 'val_f1', 'val_loss', 'val_accuracy', 'train_loss'."""

    early_stopping_mode: str = "auto"
    """'max', 'min' or 'auto' (min for *_loss metrics, max otherwise)."""

    early_stopping_min_delta: float = 0.0
    """An epoch improves only if it beats the best value by more than this."""

    grad_clip_norm: float | None = 1.0
    """Clip the global gradient L2 norm to this value; None disables."""

    lr_scheduler: str = "cosine"
    """'cosine' (CosineAnnealingLR over `epochs`, stepped per epoch), 'plateau' (ReduceLROnPlateau on the
    monitored metric, factor 0.5, patience max(1, early_stopping_patience // 2)) or 'none'."""

    min_learning_rate: float = 1e-6
    """Floor of the learning rate for the cosine and plateau schedulers."""

    class_weights: str = "balanced"
    """'balanced' (n / (n_classes * count_c) from the TRAIN labels, in the train and val loss) or 'none'."""

    seed: int = 42
    """Seeds torch, numpy, python random and the shuffle generator at the start of a fresh fit."""

    device: str = "auto"
    """'auto' (cuda if available, else cpu), 'cpu' or 'cuda' / 'cuda:N'."""

    checkpoint_dir: str | None = None
    """Directory for `last.pt` (full state after every epoch, for resume) and `best.pt` (best weights); None = no files."""

    log_every_n_steps: int = 50
    """Call `on_batch_end` callbacks every this many optimiser steps (global step count)."""

    num_threads: int | None = None
    """torch intra-op CPU threads during fit/predict (restored afterwards). None = half the CPUs this process
    may use (at least 1, at most torch's default): measured on a 2-core machine with a small HybridCNNLSTM,
    2 threads were no faster than 1 when idle but ~20x SLOWER when another process kept one core busy
    (OpenMP threads spin at barriers), so leaving a core free is the safe default."""

    deterministic: bool = True
    """Use deterministic algorithms (torch.use_deterministic_algorithms(warn_only=True) and cuDNN
    deterministic mode) during fit; the previous global setting is restored afterwards."""

    def __post_init__(self) -> None:
        checks: list[tuple[bool, str]] = [
            (isinstance(self.epochs, int) and self.epochs >= 1, f"epochs must be an int >= 1, got {self.epochs!r}"),
            (
                isinstance(self.batch_size, int) and self.batch_size >= 1,
                f"batch_size must be an int >= 1, got {self.batch_size!r}",
            ),
            (
                self.learning_rate > 0 and math.isfinite(self.learning_rate),
                f"learning_rate must be > 0, got {self.learning_rate!r}",
            ),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay!r}"),
            (
                self.early_stopping_patience is None or self.early_stopping_patience >= 0,
                f"early_stopping_patience must be None or >= 0, got {self.early_stopping_patience!r}",
            ),
            (
                self.early_stopping_metric in _METRICS,
                f"early_stopping_metric must be one of {_METRICS}, got {self.early_stopping_metric!r}",
            ),
            (
                self.early_stopping_mode in ("auto", "min", "max"),
                f"early_stopping_mode must be 'auto', 'min' or 'max', got {self.early_stopping_mode!r}",
            ),
            (
                self.early_stopping_min_delta >= 0,
                f"early_stopping_min_delta must be >= 0, got {self.early_stopping_min_delta!r}",
            ),
            (
                self.grad_clip_norm is None or self.grad_clip_norm > 0,
                f"grad_clip_norm must be None or > 0, got {self.grad_clip_norm!r}",
            ),
            (self.lr_scheduler in _SCHEDULERS, f"lr_scheduler must be one of {_SCHEDULERS}, got {self.lr_scheduler!r}"),
            (self.min_learning_rate >= 0, f"min_learning_rate must be >= 0, got {self.min_learning_rate!r}"),
            (
                self.class_weights in ("balanced", "none"),
                f"class_weights must be 'balanced' or 'none', got {self.class_weights!r}",
            ),
            (isinstance(self.seed, int), f"seed must be an int, got {self.seed!r}"),
            (
                self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
                f"device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}",
            ),
            (
                isinstance(self.log_every_n_steps, int) and self.log_every_n_steps >= 1,
                f"log_every_n_steps must be an int >= 1, got {self.log_every_n_steps!r}",
            ),
            (
                self.num_threads is None or (isinstance(self.num_threads, int) and self.num_threads >= 1),
                f"num_threads must be None or an int >= 1, got {self.num_threads!r}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"TrainerConfig: {message}")
        if self.checkpoint_dir is not None:
            self.checkpoint_dir = str(self.checkpoint_dir)

    @property
    def monitor_mode(self) -> Literal["min", "max"]:
        """'min' or 'max' for the monitored metric (resolves 'auto')."""
        if self.early_stopping_mode != "auto":
            return cast(Literal["min", "max"], self.early_stopping_mode)  # checked in __post_init__
        return "min" if self.early_stopping_metric.endswith("loss") else "max"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainerConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"TrainerConfig.from_dict: unknown keys {sorted(unknown)}")
        return cls(**data)


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.fit`. The model holds the weights of ``best_epoch`` afterwards."""

    history: list[dict[str, float]]
    """One dict per completed epoch: epoch, train_loss, val_loss, val_accuracy, val_f1, learning_rate, epoch_seconds."""

    best_epoch: int
    """1-based epoch whose weights were kept (best monitored metric)."""

    best_metric: float
    """Value of the monitored metric at best_epoch."""

    monitor: str
    """Name of the monitored metric."""

    stopped_early: bool
    """True if early stopping (or a callback setting ``trainer.stop_training``) ended training before `epochs`."""

    epochs_run: int
    """Number of epochs completed (including those before a resume)."""

    train_seconds: float
    """Wall time of this fit call."""

    resumed_from_epoch: int = 0
    """Epoch of the checkpoint this fit resumed from (0 = fresh start)."""

    class_weights: list[float] | None = None
    """Class weights used in the loss (None = unweighted)."""

    device: str = "cpu"
    """Device trained on."""

    checkpoint_path: str | None = None
    """Path of last.pt, if checkpointing was on."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Callback(Protocol):
    """Hooks a callback MAY implement (all optional; the trainer looks them up by name):

    - ``on_train_start(trainer)``: before the first epoch of a fit (``trainer.start_epoch`` is set).
    - ``on_batch_end(step, metrics)``: every ``log_every_n_steps`` optimiser steps;
      metrics = {"batch_loss", "learning_rate", "epoch"}.
    - ``on_epoch_end(epoch, metrics)``: after each epoch, with the history row (after the checkpoint is written).
    - ``on_train_end(result)``: with the :class:`TrainResult`, after the best weights are loaded.

    A callback may set ``trainer.stop_training = True`` to end training after the current epoch.
    The Protocol lists the hooks for type checkers; subclass :class:`BaseCallback` to get no-op defaults.
    """

    def on_train_start(self, trainer: Trainer) -> None: ...

    def on_batch_end(self, step: int, metrics: dict[str, float]) -> None: ...

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None: ...

    def on_train_end(self, result: TrainResult) -> None: ...


class BaseCallback:
    """No-op implementation of every :class:`Callback` hook."""

    def on_train_start(self, trainer: Trainer) -> None:
        pass

    def on_batch_end(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def on_train_end(self, result: TrainResult) -> None:
        pass


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and random; call it before building a model so its initial weights repeat."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class ProgressBarCallback(BaseCallback):
    """tqdm progress bar over epochs for the CLI (batch loss in the postfix)."""

    def __init__(self, **tqdm_kwargs: Any) -> None:
        self._kwargs = tqdm_kwargs
        self._bar: Any = None

    def on_train_start(self, trainer: Trainer) -> None:
        from tqdm.auto import tqdm

        kwargs = {"desc": "training", "unit": "epoch", "dynamic_ncols": True, **self._kwargs}
        self._bar = tqdm(total=trainer.cfg.epochs, initial=trainer.start_epoch, **kwargs)

    def on_batch_end(self, step: int, metrics: dict[str, float]) -> None:
        if self._bar is not None:
            self._bar.set_postfix(step=step, batch_loss=f"{metrics['batch_loss']:.4f}", refresh=True)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        if self._bar is not None:  # boosting families report every few rounds: epoch = the round
            self._bar.update(max(int(epoch) - self._bar.n, 1))
            shown = {"train_loss": ".4f", "val_loss": ".4f", "val_f1": ".3f", "val_accuracy": ".3f"}
            self._bar.set_postfix({k: format(metrics[k], f) for k, f in shown.items() if k in metrics})

    def on_train_end(self, result: TrainResult) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def compute_class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """'balanced' weights n / (n_classes * count_c); a class absent from ``labels`` gets weight 1."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(np.float64)
    n = counts.sum()
    if n == 0:
        raise ValueError("compute_class_weights: no labels")
    weights = np.ones(n_classes, dtype=np.float64)
    present = counts > 0
    weights[present] = n / (n_classes * counts[present])
    if not present.all():
        logger.warning(
            "classes %s are absent from the training labels; their weight is 1.0", np.flatnonzero(~present).tolist()
        )
    return weights


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    # cast: the global RandomState is an MT19937, whose legacy state is this tuple (never the dict).
    np_state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": random.getstate(),
        "shuffle": generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state(
        (npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached_gaussian"])
    )
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    generator.set_state(state["shuffle"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def _preserve_rng() -> Iterator[None]:
    """Save and restore the global RNGs around code that must not perturb training (callbacks)."""
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()
    py_state = random.getstate()
    cuda_state = (
        torch.cuda.get_rng_state_all()
        if torch.cuda.is_available() and torch.cuda.is_initialized()  # type: ignore[no-untyped-call]  # torch: unannotated
        else None
    )
    try:
        yield
    finally:
        torch.set_rng_state(torch_state)
        np.random.set_state(np_state)
        random.setstate(py_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _cpu_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _is_better(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


class Trainer:
    """Trains a classifier ``model`` mapping (B, T, F) float32 to logits (B, C).

    Usage::

        trainer = Trainer(model, TrainerConfig(epochs=30, checkpoint_dir="runs/ckpt"), callbacks=[ProgressBarCallback()])
        result = trainer.fit(train_ds, val_ds)          # model now holds the best weights
        proba = trainer.predict_proba(test_ds)          # (N, C) float32
    """

    def __init__(self, model: nn.Module, cfg: TrainerConfig | None = None, callbacks: Sequence[Any] = ()) -> None:
        self.model = model
        self.cfg = cfg or TrainerConfig()
        self.callbacks = list(callbacks)
        self.device = _resolve_device(self.cfg.device)
        self.n_classes = self._infer_n_classes(model)
        self.generator = torch.Generator()
        self.generator.manual_seed(self.cfg.seed)
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.class_weights: torch.Tensor | None = None
        self.start_epoch = 0
        self.global_step = 0
        self.stop_training = False

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _infer_n_classes(model: nn.Module) -> int:
        cfg = getattr(model, "cfg", None)
        n = getattr(cfg, "n_classes", None)
        return int(n) if n is not None else 3

    @property
    def num_threads(self) -> int:
        """CPU threads used during fit/predict (see TrainerConfig.num_threads)."""
        if self.cfg.num_threads is not None:
            return self.cfg.num_threads
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cpus = os.cpu_count() or 1
        return max(1, min(torch.get_num_threads(), cpus // 2))

    @property
    def checkpoint_path(self) -> Path | None:
        return Path(self.cfg.checkpoint_dir) / CHECKPOINT_NAME if self.cfg.checkpoint_dir else None

    def _call(self, hook: str, *args: Any) -> None:
        if not self.callbacks:
            return
        with _preserve_rng():
            for cb in self.callbacks:
                fn = getattr(cb, hook, None)
                if fn is not None:
                    fn(*args)

    def _iter_batches(self, ds: SampleDataset, shuffle: bool) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """(xb, yb) tensor batches; shuffling draws only from ``self.generator``."""
        generator = (
            self.generator if shuffle else torch.Generator()
        )  # a throw-away generator keeps the global RNG untouched
        batches = getattr(ds, "batches", None)
        if callable(batches):
            own: Iterable[tuple[torch.Tensor, torch.Tensor]] = batches(self.cfg.batch_size, shuffle, generator)
            return own
        return DataLoader(
            ds,
            batch_size=self.cfg.batch_size,
            shuffle=shuffle,
            generator=generator,
            num_workers=0,
            pin_memory=self.device.type == "cuda",
        )

    def _labels(self, ds: SampleDataset) -> np.ndarray:
        """All labels of ``ds`` in item order, cheaply where possible."""
        labels = getattr(ds, "labels", None)
        if labels is not None and not callable(labels):
            arr = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
            if arr.ndim == 1 and arr.shape[0] == len(ds):  # type: ignore[arg-type]
                return arr.astype(np.int64)
        if isinstance(ds, TensorDataset):
            return ds.tensors[-1].numpy().astype(np.int64)
        return np.concatenate([torch.as_tensor(yb).numpy() for _, yb in self._iter_batches(ds, shuffle=False)]).astype(
            np.int64
        )

    def _to_device(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        nb = self.device.type == "cuda"
        return (
            torch.as_tensor(xb, dtype=torch.float32).to(self.device, non_blocking=nb),
            torch.as_tensor(yb, dtype=torch.int64).to(self.device, non_blocking=nb),
        )

    @contextlib.contextmanager
    def _runtime(self, deterministic: bool) -> Iterator[None]:
        """Thread count and determinism settings for the duration of fit/predict, restored afterwards."""
        prev_threads = torch.get_num_threads()
        prev_det = torch.are_deterministic_algorithms_enabled()
        prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
        prev_cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
        torch.set_num_threads(self.num_threads)
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        try:
            yield
        finally:
            torch.set_num_threads(prev_threads)
            torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = prev_cudnn

    def _build_optim(self) -> None:
        cfg = self.cfg
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        if cfg.lr_scheduler == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=cfg.epochs, eta_min=min(cfg.min_learning_rate, cfg.learning_rate)
            )
        elif cfg.lr_scheduler == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer,
                mode=cfg.monitor_mode,
                factor=0.5,
                patience=max(1, (cfg.early_stopping_patience or 2) // 2),
                min_lr=min(cfg.min_learning_rate, cfg.learning_rate),
            )
        else:
            self.scheduler = None

    def _criterion(self, reduction: str = "mean") -> nn.Module:
        return nn.CrossEntropyLoss(weight=self.class_weights, reduction=reduction)

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def _run_eval(self, ds: SampleDataset) -> tuple[np.ndarray, np.ndarray, float]:
        """(logits (N, C) float32, labels (N,), weighted mean loss) in item order."""
        was_training = self.model.training
        self.model.eval()
        criterion = self._criterion("sum")
        logits_out: list[torch.Tensor] = []
        labels_out: list[torch.Tensor] = []
        loss_sum = 0.0
        weight_sum = 0.0
        try:
            for xb, yb in self._iter_batches(ds, shuffle=False):
                xb, yb = self._to_device(xb, yb)
                logits = self.model(xb)  # (B, C)
                loss_sum += float(criterion(logits.float(), yb))
                weight_sum += (
                    float(self.class_weights[yb].sum()) if self.class_weights is not None else float(yb.numel())
                )
                logits_out.append(logits.float().cpu())
                labels_out.append(yb.cpu())
        finally:
            self.model.train(was_training)
        if not logits_out:
            raise ValueError("evaluation dataset is empty")
        loss = loss_sum / weight_sum if weight_sum > 0 else float("nan")
        return torch.cat(logits_out).numpy(), torch.cat(labels_out).numpy(), loss

    def evaluate(self, ds: SampleDataset) -> dict[str, Any]:
        """Loss (with the fit's class weights, if any) and :func:`classification_metrics` on ``ds``."""
        with self._runtime(deterministic=False):
            self.model.to(self.device)
            logits, labels, loss = self._run_eval(ds)
        metrics = classification_metrics(labels, logits.argmax(axis=1), n_classes=logits.shape[1])
        metrics["loss"] = loss
        return metrics

    def predict_proba(self, ds: SampleDataset) -> np.ndarray:
        """Softmax probabilities (N, C) float32 in dataset order (labels of ``ds`` are ignored)."""
        with self._runtime(deterministic=False):
            self.model.to(self.device)
            was_training = self.model.training
            self.model.eval()
            out: list[np.ndarray] = []
            try:
                with torch.no_grad():
                    for xb, _ in self._iter_batches(ds, shuffle=False):
                        x = torch.as_tensor(xb, dtype=torch.float32).to(self.device)
                        out.append(torch.softmax(self.model(x).float(), dim=1).cpu().numpy())
            finally:
                self.model.train(was_training)
        if not out:
            return np.zeros((0, self.n_classes), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def predict(self, ds: SampleDataset) -> np.ndarray:
        """Arg-max class ids (N,) int64."""
        classes: np.ndarray = self.predict_proba(ds).argmax(axis=1).astype(np.int64)
        return classes

    # ------------------------------------------------------------------ checkpoints

    def _save_checkpoint(self, state: dict[str, Any]) -> None:
        path = self.checkpoint_path
        if path is None:
            return
        _atomic_torch_save(state, path)
        logger.debug("checkpoint written: %s (epoch %d)", path, state["epoch"])

    def _load_checkpoint(self) -> dict[str, Any] | None:
        path = self.checkpoint_path
        if path is None:
            raise ValueError("fit(resume=True) needs TrainerConfig.checkpoint_dir")
        if not path.exists():
            logger.warning("resume requested but %s does not exist; starting from scratch", path)
            return None
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("version") != _CHECKPOINT_VERSION:
            raise ValueError(f"{path}: unsupported checkpoint version {state.get('version')!r}")
        saved_cfg = state.get("trainer_config", {})
        diff = {k: (saved_cfg.get(k), v) for k, v in self.cfg.to_dict().items() if saved_cfg.get(k) != v}
        if diff:
            logger.warning("resuming with a TrainerConfig that differs from the checkpoint's: %s", diff)
        return state

    # ------------------------------------------------------------------ fit

    def fit(self, train_ds: SampleDataset, val_ds: SampleDataset, resume: bool = False) -> TrainResult:
        """Train on ``train_ds``, validate on ``val_ds`` after every epoch, keep the best weights.

        With ``resume=True`` training continues from ``checkpoint_dir/last.pt`` (model, optimiser,
        scheduler, epoch, history, best weights, early-stopping counter and all RNG states), so the
        result equals an uninterrupted run. Raises :class:`TrainingDivergedError` on a NaN/inf loss
        (before that epoch can be checkpointed or kept as best).
        """
        cfg = self.cfg
        t_start = time.perf_counter()
        with self._runtime(cfg.deterministic):
            self.model.to(self.device)
            state = self._load_checkpoint() if resume else None
            history: list[dict[str, float]] = []
            best_state: dict[str, torch.Tensor] | None = None
            best_metric: float | None = None
            best_epoch = 0
            bad_epochs = 0
            stopped_early = False
            if state is None:
                seed_everything(cfg.seed)
                self.generator.manual_seed(cfg.seed)
                labels = self._labels(train_ds)
                if labels.size == 0:
                    raise ValueError("training dataset is empty")
                self.class_weights = (
                    torch.tensor(compute_class_weights(labels, self.n_classes), dtype=torch.float32, device=self.device)
                    if cfg.class_weights == "balanced"
                    else None
                )
                self._build_optim()
                self.start_epoch = 0
                self.global_step = 0
            else:
                self.model.load_state_dict(state["model"])
                self._build_optim()
                assert self.optimizer is not None
                self.optimizer.load_state_dict(state["optimizer"])
                if self.scheduler is not None and state.get("scheduler") is not None:
                    self.scheduler.load_state_dict(state["scheduler"])
                cw = state["class_weights"]
                self.class_weights = cw.to(self.device) if cw is not None else None
                history = list(state["history"])
                best_state = state["best_state"]
                best_metric = state["best_metric"]
                best_epoch = state["best_epoch"]
                bad_epochs = state["bad_epochs"]
                stopped_early = state["stopped_early"]
                self.start_epoch = state["epoch"]
                self.global_step = state["global_step"]
                _set_rng_state(state["rng"], self.generator)
                logger.info("resumed from %s at epoch %d", self.checkpoint_path, self.start_epoch)
            resumed_from = self.start_epoch if state is not None else 0
            self.stop_training = False
            monitor, mode = cfg.early_stopping_metric, cfg.monitor_mode
            patience = cfg.early_stopping_patience or 0
            assert self.optimizer is not None
            criterion = self._criterion()
            self._call("on_train_start", self)

            epoch = self.start_epoch
            while epoch < cfg.epochs and not stopped_early and not self.stop_training:
                epoch += 1
                t_epoch = time.perf_counter()
                lr = float(self.optimizer.param_groups[0]["lr"])
                self.model.train()
                loss_sum, n_seen = 0.0, 0
                for xb, yb in self._iter_batches(train_ds, shuffle=True):
                    xb, yb = self._to_device(xb, yb)
                    logits = self.model(xb)  # (B, C)
                    loss = criterion(logits.float(), yb)
                    loss_value = float(loss.detach())
                    if not math.isfinite(loss_value):
                        raise TrainingDivergedError(epoch, self.global_step + 1, loss_value, "train")
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.grad_clip_norm is not None:
                        nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip_norm)
                    self.optimizer.step()
                    self.global_step += 1
                    loss_sum += loss_value * yb.shape[0]
                    n_seen += int(yb.shape[0])
                    if self.global_step % cfg.log_every_n_steps == 0:
                        self._call(
                            "on_batch_end",
                            self.global_step,
                            {"batch_loss": loss_value, "learning_rate": lr, "epoch": epoch},
                        )
                if n_seen == 0:
                    raise ValueError("training dataset is empty")

                val_logits, val_labels, val_loss = self._run_eval(val_ds)
                if not math.isfinite(val_loss):
                    raise TrainingDivergedError(epoch, None, val_loss, "validation")
                cm = classification_metrics(val_labels, val_logits.argmax(axis=1), n_classes=val_logits.shape[1])
                metrics = {
                    "epoch": epoch,
                    "train_loss": loss_sum / n_seen,
                    "val_loss": val_loss,
                    "val_accuracy": cm["accuracy"],
                    "val_f1": cm["f1_macro"],
                    "learning_rate": lr,
                    "epoch_seconds": time.perf_counter() - t_epoch,
                }
                history.append(metrics)
                value = float(metrics[monitor])
                if _is_better(value, best_metric, mode, cfg.early_stopping_min_delta):
                    best_metric, best_epoch, bad_epochs = value, epoch, 0
                    best_state = _cpu_state_dict(self.model)
                    if cfg.checkpoint_dir:
                        _atomic_torch_save(
                            {"model": best_state, "epoch": epoch, "metric": monitor, "value": value},
                            Path(cfg.checkpoint_dir) / BEST_NAME,
                        )
                else:
                    bad_epochs += 1
                if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    self.scheduler.step(value)
                elif self.scheduler is not None:
                    self.scheduler.step()
                if patience and bad_epochs >= patience and epoch < cfg.epochs:
                    stopped_early = True
                logger.info(
                    "epoch %d/%d: train_loss %.4f val_loss %.4f val_acc %.4f val_f1 %.4f lr %.2e (%.1fs)%s",
                    epoch,
                    cfg.epochs,
                    metrics["train_loss"],
                    val_loss,
                    metrics["val_accuracy"],
                    metrics["val_f1"],
                    lr,
                    metrics["epoch_seconds"],
                    " *" if best_epoch == epoch else "",
                )
                self._save_checkpoint(
                    {
                        "version": _CHECKPOINT_VERSION,
                        "epoch": epoch,
                        "global_step": self.global_step,
                        "model": _cpu_state_dict(self.model),
                        "optimizer": self.optimizer.state_dict(),
                        "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                        "history": history,
                        "best_state": best_state,
                        "best_metric": best_metric,
                        "best_epoch": best_epoch,
                        "bad_epochs": bad_epochs,
                        "stopped_early": stopped_early,
                        "class_weights": self.class_weights.cpu() if self.class_weights is not None else None,
                        "rng": _rng_state(self.generator),
                        "trainer_config": cfg.to_dict(),
                    }
                )
                self._call("on_epoch_end", epoch, dict(metrics))
                if stopped_early:
                    logger.info(
                        "early stopping at epoch %d: no %s improvement for %d epochs", epoch, monitor, bad_epochs
                    )

            if self.stop_training and epoch < cfg.epochs:
                stopped_early = True
            if best_state is None:
                raise RuntimeError("no epoch completed")  # only reachable with an inconsistent checkpoint
            self.model.load_state_dict(best_state)
            result = TrainResult(
                history=history,
                best_epoch=best_epoch,
                best_metric=float(best_metric) if best_metric is not None else float("nan"),
                monitor=monitor,
                stopped_early=stopped_early,
                epochs_run=epoch,
                train_seconds=time.perf_counter() - t_start,
                resumed_from_epoch=resumed_from,
                class_weights=self.class_weights.cpu().tolist() if self.class_weights is not None else None,
                device=str(self.device),
                checkpoint_path=str(self.checkpoint_path) if self.checkpoint_path else None,
            )
            logger.info("training done: best %s %.4f at epoch %d of %d", monitor, result.best_metric, best_epoch, epoch)
            self._call("on_train_end", result)
        return result
