"""One hyperparameter study (issue 15): Optuna storage, MLflow parent and trial runs, DSR and PBO on the
parent, the holdout read once per study, extension with more trials, the CLI's run / best / exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SAMPLE_DATA

from backend.ml_engine.tuning import _objective
from backend.ml_engine.tuning._cli import main

pytestmark = pytest.mark.slow

SPACE = """
[search]
family = "logreg"

[common]
window = { choices = [16] }

[logreg]
C = { low = 0.01, high = 10.0, log = true }
"""


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no .env of the repository
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("MLFLOW_ARTIFACT_LOCATION", str(tmp_path / "artifacts"))
    monkeypatch.setenv("ML_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("ML_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ML_TUNING_STORAGE", f"sqlite:///{tmp_path}/optuna.db")
    (tmp_path / "space.toml").write_text(SPACE)
    (tmp_path / "other.toml").write_text(SPACE.replace("high = 10.0", "high = 100.0"))
    return tmp_path


def _run(tmp: Path, trials: int, space: str = "space.toml") -> int:
    return main(
        [
            "run",
            "--trials",
            str(trials),
            "--space",
            str(tmp / space),
            "--study",
            "s1",
            "--data",
            str(SAMPLE_DATA),
            "--symbol",
            "ETH/BTC",
            "--date-range",
            "3",
            "--window",
            "16",
            "--folds",
            "2",
            "--holdout-frac",
            "0.25",
            "--pruner",
            "none",
            "--model-option",
            "logreg.max_iter=100",
        ]
    )


def test_a_study_runs_is_logged_extends_and_refuses_another_space(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import optuna
    from mlflow import MlflowClient

    reads: list[int] = []
    original = _objective.SearchData.read_holdout

    def counted(self: _objective.SearchData, *a: object, **k: object) -> object:
        reads.append(1)
        return original(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(_objective.SearchData, "read_holdout", counted)

    assert _run(env, 4) == 0
    out = capsys.readouterr().out
    assert "DSR" in out and "PBO" in out and len(reads) == 1
    client = MlflowClient(f"sqlite:///{env}/mlflow.db")
    exp = client.get_experiment_by_name("hyperparameter_search")
    assert exp is not None and "Optuna" in exp.tags.get("mlflow.note.content", "")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("run_kind") == "study"]
    children = [r for r in runs if r.data.tags.get("run_kind") == "trial"]
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert {"dsr", "pbo", "best_value", "holdout_accuracy"} <= set(parent.data.metrics)
    assert parent.data.metrics["n_trials"] == 4 and 0.0 <= parent.data.metrics["pbo"] <= 1.0
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert all("val_accuracy" in c.data.metrics and c.data.tags["host"] for c in children)
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert "plots/optimization_history.html" in plots

    assert main(["best", "--study", "s1"]) == 0
    best = capsys.readouterr().out
    for word in ("best trial", "validation", "holdout", "DSR", "PBO", " C = "):
        assert word in best

    assert _run(env, 2) == 0  # extends the same study, same parent run, holdout not read again
    capsys.readouterr()
    study = optuna.load_study(study_name="s1", storage=f"sqlite:///{env}/optuna.db")
    assert len(study.trials) == 6 and len(reads) == 1
    runs = client.search_runs([exp.experiment_id])
    assert sum(r.data.tags.get("run_kind") == "study" for r in runs) == 1
    assert sum(r.data.tags.get("run_kind") == "trial" for r in runs) == 6
    assert client.get_run(parent.info.run_id).data.metrics["n_trials"] == 6

    assert _run(env, 2, "other.toml") == 2  # another space under the same name: refused, nothing run
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "different search space" in err and "\n" not in err
    assert len(optuna.load_study(study_name="s1", storage=f"sqlite:///{env}/optuna.db").trials) == 6

    assert main(["status"]) == 0 and "s1: 6 trials" in capsys.readouterr().out


def test_bad_input_exits_2_with_one_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--trials", "1", "--family", "nosuch", "--space", str(env / "space.toml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "nosuch" in err and "\n" not in err
    (env / "bad.toml").write_text("[logreg]\nC = { low = 5.0, high = 1.0 }\n")
    assert main(["run", "--trials", "1", "--space", str(env / "bad.toml")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_the_median_pruner_marks_pruned_trials(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import optuna

    argv = ["run", "--trials", "6", "--study", "p", "--pruner", "median", "--no-mlflow", "--folds", "3"]
    argv += ["--space", str(env / "space.toml"), "--data", str(SAMPLE_DATA), "--symbol", "ETH/BTC"]
    argv += ["--date-range", "3", "--window", "16", "--model-option", "logreg.max_iter=100"]
    assert main(argv) == 0
    study = optuna.load_study(study_name="p", storage=f"sqlite:///{env}/optuna.db")
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and all(len(t.user_attrs["folds"]) < 3 for t in pruned)  # stopped after a fold, marked
    assert "pruned" in capsys.readouterr().out


def test_register_retrains_the_best_trial_and_tags_the_version(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import optuna
    from mlflow import MlflowClient

    from backend.ml_engine.registry._gate import TAG_DSR, TAG_PBO

    assert main(["register", "--study", "nosuch"]) == 2  # no such study: one line, exit 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "nosuch" in err and "\n" not in err

    assert _run(env, 2) == 0
    capsys.readouterr()
    study = optuna.load_study(study_name="s1", storage=f"sqlite:///{env}/optuna.db")
    dsr, pbo = study.user_attrs["dsr"], study.user_attrs["pbo"]
    assert dsr is not None and pbo is not None

    assert main(["register", "--study", "s1", "--model-name", "tuned"]) == 0
    out = capsys.readouterr().out
    assert "registered  tuned version 1 from study s1" in out
    client = MlflowClient(f"sqlite:///{env}/mlflow.db")
    version = client.get_model_version("tuned", "1")
    tags = version.tags
    assert tags["tuning_study"] == "s1" and tags["tuning_trial"] == str(study.best_trial.number)
    assert tags["tuning_value"] == f"{study.best_value:.4f}"
    assert tags[TAG_DSR] == f"{dsr['dsr']:.4f}" and tags[TAG_PBO] == f"{pbo['pbo']:.4f}"
    assert "tuning_holdout_accuracy" in tags
    assert version.run_id is not None
    run = client.get_run(version.run_id)
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.name == "model_training" and run.data.params.get("family", "logreg") == "logreg"
    assert not client.get_registered_model("tuned").aliases  # registered, not promoted

    optuna.create_study(study_name="e", storage=f"sqlite:///{env}/optuna.db")  # a study with no trial
    assert main(["register", "--study", "e"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no completed trial" in err and "\n" not in err


def test_parallel_run_queues_trial_jobs_and_stop_resume_follow_the_study(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``run --parallel N --no-wait`` prepares the study and queues N trial jobs (no worker here to run them);
    ``stop`` cancels them, ``resume`` queues them again; bad combinations exit 2 with one line."""
    from backend.services import JobService, ServiceSettings

    monkeypatch.setenv("ML_JOBS_DATABASE_URL", f"sqlite:///{env}/jobs.db")
    monkeypatch.setenv("ML_HUEY_SQLITE_PATH", str(env / "huey.db"))
    monkeypatch.setenv("ML_DATA_PATH", str(SAMPLE_DATA))
    argv = [
        "run",
        "--trials",
        "5",
        "--parallel",
        "2",
        "--no-wait",
        "--study",
        "par",
        "--space",
        str(env / "space.toml"),
    ]
    argv += ["--symbol", "ETH/BTC", "--date-range", "3", "--window", "16", "--folds", "2"]

    assert main([*argv, "--storage", f"sqlite:///{env}/other.db"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--storage does not go with --parallel" in err and "\n" not in err

    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "par: 5 trial(s) to run, 2 at a time as jobs" in out
    jobs = JobService(ServiceSettings())
    try:
        queued = [j for j in jobs.list_jobs(kind="tune").data if j.params.get("study") == "par"]
        assert len(queued) == 2 and all(j.status == "queued" and j.params["action"] == "trial" for j in queued)

        assert main(["stop", "--study", "par"]) == 0
        assert "stop requested" in capsys.readouterr().out
        assert all(jobs.get_job(j.id).status == "cancelled" for j in queued)

        assert main(["resume", "--study", "par", "--trials", "1", "--no-wait"]) == 0
        assert "par: 6 trial(s) to run" in capsys.readouterr().out
        again = [j for j in jobs.list_jobs(kind="tune", status="queued").data if j.params.get("study") == "par"]
        assert sorted(j.params["action"] for j in again) == ["trial", "trial"]  # no trial ended: nothing to finalize
    finally:
        jobs.close()

    assert main(["stop", "--study", "nosuch"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nosuch" in err and "\n" not in err


def test_the_mlflow_database_is_refused_as_the_optuna_storage(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "--trials", "1", "--study", "same", "--space", str(env / "space.toml"), "--no-mlflow"]
    argv += ["--storage", f"sqlite:///{env}/mlflow.db", "--data", str(SAMPLE_DATA), "--symbol", "ETH/BTC"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "alembic_version" in err and "\n" not in err


def test_per_epoch_metrics_reach_the_trial_run_in_one_call_per_fold(tmp_path: Path) -> None:
    """A trial's per-epoch metrics are kept in memory and written with its fold's scores: one tracking call
    per fold, and every epoch ends up in the run's history at its own step."""
    from mlflow import MlflowClient

    from backend.ml_engine.tuning._study import _EpochLog, _Tracking

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.create_experiment("t", artifact_location=str(tmp_path / "a"))
    run = client.create_run(exp).info.run_id
    calls: list[int] = []
    original = client.log_batch

    def counted(*a: object, **k: object) -> None:
        calls.append(1)
        original(*a, **k)  # type: ignore[arg-type]

    client.log_batch = counted  # type: ignore[method-assign]
    tracking = _Tracking(client, exp, parent=run)
    log = _EpochLog()
    for fold in (0, 1):
        callback = log.fold(fold)
        for epoch in (1, 2, 3):
            callback.on_epoch_end(epoch, {"val_loss": 1.0 / epoch + fold, "val_accuracy": 0.3, "lr": 0.1})
        assert calls == [1] * fold  # nothing written during the fold's epochs
        tracking.metrics(run, {"val_accuracy": 0.4}, step=fold, extra=log.take())
    tracking.end_trial(run, "PRUNED", {"seconds": 1.0}, note="pruned at epoch 3", extra=log.take())
    assert len(calls) == 3
    history = client.get_metric_history(run, "fold1_val_loss")
    assert [(m.step, round(m.value, 6)) for m in history] == [(1, 2.0), (2, 1.5), (3, round(1 + 1 / 3, 6))]
    data = client.get_run(run).data
    assert "fold0_lr" not in data.metrics and data.tags["state"] == "PRUNED" and data.tags["note"].startswith("pruned")
    assert client.get_run(run).info.status == "FINISHED"
