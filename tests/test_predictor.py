"""Predictor: alias loading, train/serve parity, hot reload under load, PyTorch fallback, clear errors.

Two tiny models are trained once for the module into a SQLite store (seconds): ``pred`` v1
(window 16, promoted to ``production`` through the registry gate) and ``pred`` v2 (window 12,
another seed, not promoted: a version with another pipeline, for the hot reload). Tests that move
an alias use their own alias (``live``) so ``production`` stays on v1 for the others. One test
runs the whole alias path against PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_DATA, TINY_MODEL, make_settings
from mlflow import MlflowClient

from backend.ml_engine.data import DataValidationError, load_candles, validate_candles
from backend.ml_engine.dataset import (
    SplitConfig,
    build_inference_windows,
    prepare_dataset,
)
from backend.ml_engine.evaluation import classification_metrics
from backend.ml_engine.features import FeatureConfig
from backend.ml_engine.labels import LabelConfig
from backend.ml_engine.predictor import (
    BACKEND_ONNX,
    BACKEND_TORCH,
    ModelNotAvailableError,
    Prediction,
    Predictor,
    PredictorError,
)
from backend.ml_engine.predictor._fast import _fast_clean
from backend.ml_engine.trainer import Trainer, TrainerConfig
from backend.ml_engine.training_orchestrator import TrainingOrchestrator, data_hash

NAME = "pred"
TRAINING = {
    "epochs": 1,
    "date_range": 3,
    "batch_size": 256,
    "horizon": 4,
    "symbols": ["ETH/BTC"],
    "model_kwargs": TINY_MODEL,
    "data": str(SAMPLE_DATA),
}
OHLCV = ["open", "high", "low", "close", "volume"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """SQLite store with ``pred`` v1 (window 16, production) and v2 (window 12, seed 7, no alias)."""
    root = tmp_path_factory.mktemp("predictor")
    settings = make_settings(root)
    orchestrator = TrainingOrchestrator(settings)
    r1 = orchestrator.train_model_sync(
        model_name=NAME, run_name="v1", window=16, auto_promote=True, min_accuracy_for_promotion=0.0, **TRAINING
    )
    assert r1["success"] and r1["promoted"], r1.get("error") or r1.get("promotion_reason")
    r2 = orchestrator.train_model_sync(model_name=NAME, run_name="v2", window=12, seed=7, **TRAINING)
    assert r2["success"], r2.get("error")
    assert (r1["version"], r2["version"]) == ("1", "2")
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
    return {"settings": settings, "client": client, "v1": r1, "v2": r2, "root": root}


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    """The raw ETH/BTC candles (timestamp + OHLCV, no segment column), all 5760 rows."""
    frame = load_candles(str(SAMPLE_DATA), symbols=["ETH/BTC"], timeframe="5m")[0].frame
    return frame[["timestamp", *OHLCV]].copy()


@pytest.fixture(scope="module")
def recent(candles) -> pd.DataFrame:
    return candles.tail(300).reset_index(drop=True)


@pytest.fixture(scope="module")
def predictor(store) -> Predictor:
    p = Predictor(NAME, settings=store["settings"], refresh_interval_s=0)
    yield p
    p.close()


def test_serving_with_onnx_runtime_never_imports_torch(store, recent, tmp_path):
    # a bot's process that serves the production alias with ONNX Runtime does not load PyTorch
    # (~1.5 s and ~250 MB): the predictor and the pipeline module are torch-free
    settings = store["settings"]
    recent.to_pickle(tmp_path / "recent.pkl")
    script = f"""
import sys, pandas as pd
from backend.ml_engine.config import Settings
from backend.ml_engine.predictor import Predictor
settings = Settings(mlflow_tracking_uri={settings.mlflow_tracking_uri!r},
                    mlflow_artifact_location={settings.mlflow_artifact_location!r},
                    cache_dir={str(tmp_path / "cache")!r})
p = Predictor({NAME!r}, settings=settings, refresh_interval_s=0)
pred = p.predict(pd.read_pickle({str(tmp_path / "recent.pkl")!r}))
assert p.backend == "onnxruntime", p.backend
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")) or "no torch", pred.signal)
"""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[:2] == ["no", "torch"], out.stdout


# ------------------------------------------------------------------------------------------------
# loading and one prediction
# ------------------------------------------------------------------------------------------------


def test_loads_production_alias_with_onnx_runtime(store, predictor, recent):
    assert predictor.version == "1" and predictor.backend == BACKEND_ONNX
    assert predictor.model_uri == f"models:/{NAME}/1"
    meta = json.loads(Path(store["v1"]["metadata_path"]).read_text())
    assert predictor.pipeline == json.loads(json.dumps(meta["pipeline"]))
    assert predictor.pipeline["window"] == 16
    # downloaded once into the cache, keyed by version and model id
    model_dir = predictor.bundle.model_dir
    assert model_dir.is_relative_to(Path(store["settings"].cache_dir)) and model_dir.name.startswith("v1-m-")
    assert {"MLmodel", "model.onnx"} <= {p.name for p in model_dir.iterdir()}
    again = Predictor(NAME, settings=store["settings"], refresh_interval_s=0)
    assert again.bundle.model_dir == model_dir

    pred = predictor.predict(recent)
    assert isinstance(pred, Prediction)
    assert list(pred.probabilities) == ["down", "flat", "up"]
    assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-9)
    top = max(pred.probabilities, key=pred.probabilities.get)
    assert pred.signal == {"down": "sell", "flat": "hold", "up": "buy"}[top]
    assert pred.confidence == pred.probabilities[top]
    assert (pred.model_name, pred.model_version, pred.backend) == (NAME, "1", BACKEND_ONNX)
    assert pred.candle_time == recent["timestamp"].iloc[-1].isoformat() == "2018-01-30T04:50:00+00:00"
    assert json.loads(json.dumps(pred.to_dict())) == pred.to_dict()
    # min_confidence turns a weak signal into hold
    cautious = Predictor(NAME, settings=store["settings"], refresh_interval_s=0, min_confidence=0.999)
    weak = cautious.predict(recent)
    assert weak.signal == "hold" and weak.probabilities == pred.probabilities


def test_from_model_uri_pins_a_version(store, recent):
    s = store["settings"]
    v2 = Predictor.from_model_uri(f"models:/{NAME}/2", settings=s)
    assert (v2.version, v2.pinned, v2.pipeline["window"]) == ("2", True, 12)
    assert v2.refresh() is False
    assert v2.predict(recent).model_version == "2"
    latest = Predictor.from_model_uri(f"models:/{NAME}/latest", settings=s)
    assert latest.version == "2"
    by_run = Predictor.from_model_uri(f"runs:/{store['v1']['run_id']}/model", settings=s, model_name=NAME)
    by_id = Predictor.from_model_uri(store["v1"]["model_uri"], settings=s, model_name=NAME)
    local = Predictor.from_model_uri(by_id.bundle.model_dir, settings=s)
    alias = Predictor.from_model_uri(f"models:/{NAME}@production", settings=s)
    assert not alias.pinned and alias.version == "1"
    expected = alias.predict(recent).probabilities
    for p in (by_run, by_id, local):
        assert p.predict(recent).probabilities == expected


def test_stage_names_mean_the_aliases_of_the_same_name(store, recent):
    """The model store's rule (registry/_resolver.py): ``models:/<name>/Production`` and ``/Staging``,
    in any case, are the aliases ``production`` and ``staging`` (followed like ``@alias``); any other
    stage is refused, as a store error (PredictorError), not as a missing model."""
    s, client = store["settings"], store["client"]
    expected = Predictor.from_model_uri(f"models:/{NAME}/1", settings=s).predict(recent).probabilities
    for stage in ("Production", "production", "PRODUCTION"):
        p = Predictor.from_model_uri(f"models:/{NAME}/{stage}", settings=s)
        assert (p.version, p.alias, p.pinned, p.model_uri) == ("1", "production", False, f"models:/{NAME}/1")
        assert p.predict(recent).probabilities == expected
    with pytest.raises(ModelNotAvailableError, match=r"has no alias 'staging' \(aliases: .*production=v1"):
        Predictor.from_model_uri(f"models:/{NAME}/Staging", settings=s)
    client.set_registered_model_alias(NAME, "staging", "2")
    try:
        staged = Predictor.from_model_uri(f"models:/{NAME}/staging", settings=s, refresh_interval_s=0)
        assert (staged.version, staged.alias, staged.pinned, staged.pipeline["window"]) == ("2", "staging", False, 12)
        client.set_registered_model_alias(NAME, "staging", "1")
        assert staged.refresh() is True and staged.version == "1"  # it follows the alias
    finally:
        client.delete_registered_model_alias(NAME, "staging")
    for stage in ("Archived", "None"):
        with pytest.raises(PredictorError, match=rf"models:/{NAME}/{stage}: model stages are deprecated") as err:
            Predictor.from_model_uri(f"models:/{NAME}/{stage}", settings=s)
        assert not isinstance(err.value, ModelNotAvailableError)


# ------------------------------------------------------------------------------------------------
# (a) train/serve parity
# ------------------------------------------------------------------------------------------------


def test_train_serve_parity_with_the_evaluation(store, predictor, candles):
    """The predictor on raw candles reproduces the training run's own test-split predictions."""
    meta = predictor.metadata
    # the same candles and configuration as the training: same data hash, same pipeline (normaliser)
    series = load_candles(
        str(SAMPLE_DATA),
        symbols=meta["data"]["symbols"],
        timeframe=meta["data"]["timeframe"],
        date_range_days=meta["data"]["date_range_days"],
    )
    assert data_hash(series) == meta["data"]["hash"]
    prepared = prepare_dataset(
        series,
        FeatureConfig.from_dict(meta["feature_config"]),
        LabelConfig.from_dict(meta["label_config"]),
        SplitConfig.from_dict(meta["split_config"]),
        meta["pipeline"]["window"],
    )
    assert json.loads(json.dumps(prepared.pipeline)) == predictor.pipeline

    # the evaluation: the trained PyTorch model (as logged) through Trainer.predict_proba on prepared.test
    import mlflow.pytorch

    model = mlflow.pytorch.load_model(str(predictor.bundle.model_dir))
    eval_proba = Trainer(model, TrainerConfig(device="cpu", batch_size=256)).predict_proba(prepared.test)
    ends = prepared.test.ends  # one series: rows of series[0].frame
    y_pred = eval_proba.argmax(axis=1)
    assert (
        classification_metrics(prepared.y[ends], y_pred)["confusion_matrix"] == meta["test_metrics"]["confusion_matrix"]
    )

    # the predictor on the raw frame (timestamp + OHLCV only), every window
    raw = series[0].frame[["timestamp", *OHLCV]]
    proba, rows = predictor.predict_proba(raw)
    assert rows.dtype == np.int64 and np.isin(ends, rows).all()
    served = proba[np.searchsorted(rows, ends)]
    assert np.array_equal(served.argmax(axis=1), y_pred)
    assert float(np.max(np.abs(served - eval_proba))) <= 1e-4
    # its test-split metrics are the recorded ones
    tm = classification_metrics(prepared.y[ends], served.argmax(axis=1))
    assert tm["accuracy"] == pytest.approx(meta["test_metrics"]["accuracy"])

    # predict(): the last window of a frame ending at a test end, features from its last
    # min_history_rows candles only (the serving path), against the full-frame row
    need = predictor.pipeline["min_history_rows"]
    reference = Predictor(NAME, settings=store["settings"], refresh_interval_s=0, direct_features=False)
    assert reference.bundle.last_window is None and predictor.bundle.last_window is not None
    for e in ends[:: max(1, len(ends) // 12)]:
        frame = raw.iloc[: e + 1]
        pred = predictor.predict(frame)
        got = np.array(list(pred.probabilities.values()))
        assert float(np.max(np.abs(got - served[np.searchsorted(ends, e)]))) <= 1e-5
        assert pred.candle_time == raw["timestamp"].iloc[e].isoformat()
        # the direct last-window path is bit-identical to build_inference_windows on the tail
        x_direct, _ = predictor.build_window(frame)
        x_ref, _ = reference.build_window(frame)
        tail = frame.iloc[-need:].reset_index(drop=True)
        assert np.array_equal(x_direct, x_ref)
        assert np.array_equal(x_direct, build_inference_windows(tail, predictor.pipeline, last_only=True))


# ------------------------------------------------------------------------------------------------
# (b) hot reload while requests are in flight
# ------------------------------------------------------------------------------------------------


def test_hot_reload_under_concurrent_requests(store, recent):
    s, client = store["settings"], store["client"]
    client.set_registered_model_alias(NAME, "live", "1")
    expected = {
        v: Predictor.from_model_uri(f"models:/{NAME}/{v}", settings=s).predict(recent).probabilities for v in ("1", "2")
    }
    assert expected["1"] != expected["2"]

    p = Predictor(NAME, "live", settings=s, refresh_interval_s=0.05)
    results: list[list[tuple[str, dict]]] = [[] for _ in range(4)]
    errors: list[BaseException] = []
    stop = threading.Event()

    def worker(i: int) -> None:
        try:
            while not stop.is_set():
                pred = p.predict(recent)
                results[i].append((pred.model_version, pred.probabilities))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        client.set_registered_model_alias(NAME, "live", "2")  # the alias moves under load
        deadline = time.monotonic() + 60
        while p.version != "2" and time.monotonic() < deadline and not errors:
            time.sleep(0.02)
        swapped = sum(len(r) for r in results)
        while sum(len(r) for r in results) < swapped + 40 and time.monotonic() < deadline and not errors:
            time.sleep(0.02)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors
    assert p.version == "2" and p.pipeline["window"] == 12 and p.refresh_errors == 0
    seen = [v for r in results for v, _ in r]
    assert {"1", "2"} <= set(seen)
    for r in results:
        versions = [v for v, _ in r]
        for v, probs in r:
            assert probs == expected[v]  # each answer entirely from one version, never a mix
        if "2" in versions:  # once a worker saw the new version it never gets the old one again
            assert "1" not in versions[versions.index("2") :]
    assert p.predict(recent).model_version == "2"

    # explicit refresh: back to v1, then nothing to do
    client.set_registered_model_alias(NAME, "live", "1")
    assert p.refresh() is True and p.version == "1"
    assert p.refresh() is False
    p.close()


def test_failed_background_refresh_keeps_serving(store, recent, caplog):
    s, client = store["settings"], store["client"]
    client.set_registered_model_alias(NAME, "doomed", "1")
    p = Predictor(NAME, "doomed", settings=s, refresh_interval_s=0.01)
    client.delete_registered_model_alias(NAME, "doomed")
    deadline = time.monotonic() + 30
    with caplog.at_level(logging.ERROR, logger="backend.ml_engine.predictor"):
        while p.refresh_errors == 0 and time.monotonic() < deadline:
            assert p.predict(recent).model_version == "1"
            time.sleep(0.02)
        p.close()
    assert p.refresh_errors >= 1 and p.version == "1"
    assert "background refresh failed, still serving v1" in caplog.text
    with pytest.raises(ModelNotAvailableError, match="no alias 'doomed'"):
        p.refresh()
    assert p.predict(recent).model_version == "1"


# ------------------------------------------------------------------------------------------------
# (c) PyTorch fallback
# ------------------------------------------------------------------------------------------------


def test_torch_fallback_when_the_version_has_no_onnx(store, predictor, recent, tmp_path, caplog):
    import mlflow.pytorch

    from backend.ml_engine.mlflow_integration import get_mlflow_tracker

    s = store["settings"]
    expected = predictor.predict(recent).probabilities
    # a registered version logged without model.onnx
    module = mlflow.pytorch.load_model(str(predictor.bundle.model_dir))
    tracker = get_mlflow_tracker(experiment_name="model_training", settings=s)
    with tracker.run(run_name="no_onnx"):
        uri = tracker.log_model(
            module,
            "model",
            input_example=np.zeros((2, 16, 22), dtype=np.float32),
            artifacts={"metadata.json": store["v1"]["metadata_path"]},
        )
        version = tracker.register_model(uri, "pred_noonnx")
    tracker.models.promote("pred_noonnx", version, reason="no onnx", force=True)
    with caplog.at_level(logging.WARNING, logger="backend.ml_engine.predictor"):
        p = Predictor("pred_noonnx", settings=s, refresh_interval_s=0)
    assert p.backend == BACKEND_TORCH and "no model.onnx" in caplog.text
    assert not (p.bundle.model_dir / "model.onnx").exists()
    pred = p.predict(recent)
    assert pred.backend == BACKEND_TORCH and pred.model_name == "pred_noonnx"
    assert max(abs(pred.probabilities[k] - expected[k]) for k in expected) <= 1e-5

    # a local model folder without the ONNX file, and prefer_onnx=False
    folder = tmp_path / "model"
    shutil.copytree(predictor.bundle.model_dir, folder)
    (folder / "model.onnx").unlink()
    local = Predictor.from_model_uri(folder, settings=s)
    assert local.backend == BACKEND_TORCH and local.version == "local"
    eager = Predictor(NAME, settings=s, refresh_interval_s=0, prefer_onnx=False)
    assert eager.backend == BACKEND_TORCH
    for q in (local, eager):
        got = q.predict(recent).probabilities
        assert max(abs(got[k] - expected[k]) for k in expected) <= 1e-5
    # a broken ONNX file also falls back
    (folder / "model.onnx").write_bytes(b"not an onnx model")
    assert Predictor.from_model_uri(folder, settings=s).backend == BACKEND_TORCH


# ------------------------------------------------------------------------------------------------
# (d) clear errors
# ------------------------------------------------------------------------------------------------


def test_clear_error_without_production_alias(store, tmp_path):
    s = store["settings"]
    store["client"].create_registered_model("pred_unpromoted")
    with pytest.raises(ModelNotAvailableError, match=r"has no alias 'production'.*promote a version first"):
        Predictor("pred_unpromoted", settings=s)
    with pytest.raises(ModelNotAvailableError, match="'no_such_model' does not exist"):
        Predictor("no_such_model", settings=s)
    with pytest.raises(ModelNotAvailableError, match=r"no alias 'canary'.*production=v1"):
        Predictor(NAME, "canary", settings=s)
    with pytest.raises(ModelNotAvailableError):
        Predictor.from_model_uri(f"models:/{NAME}/99", settings=s)
    with pytest.raises(ModelNotAvailableError, match="MLmodel"):
        Predictor.from_model_uri(tmp_path, settings=s)
    # an unreachable store is not "no model": PredictorError (the API answers 503, not 404), password masked
    with pytest.raises(PredictorError) as err:
        Predictor(NAME, settings=s, tracking_uri="postgresql://bot:sekret@127.0.0.1:1/mlflow")
    assert not isinstance(err.value, ModelNotAvailableError) and "sekret" not in str(err.value)


def test_clear_errors_for_bad_candles(predictor, recent):
    need = predictor.pipeline["min_history_rows"]
    assert need == 16 + predictor.pipeline["lookback_rows"] - 1
    predictor.predict(recent.tail(need).reset_index(drop=True))  # exactly enough
    with pytest.raises(
        DataValidationError, match=rf"too_few_rows: the frame has {need - 1} candles; .* needs {need}"
    ) as err:
        predictor.predict(recent.tail(need - 1).reset_index(drop=True))
    assert err.value.rule == "too_few_rows" and "min_history_rows" in str(err.value)
    with pytest.raises(DataValidationError, match="too_few_rows"):
        predictor.predict(recent.iloc[:0])
    # a long gap: only the candles after it count
    gapped = pd.concat([recent.iloc[:200], recent.iloc[210:]], ignore_index=True)
    with pytest.raises(DataValidationError, match=r"last contiguous run \(after the gap before .*\) has 90 candles"):
        predictor.predict(gapped)
    nan = recent.copy()
    nan.loc[250, "close"] = np.nan
    with pytest.raises(DataValidationError, match="row 251: non_finite: close is NaN"):
        predictor.predict(nan)
    bad = recent.copy()
    bad.loc[10, "high"] = bad.loc[10, "low"] / 2
    with pytest.raises(DataValidationError, match="row 11: high_below_low"):
        predictor.predict(bad)
    with pytest.raises(DataValidationError, match="missing_column"):
        predictor.predict(recent.drop(columns=["volume"]))
    with pytest.raises(DataValidationError, match="timeframe_mismatch"):
        predictor.predict(recent.iloc[::2].reset_index(drop=True))  # 10m candles for a 5m model
    with pytest.raises(TypeError, match="DataFrame"):
        predictor.predict(recent.to_numpy())


# ------------------------------------------------------------------------------------------------
# candle validation fast path
# ------------------------------------------------------------------------------------------------


def _validated(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    clean, _ = validate_candles(frame, "t", "5m", max_fill_gap=3, min_rows=1)
    return clean["timestamp"].array.asi8, np.stack([clean[c].to_numpy() for c in OHLCV])


def _raise(exc: BaseException):
    raise exc


def test_fast_validation_accepts_only_what_validate_candles_leaves_unchanged(recent):
    variants = {
        "clean": recent,
        "naive UTC times": recent.assign(timestamp=recent["timestamp"].dt.tz_localize(None)),
        "other zone": recent.assign(timestamp=recent["timestamp"].dt.tz_convert("Asia/Tokyo")),
        "upper-case columns, date column": recent.rename(columns=str.upper).rename(columns={"TIMESTAMP": "Date"}),
        "int volume": recent.assign(volume=recent["volume"].round().astype("int64")),
        "us resolution": recent.assign(timestamp=recent["timestamp"].dt.as_unit("us")),
    }
    for label, frame in variants.items():
        fast = _fast_clean(frame, "5m", 139)
        assert fast is not None, label
        ts, values = _validated(frame)
        assert np.array_equal(fast[0], ts) and np.array_equal(fast[1], values), label

    shuffled = recent.sample(frac=1.0, random_state=0).reset_index(drop=True)
    repaired = {
        "unsorted": shuffled,
        "duplicate": pd.concat([recent, recent.iloc[[5]]], ignore_index=True),
        "short gap": recent.drop(index=[100, 101]).reset_index(drop=True),
        "long gap": recent.drop(index=range(100, 110)).reset_index(drop=True),
        "NaN": recent.assign(close=recent["close"].where(recent.index != 7)),
        "string times": recent.assign(timestamp=recent["timestamp"].astype(str)),
        "datetime index": recent.set_index("timestamp"),
        "too short": recent.tail(50).reset_index(drop=True),
        "negative volume": recent.assign(volume=-recent["volume"]),
        "open above high": recent.assign(open=recent["high"] * 1.01),
        "close below low": recent.assign(close=recent["low"] * 0.99),
        "inf high": recent.assign(high=recent["high"].where(recent.index != 9, np.inf)),
        "inf volume": recent.assign(volume=recent["volume"].where(recent.index != 9, np.inf)),
        "NaN volume": recent.assign(volume=recent["volume"].where(recent.index != 9)),
        "zero low": recent.assign(low=recent["low"].where(recent.index != 9, 0.0)),
        "NaT": recent.assign(timestamp=recent["timestamp"].where(recent.index != 9)),
        "duplicate column name": pd.concat([recent, recent[["close"]]], axis=1),
        "string prices": recent.assign(close=recent["close"].astype(str)),
    }
    for label, frame in repaired.items():
        assert _fast_clean(frame, "5m", 139) is None, label
    # without pandas' private column accessor the public route gives the same arrays
    private = fast_without = None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pd.DataFrame, "_get_column_array", property(lambda self: _raise(AttributeError("gone"))))
        private = _fast_clean(variants["naive UTC times"], "5m", 139)
        fast_without = _fast_clean(recent, "5m", 139)
    ts, values = _validated(recent)
    assert fast_without is not None and np.array_equal(fast_without[0], ts) and np.array_equal(fast_without[1], values)
    assert private is not None and np.array_equal(private[1], values)
    # the step comes from the model's timeframe (or the first difference when it has none)
    assert _fast_clean(recent, "1m", 139) is None and _fast_clean(recent, "bogus", 139) is None
    assert _fast_clean(recent, None, 139) is not None


def test_repaired_candles_predict_like_training_would_see_them(predictor, recent):
    clean = predictor.predict(recent)
    # unsorted rows and an identical duplicate are repaired by validate_candles: same answer
    shuffled = recent.sample(frac=1.0, random_state=1).reset_index(drop=True)
    assert predictor.predict(shuffled).probabilities == clean.probabilities
    dup = pd.concat([recent, recent.iloc[[250]]], ignore_index=True)
    assert predictor.predict(dup).probabilities == clean.probabilities
    # a short gap is forward-filled exactly as in training
    gapped = recent.drop(index=[280, 281]).reset_index(drop=True)
    filled, _ = validate_candles(gapped, "t", "5m", max_fill_gap=3)
    assert predictor.predict(gapped).probabilities == predictor.predict(filled.drop(columns="segment")).probabilities
    assert predictor.predict(gapped).probabilities != clean.probabilities
    _, rows = predictor.predict_proba(gapped)
    assert rows[-1] == len(filled) - 1  # end rows index the validated (filled) frame


# ------------------------------------------------------------------------------------------------
# PostgreSQL: the production alias moved through the registry
# ------------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_production_alias_on_postgres_and_refresh_after_promotion(pg_url, tmp_path, recent):
    from backend.ml_engine.model_registry import get_model_registry

    settings = make_settings(tmp_path, tracking_uri=pg_url)
    orchestrator = TrainingOrchestrator(settings)
    r1 = orchestrator.train_model_sync(
        model_name="pg_pred", run_name="pg_v1", window=16, auto_promote=True, min_accuracy_for_promotion=0.0, **TRAINING
    )
    assert r1["success"] and r1["promoted"], r1.get("error") or r1.get("promotion_reason")
    p = Predictor("pg_pred", settings=settings, refresh_interval_s=0)
    assert (p.version, p.backend) == ("1", BACKEND_ONNX)
    assert p.display_uri.startswith("postgresql://")
    first = p.predict(recent)
    assert first.model_version == "1"

    r2 = orchestrator.train_model_sync(model_name="pg_pred", run_name="pg_v2", window=12, seed=3, **TRAINING)
    assert r2["success"] and r2["version"] == "2"
    assert p.refresh() is False  # registered, not promoted
    registry = get_model_registry(settings)
    try:
        decision = asyncio.run(registry.promote("pg_pred", 2, reason="test", force=True))
    finally:
        registry.close()
    assert decision.promoted
    assert p.refresh() is True
    second = p.predict(recent)
    assert (second.model_version, p.pipeline["window"]) == ("2", 12)
    assert second.probabilities != first.probabilities
    p.close()
