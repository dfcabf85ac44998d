"""Logging a model (PyTorch, LightGBM or scikit-learn) as an MLflow 3 LoggedModel of a run, with the tracker's own client.

``mlflow.pytorch.log_model`` ends in ``Model.log``, which resolves the *global* tracking URI and
the fluent active run, and registers through a fresh global client. :func:`log_pytorch_model`
does the same steps with the caller's client: ``create_logged_model`` (state PENDING),
``mlflow.pytorch.save_model`` into a temporary folder whose ``MLmodel`` carries the model id and
run id, ``log_model_artifacts``, ``log_outputs`` (the run page lists the model) and
``finalize_logged_model`` (READY, or FAILED on error).

With a ``serving_example`` (a real candle frame, what the training passes) the saved folder also
becomes a candle pyfunc before it is uploaded: :func:`backend.ml_engine.predictor._pyfunc.add_pyfunc_flavor`
makes the predictor's loader its ``python_function`` flavor, writes the candle signature and the
candle input example (in place of the tensor ones), and checks through MLflow's serving path that
the flavor answers its own example. The PyTorch flavor is kept as it is.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from mlflow.entities import LoggedModelOutput, LoggedModelStatus

from ._values import installed_version, quiet_logger

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from mlflow import MlflowClient

__all__ = ["FLAVORS", "MAX_EXAMPLE_ROWS", "SerializationFormat", "default_pip_requirements", "log_pytorch_model"]

logger = logging.getLogger("backend.ml_engine.mlflow_integration.mlflow_tracker")

#: Rows of the input example stored with a model (the signature keeps the batch dim as -1).
MAX_EXAMPLE_ROWS = 5

SerializationFormat = Literal["pickle", "pt2"]

#: MLflow flavors a family's native model is saved with (``FittedModel.mlflow_flavor``).
FLAVORS = ("pytorch", "lightgbm", "sklearn")

#: ``customize(model_dir)`` edits the saved model folder before it is uploaded (adds files, flavors).
FolderHook = Callable[[Path], None]


def default_pip_requirements(
    serialization_format: SerializationFormat = "pickle", flavor: str = "pytorch"
) -> list[str]:
    """Pinned requirements written with every model (MLflow adds ``mlflow==<installed>`` itself)."""
    native = {"pytorch": "torch", "lightgbm": "lightgbm", "sklearn": "scikit-learn"}[flavor]
    packages = [native, "numpy", "onnxruntime"]
    if serialization_format == "pickle" or flavor == "sklearn":
        packages.append("cloudpickle")
    reqs = []
    for package in packages:
        version = installed_version(package)
        if version is not None:
            reqs.append(f"{package}=={version}")
    return reqs


def to_numpy(example: Any) -> np.ndarray:
    try:
        import torch

        if isinstance(example, torch.Tensor):
            return np.asarray(example.detach().cpu().numpy())
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(example)


def log_pytorch_model(
    client: MlflowClient,
    experiment_id: str,
    run_id: str,
    model: Any,
    *,
    flavor: str = "pytorch",
    name: str = "model",
    signature: Any = None,
    input_example: Any = None,
    onnx_path: str | os.PathLike[str] | None = None,
    artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
    pip_requirements: Sequence[str] | None = None,
    serialization_format: SerializationFormat = "pickle",
    metadata: Mapping[str, Any] | None = None,
    step: int = 0,
    customize: FolderHook | None = None,
    serving_example: pd.DataFrame | None = None,
) -> str:
    """Log ``model`` into run ``run_id``; returns the LoggedModel id (see ``MLflowTracker.log_model``).

    ``flavor``: how the native model is saved: ``pytorch`` (a ``torch.nn.Module``; the signature is
    inferred from its output when not given), ``lightgbm`` (a Booster) or ``sklearn``; the last two
    need ``signature``.

    ``customize`` runs on the saved folder first; then, with ``serving_example``, the folder becomes a
    candle pyfunc (module docstring), which needs ``onnx_path`` (``model.onnx``) and a
    ``metadata.json`` among ``artifacts``."""
    import mlflow.pytorch
    import torch
    from mlflow.models import Model, infer_signature

    if input_example is None:
        raise ValueError(
            "log_model needs an input_example (a real input batch): the signature and the "
            "stored example come from it, so the registry shows the input/output schema"
        )
    if serialization_format not in ("pickle", "pt2"):
        raise ValueError("serialization_format must be 'pickle' or 'pt2'")
    if flavor not in FLAVORS:
        raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}, got {flavor!r}")
    if flavor == "pytorch" and not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if flavor != "pytorch" and signature is None:
        raise ValueError(f"log_model: a {flavor} model needs signature=")
    onnx_file = Path(onnx_path) if onnx_path is not None else None
    extra = {str(k): Path(v) for k, v in (artifacts or {}).items()}
    for label, path in ([("onnx_path", onnx_file)] if onnx_file else []) + list(extra.items()):
        if not path.exists():
            raise FileNotFoundError(f"{label}: {path} does not exist")
    if serving_example is not None:
        from ..predictor._bundle import METADATA_FILE, ONNX_FILE

        if onnx_file is None or onnx_file.name != ONNX_FILE:
            raise ValueError(f"serving_example: the candle pyfunc runs {ONNX_FILE}; pass onnx_path=<...>/{ONNX_FILE}")
        if not any(p.name == Path(METADATA_FILE).name and p.is_file() for p in extra.values()):
            raise ValueError(
                f"serving_example: the candle pyfunc needs the feature pipeline; pass "
                f"artifacts={{'metadata.json': <path of {Path(METADATA_FILE).name}>}}"
            )

    started = time.perf_counter()
    example = to_numpy(input_example)
    if example.ndim >= 1 and example.shape[0] > MAX_EXAMPLE_ROWS:
        example = example[:MAX_EXAMPLE_ROWS]
    if example.dtype == np.float64:
        logger.warning("input_example is float64; models here take float32 (logging it as given)")

    # A CPU, eval-mode copy: the caller's module (maybe on a GPU, maybe training) is untouched.
    saved = model
    if flavor == "pytorch":
        try:
            saved = copy.deepcopy(model).to("cpu").eval()
        except Exception as exc:  # noqa: BLE001 - a module that cannot be copied is saved as it is
            logger.warning("Could not copy the model (%s); saving it as it is", exc)
            saved = model
    if signature is None:
        with torch.no_grad():
            output = saved(torch.from_numpy(np.ascontiguousarray(example)))
        if not isinstance(output, torch.Tensor):
            raise TypeError("signature inference needs a model returning one tensor; pass signature=")
        signature = infer_signature(example, output.detach().cpu().numpy())
    reqs = (
        list(pip_requirements)
        if pip_requirements is not None
        else default_pip_requirements(serialization_format, flavor)
    )

    run_params = client.get_run(run_id).data.params
    logged = client.create_logged_model(
        experiment_id=experiment_id,
        name=name,
        source_run_id=run_id,
        params=dict(run_params),
        tags={"flavor": flavor, **({"serialization_format": serialization_format} if flavor == "pytorch" else {})},
    )
    model_id = str(logged.model_id)
    try:
        with tempfile.TemporaryDirectory(prefix="mlflow-model-") as tmp:
            local = os.path.join(tmp, "model")
            mlflow_model = Model(
                artifact_path=logged.artifact_location,
                model_uuid=model_id,
                run_id=run_id,
                model_id=model_id,
                metadata=dict(metadata) if metadata else None,
            )
            if flavor == "pytorch":
                with quiet_logger("mlflow.pytorch"):  # pickle is chosen on purpose: see the tracker's docstring
                    mlflow.pytorch.save_model(
                        saved,
                        local,
                        mlflow_model=mlflow_model,
                        signature=signature,
                        input_example=example,
                        pip_requirements=reqs,
                        serialization_format=serialization_format,
                        metadata=dict(metadata) if metadata else None,
                    )
            else:
                import importlib

                save = importlib.import_module(f"mlflow.{flavor}").save_model
                save(
                    saved,
                    local,
                    mlflow_model=mlflow_model,
                    signature=signature,
                    input_example=example,
                    pip_requirements=reqs,
                    metadata=dict(metadata) if metadata else None,
                )
            if onnx_file is not None:
                shutil.copy2(onnx_file, os.path.join(local, onnx_file.name))
            for path in extra.values():
                target = os.path.join(local, "artifacts", path.name)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                if path.is_dir():
                    shutil.copytree(path, target)
                else:
                    shutil.copy2(path, target)
            if customize is not None:
                customize(Path(local))
            if serving_example is not None:
                from ..predictor._pyfunc import add_pyfunc_flavor

                add_pyfunc_flavor(Path(local), serving_example)
            client.log_model_artifacts(model_id, local)
        client.log_outputs(run_id, [LoggedModelOutput(model_id, step)])
        client.finalize_logged_model(model_id, LoggedModelStatus.READY)
    except BaseException:
        with contextlib.suppress(Exception):
            client.finalize_logged_model(model_id, LoggedModelStatus.FAILED)
        raise
    if onnx_file is not None:
        client.log_artifact(run_id, os.fspath(onnx_file))
    for path in extra.values():
        client.log_artifact(run_id, os.fspath(path))
    logger.info(
        "Logged model %r of run %s as models:/%s (%s, %.2f s)",
        name,
        run_id,
        model_id,
        serialization_format,
        time.perf_counter() - started,
    )
    return model_id
