"""The core pipeline end to end: CLI, outputs, bad input, planted pattern and leakage checks."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import SAMPLE_DATA, TINY_MODEL, make_settings
from corrupt_files import CORRUPTIONS, too_few_rows
from synthetic import trending_candles, write_trending_csv

from backend.ml_engine import evaluation
from backend.ml_engine.data import load_candles
from backend.ml_engine.dataset import SplitConfig, prepare_dataset
from backend.ml_engine.features import FeatureConfig
from backend.ml_engine.labels import LabelConfig
from backend.ml_engine.model import HybridCNNLSTM, ModelConfig
from backend.ml_engine.trainer import Trainer, TrainerConfig, seed_everything
from backend.ml_engine.training_orchestrator import (
    EXIT_BAD_INPUT,
    TrainingOutcome,
    TrainingRequest,
    main,
    run_training,
)

TINY_CLI = [
    "--epochs",
    "1",
    "--window",
    "16",
    "--horizon",
    "4",
    "--batch-size",
    "256",
    "--date-range",
    "2",
    "--symbol",
    "ETH/BTC",
    "--no-mlflow",
    "--seed",
    "3",
]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run the CLI inside tmp_path (no .env, outputs and stores land there)."""
    monkeypatch.chdir(tmp_path)
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_ARTIFACT_LOCATION", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ML_DATA_PATH", str(SAMPLE_DATA))
    return tmp_path


def test_help_lists_the_guides_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--epochs",
        "--batch-size",
        "--lr",
        "--date-range",
        "--data",
        "--symbol",
        "--timeframe",
        "--seed",
        "--device",
    ):
        assert flag in out


def test_cli_trains_on_bundled_data_and_writes_every_output(in_tmp, capsys):
    code = main([*TINY_CLI, "--run-name", "cli_small"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "accuracy" in captured.out and "majority" in captured.out and "buy & hold" in captured.out

    out = in_tmp / "outputs" / "cli_small"
    ckpt = torch.load(out / "model.pt", weights_only=False)
    cfg = ModelConfig.from_dict(ckpt["model_config"])
    model = HybridCNNLSTM(cfg)
    model.load_state_dict(ckpt["state_dict"])  # state dict and config are enough to rebuild the model
    assert (out / "model.onnx").stat().st_size > 0
    for png in ("confusion_matrix.png", "learning_curves.png", "equity_curve.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"

    meta = json.loads((out / "metadata.json").read_text())
    assert meta["model_config"]["window"] == 16
    assert meta["trainer_config"]["epochs"] == 1
    assert len(meta["features"]) >= 20 and meta["features"] == meta["pipeline"]["feature_names"]
    assert meta["label_definition"]["classes"] == ["down", "flat", "up"]
    assert meta["label_definition"]["horizon"] == 4
    assert meta["data"]["symbols"] == ["ETH/BTC"]
    assert meta["data"]["sources"][0].endswith("ETH_BTC-5m.feather")
    assert meta["data"]["date_range_days"] == 2
    assert meta["data"]["start"].startswith("2018-01-28")
    assert len(meta["data"]["hash"]) == 32
    assert meta["dataset"]["samples"]["train"] > 0 and meta["dataset"]["samples"]["test"] > 0
    assert 0 <= meta["test_metrics"]["accuracy"] <= 1
    assert set(meta["baselines"]) == {"majority", "previous_direction"}
    assert {"total_return", "sharpe", "max_drawdown", "win_rate", "n_trades", "buy_and_hold_total_return"} <= set(
        meta["backtest"]
    )
    assert meta["onnx"]["max_abs_diff"] <= 1e-4
    assert {"torch", "numpy", "mlflow", "onnxruntime"} <= set(meta["library_versions"])


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__)
def test_cli_refuses_each_bad_data_rule_with_one_line(corrupt, in_tmp, capsys):
    bad = too_few_rows(in_tmp, min_rows=16 + 4 + 1) if corrupt is too_few_rows else corrupt(in_tmp)
    code = main(["--data", str(bad.path), "--epochs", "1", "--window", "16", "--horizon", "4", "--no-mlflow"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err == f"error: {bad.message}\n"
    assert not (in_tmp / "outputs").exists() or not any((in_tmp / "outputs").rglob("model.pt"))


def test_date_range_beyond_the_data_says_so_plainly(in_tmp, capsys):
    code = main(["--date-range", "60", "--symbol", "ETH/BTC", "--no-mlflow"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "asked for 60 days, the data holds 20.0 days (2018-01-10 .. 2018-01-30)" in err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--epochs", "0"], "expected a positive integer, got '0'"),
        (["--lr", "nan"], "expected a positive number, got 'nan'"),
        (["--batch-size", "many"], "expected a positive integer, got 'many'"),
        (["--device", "tpu"], "invalid choice"),
    ],
)
def test_cli_rejects_bad_flags(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == EXIT_BAD_INPUT
    assert fragment in capsys.readouterr().err


def test_cli_unknown_symbol_is_a_clear_error(in_tmp, capsys):
    code = main(["--epochs", "1", "--window", "16", "--symbol", "DOGE/BTC", "--no-mlflow"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert "DOGE/BTC" in err and "Traceback" not in err


def _request(tmp_path, data, **kw):
    settings = make_settings(tmp_path)
    return TrainingRequest.from_settings(
        settings, data=str(data), window=16, horizon=4, batch_size=128, model_kwargs=TINY_MODEL, **kw
    )


def test_planted_pattern_is_learned_well_above_the_majority_baseline(tmp_path):
    data = write_trending_csv(tmp_path, n=5000, seed=1)
    request = _request(tmp_path, data, epochs=6, lr=3e-3)
    out = run_training(request, tmp_path / "out", run_name="planted", export_onnx=False)
    acc = out.test_metrics["accuracy"]
    majority = out.baselines["majority"]["accuracy"]
    assert acc >= majority + 0.25, (acc, majority)
    assert acc >= 0.75


def test_shuffled_labels_fall_to_the_baseline(tmp_path):
    """Same data and model as the planted-pattern test, labels permuted: nothing left to learn."""
    data = write_trending_csv(tmp_path, n=5000, seed=1)
    series = load_candles(str(data))
    prepared = prepare_dataset(series, FeatureConfig(), LabelConfig(horizon=4), SplitConfig(), 16)
    labeled = np.flatnonzero(prepared.y >= 0)
    rng = np.random.default_rng(0)
    prepared.y[labeled] = prepared.y[rng.permutation(labeled)]  # WindowDatasets share y

    seed_everything(0)
    model = HybridCNNLSTM(ModelConfig(n_features=len(prepared.feature_names), window=16, **TINY_MODEL))
    trainer = Trainer(model, TrainerConfig(epochs=6, batch_size=128, learning_rate=3e-3, seed=0))
    trainer.fit(prepared.train, prepared.val)
    y_true = prepared.test.labels
    acc = evaluation.classification_metrics(y_true, trainer.predict_proba(prepared.test).argmax(1))["accuracy"]
    majority = evaluation.baseline_metrics(y_true, prepared.train.labels)["majority"]["accuracy"]
    assert acc <= majority + 0.06, (acc, majority)


def test_same_seed_repeats_the_training_exactly(tmp_path):
    data = write_trending_csv(tmp_path, n=2500, seed=2)
    a = run_training(_request(tmp_path, data, epochs=1, seed=5), tmp_path / "a", run_name="a", export_onnx=False)
    b = run_training(_request(tmp_path, data, epochs=1, seed=5), tmp_path / "b", run_name="b", export_onnx=False)
    # the outcome carries files, not live objects: the saved weights are compared
    sa, sb = (torch.load(o.model_path, weights_only=True)["state_dict"] for o in (a, b))
    assert list(sa) == list(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    assert a.history[0]["val_loss"] == b.history[0]["val_loss"]
    # a typed, frozen outcome; the guide's dict is built from it and holds only JSON-able values
    assert isinstance(a, TrainingOutcome)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.best_epoch = 3  # type: ignore[misc]
    assert json.loads(json.dumps(a.to_result()))["test_metrics"]["accuracy"] == a.test_metrics["accuracy"]
    assert a.model_uri is None and a.dataset_digests == {}  # untracked: nothing logged


def test_trending_candles_are_valid_market_data():
    frame = trending_candles(n=500)
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    assert (frame["low"] > 0).all()
