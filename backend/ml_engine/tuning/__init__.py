"""Hyperparameter search (issue 15): search spaces in TOML, sampled by Optuna.

:func:`load_search_space` reads the bundled defaults (``search_space.toml``) or a user's file laid
over them; :meth:`SearchSpace.suggest` turns an Optuna trial into a family, its options, trainer
overrides and data fields (:class:`TrialParams`); :meth:`SearchSpace.fingerprint` identifies a space
so that a study is never continued with a different one. :func:`evaluate_trial` scores a trial on
walk-forward validation folds of :class:`SearchData`'s search region; the final holdout is read once.
:func:`run_study` runs an Optuna study of a :class:`TuningConfig` in this process (RDB storage, MLflow parent
and trial runs, DSR and PBO); :class:`StudyHandle` is the same study piece by piece for trials run as jobs
(:mod:`backend.services.tuning`); ``python -m backend.ml_engine.tuning run|status|best|stop|resume|register``
is its command line.
"""

from __future__ import annotations

from ._objective import (
    OBJECTIVES,
    HoldoutAlreadyRead,
    HoldoutScore,
    SearchData,
    TrialScore,
    evaluate_trial,
)
from ._space import (
    DEFAULT_SPACE_FILE,
    Param,
    SearchSpace,
    SearchSpaceError,
    TrialParams,
    load_search_space,
    parse_search_space,
)
from ._study import (
    StudyHandle,
    StudyProgress,
    StudyResult,
    TuningConfig,
    TuningInputError,
    default_storage,
    load_study,
    register_best,
    request_stop,
    retried_trial_number,
    run_study,
    study_progress,
    study_summary,
)

__all__ = [
    "DEFAULT_SPACE_FILE",
    "OBJECTIVES",
    "HoldoutAlreadyRead",
    "HoldoutScore",
    "SearchData",
    "TrialScore",
    "evaluate_trial",
    "Param",
    "SearchSpace",
    "SearchSpaceError",
    "TrialParams",
    "load_search_space",
    "parse_search_space",
    "StudyHandle",
    "StudyProgress",
    "StudyResult",
    "TuningConfig",
    "TuningInputError",
    "default_storage",
    "load_study",
    "register_best",
    "request_stop",
    "retried_trial_number",
    "run_study",
    "study_progress",
    "study_summary",
]
