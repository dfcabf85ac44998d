"""The project's MLflow experiments: names, descriptions, artifact locations, idempotent creation.

Three experiments, named in the user's guide:

* ``trading_bot_ml`` (default, ``MLFLOW_EXPERIMENT_NAME``): general and ad-hoc runs;
* ``model_training``: manual training through ``TrainingOrchestrator``;
* ``auto_retraining``: runs of the retraining pipeline (triggers scheduled / drift /
  performance_drop, walk-forward validation, automatic promotion).

and two more, each created by its first run: ``model_comparison``, the leaderboards of
``python -m backend.ml_engine.leaderboard`` (every family against the naive baselines), and
``hyperparameter_search``, the Optuna studies of ``python -m backend.ml_engine.tuning``.

Each is created with a description in the ``mlflow.note.content`` tag (the text the MLflow UI
shows on the experiment page), Russian first, English second.

Artifact location of an experiment is ``<MLFLOW_ARTIFACT_LOCATION>/<experiment name>``:

* a local path (``./mlruns/artifacts``) is resolved to an absolute ``file://`` URI, so runs
  started from any working directory land in one place;
* a URI with a scheme (``s3://bucket/mlflow``, ``mlflow-artifacts:/``) gets ``/<name>`` appended;
* with an MLflow tracking server (``http://...``) a *local* path would name a folder on the
  client's machine that the server and other clients cannot see, so the location is left to the
  server (``--artifacts-destination``, proxied as ``mlflow-artifacts:/``); a remote URI root is
  still honoured.

An experiment's artifact location is fixed when it is created; changing
``MLFLOW_ARTIFACT_LOCATION`` later affects only experiments created afterwards (MLflow's rule).

:func:`ensure_experiment` is idempotent and safe when two processes create the same
experiment at once: the loser of the race gets ``RESOURCE_ALREADY_EXISTS`` and re-reads.
A deleted experiment of that name is restored (MLflow keeps deleted names reserved).
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from mlflow import MlflowClient
from mlflow.entities import LifecycleStage
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

from ..config import (
    EXPERIMENT_COMPARISON,
    EXPERIMENT_DEFAULT,
    EXPERIMENT_RETRAINING,
    EXPERIMENT_TRAINING,
    EXPERIMENT_TUNING,
)
from .stores import store_kind

logger = logging.getLogger(__name__)

#: The tag the MLflow UI renders as an experiment's (and a run's) description.
NOTE_TAG = MLFLOW_RUN_NOTE

#: Description each known experiment is created with (Russian, then English).
EXPERIMENT_DESCRIPTIONS: dict[str, str] = {
    EXPERIMENT_DEFAULT: (
        "Эксперимент по умолчанию (MLFLOW_EXPERIMENT_NAME): общие и разовые запуски, "
        "не относящиеся к ручному обучению или автопереобучению.\n\n"
        "Default experiment: general and ad-hoc runs that are neither manual training nor "
        "automatic retraining."
    ),
    EXPERIMENT_TRAINING: (
        "Ручное обучение через TrainingOrchestrator: параметры модели и тренера (model_*, "
        "trainer_*), метрики по эпохам (train_loss, val_accuracy, ...), итоговые test_*, "
        "модель PyTorch с сигнатурой, ONNX-экспорт, metadata.json, датасет.\n\n"
        "Manual training through TrainingOrchestrator: model and trainer params, per-epoch "
        "metrics, final test metrics, PyTorch model with signature, ONNX export, metadata, dataset."
    ),
    EXPERIMENT_RETRAINING: (
        "Автоматическое переобучение (RetrainingPipeline): причина запуска в теге trigger "
        "(scheduled, drift, performance_drop), результаты walk-forward валидации, "
        "автоматическое продвижение в production.\n\n"
        "Automatic retraining (RetrainingPipeline): the trigger tag (scheduled, drift, "
        "performance_drop), walk-forward validation results, automatic promotion to production."
    ),
    EXPERIMENT_COMPARISON: (
        "Сравнение моделей (python -m backend.ml_engine.leaderboard): каждое семейство моделей и наивные "
        "базовые линии на одних и тех же фолдах walk-forward; метрики с 95 % интервалами блочного бутстрепа "
        "(<семейство>_accuracy, _low, _high), p-значения парных тестов (<семейство>_vs_majority_p), "
        "таблица leaderboard.md, график, JSON и диаграмма надёжности.\n\n"
        "Model comparison (python -m backend.ml_engine.leaderboard): every model family and the naive "
        "baselines on the same walk-forward folds; metrics with 95 % block-bootstrap intervals, paired-test "
        "p-values against the baselines, the Markdown table, a chart, the JSON and a reliability diagram."
    ),
    EXPERIMENT_TUNING: (
        "Подбор гиперпараметров (python -m backend.ml_engine.tuning): один родительский запуск на исследование "
        "Optuna и вложенный запуск на каждое испытание (параметры, метрики по фолдам, состояние, хост). На "
        "родительском: лучшее значение на валидации, метрики отложенной выборки (holdout_*, прочитана один раз), "
        "дефлированный коэффициент Шарпа (dsr) и вероятность переобучения бэктеста (pbo), графики Optuna в HTML.\n\n"
        "Hyperparameter search (python -m backend.ml_engine.tuning): one parent run per Optuna study and a nested "
        "run per trial (params, per-fold metrics, state, host). On the parent: the best validation value, the "
        "holdout metrics (read once), the Deflated Sharpe Ratio and the Probability of Backtest Overfitting, and "
        "Optuna's plots as HTML."
    ),
}

_GENERIC_DESCRIPTION = "Эксперимент проекта Trading Bot ML.\n\nTrading Bot ML experiment."

_LOCAL_SCHEMES = ("", "file")


def experiment_description(name: str) -> str:
    """The description an experiment named ``name`` is created with."""
    return EXPERIMENT_DESCRIPTIONS.get(name, _GENERIC_DESCRIPTION)


def experiment_artifact_location(
    artifact_location_root: str | Path | None, name: str, tracking_uri: str | None = None
) -> str | None:
    """``<root>/<name>`` as an absolute URI, or None where the store should choose (see module doc)."""
    if artifact_location_root is None or str(artifact_location_root).strip() == "":
        return None
    root = str(artifact_location_root)
    scheme = urlsplit(root).scheme.lower()
    # A Windows drive letter parses as a one-letter scheme.
    is_local = scheme in _LOCAL_SCHEMES or len(scheme) == 1
    if is_local:
        if tracking_uri is not None and store_kind(tracking_uri) == "http":
            logger.info(
                "Artifact root %s is a local path and the tracking store is a server: "
                "experiment %r keeps the server's artifact location",
                root,
                name,
            )
            return None
        local = Path(urlsplit(root).path) if scheme == "file" else Path(root)
        return (local.expanduser().resolve() / name).as_uri()
    return f"{root.rstrip('/')}/{name}"


def _client_uri(client: MlflowClient) -> str | None:
    uri = getattr(client, "tracking_uri", None)
    return uri if isinstance(uri, str) else None


def ensure_experiment(
    client: MlflowClient,
    name: str,
    artifact_location_root: str | Path | None,
    description: str | None = None,
) -> str:
    """Return the id of experiment ``name``, creating it (with description and artifact location)
    if missing, restoring it if deleted, and adding the description tag if it has none.

    Idempotent; a concurrent creator winning the race is handled by re-reading.
    """
    note = description if description is not None else experiment_description(name)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = experiment_artifact_location(artifact_location_root, name, _client_uri(client))
        try:
            experiment_id = client.create_experiment(name, artifact_location=location, tags={NOTE_TAG: note})
            logger.info(
                "Created MLflow experiment %r (id %s, artifacts %s)", name, experiment_id, location or "server default"
            )
            return experiment_id
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            logger.debug("Experiment %r was created concurrently; re-reading", name)
            experiment = client.get_experiment_by_name(name)
            if experiment is None:  # pragma: no cover - deleted again in between
                raise
    if experiment.lifecycle_stage == LifecycleStage.DELETED:
        logger.warning("Experiment %r (id %s) was deleted; restoring it", name, experiment.experiment_id)
        client.restore_experiment(experiment.experiment_id)
    if not experiment.tags.get(NOTE_TAG):
        client.set_experiment_tag(experiment.experiment_id, NOTE_TAG, note)
    return experiment.experiment_id


def ensure_project_experiments(client: MlflowClient, artifact_location_root: str | Path | None) -> dict[str, str]:
    """Create the three experiments of the user's guide if missing; ``{name: experiment_id}``."""
    return {
        name: ensure_experiment(client, name, artifact_location_root)
        for name in (EXPERIMENT_DEFAULT, EXPERIMENT_TRAINING, EXPERIMENT_RETRAINING)
    }
