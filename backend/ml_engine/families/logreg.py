"""``logreg``: multinomial logistic regression (scikit-learn) on the window's tabular columns.

The same columns as ``lightgbm`` (:mod:`backend.ml_engine.tabular`), standardised on the train
split, L2 penalty ``C``, lbfgs. One fit is one "epoch" for the trainer's callbacks. Exported with
skl2onnx (scaler and classifier in one graph) plus a ``Log`` node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..tabular import TabularConfig
from ._base import FitSummary, InputKind, ModelFamily, OptionSpec, timed
from ._tabular import TABULAR_INPUT, FitProgress, TabularConfigMixin, TabularFitted, dataset_features

if TYPE_CHECKING:  # pragma: no cover
    import onnx

    from ..dataset import WindowDataset
    from ..trainer import TrainerConfig

__all__ = ["LogRegConfig", "LogRegFamily"]


@dataclass
class LogRegConfig(TabularConfigMixin):
    C: float = 0.1
    """Inverse L2 strength (smaller: stronger regularisation)."""
    max_iter: int = 500
    class_weight: str = "balanced"
    lags: tuple[int, ...] = (1, 2, 3, 5, 10, 20)

    def __post_init__(self) -> None:
        if not self.C > 0:
            raise ValueError(f"C must be > 0, got {self.C}")
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")
        self._check_tabular()


class _LogRegFitted(TabularFitted):
    mlflow_flavor: ClassVar[str] = "sklearn"
    exporter: ClassVar[str] = "skl2onnx"

    def __init__(self, pipeline: Any, *args: Any) -> None:
        super().__init__(*args)
        self.pipeline = pipeline

    @property
    def native(self) -> Any:
        return self.pipeline

    def proba_of_features(self, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.pipeline.predict_proba(np.asarray(x, dtype=np.float32))
        return out

    def _onnx_model(self, n_columns: int) -> onnx.ModelProto:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType

        clf = self.pipeline.steps[-1][1]
        model: onnx.ModelProto = convert_sklearn(
            self.pipeline,
            initial_types=[(TABULAR_INPUT, FloatTensorType([None, n_columns]))],
            options={id(clf): {"zipmap": False}},
            target_opset=17,
        )
        return model

    def n_parameters(self) -> int:
        clf = self.pipeline.steps[-1][1]
        return int(clf.coef_.size + clf.intercept_.size)


class LogRegFamily(ModelFamily):
    name: ClassVar[str] = "logreg"
    title: ClassVar[str] = "multinomial logistic regression (scikit-learn) on the same tabular columns"
    input_kind: ClassVar[InputKind] = "tabular"
    config_type: ClassVar[type] = LogRegConfig

    def options(self) -> list[OptionSpec]:
        return [
            OptionSpec("C", "float", 0.1, "inverse L2 strength", minimum=1e-6, maximum=1e6),
            OptionSpec("max_iter", "int", 500, "most lbfgs iterations", minimum=1, maximum=100000),
            OptionSpec("class_weight", "str", "balanced", "class weights", choices=("balanced", "none")),
            OptionSpec("lags", "ints", (1, 2, 3, 5, 10, 20), "lags of the window's columns", minimum=1, maximum=1024),
        ]

    def _build(self, values: dict[str, Any], *, n_features: int, window: int) -> LogRegConfig:
        return LogRegConfig(**values)

    def config_from_dict(self, data: Mapping[str, Any]) -> LogRegConfig:
        return LogRegConfig.from_dict(data)

    def fit(
        self,
        config: Any,
        train: WindowDataset,
        val: WindowDataset,
        trainer: TrainerConfig,
        *,
        callbacks: Sequence[Any] = (),
        resume: bool = False,
    ) -> _LogRegFitted:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import log_loss
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        cfg: LogRegConfig = config
        tab = TabularConfig(lags=cfg.lags)
        t0 = timed()
        progress = FitProgress(callbacks, 1)
        progress.call("on_train_start", progress)
        x_train, y_train = dataset_features(train, tab)
        x_val, y_val = dataset_features(val, tab)
        pipeline = Pipeline(
            [
                ("scale", StandardScaler()),
                (
                    "logreg",
                    LogisticRegression(
                        C=cfg.C,
                        max_iter=cfg.max_iter,
                        class_weight="balanced" if cfg.class_weight == "balanced" else None,
                        random_state=trainer.seed,
                    ),
                ),
            ]
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipeline.fit(x_train, y_train)
        labels = [0, 1, 2]
        p_train = pipeline.predict_proba(x_train)
        p_val = pipeline.predict_proba(x_val)
        entry = {
            "epoch": 1.0,
            "train_loss": float(log_loss(y_train, p_train, labels=labels)),
            "val_loss": float(log_loss(y_val, p_val, labels=labels)),
            "val_accuracy": float(np.mean(p_val.argmax(axis=1) == y_val)),
        }
        progress.call("on_epoch_end", 1, entry)
        summary = FitSummary(
            history=[entry],
            best_epoch=1,
            best_metric=entry["val_loss"],
            monitor="val_loss",
            stopped_early=False,
            fit_seconds=timed() - t0,
            extra={"iterations": int(np.max(pipeline.steps[-1][1].n_iter_)), "columns": int(x_train.shape[1])},
        )
        fitted = _LogRegFitted(pipeline, self.name, cfg, tab, train.window, summary)
        progress.call("on_train_end", summary)
        return fitted
