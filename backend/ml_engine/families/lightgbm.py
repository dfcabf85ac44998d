"""``lightgbm``: gradient-boosted trees (LightGBM) on the window's tabular columns.

The columns are :func:`backend.ml_engine.tabular.window_features`: the last row, lags 1, 2, 3, 5,
10, 20 and the mean, std, min, max and change of every feature over the window. Early stopping on
the validation split's multi-class log loss; every ``report_every`` rounds is an "epoch" for the
trainer's callbacks (MLflow curves, job progress, cancellation). Exported with onnxmltools
(``TreeEnsembleClassifier``, softmax) plus a ``Log`` node.
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

__all__ = ["LightGBMConfig", "LightGBMFamily"]


@dataclass
class LightGBMConfig(TabularConfigMixin):
    n_estimators: int = 500
    """Most boosting rounds (early stopping usually ends sooner)."""
    learning_rate: float = 0.05
    num_leaves: int = 31
    max_depth: int = -1
    """-1: no limit."""
    min_child_samples: int = 50
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    early_stopping_rounds: int = 50
    class_weight: str = "balanced"
    """'balanced' (as the networks' loss) or 'none'."""
    linear_tree: bool = False
    """Linear models in the leaves: onnxmltools drops them, so such a model cannot be served."""
    lags: tuple[int, ...] = (1, 2, 3, 5, 10, 20)
    report_every: int = 10

    def __post_init__(self) -> None:
        for name in ("n_estimators", "num_leaves", "min_child_samples", "early_stopping_rounds", "report_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_leaves < 2:
            raise ValueError(f"num_leaves must be >= 2, got {self.num_leaves}")
        for name in ("feature_fraction", "bagging_fraction"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        self._check_tabular()


class _LightGBMFitted(TabularFitted):
    mlflow_flavor: ClassVar[str] = "lightgbm"
    exporter: ClassVar[str] = "onnxmltools"

    def __init__(self, booster: Any, *args: Any) -> None:
        super().__init__(*args)
        self.booster = booster

    @property
    def native(self) -> Any:
        return self.booster

    def proba_of_features(self, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.booster.predict(np.asarray(x, dtype=np.float64))
        return out

    def _onnx_model(self, n_columns: int) -> onnx.ModelProto:
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType

        model: onnx.ModelProto = onnxmltools.convert_lightgbm(
            self.booster,
            initial_types=[(TABULAR_INPUT, FloatTensorType([None, n_columns]))],
            zipmap=False,
            target_opset=15,
        )
        return model

    def n_parameters(self) -> int:
        """Split thresholds plus leaf values of every tree."""
        trees = self.booster.dump_model()["tree_info"]
        return int(sum(2 * t["num_leaves"] - 1 for t in trees))


class LightGBMFamily(ModelFamily):
    name: ClassVar[str] = "lightgbm"
    title: ClassVar[str] = "gradient-boosted trees (LightGBM) on the window's last row, lags and statistics"
    input_kind: ClassVar[InputKind] = "tabular"
    config_type: ClassVar[type] = LightGBMConfig

    def options(self) -> list[OptionSpec]:
        return [
            OptionSpec("n_estimators", "int", 500, "most boosting rounds", minimum=1, maximum=20000),
            OptionSpec("learning_rate", "float", 0.05, "shrinkage per round", minimum=1e-5, maximum=1.0),
            OptionSpec("num_leaves", "int", 31, "leaves per tree", minimum=2, maximum=4096),
            OptionSpec("max_depth", "int", -1, "tree depth limit (-1: none)", minimum=-1, maximum=64),
            OptionSpec("min_child_samples", "int", 50, "fewest rows in a leaf", minimum=1, maximum=100000),
            OptionSpec("feature_fraction", "float", 0.8, "share of columns per tree", minimum=0.01, maximum=1.0),
            OptionSpec("bagging_fraction", "float", 0.8, "share of rows per tree", minimum=0.01, maximum=1.0),
            OptionSpec("lambda_l2", "float", 1.0, "L2 regularisation of leaf values", minimum=0.0, maximum=1e6),
            OptionSpec(
                "early_stopping_rounds", "int", 50, "rounds without a better val loss", minimum=1, maximum=10000
            ),
            OptionSpec("class_weight", "str", "balanced", "class weights", choices=("balanced", "none")),
            OptionSpec("linear_tree", "bool", False, "linear models in leaves (cannot be exported to ONNX)"),
            OptionSpec("lags", "ints", (1, 2, 3, 5, 10, 20), "lags of the window's columns", minimum=1, maximum=1024),
        ]

    def _build(self, values: dict[str, Any], *, n_features: int, window: int) -> LightGBMConfig:
        return LightGBMConfig(**values)

    def config_from_dict(self, data: Mapping[str, Any]) -> LightGBMConfig:
        return LightGBMConfig.from_dict(data)

    def export_problem(self, config: Any) -> str | None:
        if config.linear_tree:
            return (
                "linear_tree=true cannot be exported to ONNX (onnxmltools drops the leaves' linear models), "
                "so the model could not be served; set linear_tree=false"
            )
        return None

    def fit(
        self,
        config: Any,
        train: WindowDataset,
        val: WindowDataset,
        trainer: TrainerConfig,
        *,
        callbacks: Sequence[Any] = (),
        resume: bool = False,
    ) -> _LightGBMFitted:
        import lightgbm as lgb

        cfg: LightGBMConfig = config
        tab = TabularConfig(lags=cfg.lags)
        t0 = timed()
        x_train, y_train = dataset_features(train, tab)
        x_val, y_val = dataset_features(val, tab)
        weights = None
        if cfg.class_weight == "balanced":
            counts = np.bincount(y_train, minlength=3).astype(np.float64)
            per_class = np.where(counts > 0, len(y_train) / (3 * np.maximum(counts, 1)), 0.0)
            weights = per_class[y_train]
        params = {
            "objective": "multiclass",
            "num_class": 3,
            "learning_rate": cfg.learning_rate,
            "num_leaves": cfg.num_leaves,
            "max_depth": cfg.max_depth,
            "min_child_samples": cfg.min_child_samples,
            "feature_fraction": cfg.feature_fraction,
            "bagging_fraction": cfg.bagging_fraction,
            "bagging_freq": 1 if cfg.bagging_fraction < 1.0 else 0,
            "lambda_l2": cfg.lambda_l2,
            "linear_tree": cfg.linear_tree,
            "metric": ["multi_logloss", "multi_error"],
            "seed": trainer.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": trainer.num_threads or 1,
            "verbosity": -1,
        }
        progress = FitProgress(callbacks, cfg.n_estimators)
        progress.call("on_train_start", progress)
        history: list[dict[str, float]] = []
        evals: dict[str, Any] = {}

        def report(env: Any) -> None:
            it = env.iteration + 1
            if it % cfg.report_every and it != env.end_iteration:
                return
            res = {(name, metric): value for name, metric, value, _ in env.evaluation_result_list}
            entry = {
                "epoch": float(it),
                "train_loss": float(res.get(("train", "multi_logloss"), np.nan)),
                "val_loss": float(res.get(("val", "multi_logloss"), np.nan)),
                "val_accuracy": 1.0 - float(res.get(("val", "multi_error"), np.nan)),
            }
            history.append(entry)
            progress.call("on_epoch_end", it, entry)
            if progress.stop_training:
                raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

        dtrain = lgb.Dataset(x_train, y_train, weight=weights, free_raw_data=False)
        dval = lgb.Dataset(x_val, y_val, reference=dtrain, free_raw_data=False)
        booster = lgb.train(
            params,
            dtrain,
            num_boost_round=cfg.n_estimators,
            valid_sets=[dtrain, dval],
            valid_names=["train", "val"],
            callbacks=[
                lgb.early_stopping(cfg.early_stopping_rounds, first_metric_only=True, verbose=False),
                lgb.record_evaluation(evals),
                report,
            ],
        )
        best = int(booster.best_iteration or booster.current_iteration())
        val_losses = evals.get("val", {}).get("multi_logloss") or [float("nan")]
        summary = FitSummary(
            history=history,
            best_epoch=best,
            best_metric=float(val_losses[best - 1]) if len(val_losses) >= best else float("nan"),
            monitor="val_loss",
            stopped_early=booster.current_iteration() < cfg.n_estimators,
            fit_seconds=timed() - t0,
            extra={"rounds": booster.current_iteration(), "columns": int(x_train.shape[1])},
        )
        if best < booster.current_iteration():  # keep only the best rounds: native and ONNX agree
            booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
        fitted = _LightGBMFitted(booster, self.name, cfg, tab, train.window, summary)
        progress.call("on_train_end", summary)
        return fitted
