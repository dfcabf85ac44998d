"""The candle pyfunc of every registered version: MLflow loads and serves it from raw candles.

One tiny model is trained for the module by the orchestrator into a SQLite store (seconds) and
promoted to ``production``; the training writes the pyfunc flavor (``serving_example``). Then:

* ``mlflow.pyfunc.load_model("models:/pyf@production").predict(candles)`` gives the Predictor's
  probabilities (within 1e-6), signal, confidence and candle time, and bad candles the Predictor's
  one-line errors as ``MlflowException(INVALID_PARAMETER_VALUE)``;
* a fresh process loading and running the pyfunc never imports torch;
* the version's MLmodel: the candle signature, our loader, the PyTorch flavor kept, and the input
  example = the last ``min_history_rows`` candles of the first series' test split;
* ``mlflow models serve -m models:/pyf@production --env-manager local`` answers ``POST
  /invocations`` with the same probabilities (200), and bad candles with 400 and the Predictor's
  message;
* an optional ``symbol`` column: one row per symbol from one model call, each the Predictor's answer
  for that symbol's candles; with ``ML_PREDICTION_LOG`` on, the pyfunc (loaded or served) records
  its predictions with source ``pyfunc``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import SAMPLE_DATA, TINY_MODEL, make_settings

from backend.ml_engine.data import DataValidationError, load_candles
from backend.ml_engine.prediction_log import predictions_table
from backend.ml_engine.predictor import Predictor
from backend.ml_engine.predictor._pyfunc import LOADER_MODULE

NAME = "pyf"
TRAINING = {
    "epochs": 1,
    "date_range": 3,
    "batch_size": 256,
    "horizon": 4,
    "window": 16,
    "symbols": ["ETH/BTC"],
    "model_kwargs": TINY_MODEL,
    "data": str(SAMPLE_DATA),
}
OHLCV = ["open", "high", "low", "close", "volume"]
CLASSES = ["down", "flat", "up"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """SQLite store with ``pyf`` v1 in production; MLflow's global URIs point at it for the module."""
    from backend.ml_engine.training_orchestrator import TrainingOrchestrator

    root = tmp_path_factory.mktemp("pyfunc")
    settings = make_settings(root)
    result = TrainingOrchestrator(settings).train_model_sync(
        model_name=NAME, run_name="pyfunc", auto_promote=True, min_accuracy_for_promotion=0.0, **TRAINING
    )
    assert result["success"] and result["promoted"], result.get("error") or result.get("promotion_reason")
    assert result["version"] == "1"
    import mlflow

    from backend.ml_engine.mlflow_integration.stores import resolve_tracking_uri

    uri = resolve_tracking_uri(settings.mlflow_tracking_uri)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("MLFLOW_REGISTRY_URI", uri)
        mp.setattr("mlflow.tracking._tracking_service.utils._tracking_uri", None, raising=False)
        mp.setattr("mlflow.tracking._model_registry.utils._registry_uri", None, raising=False)
        assert mlflow.get_tracking_uri() == uri and mlflow.get_registry_uri() == uri
        yield {"settings": settings, "result": result, "uri": uri, "root": root}


@pytest.fixture(scope="module")
def recent() -> pd.DataFrame:
    """The last 300 raw ETH/BTC candles (timestamp UTC + OHLCV), as the bot's feed gives them."""
    frame = load_candles(str(SAMPLE_DATA), symbols=["ETH/BTC"], timeframe="5m")[0].frame
    return frame[["timestamp", *OHLCV]].tail(300).reset_index(drop=True)


@pytest.fixture(scope="module")
def others() -> dict[str, pd.DataFrame]:
    """The last 300 raw candles of two more pairs (the model reads any 5m pair)."""
    out = {}
    for symbol in ("LTC/BTC", "XMR/BTC"):
        frame = load_candles(str(SAMPLE_DATA), symbols=[symbol], timeframe="5m")[0].frame
        out[symbol] = frame[["timestamp", *OHLCV]].tail(300).reset_index(drop=True)
    return out


def _with_symbols(frames: dict[str, pd.DataFrame], seed: int = 7) -> pd.DataFrame:
    """Every pair's candles in one frame with a ``symbol`` column, the pairs' rows randomly interleaved
    (each pair's own rows still in time order)."""
    rng = np.random.default_rng(seed)
    tagged = pd.concat([f.assign(symbol=s) for s, f in frames.items()], ignore_index=True)
    keys = np.concatenate([np.sort(rng.random(len(f))) for f in frames.values()])
    return tagged.iloc[np.argsort(keys, kind="stable")].reset_index(drop=True)


def _log_rows(url: str) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [
                dict(r._mapping) for r in conn.execute(sa.select(predictions_table).order_by(predictions_table.c.id))
            ]
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def predictor(store) -> Predictor:
    p = Predictor(NAME, settings=store["settings"], refresh_interval_s=0)
    yield p
    p.close()


@pytest.fixture(scope="module")
def by_id(store) -> Predictor:
    """The Predictor on the same model by its MLflow model id: how the pyfunc names the model in messages."""
    p = Predictor.from_model_uri(store["result"]["model_uri"], settings=store["settings"], model_name=NAME)
    yield p
    p.close()


@pytest.fixture(scope="module")
def pyfunc(store):
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(f"models:/{NAME}@production")


def _bad_frames(recent: pd.DataFrame, need: int) -> dict[str, pd.DataFrame]:
    nan = recent.copy()
    nan.loc[250, "close"] = np.nan
    conflict = pd.concat(
        [recent, recent.iloc[[280]].assign(volume=recent["volume"].iloc[280] * 2 + 1)], ignore_index=True
    )
    return {
        "too few rows": recent.tail(need - 1).reset_index(drop=True),
        "NaN": nan,
        "gap": pd.concat([recent.iloc[:200], recent.iloc[210:]], ignore_index=True),  # leaves 90 candles
        "high below low": recent.assign(high=recent["high"].where(recent.index != 10, recent["low"] / 2)),
        "duplicate with other values": conflict,
    }


def _predictor_error(p: Predictor, frame: pd.DataFrame) -> str:
    with pytest.raises(DataValidationError) as err:
        p.predict(frame)
    return " ".join(str(err.value).split())


def _as_dict(row: pd.Series | dict[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if k in (*CLASSES, "confidence") else v) for k, v in dict(row).items()}


def _assert_same(served: dict[str, Any], expected, where: str) -> None:
    assert set(served) == {*CLASSES, "signal", "confidence", "candle_time"}, where
    for c in CLASSES:
        assert abs(served[c] - expected.probabilities[c]) <= 1e-6, (where, c)
    assert served["signal"] == expected.signal, where
    assert abs(served["confidence"] - expected.confidence) <= 1e-6, where
    assert served["candle_time"] == expected.candle_time, where


# ------------------------------------------------------------------------------------------------
# (a) mlflow.pyfunc.load_model(...).predict(candles) = Predictor.predict
# ------------------------------------------------------------------------------------------------


def test_pyfunc_predicts_what_the_predictor_predicts(store, predictor, pyfunc, recent):
    assert pyfunc.metadata.flavors["python_function"]["loader_module"] == LOADER_MODULE
    assert pyfunc.model_id == store["result"]["model_uri"].removeprefix("models:/")
    frames = {
        "bot feed (UTC-aware)": recent,
        "naive UTC times": recent.assign(timestamp=recent["timestamp"].dt.tz_localize(None)),
        "another zone": recent.assign(timestamp=recent["timestamp"].dt.tz_convert("Asia/Tokyo")),
        "ISO strings": recent.assign(timestamp=recent["timestamp"].map(lambda t: t.isoformat())),
        "ends earlier, offset index": recent.iloc[40:260],
        "unsorted (repaired, as the Predictor does)": recent.sample(frac=1.0, random_state=3).reset_index(drop=True),
        "short gap (forward-filled)": recent.drop(index=[280, 281]).reset_index(drop=True),
    }
    for label, frame in frames.items():
        out = pyfunc.predict(frame)
        assert isinstance(out, pd.DataFrame) and len(out) == 1, label
        assert list(out.columns) == [*CLASSES, "signal", "confidence", "candle_time"], label
        assert [str(out[c].dtype) for c in (*CLASSES, "confidence")] == ["float64"] * 4, label
        _assert_same(_as_dict(out.iloc[0]), predictor.predict(frame), label)
    # the same code, so the same bits
    same = pyfunc.predict(recent).iloc[0]
    assert [float(same[c]) for c in CLASSES] == list(predictor.predict(recent).probabilities.values())
    # model_config: min_confidence as the Predictor's
    import mlflow.pyfunc

    cautious = mlflow.pyfunc.load_model(f"models:/{NAME}@production", model_config={"min_confidence": 0.999})
    weak = Predictor(NAME, settings=store["settings"], refresh_interval_s=0, min_confidence=0.999).predict(recent)
    assert weak.signal == "hold"
    _assert_same(_as_dict(cautious.predict(recent).iloc[0]), weak, "min_confidence 0.999")


def test_bad_candles_get_the_predictors_one_line_errors(pyfunc, by_id, predictor, recent):
    from mlflow.exceptions import MlflowException

    need = predictor.pipeline["min_history_rows"]
    for label, frame in _bad_frames(recent, need).items():
        expected = _predictor_error(by_id, frame)
        with pytest.raises(MlflowException) as err:
            pyfunc.predict(frame)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE", label
        assert err.value.message == expected, label
        # the Predictor of the alias says the same, naming the registry version instead of the model id
        assert _predictor_error(predictor, frame) == expected.replace(f"v{by_id.version}", "v1"), label
    assert "too_few_rows: the frame has" in _predictor_error(by_id, recent.tail(need - 1).reset_index(drop=True))
    # a frame without the signature's columns: MLflow's own schema error, also INVALID_PARAMETER_VALUE
    with pytest.raises(MlflowException, match="volume") as err:
        pyfunc.predict(recent.drop(columns=["volume"]))
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_symbol_column_gives_one_row_per_symbol_from_one_model_call(pyfunc, predictor, recent, others):
    from mlflow.exceptions import MlflowException

    frames = {"ETH/BTC": recent, **others, "ETH/BTC-earlier": recent.iloc[:250].reset_index(drop=True)}
    mixed = _with_symbols(frames)
    assert mixed["symbol"].iloc[:12].nunique() > 1  # really interleaved
    impl = pyfunc._model_impl
    calls = []
    bundle = impl.bundle
    impl.bundle = dataclasses.replace(bundle, runner=lambda x: calls.append(x.shape) or bundle.runner(x))
    try:
        out = pyfunc.predict(mixed)  # through MLflow's schema enforcement
    finally:
        impl.bundle = bundle
    assert calls == [(4, *predictor.build_window(recent)[0].shape[1:])]  # four windows, one model call
    assert list(out.columns) == ["symbol", *CLASSES, "signal", "confidence", "candle_time"]
    first_seen = list(dict.fromkeys(mixed["symbol"]))
    assert list(out["symbol"]) == first_seen and set(first_seen) == set(frames)
    many = predictor.predict_many(frames)
    for _, row in out.iterrows():
        served = _as_dict(row.drop("symbol"))
        _assert_same(served, predictor.predict(frames[row["symbol"]]), row["symbol"])
        _assert_same(served, many[row["symbol"]], row["symbol"] + " (predict_many)")

    # one symbol: one row, with its symbol; no symbol column: exactly as before
    one = pyfunc.predict(recent.assign(symbol="ETH/BTC"))
    assert list(one["symbol"]) == ["ETH/BTC"]
    _assert_same(_as_dict(one.iloc[0].drop("symbol")), predictor.predict(recent), "one symbol")
    assert list(pyfunc.predict(recent).columns) == [*CLASSES, "signal", "confidence", "candle_time"]

    # bad candles of one symbol: the request fails naming it; a row without a symbol is refused
    short = _with_symbols({"ETH/BTC": recent, "LTC/BTC": others["LTC/BTC"].tail(20).reset_index(drop=True)})
    with pytest.raises(MlflowException, match=r"candles LTC/BTC: too_few_rows") as err:
        pyfunc.predict(short)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    nameless = mixed.copy()
    nameless.loc[5, "symbol"] = None
    with pytest.raises(MlflowException, match="no_symbol") as err:
        pyfunc.predict(nameless)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_the_pyfunc_records_its_predictions_when_the_log_is_on(store, predictor, recent, others, tmp_path, monkeypatch):
    import mlflow.pyfunc

    url = f"sqlite:///{tmp_path}/log.db"
    monkeypatch.setenv("ML_PREDICTION_LOG", "1")
    monkeypatch.setenv("ML_PREDICTION_LOG_URL", url)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@production")  # Settings() read at load
    log = model._model_impl.prediction_log
    assert log is not None
    try:
        single = model.predict(recent)
        several = model.predict(_with_symbols({"ETH/BTC": recent, **others}))
        from mlflow.exceptions import MlflowException

        with pytest.raises(MlflowException):
            model.predict(recent.tail(5))  # refused: nothing recorded
        assert log.flush(30)
    finally:
        log.close()
    rows = _log_rows(url)
    assert [r["source"] for r in rows] == ["pyfunc"] * 4
    assert [r["symbol"] for r in rows] == ["unknown", *several["symbol"]]
    by_id = predictor.bundle.model_id
    assert {(r["model_name"], r["model_version"], r["model_id"]) for r in rows} == {(NAME, by_id, by_id)}
    assert all(r["timeframe"] == "5m" and r["horizon"] == TRAINING["horizon"] and r["latency_ms"] > 0 for r in rows)
    answers = [single.iloc[0], *(row for _, row in several.iterrows())]
    for row, answer in zip(rows, answers):
        assert row["signal"] == answer["signal"]
        assert json.loads(row["probabilities"]) == pytest.approx({c: float(answer[c]) for c in CLASSES}, abs=1e-6)
        assert pd.Timestamp(row["candle_time"]).tz_localize("UTC") == pd.Timestamp(answer["candle_time"])
    # the digest is the Predictor's: the same window as a Predictor's logged prediction of those candles
    from backend.ml_engine.prediction_log import input_digest

    assert rows[0]["input_digest"] == input_digest(predictor.build_window(recent)[0][0])


# ------------------------------------------------------------------------------------------------
# (b) no torch in a process that loads and runs the pyfunc
# ------------------------------------------------------------------------------------------------


def test_the_pyfunc_never_imports_torch(store, recent, predictor, tmp_path):
    recent.to_pickle(tmp_path / "recent.pkl")
    script = f"""
import json, sys
import pandas as pd
import mlflow.pyfunc
model = mlflow.pyfunc.load_model("models:/{NAME}@production")
out = model.predict(pd.read_pickle({str(tmp_path / "recent.pkl")!r}))
torch = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print(json.dumps({{"torch": torch, "row": {{k: (v if isinstance(v, str) else float(v)) for k, v in out.iloc[0].items()}}}}))
"""
    env = {**os.environ, "MLFLOW_TRACKING_URI": store["uri"], "MLFLOW_REGISTRY_URI": store["uri"]}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )
    assert out.returncode == 0, out.stderr[-3000:]
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer["torch"] == []
    _assert_same(answer["row"], predictor.predict(recent), "fresh process")


# ------------------------------------------------------------------------------------------------
# (c) the registered version's MLmodel
# ------------------------------------------------------------------------------------------------


def test_registered_version_has_the_candle_signature_and_example(store, predictor, tmp_path):
    import mlflow.pytorch

    from backend.ml_engine.dataset import SplitConfig, prepare_dataset
    from backend.ml_engine.features import FeatureConfig
    from backend.ml_engine.labels import LabelConfig
    from backend.ml_engine.registry import ModelStore

    models = ModelStore(store["uri"])
    mlmodel = models.read_mlmodel(f"models:/{NAME}/1")
    assert mlmodel.signature.inputs.to_dict() == [
        {"type": "any", "name": "timestamp", "required": True},
        *({"type": "double", "name": c, "required": True} for c in OHLCV),
        {"type": "string", "name": "symbol", "required": False},  # optional: old clients still validate
    ]
    assert mlmodel.signature.outputs.to_dict() == [
        {"type": "string", "name": "symbol", "required": False},
        *({"type": "double", "name": c, "required": True} for c in CLASSES),
        {"type": "string", "name": "signal", "required": True},
        {"type": "double", "name": "confidence", "required": True},
        {"type": "string", "name": "candle_time", "required": True},
    ]
    pyfunc_conf = mlmodel.flavors["python_function"]
    assert pyfunc_conf["loader_module"] == LOADER_MODULE == "backend.ml_engine.predictor._pyfunc"
    assert pyfunc_conf["config"] == {"min_confidence": 0.0, "onnx_threads": 1, "max_fill_gap": 3}  # model_config
    assert pyfunc_conf["env"] == {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    assert mlmodel.flavors["pytorch"]["model_data"] == "data"
    assert mlmodel.saved_input_example_info["type"] == "dataframe"

    # the example: the last min_history_rows candles of the first series' test split, as trained
    folder = models.download(models.resolve(f"models:/{NAME}/1"), tmp_path)
    example = mlmodel.load_input_example(str(folder))
    meta = predictor.metadata
    need = meta["pipeline"]["min_history_rows"]
    series = load_candles(
        str(SAMPLE_DATA),
        symbols=meta["data"]["symbols"],
        timeframe=meta["data"]["timeframe"],
        date_range_days=meta["data"]["date_range_days"],
    )
    prepared = prepare_dataset(
        series,
        FeatureConfig.from_dict(meta["feature_config"]),
        LabelConfig.from_dict(meta["label_config"]),
        SplitConfig.from_dict(meta["split_config"]),
        meta["pipeline"]["window"],
    )
    end = int(prepared.test.ends.max())
    expected = series[0].frame.iloc[end + 1 - need : end + 1]
    assert list(example.columns) == ["timestamp", *OHLCV] and len(example) == need
    assert list(pd.to_datetime(example["timestamp"], utc=True)) == list(expected["timestamp"])
    assert np.array_equal(example[OHLCV].to_numpy(), expected[OHLCV].to_numpy())
    serving = json.loads((folder / mlmodel.saved_input_example_info["serving_input_path"]).read_text())
    assert serving["dataframe_split"]["data"][-1][0] == expected["timestamp"].iloc[-1].isoformat()
    # the tensor example is replaced, the PyTorch flavor kept
    module = mlflow.pytorch.load_model(str(folder))
    assert type(module).__name__ == "HybridCNNLSTM"


def test_log_model_refuses_a_serving_example_it_cannot_serve(store, predictor, recent):
    import mlflow.pytorch
    from mlflow import MlflowClient

    from backend.ml_engine.mlflow_integration import get_mlflow_tracker

    folder = predictor.bundle.model_dir
    module = mlflow.pytorch.load_model(str(folder))
    x = np.zeros((2, predictor.pipeline["window"], len(predictor.pipeline["feature_names"])), dtype=np.float32)
    meta = {"metadata.json": str(folder / "artifacts" / "metadata.json")}
    tracker = get_mlflow_tracker(experiment_name="model_training", settings=store["settings"])
    with tracker.run(run_name="bad_serving_example"):
        with pytest.raises(ValueError, match=r"serving_example: the candle pyfunc runs model\.onnx"):
            tracker.log_model(module, "model", input_example=x, artifacts=meta, serving_example=recent)
        with pytest.raises(ValueError, match="serving_example: the candle pyfunc needs the feature pipeline"):
            tracker.log_model(module, "model", input_example=x, onnx_path=folder / "model.onnx", serving_example=recent)
        with pytest.raises(ValueError, match=r"cannot serve its own candle example .* too_few_rows"):
            tracker.log_model(
                module,
                "model",
                input_example=x,
                onnx_path=folder / "model.onnx",
                artifacts=meta,
                serving_example=recent.tail(10),
            )
        run_id = tracker.last_run_id
    client = MlflowClient(store["uri"])
    models = client.search_logged_models(
        experiment_ids=[tracker.experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )
    assert [str(m.status) for m in models] == ["FAILED"]  # marked failed, never READY


def test_logging_a_model_records_nothing_in_the_prediction_log(store, predictor, recent, tmp_path, monkeypatch):
    """Logging checks the pyfunc through MLflow's serving path (a load and a prediction of its own example):
    a check, not a served prediction, so nothing reaches the prediction log even with recording on; a
    pyfunc loaded afterwards records again."""
    import mlflow.pyfunc
    import mlflow.pytorch

    from backend.ml_engine.mlflow_integration import get_mlflow_tracker
    from backend.ml_engine.prediction_log import PredictionLog

    recorded: list[str] = []
    original = PredictionLog.record

    def spy(self: PredictionLog, record: Any) -> None:
        recorded.append(record.source)
        original(self, record)

    monkeypatch.setattr(PredictionLog, "record", spy)
    url = f"sqlite:///{tmp_path}/log.db"
    monkeypatch.setenv("ML_PREDICTION_LOG", "1")
    monkeypatch.setenv("ML_PREDICTION_LOG_URL", url)
    folder = predictor.bundle.model_dir
    module = mlflow.pytorch.load_model(str(folder))
    x = np.zeros((2, predictor.pipeline["window"], len(predictor.pipeline["feature_names"])), dtype=np.float32)
    meta = {"metadata.json": str(folder / "artifacts" / "metadata.json")}
    tracker = get_mlflow_tracker(experiment_name="model_training", settings=store["settings"])
    with tracker.run(run_name="logged_while_recording_is_on"):
        uri = tracker.log_model(
            module, "model", input_example=x, onnx_path=folder / "model.onnx", artifacts=meta, serving_example=recent
        )
    assert recorded == []  # the example MLflow predicted while logging was not recorded
    model = mlflow.pyfunc.load_model(uri)
    log = model._model_impl.prediction_log
    assert log is not None  # the check's flag does not outlive it
    try:
        model.predict(recent)
        assert log.flush(30)
    finally:
        log.close()
    assert recorded == ["pyfunc"] and [r["source"] for r in _log_rows(url)] == ["pyfunc"]


# ------------------------------------------------------------------------------------------------
# (d) mlflow models serve
# ------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(url: str, body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw.strip() else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _split_json(frame: pd.DataFrame) -> bytes:
    """``{"dataframe_split": ...}`` with ISO 8601 UTC times, as a client writes candles (and the
    ``symbol`` column when the frame has one)."""
    data = [
        [t.isoformat(), *(None if np.isnan(v) else float(v) for v in row)]
        for t, row in zip(frame["timestamp"], frame[OHLCV].to_numpy())
    ]
    columns = ["timestamp", *OHLCV]
    if "symbol" in frame.columns:
        columns.append("symbol")
        data = [[*row, str(s)] for row, s in zip(data, frame["symbol"])]
    return json.dumps({"dataframe_split": {"columns": columns, "data": data}}).encode()


def test_mlflow_models_serve_answers_candles(store, predictor, by_id, recent, others, tmp_path):
    port = _free_port()
    venv_bin = Path(sys.executable).parent
    recorded = f"sqlite:///{tmp_path}/served_log.db"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store["uri"],
        "MLFLOW_REGISTRY_URI": store["uri"],
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "ML_PREDICTION_LOG": "1",  # the serving process records what it serves
        "ML_PREDICTION_LOG_URL": recorded,
    }
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            f"models:/{NAME}@production",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            "1",
        ],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if _http(f"{base}/ping")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            assert time.monotonic() < deadline, "server not ready: " + (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(0.5)

        status, body = _http(f"{base}/invocations", _split_json(recent))
        assert status == 200, body
        (row,) = body["predictions"]
        _assert_same(row, predictor.predict(recent), "served")
        # the stored serving example answers too
        status, body = _http(
            f"{base}/invocations", (predictor.bundle.model_dir / "serving_input_example.json").read_bytes()
        )
        assert status == 200 and len(body["predictions"]) == 1, body
        # unsorted candles are repaired, as the Predictor repairs them
        shuffled = recent.sample(frac=1.0, random_state=5).reset_index(drop=True)
        status, body = _http(f"{base}/invocations", _split_json(shuffled))
        assert status == 200, body
        _assert_same(body["predictions"][0], predictor.predict(shuffled), "served, unsorted")
        # several symbols in one request: one row each, with its symbol
        frames = {"ETH/BTC": recent, "LTC/BTC": others["LTC/BTC"]}
        status, body = _http(f"{base}/invocations", _split_json(_with_symbols(frames)))
        assert status == 200, body
        assert sorted(row["symbol"] for row in body["predictions"]) == sorted(frames)
        for row in body["predictions"]:
            symbol = row.pop("symbol")
            _assert_same(row, predictor.predict(frames[symbol]), f"served, {symbol}")

        need = predictor.pipeline["min_history_rows"]
        for label, frame in _bad_frames(recent, need).items():
            status, body = _http(f"{base}/invocations", _split_json(frame))
            assert status == 400, (label, status, body)
            assert body["error_code"] == "INVALID_PARAMETER_VALUE", label
            assert _predictor_error(by_id, frame) in body["message"], (label, body["message"][-500:])
        status, body = _http(
            f"{base}/invocations",
            _split_json(recent.assign(timestamp=recent["timestamp"].where(recent.index != 5))).replace(
                b'"NaT"', b'"not a time"'
            ),
        )
        assert status == 400 and "bad_timestamp" in body["message"], body

        # the five answered predictions were recorded by the server (source pyfunc), the refused ones not
        deadline = time.monotonic() + 30
        rows: list[dict] = []
        while len(rows) < 5 and time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                rows = _log_rows(recorded)
            except sa.exc.OperationalError:  # the table is created with the first write
                rows = []
        assert len(rows) == 5 and {r["source"] for r in rows} == {"pyfunc"}, rows
        assert sorted(r["symbol"] for r in rows) == ["ETH/BTC", "LTC/BTC", "unknown", "unknown", "unknown"]
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        log.close()
