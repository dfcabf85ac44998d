"""One hyperparameter study: Optuna with RDB storage, trials in this process, MLflow parent and child runs.

:func:`run_study` creates (or loads, to resume or extend) the Optuna study of a :class:`TuningConfig`,
runs ``n_trials`` more trials with :func:`evaluate_trial` (walk-forward validation folds of the
search region only), then reads the final holdout ONCE per study for the best trial and computes the
Deflated Sharpe Ratio of the winner and the Probability of Backtest Overfitting over the completed
trials' out-of-sample net returns. Everything a later ``status`` or ``best`` needs lives in the study's
user attributes (so they need neither the data nor MLflow); the holdout's score is kept there too and
never recomputed: an extended study whose best trial changed still shows the holdout of the trial it
was read for (``holdout_trial``), because reading it again would be peeking.

MLflow (experiment ``hyperparameter_search``): one parent run per study, created by the first call
and reopened by later ones (its id is a study attribute), and one nested child run per trial
(params, per-fold metrics, state, host). Runs are addressed by explicit id through the client.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import math
import socket
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from ..config import EXPERIMENT_TUNING
from ..signal_policy import SignalPolicy
from ..training import DataSpec
from ._objective import OBJECTIVES, STEP_STRIDE, SearchData, evaluate_trial
from ._space import SearchSpace, SearchSpaceError, TrialParams, load_search_space

if TYPE_CHECKING:  # pragma: no cover
    import optuna
    from mlflow import MlflowClient

    from ..config import Settings

__all__ = [
    "PRUNERS",
    "StudyResult",
    "TuningConfig",
    "RegisteredBest",
    "StudyHandle",
    "StudyProgress",
    "TuningInputError",
    "default_storage",
    "register_best",
    "request_stop",
    "retried_trial_number",
    "run_study",
    "study_progress",
    "study_summary",
]

logger = logging.getLogger("backend.ml_engine.tuning")

PRUNERS = ("median", "hyperband", "none")
#: ``--quick``: the last 4 days, 1 epoch, 2 folds.
QUICK_OVERRIDES: dict[str, Any] = {"date_range": 4.0, "epochs": 1, "folds": 2}
PLOTS = ("optimization_history", "param_importances", "parallel_coordinate", "slice")
Progress = Callable[[str, float], None]

_FLAT_KEYS = (
    "data",
    "symbols",
    "timeframe",
    "date_range",
    "session",
    "window",
    "horizon",
    "space_path",
    "space_toml",
    "family",
    "objective",
    "n_trials",
    "holdout_frac",
    "folds",
    "epochs",
    "seed",
    "pruner",
    "study_name",
    "storage",
    "model_options",
)


class TuningInputError(ValueError):
    """Bad input found before any trial runs (space, family, data, a study with another space)."""


def default_storage(settings: Settings) -> str:
    """``ML_TUNING_STORAGE``, else ``sqlite:///<ML_OUTPUT_DIR>/optuna.db`` (the folder is created)."""
    if settings.tuning_storage is not None and settings.tuning_storage.get_secret_value().strip():
        return settings.tuning_storage.get_secret_value().strip()
    folder = Path(settings.output_dir).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'optuna.db'}"


@dataclass
class TuningConfig:
    """What one study searches, on which data, for which objective, and where it is stored."""

    data: DataSpec
    space_path: str | None = None
    """A TOML search space laid over the bundled defaults; None: the bundled ``search_space.toml``."""
    space_toml: str | None = None
    """The same as TOML text (the API's ``space``); wins over :attr:`space_path`."""
    family: str | None = None
    """Search this family only; None: the space's families (``[search] family``)."""
    objective: str = "accuracy"
    n_trials: int = 20
    """Trials to ADD in this call (a loaded study keeps its earlier ones)."""
    holdout_frac: float = 0.2
    folds: int = 3
    epochs: int = 5
    """Most epochs of the networks (early stopping applies); the tabular families ignore it."""
    window: int = 60
    """The window when the space does not search it."""
    horizon: int = 6
    seed: int = 42
    pruner: str = "median"
    study_name: str | None = None
    """None: ``<family or families>-<data digest[:10]>-<objective>``."""
    storage: str | None = None
    """Optuna RDB storage URL; None: :func:`default_storage`."""
    policy: SignalPolicy = field(default_factory=SignalPolicy)
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Fixed (not searched) options per family, e.g. ``{"lightgbm": {"n_estimators": 50}}``."""

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose one of: {', '.join(OBJECTIVES)}")
        if self.pruner not in PRUNERS:
            raise ValueError(f"unknown pruner {self.pruner!r}; choose one of: {', '.join(PRUNERS)}")
        for name, lo in (("n_trials", 0), ("folds", 1), ("epochs", 1), ("window", 2), ("horizon", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"TuningConfig: {name} must be an int >= {lo}, got {value!r}")
        if not 0.0 < float(self.holdout_frac) < 0.9:
            raise ValueError(f"TuningConfig: holdout_frac must be in (0, 0.9), got {self.holdout_frac!r}")
        if self.family is not None:
            self.family = self.family.strip().lower() or None
        self.model_options = {str(k).strip().lower(): dict(v) for k, v in self.model_options.items()}

    def load_space(self) -> SearchSpace:
        """The search space, narrowed to :attr:`family`; one-line errors for a bad file or family."""
        from ..families import get_family

        space = load_search_space(self.space_path, text=self.space_toml)
        if self.family is not None:
            name = get_family(self.family).name  # UnknownFamilyError names the known ones
            if name not in space.families and name not in space.tables:
                raise SearchSpaceError(
                    f"family {name!r} is not in the search space (families: {', '.join(space.families)})"
                )
            space = space.for_family(name)
        for fam in space.families:
            get_family(fam)
        return space

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["policy"] = self.policy.to_dict()
        return d

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TuningConfig:
        """Data, window, horizon and seed from ``settings``; the rest from the defaults. Overrides
        (None = not given): the data flags of the leaderboard and the fields of this class."""
        unknown = sorted(set(overrides) - set(_FLAT_KEYS))
        if unknown:
            raise ValueError(f"TuningConfig.from_settings: unknown overrides {unknown}")
        o = {k: v for k, v in overrides.items() if v is not None}
        data = DataSpec(
            path=str(o.get("data", settings.data_path)),
            symbols=list(o.get("symbols") or settings.symbol_list),
            timeframe=o.get("timeframe", settings.timeframe),
            date_range_days=float(o["date_range"]) if "date_range" in o else None,
            max_fill_gap=int(settings.max_fill_gap),
            table=settings.candles_table,
            session=str(o.get("session", settings.session)),
        )
        kwargs = {k: o[k] for k in _FLAT_KEYS[6:] if k in o and k not in ("window", "horizon", "seed")}
        return cls(
            data=data,
            window=int(o.get("window", settings.window)),
            horizon=int(o.get("horizon", settings.horizon)),
            seed=int(o.get("seed", settings.seed)),
            **kwargs,
        )


@dataclass
class StudyResult:
    """A study after this call: its trials, the best one, the holdout read once, DSR and PBO."""

    study_name: str
    storage: str
    direction: str
    n_trials: int
    states: dict[str, int]
    best_trial: int | None
    best_value: float | None
    best_params: dict[str, Any]
    holdout: dict[str, Any] | None
    dsr: dict[str, float] | None
    pbo: dict[str, float] | None
    run_id: str | None = None
    wall_seconds: float = 0.0
    new_trials: int = 0
    artifacts: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        """What ``best`` prints."""
        out = [
            f"study       {self.study_name} ({self.direction}, {self.n_trials} trials: "
            + ", ".join(f"{k.lower()} {v}" for k, v in sorted(self.states.items()))
            + ")"
        ]
        if self.best_trial is None:
            return [*out, "best        no completed trial yet"]
        out.append(f"best trial  #{self.best_trial}")
        out.append(f"validation  {_fmt(self.best_value)}")
        for key, value in sorted(self.best_params.items()):
            out.append(f"  {key} = {value}")
        if self.holdout:
            metrics = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(self.holdout["metrics"].items()))
            note = "" if self.holdout["trial"] == self.best_trial else " (read for that trial, not re-read)"
            out.append(f"holdout     trial #{self.holdout['trial']}{note}: {metrics}")
        out.append(
            "DSR         "
            + (
                f"{_fmt(self.dsr['dsr'])} (N={int(self.dsr['n_trials'])}, SR0 {_fmt(self.dsr['sr0'])})"
                if self.dsr
                else "n/a"
            )
        )
        out.append(
            "PBO         "
            + (
                f"{_fmt(self.pbo['pbo'])} ({int(self.pbo['n_trials'])} trials, {int(self.pbo['n_obs'])} rows)"
                if self.pbo
                else "n/a (fewer than 2 completed trials)"
            )
        )
        if self.run_id:
            out.append(f"MLflow      run {self.run_id} in experiment '{EXPERIMENT_TUNING}'")
        return out


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{float(v):.4f}"


# ------------------------------------------------------------------------------ compact series
def _pack_rows(rows: np.ndarray) -> list[list[int]]:
    """Ascending rows as [start, stop) ranges (the validation windows are contiguous stretches)."""
    if rows.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [rows.size]])
    return [[int(rows[a]), int(rows[b - 1]) + 1] for a, b in zip(starts, stops, strict=True)]


def _unpack_rows(ranges: list[list[int]]) -> np.ndarray:
    if not ranges:
        return np.empty(0, dtype=np.int64)
    return np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in ranges])


def _pack_floats(values: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.asarray(values, dtype="<f8").tobytes(), 6)).decode("ascii")


def _unpack_floats(text: str) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype="<f8").copy()


def trial_returns(trial: optuna.trial.FrozenTrial) -> tuple[np.ndarray, np.ndarray] | None:
    """(rows, net returns per bar) kept in a trial's user attributes, or None."""
    rows, net = trial.user_attrs.get("oos_rows"), trial.user_attrs.get("oos_net")
    if rows is None or net is None:
        return None
    return _unpack_rows(rows), _unpack_floats(net)


# ------------------------------------------------------------------------------ overfitting
def _sharpe(net: np.ndarray) -> float:
    from ..overfitting import sample_stats

    try:
        return sample_stats(net)[0]
    except ValueError:  # constant (never trades) or too short: no edge
        return 0.0


def overfitting_stats(
    trials: list[optuna.trial.FrozenTrial], best: optuna.trial.FrozenTrial
) -> tuple[dict[str, float] | None, dict[str, float] | None]:
    """(DSR of the best trial, PBO over the completed trials), each None when undefined."""
    from ..overfitting import dsr_of_trials, probability_of_backtest_overfitting

    series = {t.number: r for t in trials if (r := trial_returns(t)) is not None}
    dsr: dict[str, float] | None = None
    if best.number in series and series:
        try:
            res = dsr_of_trials(series[best.number][1], [_sharpe(net) for _, net in series.values()])
            dsr = {
                k: float(getattr(res, k))
                for k in ("dsr", "psr", "sr0", "sharpe", "sharpe_variance", "n_trials", "n_obs", "skewness", "kurtosis")
            }
        except ValueError as exc:
            logger.warning("no DSR: %s", exc)
    pbo: dict[str, float] | None = None
    if len(series) >= 2:
        common = None
        for rows, _ in series.values():
            common = rows if common is None else np.intersect1d(common, rows, assume_unique=True)
        assert common is not None
        n_splits = min(16, (common.size // 4) // 2 * 2)
        if n_splits >= 2:
            matrix = np.column_stack([net[np.searchsorted(rows, common)] for rows, net in series.values()])
            res_p = probability_of_backtest_overfitting(matrix, n_splits=n_splits)
            pbo = {
                "pbo": float(res_p.pbo),
                "probability_of_loss": float(res_p.probability_of_loss),
                "n_trials": float(matrix.shape[1]),
                "n_obs": float(matrix.shape[0]),
                "n_splits": float(n_splits),
            }
    return dsr, pbo


# ------------------------------------------------------------------------------ the study
def _pruner(name: str, folds: int) -> optuna.pruners.BasePruner:
    """Median (after 2 trials) or Hyperband over the steps of :data:`STEP_STRIDE` (epochs within folds)."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(folds, 1) * STEP_STRIDE)
    return optuna.pruners.NopPruner()


def _same_database(a: str, b: str) -> bool:
    """Whether two SQLAlchemy URLs name the same database (driver suffixes and passwords ignored)."""
    from sqlalchemy.engine import make_url

    try:
        x, y = make_url(a), make_url(b)
    except Exception:  # noqa: BLE001 - not a database URL (a file store): not the same
        return False
    return (x.get_backend_name(), x.host, x.port, x.database) == (y.get_backend_name(), y.host, y.port, y.database)


_STORAGES: dict[tuple[str, int | None], optuna.storages.BaseStorage] = {}


def _open_storage(url: str, settings: Settings | None = None) -> optuna.storages.BaseStorage:
    """RDB storage (one per URL and heartbeat for the process: its engine and schema check are paid once);
    with ``settings``, trial heartbeats every ``ML_TUNING_HEARTBEAT_S`` seconds: a trial whose process died (a
    SIGKILLed worker) ends FAIL after two missed beats and is retried once with its params."""
    key = (url, None if settings is None else max(1, int(settings.tuning_heartbeat_s)))
    if key not in _STORAGES:
        _STORAGES[key] = _new_storage(url, settings)
    return _STORAGES[key]


def _new_storage(url: str, settings: Settings | None) -> optuna.storages.BaseStorage:
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}  # several workers write one file
    try:
        with warnings.catch_warnings():  # heartbeats and the retry callback are "experimental" since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if settings is not None:
                beat = max(1, int(settings.tuning_heartbeat_s))
                kwargs.update(
                    heartbeat_interval=beat,
                    grace_period=2 * beat,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
                )
            return optuna.storages.RDBStorage(url, **kwargs)
    except Exception as exc:
        from ..errors import one_line
        from ..mlflow_integration.stores import mask_uri

        raise TuningInputError(f"cannot open the Optuna storage {mask_uri(url)}: {one_line(exc)}") from exc


def load_study(name: str, storage: str, settings: Settings | None = None) -> optuna.Study:
    """An existing study; :class:`TuningInputError` when there is none of that name."""
    import optuna

    store = _open_storage(storage, settings)
    try:
        return optuna.load_study(study_name=name, storage=store)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(store, include_best_trial=False)]
        raise TuningInputError(f"no study {name!r} in the storage (studies: {', '.join(names) or 'none'})") from None


def study_summary(study: optuna.Study) -> StudyResult:
    """The study as its user attributes and trials say (no data, no MLflow)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    states: dict[str, int] = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = study.best_trial if complete else None
    attrs = study.user_attrs
    return StudyResult(
        study_name=study.study_name,
        storage="",
        direction=study.direction.name.lower(),
        n_trials=len(trials),
        states=states,
        best_trial=None if best is None else best.number,
        best_value=None if best is None else best.value,
        best_params={} if best is None else dict(best.params),
        holdout=attrs.get("holdout"),
        dsr=attrs.get("dsr"),
        pbo=attrs.get("pbo"),
        run_id=attrs.get("mlflow_run_id"),
    )


@dataclass
class StudyProgress:
    """How far a study is: trials counted against its target, waiting retries, running trials."""

    target: int
    counted: int
    """Trials that ended (complete, pruned, failed), a failed trial retried after its worker died excluded."""
    running: int
    waiting: int
    stop_requested: bool
    finalized_trials: int | None
    """The trial count when the study was last finalized (holdout, DSR, PBO, plots); None: never."""

    @property
    def remaining(self) -> int:
        """Trials still to start for the target (waiting retries included), 0 once stopped."""
        if self.stop_requested:
            return 0
        return max(0, self.target - self.counted - self.running)

    @property
    def finalized(self) -> bool:
        return self.finalized_trials is not None and self.finalized_trials == self.counted + self.running

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "remaining": self.remaining, "finalized": self.finalized}


def retried_trial_number(trial: optuna.trial.FrozenTrial) -> int | None:
    """The number of the trial that ``trial`` retries (its worker died), or None."""
    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)


def study_progress(study: optuna.Study, *, fail_stale: bool = True) -> StudyProgress:
    """Counts of :class:`StudyProgress` from the storage; ``fail_stale``: trials whose heartbeat stopped are
    failed first (and retried) when heartbeats are on (a write; readers pass False)."""
    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    try:
        if fail_stale:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                fail_stale_trials(study)
    except Exception as exc:  # noqa: BLE001 - no heartbeat configured, or a storage blip: count as they are
        logger.debug("stale trials not checked: %s", exc)
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials if (n := retried_trial_number(t)) is not None}
    ended = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    counted = sum(1 for t in trials if t.state in ended and not (t.state == TrialState.FAIL and t.number in retried))
    attrs = study.user_attrs
    finalized = attrs.get("finalized_trials")
    return StudyProgress(
        target=int(attrs.get("target_trials", len(trials))),
        counted=counted,
        running=sum(1 for t in trials if t.state == TrialState.RUNNING),
        waiting=sum(1 for t in trials if t.state == TrialState.WAITING),
        stop_requested=bool(attrs.get("stop_requested", False)),
        finalized_trials=None if finalized is None else int(finalized),
    )


def request_stop(name: str, storage: str, settings: Settings | None = None) -> StudyProgress:
    """Ask a study to start no more trials (running ones end as they would); ``resume`` clears it."""
    study = load_study(name, storage, settings)
    study.set_user_attr("stop_requested", True)
    return study_progress(study)


def _masked_config(config: TuningConfig) -> dict[str, Any]:
    """``config.to_dict()`` with a database URL of the candles masked (the study's attributes are readable by
    anyone who can list studies); a process that attaches reads its own ``ML_CANDLES_DATABASE_URL``."""
    from ..mlflow_integration.stores import mask_uri

    d = config.to_dict()
    path = str(d["data"].get("path") or "")
    if "://" in path:
        d["data"] = {**d["data"], "path": mask_uri(path)}
    return d


def _config_from_attrs(
    attrs: Mapping[str, Any], data_path: str | None = None, settings: Settings | None = None
) -> TuningConfig:
    """The :class:`TuningConfig` kept in a study's user attributes (``data_path``: where this process reads
    the candles, e.g. a data source resolved from its own settings)."""
    d = dict(attrs["config"])
    data = dict(d.pop("data"))
    if data_path is not None:
        data["path"] = data_path
    elif "://" in str(data.get("path", "")):  # a database (its URL is kept masked): this process's own
        if settings is None or settings.candles_database_url is None:
            raise ValueError("the study reads its candles from a database: ML_CANDLES_DATABASE_URL is not set here")
        data["path"] = settings.candles_database_url.get_secret_value()
    policy = d.pop("policy", None)
    known = {f.name for f in dataclasses.fields(TuningConfig)}
    kwargs = {k: v for k, v in d.items() if k in known}
    return TuningConfig(
        data=DataSpec(**data),
        policy=SignalPolicy.from_dict(policy) if policy else SignalPolicy(),
        **kwargs,
    )


class StudyHandle:
    """One process's handle on a study: its storage, space, config, candles and MLflow runs.

    :meth:`prepare` creates (or loads, to resume or extend) a study and raises its target;
    :meth:`attach` opens an existing one from what its user attributes keep (a trial job on a worker);
    :meth:`run_trials` runs trials here (Optuna heartbeats: a trial whose process died ends FAIL and is
    retried once by the next trial to start); :meth:`finalize` reads the holdout once per study for the
    best trial, computes DSR and PBO, logs the plots and ends the study's MLflow run."""

    def __init__(
        self,
        study: optuna.Study,
        space: SearchSpace,
        config: TuningConfig,
        data: SearchData,
        storage_url: str,
        settings: Settings,
        mlflow: _Tracking | None,
    ) -> None:
        self.study, self.space, self.config, self.data = study, space, config, data
        self.storage_url, self.settings, self.mlflow = storage_url, settings, mlflow
        self.host = socket.gethostname()

    @property
    def name(self) -> str:
        return str(self.study.study_name)

    # -- open --------------------------------------------------------------------------------------
    @classmethod
    def prepare(
        cls,
        config: TuningConfig,
        *,
        settings: Settings,
        tracking: bool = True,
        extra_attrs: Mapping[str, Any] | None = None,
    ) -> StudyHandle:
        """Check everything, create or load the study, add ``config.n_trials`` to its target and clear a
        stop request. Bad input raises :class:`TuningInputError` before any trial and any MLflow run."""
        import optuna

        from ..errors import one_line
        from ..families import FamilyError

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            space = config.load_space()
        except (SearchSpaceError, FamilyError) as exc:
            raise TuningInputError(one_line(exc)) from exc
        fingerprint = space.fingerprint()
        direction = OBJECTIVES[config.objective][0]
        data, digest = _load_search_data(config, settings)
        families = "+".join(space.families)
        name = config.study_name or f"{families}-{digest[:10]}-{config.objective}"
        storage_url = config.storage or default_storage(settings)
        if _same_database(storage_url, settings.mlflow_tracking_uri):
            raise TuningInputError(
                "the Optuna storage is the MLflow tracking database: both keep their schema version in a table "
                "named alembic_version; give ML_TUNING_STORAGE a database of its own"
            )
        store = _open_storage(storage_url, settings)

        # an existing study must have the same space and objective: refused before anything runs
        existing = {s.study_name: s for s in optuna.get_all_study_summaries(store, include_best_trial=False)}
        if name in existing:
            attrs = existing[name].user_attrs
            if attrs.get("space_fingerprint") != fingerprint:
                raise TuningInputError(
                    f"study {name!r} exists with a different search space (fingerprint "
                    f"{str(attrs.get('space_fingerprint'))[:12]}, this one {fingerprint[:12]}): choose another study name"
                )
            if attrs.get("objective") != config.objective:
                raise TuningInputError(
                    f"study {name!r} exists with objective {attrs.get('objective')!r}, not {config.objective!r}"
                )
        study = optuna.create_study(
            study_name=name,
            storage=store,
            direction=cast(Literal["minimize", "maximize"], direction),
            sampler=_sampler(config.seed, existing[name].n_trials if name in existing else 0),
            pruner=_pruner(config.pruner, config.folds),
            load_if_exists=True,
        )
        if name not in existing:
            study.set_user_attr("space_fingerprint", fingerprint)
            study.set_user_attr("space", space.to_dict())
            study.set_user_attr("objective", config.objective)
            study.set_user_attr("data_hash", digest)
            study.set_user_attr("config", _jsonable(_masked_config(config)))
            study.set_user_attr("tracking", bool(tracking))
            study.set_user_attr("created_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        for key, value in (extra_attrs or {}).items():
            study.set_user_attr(key, _jsonable(value))
        counted = study_progress(study).counted
        target = max(int(study.user_attrs.get("target_trials", 0)), counted) + config.n_trials
        study.set_user_attr("target_trials", target)
        study.set_user_attr("stop_requested", False)
        mlflow = _Tracking.open(settings, study, config, digest) if tracking else None
        return cls(study, space, config, data, storage_url, settings, mlflow)

    @classmethod
    def attach(
        cls, name: str, *, settings: Settings, storage: str | None = None, data_path: str | None = None
    ) -> StudyHandle:
        """An existing study as its user attributes keep it (config, space, MLflow parent run)."""
        import optuna

        from ..errors import one_line

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage_url = storage or default_storage(settings)
        loaded = load_study(name, storage_url, settings)
        attrs = loaded.user_attrs
        if not isinstance(attrs.get("config"), Mapping) or not isinstance(attrs.get("space"), Mapping):
            raise TuningInputError(f"study {name!r} keeps no config or search space in its user attributes")
        try:
            config = _config_from_attrs(attrs, data_path, settings)
        except (TypeError, ValueError) as exc:
            raise TuningInputError(f"study {name!r}: its stored config is not readable: {one_line(exc)}") from exc
        space = _space_from_dict(attrs["space"])
        n_before = len(loaded.get_trials(deepcopy=False))
        study = optuna.load_study(
            study_name=name,
            storage=_open_storage(storage_url, settings),
            sampler=_sampler(config.seed, n_before),
            pruner=_pruner(config.pruner, config.folds),
        )
        data, digest = _load_search_data(config, settings)
        if attrs.get("data_hash") and digest != attrs["data_hash"]:
            logger.warning(
                "study %s: the candles changed since the study began (digest %s, study %s)",
                name,
                digest[:10],
                str(attrs["data_hash"])[:10],
            )
        mlflow = _Tracking.open(settings, study, config, digest) if attrs.get("tracking", True) else None
        return cls(study, space, config, data, storage_url, settings, mlflow)

    # -- trials ------------------------------------------------------------------------------------
    def _trial_params(self, params: TrialParams) -> TrialParams:
        cfg = self.config
        return TrialParams(
            family=params.family,
            model_options={**cfg.model_options.get(params.family, {}), **params.model_options},
            trainer=params.trainer,
            data={"horizon": cfg.horizon, **params.data},
            values=params.values,
        )

    @property
    def _trainer(self) -> dict[str, Any]:
        return {"epochs": self.config.epochs, "seed": self.config.seed, "device": self.settings.device}

    def run_trials(
        self,
        n: int,
        *,
        callbacks: Sequence[Any] = (),
        progress: Progress | None = None,
        claim: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> list[int]:
        """Run up to ``n`` trials here, one after another; stop early when a stop is requested. Returns the
        numbers of the trials run.

        ``claim`` (a trial job among several processes): a context manager (the study's lock) under which each
        next trial is taken only while the study's target is not reached, so N runners never start more trials
        than asked; without it (one process) ``n`` trials run."""
        report = progress or (lambda message, fraction: None)
        done: list[int] = []
        for i in range(n):
            ran: list[int] = []
            objective = self._objective(callbacks, report, i, n, ran)
            if claim is not None:
                if not self._run_claimed(objective, claim):
                    break
            else:
                if study_progress(self.study).stop_requested:
                    report("stop requested: no more trials", i / max(n, 1))
                    break
                self.study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=False)
            done.extend(ran)
        return done

    def _run_claimed(
        self, objective: Callable[[optuna.Trial], float], claim: Callable[[], AbstractContextManager[Any]]
    ) -> bool:
        """One trial taken under ``claim`` while the target allows it, run like ``Study.optimize`` runs one (trial
        heartbeats on; pruned -> PRUNED, an exception -> FAIL). False when nothing is left to run."""
        import optuna
        from optuna.storages._heartbeat import get_heartbeat_thread  # what Study.optimize itself uses
        from optuna.trial import TrialState

        with claim():
            state = study_progress(self.study)  # stale trials failed first: their retries come out of ask() first
            if state.stop_requested or state.remaining <= 0:
                return False
            trial = self.study.ask()
        with get_heartbeat_thread(trial._trial_id, self.study._storage):
            try:
                value = objective(trial)
            except optuna.TrialPruned:
                self.study.tell(trial, state=TrialState.PRUNED)
                return True
            except Exception:  # noqa: BLE001 - logged by the objective; one failed trial does not end the study
                self.study.tell(trial, state=TrialState.FAIL)
                return True
            except BaseException:
                self.study.tell(trial, state=TrialState.FAIL)
                raise
        self.study.tell(trial, value)
        return True

    def _objective(
        self, callbacks: Sequence[Any], report: Progress, index: int, total: int, ran: list[int]
    ) -> Callable[[optuna.Trial], float]:
        import optuna

        from ..errors import one_line

        def objective(trial: optuna.Trial) -> float:
            ran.append(trial.number)
            params = self._trial_params(self.space.suggest(trial))
            report(f"trial {trial.number} ({params.family}): {params.values}", index / max(total, 1))
            mlflow = self.mlflow
            child = mlflow.start_trial(trial.number, params, self.host) if mlflow else None
            trial.set_user_attr("host", self.host)
            if child:
                trial.set_user_attr("mlflow_run_id", child)
            folds: list[dict[str, float]] = []
            epochs = _EpochLog()  # per-epoch metrics, written with the fold's scores (one call per fold)

            def on_fold(index: int, scores: dict[str, float]) -> None:
                folds.append(scores)
                if mlflow is not None and child is not None:
                    mlflow.metrics(child, {f"val_{k}": v for k, v in scores.items()}, step=index, extra=epochs.take())

            def fold_callbacks(k: int) -> list[Any]:
                return [epochs.fold(k)] if mlflow is not None and child is not None else []

            t0 = time.perf_counter()
            try:
                score = evaluate_trial(
                    self.data,
                    params,
                    objective=self.config.objective,
                    trainer=self._trainer,
                    policy=self.config.policy,
                    default_window=self.config.window,
                    trial=trial,
                    callbacks=callbacks,
                    on_fold=on_fold,
                    fold_callbacks=fold_callbacks,
                )
            except optuna.TrialPruned as exc:
                trial.set_user_attr("folds", folds)
                trial.set_user_attr("seconds", time.perf_counter() - t0)
                trial.set_user_attr("note", str(exc))
                if mlflow is not None and child is not None:
                    mlflow.end_trial(
                        child, "PRUNED", {"seconds": time.perf_counter() - t0}, note=str(exc), extra=epochs.take()
                    )
                raise
            except BaseException as exc:  # a failed trial does not end the study (Optuna marks it FAIL)
                line = one_line(exc, typed=True)[:500]
                logger.warning("trial %d failed: %s", trial.number, line)
                trial.set_user_attr("error", line)
                trial.set_user_attr("seconds", time.perf_counter() - t0)
                if mlflow is not None and child is not None:
                    mlflow.end_trial(child, "FAIL", {}, note=line, extra=epochs.take())
                raise
            trial.set_user_attr("folds", score.folds)
            trial.set_user_attr("seconds", score.seconds)
            trial.set_user_attr("oos_rows", _pack_rows(score.rows))
            trial.set_user_attr("oos_net", _pack_floats(score.net))
            trial.set_user_attr("sharpe", _sharpe(score.net))
            if mlflow is not None and child is not None:
                mlflow.end_trial(
                    child,
                    "COMPLETE",
                    {"value": score.value, "seconds": score.seconds, "sharpe": _sharpe(score.net)},
                    extra=epochs.take(),
                )
            return score.value

        return objective

    # -- the end -----------------------------------------------------------------------------------
    def finalize(self, progress: Progress | None = None) -> StudyResult:
        """Holdout once per study for the best trial, DSR and PBO over the completed trials, the plots and the
        parent run's metrics; the study's MLflow run ends FINISHED. Safe to call again after an extension
        (the holdout is never re-read)."""
        import optuna
        from optuna.trial import TrialState

        report = progress or (lambda message, fraction: None)
        study = self.study
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        if complete:
            best = study.best_trial
            if study.user_attrs.get("holdout") is None:  # once per study, never again
                report(f"reading the holdout once, for trial {best.number}", 0.95)
                fixed = cast("optuna.Trial", optuna.trial.FixedTrial(best.params, best.number))
                params = self._trial_params(self.space.suggest(fixed))
                held = self.data.read_holdout(
                    params, {**self._trainer, **params.trainer}, self.config.policy, default_window=self.config.window
                )
                study.set_user_attr(
                    "holdout",
                    {"trial": best.number, "metrics": held.metrics, "rows": held.rows, "seconds": held.seconds},
                )
            dsr, pbo = overfitting_stats(complete, best)
            study.set_user_attr("dsr", dsr)
            study.set_user_attr("pbo", pbo)
        state = study_progress(study)
        study.set_user_attr("finalized_trials", state.counted + state.running)
        result = study_summary(study)
        result.storage = self.storage_url
        if self.mlflow is not None:
            result.run_id = self.mlflow.parent
            result.artifacts = self.mlflow.finish(study, result)
        return result

    def fail_tracking(self) -> None:
        if self.mlflow is not None:
            self.mlflow.terminate("FAILED")


class _EpochLog:
    """A trial's per-epoch metrics as ``fold<k>_<metric>`` by epoch, kept in memory and written to its
    MLflow run with the fold's scores (`take`): one tracking-store call per fold instead of one per
    epoch (~13 ms each on PostgreSQL, 2-3 % of a short trial)."""

    KEEP = ("train_loss", "val_loss", "val_accuracy", "val_f1")

    def __init__(self) -> None:
        self._pending: list[tuple[str, float, int, int]] = []

    def fold(self, fold: int) -> _EpochCallback:
        return _EpochCallback(self, fold)

    def add(self, fold: int, epoch: int, metrics: Mapping[str, Any]) -> None:
        now = int(time.time() * 1000)
        for k, v in metrics.items():
            if k in self.KEEP and v is not None and math.isfinite(float(v)):
                self._pending.append((f"fold{fold}_{k}", float(v), now, int(epoch)))

    def take(self) -> list[tuple[str, float, int, int]]:
        """The metrics not written yet, as (key, value, timestamp ms, step); the buffer empties."""
        out, self._pending = self._pending, []
        return out


class _EpochCallback:
    """Trainer callback of one fold: each epoch's metrics into the trial's `_EpochLog`."""

    def __init__(self, log: _EpochLog, fold: int) -> None:
        self.log, self.fold_index = log, fold

    def on_epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None:
        self.log.add(self.fold_index, epoch, metrics)


def _load_search_data(config: TuningConfig, settings: Settings) -> tuple[SearchData, str]:
    from ..errors import one_line
    from ..training import TrainingRequest, load_training_data

    try:
        request = TrainingRequest.from_settings(settings, window=config.window, horizon=config.horizon)
        request.data = dataclasses.replace(config.data)
        loaded = load_training_data(request)
        data = SearchData(
            list(loaded.series), holdout_frac=config.holdout_frac, n_folds=config.folds, feature_config=request.features
        )
    except (ValueError, TypeError) as exc:  # DataValidationError is a ValueError
        raise TuningInputError(one_line(exc)) from exc
    return data, str(loaded.digest)


def _sampler(seed: int, n_before: int) -> optuna.samplers.BaseSampler:
    """TPE seeded by the trial count (an extension or another worker samples new points); ``constant_liar``
    keeps parallel workers from proposing the same point while a trial runs."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed + n_before, constant_liar=True)


def run_study(
    config: TuningConfig,
    *,
    settings: Settings,
    progress: Progress | None = None,
    tracking: bool = True,
) -> StudyResult:
    """Run ``config.n_trials`` more trials of the study of ``config`` (created or loaded) in this process,
    then read the holdout once per study for the best trial and compute DSR and PBO. Bad input raises
    :class:`TuningInputError` before any trial and before any MLflow run."""
    t_start = time.perf_counter()
    report = progress or (lambda message, fraction: None)
    report("reading the candles", 0.0)
    handle = StudyHandle.prepare(config, settings=settings, tracking=tracking)
    try:
        handle.run_trials(config.n_trials, progress=report)
        result = handle.finalize(report)
    except BaseException:
        handle.fail_tracking()
        raise
    result.new_trials = config.n_trials
    result.wall_seconds = time.perf_counter() - t_start
    report("done", 1.0)
    return result


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# ------------------------------------------------------------------------------ the best trial, registered
@dataclass
class RegisteredBest:
    """The best trial of a study, retrained through the normal training path and registered."""

    study_name: str
    trial: int
    family: str
    model_name: str
    version: str | None
    run_id: str | None
    tags: dict[str, str]
    test_metrics: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """What ``register`` prints."""
        where = f"version {self.version}" if self.version else "not registered (no MLflow)"
        out = [
            f"registered  {self.model_name} {where} from study {self.study_name}, trial #{self.trial} ({self.family})"
        ]
        if self.run_id:
            out.append(f"run         {self.run_id}")
        if self.test_metrics.get("accuracy") is not None:
            out.append(f"test        accuracy {_fmt(self.test_metrics['accuracy'])}")
        out.extend(f"tag         {k} = {v}" for k, v in sorted(self.tags.items()))
        return out


def _space_from_dict(d: Mapping[str, Any]) -> SearchSpace:
    """The :class:`SearchSpace` of ``SearchSpace.to_dict()`` (kept in the study's user attributes)."""
    from ._space import Param

    def params(table: Mapping[str, Any]) -> tuple[Param, ...]:
        return tuple(
            Param(
                name=str(name),
                kind=p["kind"],
                target=p["target"],
                low=p.get("low"),
                high=p.get("high"),
                log=bool(p.get("log", False)),
                choices=tuple(p["choices"]) if p.get("choices") is not None else None,
            )
            for name, p in table.items()
        )

    families = [str(f) for f in d.get("family", [])]
    return SearchSpace(
        common=params(d.get("common", {})),
        tables={fam: params(table) for fam, table in d.get("families", {}).items()},
        family_choice=tuple(families) if len(families) > 1 else None,
        source="<study>",
    )


def best_trial_request(study: optuna.Study, settings: Settings) -> tuple[TrialParams, Any]:
    """(the best trial's params, a ``TrainingRequest`` of the study's stored config and those params)."""
    import optuna
    from optuna.trial import TrialState

    from ..labels import LabelConfig
    from ..training import TrainingRequest

    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        raise TuningInputError(f"study {study.study_name!r} has no completed trial")
    attrs = study.user_attrs
    config, space_d = attrs.get("config"), attrs.get("space")
    if not isinstance(config, Mapping) or not isinstance(space_d, Mapping):
        raise TuningInputError(f"study {study.study_name!r} keeps no config or search space in its user attributes")
    best = study.best_trial
    space = _space_from_dict(space_d)
    params = space.suggest(cast("optuna.Trial", optuna.trial.FixedTrial(best.params, best.number)))
    fixed = dict((config.get("model_options") or {}).get(params.family, {}))
    labels = {"horizon": int(config.get("horizon", settings.horizon)), **params.labels}
    window = params.window or int(config.get("window", settings.window))
    params = TrialParams(
        family=params.family,
        model_options={**fixed, **params.model_options},
        trainer=params.trainer,
        data={**labels, "window": window},
        values=params.values,
    )
    request = TrainingRequest.from_settings(
        settings,
        family=params.family,
        model_kwargs=params.model_options,
        window=window,
        horizon=labels["horizon"],
        epochs=config.get("epochs"),
        seed=config.get("seed"),
        policy=config.get("policy"),
    )
    request.data = _config_from_attrs(attrs, None, settings).data
    request.labels = LabelConfig(**labels)
    if params.trainer:
        request.trainer = dataclasses.replace(request.trainer, **params.trainer)
    return params, request


def _tags_of(study: optuna.Study, params: TrialParams) -> dict[str, str]:
    from ..registry._gate import TAG_DSR, TAG_PBO

    best = study.best_trial
    attrs = study.user_attrs
    tags = {
        "tuning_study": study.study_name,
        "tuning_trial": str(best.number),
        "tuning_value": f"{float(best.value or 0.0):.4f}",
        "tuning_objective": str(attrs.get("objective", "")),
        "tuning_params": str(params.values)[:5000],
    }
    holdout = attrs.get("holdout")
    if holdout and holdout.get("trial") == best.number:  # read for this trial (never re-read for another)
        for key, value in holdout.get("metrics", {}).items():
            if value is not None and math.isfinite(float(value)):
                tags[f"tuning_holdout_{key}"] = f"{float(value):.4f}"
    dsr, pbo = attrs.get("dsr"), attrs.get("pbo")
    if dsr and dsr.get("dsr") is not None:
        tags[TAG_DSR] = f"{float(dsr['dsr']):.4f}"
    if pbo and pbo.get("pbo") is not None:
        tags[TAG_PBO] = f"{float(pbo['pbo']):.4f}"
    if attrs.get("mlflow_run_id"):
        tags["tuning_run_id"] = str(attrs["mlflow_run_id"])
    return tags


def register_best(
    study_name: str,
    *,
    settings: Settings,
    model_name: str | None = None,
    storage: str | None = None,
    tracking: bool = True,
) -> RegisteredBest:
    """Retrain the best trial of ``study_name`` through ``TrainingOrchestrator.train_model_sync`` (tracked in
    experiment ``model_training``, exported to ONNX, registered like any training; never promoted) and tag
    the version with the study, the trial, its validation value, the holdout read for it, DSR and PBO.
    No such study, or no completed trial: :class:`TuningInputError`; a failed training: ``RuntimeError``."""
    import optuna

    from ..training import TrainingOrchestrator

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = load_study(study_name, storage or default_storage(settings))
    params, request = best_trial_request(study, settings)
    tags = _tags_of(study, params)
    name = model_name or params.family
    orchestrator = TrainingOrchestrator(settings, tracking=tracking)
    result = orchestrator.train_model_sync(
        model_name=name,
        run_name=f"tuned-{study_name}-trial{study.best_trial.number}-{time.strftime('%Y%m%d_%H%M%S')}",
        auto_promote=False,
        training_mode="tuning",
        request=request,
    )
    if not result.get("success"):
        raise RuntimeError(f"training the best trial failed: {result.get('error', 'unknown error')}")
    version = None if result.get("version") is None else str(result["version"])
    run_id = result.get("run_id")
    if tracking and version is not None:
        from ..config import EXPERIMENT_TRAINING
        from ..mlflow_integration import get_mlflow_tracker

        client = get_mlflow_tracker(EXPERIMENT_TRAINING, settings=settings).client
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
            if run_id:
                client.set_tag(run_id, key, value)
    metrics = {k: float(v) for k, v in (result.get("test_metrics") or {}).items() if isinstance(v, (int, float))}
    return RegisteredBest(
        study_name=study_name,
        trial=study.best_trial.number,
        family=params.family,
        model_name=name,
        version=version,
        run_id=run_id,
        tags=tags,
        test_metrics=metrics,
    )


# ------------------------------------------------------------------------------ MLflow
class _Tracking:
    """The study's parent run and its trials' child runs, by explicit run id through the client."""

    def __init__(self, client: MlflowClient, experiment_id: str, parent: str) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.parent = parent

    @classmethod
    def open(cls, settings: Settings, study: optuna.Study, config: TuningConfig, digest: str) -> _Tracking:
        from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

        from ..mlflow_integration import get_mlflow_tracker

        try:
            tracker = get_mlflow_tracker(EXPERIMENT_TUNING, settings=settings)
        except Exception as exc:
            if type(exc).__name__ == "TrackingStoreUnavailable":
                from ..errors import one_line

                raise TuningInputError(one_line(exc)) from exc
            raise
        client = tracker.client
        parent = study.user_attrs.get("mlflow_run_id")
        if parent:
            try:
                client.update_run(parent, status="RUNNING")
                return cls(client, tracker.experiment_id, parent)
            except Exception:  # noqa: BLE001 - the run is gone (another tracking store): a new parent
                logger.warning("the study's MLflow run %s is not in this store; starting a new one", parent)
        description = (
            f"Optuna study {study.study_name}: objective {config.objective} ({study.direction.name.lower()}) on "
            f"{config.folds} walk-forward validation folds; the final {config.holdout_frac:.0%} is read once for the "
            "best trial. DSR and PBO say how much of the winner's edge survives the number of trials."
        )
        tags = {
            "run_kind": "study",
            "study": study.study_name,
            "objective": config.objective,
            "data_hash": digest,
            MLFLOW_RUN_NOTE: description,
        }
        run = client.create_run(tracker.experiment_id, tags=tags, run_name=f"study-{study.study_name}")
        parent = run.info.run_id
        study.set_user_attr("mlflow_run_id", parent)
        from mlflow.entities import Param

        flat = {f"tuning_{k}": str(v)[:500] for k, v in config.to_dict().items() if k not in ("n_trials",)}
        client.log_batch(parent, params=[Param(k, v) for k, v in flat.items()])
        return cls(client, tracker.experiment_id, parent)

    def start_trial(self, number: int, params: TrialParams, host: str) -> str:
        from mlflow.entities import Param
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        tags = {
            MLFLOW_PARENT_RUN_ID: self.parent,
            "run_kind": "trial",
            "trial": str(number),
            "host": host,
            "family": params.family,
        }
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=f"trial-{number}")
        values = {"family": params.family, **{str(k): v for k, v in params.values.items()}}
        self.client.log_batch(run.info.run_id, params=[Param(k, str(v)[:500]) for k, v in values.items()])
        return str(run.info.run_id)

    def metrics(
        self,
        run_id: str,
        values: Mapping[str, float],
        step: int = 0,
        *,
        extra: Sequence[tuple[str, float, int, int]] = (),
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """``values`` at ``step``, the buffered ``extra`` (key, value, ms, step) and ``tags`` in one
        `log_batch` (chunks of MLflow's 1000 metrics per call)."""
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        batch = [Metric(k, v, ms, st) for k, v, ms, st in extra]
        batch += [Metric(k, float(v), now, step) for k, v in values.items() if math.isfinite(float(v))]
        tag_list = [RunTag(k, v) for k, v in (tags or {}).items()]
        for i in range(0, max(len(batch), 1), 1000):
            self.client.log_batch(run_id, metrics=batch[i : i + 1000], tags=tag_list if i == 0 else [])

    def end_trial(
        self,
        run_id: str,
        state: str,
        values: Mapping[str, float],
        note: str | None = None,
        *,
        extra: Sequence[tuple[str, float, int, int]] = (),
    ) -> None:
        tags = {"state": state, **({"note": note[:500]} if note else {})}
        self.metrics(run_id, values, extra=extra, tags=tags)
        self.client.set_terminated(run_id, status="FAILED" if state == "FAIL" else "FINISHED")

    def finish(self, study: optuna.Study, result: StudyResult) -> dict[str, str]:
        values: dict[str, float] = {"n_trials": float(result.n_trials)}
        for state, n in result.states.items():
            values[f"n_{state.lower()}"] = float(n)
        if result.best_value is not None:
            values["best_value"] = float(result.best_value)
            values["best_trial"] = float(result.best_trial or 0)
        if result.holdout:
            values.update({f"holdout_{k}": float(v) for k, v in result.holdout["metrics"].items()})
        if result.dsr:
            values.update({"dsr": result.dsr["dsr"], "psr": result.dsr["psr"], "dsr_sr0": result.dsr["sr0"]})
        if result.pbo:
            values.update({"pbo": result.pbo["pbo"], "pbo_probability_of_loss": result.pbo["probability_of_loss"]})
        self.metrics(self.parent, values, step=result.n_trials)
        if result.best_params:
            self.client.set_tag(self.parent, "best_params", str(result.best_params)[:5000])
        artifacts = self._plots(study)
        self.client.set_terminated(self.parent, status="FINISHED")
        return artifacts

    def _plots(self, study: optuna.Study) -> dict[str, str]:
        """Optuna's Plotly figures as standalone HTML (``write_html``: no kaleido needed)."""
        from optuna import visualization as vis

        makers: dict[str, Callable[[optuna.Study], Any]] = {
            "optimization_history": vis.plot_optimization_history,
            "param_importances": vis.plot_param_importances,
            "parallel_coordinate": vis.plot_parallel_coordinate,
            "slice": vis.plot_slice,
        }
        out: dict[str, str] = {}
        with tempfile.TemporaryDirectory(prefix="tuning-plots-") as tmp:
            for name, make in makers.items():
                try:
                    fig = make(study)
                    path = Path(tmp) / f"{name}.html"
                    fig.write_html(str(path), include_plotlyjs="cdn")
                    self.client.log_artifact(self.parent, str(path), "plots")
                    out[name] = f"plots/{name}.html"
                except Exception as exc:  # noqa: BLE001 - e.g. importances need 2+ completed trials
                    logger.info("no %s plot: %s", name, exc)
        return out

    def terminate(self, status: str) -> None:
        try:
            self.client.set_terminated(self.parent, status=status)
        except Exception:
            logger.exception("could not end the study's MLflow run %s", self.parent)
