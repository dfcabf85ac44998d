"""Benchmark: latency of one prediction from raw candles, ONNX Runtime against PyTorch eager.

Trains the DEFAULT model (ModelConfig defaults, window 60, default features; 1 epoch on the last
few days of the bundled ETH/BTC candles, only to have real weights and a real pipeline; latency
does not depend on the weights) into a temporary SQLite store, promotes it to ``production``, and
loads it twice through the production path (``Predictor(name)``: alias, download, metadata):
once with ONNX Runtime (1 intra-op thread) and once with PyTorch (``prefer_onnx=False``).

Timed, after a warm-up, with calls of the two backends interleaved (same machine noise for both):

* ``predict(candles)`` end to end: validation fast path, features on the last ``min_history_rows``
  candles, normalisation, model, softmax;
* its parts: the feature pipeline (``build_window``: validation + features + normaliser, shared by
  both backends) and the model call alone (``bundle.runner``);
* phase A: both backends on one thread each (ORT intra-op 1, ``torch.set_num_threads(1)``), every
  row interleaved call by call; phase B: PyTorch on its default thread count (not interleaved with
  ORT: idle OpenMP threads spin and slow whatever runs next), then ORT alone.

    .venv/bin/python bench/bench_predictor.py            # writes bench/results/predictor.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

# E402: these imports come after the sys.path entry and the MLflow variable above, on purpose
import torch  # noqa: E402
from common import cpu_model  # noqa: E402

from backend.ml_engine.config import SAMPLE_DATA_DIR, Settings  # noqa: E402
from backend.ml_engine.data import load_candles  # noqa: E402
from backend.ml_engine.model import ModelConfig  # noqa: E402
from backend.ml_engine.predictor import Predictor  # noqa: E402
from backend.ml_engine.training_orchestrator import TrainingOrchestrator  # noqa: E402

MODEL_NAME = "bench_predictor"


def load_avg() -> str:
    try:
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def interleaved(fns: dict[str, Callable[[], object]], calls: int, warmup: int) -> dict[str, np.ndarray]:
    """Milliseconds per call of each function; the order of the functions rotates every round."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    out = {name: np.empty(calls, dtype=np.float64) for name in names}
    clock = time.perf_counter_ns
    for i in range(calls):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            fn = fns[name]
            t0 = clock()
            fn()
            out[name][i] = (clock() - t0) / 1e6
    return out


def stats(ms: np.ndarray) -> dict[str, float]:
    return {
        "p50": float(np.percentile(ms, 50)),
        "p90": float(np.percentile(ms, 90)),
        "p99": float(np.percentile(ms, 99)),
        "mean": float(ms.mean()),
        "max": float(ms.max()),
    }


def row(label: str, s: dict[str, float]) -> str:
    return f"| {label} | {s['p50']:.3f} | {s['p90']:.3f} | {s['p99']:.3f} | {s['mean']:.3f} | {s['max']:.2f} |"


_IMPORT_PROBE = """
import sys, time
t = time.perf_counter()
for name in sys.argv[1:]:
    __import__(name)
seconds = time.perf_counter() - t
rss = int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) // 1024
print(f"{seconds:.2f} {rss} {int('torch' in sys.modules)}")
"""


def import_cost(*modules: str) -> tuple[float, int, bool]:
    """(seconds, VmRSS MB, torch loaded?) of importing ``modules`` in a fresh interpreter (best of 3)."""
    import subprocess

    runs = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE, *modules],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        ).stdout.split()
        runs.append((float(out[0]), int(out[1]), out[2] == "1"))
    return min(runs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=2000, help="timed calls per function (default 2000)")
    ap.add_argument("--warmup", type=int, default=200, help="untimed calls first (default 200)")
    ap.add_argument("--rows", type=int, default=300, help="candles passed to predict (default 300)")
    ap.add_argument("--date-range", type=float, default=5.0, help="days of ETH/BTC to train the weights on")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "predictor.md"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    started = dt.datetime.now(dt.UTC)
    load_start = load_avg()
    default_threads = torch.get_num_threads()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-predictor-") as tmp:
        root = Path(tmp)
        settings = Settings(
            mlflow_tracking_uri=f"sqlite:///{root}/mlflow.db",
            mlflow_artifact_location=str(root / "artifacts"),
            output_dir=str(root / "outputs"),
            cache_dir=str(root / "cache"),
        )
        t0 = time.perf_counter()
        result = TrainingOrchestrator(settings).train_model_sync(
            model_name=MODEL_NAME,
            run_name="bench",
            epochs=1,
            date_range=args.date_range,
            batch_size=256,
            data=str(SAMPLE_DATA_DIR),
            symbols=["ETH/BTC"],
            auto_promote=True,
            min_accuracy_for_promotion=0.0,
        )
        train_s = time.perf_counter() - t0
        if not result["success"] or not result.get("promoted"):
            print(
                f"training/promotion failed: {result.get('error') or result.get('promotion_reason')}", file=sys.stderr
            )
            return 1
        t0 = time.perf_counter()
        onnx = Predictor(MODEL_NAME, settings=settings, refresh_interval_s=0)
        load_onnx_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        eager = Predictor(MODEL_NAME, settings=settings, prefer_onnx=False, refresh_interval_s=0)
        load_torch_s = time.perf_counter() - t0
        assert onnx.backend == "onnxruntime" and eager.backend == "torch", (onnx.backend, eager.backend)

        series = load_candles(str(SAMPLE_DATA_DIR), symbols=["ETH/BTC"], timeframe="5m")[0]
        candles = (
            series.frame[["timestamp", "open", "high", "low", "close", "volume"]].tail(args.rows).reset_index(drop=True)
        )
        pipeline = onnx.pipeline
        assert ModelConfig.from_dict(onnx.metadata["model_config"]) == ModelConfig(
            n_features=len(pipeline["feature_names"]), window=60
        ), "not the default model config"
        n_params = sum(p.numel() for p in eager.bundle.runner.module.parameters())  # type: ignore[attr-defined]

        p_onnx, p_torch = onnx.predict(candles), eager.predict(candles)
        diff = max(abs(p_onnx.probabilities[k] - p_torch.probabilities[k]) for k in p_onnx.probabilities)
        x, _ = onnx.build_window(candles)
        gapped = candles.drop(index=[args.rows // 2, args.rows // 2 + 1]).reset_index(drop=True)  # a 2-candle gap
        run_onnx, run_torch = onnx.bundle.runner, eager.bundle.runner

        timings: dict[str, dict[str, float]] = {}
        # Phase A: one thread each (ORT intra-op 1, torch.set_num_threads(1)), all interleaved call by call.
        torch.set_num_threads(1)
        res = interleaved(
            {
                "onnx": lambda: onnx.predict(candles),
                "torch": lambda: eager.predict(candles),
                "features": lambda: onnx.build_window(candles),
                "onnx_model": lambda: run_onnx(x),
                "torch_model": lambda: run_torch(x),
                "onnx_gap": lambda: onnx.predict(gapped),
            },
            args.calls,
            args.warmup,
        )
        timings["predict, ONNX Runtime (1 thread)"] = stats(res["onnx"])
        timings["predict, PyTorch eager (1 thread)"] = stats(res["torch"])
        timings["feature pipeline alone (validate + features + normalise)"] = stats(res["features"])
        timings["model alone, ONNX Runtime (1 thread)"] = stats(res["onnx_model"])
        timings["model alone, PyTorch eager (1 thread)"] = stats(res["torch_model"])
        timings["predict, ONNX Runtime, frame with a 2-candle gap (full validate_candles path)"] = stats(
            res["onnx_gap"]
        )
        # Phase B: PyTorch with its default thread count, as a process that never calls set_num_threads
        # runs it; not interleaved with ONNX Runtime, whose calls its spinning OpenMP threads would slow.
        torch.set_num_threads(default_threads)
        res = interleaved(
            {"torch": lambda: eager.predict(candles), "torch_model": lambda: run_torch(x)}, args.calls, args.warmup
        )
        timings[f"predict, PyTorch eager ({default_threads} threads, phase B)"] = stats(res["torch"])
        timings[f"model alone, PyTorch eager ({default_threads} threads, phase B)"] = stats(res["torch_model"])
        res = interleaved({"onnx": lambda: onnx.predict(candles)}, args.calls, args.warmup)
        timings["predict, ONNX Runtime (1 thread, phase B, right after)"] = stats(res["onnx"])

    imp_pred = import_cost("backend.ml_engine.predictor")
    imp_torch = import_cost("backend.ml_engine.predictor", "torch")
    finished = dt.datetime.now(dt.UTC)
    p_o = timings["predict, ONNX Runtime (1 thread)"]
    p_t = timings["predict, PyTorch eager (1 thread)"]
    feat = timings["feature pipeline alone (validate + features + normalise)"]
    m_o = timings["model alone, ONNX Runtime (1 thread)"]
    m_t = timings["model alone, PyTorch eager (1 thread)"]
    p_tb = timings[f"predict, PyTorch eager ({default_threads} threads, phase B)"]
    p_ob = timings["predict, ONNX Runtime (1 thread, phase B, right after)"]
    ratio = p_o["p50"] / p_t["p50"]
    ratio_b = p_ob["p50"] / p_tb["p50"]
    model_ratio = m_o["p50"] / m_t["p50"]
    ok_ratio = ratio <= 0.5
    ok_p99 = p_o["p99"] < 5.0

    cmd = ".venv/bin/python bench/bench_predictor.py" + (
        "" if argv is None and len(sys.argv) == 1 else " " + shlex.join(sys.argv[1:] if argv is None else argv)
    )
    lines += [
        "# Predictor latency benchmark",
        "",
        f"- command: `{cmd}`",
        f"- date: {started:%Y-%m-%d %H:%M} UTC ({(finished - started).total_seconds():.0f} s)",
        f"- machine: {os.cpu_count()} CPUs (nproc), {cpu_model()}, {platform.system()} {platform.release()}",
        f"- load average (1/5/15 min) at start: {load_start}, at end: {load_avg()} (the machine is shared; timings are noisy, "
        "so the two backends are interleaved call by call and compared within one run)",
        f"- software: Python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
        f"onnxruntime {__import__('onnxruntime').__version__}, pandas {__import__('pandas').__version__}",
        f"- model: default `ModelConfig` ({n_params:,} parameters), window T = {pipeline['window']}, "
        f"{len(pipeline['feature_names'])} default features, min_history_rows = {pipeline['min_history_rows']} "
        f"(feature lookback {pipeline['lookback_rows']} + T - 1); weights from 1 epoch on the last {args.date_range:g} days "
        f"of the bundled ETH/BTC 5m candles ({train_s:.1f} s to train, log, register and promote; latency does not depend on weights)",
        f"- loaded through the production path `Predictor('{MODEL_NAME}')` (alias, download, metadata): "
        f"ONNX Runtime {load_onnx_s * 1e3:.0f} ms (cold download), PyTorch {load_torch_s * 1e3:.0f} ms (cache hit)",
        f"- serving process: `import backend.ml_engine.predictor` in a fresh interpreter takes {imp_pred[0]:.2f} s and "
        f"{imp_pred[1]} MB RSS, torch {'loaded' if imp_pred[2] else 'not loaded'} (ONNX Runtime serving needs no PyTorch); "
        f"with torch as well (what the PyTorch fallback adds) {imp_torch[0]:.2f} s and {imp_torch[1]} MB (best of 3 each)",
        f"- input: the last {args.rows} raw ETH/BTC candles (timestamp + OHLCV), a clean frame, as a bot's feed gives it",
        f"- {args.calls} timed calls per row after {args.warmup} warm-up calls. Phase A: every row interleaved call by "
        "call (the order rotates each round), ONNX Runtime with 1 intra-op thread, PyTorch with `torch.set_num_threads(1)`. "
        f"Phase B: PyTorch with its default {default_threads} threads, then ONNX Runtime alone",
        f"- ONNX vs PyTorch on this input: max |p_onnx - p_torch| = {diff:.2e}",
        "",
        "Milliseconds per call:",
        "",
        "| what | p50 | p90 | p99 | mean | max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [row(k, v) for k, v in timings.items()]
    lines += [
        "",
        f"Parts of one ONNX Runtime prediction (p50 {p_o['p50']:.3f} ms), each timed on its own: feature pipeline "
        f"{feat['p50']:.3f} ms, model {m_o['p50']:.3f} ms (their sum, {feat['p50'] + m_o['p50']:.3f} ms, can exceed the "
        "whole: every row is timed right after another row's call, so each part alone pays the cache misses that a "
        f"whole request pays once). With PyTorch the model alone is {m_t['p50']:.3f} ms of {p_t['p50']:.3f} ms.",
        "",
        "Targets:",
        "",
        f"- ONNX Runtime p50 at most half of PyTorch's, end to end from raw candles: {p_o['p50']:.3f} / "
        f"{p_t['p50']:.3f} ms = **{ratio:.2f}** -> **{'met' if ok_ratio else 'not met'}** (the feature pipeline, "
        f"{feat['p50']:.3f} ms, is the same for both; the model call alone {m_o['p50']:.3f} / {m_t['p50']:.3f} ms = "
        f"{model_ratio:.2f}); against PyTorch on its default {default_threads} threads (phase B) "
        f"{p_ob['p50']:.3f} / {p_tb['p50']:.3f} ms = {ratio_b:.2f}",
        f"- ONNX Runtime p99 under 5 ms on {os.cpu_count()} cores: {p_o['p99']:.3f} ms -> "
        f"**{'met' if ok_p99 else 'not met'}** (phase B: {p_ob['p99']:.3f} ms)",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if Path(args.out).exists():
        # keep a hand-written analysis section below the generated part
        old = Path(args.out).read_text()
        marker = "\n## Notes"
        if marker in old:
            text += old[old.index(marker) :]
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    if not (ok_ratio and ok_p99):
        print("a latency target is not met (see Targets above)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
