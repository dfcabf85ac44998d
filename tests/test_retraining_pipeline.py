"""Retraining pipeline: triggers on real data, the full cycle on PostgreSQL, lock, cooldown, refusal,
failure, scheduler and CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import textwrap
import threading

import pytest
from conftest import REPO, SAMPLE_DATA, SHARED_MARKET, TINY_MODEL, make_settings
from mlflow import MlflowClient
from synthetic import write_trending_csv

from backend.ml_engine.model_registry import ModelRegistry
from backend.ml_engine.predictor import Predictor
from backend.ml_engine.retraining_pipeline import (
    EXIT_BAD_INPUT,
    EXIT_DRIFT,
    EXIT_OK,
    RetrainingConfig,
    RetrainingPipeline,
    main,
)
from backend.ml_engine.training_orchestrator import TrainingOrchestrator
from backend.ml_engine.walk_forward import WalkForwardConfig

MODEL = "hybrid_cnn_lstm"
XRP_FUTURES = SHARED_MARKET / "XRP_USDT_USDT-5m-futures.feather"


def _initial_model(settings, *, symbols=("ETH/BTC",), data=None, epochs=1, lr=1e-5, date_range=8):
    """Train and promote the first production version with the orchestrator (experiment model_training).
    A deliberately weak model by default (lr 1e-5, one epoch): a retrained one should beat it."""
    overrides = {"data": str(data)} if data else {}
    result = TrainingOrchestrator(settings).train_model_sync(
        model_name=MODEL,
        run_name="initial",
        auto_promote=True,
        min_accuracy_for_promotion=0.0,
        epochs=epochs,
        lr=lr,
        date_range=date_range,
        window=16,
        horizon=4,
        batch_size=256,
        symbols=list(symbols),
        model_kwargs=TINY_MODEL,
        **overrides,
    )
    assert result["success"] and result["promoted"], result
    return result


def _config(**kw) -> RetrainingConfig:
    base = dict(
        model_name=MODEL,
        epochs=3,
        learning_rate=3e-3,
        batch_size=256,
        model_kwargs=TINY_MODEL,
        walk_forward=WalkForwardConfig(n_folds=2),
        min_accuracy_for_promotion=0.0,
        train_days=None,
    )
    base.update(kw)
    return RetrainingConfig(**base)


def _retraining_runs(client: MlflowClient, filter_string: str = "", kind: str = "retraining") -> list:
    """Runs of ``auto_retraining`` of one kind (the retraining runs, not their nested fold runs)."""
    exp = client.get_experiment_by_name("auto_retraining")
    if exp is None:
        return []
    full = " AND ".join(f for f in (f"tags.run_kind = '{kind}'", filter_string) if f)
    return client.search_runs([exp.experiment_id], filter_string=full, order_by=["attributes.start_time DESC"])


# --------------------------------------------------------------------------------------------
# the full cycle on PostgreSQL
# --------------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_full_cycle_drift_retrain_walk_forward_promote_serve(pg_url, tmp_path):
    settings = make_settings(tmp_path, tracking_uri=pg_url, data_path=str(SAMPLE_DATA))
    client = MlflowClient(tracking_uri=pg_url)

    # 1. an initial model on ETH/BTC, promoted; the bot's predictor serves it
    _initial_model(settings)
    predictor = Predictor(MODEL, settings=settings, refresh_interval_s=0)
    assert predictor.version == "1"

    # 2. live data from the training distribution (the same pair, the days after training): no drift
    same = RetrainingPipeline(settings, _config(data=str(SAMPLE_DATA), symbols=["ETH/BTC"]))
    quiet = same.run("drift")
    assert quiet.status == "skipped" and quiet.run_id is None, quiet.reason
    assert quiet.drift is not None and not quiet.drift.drifted and "no drift" in quiet.reason
    assert _retraining_runs(client) == []  # a negative check retrains nothing and logs no run

    # 3. live data from another market (XRP/USDT futures, 2021): drift -> retrain -> walk-forward -> promote
    drifting = RetrainingPipeline(settings, _config(data=str(XRP_FUTURES)))
    result = drifting.run("drift")
    assert result.status == "completed", result.reason
    assert result.drift.drifted and result.version == "2" and result.production_before == 1
    assert result.promoted, result.promotion_reason
    assert result.production_after == 2 and "gain +" in result.promotion_reason
    assert "on the same recent holdout" in result.promotion_reason  # compared on the walk-forward folds

    # 4. the predictor picks the new version up
    assert predictor.refresh() is True
    assert predictor.version == "2"
    candles = drifting.load_series()[0].frame.tail(400)
    assert predictor.predict(candles).model_version == "2"
    predictor.close()

    # 5. what MLflow holds: a run in auto_retraining found by the guide's tag filter
    runs = _retraining_runs(client, "tags.trigger = 'drift'")
    assert [r.info.run_id for r in runs] == [result.run_id]
    run = runs[0]
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["model_name"] == MODEL and tags["run_kind"] == "retraining"
    assert tags["promotion_decision"] == "promoted" and tags["promotion_reason"].startswith("gate passed")
    assert tags["drift_detected"] == "true"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {
        "drift_report.json",
        "drift_report.csv",
        "drift_report.png",
        "walk_forward.json",
        "metadata.json",
    } <= artifacts
    for key in ("wf_accuracy", "wf_f1_macro", "wf_backtest_sharpe", "wf_production_accuracy", "wf_production_f1_macro"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2], key
    metrics = run.data.metrics
    for key in (
        "walk_forward_accuracy_mean",
        "walk_forward_accuracy_std",
        "walk_forward_f1_macro_mean",
        "walk_forward_production_f1_macro_mean",
        "walk_forward_delta_f1_macro_mean",
        "drift_share",
        "test_accuracy",
    ):
        assert key in metrics, key
    mv = client.get_model_version(MODEL, "2")
    assert mv.run_id == result.run_id and mv.tags["trigger"] == "drift" and "walk_forward_f1_macro_mean" in mv.tags

    # each walk-forward fold is a nested run with its own learning curves and test metrics
    folds = sorted(
        _retraining_runs(client, f"tags.mlflow.parentRunId = '{run.info.run_id}'", kind="walk_forward_fold"),
        key=lambda r: int(r.data.tags["fold"]),
    )
    assert [r.info.run_name for r in folds] == ["fold_1_of_2", "fold_2_of_2"]
    for fold_run, wf_point in zip(
        folds, sorted(client.get_metric_history(run.info.run_id, "wf_accuracy"), key=lambda m: m.step)
    ):
        assert fold_run.info.status == "FINISHED"
        for key in ("train_loss", "val_loss", "val_accuracy"):
            assert [m.step for m in client.get_metric_history(fold_run.info.run_id, key)] == [1, 2, 3], key
        assert fold_run.data.metrics["test_accuracy"] == pytest.approx(wf_point.value)
        assert "production_accuracy" in fold_run.data.metrics

    # 6. the registry's history records the decision, and the cooldown holds the next attempt back
    registry = ModelRegistry(pg_url)
    history = asyncio.run(registry.history(MODEL))
    registry.close()
    assert history[0].decision == "promoted" and history[0].version == 2 and history[0].actor == "retraining:drift"
    again = drifting.run("scheduled")
    assert again.status == "skipped" and again.reason.startswith("cooldown") and result.run_id in again.reason


# --------------------------------------------------------------------------------------------
# one retraining at a time
# --------------------------------------------------------------------------------------------


def _try_lock_in_another_process(uri: str, name: str) -> str:
    code = textwrap.dedent(f"""
        from backend.ml_engine.locks import Locks
        locks = Locks({uri!r}, "/tmp")
        held = locks.try_lease("retraining", {name!r})
        print("acquired" if held else "refused: " + str(locks.holder("retraining", {name!r})))
        if held:
            held.release()
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.postgres
@pytest.mark.slow
def test_two_concurrent_retrainings_one_runs_the_other_is_refused(pg_url, tmp_path, monkeypatch):
    settings = make_settings(tmp_path, tracking_uri=pg_url, data_path=str(SAMPLE_DATA))
    config = _config(data=str(SAMPLE_DATA), symbols=["ETH/BTC"], epochs=1, train_days=4)
    first, second = RetrainingPipeline(settings, config), RetrainingPipeline(settings, config)

    inside, go_on = threading.Event(), threading.Event()
    real = RetrainingPipeline._walk_forward

    def slow_walk_forward(self, *args, **kwargs):
        inside.set()
        assert go_on.wait(120)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(RetrainingPipeline, "_walk_forward", slow_walk_forward)
    results = {}
    worker = threading.Thread(target=lambda: results.setdefault("first", first.run("manual")))
    worker.start()
    try:
        assert inside.wait(120), "the first retraining never started"
        refused = second.run("manual", force=True)  # force skips checks and cooldown, never the lock
        other_process = _try_lock_in_another_process(pg_url, MODEL)
        free_name = _try_lock_in_another_process(pg_url, "another_model")
    finally:
        go_on.set()
        worker.join(300)
    assert refused.status == "refused" and refused.run_id is None
    assert f"another retraining of model {MODEL!r} is running" in refused.reason
    assert other_process.startswith("refused") and "pid" in other_process  # across processes too
    assert free_name == "acquired"  # the lock is per model
    assert results["first"].status == "completed", results["first"].reason
    assert _try_lock_in_another_process(pg_url, MODEL) == "acquired"  # released at the end
    runs = _retraining_runs(MlflowClient(tracking_uri=pg_url))
    assert [r.info.run_id for r in runs] == [results["first"].run_id]


@pytest.mark.postgres
@pytest.mark.slow
def test_a_retraining_that_loses_its_lock_stops_before_the_registry(pg_url, tmp_path, monkeypatch):
    """The lease's database connection dies after walk-forward and another worker takes the lock at
    once: the retraining stops at its next check, registers nothing, and production stays."""
    import time

    from conftest import _admin_connect

    from backend.ml_engine.locks import Locks

    settings = make_settings(tmp_path, tracking_uri=pg_url, data_path=str(SAMPLE_DATA))
    _initial_model(settings)
    pipeline = RetrainingPipeline(settings, _config(data=str(SAMPLE_DATA), symbols=["ETH/BTC"], epochs=1, train_days=4))
    leases, rival = [], {}
    real_try = pipeline.locks.try_lease
    monkeypatch.setattr(pipeline.locks, "try_lease", lambda *a, **kw: leases.append(real_try(*a, **kw)) or leases[-1])
    real_wf = RetrainingPipeline._walk_forward

    def walk_forward_then_lose_the_lock(self, *args, **kwargs):
        wf = real_wf(self, *args, **kwargs)
        conn = _admin_connect()
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (leases[0].backend_pid,))
        conn.close()
        other = Locks(pg_url, tmp_path / "rival")
        deadline = time.monotonic() + 10
        while "lease" not in rival and time.monotonic() < deadline:  # the server frees it a moment later
            lease = other.try_lease("retraining", MODEL)
            if lease is not None:
                rival["lease"] = lease
            time.sleep(0.02)
        return wf

    monkeypatch.setattr(RetrainingPipeline, "_walk_forward", walk_forward_then_lose_the_lock)
    result = pipeline.run("manual", force=True)
    try:
        assert "lease" in rival, "the rival never got the lock"
        assert result.status == "failed" and "retraining lock was lost" in result.reason, result.reason
        assert result.version is None and leases[0].lost
        client = MlflowClient(tracking_uri=pg_url)
        assert len(client.search_model_versions(f"name = '{MODEL}'")) == 1  # nothing registered
        assert str(client.get_model_version_by_alias(MODEL, "production").version) == "1"
        run = client.get_run(result.run_id)
        assert run.info.status == "FAILED" and "LockLost" in run.data.tags["failure_reason"]
    finally:
        rival["lease"].release() if "lease" in rival else None


def test_file_lock_is_exclusive_per_model_and_says_who_holds_it(tmp_path):
    settings = make_settings(tmp_path)  # SQLite store, no PostgreSQL anywhere: file locks
    a, b = RetrainingPipeline(settings, _config()), RetrainingPipeline(settings, _config())
    assert a.locks.kind == b.locks.kind == "file"
    held = a.locks.try_lease("retraining", "m")
    assert held is not None
    assert b.locks.try_lease("retraining", "m") is None and "pid" in b.locks.holder("retraining", "m")
    other = b.locks.try_lease("retraining", "m2")
    assert other is not None
    other.release()
    held.release()
    again = b.locks.try_lease("retraining", "m")
    assert again is not None
    again.release()
    assert (tmp_path / ".locks" / "retraining-m.lock").exists()  # beside the database: every process agrees


# --------------------------------------------------------------------------------------------
# performance_drop, scheduled, refusal, failure, cooldown (SQLite)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_performance_drop_triggers_on_unlike_data_and_not_on_like_data(tmp_path):
    """Production learned a planted pattern (test accuracy ~0.8). More candles of that process keep
    its accuracy: no drop. Real ETH/BTC candles have no such pattern: accuracy falls: retrain."""
    train_csv = write_trending_csv(tmp_path, "SYN_USDT-5m.csv", n=5000, seed=1)
    later_csv = write_trending_csv(tmp_path, "SYN2_USDT-5m.csv", n=3000, seed=2, start="2024-03-01")
    settings = make_settings(tmp_path, data_path=str(train_csv))
    initial = _initial_model(settings, symbols=(), data=train_csv, epochs=6, lr=3e-3, date_range=None)
    assert initial["test_metrics"]["accuracy"] > 0.7

    like = RetrainingPipeline(settings, _config(data=str(later_csv), performance_margin=0.1))
    report = like.check_performance()
    assert report.n_samples > 500 and not report.dropped, report.summary
    assert report.reference_accuracy == pytest.approx(initial["test_metrics"]["accuracy"])
    skipped = like.run("performance_drop")
    assert skipped.status == "skipped" and "no performance drop" in skipped.reason

    unlike = RetrainingPipeline(settings, _config(data=str(SAMPLE_DATA / "ETH_BTC-5m.feather"), performance_margin=0.1))
    result = unlike.run("performance_drop")
    assert result.status == "completed", result.reason
    assert result.performance.dropped and result.performance.accuracy < report.accuracy - 0.2
    run = MlflowClient(tracking_uri=settings.mlflow_tracking_uri).get_run(result.run_id)
    assert run.data.tags["trigger"] == "performance_drop" and run.data.tags["performance_drop"] == "true"
    assert "recent_accuracy" in run.data.metrics


@pytest.mark.slow
def test_scheduled_tick_cooldown_refused_promotion_and_failure_leave_production_alone(tmp_path):
    settings = make_settings(tmp_path, data_path=str(SAMPLE_DATA))
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    config = _config(data=str(SAMPLE_DATA), symbols=["ETH/BTC"], epochs=1, train_days=4)
    pipeline = RetrainingPipeline(settings, config)

    # a scheduler tick with no model yet: the checks cannot run, the scheduled retraining does
    first = pipeline.tick()
    assert first.status == "completed" and first.trigger == "scheduled" and first.promoted, first.reason
    assert "no production version yet" in first.promotion_reason
    assert [r.info.run_id for r in _retraining_runs(client, "tags.trigger = 'scheduled'")] == [first.run_id]

    # cooldown: the next attempt waits (the last run's start is read back from MLflow)
    waiting = pipeline.run("manual")
    assert waiting.status == "skipped" and "cooldown" in waiting.reason and "--force" in waiting.reason

    # a candidate that cannot pass the gate: registered, refused with the reason, production stays
    strict = RetrainingPipeline(settings, dataclasses.replace(config, min_improvement=0.99))
    refused = strict.run("manual", force=True)
    assert refused.status == "completed" and not refused.promoted and refused.version == "2"
    assert "not better than production" in refused.promotion_reason
    assert refused.production_after == 1
    tags = client.get_run(refused.run_id).data.tags
    assert tags["promotion_decision"] == "refused" and "not better than production" in tags["promotion_reason"]
    assert str(client.get_model_version_by_alias(MODEL, "production").version) == "1"
    registry = ModelRegistry(settings.mlflow_tracking_uri)
    assert asyncio.run(registry.history(MODEL))[0].decision == "refused"
    registry.close()

    # a retraining that fails (data too short for 300 folds): run FAILED with the reason, production stays
    broken = RetrainingPipeline(settings, dataclasses.replace(config, walk_forward=WalkForwardConfig(n_folds=300)))
    failed = broken.run("manual", force=True)
    assert failed.status == "failed" and "production untouched" in failed.reason and "300 folds" in failed.reason
    run = client.get_run(failed.run_id)
    assert run.info.status == "FAILED" and "300 folds" in run.data.tags["failure_reason"]
    assert str(client.get_model_version_by_alias(MODEL, "production").version) == "1"
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == 2  # nothing registered by the failure


def test_drift_trigger_without_a_production_model_fails_clearly(tmp_path):
    settings = make_settings(tmp_path, data_path=str(SAMPLE_DATA))
    result = RetrainingPipeline(settings, _config()).run("drift")
    assert result.status == "failed" and result.run_id is None
    assert "has no production version" in result.reason and "--trigger manual" in result.reason
    with pytest.raises(ValueError, match="trigger must be one of"):
        RetrainingPipeline(settings, _config()).run("sometimes")


# --------------------------------------------------------------------------------------------
# scheduler and configuration
# --------------------------------------------------------------------------------------------


def test_scheduler_jobs_from_interval_cron_and_checks(tmp_path):
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    pipeline = RetrainingPipeline(make_settings(tmp_path), _config())
    s = pipeline.build_scheduler(interval_minutes=90, blocking=False)
    (job,) = s.get_jobs()  # pending jobs of a scheduler not started yet
    assert isinstance(job.trigger, IntervalTrigger) and job.trigger.interval.total_seconds() == 90 * 60
    assert job.max_instances == 1 and job.coalesce
    s = pipeline.build_scheduler(cron="0 3 * * *", check_interval_minutes=30, blocking=False)
    jobs = {j.id: j for j in s.get_jobs()}
    assert isinstance(jobs["retraining_scheduled"].trigger, CronTrigger)
    assert jobs["retraining_checks"].kwargs == {"include_scheduled": False}
    with pytest.raises(ValueError, match="invalid cron expression"):
        pipeline.build_scheduler(cron="61 * * * *")


def test_config_validation():
    for bad in (
        {"recent_days": 0},
        {"cooldown_hours": -1},
        {"performance_margin": 1.5},
        {"model_name": ""},
        {"min_accuracy_for_promotion": 2},
    ):
        with pytest.raises(ValueError, match="RetrainingConfig"):
            RetrainingConfig(**bad)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("MLFLOW_ARTIFACT_LOCATION", str(tmp_path / "artifacts"))
    monkeypatch.setenv("ML_DATA_PATH", str(SAMPLE_DATA))
    monkeypatch.setenv("ML_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("ML_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ML_WINDOW", "16")
    monkeypatch.setenv("ML_HORIZON", "4")
    monkeypatch.setenv("ML_BATCH_SIZE", "256")
    return tmp_path


def test_help_lists_subcommands_and_triggers(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("run", "check-drift", "serve", "auto_retraining", "Exit codes"):
        assert word in out
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    for word in ("manual", "scheduled", "drift", "performance_drop", "--force", "--folds", "--fold-mode"):
        assert word in out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        ([], "required"),
        (["run"], "--trigger"),
        (["run", "--trigger", "sometimes"], "invalid choice"),
        (["run", "--trigger", "manual", "--folds", "0"], "positive integer"),
        (["check-drift", "--recent-days", "-1"], "positive number"),
        (["serve"], "one of the arguments --interval --cron is required"),
        (["serve", "--cron", "61 * * * *"], "invalid cron expression"),
        (["check-drift"], "has no production version"),
        (["run", "--trigger", "drift"], "has no production version"),
        (["check-drift", "--data", "/no/such/candles.csv"], "has no production version"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli_env, capsys, argv, fragment):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT, err
    assert fragment in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_cli_run_then_check_drift(cli_env, capsys):
    code = main(
        [
            "run",
            "--trigger",
            "manual",
            "--symbol",
            "ETH/BTC",
            "--train-days",
            "4",
            "--folds",
            "2",
            "--epochs",
            "1",
            "--min-accuracy",
            "0",
        ]
    )
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    assert out.startswith("completed: retrained on trigger manual: v1 promoted") and "walk-forward (2 folds)" in out
    # long work shows progress on stderr: a line per stage and fold, a bar per training (epochs)
    for line in (
        "walk-forward: 2 folds",
        "fold 1/2: accuracy",
        "fold 2/2: accuracy",
        "final model on the whole window",
        "registered hybrid_cnn_lstm v1",
    ):
        assert line in err, (line, err)
    assert "fold 1/2: 100%" in err and "final model: 100%" in err and "1/1 [" in err  # tqdm bars per epoch
    assert err.index("fold 1/2: accuracy") < err.index("final model on the whole window")

    code = main(["run", "--trigger", "manual", "--symbol", "ETH/BTC", "--no-progress", "--min-accuracy", "0"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK and out.startswith("skipped: cooldown") and err == ""

    code = main(["check-drift", "--output", str(cli_env / "report")])
    out = capsys.readouterr().out
    assert code == EXIT_OK and "no drift" in out and "volatility_30" in out
    assert (cli_env / "report" / "drift_report.png").exists()

    code = main(["check-drift", "--data", str(SHARED_MARKET / "UNITTEST_BTC-30m.feather"), "--json", "--log-run"])
    captured = capsys.readouterr()
    assert code == EXIT_DRIFT
    report = json.loads(captured.out)
    assert report["drifted"] and report["current"]["timeframe_mismatch"]
    assert "MLflow run" in captured.err
    assert main(["check-drift", "--data", str(SHARED_MARKET / "UNITTEST_BTC-30m.feather"), "--exit-zero"]) == EXIT_OK
    capsys.readouterr()

    # drift trigger on 30m candles: retrained; the 5m production model cannot score 30m windows, so the
    # gate compares recorded metrics and says so
    code = main(
        [
            "run",
            "--trigger",
            "drift",
            "--data",
            str(SHARED_MARKET / "UNITTEST_BTC-30m.feather"),
            "--cooldown-hours",
            "0",
            "--train-days",
            "12",
            "--folds",
            "2",
            "--epochs",
            "1",
            "--min-accuracy",
            "0",
        ]
    )
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    assert out.startswith("completed: retrained on trigger drift: v2") and "no holdout evaluator" in out, out


def test_scheduler_job_never_raises(tmp_path, monkeypatch, caplog):
    pipeline = RetrainingPipeline(make_settings(tmp_path), _config())

    def boom(include_scheduled):
        raise RuntimeError("store down")

    monkeypatch.setattr(pipeline, "tick", boom)
    assert pipeline._job(include_scheduled=True) is None
    assert "retraining tick failed" in caplog.text and "store down" in caplog.text
