"""One leaderboard: every family and the naive baselines on the same walk-forward folds, scored with
block-bootstrap intervals and paired tests, written as Markdown, PNG and JSON and logged to MLflow."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import EXPERIMENT_COMPARISON
from ._config import BASELINES, LeaderboardConfig
from ._report import plot_leaderboard, render_markdown, verdict
from ._stats import ModelScores, block_length, interval_metrics, net_returns, paired_tests

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Settings
    from ..families import FittedModel
    from ..walk_forward import FeatureTable, Fold

__all__ = [
    "ARTIFACT_JSON",
    "LATENCY_CALLS",
    "LeaderboardInputError",
    "LeaderboardResult",
    "latest_leaderboard",
    "run_leaderboard",
]

logger = logging.getLogger("backend.ml_engine.leaderboard")

#: The artifact names (local files and MLflow artifacts).
ARTIFACT_MARKDOWN = "leaderboard.md"
ARTIFACT_PNG = "leaderboard.png"
ARTIFACT_JSON = "leaderboard.json"
ARTIFACT_RELIABILITY = "reliability.png"
#: Single-window calls timed per family (after LATENCY_WARMUP untimed ones).
LATENCY_CALLS = 200
LATENCY_WARMUP = 20
PRIMARY_METRIC = "accuracy"

Progress = Callable[[str, float], None]


class LeaderboardInputError(ValueError):
    """Bad input found before any training or MLflow run (unknown family, options, data, folds)."""


@dataclass
class LeaderboardResult:
    """The leaderboard: one row per model (families, then baselines) and how it was measured."""

    config: LeaderboardConfig
    rows: list[dict[str, Any]]
    """{"name", "kind": "family"|"baseline", "metrics": {metric: {"value", "low", "high"}},
    "tests": {baseline: {"metric", "diff", "low", "high", "p_value", "significant"}} (accuracy),
    "return_tests": same shape on the mean net return per bar, "train_seconds", "latency_p50_ms",
    "latency_backend", "n_parameters", "n_trades", "too_few_trades"}."""
    n_predictions: int
    block: int
    folds: list[dict[str, Any]]
    policy: str
    verdict: str
    wall_seconds: float
    run_id: str | None = None
    artifacts: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    """symbols, timeframe, candles, first, last, oos_first, oos_last."""
    primary_metric: str = PRIMARY_METRIC
    latency_note: str = ""
    command: str | None = None
    """The command line that produced it (the CLI sets it; shown at the top of the Markdown)."""
    created_at: str = ""

    def row(self, name: str) -> dict[str, Any]:
        return next(r for r in self.rows if r["name"] == name)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "config": self.config.to_dict(),
            "rows": self.rows,
            "n_predictions": self.n_predictions,
            "block": self.block,
            "folds": self.folds,
            "policy": self.policy,
            "verdict": self.verdict,
            "wall_seconds": self.wall_seconds,
            "run_id": self.run_id,
            "artifacts": dict(self.artifacts),
            "data": self.data,
            "primary_metric": self.primary_metric,
            "latency_note": self.latency_note,
            "command": self.command,
            "created_at": self.created_at,
        }
        cleaned: dict[str, Any] = _json_safe(out)
        return cleaned

    def markdown(self) -> str:
        return render_markdown(self.to_dict())


def _json_safe(obj: Any) -> Any:
    """NaN and inf -> None, numpy scalars -> Python, tuples -> lists (strict JSON)."""
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


# --------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------


def _prepare(config: LeaderboardConfig, settings: Settings) -> tuple[Any, FeatureTable, list[Fold], dict[str, Any]]:
    """Data, features once, folds and each family's config; `LeaderboardInputError` for bad input."""
    from ..families import FamilyError
    from ..training import TrainingRequest, load_training_data
    from ..walk_forward import WalkForwardConfig, build_feature_table, make_folds

    try:
        config.validate()  # family names and options first: no data read for a typo
        request = TrainingRequest.from_settings(settings, window=config.window, horizon=config.horizon)
        request.data = dataclasses.replace(config.data)
        data = load_training_data(request)
        table = build_feature_table(list(data.series), request.features, request.labels, config.window)
        wf = WalkForwardConfig(n_folds=config.folds)
        folds = make_folds(
            table.ends,
            table.series_id,
            table.times_ns,
            wf.n_folds,
            gap=wf.resolve_gap(table.window, table.horizon),
            bar_ns=table.bar_ns,
            mode=wf.mode,
            initial_train_frac=wf.initial_train_frac,
            val_frac=wf.val_frac,
            min_train_samples=wf.min_train_samples,
            min_test_samples=wf.min_test_samples,
        )
        model_configs = config.validate(n_features=len(table.feature_names))
    except (FamilyError, ValueError, TypeError) as exc:  # DataValidationError is a ValueError
        from ..errors import one_line

        raise LeaderboardInputError(one_line(exc)) from exc
    return data, table, folds, model_configs


def _previous_direction(table: FeatureTable, rows: np.ndarray) -> np.ndarray:
    """The label of row t - horizon (the last move fully realised at t), flat where it is undefined
    or lies in another series or segment."""
    prev_rows = rows - table.horizon
    ok = prev_rows >= 0
    safe = np.where(ok, prev_rows, 0)
    ok &= (table.series_id[safe] == table.series_id[rows]) & (table.segment[safe] == table.segment[rows])
    prev = np.where(ok, table.y[safe], 1)
    out: np.ndarray = np.where(prev < 0, 1, prev).astype(np.int64)
    return out


def _latency(fitted: FittedModel, windows: np.ndarray, folder: Path) -> tuple[float | None, str]:
    """p50 ms of one-window calls: the family's ONNX export through ONNX Runtime (1 thread; tabular
    families compute their columns first, as the Predictor does), else the native ``logits``."""
    call: Callable[[np.ndarray], Any]
    backend = "onnxruntime"
    try:
        import onnxruntime as ort

        path = folder / f"{fitted.family}.onnx"
        fitted.export_onnx(windows[: min(8, len(windows))], path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        if fitted.input_kind == "tabular":
            from ..tabular import window_features

            tab = getattr(fitted, "tabular")  # noqa: B009 - TabularFitted's column config

            def call(w: np.ndarray) -> Any:
                return session.run(None, {name: window_features(w, tab)})

        else:

            def call(w: np.ndarray) -> Any:
                return session.run(None, {name: w})

    except Exception as exc:  # noqa: BLE001 - an export problem must not lose the leaderboard
        logger.warning("%s: no ONNX latency (%s); timing the native model", fitted.family, exc)
        backend = "native"
        call = fitted.logits
    n = len(windows)
    if n == 0:
        return None, backend
    for i in range(LATENCY_WARMUP):
        call(windows[i % n : i % n + 1])
    ms = np.empty(min(LATENCY_CALLS, n))
    for i in range(ms.size):
        w = windows[i : i + 1]
        t0 = time.perf_counter_ns()
        call(w)
        ms[i] = (time.perf_counter_ns() - t0) / 1e6
    return float(np.percentile(ms, 50)), backend


def _describe_data(data: Any, table: FeatureTable, rows: np.ndarray) -> dict[str, Any]:
    ts = table.timestamps
    return {
        "symbols": list(table.symbols),
        "timeframe": table.timeframe,
        "candles": int(table.X.shape[0]),
        "first": str(np.datetime_as_string(ts.min(), unit="m")),
        "last": str(np.datetime_as_string(ts.max(), unit="m")),
        "oos_first": str(np.datetime_as_string(ts[rows].min(), unit="m")),
        "oos_last": str(np.datetime_as_string(ts[rows].max(), unit="m")),
        "data_hash": getattr(data, "digest", None),
    }


def run_leaderboard(
    config: LeaderboardConfig,
    *,
    settings: Settings,
    output_dir: Path | None = None,
    tracking: bool = True,
    progress: Progress | None = None,
    callbacks: Sequence[Any] = (),
    command: str | None = None,
) -> LeaderboardResult:
    """Train every family of ``config`` on each walk-forward fold, score families and baselines on
    the pooled out-of-sample rows, write ``leaderboard.md``, ``leaderboard.png``,
    ``leaderboard.json`` and ``reliability.png`` into ``output_dir`` (default
    ``<ML_OUTPUT_DIR>/leaderboard/<timestamp>``) and, with ``tracking``, log them with the headline
    metrics into a FINISHED run of experiment ``model_comparison``.

    Bad input (unknown family, options, unreadable data, too little data for the folds) raises
    :class:`LeaderboardInputError` before any training and before any MLflow run. ``callbacks`` go
    to every fit (a callback that raises cancels; the run then ends FAILED or KILLED). ``command``:
    the command line shown at the top of the Markdown.
    """
    t_start = time.perf_counter()
    report = progress or (lambda message, fraction: None)
    stamp = datetime.now(UTC)
    report("reading the candles and building features", 0.0)
    data, table, folds, model_configs = _prepare(config, settings)
    families = list(model_configs)
    out_dir = (
        Path(output_dir)
        if output_dir is not None
        else Path(settings.output_dir) / "leaderboard" / (stamp.strftime("%Y%m%d-%H%M%S"))
    )
    out_dir.mkdir(parents=True, exist_ok=True)

    tracker = None
    if tracking:
        from ..mlflow_integration import get_mlflow_tracker

        try:
            tracker = get_mlflow_tracker(EXPERIMENT_COMPARISON, settings=settings)
        except Exception as exc:
            if type(exc).__name__ == "TrackingStoreUnavailable":
                from ..errors import one_line

                raise LeaderboardInputError(one_line(exc)) from exc
            raise

    def work(run_id: str | None) -> LeaderboardResult:
        result = _compute(
            config, data, table, folds, model_configs, out_dir, report, callbacks, t_start, settings.device
        )
        result.run_id = run_id
        result.command = command
        result.created_at = stamp.isoformat()
        _write(result, out_dir)
        if tracker is not None:
            _log(tracker, result)
        return result

    if tracker is None:
        result = work(None)
    else:
        tags = {
            "leaderboard": "true",
            "symbol": ",".join(table.symbols),
            "timeframe": table.timeframe,
            "families": ",".join(families),
            "data_hash": getattr(data, "digest", ""),
        }
        description = (
            f"Leaderboard: {', '.join(families)} and the baselines {', '.join(BASELINES)} on {config.folds} "
            f"walk-forward folds of {', '.join(table.symbols)} {table.timeframe}."
        )
        run_name = f"leaderboard-{stamp:%Y%m%d-%H%M%S}"
        with tracker.run(run_name=run_name, tags=tags, description=description) as run_id:
            tracker.log_params({"leaderboard": config.to_dict()})
            result = work(run_id)
    report("done", 1.0)
    return result


def _compute(
    config: LeaderboardConfig,
    data: Any,
    table: FeatureTable,
    folds: list[Fold],
    model_configs: dict[str, Any],
    out_dir: Path,
    report: Progress,
    callbacks: Sequence[Any],
    t_start: float,
    device: str = "auto",
) -> LeaderboardResult:
    from .. import evaluation
    from ..families import get_family
    from ..trainer import TrainerConfig
    from ..walk_forward import fold_datasets

    families = list(model_configs)
    policy = config.policy
    n_features = len(table.feature_names)
    tcfg = TrainerConfig(
        epochs=config.epochs, batch_size=config.batch_size, seed=config.seed, checkpoint_dir=None, device=device
    )
    rows_all = np.concatenate([f.test for f in folds])
    order = np.argsort(rows_all, kind="stable")  # series after series, each in time order
    rows = rows_all[order]
    y = table.y[rows].astype(np.int64)
    n = int(rows.size)
    steps = len(families) * len(folds) + 1
    done = 0

    # families, fold by fold (the normalised copy of X is made once per fold and shared)
    proba: dict[str, list[np.ndarray]] = {name: [] for name in families}
    train_s: dict[str, float] = dict.fromkeys(families, 0.0)
    epochs: dict[str, list[int]] = {name: [] for name in families}
    last: dict[str, FittedModel] = {}
    fold_info: list[dict[str, Any]] = []
    majority: list[np.ndarray] = []
    latency_windows: np.ndarray | None = None
    for fold in folds:
        train_ds, val_ds, test_ds, _ = fold_datasets(table, fold)
        counts = np.bincount(table.y[fold.train], minlength=3)
        majority.append(np.full(fold.test.size, int(np.argmax(counts)), dtype=np.int64))
        info = fold.describe(table.timestamps)
        info["majority_class"] = evaluation.CLASS_NAMES[int(np.argmax(counts))]
        fold_info.append(info)
        for name in families:
            report(f"{name}: fold {fold.index + 1}/{len(folds)} ({fold.train.size} train windows)", done / steps)
            fam = get_family(name)
            mcfg = fam.with_shape(model_configs[name], n_features=n_features, window=table.window)
            t0 = time.perf_counter()
            fitted = fam.fit(mcfg, train_ds, val_ds, tcfg, callbacks=list(callbacks))
            train_s[name] += time.perf_counter() - t0
            epochs[name].append(len(fitted.fit.history))
            proba[name].append(np.asarray(fitted.predict_proba(test_ds), dtype=np.float64))
            last[name] = fitted
            done += 1
            logger.info("%s fold %d/%d trained in %.1f s", name, fold.index + 1, len(folds), time.perf_counter() - t0)
        if fold is folds[-1]:
            k = min(LATENCY_CALLS, len(test_ds))
            latency_windows = test_ds.get_batch(np.arange(k))[0].numpy()

    report("scoring: bootstrap intervals and paired tests", done / steps)
    prev = _previous_direction(table, rows)
    run_ids = table.series_id[rows].astype(np.int64) * 1_000_000 + table.segment[rows]
    close, open_ = table.close[rows], table.open[rows]

    def scores(name: str, kind: str, p: np.ndarray) -> ModelScores:
        net, bt = net_returns(
            policy.positions(p),
            close,
            open_,
            run_ids,
            fee=policy.fee,
            slippage=policy.slippage,
            timeframe=table.timeframe,
        )
        return ModelScores(name, kind, p, p.argmax(axis=1), net, int(bt["n_trades"]))

    onehot = np.eye(3)
    models = [scores(name, "family", np.concatenate(proba[name])[order]) for name in families]
    bases = [
        scores("majority", "baseline", onehot[np.concatenate(majority)[order]]),
        scores("previous_direction", "baseline", onehot[prev]),
    ]
    block = block_length(n, table.horizon)
    ppy = evaluation.periods_per_year(table.timeframe)
    stat_kw: dict[str, Any] = {"block": block, "n_boot": config.n_boot, "alpha": config.alpha, "seed": config.seed}

    latency_note = (
        f"median of {LATENCY_CALLS} single-window calls on the last fold's test windows after {LATENCY_WARMUP} "
        "warm-up calls, through the family's ONNX export in ONNX Runtime (1 thread; the tabular families compute "
        "their columns in numpy first, as the Predictor does), the model alone without the feature pipeline; "
        "`native` in the JSON where the export failed and the native model was timed."
    )
    out_rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="leaderboard-onnx-") as tmp:
        for s in models:
            fitted = last[s.name]
            lat, backend = _latency(fitted, latency_windows if latency_windows is not None else np.empty(0), Path(tmp))
            acc_tests, ret_tests = paired_tests(s, bases, y, **stat_kw)
            out_rows.append(
                {
                    "name": s.name,
                    "kind": "family",
                    "metrics": interval_metrics(s, y, periods_per_year=ppy, **stat_kw),
                    "tests": acc_tests,
                    "return_tests": ret_tests,
                    "train_seconds": train_s[s.name],
                    "latency_p50_ms": lat,
                    "latency_backend": backend,
                    "n_parameters": int(fitted.n_parameters()),
                    "n_trades": s.n_trades,
                    "too_few_trades": s.n_trades < evaluation.MIN_TRADES,
                    "epochs": epochs[s.name],
                    "model_config": get_family(s.name).config_to_dict(fitted.config),
                }
            )
    for s in bases:
        out_rows.append(
            {
                "name": s.name,
                "kind": "baseline",
                "metrics": interval_metrics(s, y, periods_per_year=ppy, **stat_kw),
                "tests": {},
                "return_tests": {},
                "train_seconds": 0.0,
                "latency_p50_ms": None,
                "latency_backend": None,
                "n_parameters": 0,
                "n_trades": s.n_trades,
                "too_few_trades": s.n_trades < evaluation.MIN_TRADES,
            }
        )
    out_rows = _json_safe(out_rows)
    result = LeaderboardResult(
        config=config,
        rows=out_rows,
        n_predictions=n,
        block=block,
        folds=_json_safe(fold_info),
        policy=policy.describe(),
        verdict=verdict(out_rows, config.alpha, PRIMARY_METRIC),
        wall_seconds=0.0,
        data=_describe_data(data, table, rows),
        latency_note=latency_note,
    )
    # the reliability diagram needs the probabilities: drawn here, while they exist
    from ..calibration import reliability_curve
    from ..plots import plot_reliability

    curves = {s.name: reliability_curve(s.proba, y) for s in models}
    plot_reliability(curves, out_dir / ARTIFACT_RELIABILITY, title="Reliability (out-of-sample, all folds)")
    result.artifacts["reliability"] = str(out_dir / ARTIFACT_RELIABILITY)
    result.wall_seconds = time.perf_counter() - t_start
    return result


def _write(result: LeaderboardResult, out_dir: Path) -> None:
    """leaderboard.md, leaderboard.png and leaderboard.json (the paths go into ``result.artifacts``)."""
    result.artifacts.update(
        {
            "markdown": str(out_dir / ARTIFACT_MARKDOWN),
            "png": str(out_dir / ARTIFACT_PNG),
            "json": str(out_dir / ARTIFACT_JSON),
        }
    )
    d = result.to_dict()
    plot_leaderboard(d, out_dir / ARTIFACT_PNG)
    (out_dir / ARTIFACT_MARKDOWN).write_text(render_markdown(d))
    (out_dir / ARTIFACT_JSON).write_text(json.dumps(d, indent=2, allow_nan=False))


def _log(tracker: Any, result: LeaderboardResult) -> None:
    """Headline metrics (``<model>_<metric>``, ``_low``, ``_high``; ``<family>_vs_<baseline>_p``...),
    the verdict as the run's description, and the four files as artifacts."""
    from ..mlflow_integration import NOTE_TAG

    values: dict[str, float] = {
        "n_predictions": float(result.n_predictions),
        "block": float(result.block),
        "wall_seconds": result.wall_seconds,
    }
    for r in result.rows:
        name = r["name"]
        for key, m in r["metrics"].items():
            for suffix, part in (("", "value"), ("_low", "low"), ("_high", "high")):
                if m.get(part) is not None:
                    values[f"{name}_{key}{suffix}"] = float(m[part])
        for key in ("train_seconds", "latency_p50_ms", "n_parameters", "n_trades"):
            if r.get(key) is not None:
                values[f"{name}_{key}"] = float(r[key])
        for base, t in (r.get("tests") or {}).items():
            for suffix, part in (("_p", "p_value"), ("_diff", "diff")):
                if t.get(part) is not None:
                    values[f"{name}_vs_{base}{suffix}"] = float(t[part])
        for base, t in (r.get("return_tests") or {}).items():
            for suffix, part in (("_return_p", "p_value"), ("_return_diff", "diff")):
                if t.get(part) is not None:
                    values[f"{name}_vs_{base}{suffix}"] = float(t[part])
    tracker.log_metrics(values)
    tracker.set_tags(
        {
            "verdict": result.verdict,
            "signal_policy": result.policy,
            NOTE_TAG: f"{result.verdict}\n\nSignal policy: {result.policy}. {result.n_predictions} out-of-sample "
            f"predictions, bootstrap blocks of {result.block} rows.",
        }
    )
    for key in ("markdown", "png", "json", "reliability"):
        path = result.artifacts.get(key)
        if path:
            tracker.log_artifact(path)
    tracker.flush()


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def latest_leaderboard(settings: Settings) -> dict[str, Any] | None:
    """``to_dict()`` of the newest FINISHED run of experiment ``model_comparison`` (from its
    ``leaderboard.json`` artifact), or None when there is none (no store file, no experiment, no
    finished run with the file). Reads only: creates no experiment."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from ..mlflow_integration.stores import resolve_tracking_uri, sqlite_path

    uri = settings.mlflow_tracking_uri
    db = sqlite_path(uri)
    if db is not None and not db.exists():
        return None
    client = MlflowClient(tracking_uri=resolve_tracking_uri(uri))
    experiment = client.get_experiment_by_name(EXPERIMENT_COMPARISON)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string="attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=20,
    )
    for run in runs:
        with tempfile.TemporaryDirectory(prefix="leaderboard-") as tmp:
            try:
                path = client.download_artifacts(run.info.run_id, ARTIFACT_JSON, tmp)
                loaded: dict[str, Any] = json.loads(Path(path).read_text())
            except (MlflowException, OSError, ValueError) as exc:
                logger.debug("run %s has no readable %s: %s", run.info.run_id, ARTIFACT_JSON, exc)
                continue
        loaded["run_id"] = run.info.run_id
        return loaded
    return None
