"""Benchmark: features, labels and batch windowing on 1M synthetic candles.

Generates one series of synthetic 5-minute candles (geometric random walk with stochastic
volatility, fat-tailed returns, OHLC consistent, volume correlated with |return|), then times

1. `build_features` (the public DataFrame API)            -> candles/s
2. `make_labels`                                         -> candles/s
3. `prepare_dataset` (features + labels + splits + normaliser, T=60)
4. one pass over all training batches of 256 with `WindowDataset.batches` (shuffled)  -> samples/s
5. for comparison, the per-sample path (`ds[i]` + default torch collate) on a few batches

and peak resident memory (VmHWM from /proc/self/status, reset per phase through
/proc/self/clear_refs where the kernel allows it; ru_maxrss for the whole run), next to the
size the naive (N, T, F) float32 materialisation would have needed (computed, never allocated).

    .venv/bin/python bench/bench_windowing.py            # writes bench/results/windowing.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import shlex
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from scipy.signal import lfilter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.ml_engine.dataset import prepare_dataset  # noqa: E402
from backend.ml_engine.features import FeatureConfig, build_features, feature_names  # noqa: E402
from backend.ml_engine.labels import LabelConfig, make_labels  # noqa: E402

MB = 1024 * 1024


def status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not permitted."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def synthetic_candles(n: int, seed: int = 0, price0: float = 0.05) -> pd.DataFrame:
    """Realistic-looking 5m OHLCV: GBM with AR(1) log-volatility and Student-t shocks."""
    rng = np.random.default_rng(seed)
    log_vol = lfilter([1.0], [1.0, -0.995], rng.normal(0.0, 0.03, n))  # slow volatility regimes
    sigma = 0.002 * np.exp(log_vol - log_vol.mean())
    shocks = rng.standard_t(4, n) / np.sqrt(2.0)  # unit variance, fat tails
    ret = sigma * shocks
    close = price0 * np.exp(np.cumsum(ret))
    open_ = np.empty(n)
    open_[0] = price0
    open_[1:] = close[:-1] * np.exp(rng.normal(0.0, 0.1, n - 1) * sigma[1:])
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.5, n)) * sigma)
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.5, n)) * sigma)
    volume = rng.lognormal(np.log(500.0), 0.6, n) * (1.0 + 200.0 * np.abs(ret))
    ts = pd.date_range("2015-01-01", periods=n, freq="5min", tz="UTC")
    return pd.DataFrame(
        {
            "timestamp": ts,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "segment": np.zeros(n, dtype=np.int64),
        }
    )


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--window", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-batches", type=int, default=30, help="batches for the training throughput phase")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "windowing.md")
    args = parser.parse_args()
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    command = command.replace(str(REPO) + "/", "")

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    load_before = os.getloadavg()
    rss_start = status_kb("VmRSS")
    can_reset = reset_peak()
    phases: list[dict[str, object]] = []

    def phase(name: str, seconds: float, items: int | None, unit: str) -> None:
        phases.append(
            {
                "name": name,
                "seconds": seconds,
                "items": items,
                "unit": unit,
                "peak_mb": status_kb("VmHWM") / 1024,
                "rss_mb": status_kb("VmRSS") / 1024,
            }
        )
        print(f"{name:<42} {seconds:8.2f} s  peak {status_kb('VmHWM') / 1024:7.0f} MB", flush=True)
        reset_peak()

    t = time.perf_counter()
    frame = synthetic_candles(args.rows, seed=args.seed)
    phase("generate candles", time.perf_counter() - t, args.rows, "candles")

    fcfg = FeatureConfig()
    lcfg = LabelConfig()
    t = time.perf_counter()
    feats = build_features(frame, fcfg)
    t_feat = time.perf_counter() - t
    n_feat = feats.shape[1]
    del feats
    phase("build_features", t_feat, args.rows, "candles")

    t = time.perf_counter()
    labels, _ = make_labels(frame["close"], lcfg, segment=frame["segment"])
    phase("make_labels", time.perf_counter() - t, args.rows, "candles")
    class_share = np.bincount(labels[labels >= 0], minlength=3) / (labels >= 0).sum()
    del labels

    series = SimpleNamespace(symbol="SYN/BTC", timeframe="5m", frame=frame)
    t = time.perf_counter()
    data = prepare_dataset([series], fcfg, lcfg, window=args.window)
    phase("prepare_dataset (features+labels+splits+norm)", time.perf_counter() - t, args.rows, "candles")

    ds = data.train
    gen = torch.Generator().manual_seed(args.seed)
    t = time.perf_counter()
    seen = 0
    n_batches = 0
    for xb, _yb in ds.batches(args.batch_size, shuffle=True, generator=gen):  # (B, T, F), (B,)
        seen += xb.shape[0]
        n_batches += 1
    t_batches = time.perf_counter() - t
    assert seen == len(ds)
    phase(f"train epoch, batches({args.batch_size}, shuffle)", t_batches, seen, "samples")

    # Training throughput: the default HybridCNN-LSTM, forward + backward + AdamW step, on batches
    # gathered from the same windows (a bounded number of batches: the rate is what matters).
    from backend.ml_engine.model import HybridCNNLSTM, ModelConfig

    model = HybridCNNLSTM(ModelConfig(n_features=n_feat, window=args.window))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    batches = ds.batches(args.batch_size, shuffle=True, generator=torch.Generator().manual_seed(args.seed))
    for _, (xb, yb) in zip(range(3), batches):  # warm-up
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()
    t = time.perf_counter()
    trained = 0
    for _, (xb, yb) in zip(range(args.train_batches), batches):
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()
        trained += xb.shape[0]
    phase(
        f"model training steps ({args.train_batches} batches, default model)",
        time.perf_counter() - t,
        trained,
        "samples",
    )
    del model, opt

    n_cmp = min(len(ds), 50 * args.batch_size)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(ds, range(n_cmp)),
        batch_size=args.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(args.seed),
    )
    t = time.perf_counter()
    for _xb, _yb in loader:
        pass
    phase("per-sample ds[i] + default collate (50 batches)", time.perf_counter() - t, n_cmp, "samples")

    n_rows, window = data.X.shape[0], data.window
    naive_all = n_rows * window * n_feat * 4
    naive_train = len(ds) * window * n_feat * 4
    ru_maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    # clear_refs also resets the counter ru_maxrss reads, so the whole-run peak is the max over phases
    peak_overall = max([ru_maxrss_mb] + [float(p["peak_mb"]) for p in phases])  # type: ignore[arg-type]

    lines = [
        "# Windowing benchmark",
        "",
        f"- command: `{command}`",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {os.cpu_count()} CPUs (nproc), {cpu_model()}, {platform.system()} {platform.release()}",
        f"- load average (1/5/15 min) at start: {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
        f"at end: {'/'.join(f'{v:.2f}' for v in os.getloadavg())} (other work on the machine slows the timings)",
        f"- software: Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"torch {torch.__version__}",
        f"- data: {args.rows:,} synthetic 5m candles, one series (geometric random walk, AR(1) log-volatility, "
        f"Student-t(4) shocks, price ~{frame['close'].iloc[0]:.3g} BTC)",
        f"- features: {n_feat} ({', '.join(feature_names(fcfg))})",
        f"- labels: horizon {lcfg.horizon}, {lcfg.threshold_mode} threshold; class shares down/flat/up = "
        + "/".join(f"{s:.2f}" for s in class_share),
        f"- window T = {window}, batch size {args.batch_size}; samples train/val/test = "
        f"{len(data.train):,}/{len(data.val):,}/{len(data.test):,}; {n_batches:,} train batches",
        "",
        "| phase | seconds | throughput | peak RSS during phase (VmHWM) |",
        "|---|---:|---:|---:|",
    ]
    for p in phases:
        rate = f"{p['items'] / p['seconds']:,.0f} {p['unit']}/s" if p["items"] else ""
        lines.append(f"| {p['name']} | {p['seconds']:.2f} | {rate} | {p['peak_mb']:,.0f} MB |")
    lines += [
        "",
        "| memory | MB |",
        "|---|---:|",
        f"| RSS after imports (start) | {rss_start / 1024:,.0f} |",
        f"| **peak RSS, whole run** (max of the per-phase VmHWM and ru_maxrss) | **{peak_overall:,.0f}** |",
        f"| ru_maxrss at the end ({'since the last per-phase reset' if can_reset else 'whole run'}) "
        f"| {ru_maxrss_mb:,.0f} |",
        f"| X (N, F) float32 held by PreparedData | {data.X.nbytes / MB:,.0f} |",
        f"| train window end rows (int64) | {ds.ends.nbytes / MB:,.1f} |",
        f"| one batch (B, T, F) float32 | {args.batch_size * window * n_feat * 4 / MB:,.2f} |",
        f"| naive materialisation, all rows N*T*F*4 (computed, not allocated) | {naive_all / MB:,.0f} |",
        f"| naive materialisation, train windows only | {naive_train / MB:,.0f} |",
        "",
        f"Target: peak RSS < 1.5 GB -> {'met' if peak_overall < 1536 else 'NOT met'} "
        f"({peak_overall:,.0f} MB). Per-phase peaks {'are' if can_reset else 'are NOT'} reset between phases "
        "(/proc/self/clear_refs), so each row shows that phase's own high-water mark, which includes "
        "everything still alive from earlier phases (the candle frame, then PreparedData). "
        "The kernel resets ru_maxrss together with VmHWM, hence the whole-run peak is the max over phases.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"peak RSS {peak_overall:,.0f} MB; naive N*T*F*4 = {naive_all / MB:,.0f} MB; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
