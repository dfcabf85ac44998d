"""Service settings: one pydantic-settings object, read from the environment and `.env`.

Build it at the entry point (`Settings()`), then pass it (or the typed configs it
produces) inward. With no `.env` every value has an embedded default: a SQLite
tracking store and local artifacts under `./mlruns`, the bundled real candles.

Names follow the user's guide: `MLFLOW_TRACKING_URI`, `MLFLOW_ARTIFACT_LOCATION`,
`MLFLOW_EXPERIMENT_NAME`. Other variables use the `ML_` prefix.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLE_DATA_DIR = PACKAGE_DIR / "sample_data"

#: Experiment names from the user's guide, with the description each is created with.
EXPERIMENT_DEFAULT = "trading_bot_ml"
EXPERIMENT_TRAINING = "model_training"
EXPERIMENT_RETRAINING = "auto_retraining"
#: Leaderboards: every model family against the naive baselines on the same folds (`leaderboard`).
EXPERIMENT_COMPARISON = "model_comparison"
#: Hyperparameter search: one parent run per Optuna study, a nested run per trial (`tuning`).
EXPERIMENT_TUNING = "hyperparameter_search"

#: Market sessions of the candles (`data.candles`, Sessions): closures are not gaps.
SESSIONS = ("auto", "24/7", "weekdays")

#: The registered model the guide trains, serves and retrains.
DEFAULT_MODEL_NAME = "hybrid_cnn_lstm"


class Settings(BaseSettings):
    """Everything a deployment may change, with defaults that work on a fresh clone."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    # --- MLflow (names as in the user's guide) -------------------------------------------
    mlflow_tracking_uri: str = Field(
        default="sqlite:///mlruns/mlflow.db",
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "mlflow_tracking_uri"),
        description="sqlite:///..., postgresql://user:pass@host:5432/db or http://mlflow-server:5000",
    )
    mlflow_artifact_location: str = Field(
        default="./mlruns/artifacts",
        validation_alias=AliasChoices("MLFLOW_ARTIFACT_LOCATION", "mlflow_artifact_location"),
    )
    mlflow_experiment_name: str = Field(
        default=EXPERIMENT_DEFAULT,
        validation_alias=AliasChoices("MLFLOW_EXPERIMENT_NAME", "mlflow_experiment_name"),
    )

    # --- data ---------------------------------------------------------------------------
    data_path: str = Field(
        default=str(SAMPLE_DATA_DIR),
        validation_alias=AliasChoices("ML_DATA_PATH", "data_path"),
        description="A candle file (csv/parquet/feather) or a folder of them",
    )
    symbols: str = Field(
        default="",
        validation_alias=AliasChoices("ML_SYMBOLS", "symbols"),
        description="Comma-separated symbols to train on (empty: every file in data_path)",
    )
    timeframe: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ML_TIMEFRAME", "timeframe"),
        description="Candle timeframe such as 5m; empty: taken from file names and checked against the data",
    )
    max_fill_gap: int = Field(
        default=3,
        ge=0,
        validation_alias=AliasChoices("ML_MAX_FILL_GAP", "max_fill_gap"),
        description="Gaps of at most this many missing candles are forward-filled; longer gaps split the series",
    )
    session: str = Field(
        default="auto",
        validation_alias=AliasChoices("ML_SESSION", "session"),
        description="When the market is closed: auto (detected from the data), 24/7 (crypto) or weekdays "
        "(forex, stocks: weekends and, for daily bars, holidays are closures, not gaps)",
    )
    candles_database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ML_CANDLES_DATABASE_URL", "candles_database_url"),
    )
    candles_table: str = Field(default="candles", validation_alias=AliasChoices("ML_CANDLES_TABLE", "candles_table"))
    cache_dir: str = Field(default="./data_cache", validation_alias=AliasChoices("ML_CACHE_DIR", "cache_dir"))

    # --- model and training defaults ----------------------------------------------------
    window: int = Field(default=60, ge=2, validation_alias=AliasChoices("ML_WINDOW", "window"))
    horizon: int = Field(default=6, ge=1, validation_alias=AliasChoices("ML_HORIZON", "horizon"))
    epochs: int = Field(default=20, ge=1, validation_alias=AliasChoices("ML_EPOCHS", "epochs"))
    batch_size: int = Field(default=128, ge=1, validation_alias=AliasChoices("ML_BATCH_SIZE", "batch_size"))
    learning_rate: float = Field(default=1e-3, gt=0, validation_alias=AliasChoices("ML_LEARNING_RATE", "learning_rate"))
    seed: int = Field(default=42, validation_alias=AliasChoices("ML_SEED", "seed"))
    device: str = Field(default="auto", validation_alias=AliasChoices("ML_DEVICE", "device"))
    output_dir: str = Field(default="./outputs", validation_alias=AliasChoices("ML_OUTPUT_DIR", "output_dir"))
    jobs_database_url: SecretStr = Field(
        default=SecretStr("sqlite:///mlruns/jobs.db"),
        validation_alias=AliasChoices("ML_JOBS_DATABASE_URL", "jobs_database_url"),
        description="SQLAlchemy URL of the job records (sqlite:///... or postgresql://...); when PostgreSQL it "
        "is also the coordination database every lock lives on (promotion, retraining, job claiming)",
    )
    tuning_storage: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ML_TUNING_STORAGE", "tuning_storage"),
        description="Optuna RDB storage URL of the hyperparameter studies (sqlite:///... or postgresql://...); "
        "unset: sqlite:///<ML_OUTPUT_DIR>/optuna.db",
    )
    prediction_log: bool = Field(
        default=True,
        validation_alias=AliasChoices("ML_PREDICTION_LOG", "prediction_log"),
        description="Record every served prediction (Predictor, POST /predict, the served pyfunc) in the prediction "
        "log: buffered and written in batches by a background thread, never slowing or failing a request",
    )
    prediction_log_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ML_PREDICTION_LOG_URL", "prediction_log_url"),
        description="SQLAlchemy URL of the prediction log (table ml_predictions); unset: the jobs database",
    )
    prediction_log_capacity: int = Field(
        default=100_000,
        ge=100,
        le=10_000_000,
        validation_alias=AliasChoices("ML_PREDICTION_LOG_CAPACITY", "prediction_log_capacity"),
        description="Predictions buffered in memory while the database is slow or down; beyond that the oldest "
        "are dropped (counted and logged)",
    )
    trace_sample_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        validation_alias=AliasChoices("ML_TRACE_SAMPLE_RATE", "trace_sample_rate"),
        description="Share of recorded predictions (0..1, drawn at random per prediction) also written as MLflow "
        "traces to the experiment prediction_traces, by a background thread; 0: none",
    )
    outcome_expiry_hours: float = Field(
        default=48.0,
        gt=0,
        le=24 * 365,
        validation_alias=AliasChoices("ML_OUTCOME_EXPIRY_HOURS", "outcome_expiry_hours"),
        description="A logged prediction whose exit candle the source still lacks this long after it should exist "
        "expires (counted, never scored)",
    )
    prediction_retention_days: float = Field(
        default=90.0,
        gt=0,
        validation_alias=AliasChoices("ML_PREDICTION_RETENTION_DAYS", "prediction_retention_days"),
        description="Logged predictions older than this (by candle time) are deleted by the outcome job; their "
        "day's live metrics stay (rolled up in ml_live_metrics)",
    )
    tuning_trials_per_job: int = Field(
        default=10,
        ge=1,
        le=10_000,
        validation_alias=AliasChoices("ML_TUNING_TRIALS_PER_JOB", "tuning_trials_per_job"),
        description="Trials one trial job runs one after another while its study has trials left (the job process's "
        "start, ~5 s of imports, is paid once for them); then the job ends and the study queues the next",
    )
    tuning_heartbeat_s: int = Field(
        default=30,
        ge=1,
        le=3600,
        validation_alias=AliasChoices("ML_TUNING_HEARTBEAT_S", "tuning_heartbeat_s"),
        description="Seconds between a running trial's heartbeats in the Optuna storage; a trial silent for two "
        "of them (its worker died) ends FAIL and is retried once with the same parameters",
    )
    min_accuracy_for_promotion: float = Field(
        default=0.5,
        ge=0,
        le=1,
        validation_alias=AliasChoices("ML_MIN_ACCURACY_FOR_PROMOTION", "min_accuracy_for_promotion"),
    )
    gate_min_dsr: float | None = Field(
        default=None,
        ge=0,
        le=1,
        validation_alias=AliasChoices("ML_GATE_MIN_DSR", "gate_min_dsr"),
        description="Promotion gate: the smallest Deflated Sharpe Ratio of the search a version came from "
        "(version tag tuning_dsr); unset: not checked. A version without the tag is refused while it is set",
    )
    gate_max_pbo: float | None = Field(
        default=None,
        ge=0,
        le=1,
        validation_alias=AliasChoices("ML_GATE_MAX_PBO", "gate_max_pbo"),
        description="Promotion gate: the largest probability of backtest overfitting of the search a version "
        "came from (version tag tuning_pbo); unset: not checked. A version without the tag is refused while it is set",
    )

    # --- logging ------------------------------------------------------------------------
    log_level: str = Field(
        default="INFO",
        validation_alias=AliasChoices("ML_LOG_LEVEL", "log_level"),
        description="Level of the backend.* loggers on the console of the API, worker and dashboard",
    )
    log_format: str = Field(
        default="text",
        validation_alias=AliasChoices("ML_LOG_FORMAT", "log_format"),
        description="Log lines of the API, worker, scheduler and dashboard: text, or json (one object per line)",
    )

    @field_validator("device")
    @classmethod
    def _device_known(cls, v: str) -> str:
        if v not in {"auto", "cpu", "cuda"} and not v.startswith("cuda:"):
            raise ValueError("device must be auto, cpu, cuda or cuda:N")
        return v

    @field_validator("session")
    @classmethod
    def _session_known(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in SESSIONS:  # the names of data.candles.SESSIONS (tests/test_market_sessions.py)
            raise ValueError(f"session must be one of {', '.join(SESSIONS)}")
        return v

    @field_validator("log_level")
    @classmethod
    def _log_level_known(cls, v: str) -> str:
        from backend.logging_setup import parse_level

        parse_level(v)  # ValueError names the accepted levels
        return v.strip().upper()

    @field_validator("log_format")
    @classmethod
    def _log_format_known(cls, v: str) -> str:
        from backend.logging_setup import parse_format

        return parse_format(v)  # ValueError names the accepted formats

    @property
    def symbol_list(self) -> list[str]:
        return [s.strip() for s in self.symbols.split(",") if s.strip()]
