"""The leaderboard (issue 14): families against the naive baselines on the same folds, intervals, paired
tests, files, the MLflow run of experiment model_comparison, and the command line's exit codes.

Two small comparisons carry the acceptance: a series with a planted, learnable pattern (trending
regimes: the next move continues the last ones), where every family must beat the majority class
significantly, and a pure random walk (fixed seed), where no family may be marked significant.
Networks with their default configs, 3 epochs, window 16, 2 folds, 300 resamples: ~35 s on 2 cores.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from conftest import make_settings
from synthetic import write_trending_csv

from backend.ml_engine.config import EXPERIMENT_COMPARISON
from backend.ml_engine.leaderboard import (
    BASELINES,
    LeaderboardConfig,
    LeaderboardInputError,
    block_length,
    latest_leaderboard,
    main,
    run_leaderboard,
)
from backend.ml_engine.leaderboard._report import verdict
from backend.ml_engine.leaderboard._stats import (
    brier_rows,
    ece_binned,
    log_loss_rows,
    max_drawdown,
    net_returns,
    total_return,
)
from backend.ml_engine.signal_policy import SignalPolicy

#: Small comparison: default networks, fewer boosting rounds and solver iterations (seconds, not minutes).
OPTIONS = {"lightgbm": {"n_estimators": 100}, "logreg": {"max_iter": 200}}
SMALL = {"window": 16, "horizon": 4, "folds": 2, "epochs": 3, "n_boot": 300, "symbols": [], "model_options": OPTIONS}


def _config(settings, csv: Path, **kw) -> LeaderboardConfig:
    return LeaderboardConfig.from_settings(settings, data=str(csv), **{**SMALL, **kw})


# --------------------------------------------------------------------------------------------
# acceptance: planted pattern (with the MLflow run) and random walk
# --------------------------------------------------------------------------------------------


def test_planted_pattern_every_family_beats_majority_and_the_run_is_logged(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    settings = make_settings(tmp_path)
    csv = write_trending_csv(tmp_path, "TREND_USDT-5m.csv", n=3000, seed=5)
    seen: list[tuple[str, float]] = []
    result = run_leaderboard(
        _config(settings, csv),
        settings=settings,
        output_dir=tmp_path / "lb",
        progress=lambda m, f: seen.append((m, f)),
    )
    families = [r for r in result.rows if r["kind"] == "family"]
    assert [r["name"] for r in families] == ["hybrid_cnn_lstm", "tcn", "lightgbm", "logreg"]
    assert [r["name"] for r in result.rows if r["kind"] == "baseline"] == list(BASELINES)
    for r in families:
        t = r["tests"]["majority"]
        assert t["significant"] and t["diff"] > 0 and t["p_value"] < 0.05, (r["name"], t)
        assert set(r["tests"]) == set(r["return_tests"]) == set(BASELINES)
        assert r["n_parameters"] > 0 and r["train_seconds"] > 0
        assert r["latency_backend"] == "onnxruntime" and r["latency_p50_ms"] > 0
    for r in result.rows:
        for key, m in r["metrics"].items():
            assert m["low"] <= m["high"], (r["name"], key, m)
            if key not in ("max_drawdown", "ece"):  # path-dependent / biased: the interval may miss the point
                assert m["low"] <= m["value"] + 1e-9 and m["value"] <= m["high"] + 1e-9, (r["name"], key, m)
    assert result.block == max(4, math.ceil(result.n_predictions ** (1 / 3)))
    assert result.policy == SignalPolicy().describe()
    assert seen[0][1] == 0.0 and seen[-1] == ("done", 1.0)
    assert all(0.0 <= f <= 1.0 for _, f in seen)

    # files
    for key in ("markdown", "png", "json", "reliability"):
        assert Path(result.artifacts[key]).is_file(), key
    md = Path(result.artifacts["markdown"]).read_text()
    assert result.verdict in md and result.policy in md and "| lightgbm |" in md
    saved = json.loads(Path(result.artifacts["json"]).read_text())
    assert saved["rows"] == result.to_dict()["rows"] and saved["run_id"] == result.run_id

    # the MLflow run: experiment model_comparison (with its description), metrics, artifacts
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT_COMPARISON)
    assert experiment is not None and "Model comparison" in experiment.tags["mlflow.note.content"]
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.info.experiment_id == experiment.experiment_id
    m = run.data.metrics
    for name in ("hybrid_cnn_lstm", "tcn", "lightgbm", "logreg"):
        row = result.row(name)
        assert m[f"{name}_accuracy"] == pytest.approx(row["metrics"]["accuracy"]["value"])
        assert m[f"{name}_accuracy_low"] <= m[f"{name}_accuracy"] <= m[f"{name}_accuracy_high"]
        assert m[f"{name}_vs_majority_p"] == pytest.approx(row["tests"]["majority"]["p_value"])
        assert f"{name}_vs_previous_direction_return_p" in m
    assert "majority_accuracy" in m
    assert run.data.tags["verdict"] == result.verdict
    names = {a.path for a in client.list_artifacts(result.run_id)}
    assert names == {"leaderboard.md", "leaderboard.png", "leaderboard.json", "reliability.png"}

    latest = latest_leaderboard(settings)
    assert latest is not None and latest["run_id"] == result.run_id
    assert latest["rows"] == result.to_dict()["rows"] and latest["verdict"] == result.verdict


def test_random_walk_no_family_is_significant(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    csv = write_trending_csv(tmp_path, "WALK_USDT-5m.csv", n=3000, seed=6, drift=0.0)
    result = run_leaderboard(_config(settings, csv), settings=settings, output_dir=tmp_path / "lb", tracking=False)
    assert result.run_id is None
    for r in result.rows:
        for base, t in r["tests"].items():
            assert not t["significant"], (r["name"], base, t)
    assert result.verdict.startswith("No model family beats the naive baselines significantly on accuracy (p < 0.05)")
    assert result.verdict in result.markdown()
    assert latest_leaderboard(settings) is None  # no store file: nothing read, nothing created
    assert not (tmp_path / "mlflow.db").exists()


# --------------------------------------------------------------------------------------------
# bad input: exit 2, one line, no run
# --------------------------------------------------------------------------------------------


def _cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("MLFLOW_ARTIFACT_LOCATION", str(tmp_path / "artifacts"))
    monkeypatch.setenv("ML_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.chdir(tmp_path)  # no .env of the repository


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--families", "hybrid_cnn_lstm,xgboost"], "unknown model family 'xgboost'; choose one of: hybrid_cnn_lstm"),
        (["--families", "logreg", "--model-option", "logreg.num_leaves=7"], "logreg: unknown option num_leaves"),
        (["--families", "logreg", "--model-option", "lightgbm.num_leaves=7"], "not compared"),
        (["--families", "logreg", "--model-option", "logreg.C=-1"], "logreg: option C='-1': must be >= 1e-06"),
        (["--families", "logreg", "--data", "/nonexistent/candles.csv"], "nonexistent"),
        (["--families", "logreg", "--symbol", "ETH/BTC", "--date-range", "1", "--folds", "50"], "too short"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_run(
    args: list[str], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _cli_env(monkeypatch, tmp_path)
    assert main([*args, "--window", "16", "--horizon", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and says in err, err
    db = tmp_path / "mlflow.db"
    if db.exists():  # the store may exist; no leaderboard run may
        with sqlite3.connect(db) as conn:
            assert conn.execute("select count(*) from runs").fetchone()[0] == 0
    settings = make_settings(tmp_path)
    assert latest_leaderboard(settings) is None


def test_library_refuses_bad_input_before_reading_data(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    cfg = LeaderboardConfig.from_settings(settings, families=["nope"], data=str(tmp_path / "missing.csv"))
    with pytest.raises(LeaderboardInputError, match="unknown model family 'nope'"):
        run_leaderboard(cfg, settings=settings, output_dir=tmp_path / "lb")
    assert not (tmp_path / "lb").exists() and not (tmp_path / "mlflow.db").exists()


def test_cli_runs_and_prints_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _cli_env(monkeypatch, tmp_path)
    out_dir = tmp_path / "report"
    args = ["--families", "logreg", "--symbol", "ETH/BTC", "--date-range", "3", "--window", "16", "--horizon", "4"]
    args += ["--folds", "2", "--n-boot", "50", "--signal-mode", "threshold", "--threshold", "0.4", "--long-only"]
    args += ["--fee", "0.0005", "--model-option", "logreg.max_iter=100", "--no-mlflow", "--output", str(out_dir)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "# Model leaderboard" in out and "| logreg |" in out and "| majority (baseline) |" in out
    assert "threshold 0.40, long only, fee 0.05% + slippage 0.00% per trade" in out
    assert f"markdown     {out_dir / 'leaderboard.md'}" in out and "MLflow" not in out
    md = (out_dir / "leaderboard.md").read_text()
    assert md.startswith("# Model leaderboard\n\nCommand: `python -m backend.ml_engine.leaderboard --families logreg")
    assert not (tmp_path / "mlflow.db").exists()


# --------------------------------------------------------------------------------------------
# the pieces
# --------------------------------------------------------------------------------------------


def test_config_round_trip_and_settings_overrides(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    cfg = LeaderboardConfig.from_settings(
        settings,
        families="lightgbm, logreg",
        folds=4,
        epochs=2,
        date_range=7,
        policy={"mode": "threshold", "threshold": 0.45, "fee": 0.0005},
        model_options={"lightgbm": {"num_leaves": 15}},
    )
    assert cfg.families == ("lightgbm", "logreg") and cfg.folds == 4 and cfg.epochs == 2
    assert cfg.data.date_range_days == 7.0 and cfg.window == settings.window and cfg.seed == settings.seed
    assert cfg.policy == SignalPolicy(mode="threshold", threshold=0.45, fee=0.0005)
    again = LeaderboardConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert list(cfg.validate(n_features=5)) == ["lightgbm", "logreg"]
    assert LeaderboardConfig.from_settings(settings).family_list() == ["hybrid_cnn_lstm", "tcn", "lightgbm", "logreg"]
    with pytest.raises(ValueError, match="unknown keys"):
        LeaderboardConfig.from_dict({**cfg.to_dict(), "colour": "red"})
    with pytest.raises(ValueError, match="folds"):
        LeaderboardConfig.from_settings(settings, folds=0)


def test_block_length_is_at_least_the_horizon_and_grows_as_the_cube_root() -> None:
    assert block_length(1000, 6) == 10
    assert block_length(1000, 24) == 24
    assert block_length(27, 1) == 3
    assert block_length(5, 12) == 5  # never more than the rows


def test_metrics_match_the_projects_definitions() -> None:
    from backend.ml_engine.calibration import expected_calibration_error
    from backend.ml_engine.evaluation import backtest

    rng = np.random.default_rng(0)
    n = 500
    proba = rng.dirichlet(np.ones(3), size=n)
    y = rng.integers(0, 3, n)
    pred = proba.argmax(axis=1)
    assert ece_binned(proba.max(axis=1), (pred == y).astype(float)) == pytest.approx(
        expected_calibration_error(proba, y)
    )
    assert log_loss_rows(proba, y).mean() == pytest.approx(-np.mean(np.log(proba[np.arange(n), y])))
    onehot = np.eye(3)[y]
    assert brier_rows(onehot, y).sum() == 0.0 and brier_rows(np.eye(3)[(y + 1) % 3], y).max() == 2.0
    batch = np.stack([proba.max(axis=1)] * 2)
    assert np.allclose(
        ece_binned(batch, np.stack([(pred == y).astype(float)] * 2)), expected_calibration_error(proba, y)
    )

    # trading numbers of one series = evaluation.backtest's
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    pos = SignalPolicy().positions(proba)
    net, bt = net_returns(pos, close, open_, np.zeros(n, dtype=np.int64), fee=0.001, slippage=0.0005, timeframe="5m")
    ref = backtest(None, close, None, fee=0.001, slippage=0.0005, timeframe="5m", open_=open_, positions=pos)
    assert total_return(net) == pytest.approx(ref["total_return"])
    assert max_drawdown(net) == pytest.approx(ref["max_drawdown"])
    from backend.ml_engine.bootstrap import sharpe_ratio
    from backend.ml_engine.evaluation import periods_per_year

    assert sharpe_ratio(net, periods_per_year("5m")) == pytest.approx(ref["sharpe"])
    assert bt["n_trades"] == ref["n_trades"]
    assert np.allclose(total_return(np.stack([net, net])), ref["total_return"])


def _row(name: str, kind: str, acc: float, tests: dict[str, bool], returns: dict[str, bool] | None = None) -> dict:
    return {
        "name": name,
        "kind": kind,
        "metrics": {"accuracy": {"value": acc, "low": acc, "high": acc}},
        "tests": {b: {"significant": s} for b, s in tests.items()},
        "return_tests": {b: {"significant": s} for b, s in (returns or dict.fromkeys(tests, False)).items()},
    }


def test_verdict_is_one_plain_sentence() -> None:
    base = [_row("majority", "baseline", 0.40, {}), _row("previous_direction", "baseline", 0.35, {})]
    no, yes = {"majority": False, "previous_direction": False}, {"majority": True, "previous_direction": True}
    none = [_row("tcn", "family", 0.39, no), *base]
    assert verdict(none, 0.05) == (
        "No model family beats the naive baselines significantly on accuracy (p < 0.05), "
        "nor on net return per bar after fees."
    )
    partial = [_row("tcn", "family", 0.39, {"majority": False, "previous_direction": True}), *base]
    assert verdict(partial, 0.05) == (
        "No model family beats every naive baseline significantly on accuracy (p < 0.05): "
        "tcn beats only the previous direction; none beats them all on net return per bar after fees."
    )
    wins = [_row("tcn", "family", 0.45, yes), _row("logreg", "family", 0.47, yes, yes), *base]
    assert verdict(wins, 0.05) == (
        "tcn and logreg beat every naive baseline significantly on accuracy (p < 0.05; best logreg 0.470 "
        "against 0.400 for majority); on net return per bar after fees logreg beats them all."
    )
    no_money = [_row("tcn", "family", 0.45, yes), *base]
    assert verdict(no_money, 0.05).endswith(", but none beats them all on net return per bar after fees.")
    for text in (verdict(none, 0.05), verdict(partial, 0.05), verdict(wins, 0.05), verdict(no_money, 0.05)):
        assert text.count(". ") == 0 and text.endswith(".")
