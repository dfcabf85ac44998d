"""MLflow integration: ``get_mlflow_tracker`` / ``MLflowTracker`` (client-only, explicit run ids),
the project's experiments, and tracking store URI handling.

    from backend.ml_engine.mlflow_integration import get_mlflow_tracker
    tracker = get_mlflow_tracker(experiment_name="model_training")

Names are imported lazily: ``stores`` (URI masking, reachability checks) loads without importing
MLflow itself, so the command-line checks answer in a fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # experiments
    "EXPERIMENT_DESCRIPTIONS": "experiments",
    "NOTE_TAG": "experiments",
    "ensure_experiment": "experiments",
    "ensure_project_experiments": "experiments",
    "experiment_artifact_location": "experiments",
    "experiment_description": "experiments",
    # tracker
    "DEFAULT_FLUSH_EVERY": "mlflow_tracker",
    "FAILURE_TAG": "mlflow_tracker",
    "MODEL_ID_TAG": "mlflow_tracker",
    "NONFINITE_TAG": "mlflow_tracker",
    "MLflowCallback": "mlflow_tracker",
    "MLflowTracker": "mlflow_tracker",
    "RunsPage": "mlflow_tracker",
    "dataset_digest": "mlflow_tracker",
    "default_pip_requirements": "mlflow_tracker",
    "flatten_params": "mlflow_tracker",
    "get_mlflow_tracker": "mlflow_tracker",
    "run_to_dict": "mlflow_tracker",
    # stores
    "TrackingStoreUnavailable": "stores",
    "check_tracking_store": "stores",
    "diagnose_connection_error": "stores",
    "mask_uri": "stores",
    "resolve_tracking_uri": "stores",
    "store_kind": "stores",
}

__all__ = [
    "DEFAULT_FLUSH_EVERY",
    "EXPERIMENT_DESCRIPTIONS",
    "FAILURE_TAG",
    "MLflowCallback",
    "MLflowTracker",
    "MODEL_ID_TAG",
    "NONFINITE_TAG",
    "NOTE_TAG",
    "RunsPage",
    "TrackingStoreUnavailable",
    "check_tracking_store",
    "dataset_digest",
    "default_pip_requirements",
    "diagnose_connection_error",
    "ensure_experiment",
    "ensure_project_experiments",
    "experiment_artifact_location",
    "experiment_description",
    "flatten_params",
    "get_mlflow_tracker",
    "mask_uri",
    "resolve_tracking_uri",
    "run_to_dict",
    "store_kind",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .experiments import (
        EXPERIMENT_DESCRIPTIONS,
        NOTE_TAG,
        ensure_experiment,
        ensure_project_experiments,
        experiment_artifact_location,
        experiment_description,
    )
    from .mlflow_tracker import (
        DEFAULT_FLUSH_EVERY,
        FAILURE_TAG,
        MODEL_ID_TAG,
        NONFINITE_TAG,
        MLflowCallback,
        MLflowTracker,
        RunsPage,
        dataset_digest,
        default_pip_requirements,
        flatten_params,
        get_mlflow_tracker,
        run_to_dict,
    )
    from .stores import (
        TrackingStoreUnavailable,
        check_tracking_store,
        diagnose_connection_error,
        mask_uri,
        resolve_tracking_uri,
        store_kind,
    )
