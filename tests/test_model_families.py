"""Model families (issue 14, point 1): each family trains on the bundled data, exports ONNX with
probability parity, registers, is promoted through the gate and is served by the Predictor and the
pyfunc through ONNX Runtime; bad input is refused with one line and nothing registered."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_DATA, TINY_MODEL, make_settings
from mlflow import MlflowClient

from backend.ml_engine.families import (
    PARITY_TOLERANCE,
    FamilyOptionsError,
    NotExportableError,
    UnknownFamilyError,
    family_names,
    get_family,
    make_config,
    softmax,
)
from backend.ml_engine.tabular import TabularConfig, tabular_feature_names, window_features
from backend.ml_engine.training_orchestrator import TrainingOrchestrator

pytestmark = pytest.mark.slow

TINY_OPTIONS = {
    "hybrid_cnn_lstm": TINY_MODEL,
    "tcn": {"channels": 8, "levels": 2, "head_hidden": 8},
    "lightgbm": {"n_estimators": 40, "num_leaves": 7},
    "logreg": {},
}
TRAINING = {"epochs": 2, "date_range": 3, "window": 16, "horizon": 4, "batch_size": 256, "symbols": ["ETH/BTC"]}


def test_every_family_is_listed_with_its_options():
    assert family_names() == ["hybrid_cnn_lstm", "tcn", "lightgbm", "logreg"]
    for name in family_names():
        fam = get_family(name)
        assert fam.options(), name
        config = make_config(name, {}, n_features=5, window=16)
        assert isinstance(config, fam.config_type)
        for option in fam.options():  # every documented default is the config's default
            value = getattr(config, option.name)
            assert (tuple(value) if isinstance(value, (list, tuple)) else value) == option.default, (name, option)


@pytest.mark.parametrize(
    ("family", "options", "error", "words"),
    [
        ("xgboost", {}, UnknownFamilyError, "choose one of: hybrid_cnn_lstm, tcn, lightgbm, logreg"),
        ("lightgbm", {"lstm_hidden": 8}, FamilyOptionsError, "unknown option lstm_hidden"),
        ("hybrid_cnn_lstm", {"num_leaves": 8}, FamilyOptionsError, "unknown option num_leaves"),
        ("tcn", {"levels": 0}, FamilyOptionsError, "levels=0: must be >= 1"),
        ("logreg", {"C": "much"}, FamilyOptionsError, "expected a number"),
        ("hybrid_cnn_lstm", {"kernel_size": 4}, FamilyOptionsError, "kernel_size must be an odd int"),
    ],
)
def test_bad_family_or_options_are_one_line(family, options, error, words):
    with pytest.raises(error) as info:
        make_config(family, options, n_features=5, window=16)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_configuration_that_cannot_be_exported_is_refused_before_training():
    fam = get_family("lightgbm")
    config = make_config("lightgbm", {"linear_tree": "true"}, n_features=5, window=16)
    with pytest.raises(NotExportableError, match="cannot be exported to ONNX"):
        fam.check_exportable(config)
    fam.check_exportable(make_config("lightgbm", {}, n_features=5, window=16))  # the default can


def test_tabular_columns_are_documented_and_follow_the_window():
    rng = np.random.default_rng(0)
    windows = rng.normal(size=(4, 16, 3)).astype(np.float32)
    cfg = TabularConfig(lags=(1, 5, 20))  # 20 >= window: dropped
    cols = window_features(windows, cfg)
    names = tabular_feature_names(["a", "b", "c"], 16, cfg)
    assert cols.dtype == np.float32 and cols.shape == (4, len(names)) == (4, 3 * (1 + 2 + 5))
    x = windows.astype(np.float64)
    expected = {
        "b.last": x[:, -1, 1],
        "c.lag5": x[:, -6, 2],
        "a.mean": x[:, :, 0].mean(axis=1),
        "b.std": x[:, :, 1].std(axis=1),
        "c.max": x[:, :, 2].max(axis=1),
        "a.change": x[:, -1, 0] - x[:, 0, 0],
    }
    for name, values in expected.items():
        np.testing.assert_allclose(cols[:, names.index(name)], values, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# each family end to end on the bundled candles
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("families")
    settings = make_settings(tmp, data_path=str(SAMPLE_DATA))
    orchestrator = TrainingOrchestrator(settings)
    results = {}
    for name in family_names():
        result = orchestrator.train_model_sync(
            model_name=f"fam_{name}",
            run_name=f"fam_{name}",
            auto_promote=True,
            min_accuracy_for_promotion=0.0,
            family=name,
            model_kwargs=TINY_OPTIONS[name],
            calibrate=name == "logreg",
            **TRAINING,
        )
        assert result["success"], (name, result.get("error"))
        results[name] = result
    return settings, results


@pytest.mark.parametrize("family", ["hybrid_cnn_lstm", "tcn", "lightgbm", "logreg"])
def test_family_trains_registers_is_promoted_and_serves_with_parity(trained, family, monkeypatch):
    from backend.ml_engine.predictor import Predictor

    settings, results = trained
    result = results[family]
    name = f"fam_{family}"
    assert result["promoted"] and str(result["version"]) == "1", result

    metadata = json.loads(Path(result["metadata_path"]).read_text())
    assert metadata["model_family"] == family and metadata["model"]["family"] == family
    assert metadata["model"]["input"] == get_family(family).input_kind
    assert metadata["model"]["n_parameters"] > 0
    assert metadata["onnx"]["max_abs_proba_diff"] <= PARITY_TOLERANCE

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    version = client.get_model_version(name, "1")
    assert version.tags["model_family"] == family
    assert str(client.get_model_version_by_alias(name, "production").version) == "1"
    run = client.get_run(result["run_id"])
    assert run.data.params["model_family"] == family and run.data.tags["model_family"] == family
    assert "test_ece" in run.data.metrics and "backtest_sharpe_low" in run.data.metrics
    assert run.data.metrics["test_log_loss"] > 0 and 0 <= run.data.metrics["test_brier"] <= 2

    # the candles of the test split's last window, and a few before it: same answers everywhere
    frame = pd.read_feather(SAMPLE_DATA / "ETH_BTC-5m.feather").rename(columns={"date": "timestamp"})
    predictor = Predictor(name, settings=settings, refresh_interval_s=None)
    assert predictor.backend == "onnxruntime"
    tails = [frame.iloc[: len(frame) - k] for k in (0, 7, 31)]
    served = np.array([list(predictor.predict(t).probabilities.values()) for t in tails])

    # the environment, not mlflow.set_tracking_uri: a process-wide URI would leak into later tests
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@production")
    need = int(metadata["pipeline"]["min_history_rows"])
    via_pyfunc = np.array([pyfunc.predict(t.tail(need))[["down", "flat", "up"]].to_numpy()[0] for t in tails])
    np.testing.assert_allclose(via_pyfunc, served, atol=PARITY_TOLERANCE)

    # the native model (as trained, before ONNX) on the same windows: parity <= 1e-5
    bundle = predictor._bundle  # the loaded version: its window builder
    assert bundle is not None
    from backend.ml_engine.pipeline import build_inference_windows

    windows = np.concatenate([build_inference_windows(t.tail(need), bundle.pipeline, last_only=True) for t in tails])
    native = _native_probabilities(family, Path(result["output_dir"]), metadata, windows)
    np.testing.assert_allclose(native, served, atol=PARITY_TOLERANCE)


def _native_probabilities(family: str, out: Path, metadata: dict, windows: np.ndarray) -> np.ndarray:
    """The saved native model's probabilities, with the version's temperature."""
    temperature = (metadata.get("calibration") or {}).get("temperature") or 1.0
    fam = get_family(family)
    if fam.input_kind == "window":
        import torch

        from backend.ml_engine.families.tcn import TCN
        from backend.ml_engine.model import HybridCNNLSTM

        saved = torch.load(out / "model.pt", weights_only=False)
        config = fam.config_from_dict(saved["model_config"])
        module = (HybridCNNLSTM if family == "hybrid_cnn_lstm" else TCN)(config)
        module.load_state_dict(saved["state_dict"])
        module.eval()
        with torch.no_grad():
            logits = module(torch.from_numpy(windows.astype(np.float32))).numpy()
    else:
        import joblib

        saved = joblib.load(out / "model.joblib")
        cols = window_features(windows, TabularConfig.from_dict(saved["tabular"]))
        native = saved["native"]
        proba = native.predict(cols.astype(np.float64)) if family == "lightgbm" else native.predict_proba(cols)
        logits = np.log(proba)
    return softmax(np.asarray(logits, dtype=np.float64) / temperature)


def test_calibrated_version_stores_its_temperature_and_the_predictor_applies_it(trained):
    _settings, results = trained
    metadata = json.loads(Path(results["logreg"]["metadata_path"]).read_text())
    cal = metadata["calibration"]
    assert cal["method"] == "temperature" and cal["fitted_on"] == "val"
    assert math.isfinite(cal["temperature"]) and cal["temperature"] > 0 and cal["temperature"] != 1.0
    assert cal["val_ece_after"] <= cal["val_ece_before"] + 1e-9  # fitted on val: never worse there
    assert results["logreg"]["temperature"] == cal["temperature"]
    # the other families were not calibrated
    assert json.loads(Path(results["lightgbm"]["metadata_path"]).read_text())["calibration"] is None


# ---------------------------------------------------------------------------------------------
# bad input on the command line: exit 2, one line, nothing registered
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--model", "xgboost"], "invalid choice: 'xgboost'"),
        (["--model", "lightgbm", "--model-option", "lstm_hidden=8"], "unknown option lstm_hidden"),
        (["--model", "lightgbm", "--model-option", "linear_tree=true"], "cannot be exported to ONNX"),
        (["--model", "logreg", "--no-onnx"], "served from its ONNX export only"),
        (["--model-option", "nonsense"], "expected KEY=VALUE"),
    ],
)
def test_cli_refuses_bad_family_input_with_exit_2_and_registers_nothing(tmp_path, monkeypatch, capsys, argv, words):
    from backend.ml_engine.training_orchestrator import main

    db = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.setenv("ML_OUTPUT_DIR", str(tmp_path / "out"))
    try:
        code = main(["--demo", *argv])
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1, err
    assert not db.exists() or not MlflowClient(tracking_uri=f"sqlite:///{db}").search_registered_models()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_tracker_loads_each_familys_native_model(trained):
    from backend.ml_engine.mlflow_integration import MLflowTracker

    settings, _results = trained
    tracker = MLflowTracker(settings=settings)
    booster = tracker.load_model("models:/fam_lightgbm/1")
    assert type(booster).__name__ == "Booster" and booster.num_trees() > 0
    pipeline = tracker.load_model("models:/fam_logreg@production")
    assert hasattr(pipeline, "predict_proba")
    module = tracker.load_model("models:/fam_tcn/1")
    assert type(module).__name__ == "TCN" and not module.training


def test_retraining_keeps_production_family(trained):
    from backend.ml_engine.retraining_pipeline import RetrainingConfig, RetrainingPipeline
    from backend.ml_engine.walk_forward import WalkForwardConfig

    settings, _results = trained
    config = RetrainingConfig(
        model_name="fam_lightgbm",
        epochs=1,
        batch_size=256,
        model_kwargs={"n_estimators": 20},
        walk_forward=WalkForwardConfig(n_folds=1),
        min_accuracy_for_promotion=0.0,
        data=str(SAMPLE_DATA),
        symbols=["ETH/BTC"],
        train_days=3,
    )
    result = RetrainingPipeline(settings, config).run("manual", force=True)
    assert result.version is not None, result
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    candidate = client.get_model_version("fam_lightgbm", str(result.version))
    assert candidate.tags["model_family"] == "lightgbm"


def test_the_gate_reads_a_searched_versions_dsr_and_pbo_from_its_tags(trained, tmp_path):
    from backend.ml_engine.registry import PromotionGate, get_model_store

    settings, results = trained
    gate = PromotionGate(min_accuracy_for_promotion=0.0, require_signature=False, min_dsr=0.9, max_pbo=0.5)
    store = get_model_store(settings, gate)
    folder = Path(results["logreg"]["output_dir"])
    mv = store.register_model(
        "fam_gate",
        version="searched",
        model_path=folder,
        metrics={"accuracy": 0.5, "f1_macro": 0.5},
        tags={"onnx_parity_max_abs_diff": "2e-07"},
    )
    refused = store.promote("fam_gate", mv.version)
    failed = {c.code for c in refused.verdict.checks if not c.passed} if refused.verdict else set()
    assert not refused.promoted and failed == {"dsr_missing", "pbo_missing"}, refused.reason
    store.set_version_tags("fam_gate", mv.version, {"tuning_dsr": "0.95", "tuning_pbo": "0.20"})
    passed = store.promote("fam_gate", mv.version)
    assert passed.promoted, passed.reason
