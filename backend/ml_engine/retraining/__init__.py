"""Retraining pipeline: triggers, walk-forward validation, gated auto-promotion (experiment ``auto_retraining``).

Package: ``_config`` (RetrainingConfig, triggers), ``_results`` (what an attempt answers),
``_pipeline`` (RetrainingPipeline), ``_cli`` (the command line). The guide's path
``backend.ml_engine.retraining_pipeline`` re-exports it and runs the CLI.

Library use::

    from backend.ml_engine.retraining_pipeline import RetrainingConfig, RetrainingPipeline

    pipeline = RetrainingPipeline(config=RetrainingConfig(model_name="hybrid_cnn_lstm", n_folds=5))
    result = pipeline.run(trigger="drift")        # checks drift first; retrains only if it finds some
    result.status, result.reason, result.version, result.promoted

    report = pipeline.check_drift()               # DriftReport: per-feature PSI / KS table
    pipeline.serve(interval_minutes=1440)         # APScheduler, blocking

CLI::

    python -m backend.ml_engine.retraining_pipeline run --trigger manual
    python -m backend.ml_engine.retraining_pipeline run --trigger drift            # cron-friendly one-shot
    python -m backend.ml_engine.retraining_pipeline check-drift                    # exit 0 / 3 (drift)
    python -m backend.ml_engine.retraining_pipeline serve --cron "0 3 * * *" --check-interval 60

Long work shows progress on stderr (a line per stage, a bar per fold and for the final model);
``--no-progress`` for cron.

Triggers (run tag ``trigger``; the guide filters ``tags.trigger = 'scheduled'``)
-------------------------------------------------------------------------------
* ``scheduled``: by the ``serve`` scheduler (interval or cron) or a one-shot ``run --trigger
  scheduled`` from the system cron; retrains unconditionally (cooldown applies).
* ``drift``: `drift.compare_features` of the last ``recent_days`` of the live data against the
  production version's training rows (see ``drift.py`` for the reference and the thresholds);
  retrains only when the data drifted.
* ``performance_drop``: the production model's accuracy / macro F1 on recent candles whose label
  horizon has passed, against its test-time values (``metadata.json["test_metrics"]``); retrains
  when either fell by more than ``performance_margin``.
* ``manual``: always retrains (CLI, API).

``force`` skips the check and the cooldown, never the lock.

One retraining (one MLflow run in ``auto_retraining``)
------------------------------------------------------
tags ``trigger``, ``model_name``, ``run_kind=retraining``, ``training_mode=auto_retraining``;
the drift report (``drift_report.json/.csv/.png``) and the performance report when computed;
walk-forward over ``n_folds`` folds with the production model scored on the same test windows
(each fold a nested run ``fold_<k>_of_<K>`` with its own learning curves and test metrics; in the
parent ``wf_*`` / ``wf_production_*`` at step = fold, ``walk_forward_*_mean/_std`` summaries,
``walk_forward.json``); the final candidate trained by the orchestrator's `run_training` on the
whole window (its params, epoch curves, test metrics, ONNX and model are logged into this run) and
registered; then the registry's gate decides (`ModelRegistry.promote` through
`PromotionGate`), comparing candidate and production on the walk-forward folds (registry
``evaluator``). Tags ``promotion_decision`` (``promoted`` / ``refused``) and ``promotion_reason``;
the registry writes its history entry. A failure anywhere ends the run FAILED with tag
``failure_reason``; production is only ever moved by the last step, so it stays untouched.

Guardrails
----------
* **One retraining per model at a time, across processes and machines**: a lease of the lock
  module (:mod:`backend.ml_engine.locks`, namespace ``retraining``): a PostgreSQL advisory lock on
  the coordination database (``ML_JOBS_DATABASE_URL`` or a PostgreSQL tracking store) whatever
  the tracking URI is, a file lock when everything runs on one machine. A second attempt is
  refused at once (status ``refused``) with who holds it. The lease is re-checked after every
  epoch and right before registering and promoting: a retraining that lost its database
  connection (and with it the lock) stops there, FAILED, and never touches the registry.
* **Cooldown**: the start time of the model's last retraining run (``tags.model_name`` and
  ``tags.run_kind = 'retraining'`` in ``auto_retraining``, newest first), FAILED runs included, so
  a retraining that keeps failing is not retried on every tick.

Recipe of the candidate: window, label and feature configuration and model architecture come from
the production version's metadata (so both predict the same labels and the comparison is fair),
unless given in the config; epochs, batch size and learning rate from the config or the settings.
"""

from ._cli import (
    EXIT_BAD_INPUT,
    EXIT_DRIFT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    CliProgress,
    build_parser,
    config_from_args,
    main,
)
from ._config import RUN_KIND_DRIFT_CHECK, RUN_KIND_FOLD, RUN_KIND_RETRAINING, TRIGGERS, RetrainingConfig
from ._pipeline import LOCK_NAMESPACE, LogProgress, Progress, RetrainingPipeline
from ._results import (
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_REFUSED,
    STATUS_SKIPPED,
    NoProductionModel,
    PerformanceReport,
    ProductionVersion,
    RetrainingResult,
)

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_DRIFT",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "LOCK_NAMESPACE",
    "RUN_KIND_DRIFT_CHECK",
    "RUN_KIND_FOLD",
    "RUN_KIND_RETRAINING",
    "STATUS_COMPLETED",
    "STATUS_FAILED",
    "STATUS_REFUSED",
    "STATUS_SKIPPED",
    "TRIGGERS",
    "CliProgress",
    "LogProgress",
    "NoProductionModel",
    "PerformanceReport",
    "ProductionVersion",
    "Progress",
    "RetrainingConfig",
    "RetrainingPipeline",
    "RetrainingResult",
    "build_parser",
    "config_from_args",
    "main",
]
