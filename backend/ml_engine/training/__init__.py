"""Training orchestrator: candles -> dataset -> HybridCNN-LSTM -> evaluation -> outputs and MLflow.

Library use (the guide's example 1)::

    orchestrator = TrainingOrchestrator()
    result = await orchestrator.train_model(model_name="hybrid_cnn_lstm", run_name="my_experiment_v1",
                                            export_onnx=True, auto_promote=True, min_accuracy_for_promotion=0.75)

CLI (the guide's flags)::

    python -m backend.ml_engine.training_orchestrator --epochs 100 --batch-size 128 --lr 0.0005 --date-range 60

A training writes into ``<output_dir>/<run_name>/``: ``model.pt`` (state dict and config), ``model.onnx``
(parity-checked against PyTorch), ``metadata.json``, PNG plots and per-epoch checkpoints; and, when
tracking is on, logs all of it into the MLflow experiment ``model_training`` and registers a version.

Package: ``_request`` (TrainingRequest), ``_provenance`` (code version, data hash),
``_pipeline`` (load, prepare, run_training), ``_outcome`` (TrainingOutcome), ``_orchestrator``
(TrainingOrchestrator), ``_cli``. The guide's path ``backend.ml_engine.training_orchestrator``
re-exports it and runs the CLI.

Seams: :func:`load_training_data` reads and validates the candles (before any MLflow run exists:
bad data or a ``--date-range`` longer than the data is refused without leaving an empty run),
:func:`run_training` trains, evaluates and logs, and returns a frozen :class:`TrainingOutcome`;
the guide's result dict is built from it only in :meth:`TrainingOrchestrator.train_model`.
"""

from ._cli import DEMO_OVERRIDES, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, build_parser, main
from ._orchestrator import TrainingOrchestrator, reap_orphaned_runs
from ._outcome import GUIDE_METRIC_ALIASES, SplitRows, TrainingOutcome, version_tags
from ._pipeline import TrainingData, TrainingFailed, load_training_data, prepare_training_data, run_training
from ._provenance import code_version, data_hash, library_versions
from ._request import REQUEST_FILE, DataSpec, TrainingRequest

__all__ = [
    "DEMO_OVERRIDES",
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_OK",
    "GUIDE_METRIC_ALIASES",
    "REQUEST_FILE",
    "DataSpec",
    "SplitRows",
    "TrainingData",
    "TrainingFailed",
    "TrainingOrchestrator",
    "TrainingOutcome",
    "TrainingRequest",
    "build_parser",
    "code_version",
    "data_hash",
    "library_versions",
    "load_training_data",
    "main",
    "prepare_training_data",
    "reap_orphaned_runs",
    "run_training",
    "version_tags",
]
