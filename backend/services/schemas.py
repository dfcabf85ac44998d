"""What the services return and accept: pydantic models shared by the REST API and the dashboard.

Naming follows the full-stack FastAPI template: ``XPublic`` is what is shown of X, ``XsPublic``
a list of them (``data`` and ``count``), ``TrainingParams`` the validated input of a training.
Numbers that JSON cannot carry (NaN, +-inf) are ``None``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backend.ml_engine.config import DEFAULT_MODEL_NAME
from backend.ml_engine.verdicts import Check, Verdict, render

from .data_sources import DataSource

__all__ = [
    "ArtifactPublic",
    "CandleIn",
    "CheckPublic",
    "ComparisonParams",
    "ComponentHealth",
    "DatasetInputPublic",
    "DriftPublic",
    "ExperimentPublic",
    "ExperimentsPublic",
    "HealthPublic",
    "JOB_KINDS",
    "JOB_STATUSES",
    "JobKind",
    "StudiesPublic",
    "StudyPublic",
    "StudySummaryPublic",
    "TrialPublic",
    "TuneParams",
    "JobPublic",
    "JobsPublic",
    "Lang",
    "LeaderboardPublic",
    "LeaderboardRowPublic",
    "MetricIntervalPublic",
    "MetricPoint",
    "ModelOptions",
    "ModelPublic",
    "ModelVersionDetail",
    "ModelVersionPublic",
    "ModelsPublic",
    "PairedTestPublic",
    "PredictionPublic",
    "PredictionsPublic",
    "ProductionModel",
    "PromotionDecisionPublic",
    "PromotionEventPublic",
    "PromotionHistoryPublic",
    "RetrainParams",
    "RunDetailPublic",
    "RunPublic",
    "RunsPublic",
    "SignalPolicyParams",
    "SignaturePublic",
    "TrainingParams",
    "VerdictFields",
    "VerdictRecord",
    "WorkerPublic",
    "json_safe",
]

#: The languages verdicts are rendered in (``?lang=`` of the API, the dashboard's switch).
Lang = Literal["en", "ru"]
JobStatus = Literal["queued", "running", "finished", "failed", "cancelled"]
JobKind = Literal["train", "retrain", "leaderboard", "tune", "monitor"]
JOB_STATUSES: tuple[str, ...] = ("queued", "running", "finished", "failed", "cancelled")
JOB_KINDS: tuple[str, ...] = ("train", "retrain", "leaderboard", "tune", "monitor")

#: A registered-model name: letters, digits, ``_ . -``; what MLflow accepts in a ``models:/`` URI.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats replaced by None, recursively (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# Models and the registry


class ModelVersionPublic(BaseModel):
    """One registered version: aliases, tags and the key metrics recorded as version tags."""

    name: str
    version: int
    run_id: str | None = None
    status: str | None = None
    description: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    aliases: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float | None] = Field(
        default_factory=dict, description="test_accuracy, test_f1_macro, backtest_sharpe, onnx_parity_max_abs_diff..."
    )
    archived: bool = False
    model_uri: str
    source: str | None = None


class SignaturePublic(BaseModel):
    """The input/output schema of a version, from its MLmodel signature (MLflow's column specs)."""

    inputs: list[dict[str, Any]] | None = None
    outputs: list[dict[str, Any]] | None = None
    params: list[dict[str, Any]] | None = None


class ModelVersionDetail(ModelVersionPublic):
    """A version with what its MLmodel file says: signature, flavors, input example."""

    signature: SignaturePublic | None = None
    flavors: list[str] = Field(default_factory=list)
    has_input_example: bool = False
    model_id: str | None = None
    mlmodel_error: str | None = Field(default=None, description="why the MLmodel could not be read, if it could not")


class ModelPublic(BaseModel):
    """A registered model: aliases (alias -> version), tags, versions newest first."""

    name: str
    description: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    aliases: dict[str, int] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    production_version: int | None = None
    latest_version: int | None = None
    history_count: int = 0
    versions: list[ModelVersionPublic] = Field(default_factory=list)


class ModelsPublic(BaseModel):
    data: list[ModelPublic]
    count: int


class CheckPublic(BaseModel):
    """One finding of a decision: its code and parameters (what deciding code returned), and its words
    in the answer's language, rendered from them."""

    code: str = Field(description="what was found, e.g. accuracy_below_min, archived, rolled_back")
    passed: bool = Field(default=True, description="whether it speaks for the decision")
    params: dict[str, Any] = Field(default_factory=dict, description="the numbers and names the words need")
    text: str = Field(default="", description="the finding in the answer's language (lang)")

    def check(self) -> Check:
        return Check(self.code, self.passed, self.params)

    @classmethod
    def of(cls, check: Check, lang: Lang = "en") -> CheckPublic:
        return cls(code=check.code, passed=check.passed, params=json_safe(dict(check.params)), text=render(check, lang))


class VerdictFields(BaseModel):
    """A decision's verdict as codes (``checks``, ``notes``) and as words in ``lang`` (``message`` and
    each check's ``text``). Entries recorded before verdicts existed have no codes: their
    ``message`` is the text as it was recorded (English)."""

    checks: list[CheckPublic] = Field(
        default_factory=list, description="every check made, failed ones with passed false (a promotion: the gate's)"
    )
    notes: list[CheckPublic] = Field(default_factory=list, description="what is said after the checks")
    gate: bool = Field(
        default=False, description="the checks are the promotion gate's ('refused: ...' / 'gate passed: ...')"
    )
    lang: Lang = Field(default="en", description="language of message and of each text")
    message: str = Field(default="", description="the whole verdict in lang")

    def verdict(self) -> Verdict | None:
        """The verdict the codes make (None for an entry recorded before verdicts existed)."""
        if not self.checks and not self.notes:
            return None
        return Verdict(tuple(c.check() for c in self.checks), tuple(n.check() for n in self.notes), self.gate)

    @staticmethod
    def fields_of(verdict: Verdict | None, recorded: str, lang: Lang = "en") -> dict[str, Any]:
        """The fields for ``verdict`` rendered in ``lang`` (``recorded``: the text without a verdict)."""
        if verdict is None:
            return {"checks": [], "notes": [], "gate": False, "lang": lang, "message": recorded}
        return {
            "checks": [CheckPublic.of(c, lang) for c in verdict.checks],
            "notes": [CheckPublic.of(n, lang) for n in verdict.notes],
            "gate": verdict.gate,
            "lang": lang,
            "message": verdict.render(lang),
        }


class VerdictRecord(VerdictFields):
    """A recorded decision's words: ``reason`` (why it was asked for) and ``detail`` (what was decided)
    as recorded, English for the engine's words; ``message`` is ``detail`` in ``lang`` and
    ``reason_check`` the engine's own reason as a code (None when a person gave the reason)."""

    reason: str = ""
    detail: str = ""
    reason_check: CheckPublic | None = None

    def detail_text(self, lang: str = "en") -> str:
        """``detail`` in ``lang`` (rendered from the codes; entries older than verdicts as recorded).
        A retraining's verdict names its numbers as the walk-forward means they are."""
        verdict = self.verdict()
        return verdict.render(lang, walk_forward=self.walk_forward) if verdict is not None else self.detail

    @property
    def walk_forward(self) -> bool:
        """Was the candidate judged on walk-forward means (the retraining pipeline asked)?"""
        return self.reason_check is not None and self.reason_check.code == "auto_retraining"

    def reason_text(self, lang: str = "en") -> str:
        """``reason`` in ``lang`` when the engine gave it (a code), else as the person wrote it."""
        return render(self.reason_check.check(), lang) if self.reason_check is not None else self.reason


class PromotionEventPublic(VerdictRecord):
    """One entry of a model's promotion history."""

    seq: int
    name: str
    decision: Literal["promoted", "refused", "rolled_back", "archived"]
    version: int | None = None
    from_version: int | None = None
    to_version: int | None = None
    actor: str = ""
    forced: bool = False
    timestamp: datetime
    metrics: dict[str, Any] = Field(default_factory=dict)


class PromotionHistoryPublic(BaseModel):
    data: list[PromotionEventPublic]
    count: int


class PromotionDecisionPublic(VerdictFields):
    """What a promotion or rollback decided; a refusal is an answer too (``promoted`` false, ``reason``
    why in English, ``message`` and ``checks`` in ``lang``)."""

    promoted: bool
    reason: str
    from_version: int | None = None
    to_version: int | None = None
    forced: bool = False
    metrics: dict[str, Any] = Field(default_factory=dict)
    event: PromotionEventPublic | None = None

    def reason_text(self, lang: str = "en") -> str:
        """``reason`` in ``lang`` (rendered from the codes)."""
        verdict = self.verdict()
        return verdict.render(lang) if verdict is not None else self.reason


# --------------------------------------------------------------------------------------------
# Experiments and runs


class ExperimentPublic(BaseModel):
    experiment_id: str
    name: str
    description: str | None = Field(default=None, description="the mlflow.note.content tag")
    lifecycle_stage: str
    artifact_location: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ExperimentsPublic(BaseModel):
    data: list[ExperimentPublic]
    count: int


class RunPublic(BaseModel):
    run_id: str
    run_name: str | None = None
    experiment_id: str
    status: str
    start_time: datetime | None = None
    end_time: datetime | None = None
    lifecycle_stage: str | None = None
    artifact_uri: str | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)


class RunsPublic(BaseModel):
    data: list[RunPublic]
    count: int
    next_page_token: str | None = Field(default=None, description="pass as page_token for the next page")


class MetricPoint(BaseModel):
    step: int
    value: float | None
    timestamp: int = Field(description="milliseconds since the epoch")


class ArtifactPublic(BaseModel):
    path: str
    is_dir: bool
    file_size: int | None = None


class DatasetInputPublic(BaseModel):
    name: str
    digest: str
    source_type: str | None = None
    context: str | None = None


class RunDetailPublic(RunPublic):
    """A run with every metric's history, the artifact list and the datasets it used."""

    metric_history: dict[str, list[MetricPoint]] = Field(default_factory=dict)
    artifacts: list[ArtifactPublic] = Field(default_factory=list)
    artifacts_truncated: bool = False
    datasets: list[DatasetInputPublic] = Field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Training and jobs


FAMILY_DESCRIPTION = (
    "model family: hybrid_cnn_lstm (default), tcn, lightgbm, logreg; GET /models/families lists each one's options"
)


class ModelOptions(BaseModel):
    """The model: ``family`` (default ``hybrid_cnn_lstm``) and that family's options as further keys,
    e.g. ``{"family": "lightgbm", "num_leaves": 63}`` or ``{"lstm_hidden": 32}``. An unknown family,
    an option of another family or a bad value is refused (422) with one line naming what is allowed;
    so is a configuration that cannot be exported to ONNX (it could never be served)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"family": "lightgbm", "num_leaves": 63}, {"family": "hybrid_cnn_lstm", "lstm_hidden": 32}]
        },
    )

    family: str = Field(default="hybrid_cnn_lstm", description=FAMILY_DESCRIPTION)

    @model_validator(mode="after")
    def _valid_for_family(self) -> ModelOptions:
        from backend.ml_engine.families import FamilyError, get_family

        try:
            fam = get_family(self.family)
            config = fam.make_config(self.options(), n_features=1, window=60)
            fam.check_exportable(config)
        except FamilyError as exc:
            raise ValueError(str(exc)) from None
        self.family = fam.name
        return self

    def options(self) -> dict[str, Any]:
        """The family's options that are set."""
        return dict(self.model_extra or {})

    def to_kwargs(self) -> dict[str, Any]:
        """The family's option values (``families.ModelFamily.make_config`` reads them)."""
        return self.options()


class SignalPolicyParams(BaseModel):
    """How class probabilities become positions in the comparison's backtest
    (:class:`~backend.ml_engine.signal_policy.SignalPolicy`); unset fields keep its defaults."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"mode": "threshold", "threshold": 0.5}]})

    mode: Literal["argmax", "threshold"] = Field(
        default="argmax",
        description="argmax: the most likely class decides; threshold: act only when P(up) or P(down) >= threshold",
    )
    threshold: float = Field(default=0.5, strict=True, gt=0.0, le=1.0, allow_inf_nan=False)
    direction: Literal["long_short", "long_only"] = Field(
        default="long_short", description="long_only: a short signal stays flat (spot without borrowing)"
    )
    fee: float = Field(
        default=0.001, strict=True, ge=0.0, le=0.05, allow_inf_nan=False, description="per unit of position change"
    )
    slippage: float = Field(
        default=0.0, strict=True, ge=0.0, le=0.05, allow_inf_nan=False, description="per unit of position change"
    )


class ModelFamilyPublic(BaseModel):
    """A model family and the options a training may set."""

    name: str
    title: str
    input: str = Field(description="window: the network reads the (T, F) window; tabular: its last row, lags, stats")
    options: list[dict[str, Any]] = Field(description="name, kind, default, help, choices, minimum, maximum")


PRIORITY_DESCRIPTION = (
    "-10..10: waiting jobs start highest priority first, then in submission order (default 0; scheduled work 0)"
)


class TrainingParams(BaseModel):
    """One training, as a person asks for it; unset fields come from the settings (``ML_EPOCHS``...).

    ``data_source`` names where the candles come from; a client cannot pass a file path or a
    database URL (the server would read whatever it names):

    * ``default``: ``ML_DATA_PATH`` (the bundled real candles unless configured);
    * ``sample``: the bundled candles;
    * ``database``: the candles table at ``ML_CANDLES_DATABASE_URL`` (must be configured).
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"epochs": 50, "batch_size": 64}]},
    )

    model_name: str = Field(default=DEFAULT_MODEL_NAME, pattern=MODEL_NAME_PATTERN, description="registered model name")
    epochs: int | None = Field(default=None, strict=True, ge=1, le=1000)
    batch_size: int | None = Field(default=None, strict=True, ge=1, le=8192)
    lr: float | None = Field(
        default=None, strict=True, gt=0.0, le=1.0, allow_inf_nan=False, description="learning rate"
    )
    date_range: float | None = Field(
        default=None,
        strict=True,
        gt=0.0,
        le=3650.0,
        allow_inf_nan=False,
        description="use only the last N days of candles",
    )
    data_source: DataSource = "default"
    symbols: list[Annotated[str, Field(pattern=r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}$")]] | None = Field(
        default=None, max_length=50, description="e.g. ['ETH/BTC']; empty or unset: every series of the source"
    )
    timeframe: str | None = Field(default=None, pattern=r"^[1-9][0-9]{0,2}[mhdw]$", description="e.g. 5m")
    window: int | None = Field(default=None, strict=True, ge=2, le=1024, description="candles per input window")
    horizon: int | None = Field(default=None, strict=True, ge=1, le=500, description="label horizon in candles")
    seed: int | None = Field(default=None, strict=True, ge=0, le=2**32 - 1)
    model: ModelOptions | None = Field(
        default=None, description="the family and its options; a bare family name is accepted too, e.g. 'lightgbm'"
    )
    calibrate: bool = Field(
        default=False, strict=True, description="fit a temperature on the validation split (applied when serving)"
    )
    early_stopping_patience: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=1000,
        description="epochs without a better val_f1 before a network stops (default 5); 0: train every epoch",
    )
    policy: SignalPolicyParams | None = Field(default=None, description="the backtest's signal policy")
    export_onnx: bool = Field(default=True, strict=True)

    @field_validator("model", mode="before")
    @classmethod
    def _family_name(cls, value: Any) -> Any:
        return {"family": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _servable(self) -> TrainingParams:
        if not self.export_onnx and self.model is not None:
            from backend.ml_engine.families import get_family

            if get_family(self.model.family).input_kind == "tabular":
                raise ValueError(f"{self.model.family} is served from its ONNX export only; export_onnx must be true")
        return self

    auto_promote: bool = Field(default=False, strict=True, description="promote through the gate when it passes")
    min_accuracy_for_promotion: float | None = Field(default=None, strict=True, ge=0.0, le=1.0, allow_inf_nan=False)
    run_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
    priority: int = Field(default=0, strict=True, ge=-10, le=10, description=PRIORITY_DESCRIPTION)


class RetrainParams(BaseModel):
    """A retraining by the retraining pipeline (experiment ``auto_retraining``): the trigger's check,
    walk-forward validation, a candidate, the promotion gate. Unset fields: the pipeline's defaults
    (the production version's recipe, then the settings)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"trigger": "drift"}]})

    model_name: str = Field(default=DEFAULT_MODEL_NAME, pattern=MODEL_NAME_PATTERN)
    trigger: Literal["manual", "scheduled", "drift", "performance_drop"] = Field(
        default="manual", description="drift / performance_drop retrain only when their check fires"
    )
    force: bool = Field(default=False, strict=True, description="skip the check and the cooldown (never the lock)")
    data_source: DataSource = "default"
    symbols: list[Annotated[str, Field(pattern=r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}$")]] | None = Field(
        default=None, max_length=50
    )
    timeframe: str | None = Field(default=None, pattern=r"^[1-9][0-9]{0,2}[mhdw]$")
    train_days: float | None = Field(default=None, strict=True, gt=0.0, le=3650.0, allow_inf_nan=False)
    recent_days: float | None = Field(default=None, strict=True, gt=0.0, le=365.0, allow_inf_nan=False)
    epochs: int | None = Field(default=None, strict=True, ge=1, le=1000)
    batch_size: int | None = Field(default=None, strict=True, ge=1, le=8192)
    lr: float | None = Field(default=None, strict=True, gt=0.0, le=1.0, allow_inf_nan=False)
    n_folds: int | None = Field(default=None, strict=True, ge=1, le=20, description="walk-forward folds")
    model: ModelOptions | None = None
    min_accuracy_for_promotion: float | None = Field(default=None, strict=True, ge=0.0, le=1.0, allow_inf_nan=False)
    reason: str = Field(default="", max_length=1000, description="why, for the job record")
    checks_first: bool = Field(
        default=False,
        strict=True,
        description="a scheduler tick: check drift, then performance, and retrain for the first that fires; "
        "else retrain only when trigger is scheduled",
    )
    priority: int = Field(default=0, strict=True, ge=-10, le=10, description=PRIORITY_DESCRIPTION)


def _known_families() -> list[str]:
    from backend.ml_engine.families import family_names

    return family_names()


class ComparisonParams(BaseModel):
    """A comparison of model families (the leaderboard): the same walk-forward folds for every family
    and the baselines, metrics with block-bootstrap intervals, paired tests against the baselines.
    Unset fields come from the settings (``ML_WINDOW``, ``ML_EPOCHS``...); ``families`` empty or
    unset: every family. ``data_source`` names the candles as in :class:`TrainingParams`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"families": ["hybrid_cnn_lstm", "lightgbm"], "folds": 3, "epochs": 5}]},
    )

    data_source: DataSource = "default"
    symbols: list[Annotated[str, Field(pattern=r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}$")]] | None = Field(
        default=None, max_length=50, description="e.g. ['ETH/BTC']; empty or unset: every series of the source"
    )
    timeframe: str | None = Field(default=None, pattern=r"^[1-9][0-9]{0,2}[mhdw]$", description="e.g. 5m")
    date_range: float | None = Field(
        default=None, strict=True, gt=0.0, le=3650.0, allow_inf_nan=False, description="the last N days of candles"
    )
    window: int | None = Field(default=None, strict=True, ge=2, le=1024, description="candles per input window")
    horizon: int | None = Field(default=None, strict=True, ge=1, le=500, description="label horizon in candles")
    families: list[str] | None = Field(
        default=None, max_length=20, description="model families to compare (unset or empty: all of them)"
    )
    folds: int | None = Field(default=None, strict=True, ge=1, le=20, description="walk-forward folds")
    epochs: int | None = Field(default=None, strict=True, ge=1, le=1000, description="epochs of each network")
    batch_size: int | None = Field(default=None, strict=True, ge=1, le=8192)
    seed: int | None = Field(default=None, strict=True, ge=0, le=2**32 - 1)
    n_boot: int | None = Field(default=None, strict=True, ge=100, le=20_000, description="bootstrap resamples")
    policy: SignalPolicyParams | None = Field(default=None, description="the signal policy of the backtest")
    priority: int = Field(default=0, strict=True, ge=-10, le=10, description=PRIORITY_DESCRIPTION)

    @field_validator("families")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        known = _known_families()
        out: list[str] = []
        for name in value:
            key = name.strip().lower()
            if key not in known:  # the name itself is not repeated: an error never echoes the request
                raise ValueError(f"unknown model family; choose from: {', '.join(known)}")
            if key not in out:
                out.append(key)
        return out


#: A study name: what Optuna and the ``/studies/{name}`` route take.
STUDY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,119}$"

_OptionValue = bool | int | float | str | list[int]


class TuneParams(BaseModel):
    """A hyperparameter search (an Optuna study): ``trials`` more trials, ``parallel`` of them at once as jobs
    on the workers. The search space is the bundled one (``backend/ml_engine/tuning/search_space.toml``),
    narrowed to ``family`` when given, or ``space`` (TOML text laid over it). Unset fields come from the
    settings; ``data_source`` names the candles as in :class:`TrainingParams`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"family": "lightgbm", "trials": 20, "parallel": 2, "objective": "accuracy"}]},
    )

    trials: int = Field(default=20, strict=True, ge=1, le=1000, description="trials to add to the study")
    parallel: int = Field(default=1, strict=True, ge=1, le=64, description="trial jobs in flight at once")
    family: str | None = Field(default=None, description="search this family only (unset: the space's families)")
    objective: Literal["accuracy", "f1_macro", "log_loss", "net_return"] | None = None
    pruner: Literal["median", "hyperband", "none"] | None = None
    study: str | None = Field(
        default=None, pattern=STUDY_NAME_PATTERN, description="study name (unset: <family>-<data digest>-<objective>)"
    )
    space: str | None = Field(default=None, max_length=20_000, description="a TOML search space (the file's text)")
    model_options: dict[str, dict[str, _OptionValue]] | None = Field(
        default=None, description='fixed (not searched) options per family, e.g. {"lightgbm": {"n_estimators": 100}}'
    )
    data_source: DataSource = "default"
    symbols: list[Annotated[str, Field(pattern=r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}$")]] | None = Field(
        default=None, max_length=50
    )
    timeframe: str | None = Field(default=None, pattern=r"^[1-9][0-9]{0,2}[mhdw]$")
    date_range: float | None = Field(default=None, strict=True, gt=0.0, le=3650.0, allow_inf_nan=False)
    window: int | None = Field(default=None, strict=True, ge=2, le=1024)
    horizon: int | None = Field(default=None, strict=True, ge=1, le=500)
    folds: int | None = Field(default=None, strict=True, ge=1, le=20, description="walk-forward validation folds")
    holdout_frac: float | None = Field(
        default=None, strict=True, gt=0.0, lt=0.9, allow_inf_nan=False, description="final holdout share"
    )
    epochs: int | None = Field(default=None, strict=True, ge=1, le=1000, description="most epochs of the networks")
    seed: int | None = Field(default=None, strict=True, ge=0, le=2**32 - 1)

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: str | None) -> str | None:
        if value is None:
            return None
        key = value.strip().lower()
        known = _known_families()
        if key not in known:  # the name itself is not repeated: an error never echoes the request
            raise ValueError(f"unknown model family; choose from: {', '.join(known)}")
        return key

    @field_validator("model_options")
    @classmethod
    def _known_option_families(cls, value: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
        if value is None:
            return None
        known = _known_families()
        out: dict[str, dict[str, Any]] = {}
        for name, options in value.items():
            key = name.strip().lower()
            if key not in known:
                raise ValueError(f"model_options: unknown model family; choose from: {', '.join(known)}")
            out[key] = dict(options)
        return out


class TrialPublic(BaseModel):
    """One trial of a study."""

    number: int
    state: str = Field(description="COMPLETE, PRUNED, FAIL, RUNNING or WAITING")
    value: float | None = Field(default=None, description="the objective on the validation folds")
    value_is_final: bool = Field(
        default=False,
        description="True for a completed trial; a pruned trial's value is the last one it reported (an epoch "
        "or a fold), not comparable with the completed ones",
    )
    params: dict[str, Any] = Field(default_factory=dict)
    seconds: float | None = None
    host: str | None = Field(default=None, description="the worker host that ran it")
    sharpe: float | None = Field(default=None, description="per-bar Sharpe of its out-of-sample net returns")
    error: str | None = Field(default=None, description="why it failed or was pruned")
    retry_of: int | None = Field(default=None, description="the trial it retries (its worker died)")
    mlflow_run_id: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None


class StudySummaryPublic(BaseModel):
    """A study in a list: progress, best value, DSR and PBO."""

    name: str
    direction: str
    objective: str
    family: str = Field(description="the family searched, or several joined with +")
    n_trials: int
    states: dict[str, int] = Field(default_factory=dict)
    target: int = Field(description="trials the study is to reach")
    remaining: int = Field(description="trials still to start (0 once stopped)")
    parallel: int = 1
    stop_requested: bool = False
    finalized: bool = Field(default=False, description="holdout, DSR, PBO and plots are up to date")
    jobs_queued: int = 0
    jobs_running: int = 0
    best_trial: int | None = None
    best_value: float | None = None
    dsr: float | None = Field(default=None, description="Deflated Sharpe Ratio of the best trial")
    pbo: float | None = Field(default=None, description="Probability of Backtest Overfitting")
    mlflow_run_id: str | None = None
    created_at: str | None = None
    data_hash: str | None = None
    timeframe: str | None = None


class StudiesPublic(BaseModel):
    data: list[StudySummaryPublic]
    count: int


class StudyPublic(StudySummaryPublic):
    """A study in detail: every trial, the best one's params, the holdout read once, DSR and PBO in full."""

    best_params: dict[str, Any] = Field(default_factory=dict)
    holdout: dict[str, Any] | None = Field(default=None, description="the best trial on the final holdout (read once)")
    dsr_detail: dict[str, Any] | None = None
    pbo_detail: dict[str, Any] | None = None
    trials: list[TrialPublic] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)


class JobPublic(BaseModel):
    """A background job (a training, a retraining, a comparison) as recorded in the jobs table."""

    id: str
    kind: JobKind
    status: JobStatus
    model_name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    epoch: int = Field(default=0, description="epochs done")
    epochs: int | None = Field(default=None, description="epochs asked for")
    progress: float = Field(default=0.0, ge=0.0, le=1.0)
    stage: str | None = Field(default=None, description="what a running comparison does now, e.g. 'fold 2/3: tcn'")
    metrics: dict[str, float | None] = Field(default_factory=dict, description="latest epoch's metrics")
    run_id: str | None = None
    version: int | None = None
    result: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    cancel_requested: bool = False
    worker: str | None = Field(default=None, description="host:pid of the worker running it")
    priority: int = Field(default=0, description="waiting jobs start highest priority first, then oldest first")
    origin: str = Field(default="api", description="who submitted it: api (API, dashboard, CLI) or schedule")
    process_pid: int | None = Field(default=None, description="pid of the job's own process on the worker's host")
    threads: int | None = Field(default=None, description="CPU threads the job's process may use")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int


# --------------------------------------------------------------------------------------------
# The leaderboard (a comparison of model families)


class MetricIntervalPublic(BaseModel):
    """A metric on the out-of-sample predictions and its block-bootstrap interval."""

    value: float | None = None
    low: float | None = None
    high: float | None = None


class PairedTestPublic(BaseModel):
    """A family against a baseline on the same resampled rows: the difference of ``metric``, its
    interval and the two-sided p-value; ``significant`` when p < alpha."""

    metric: str = ""
    diff: float | None = None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    significant: bool = False


class LeaderboardRowPublic(BaseModel):
    """One model of the leaderboard: a family or a baseline."""

    model_config = ConfigDict(extra="allow")

    name: str
    kind: Literal["family", "baseline"] = "family"
    metrics: dict[str, MetricIntervalPublic] = Field(default_factory=dict)
    tests: dict[str, PairedTestPublic] = Field(
        default_factory=dict, description="baseline name -> paired test on the primary metric (accuracy)"
    )
    return_tests: dict[str, PairedTestPublic] = Field(
        default_factory=dict, description="baseline name -> paired test on the mean net return per bar"
    )
    train_seconds: float | None = None
    latency_p50_ms: float | None = None
    n_parameters: int | None = None
    n_trades: int | None = None
    too_few_trades: bool = False


class LeaderboardPublic(BaseModel):
    """The newest finished comparison of model families (experiment ``model_comparison``)."""

    model_config = ConfigDict(extra="allow")

    rows: list[LeaderboardRowPublic] = Field(default_factory=list)
    config: dict[str, Any] = Field(
        default_factory=dict, description="what was compared: data, window, horizon, families, folds, policy..."
    )
    primary_metric: str = Field(default="accuracy", description="the metric of the paired tests in `tests`")
    n_predictions: int = 0
    block: int = Field(default=0, description="bootstrap block length (rows)")
    folds: list[dict[str, Any]] = Field(default_factory=list)
    policy: str = Field(default="", description="the signal policy, in words")
    verdict: str = Field(default="", description="the comparison's conclusion, in English")
    wall_seconds: float | None = None
    run_id: str | None = None
    artifacts: dict[str, str] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict, description="symbols, timeframe, candles, first and last times")
    created_at: str | None = None


# --------------------------------------------------------------------------------------------
# Prediction and drift

_EARLIEST_CANDLE = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST_CANDLE = datetime(2200, 1, 1, tzinfo=UTC)


class CandleIn(BaseModel):
    """One OHLCV candle; ``timestamp`` in ISO 8601 or milliseconds since the epoch (UTC)."""

    model_config = ConfigDict(extra="forbid")

    timestamp: datetime
    open: float = Field(gt=0, allow_inf_nan=False)
    high: float = Field(gt=0, allow_inf_nan=False)
    low: float = Field(gt=0, allow_inf_nan=False)
    close: float = Field(gt=0, allow_inf_nan=False)
    volume: float = Field(ge=0, allow_inf_nan=False)

    @field_validator("timestamp")
    @classmethod
    def _plausible_time(cls, value: datetime) -> datetime:
        # Candles are stored at nanosecond resolution, which ends in April 2262.
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        if not _EARLIEST_CANDLE <= aware < _LATEST_CANDLE:
            raise ValueError("timestamp must be between 1970-01-01 and 2200-01-01 (UTC)")
        return value


class PredictionPublic(BaseModel):
    """Class probabilities of the next move and the signal the production model gives."""

    model_config = ConfigDict(protected_namespaces=())

    probabilities: dict[str, float | None] = Field(description="down, flat, up")
    signal: str
    confidence: float | None = None
    model_name: str
    model_version: int | str | None = None
    backend: str | None = None
    candle_time: datetime | str | None = None


class PredictionsPublic(BaseModel):
    """One prediction per symbol (``POST /predict`` with ``symbols``), every window in one model call."""

    predictions: dict[str, PredictionPublic] = Field(description="by symbol, in the order they were sent")


class DriftPublic(BaseModel):
    """The drift check: recent candles against the production version's training data (PSI + KS)."""

    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    version: int | None = Field(default=None, description="the production version compared against")
    drifted: bool
    summary: str
    drift_share: float | None = None
    drifted_features: list[str] = Field(default_factory=list)
    report: dict[str, Any] = Field(default_factory=dict, description="per-feature PSI / KS table and the thresholds")


# --------------------------------------------------------------------------------------------
# Health


class ComponentHealth(BaseModel):
    kind: str
    location: str = Field(description="URI or path, password masked")
    reachable: bool
    error: str | None = None


class WorkerPublic(BaseModel):
    id: str
    host: str
    pid: int
    slots: int = Field(default=1, description="jobs it runs at once, each in its own process")
    threads_per_job: int | None = None
    running_jobs: list[str] = Field(default_factory=list, description="ids of the jobs it runs now")
    queue: str | None = Field(default=None, description="the queue it consumes (password masked)")
    started_at: datetime
    heartbeat_at: datetime
    alive: bool


class ProductionModel(BaseModel):
    name: str
    production_version: int | None = None
    latest_version: int | None = None


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    problems: list[str] = Field(default_factory=list, description="why it is degraded (empty when ok)")
    api_ready: bool = Field(
        default=True, description="the stores and the queue answer: the API can do its work (else HTTP 503)"
    )
    read_only: bool = Field(description="no ML_API_TOKEN configured: state-changing routes answer 403")
    tracking_store: ComponentHealth
    jobs_store: ComponentHealth
    queue: ComponentHealth
    workers: list[WorkerPublic] = Field(default_factory=list)
    jobs: dict[str, int] = Field(default_factory=dict, description="job count per status")
    models: list[ProductionModel] = Field(default_factory=list)
