"""What a bot host gets from ``pip install '.[serve]'``, checked in a fresh virtual environment.

The environment is built once for the module (``python -m venv`` in a temporary folder) and the
project is installed into it NON-editable from a copy of ``pyproject.toml``, ``README.md`` and
``backend/`` (building in the checkout would leave ``build/`` and ``*.egg-info`` there), so the
installed wheel has to carry the package data (sample candles, ``py.typed``) by itself.

In that environment: no torch, no Streamlit, no Flask or scikit-learn; FastAPI is installed only
because mlflow-skinny requires it (its scoring server), not because this project does. Models
are trained and registered by THIS environment (the main one, with the ``train`` extra) into a
SQLite and a PostgreSQL store; the serving environment loads ``models:/<name>@production`` with
:class:`Predictor` and must give the same probabilities (within 1e-6) as this environment's
Predictor on the same bundled candles, without ever importing torch; so must the version's MLflow
pyfunc, loaded with ``mlflow.pyfunc.load_model`` and served by ``mlflow models serve``.

pip's cache makes the install take about 35 s here; the whole module about 1 min 45 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLE_DATA, TINY_MODEL, make_settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
NAME = "serving_pkg"
TRAINING = {
    "epochs": 1,
    "date_range": 3,
    "batch_size": 256,
    "window": 16,
    "horizon": 4,
    "symbols": ["ETH/BTC"],
    "model_kwargs": TINY_MODEL,
    "data": str(SAMPLE_DATA),
}
#: Imported by nothing a serving process needs (checked after loading and predicting).
NOT_FOR_SERVING = ("torch", "streamlit", "flask", "sklearn", "matplotlib", "pyarrow", "scipy", "huey", "plotly")

#: Run with the serving environment's and with this environment's interpreter: loads the
#: production version of NAME from the store in argv[1] and predicts on the candles in argv[2].
PREDICT_SCRIPT = r"""
import json, sys
import pandas as pd
from backend.ml_engine.config import Settings
from backend.ml_engine.predictor import Predictor

store, candles_file, cache = sys.argv[1], sys.argv[2], sys.argv[3]
spec = json.loads(open(store).read())
raw = json.loads(open(candles_file).read())
frame = pd.DataFrame({"timestamp": pd.to_datetime(raw["timestamp_ns"], utc=True),
                      **{c: raw[c] for c in ("open", "high", "low", "close", "volume")}})
settings = Settings(mlflow_tracking_uri=spec["uri"], mlflow_artifact_location=spec["artifacts"], cache_dir=cache)
predictor = Predictor(spec["name"], settings=settings, refresh_interval_s=0)
pred = predictor.predict(frame)
probs, ends = predictor.predict_proba(frame)
predictor.close()
import backend
print(json.dumps({
    "backend": predictor.backend, "version": predictor.version, "signal": pred.signal,
    "probabilities": pred.probabilities, "proba": probs.astype(float).tolist(), "ends": ends.tolist(),
    "modules": sorted({m.split(".")[0] for m in sys.modules}), "package": backend.__file__,
}))
"""


def _run(cmd: list[str], timeout: float = 600, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)


def _clean_env() -> dict[str, str]:
    """The environment without this checkout on the path and without the project's settings."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(("ML_", "MLFLOW_"))}


@pytest.fixture(scope="module")
def serve_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with ``<copy of the project>[serve]`` installed; its python."""
    root = tmp_path_factory.mktemp("serve_venv")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "backend", src / "backend", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], env=_clean_env())
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    pip = _run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{src}[serve]"],
        env=_clean_env(),
        cwd=root,
    )
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-5000:]
    return python


def _in_venv(python: Path, code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return _run([str(python), "-c", code, *args], env=_clean_env(), cwd=cwd, timeout=300)


# ------------------------------------------------------------------------------------------------
# what the serving install holds
# ------------------------------------------------------------------------------------------------


def test_serve_install_has_no_torch_streamlit_or_flask(serve_venv: Path, tmp_path: Path) -> None:
    for module in ("torch", "streamlit", "flask", "sklearn", "matplotlib", "huey"):
        out = _in_venv(serve_venv, f"import {module}", cwd=tmp_path)
        assert out.returncode != 0 and "ModuleNotFoundError" in out.stderr, (module, out.stdout, out.stderr)
    out = _in_venv(serve_venv, "import mlflow, onnxruntime, numba, sqlalchemy, alembic, psycopg", cwd=tmp_path)
    assert out.returncode == 0, out.stderr


def test_fastapi_is_there_only_as_a_requirement_of_mlflow_skinny(serve_venv: Path, tmp_path: Path) -> None:
    # mlflow-skinny requires fastapi and uvicorn (its model scoring server); this project does not
    code = r"""
import importlib.metadata as md, json, re
from packaging.requirements import Requirement
needed = {}
for dist in md.distributions():
    for req in dist.requires or []:
        r = Requirement(req)
        if r.name.lower() in ("fastapi", "uvicorn") and (r.marker is None or r.marker.evaluate({"extra": ""})):
            needed.setdefault(r.name.lower(), []).append(dist.metadata["Name"].lower())
print(json.dumps({k: sorted(v) for k, v in needed.items()}))
"""
    out = _in_venv(serve_venv, code, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"fastapi": ["mlflow-skinny"], "uvicorn": ["mlflow-skinny"]}, out.stdout
    ours = _in_venv(
        serve_venv,
        "import importlib.metadata as md; print([r for r in md.requires('trading-bot-ml-engine') if 'extra' not in r])",
        cwd=tmp_path,
    )
    assert "fastapi" not in ours.stdout and "torch" not in ours.stdout and "mlflow-skinny" in ours.stdout, ours.stdout


def test_serve_install_carries_package_data_and_the_console_script(serve_venv: Path, tmp_path: Path) -> None:
    code = r"""
import backend, backend.ml_engine.config as c, pathlib, sys
pkg = pathlib.Path(backend.__file__).parent
assert (pkg / "py.typed").is_file(), "py.typed not installed"
assert sorted(p.name for p in c.SAMPLE_DATA_DIR.glob("*.feather")), "sample candles not installed"
assert pathlib.Path(sys.prefix) in pkg.parents, pkg
print("ok")
"""
    out = _in_venv(serve_venv, code, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    tbml = serve_venv.parent / "tbml"
    helped = _run([str(tbml), "--help"], env=_clean_env(), cwd=tmp_path, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert "check-store" in helped.stdout and "train" in helped.stdout
    # a command whose extra is missing says which extra to install (streamlit: asserted absent above)
    board = _run([str(tbml), "dashboard", "--address", "127.0.0.1"], env=_clean_env(), cwd=tmp_path, timeout=120)
    assert board.returncode == 2 and "streamlit is not installed" in board.stderr, board.stdout + board.stderr
    assert "pip install 'trading-bot-ml-engine[dashboard]'" in board.stderr


# ------------------------------------------------------------------------------------------------
# the Predictor in the serving environment against this one
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def candles_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The last 300 bundled ETH/BTC candles as JSON (floats written exactly: repr round-trips)."""
    from backend.ml_engine.data import load_candles

    frame = load_candles(str(SAMPLE_DATA), symbols=["ETH/BTC"], timeframe="5m")[0].frame.tail(300)
    path = tmp_path_factory.mktemp("candles") / "recent.json"
    data: dict[str, list[Any]] = {"timestamp_ns": [int(t.value) for t in frame["timestamp"]]}
    data.update({c: [float(v) for v in frame[c]] for c in ("open", "high", "low", "close", "volume")})
    path.write_text(json.dumps(data))
    return path


def _train_into(root: Path, tracking_uri: str | None) -> Path:
    from backend.ml_engine.training_orchestrator import TrainingOrchestrator

    settings = make_settings(root, tracking_uri=tracking_uri)
    result = TrainingOrchestrator(settings).train_model_sync(
        model_name=NAME, run_name="serving", auto_promote=True, min_accuracy_for_promotion=0.0, **TRAINING
    )
    assert result["success"] and result["promoted"], result.get("error") or result.get("promotion_reason")
    spec = root / "store.json"
    spec.write_text(
        json.dumps({"uri": settings.mlflow_tracking_uri, "artifacts": settings.mlflow_artifact_location, "name": NAME})
    )
    return spec


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A store with NAME v1 in production, trained by this (the main) environment."""
    root = tmp_path_factory.mktemp(f"store_{request.param}")
    if request.param == "sqlite":
        yield _train_into(root, None)
        return
    from conftest import _admin_connect

    dbname = f"test_pkg_{os.getpid()}"
    conn = _admin_connect()
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
        cur.execute(f'CREATE DATABASE "{dbname}"')
    conn.close()
    try:
        from conftest import PG_HOST, PG_PORT, PG_USER

        yield _train_into(root, f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{dbname}")
    finally:
        conn = _admin_connect()
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
        conn.close()


def _predict(python: Path | str, store: Path, candles: Path, cache: Path) -> dict[str, Any]:
    out = _run(
        [str(python), "-c", PREDICT_SCRIPT, str(store), str(candles), str(cache)],
        env=_clean_env(),
        cwd=cache.parent,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-5000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_serving_environment_predicts_as_the_main_one(
    serve_venv: Path, store: Path, candles_file: Path, tmp_path: Path
) -> None:
    served = _predict(serve_venv, store, candles_file, tmp_path / "cache_serve")
    main = _predict(sys.executable, store, candles_file, tmp_path / "cache_main")

    assert Path(served["package"]).is_relative_to(serve_venv.parent.parent), served["package"]
    assert served["backend"] == "onnxruntime" and served["version"] == "1"
    assert not set(NOT_FOR_SERVING) & set(served["modules"]), set(NOT_FOR_SERVING) & set(served["modules"])
    assert main["backend"] == "onnxruntime" and main["version"] == "1"
    assert served["signal"] == main["signal"]
    for cls, p in main["probabilities"].items():
        assert served["probabilities"][cls] == pytest.approx(p, abs=1e-6), cls
    assert served["ends"] == main["ends"] and len(served["proba"]) == len(main["proba"]) > 100
    worst = max(abs(a - b) for ra, rb in zip(served["proba"], main["proba"]) for a, b in zip(ra, rb))
    assert worst <= 1e-6, worst


# ------------------------------------------------------------------------------------------------
# the MLflow pyfunc in the serving environment
# ------------------------------------------------------------------------------------------------


LOADER_SCRIPT = r"""
import json, sys
import mlflow.models
from backend.ml_engine.mlflow_integration.stores import resolve_tracking_uri

spec = json.loads(open(sys.argv[1]).read())
mlflow.set_registry_uri(resolve_tracking_uri(spec["uri"]))
mlflow.set_tracking_uri(resolve_tracking_uri(spec["uri"]))
flavor = mlflow.models.get_model_info(f"models:/{spec['name']}@production").flavors.get("python_function", {})
print(flavor.get("loader_module", ""))
"""


def _pyfunc_support(store: Path) -> str | None:
    """None when the production version is a candle pyfunc served by our loader, else why not.

    Read in a subprocess of this environment: MLflow's tracking and registry URIs are process-wide."""
    out = _run([sys.executable, "-c", LOADER_SCRIPT, str(store)], env=_clean_env(), cwd=store.parent, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    loader = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if loader.startswith("backend."):
        return None
    return (
        "backend.ml_engine.predictor exposes no pyfunc loader yet: the version's python_function flavor is "
        f"{loader or 'missing'!r} (mlflow.pytorch's needs torch and takes model input, not candles)"
    )


PYFUNC_SCRIPT = r"""
import json, sys
import pandas as pd
import mlflow
from backend.ml_engine.mlflow_integration.stores import resolve_tracking_uri

spec = json.loads(open(sys.argv[1]).read())
raw = json.loads(open(sys.argv[2]).read())
frame = pd.DataFrame({"timestamp": pd.to_datetime(raw["timestamp_ns"], utc=True),
                      **{c: raw[c] for c in ("open", "high", "low", "close", "volume")}})
mlflow.set_tracking_uri(resolve_tracking_uri(spec["uri"]))
mlflow.set_registry_uri(resolve_tracking_uri(spec["uri"]))
model = mlflow.pyfunc.load_model(f"models:/{spec['name']}@production")
out = pd.DataFrame(model.predict(frame))
last = out.iloc[-1]
probs = {c: float(last[c]) for c in ("down", "flat", "up") if c in out.columns}
print(json.dumps({"probabilities": probs, "columns": [str(c) for c in out.columns], "rows": len(out),
                  "signal": str(last["signal"]) if "signal" in out.columns else None,
                  "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def test_pyfunc_loads_and_predicts_in_the_serving_environment(
    serve_venv: Path, store: Path, candles_file: Path, tmp_path: Path
) -> None:
    reason = _pyfunc_support(store)
    if reason is not None:
        pytest.skip(reason)
    out = _run(
        [str(serve_venv), "-c", PYFUNC_SCRIPT, str(store), str(candles_file)],
        env=_clean_env(),
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-5000:]
    served = json.loads(out.stdout.strip().splitlines()[-1])
    main = _predict(sys.executable, store, candles_file, tmp_path / "cache_main")
    assert "torch" not in served["modules"]
    assert set(served["probabilities"]) == {"down", "flat", "up"}, served["columns"]
    assert served["rows"] == 1 and served["signal"] == main["signal"], served
    for cls, p in main["probabilities"].items():
        assert served["probabilities"][cls] == pytest.approx(p, abs=1e-6), cls


def _serving_env(python: Path) -> dict[str, str]:
    # MLflow starts the scoring server as `uvicorn ...` by name: the environment's bin/ on PATH,
    # as in an activated virtual environment
    env = _clean_env()
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_mlflow_models_serve_in_the_serving_environment(
    serve_venv: Path, store: Path, candles_file: Path, tmp_path: Path
) -> None:
    reason = _pyfunc_support(store)
    if reason is not None:
        pytest.skip(reason)
    import httpx
    from api_support import free_port

    spec = json.loads(store.read_text())
    port = free_port()
    env = {**_serving_env(serve_venv), "MLFLOW_TRACKING_URI": spec["uri"]}
    cmd = [str(serve_venv.parent / "mlflow"), "models", "serve", "-m", f"models:/{NAME}@production"]
    cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, "the scoring server did not start:\n" + log.read_text()[-4000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        raw = json.loads(candles_file.read_text())
        columns = ["timestamp", "open", "high", "low", "close", "volume"]
        rows = [[_iso(ns), *(raw[c][i] for c in columns[1:])] for i, ns in enumerate(raw["timestamp_ns"])]
        body = {"dataframe_split": {"columns": columns, "data": rows}}
        r = httpx.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=60)
        assert r.status_code == 200, r.text
        served = r.json()["predictions"][-1]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    main = _predict(sys.executable, store, candles_file, tmp_path / "cache_main")
    assert served["signal"] == main["signal"]
    for cls, p in main["probabilities"].items():
        assert served[cls] == pytest.approx(p, abs=1e-6), cls


def _iso(ns: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.UTC).isoformat()
