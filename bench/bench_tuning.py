"""Benchmark: hyperparameter search (issue 15). Pruning on/off in one process; trials per hour with one
and two worker processes; the coordination cost of a trial run as a job.

Everything on the bundled candles (``backend.ml_engine.config.SAMPLE_DATA_DIR``, data source
``sample``), one small ``hybrid_cnn_lstm`` space (:data:`SPACE`), 3 epochs, 2 walk-forward folds, the
last 10 days; the config is built by ``backend.services.tuning.tuning_config`` from the same
``TuneParams`` for every study, so the in-process and the job-based studies search the same thing.
PostgreSQL (127.0.0.1:5432, user postgres, trust) holds the Optuna storage, the jobs table, the queue
and the locks in one database and the MLflow tracking store in a second one (MLflow and Optuna both
version their schema in a table named ``alembic_version``: they cannot share a database); fresh
databases per study group, dropped afterwards.

1. Pruning: two 16-trial studies by ``run_study`` in this process (1 torch thread), pruner "median"
   vs "none", same seed, space and data (after an untimed 1-trial warm-up study): wall time, best
   validation value, pruned trials, and the holdout read once for each study's best trial.
2. Trials per hour: the same study as trial jobs (``TuningService.submit``, pruner "none" so that both
   layouts do the same work) on real workers (``python -m backend.services.worker --slots 1``): one
   worker pinned to one core (``sched_setaffinity``: 1 thread per job), then a fresh study with
   ``parallel=2`` on two workers pinned to core 0 / core 1; each pair once per ``--trials-per-job``
   value, set as ``ML_TUNING_TRIALS_PER_JOB`` in the workers' environment (1: one trial per job, the
   layout before the trial runners; 10, the default: a job runs the study's next trials one after
   another). Trials per hour from the submit to the study's finalization (the last job's end), and
   from the trials' own start/complete timestamps.
3. Coordination overhead per trial, from the jobs table, the Optuna trial timestamps, the trial's
   ``seconds`` user attribute (``evaluate_trial``'s own wall time) and probes: a ``sitecustomize`` in
   a temporary folder on the workers' ``PYTHONPATH`` wraps, in each job process, the Optuna
   storage / sampler / pruner, the study's MLflow calls (``_Tracking``, ``_EpochLog``), the jobs
   table (``JobStore``) and marks ``StudyHandle.attach``, the data load, ``evaluate_trial``, the
   feature table build, ``after_trial`` and the locks (``Locks.hold``); each job process writes
   its calls to a JSON file at exit. In the worker itself it notes when each job process exits
   (``JobRunner._wait`` returns): the job's teardown after its ``finished_at``. With one trial per job,
   the per-trial breakdown of a job (claim, process start, trial, after); for every layout, per job:
   its trials (``result["trials"]``), the gaps between them, its fixed cost over the trials it ran, its
   teardown and the queue's dispatch, so a worker's time per trial in one formula for both layouts.
   Nothing under ``backend/`` is changed.

    .venv/bin/python bench/bench_tuning.py
    .venv/bin/python bench/bench_tuning.py --trials 8 --job-trials 4 --parts jobs --trials-per-job 1,10
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import importlib.abc
import itertools
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import REPO, RESULTS, RETRIES, temp_postgres_database, with_retry, write_report

logger = logging.getLogger("bench_tuning")

#: A narrowed hybrid_cnn_lstm space: a trial trains for ~10 s on one core.
SPACE = """
[search]
family = "hybrid_cnn_lstm"

[common]
window = 30

[hybrid_cnn_lstm]
conv_channels = { choices = [[16], [32]] }
lstm_hidden = { choices = [16, 32] }
lstm_layers = { low = 1, high = 2 }
learning_rate = { low = 1e-3, high = 1e-2, log = true }
"""

#: The study every part runs (``TuneParams`` fields); trials, parallel, pruner and name per study.
STUDY: dict[str, Any] = {
    "family": "hybrid_cnn_lstm",
    "space": SPACE,
    "data_source": "sample",
    "date_range": 10.0,
    "folds": 2,
    "epochs": 3,
    "seed": 7,
    "objective": "accuracy",
}

ENDED = ("finished", "failed", "cancelled")


# ============================================================================================ probes
class Probe:
    """Wall time of wrapped calls by category (only the outermost wrapped call of a thread counts) and
    named spans (marks, not counted as costs)."""

    def __init__(self) -> None:
        self.proc_start = time.time()
        # (category, function or module, main thread, start, seconds); imports under 1 ms are only summed
        self.events: list[tuple[str, str, bool, float, float]] = []
        self.small_imports_s = 0.0
        self.slow_imports: list[tuple[str, float, float]] = []  # (module, start, seconds) of imports over 50 ms
        self.spans: list[tuple[str, float, float]] = []  # (name, start, end)
        self._local = threading.local()

    def reset(self) -> None:
        self.events, self.spans, self.slow_imports = [], [], []
        self.small_imports_s = 0.0

    def cost(self, category: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        probe = self
        qualname = getattr(fn, "__qualname__", str(fn))

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            local = probe._local
            depth = getattr(local, "depth", 0)
            if depth:
                return fn(*args, **kwargs)
            local.depth = 1
            start, t0 = time.time(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                local.depth = 0
                main = threading.current_thread() is threading.main_thread()
                dur = time.perf_counter() - t0
                if category != IMPORTS:
                    probe.events.append((category, qualname, main, start, dur))
                elif dur < 0.001:  # an import of a loaded module: thousands of them, ~0.03 s per process in all
                    probe.small_imports_s += dur
                else:
                    name = str(args[0]) if args else "?"
                    if not name and len(args) > 3 and args[3]:  # from . import x
                        name = "." + ",".join(map(str, args[3]))
                    probe.events.append((category, name, main, start, dur))
                    if dur > 0.05:
                        probe.slow_imports.append((name, start, dur))

        wrapper.__bench_probe__ = True  # type: ignore[attr-defined]
        return wrapper

    def span(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        probe = self

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.time()
            try:
                return fn(*args, **kwargs)
            finally:
                probe.spans.append((name, start, time.time()))

        wrapper.__bench_probe__ = True  # type: ignore[attr-defined]
        return wrapper

    def cm_span(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """A method that returns a context manager (``Locks.hold(namespace, name)``): spans
        ``<name>:enter:<namespace>/<name>`` (waiting for and taking it) and ``<name>:exit:<namespace>/<name>``
        (releasing it), the block itself left out."""
        probe = self

        class _Timed:
            def __init__(self, inner: Any, key: str) -> None:
                self.inner, self.key = inner, key

            def __enter__(self) -> Any:
                start = time.time()
                try:
                    return self.inner.__enter__()
                finally:
                    probe.spans.append((f"{name}:enter:{self.key}", start, time.time()))

            def __exit__(self, *exc: Any) -> Any:
                start = time.time()
                try:
                    return self.inner.__exit__(*exc)
                finally:
                    probe.spans.append((f"{name}:exit:{self.key}", start, time.time()))

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = "/".join(str(a) for a in args[1:3])  # (self, namespace, name)
            return _Timed(fn(*args, **kwargs), key)

        wrapper.__bench_probe__ = True  # type: ignore[attr-defined]
        return wrapper

    def dump(self) -> dict[str, Any]:
        return {
            "proc_start": self.proc_start,
            "events": self.events,
            "spans": self.spans,
            "slow_imports": self.slow_imports,
            "small_imports_s": self.small_imports_s,
        }

    def time_imports(self) -> None:
        """Count ``import`` statements (top-level ones, not those made inside another probed call)."""
        import builtins

        if not getattr(builtins.__import__, "__bench_probe__", False):
            builtins.__import__ = self.cost(IMPORTS, builtins.__import__)


OPTUNA_STORE = "optuna storage"
OPTUNA_ALGO = "optuna sampler/pruner"
MLFLOW = "mlflow"
JOBS = "jobs table"
IMPORTS = "imports"
#: the coordination calls: the Optuna storage and sampler / pruner, MLflow, the jobs table
CALLS = (OPTUNA_STORE, OPTUNA_ALGO, MLFLOW, JOBS)

#: module -> [(class or None for the module itself, attribute names or "*" for the public methods, kind)]
#: kind: a cost category, "span:<name>" for a mark, or "cm:<name>" for a context manager's enter / exit marks.
PATCHES: dict[str, list[tuple[str | None, Iterable[str] | str, str]]] = {
    "optuna.storages._rdb.storage": [("RDBStorage", "*", OPTUNA_STORE)],
    "optuna.storages._cached_storage": [("_CachedStorage", "*", OPTUNA_STORE)],
    "optuna.samplers._tpe.sampler": [
        (
            "TPESampler",
            ["sample_relative", "sample_independent", "infer_relative_search_space", "before_trial", "after_trial"],
            OPTUNA_ALGO,
        )
    ],
    "optuna.pruners._percentile": [("PercentilePruner", ["prune"], OPTUNA_ALGO)],
    "backend.ml_engine.tuning._objective": [("SearchData", ["table"], "span:features")],
    "backend.ml_engine.tuning._study": [
        ("_Tracking", "*", MLFLOW),
        ("_EpochLog", ["on_epoch_end"], MLFLOW),
        (None, ["evaluate_trial"], "span:compute"),
        (None, ["_load_search_data"], "span:data"),
        ("StudyHandle", ["attach", "prepare"], "span:attach"),
        ("StudyHandle", ["run_trials"], "span:run_trials"),
        ("StudyHandle", ["finalize"], "span:finalize"),
    ],
    "backend.services.job_store": [("JobStore", "*", JOBS)],
    # the job process runs this module as `__main__` (`python -m`): these two wrap nothing there; the tracking
    # store's first open shows through its lock (jobs/tracking-store-schema) below
    "backend.services.job_process": [
        (None, ["_prepare_tracking_store"], MLFLOW),
        ("JobExecution", ["__call__"], "span:job"),
    ],
    "backend.services.tuning": [("TuningService", ["after_trial"], "span:after_trial")],
    # the locks: the study's (a trial runner takes each next trial under it), the tracking store's (a job process's
    # first open); marks only, no cost category: the one-trial-per-job figures are what they were
    "backend.ml_engine.locks": [("Locks", ["hold"], "cm:lock")],
}


def _public_methods(cls: type) -> list[str]:
    out = []
    for name, value in vars(cls).items():
        if name.startswith("_") and name != "__init__":
            continue
        if isinstance(value, (staticmethod, property)):
            continue
        if callable(value) or isinstance(value, classmethod):
            out.append(name)
    return out


def patch_module(probe: Probe, name: str, module: Any) -> None:
    for owner_name, attrs, kind in PATCHES.get(name, []):
        owner = module if owner_name is None else getattr(module, owner_name)
        names = _public_methods(owner) if attrs == "*" else list(attrs)
        for attr in names:
            raw = vars(owner).get(attr) if owner_name is not None else getattr(module, attr)
            if raw is None:
                continue
            is_cm = isinstance(raw, classmethod)
            fn = raw.__func__ if is_cm else raw
            if getattr(fn, "__bench_probe__", False):
                continue
            if kind.startswith("span:"):
                wrapped = probe.span(kind[5:], fn)
            elif kind.startswith("cm:"):
                wrapped = probe.cm_span(kind[3:], fn)
            else:
                wrapped = probe.cost(kind, fn)
            setattr(owner, attr, classmethod(wrapped) if is_cm else wrapped)


_INSTALLED: Probe | None = None


def install_now() -> Probe:
    """Wrap the targets in this process (imported now), once; the probe the wrappers report to."""
    import importlib

    global _INSTALLED
    if _INSTALLED is None:
        _INSTALLED = Probe()
        for name in PATCHES:
            patch_module(_INSTALLED, name, importlib.import_module(name))
        _INSTALLED.time_imports()
    return _INSTALLED


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, inner: Any, after: Callable[[Any], None]) -> None:
        self.inner, self.after = inner, after

    def create_module(self, spec: Any) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.inner.exec_module(module)
        self.after(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_code, ... of the real loader
        return getattr(self.inner, name)


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Wrap a target module's functions right after it is first imported (nothing imported early)."""

    def __init__(self, patchers: dict[str, Callable[[Any], None]]) -> None:
        self.patchers = patchers  # module name -> patch(module)

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in self.patchers:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader, self.patchers[name])
                return spec
        return None


def install_lazy(out_dir: str) -> None:
    """Called by the temporary ``sitecustomize`` in a job process: probes, and their dump at exit."""
    probe = Probe()
    sys.meta_path.insert(0, _PatchAfterImport({n: functools.partial(patch_module, probe, n) for n in PATCHES}))
    probe.time_imports()

    def dump() -> None:  # registered first, so it runs after the other atexit handlers
        if not probe.spans:
            return
        data = {"pid": os.getpid(), "argv": list(sys.argv), "exit": time.time(), **probe.dump()}
        with contextlib.suppress(OSError):
            Path(out_dir, f"{os.getpid()}.json").write_text(json.dumps(data))

    atexit.register(dump)


def install_worker(out_dir: str) -> None:
    """Called by the temporary ``sitecustomize`` in a worker: each job process's exit as the worker sees it
    (``JobRunner._wait`` returns), one JSON line per job in ``worker-<pid>.jsonl`` at once (the worker is
    stopped by a signal: nothing waits for its exit). The job's ``finished_at`` -> this = the job process's
    teardown; this -> the worker's next claim = the queue's dispatch."""

    def patch(module: Any) -> None:
        runner = module.JobRunner
        fn = vars(runner).get("_wait")
        if fn is None or getattr(fn, "__bench_probe__", False):
            return

        @functools.wraps(fn)
        def wrapper(self: Any, proc: Any, job_id: str, *args: Any, **kwargs: Any) -> Any:
            start = time.time()
            try:
                return fn(self, proc, job_id, *args, **kwargs)
            finally:
                rec = {"job": job_id, "pid": getattr(proc, "pid", None), "wait_start": start, "exit": time.time()}
                with contextlib.suppress(OSError), open(Path(out_dir, f"worker-{os.getpid()}.jsonl"), "a") as fh:
                    fh.write(json.dumps(rec) + "\n")

        wrapper.__bench_probe__ = True  # type: ignore[attr-defined]
        runner._wait = wrapper

    sys.meta_path.insert(0, _PatchAfterImport({"backend.services.job_runner": patch}))


#: The worker's env carries it; the worker marks itself as the parent and notes its job processes' exits,
#: its job processes (which inherit the mark) install the probes.
SITECUSTOMIZE = """\
import os
if os.environ.get("BENCH_TUNING_PROBE_DIR"):
    import sys
    job = bool(os.environ.get("BENCH_TUNING_PROBE_PARENT"))
    if not job:
        os.environ["BENCH_TUNING_PROBE_PARENT"] = str(os.getpid())
    sys.path.insert(0, {bench!r})
    try:
        import bench_tuning
        if job:
            bench_tuning.install_lazy(os.environ["BENCH_TUNING_PROBE_DIR"])
        else:
            bench_tuning.install_worker(os.environ["BENCH_TUNING_PROBE_DIR"])
    finally:
        sys.path.remove({bench!r})
"""


# ============================================================================================ helpers


def ts(value: Any) -> float:
    """Epoch seconds of a datetime (Optuna's are naive local time, the jobs table's are aware)."""
    return float(value.timestamp())


def mean(values: Iterable[float]) -> float:
    v = [x for x in values if x is not None]
    return statistics.mean(v) if v else float("nan")


def inside(events: list[Any], lo: float, hi: float, main_only: bool = True) -> dict[str, float]:
    """Seconds per category of the calls that start in [lo, hi)."""
    out: dict[str, float] = {}
    for cat, _name, main, start, dur in events:
        if (main or not main_only) and lo <= start < hi:
            out[cat] = out.get(cat, 0.0) + dur
    return out


def calls_by_name(events: list[Any], windows: list[tuple[float, float]], skip: list[tuple[float, float]] = ()) -> dict:
    """{function: [calls, seconds]} of the main thread's probed calls (imports left out) that start in one of
    ``windows`` and in none of ``skip``."""
    out: dict[str, list[float]] = {}
    for cat, name, main, start, dur in events:
        if cat == IMPORTS or not main:
            continue
        if any(lo <= start < hi for lo, hi in windows) and not any(lo <= start < hi for lo, hi in skip):
            acc = out.setdefault(f"{name}", [0, 0.0])
            acc[0] += 1
            acc[1] += dur
    return out


def minus(outer: dict[str, float], inner: dict[str, float]) -> dict[str, float]:
    return {k: outer.get(k, 0.0) - inner.get(k, 0.0) for k in set(outer) | set(inner)}


@contextlib.contextmanager
def databases() -> Any:
    """(coordination URL: jobs, queue, locks, Optuna; MLflow URL), both fresh."""
    with temp_postgres_database("bench_tuning") as url, temp_postgres_database("bench_tuning_mlflow") as mlflow_url:
        yield url, mlflow_url


def service_settings(url: str, mlflow_url: str, root: Path, huey_name: str) -> Any:
    from backend.services import ServiceSettings

    return ServiceSettings(
        mlflow_tracking_uri=mlflow_url,
        mlflow_artifact_location=str(root / "artifacts"),
        jobs_database_url=url,
        queue_url=url,
        huey_sqlite_path=str(root / "huey.db"),
        huey_name=huey_name,
        output_dir=str(root / "outputs"),
        cache_dir=str(root / "cache"),
        tuning_storage=url,
        device="cpu",
        log_level="WARNING",
    )


def prepare_tracking(settings: Any, root: Path) -> None:
    """The tracking store's schema and experiments now, not in the first timed trial."""
    from backend.ml_engine.mlflow_integration import ensure_project_experiments
    from backend.services._mlflow import make_client

    ensure_project_experiments(make_client(settings.mlflow_tracking_uri), str(root / "artifacts"))


def frozen_trials(url: str, name: str) -> list[Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def trial_row(t: Any) -> dict[str, Any]:
    from backend.ml_engine.tuning._objective import STEP_STRIDE

    span = ts(t.datetime_complete) - ts(t.datetime_start) if t.datetime_complete and t.datetime_start else None
    return {
        "number": t.number,
        "state": t.state.name,
        "value": t.value,
        "params": {k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in t.params.items()},
        "start": ts(t.datetime_start) if t.datetime_start else None,
        "complete": ts(t.datetime_complete) if t.datetime_complete else None,
        "span_s": span,
        "seconds": t.user_attrs.get("seconds"),
        "note": t.user_attrs.get("note") or t.user_attrs.get("error"),
        # epochs trained: the epoch reports (a fold's running mean is reported at its last step)
        # (each finished fold also records its epochs: with pruner "none" there are no per-epoch reports)
        "epochs": max(
            sum(1 for step in t.intermediate_values if step % STEP_STRIDE != STEP_STRIDE - 1),
            int(sum(f.get("epochs", 0) for f in t.user_attrs.get("folds") or [])),
        ),
    }


# ============================================================================================ part 1
@dataclass
class InProcess:
    pruner: str
    wall_s: float
    best_value: float | None
    best_trial: int | None
    holdout: dict[str, Any] | None
    states: dict[str, int]
    trials: list[dict[str, Any]]
    overhead: list[dict[str, float]] = field(default_factory=list)
    finalize_s: float = 0.0

    @property
    def trials_s(self) -> float:
        return max(t["complete"] for t in self.trials) - min(t["start"] for t in self.trials)

    def n(self, state: str) -> int:
        return self.states.get(state, 0)


def per_trial_costs(probe: Probe, trials: list[dict[str, Any]]) -> list[dict[str, float]]:
    """For each trial: (a) its span minus ``seconds``, the probed calls in the span outside
    ``evaluate_trial``, and the probed calls inside it."""
    computes = [(s, e) for n, s, e in probe.spans if n == "compute"]
    out = []
    for t in trials:
        if t["start"] is None or t["complete"] is None or t["seconds"] is None:
            continue
        lo, hi = t["start"], t["complete"]
        comp = [(s, e) for s, e in computes if lo <= s < hi]
        in_span = inside(probe.events, lo, hi)
        in_compute: dict[str, float] = {}
        for s, e in comp:
            for k, v in inside(probe.events, s, e).items():
                in_compute[k] = in_compute.get(k, 0.0) + v
        feats = sum(e - s for n, s, e in probe.spans if n == "features" and lo <= s < hi)
        out.append(
            {
                "number": t["number"],
                "span_s": t["span_s"],
                "seconds": t["seconds"],
                "a_s": t["span_s"] - t["seconds"],
                "features_s": feats,
                "calls": calls_by_name(probe.events, [(lo, hi)]),
                **{f"a_{k}": v for k, v in minus(in_span, in_compute).items()},
                **{f"in_{k}": v for k, v in in_compute.items()},
            }
        )
    return out


def in_process(n_trials: int) -> tuple[list[InProcess], float]:
    import torch

    from backend.ml_engine.tuning import run_study
    from backend.services.schemas import TuneParams
    from backend.services.tuning import tuning_config

    torch.set_num_threads(1)
    probe = install_now()
    root = Path(tempfile.mkdtemp(prefix="bench_tuning_inproc_"))
    out = []
    try:
        with databases() as (url, mlflow_url):
            settings = service_settings(url, mlflow_url, root, "bench_tuning_inproc")
            prepare_tracking(settings, root)
            warm = tuning_config(TuneParams(**STUDY, trials=1, pruner="none", study="warmup"), settings)
            t = time.perf_counter()
            run_study(warm, settings=settings)  # first fit: imports, allocator, numba caches; not timed
            warm_s = time.perf_counter() - t
            logger.info("warm-up study (1 trial): %.1f s", warm_s)
            for pruner in ("none", "median"):
                config = tuning_config(
                    TuneParams(**STUDY, trials=n_trials, pruner=pruner, study=f"inproc-{pruner}"), settings
                )
                probe.reset()
                result = run_study(config, settings=settings)
                trials = [trial_row(t) for t in frozen_trials(url, config.study_name or "")]
                fin = [e - s for n, s, e in probe.spans if n == "finalize"]
                r = InProcess(
                    pruner=pruner,
                    wall_s=result.wall_seconds,
                    best_value=result.best_value,
                    best_trial=result.best_trial,
                    holdout=result.holdout,
                    states=result.states,
                    trials=trials,
                    overhead=per_trial_costs(probe, trials),
                    finalize_s=sum(fin),
                )
                logger.info(
                    "in-process, pruner %s: %.1f s, best %.4f (trial %s), states %s",
                    pruner,
                    r.wall_s,
                    r.best_value or float("nan"),
                    r.best_trial,
                    r.states,
                )
                out.append(r)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out, warm_s


# ============================================================================================ part 2/3
class Workers:
    """Worker processes over PostgreSQL (jobs, queue, locks and Optuna in one database, MLflow in another),
    probes in their job processes."""

    def __init__(self, url: str, mlflow_url: str, root: Path, trials_per_job: int) -> None:
        from backend.services.jobs import JobService
        from backend.services.tuning import TuningService

        self.url, self.root, self.trials_per_job = url, root, trials_per_job
        self.huey_name = f"bench_tuning_{uuid.uuid4().hex[:8]}"
        self.settings = service_settings(url, mlflow_url, root, self.huey_name)
        prepare_tracking(self.settings, root)
        self.jobs = JobService(self.settings)
        self.service = TuningService(self.settings, self.jobs)
        self.hook = root / "hook"
        self.hook.mkdir(parents=True, exist_ok=True)
        (self.hook / "sitecustomize.py").write_text(SITECUSTOMIZE.format(bench=str(REPO / "bench")))
        self.probes = root / "probes"
        self.probes.mkdir()
        self.procs: list[subprocess.Popen[bytes]] = []

    def env(self) -> dict[str, str]:
        s = self.settings
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("ML_", "MLFLOW_", "OMP_", "MKL_", "BENCH_TUNING_"))
        }
        env.update(
            PYTHONPATH=os.pathsep.join([str(self.hook), str(REPO)]),
            BENCH_TUNING_PROBE_DIR=str(self.probes),
            MLFLOW_TRACKING_URI=s.mlflow_tracking_uri,
            MLFLOW_ARTIFACT_LOCATION=s.mlflow_artifact_location,
            ML_JOBS_DATABASE_URL=self.url,
            ML_QUEUE_URL=self.url,
            ML_TUNING_STORAGE=self.url,
            ML_HUEY_SQLITE_PATH=s.huey_sqlite_path,
            ML_HUEY_NAME=self.huey_name,
            ML_OUTPUT_DIR=s.output_dir,
            ML_CACHE_DIR=s.cache_dir,
            ML_DEVICE="cpu",
            ML_LOG_LEVEL="INFO",
            ML_TUNING_TRIALS_PER_JOB=str(self.trials_per_job),
        )
        return env

    def start(self, cpus: set[int]) -> None:
        n = len(self.procs)

        def pin() -> None:
            os.sched_setaffinity(0, cpus)

        with open(self.root / f"worker{n}.log", "ab") as log:
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "backend.services.worker", "--slots", "1"],
                    cwd=self.root,
                    env=self.env(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=pin,  # only sched_setaffinity, before exec
                )
            )

    def wait_registered(self, timeout: float = 120) -> None:
        pids = {p.pid for p in self.procs}
        deadline = time.monotonic() + timeout
        while {w.pid for w in self.jobs.store.workers() if w.stopped_at is None} & pids != pids:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"worker {p.pid} exited ({p.returncode}); see {self.root}/worker*.log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not registered within {timeout:g} s")
            time.sleep(0.2)
        time.sleep(1.0)

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        self.jobs.close()


@dataclass
class JobRun:
    name: str
    layout: str
    workers: int
    trials_per_job: int  # ML_TUNING_TRIALS_PER_JOB in the workers' environment
    threads: list[int]
    submit_s: float  # the submit call (prepare the study + queue the first jobs)
    wall_s: float  # submit start -> the last job's finished_at (the study finalized)
    finalized: bool
    states: dict[str, int]
    best_value: float | None
    trials: list[dict[str, Any]]
    jobs: list[dict[str, Any]]  # job_breakdown rows (the per-trial breakdown only with one trial per job)
    finalize_s: float
    runner: list[dict[str, Any]] = field(default_factory=list)  # runner_breakdown rows, every layout

    @property
    def counted(self) -> int:
        return sum(1 for t in self.trials if t["state"] in ("COMPLETE", "PRUNED"))

    @property
    def per_hour(self) -> float:
        return self.counted / self.wall_s * 3600

    @property
    def per_hour_trials(self) -> float:
        span = max(t["complete"] for t in self.trials) - min(t["start"] for t in self.trials)
        return self.counted / span * 3600


def job_breakdown(job: Any, probe: dict[str, Any] | None, trial: dict[str, Any] | None) -> dict[str, Any]:
    """One trial job's timeline: claim -> process -> attach -> trial -> after_trial -> finish."""
    row: dict[str, Any] = {
        "job": job.id,
        "worker": job.worker_id,
        "status": job.status,
        "created": ts(job.created_at),
        "started": ts(job.started_at) if job.started_at else None,
        "finished": ts(job.finished_at) if job.finished_at else None,
        "then": (job.result or {}).get("then"),
        "trial": None if trial is None else trial["number"],
    }
    if trial is None or probe is None or job.started_at is None or job.finished_at is None:
        return row
    spans: dict[str, list[tuple[float, float]]] = {}
    for n, s, e in probe["spans"]:
        spans.setdefault(n, []).append((s, e))
    events = [tuple(e) for e in probe["events"]]
    started, finished = row["started"], row["finished"]
    t0, t1 = trial["start"], trial["complete"]
    attach = spans.get("attach", [(t0, t0)])[0]
    data = spans.get("data", [(attach[0], attach[0])])[0]
    comp = [(s, e) for s, e in spans.get("compute", []) if t0 <= s < t1]
    after = spans.get("after_trial", [(t1, finished)])[0]
    fin = spans.get("finalize", [])
    in_compute: dict[str, float] = {}
    for s, e in comp:
        for k, v in inside(events, s, e).items():
            in_compute[k] = in_compute.get(k, 0.0) + v
    attach_costs = minus(inside(events, attach[0], attach[1]), inside(events, data[0], data[1]))
    row.update(
        {
            "proc_start": probe["proc_start"],
            "spawn_s": probe["proc_start"] - started,  # worker claim -> our sitecustomize in the new interpreter
            "boot_s": attach[0] - probe["proc_start"],  # imports, settings, tracking store check, study load
            "boot_costs": inside(events, probe["proc_start"] - 1, attach[0]),
            "attach_s": attach[1] - attach[0],
            "data_s": data[1] - data[0],
            "attach_costs": attach_costs,
            "pre_trial_s": t0 - attach[1],  # run_trials: progress, stale trials, create the trial
            "pre_trial_costs": inside(events, attach[1], t0),
            "b_s": t0 - started,
            "span_s": t1 - t0,
            "seconds": trial["seconds"],
            "a_s": (t1 - t0) - trial["seconds"],
            "a_costs": minus(inside(events, t0, t1), in_compute),
            "in_compute_costs": in_compute,
            "features_s": sum(e - s for s, e in spans.get("features", []) if t0 <= s < t1),
            "post_s": finished - t1,  # after_trial (lock, top-up, finalize for the last) and the job's end
            "exit_s": probe.get("exit", finished) - finished,  # the job's end -> the last atexit handler
            "after_trial_s": after[1] - after[0],
            "finalize_s": sum(e - s for s, e in fin),
            "background_costs": inside(events, started, finished + 5, main_only=False),
            "slow_imports_in_trial": [(n, d) for n, s, d in probe.get("slow_imports", []) if t0 <= s < t1],
            # every probed call of the job process but the study's finalization
            "calls": calls_by_name(events, [(probe["proc_start"] - 1, probe.get("exit", finished) + 1)], fin),
        }
    )
    row["background_costs"] = minus(row["background_costs"], inside(events, started, finished + 5))
    return row


def events_in(
    events: list[Any],
    windows: list[tuple[float, float]],
    skip: list[tuple[float, float]] = (),
    categories: Iterable[str] = CALLS,
) -> dict[str, float]:
    """Seconds per category of the main thread's probed calls that start in one of ``windows`` and in none of
    ``skip``."""
    wanted = set(categories)
    out = dict.fromkeys(wanted, 0.0)
    for cat, _name, main, start, dur in events:
        if (
            main
            and cat in wanted
            and any(lo <= start < hi for lo, hi in windows)
            and not any(lo <= start < hi for lo, hi in skip)
        ):
            out[cat] += dur
    return out


def job_trials(job: Any, probe: dict[str, Any] | None, trials: list[dict[str, Any]]) -> tuple[list[dict], str]:
    """The trials a job ran, in order, and how they were found: the job's ``result["trials"]`` numbers; else the
    trials that hold one of the job process's ``evaluate_trial`` calls; else those inside the job's
    ``started_at`` .. ``finished_at`` (ambiguous with two workers: said in the row)."""
    by_number = {t["number"]: t for t in trials}
    numbers = [x["number"] for x in (job.result or {}).get("trials", []) if x.get("number") in by_number]
    if numbers:
        found, how = [by_number[n] for n in numbers], "result"
    elif job.started_at is None or job.finished_at is None:
        return [], "none"
    elif probe is not None and any(n == "compute" for n, _s, _e in probe["spans"]):
        starts = [s for n, s, _e in probe["spans"] if n == "compute"]
        found = [
            t for t in trials if t["start"] and t["complete"] and any(t["start"] <= s < t["complete"] for s in starts)
        ]
        how = "probe"
    else:
        lo, hi = ts(job.started_at), ts(job.finished_at)
        found = [t for t in trials if t["start"] and t["complete"] and lo <= t["start"] and t["complete"] <= hi]
        how = "window"
    return sorted(found, key=lambda t: t["start"] or 0.0), how


def runner_breakdown(
    job: Any, probe: dict[str, Any] | None, ran: tuple[list[dict[str, Any]], str], wait: dict[str, Any] | None
) -> dict[str, Any]:
    """A trial job that runs the study's next trials one after another (any ``ML_TUNING_TRIALS_PER_JOB``):
    claim -> process start -> trial, gap, trial, ... -> after_trial -> finish -> process exit (the worker's
    ``JobRunner._wait``). Trial and gap windows from the Optuna timestamps, their contents from the probes."""
    trials, how = ran
    row: dict[str, Any] = {
        "job": job.id,
        "worker": job.worker_id,
        "status": job.status,
        "created": ts(job.created_at),
        "started": ts(job.started_at) if job.started_at else None,
        "finished": ts(job.finished_at) if job.finished_at else None,
        "then": (job.result or {}).get("then"),
        "trials": [t["number"] for t in trials],
        "attributed_by": how,
        "n": len(trials),
        # the job process's exit as its worker saw it (None: the worker's note is missing)
        "exit": wait["exit"] if wait else None,
    }
    started, finished = row["started"], row["finished"]
    if started is None or finished is None:
        return row
    row["teardown_s"] = None if wait is None else wait["exit"] - finished
    spans: dict[str, list[tuple[float, float]]] = {}
    for n, s, e in (probe or {}).get("spans", []):
        spans.setdefault(n, []).append((s, e))
    events = [tuple(e) for e in (probe or {}).get("events", [])]
    fin = spans.get("finalize", [])
    after = spans.get("after_trial", [])
    fin_s = sum(e - s for s, e in fin)
    after_s = sum(e - s for s, e in after) - fin_s  # the study's lock, the progress, the top-up
    computes = spans.get("compute", [])
    done = [t for t in trials if t["start"] is not None and t["complete"] is not None and t["seconds"] is not None]
    first = done[0]["start"] if done else finished
    last = done[-1]["complete"] if done else finished
    proc_start = (probe or {}).get("proc_start", started)
    proc_end = max(finished, (probe or {}).get("exit", finished)) + 1
    # locks taken outside after_trial (counted whole) and outside a probed call: the study's lock ("tuning/<study>")
    # where a runner takes each next trial; others, e.g. the tracking store's first open in the job process's
    # `_prepare_tracking_store` ("jobs/tracking-store-schema", run by the `__main__` module: not probed)
    calls = [(s, s + d) for c, _n, m, s, d in events if m and c in CALLS]
    held: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for n, s, e in (probe or {}).get("spans", []):
        kind, _, key = n.partition(":")[2].partition(":")
        if n.startswith("lock:") and not any(lo <= s < hi for lo, hi in [*calls, *after]):
            held.setdefault(key, {}).setdefault(kind, []).append((s, e))
    locks = [x for key, v in held.items() if key.startswith("tuning/") for x in v.get("enter", []) + v.get("exit", [])]

    def lock_in(windows: list[tuple[float, float]]) -> float:
        return sum(e - s for s, e in locks if any(lo <= s < hi for lo, hi in windows))

    # another lock: the wait for it and the release, plus the work under it but the first-use imports in it
    # (MLflow's, under the tracking store's lock: another job process waits for them)
    other_locks: dict[str, float] = {}
    for key, v in held.items():
        if key.startswith("tuning/"):
            continue
        enters, exits = sorted(v.get("enter", [])), sorted(v.get("exit", []))
        work = [(a[1], b[0]) for a, b in zip(enters, exits, strict=False)]
        imports = events_in(events, work, (), (IMPORTS,))[IMPORTS]
        other_locks[key] = sum(e - s for s, e in enters + exits) + sum(e - s for s, e in work) - imports

    skip = [*after, *fin]
    fixed = [(started, first), (last, proc_end)]
    gap_w = [(a["complete"], b["start"]) for a, b in itertools.pairwise(done)]
    trial_w = [(t["start"], t["complete"]) for t in done]
    row.update(
        {
            "finalize_s": fin_s,
            "busy_s": finished - started - fin_s,  # the worker's claim -> the job's end, finalization excluded
            "lead_s": first - started,  # claim -> the first trial's start
            "tail_s": finished - last - fin_s,  # the last trial's end -> the job's end, finalization excluded
            "compute_s": sum(t["seconds"] for t in done),
            "a_s": sum(t["span_s"] - t["seconds"] for t in done),
            "gaps": [b - a for a, b in gap_w],
            "has_probe": probe is not None,
        }
    )
    row["fixed_s"] = row["lead_s"] + row["tail_s"]
    if probe is None:
        return row
    attach = spans.get("attach", [(first, first)])[0]
    data = spans.get("data", [(attach[0], attach[0])])[0]
    row.update(
        {
            "spawn_s": proc_start - started,
            "boot_s": attach[0] - proc_start,
            "attach_s": attach[1] - attach[0],
            "data_s": data[1] - data[0],
            "pre_trial_s": first - attach[1],
            "exit_s": probe.get("exit", finished) - finished,
            "after_trial_s": after_s,
            # Optuna + MLflow + jobs-table calls (main thread) by where they start
            "calls_trial": events_in(events, trial_w, [*skip, *computes]),  # (a): outside evaluate_trial
            "calls_compute": events_in(events, computes, skip),  # per epoch, inside evaluate_trial
            "calls_gaps": events_in(events, gap_w, skip),
            "calls_fixed": events_in(events, fixed, skip),  # process start, attach, the job's end, atexit
            "imports_trial": events_in(events, trial_w, computes, (IMPORTS,))[IMPORTS],
            "imports_compute": events_in(events, computes, (), (IMPORTS,))[IMPORTS],
            "algo_gaps": events_in(events, gap_w, skip, (OPTUNA_ALGO,))[OPTUNA_ALGO],
            "lock_gaps_s": lock_in(gap_w),
            "lock_fixed_s": lock_in(fixed),
            "lock_trial_s": lock_in(trial_w),  # the claim's release right after ask(): inside the next trial
            "other_locks": other_locks,  # in the job's start
            "features_s": sum(e - s for s, e in spans.get("features", []) if first <= s < last),
        }
    )
    return row


KEEP = False  # --keep: leave the workers' logs and probe files in /tmp


def job_study(n_trials: int, layout: str, cpu_sets: list[set[int]], per_job: int) -> JobRun:
    """The study as trial jobs on ``len(cpu_sets)`` workers, ``ML_TUNING_TRIALS_PER_JOB=per_job``."""
    from backend.services.schemas import TuneParams

    root = Path(tempfile.mkdtemp(prefix="bench_tuning_jobs_"))
    name = f"jobs-{len(cpu_sets)}w-{per_job}pj"
    try:
        with databases() as (url, mlflow_url):
            w = Workers(url, mlflow_url, root, per_job)
            try:
                for cpus in cpu_sets:  # one after another: two workers creating the queue's tables on a fresh
                    w.start(cpus)  # database at once collide (huey's PostgresStorage: "pg_type ... already exists")
                    w.wait_registered()
                store = w.jobs.store
                logger.info(
                    "%s: %d trials as jobs, parallel %d, %d trial(s) per job", layout, n_trials, len(cpu_sets), per_job
                )
                t_submit = time.time()
                w.service.submit(
                    TuneParams(**STUDY, trials=n_trials, parallel=len(cpu_sets), pruner="none", study=name)
                )
                submit_s = time.time() - t_submit
                deadline = time.monotonic() + 1800
                while True:
                    time.sleep(1.0)
                    rows = store.list(kind="tune", limit=1000)
                    if rows and all(r.status in ENDED for r in rows):
                        time.sleep(1.0)  # a last job may queue nothing more; make sure nothing new came
                        again = store.list(kind="tune", limit=1000)
                        if len(again) == len(rows) and all(r.status in ENDED for r in again):
                            rows = again
                            break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{layout}: the study did not end within 30 min; see {root}/worker*.log")
                    for p in w.procs:
                        if p.poll() is not None:
                            raise RuntimeError(f"worker {p.pid} exited; see {root}/worker*.log")
                time.sleep(2.0)  # the job processes write their probe files at exit
                from backend.ml_engine.tuning import load_study, study_progress, study_summary

                study = load_study(name, url)
                summary = study_summary(study)
                finalized = study_progress(study).finalized
                trials = [trial_row(t) for t in study.get_trials(deepcopy=False)]
                probes = {}
                for f in w.probes.glob("*.json"):
                    d = json.loads(f.read_text())
                    argv = d.get("argv") or []
                    if argv and argv[0].endswith("job_process.py") and len(argv) > 1:
                        probes[argv[1]] = d
                waits: dict[str, dict[str, Any]] = {}  # job id -> the worker's note of its process's exit
                for f in w.probes.glob("worker-*.jsonl"):
                    for line in f.read_text().splitlines():
                        with contextlib.suppress(ValueError):
                            rec = json.loads(line)
                            waits[rec["job"]] = rec
                by_number = {t["number"]: t for t in trials}
                jobs, runner = [], []
                for r in sorted(rows, key=lambda r: r.started_at or r.created_at):
                    ran = [x["number"] for x in (r.result or {}).get("trials", [])]
                    if per_job == 1:  # the one-trial-per-job breakdown, as before the trial runners
                        jobs.append(job_breakdown(r, probes.get(r.id), by_number.get(ran[0]) if ran else None))
                    else:
                        jobs.append(job_breakdown(r, None, None))  # the job's own fields only
                    found = job_trials(r, probes.get(r.id), trials)
                    runner.append(runner_breakdown(r, probes.get(r.id), found, waits.get(r.id)))
                if not waits:
                    logger.warning("%s: no worker noted its job processes' exits (see %s)", layout, w.probes)
                for r in rows:
                    if r.status != "finished":
                        logger.warning("job %s %s: %s", r.id, r.status, r.error)
                last_end = max(ts(r.finished_at) for r in rows if r.finished_at)
                return JobRun(
                    name=name,
                    layout=layout,
                    workers=len(cpu_sets),
                    trials_per_job=per_job,
                    threads=sorted({r.threads for r in rows if r.threads}),
                    submit_s=submit_s,
                    wall_s=last_end - t_submit,
                    finalized=finalized,
                    states=summary.states,
                    best_value=summary.best_value,
                    trials=trials,
                    jobs=jobs,
                    finalize_s=sum(j.get("finalize_s", 0.0) for j in runner),
                    runner=runner,
                )
            finally:
                w.close()
    finally:
        if KEEP:
            logger.info("kept %s", root)
        else:
            shutil.rmtree(root, ignore_errors=True)


def dispatch_times(run: JobRun) -> tuple[list[float], list[float]]:
    """(submit -> claim of a job whose worker was idle, previous job's end -> next claim on the same worker)."""
    idle, turnaround = [], []
    last_end: dict[str, float] = {}
    for j in sorted(run.jobs, key=lambda j: j["started"] or 0):
        if j["started"] is None:
            continue
        prev = last_end.get(j["worker"])
        if prev is None or j["created"] >= prev:
            idle.append(j["started"] - j["created"])
        else:
            turnaround.append(j["started"] - prev)
        if j["finished"] is not None:
            last_end[j["worker"]] = j["finished"]
    return idle, turnaround


# ============================================================================================ report
def fmt(v: float | None, spec: str = ".2f") -> str:
    return "n/a" if v is None or v != v else format(v, spec)


def pct(part: float, whole: float) -> str:
    return "n/a" if not whole or part != part else f"{100 * part / whole:.1f} %"


def sum_cat(rows: list[dict[str, Any]], key: str, cat: str) -> float:
    return mean(r.get(key, {}).get(cat, 0.0) for r in rows)


def report_inprocess(results: list[InProcess], n_trials: int, warm_s: float) -> str:
    by = {r.pruner: r for r in results}
    none, med = by["none"], by["median"]
    rows = []
    for r in (none, med):
        complete = [t for t in r.trials if t["state"] == "COMPLETE"]
        pruned = [t for t in r.trials if t["state"] == "PRUNED"]
        hold = (r.holdout or {}).get("metrics", {}).get("accuracy")
        rows.append(
            f"| {r.pruner} | {r.n('COMPLETE')} / {r.n('PRUNED')} / {r.n('FAIL')} | {r.wall_s:.1f} | {r.trials_s:.1f} | "
            f"{r.finalize_s:.1f} | {fmt(r.best_value, '.4f')} (#{r.best_trial}) | {fmt(hold, '.4f')} | "
            f"{fmt(mean(t['span_s'] for t in complete), '.1f')} | {fmt(mean(t['span_s'] for t in pruned), '.1f')} | "
            f"{sum(t['epochs'] for t in r.trials)} |"
        )
    fate = ""
    best = next((t for t in none.trials if t["number"] == none.best_trial), None)
    twin = next((t for t in med.trials if best and t["number"] == best["number"]), None)
    if best is not None and twin is not None and twin["params"] == best["params"] and twin["state"] != "COMPLETE":
        fate = (
            f" The best trial without pruning (#{best['number']}, {fmt(best['value'], '.4f')}) has the same parameters "
            f"in the pruned study (the first trials of a seeded TPE are random draws), where it was "
            f'{twin["state"].lower()} after {twin["epochs"]} epoch(s): "{twin["note"]}".'
        )
    body = f"""
### 1. Pruning: {n_trials} trials in one process, pruner "median" vs "none"

`run_study` in the benchmark's process with 1 torch thread; same seed (7), space, data and config;
the Optuna storage and the MLflow store on PostgreSQL (two databases). Wall = `run_study`'s own wall time (candles,
{n_trials} trials, then the holdout read once for the best trial, DSR, PBO and the four plots);
trials = first trial start to last trial end. An untimed 1-trial study warmed the process up first
({warm_s:.0f} s). Median pruner: `MedianPruner(n_startup_trials=2, n_warmup_steps=0)` on each epoch's
validation accuracy (step = fold x 100000 + epoch) and each fold's running mean.

| pruner | complete / pruned / failed | wall s | trials s | finalize s | best validation accuracy (trial) | holdout accuracy of the best | mean s, complete trial | mean s, pruned trial | epochs trained |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Speed-up from pruning: **{none.wall_s / med.wall_s:.2f}x** on the wall time, **{none.trials_s / med.trials_s:.2f}x**
on the trials alone; best validation value {fmt(med.best_value, ".4f")} with pruning vs {fmt(none.best_value, ".4f")}
without ({"the same best" if med.best_value == none.best_value else "a different best"}).{fate}
"""
    return body


def overhead_facts(r: JobRun) -> dict[str, Any]:
    """Means per trial job of one layout (see the section's text for the definitions)."""
    js = [j for j in r.jobs if j.get("seconds") is not None]
    idle, turn = dispatch_times(r)
    comp = mean(j["seconds"] for j in js)
    span = mean(j["span_s"] for j in js)
    a_cat = {k: sum_cat(js, "a_costs", k) for k in (*CALLS, IMPORTS)}
    in_cat = {k: sum_cat(js, "in_compute_costs", k) for k in (*CALLS, IMPORTS)}
    c_idle, c_turn = mean(idle), (mean(turn) if turn else None)
    # a worker's time per trial: its claim -> the job's end (the study's one finalization excluded), plus the
    # wait before the claim: the previous job's end -> this claim on the same worker (the idle dispatch
    # for a worker's first job)
    worker_time = mean(j["finished"] - j["started"] - j["finalize_s"] for j in js) + (
        c_turn if c_turn is not None else c_idle
    )
    in_calls = sum(in_cat[k] for k in CALLS)
    slow: dict[str, list[float]] = {}
    for j in js:
        for name, d in j.get("slow_imports_in_trial", []):
            slow.setdefault(name, []).append(d)
    top = sorted(((sum(v) / len(js), n) for n, v in slow.items()), reverse=True)[:4]
    a = mean(j["a_s"] for j in js)
    f = {
        "n_jobs": len(js),
        "compute_s": comp,
        "span_s": span,
        "a_s": a,
        "a_share_of_span": a / span,
        "a_costs": a_cat,
        "a_calls_s": sum(a_cat[k] for k in CALLS),
        "a_imports_s": a_cat[IMPORTS],
        "a_rest_s": a - sum(a_cat.values()),
        "slow_imports_in_trial": [(n, s) for s, n in top],
        "in_compute_costs": in_cat,
        "in_calls_s": in_calls,
        "in_imports_s": in_cat[IMPORTS],
        "features_s": mean(j["features_s"] for j in js),
        "b_s": mean(j["b_s"] for j in js),
        "spawn_s": mean(j["spawn_s"] for j in js),
        "boot_s": mean(j["boot_s"] for j in js),
        "boot_costs": {k: sum_cat(js, "boot_costs", k) for k in (IMPORTS, *CALLS)},
        "attach_s": mean(j["attach_s"] for j in js),
        "data_s": mean(j["data_s"] for j in js),
        "attach_costs": {k: sum_cat(js, "attach_costs", k) for k in (IMPORTS, *CALLS)},
        "pre_trial_s": mean(j["pre_trial_s"] for j in js),
        "pre_trial_costs": {k: sum_cat(js, "pre_trial_costs", k) for k in (IMPORTS, *CALLS)},
        "post_s": mean(j["post_s"] - j["finalize_s"] for j in js),
        "exit_s": mean(j["exit_s"] for j in js),
        "c_idle_s": c_idle,
        "c_idle_n": len(idle),
        "c_turnaround_s": c_turn,
        "c_turnaround_n": len(turn),
        "worker_time_s": worker_time,
        "total_s": worker_time - comp,
        "total_share": (worker_time - comp) / worker_time,
        # the same, counting as overhead what a fresh process per trial adds inside evaluate_trial too
        "total_strict_s": worker_time - comp + in_calls + in_cat[IMPORTS],
        "background_costs": {k: sum_cat(js, "background_costs", k) for k in (OPTUNA_STORE, JOBS)},
    }
    f["total_strict_share"] = f["total_strict_s"] / worker_time
    f["top_calls"] = mean_calls(js)
    return f


def inprocess_facts(r: InProcess) -> dict[str, Any]:
    ov = r.overhead
    span = mean(o["span_s"] for o in ov)
    a = mean(o["a_s"] for o in ov)
    a_cat = {k: mean(o.get(f"a_{k}", 0.0) for o in ov) for k in (*CALLS, IMPORTS)}
    in_cat = {k: mean(o.get(f"in_{k}", 0.0) for o in ov) for k in (*CALLS, IMPORTS)}
    return {
        "n_trials": len(ov),
        "compute_s": mean(o["seconds"] for o in ov),
        "span_s": span,
        "a_s": a,
        "a_share_of_span": a / span,
        "a_costs": a_cat,
        "a_calls_s": sum(a_cat[k] for k in CALLS),
        "a_imports_s": a_cat[IMPORTS],
        "in_compute_costs": in_cat,
        "in_calls_s": sum(in_cat[k] for k in CALLS),
        "in_imports_s": in_cat[IMPORTS],
        "features_s": mean(o["features_s"] for o in ov),
        "top_calls": mean_calls(ov),
    }


def mean_calls(rows: list[dict[str, Any]], top: int = 6) -> list[tuple[str, float, float]]:
    """The ``top`` probed functions by seconds: (name, calls per row, seconds per row)."""
    acc: dict[str, list[float]] = {}
    for r in rows:
        for name, (n, sec) in (r.get("calls") or {}).items():
            a = acc.setdefault(name, [0.0, 0.0])
            a[0] += n
            a[1] += sec
    k = max(len(rows), 1)
    return sorted(((n, c / k, sec / k) for n, (c, sec) in acc.items()), key=lambda x: -x[2])[:top]


def calls_text(calls: list[tuple[str, float, float]]) -> str:
    return ", ".join(f"`{n}` {c:.1f}x {sec:.3f} s" for n, c, sec in calls) or "none"


def cats(d: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in d.items() if v >= 0.0005) or "none"


def observed_teardowns(runs: list[JobRun]) -> list[float]:
    return [j["teardown_s"] for r in runs for j in r.runner if j.get("teardown_s") is not None]


def runner_facts(r: JobRun, teardown_ref: float | None) -> dict[str, Any]:
    """Per trial of one run, every layout alike: a worker's time = compute + (a) + the gaps between a job's trials
    + the job's fixed cost (claim -> first trial, last trial -> the job's end, finalization excluded) + the job
    process's teardown (its end -> its exit, seen by the worker) + the queue's dispatch (the job is queued and the
    worker free -> its claim), all summed over the run's jobs and divided by its trials."""
    rows = [j for j in r.runner if "busy_s" in j]
    n = sum(j["n"] for j in rows)
    if not rows or n == 0:
        return {"n_trials": 0}
    observed = [j["teardown_s"] for j in rows if j.get("teardown_s") is not None]
    est = mean(observed) if observed else teardown_ref
    if len(observed) == len(rows):
        source = "seen by the worker"
    elif est is not None:
        source = f"{len(rows) - len(observed)} of {len(rows)} estimated at {est:.2f} s (mean seen elsewhere)"
    else:
        source, est = "NOT seen (counted as 0)", 0.0
    teardown = {j["job"]: j["teardown_s"] if j.get("teardown_s") is not None else est for j in rows}
    queue: dict[str, float] = {}
    for worker in {j["worker"] for j in rows}:
        prev_end = None  # the previous job's process exit on this worker
        for j in sorted((j for j in rows if j["worker"] == worker), key=lambda j: j["started"]):
            ready = j["created"] if prev_end is None else max(j["created"], prev_end)
            queue[j["job"]] = max(0.0, j["started"] - ready)
            prev_end = j["finished"] + teardown[j["job"]]
    compute = sum(j["compute_s"] for j in rows)
    a = sum(j["a_s"] for j in rows)
    gaps = [g for j in rows for g in j["gaps"]]
    fixed = sum(j["fixed_s"] for j in rows)
    td, q = sum(teardown.values()), sum(queue.values())
    busy = sum(j["busy_s"] for j in rows)
    worker_total = busy + td + q
    w = worker_total / n
    f: dict[str, Any] = {
        "n_trials": n,
        "n_jobs": len(rows),
        "trials_per_job": [j["n"] for j in rows],
        "attributed_by": sorted({j["attributed_by"] for j in rows}),
        "compute_s": compute / n,
        "span_s": (compute + a) / n,
        "a_s": a / n,
        "a_share_of_span": a / (compute + a) if compute + a else float("nan"),
        "fixed_per_job_s": [j["fixed_s"] for j in rows],
        "fixed_s": fixed / n,  # each job's fixed cost over the trials it ran, per trial
        "lead_job_s": mean(j["lead_s"] for j in rows),
        "tail_job_s": mean(j["tail_s"] for j in rows),
        "gap_n": len(gaps),
        "gap_mean_s": mean(gaps) if gaps else None,
        "gaps_s": sum(gaps) / n,  # per trial
        "teardown_job_s": td / len(rows),
        "teardown_s": td / n,
        "teardown_source": source,
        "queue_job_s": q / len(rows),
        "queue_s": q / n,
        "worker_time_s": w,
        "total_s": (worker_total - compute) / n,
        "total_share": (worker_total - compute) / worker_total,
        "per_hour": r.per_hour,
        "per_hour_trials": r.per_hour_trials,
        "wall_s": r.wall_s,
    }
    if not all(j.get("has_probe") for j in rows):
        f["probed"] = False
        return f
    f["probed"] = True

    def total(key: str) -> float:
        return sum(sum(j[key].values()) if isinstance(j[key], dict) else j[key] for j in rows)

    def by_cat(key: str) -> dict[str, float]:
        return {k: sum(j[key].get(k, 0.0) for j in rows) for k in CALLS}

    calls_out = total("calls_trial") + total("calls_gaps") + total("calls_fixed")
    lock = total("lock_gaps_s") + total("lock_fixed_s") + total("lock_trial_s")
    other_locks: dict[str, float] = {}
    for j in rows:
        for key, v in j["other_locks"].items():
            other_locks[key] = other_locks.get(key, 0.0) + v
    other_lock = sum(other_locks.values())
    after = total("after_trial_s")
    coord_out = calls_out + lock + other_lock + after + q
    coord_in = total("calls_compute")
    coord_fixed = total("calls_fixed") + total("lock_fixed_s") + other_lock + after
    start_teardown = fixed + td - coord_fixed
    f.update(
        {
            "calls_out_s": calls_out / n,
            "calls_costs": {
                k: (by_cat("calls_trial")[k] + by_cat("calls_gaps")[k] + by_cat("calls_fixed")[k]) / n for k in CALLS
            },
            "calls_compute_s": coord_in / n,
            "lock_s": lock / n,
            "other_locks": {k: v / n for k, v in other_locks.items()},
            "other_lock_s": other_lock / n,
            "other_lock_job_s": other_lock / len(rows),
            "after_trial_s": after / n,
            "coord_out_s": coord_out / n,
            "coord_s": (coord_out + coord_in) / n,
            "coord_share": (coord_out + coord_in) / worker_total,
            "coord_out_share": coord_out / worker_total,
            "start_teardown_s": start_teardown / n,
            "start_teardown_job_s": start_teardown / len(rows),
            "start_teardown_share": start_teardown / worker_total,
            "other_s": (worker_total - compute - coord_out - start_teardown) / n,
            "a_calls_s": total("calls_trial") / n,
            "a_imports_s": total("imports_trial") / n,
            "imports_compute_s": total("imports_compute") / n,
            "features_s": total("features_s") / n,
            "gap_lock_s": total("lock_gaps_s") / len(gaps) if gaps else None,
            "gap_costs": {k: v / len(gaps) for k, v in by_cat("calls_gaps").items()} if gaps else {},
            "spawn_s": mean(j["spawn_s"] for j in rows),
            "boot_s": mean(j["boot_s"] for j in rows),
            "attach_s": mean(j["attach_s"] for j in rows),
            "data_s": mean(j["data_s"] for j in rows),
            "pre_trial_s": mean(j["pre_trial_s"] for j in rows),
            "after_trial_job_s": after / len(rows),
            "exit_s": mean(j["exit_s"] for j in rows),
        }
    )
    if gaps:
        f["gap_rest_s"] = f["gap_mean_s"] - f["gap_lock_s"] - sum(f["gap_costs"].values())
    # trials per job at which the process start/teardown would be 2 % of a worker's time: P/k <= 2/98 of the rest
    rest = w - f["start_teardown_s"]
    f["break_even_trials_per_job"] = 49 * f["start_teardown_job_s"] / rest if rest > 0 else None
    return f


def report_jobs(runs: list[JobRun], inproc: InProcess | None, n_trials: int) -> tuple[str, dict[str, Any]]:
    one = [r for r in runs if r.trials_per_job == 1]  # the per-trial breakdown below assumes one trial per job
    rows = []
    for r in runs:
        base = next((b for b in runs if b.workers == 1 and b.trials_per_job == r.trials_per_job), None)
        ref = next((b for b in one if b.workers == r.workers), None)
        ran = [j for j in r.runner if j.get("n")]
        per_job = str(r.trials_per_job)
        if r.trials_per_job != 1:
            per_job += f" (ran {', '.join(str(j['n']) for j in ran)})"
        rows.append(
            f"| {r.layout} | {per_job} | {','.join(map(str, r.threads))} | {r.counted}/{n_trials} | {r.wall_s:.1f} | "
            f"{r.per_hour:.0f} | {r.per_hour_trials:.0f} | {f'{base.wall_s / r.wall_s:.2f}x' if base else 'n/a'} | "
            f"{'' if ref is None or ref is r else f'{r.per_hour / ref.per_hour:.2f}x'} | "
            f"{fmt(mean(t['seconds'] for t in r.trials if t['seconds'] is not None), '.1f')} | "
            f"{fmt(mean(j['finished'] - j['started'] for j in ran), '.1f')} | {r.finalize_s:.1f} | "
            f"{'yes' if r.finalized else 'NO'} |"
        )
    anchor = ""
    if inproc is not None:
        n = sum(1 for t in inproc.trials if t["state"] in ("COMPLETE", "PRUNED"))
        anchor = (
            f"| anchor: in process (part 1, pruner none) | all, one process | 1 | {n}/{n} | {inproc.wall_s:.1f} | "
            f"{n / inproc.wall_s * 3600:.0f} | {n / inproc.trials_s * 3600:.0f} | | | "
            f"{fmt(mean(t['seconds'] for t in inproc.trials if t['seconds']), '.1f')} | | {inproc.finalize_s:.1f} | yes |"
        )

    facts: dict[str, Any] = {r.name: overhead_facts(r) for r in one}
    orows = []
    for r in one:
        f = facts[r.name]
        turn = f["c_turnaround_s"]
        orows.append(
            f"| {r.layout} | {f['compute_s']:.2f} | {f['span_s']:.2f} | **{f['a_s']:.3f} ({pct(f['a_s'], f['span_s'])})** | "
            f"{f['a_calls_s']:.3f} ({pct(f['a_calls_s'], f['span_s'])}) | {f['a_imports_s']:.3f} | "
            f"{f['in_calls_s']:.3f} ({pct(f['in_calls_s'], f['compute_s'])}) | {f['in_imports_s']:.2f} | "
            f"{f['b_s']:.2f} | {f['post_s']:.2f} | {f['c_idle_s']:.2f} / {fmt(turn)} | {f['worker_time_s']:.2f} | "
            f"**{f['total_s']:.2f} ({pct(f['total_s'], f['worker_time_s'])})** | "
            f"{f['total_strict_s']:.2f} ({pct(f['total_strict_s'], f['worker_time_s'])}) |"
        )
    if inproc is not None and inproc.overhead:
        g = inprocess_facts(inproc)
        facts["in_process_none"] = g
        orows.append(
            f"| in process (part 1, pruner none) | {g['compute_s']:.2f} | {g['span_s']:.2f} | "
            f"**{g['a_s']:.3f} ({pct(g['a_s'], g['span_s'])})** | {g['a_calls_s']:.3f} ({pct(g['a_calls_s'], g['span_s'])}) | "
            f"{g['a_imports_s']:.3f} | {g['in_calls_s']:.3f} ({pct(g['in_calls_s'], g['compute_s'])}) | "
            f"{g['in_imports_s']:.2f} | | | | | | |"
        )

    detail = []
    for r in one:
        f = facts[r.name]
        slow = ", ".join(f"`{n}` {s:.2f}" for n, s in f["slow_imports_in_trial"]) or "none over 50 ms"
        detail.append(
            f"- **{r.layout}**: (a) {f['a_s']:.3f} s = {cats(f['a_costs'])}, the rest {f['a_rest_s']:.3f} s (the "
            f"objective's own bookkeeping); the slowest first-use imports in the trial (s per trial): {slow}. "
            f"Inside `evaluate_trial`: {cats(f['in_compute_costs'])} s; the feature table, built again in each job "
            f"process, {f['features_s']:.2f} s. (b) {f['b_s']:.2f} s = worker claim to the new interpreter "
            f"{f['spawn_s']:.2f} s + imports, settings, tracking-store check, study load {f['boot_s']:.2f} s "
            f"({cats(f['boot_costs'])}) + `StudyHandle.attach` {f['attach_s']:.2f} s (candles {f['data_s']:.2f} s; "
            f"{cats(f['attach_costs'])}) + `run_trials` up to the trial's start {f['pre_trial_s']:.2f} s "
            f"({cats(f['pre_trial_costs'])}). After the trial {f['post_s']:.2f} s (`after_trial`: the study's lock, "
            f"the top-up, the job's end). (c) submit to claim with the worker idle {f['c_idle_s']:.2f} s "
            f"(n={f['c_idle_n']}); previous job's end to the next claim on the same worker "
            f"{fmt(f['c_turnaround_s'])} s (n={f['c_turnaround_n']}), of which {f['exit_s']:.2f} s until the job "
            f"process's last atexit handler: the rest is the interpreter's own teardown after it (the worker waits for "
            f"the process to exit before it claims again). Background threads during the job (Optuna trial "
            f"heartbeat, job heartbeat): {cats(f['background_costs'])} s. The costliest probed functions per job (the "
            f"study's finalization left out; calls, seconds): {calls_text(f['top_calls'])}."
        )
    if "in_process_none" in facts:
        g = facts["in_process_none"]
        detail.append(
            f"- **in process**: (a) {g['a_s']:.3f} s = {cats(g['a_costs'])}; inside `evaluate_trial`: "
            f"{cats(g['in_compute_costs'])} s. The costliest probed functions per trial (its span; calls, seconds): "
            f"{calls_text(g['top_calls'])}."
        )
    ref_teardown = observed_teardowns(runs)
    rfacts = {r.name: runner_facts(r, mean(ref_teardown) if ref_teardown else None) for r in runs}
    facts["runner"] = rfacts
    rrows, rdetail = [], []
    for r in runs:
        f = rfacts[r.name]
        if not f["n_trials"]:
            continue
        gap = "none" if f["gap_mean_s"] is None else f"{f['gaps_s']:.2f} ({f['gap_mean_s']:.2f} x {f['gap_n']})"
        w = f["worker_time_s"]
        coord = f"**{f['coord_s']:.2f} ({pct(f['coord_s'], w)})**" if f["probed"] else "n/a"
        start = f"**{f['start_teardown_s']:.2f} ({pct(f['start_teardown_s'], w)})**" if f["probed"] else "n/a"
        rrows.append(
            f"| {r.layout} | {r.trials_per_job} | {', '.join(map(str, f['trials_per_job']))} | {f['compute_s']:.2f} | "
            f"{f['a_s']:.3f} ({pct(f['a_s'], f['span_s'])}) | {f['fixed_s']:.2f} | {gap} | {f['teardown_s']:.2f} | "
            f"{f['queue_s']:.2f} | {w:.2f} | **{f['total_s']:.2f} ({pct(f['total_s'], w)})** | {coord} | {start} |"
        )
        if not f["probed"]:
            rdetail.append(f"- **{r.layout}, {r.trials_per_job} per job**: a job process left no probe file.")
            continue
        per_job = ", ".join(f"{x:.1f}/{k}" for x, k in zip(f["fixed_per_job_s"], f["trials_per_job"], strict=False))
        gaps = (
            "no gaps (one trial per job)"
            if f["gap_mean_s"] is None
            else f"between two trials of a job {f['gap_mean_s']:.3f} s (n={f['gap_n']}): the study's lock "
            f"{f['gap_lock_s']:.3f}, {cats(f['gap_costs'])} (the progress check, `ask`), the rest "
            f"{f['gap_rest_s']:.3f} s (the heartbeat thread, Python)"
        )
        be = f["break_even_trials_per_job"]
        other_locks = (
            "the lock " + ", ".join(f"`{k}` {v:.3f}" for k, v in f["other_locks"].items()) + " (waiting, the work "
            "under it but its first-use imports)"
            if f["other_locks"]
            else "no other lock"
        )
        rdetail.append(
            f"- **{r.layout}, {r.trials_per_job} per job** (trials attributed by {'/'.join(f['attributed_by'])}): "
            f"fixed cost per job {per_job} (s / trials) = claim to the first trial {f['lead_job_s']:.2f} s (the new "
            f"interpreter {f['spawn_s']:.2f}, imports, settings, tracking-store check, study load {f['boot_s']:.2f}, "
            f"`StudyHandle.attach` {f['attach_s']:.2f} with the candles {f['data_s']:.2f}, `run_trials` up to the "
            f"first trial {f['pre_trial_s']:.2f}) + the last trial's end to the job's end {f['tail_job_s']:.2f} s "
            f"(`after_trial` {f['after_trial_job_s']:.2f}: the study's lock, the top-up). Teardown: the job's end to "
            f"its process's exit {f['teardown_job_s']:.2f} s per job ({f['teardown_source']}; "
            f"{f['exit_s']:.2f} s of it until the last atexit handler). Queue dispatch {f['queue_job_s']:.2f} s per "
            f"job. Gaps: {gaps}. Coordination per trial {f['coord_s']:.3f} s = Optuna + MLflow + jobs-table calls "
            f"outside compute {f['calls_out_s']:.3f} ({cats(f['calls_costs'])}; in (a) {f['a_calls_s']:.3f}) + "
            f"per-epoch calls inside compute {f['calls_compute_s']:.3f} + the study's lock (the claims) "
            f"{f['lock_s']:.3f} + {other_locks} + `after_trial` {f['after_trial_s']:.3f} + queue dispatch "
            f"{f['queue_s']:.3f}. Process start/teardown per trial {f['start_teardown_s']:.2f} s "
            f"({f['start_teardown_job_s']:.2f} s per job, its coordination left out; 2 % of a worker's time from "
            f"{fmt(be, '.0f')} trials per job on). Other {f['other_s']:.2f} s per trial (first-use imports in (a) "
            f"{f['a_imports_s']:.2f}, Python). Inside compute, paid by a process's first trial: first-use imports "
            f"{f['imports_compute_s']:.2f} s and the feature table {f['features_s']:.2f} s per trial."
        )
    old = ""
    if one:
        old = f"""
#### One trial per job (`ML_TUNING_TRIALS_PER_JOB=1`, the layout before the trial runners)

Means per trial, in seconds. Compute = the trial's `seconds` user attribute (`evaluate_trial`'s own
wall time). (a) = the Optuna trial's `datetime_start` -> `datetime_complete` minus compute, as a share
of that span; probed, it splits into the Optuna storage / sampler calls (suggest, user attributes,
tell), the MLflow child run (create, params, final metrics, end) and the jobs table ("Optuna + MLflow
calls"), and `import` statements run for the first time in the process ("first-use imports").
"Per-epoch calls inside compute" = `trial.report` / `should_prune` and the per-epoch MLflow metrics,
which `seconds` includes. (b) = the job's `started_at` (the worker's claim) -> the trial's
`datetime_start`: the job process's start (Python, torch, MLflow, Optuna imports), the study attach,
the candles. After = `datetime_complete` -> the job's `finished_at` (the study's one finalization
excluded, shown above). (c) = the job's `created_at` -> `started_at` when its worker was idle / the
previous job's `finished_at` -> the next claim on the same worker. Worker time per trial = the job's
claim to its end, plus (c); total = worker time per trial minus compute, as a share of the worker
time; "strict" also counts the per-epoch calls and first-use imports inside compute.

| layout | compute s | trial span s | (a) span - compute | (a): Optuna + MLflow calls | (a): first-use imports | per-epoch calls inside compute | first-use imports inside compute | (b) job start s | after the trial s | (c) idle / turnaround s | worker time per trial s | total overhead | total, strict |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(orows)}

{chr(10).join(detail)}
"""
    study = ", ".join(f"{k}={v}" for k, v in STUDY.items() if k != "space")
    settings = ", ".join(str(k) for k in sorted({r.trials_per_job for r in runs}))
    body = f"""
### 2. Trials per hour: one worker vs two, one trial per job vs trial runners

The same study as trial jobs: `TuningService.submit(TuneParams({study}, trials={n_trials},
parallel=1|2, pruner="none"))` (pruner off so that both layouts do the same work) on real workers
`python -m backend.services.worker --slots 1`, each trial job in its own process; a job runs the
study's next trials one after another, each taken under the study's lock while the target allows, at
most `ML_TUNING_TRIALS_PER_JOB` of them (set in the workers' environment: {settings}; 1 = one trial per
job, the layout before the trial runners; 10 = the default), then tops the study up or finalizes it.
PostgreSQL holds the jobs table, the queue (PostgresHuey), the locks and the Optuna storage in one
database, the MLflow store in another (fresh ones per row). The one worker is pinned to one core, the
two to core 0 / core 1 (`sched_setaffinity`), so every job has 1 thread, like the in-process anchor;
PostgreSQL, this script and other users of the machine share the same two cores. Heartbeats at their
defaults (trial 30 s, job 5 s). Study wall = the submit to the last job's end (the study finalized:
the holdout read once, DSR, PBO, plots); "trial timestamps" = first trial start to last trial end;
speed-up = against one worker with the same trials per job; "vs one per job" = trials/hour (study)
against one trial per job with as many workers.

| layout | trials per job | threads per job | trials | study wall s | trials/hour (study) | trials/hour (trial timestamps) | speed-up | vs one per job | mean trial compute s | mean job wall s | finalize s | finalized |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
{chr(10).join(rows)}
{anchor}

### 3. Coordination overhead per trial (target: at most 2 % of trial time)
{old}
#### Trials per job: one vs {max(r.trials_per_job for r in runs)} (the trial runners)

Every job-based study above, one formula: a worker's time per trial = compute + (a) + the gaps between
two trials of a job (`datetime_complete` -> the next `datetime_start`: the study's lock, the progress
check, `ask`) + the job's fixed cost (its `started_at` -> the first trial's `datetime_start`, plus the
last trial's `datetime_complete` -> its `finished_at`, the study's one finalization excluded) + the job
process's teardown (`finished_at` -> the process's exit, seen by the worker's `JobRunner._wait`) + the
queue's dispatch (the job queued and its worker free -> the claim), summed over the run's jobs and
divided by its trials (a job's trials: its `result["trials"]`). Total overhead = worker time minus
compute. Coordination (the issue's "Optuna storage, MLflow, queue") = the probed Optuna storage /
sampler, MLflow and jobs-table calls of the job process (outside compute, plus the per-epoch calls
inside it), the study's lock where a runner takes each next trial, the tracking store's lock at a job
process's start (`jobs/tracking-store-schema`: waiting for it, and the store check under it; the
MLflow imports made under it count as process start, though a second job process waits for them),
`after_trial` (the lock, the progress, the top-up) and the queue's dispatch. Process start/teardown =
the fixed cost plus the teardown, their coordination left out (the interpreter, imports, settings,
the study attach and candles, the job's end and exit). Shares of the worker time per trial. The
one-trial-per-job rows use the worker's actual sequence of jobs (the table above charges each job the
mean turnaround instead): they differ a little.

| layout | trials per job | trials each job ran | compute s | (a) span - compute | fixed cost per trial s | gaps per trial s (mean x n) | teardown per trial s | queue per trial s | worker time per trial s | total overhead | coordination: Optuna + MLflow + queue | process start/teardown |
|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rrows)}

{chr(10).join(rdetail)}
"""
    return body, facts


def verdict(facts: dict[str, Any], runs: list[JobRun]) -> str:
    def met(share: float) -> str:
        return "met" if share <= 0.02 else "NOT met"

    lines = [
        "### Against the 2 % target",
        "",
        "Per trial, as shares of a worker's time per trial (section 3's last table, one formula for both layouts).",
        "",
    ]
    for r in runs:
        f = facts["runner"].get(r.name, {})
        if not f.get("n_trials"):
            continue
        what = "one trial per job" if r.trials_per_job == 1 else f"trial runners, at most {r.trials_per_job} per job"
        head = f"- {what}, {r.workers} worker{'s' if r.workers > 1 else ''} (`ML_TUNING_TRIALS_PER_JOB={r.trials_per_job}`)"
        total = (
            f"Total overhead {f['total_s']:.2f} s = **{100 * f['total_share']:.1f} %** of {f['worker_time_s']:.2f} s "
            f"({met(f['total_share'])}); (a) {f['a_s']:.2f} s = {100 * f['a_share_of_span']:.1f} % of the trial's span "
            f"({met(f['a_share_of_span'])})."
        )
        if not f["probed"]:
            lines.append(f"{head}: {total} (No probe file: coordination not split.)")
            continue
        amortised = (
            f"{f['start_teardown_job_s']:.1f} s per job, paid for each trial"
            if r.trials_per_job == 1
            else f"{f['start_teardown_job_s']:.1f} s per job amortised over {mean(f['trials_per_job']):.1f} trials"
        )
        lines.append(
            f"{head}: Optuna + MLflow + queue coordination {f['coord_s']:.3f} s = "
            f"**{100 * f['coord_share']:.1f} %** ({met(f['coord_share'])}; outside compute "
            f"{100 * f['coord_out_share']:.1f} %, {met(f['coord_out_share'])}): calls {f['calls_out_s']:.3f} outside "
            f"compute + {f['calls_compute_s']:.3f} per-epoch inside, the study's lock {f['lock_s']:.3f}, the tracking "
            f"store's lock {f['other_lock_s']:.3f}, `after_trial` {f['after_trial_s']:.3f}, queue dispatch "
            f"{f['queue_s']:.3f}. Process start/teardown "
            f"{f['start_teardown_s']:.2f} s = **{100 * f['start_teardown_share']:.1f} %** "
            f"({met(f['start_teardown_share'])}; {amortised}; 2 % from "
            f"{fmt(f['break_even_trials_per_job'], '.0f')} trials per job of this size on). {total}"
        )
    g = facts.get("in_process_none")
    if g:
        lines.append(
            f"- in process (part 1, pruner none): (a) = {g['a_s']:.3f} s of a {g['span_s']:.1f} s trial = "
            f"**{100 * g['a_share_of_span']:.1f} %** ({'met' if g['a_share_of_span'] <= 0.02 else 'NOT met'}); "
            f"the Optuna + MLflow calls {g['a_calls_s']:.3f} s (2 % of a trial from {49 * g['a_s']:.0f} s of compute "
            f"on), per-epoch calls inside compute {g['in_calls_s']:.3f} s ({pct(g['in_calls_s'], g['compute_s'])}: "
            "a cost per epoch, its share does not fall with more epochs)."
        )
    return "\n".join(lines) + "\n"


# ============================================================================================ main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=16, help="trials per in-process study (default 16)")
    ap.add_argument("--job-trials", type=int, default=8, help="trials per job-based study (default 8)")
    ap.add_argument("--parts", default="inprocess,jobs", help="comma-separated: inprocess, jobs (default both)")
    ap.add_argument("--keep", action="store_true", help="keep the workers' logs and probe files (in /tmp)")
    ap.add_argument(
        "--trials-per-job",
        default="1,10",
        help="comma-separated ML_TUNING_TRIALS_PER_JOB values for the job-based studies (default 1,10: one trial "
        "per job, then the default trial runners)",
    )
    ap.add_argument("--days", type=float, default=STUDY["date_range"], help="days of candles (default 10)")
    ap.add_argument("--epochs", type=int, default=STUDY["epochs"], help="epochs per fold (default 3)")
    ap.add_argument(
        "--name",
        default="tuning",
        help="results file under bench/results/ (default tuning; e.g. tuning-long for a run at longer trials)",
    )
    args = ap.parse_args()
    STUDY.update(date_range=float(args.days), epochs=int(args.epochs))
    global KEEP
    KEEP = args.keep
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("backend").setLevel(logging.WARNING)
    for noisy in ("alembic", "mlflow", "optuna", "huey"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if parts - {"inprocess", "jobs"}:
        ap.error(f"unknown part in {args.parts!r}")
    try:
        per_job = list(dict.fromkeys(int(x) for x in args.trials_per_job.split(",") if x.strip()))
    except ValueError:
        ap.error(f"--trials-per-job: not a comma-separated list of integers: {args.trials_per_job!r}")
    if not per_job or min(per_job) < 1:
        ap.error("--trials-per-job: at least one value, each at least 1")
    cores = sorted(os.sched_getaffinity(0))
    if "jobs" in parts and len(cores) < 2:
        ap.error("the job part needs at least 2 cores")
    os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported: the in-process trials use one thread

    started = time.perf_counter()
    inproc: list[InProcess] = []
    warm_s = 0.0
    if "inprocess" in parts:
        inproc, warm_s = with_retry("the in-process studies", lambda: in_process(args.trials))
    runs: list[JobRun] = []
    if "jobs" in parts:
        one = "1 worker `--slots 1`, pinned to core 0"
        two = "2 workers `--slots 1`, pinned to core 0 / core 1"
        for k in per_job:
            what = f"{k} trial(s) per job"
            runs.append(with_retry(f"{one}, {what}", lambda k=k: job_study(args.job_trials, one, [{cores[0]}], k)))
            runs.append(
                with_retry(f"{two}, {what}", lambda k=k: job_study(args.job_trials, two, [{cores[0]}, {cores[1]}], k))
            )
    elapsed = time.perf_counter() - started

    sections = [
        f"""
Study: family `hybrid_cnn_lstm`, search space (TOML, laid over the bundled defaults):

```toml
{SPACE.strip()}
```

on the bundled candles (data source `sample`: ETH, LTC, XMR, ADA / BTC, 5 m), the last {STUDY["date_range"]:g} days,
{STUDY["folds"]} walk-forward validation folds, {STUDY["epochs"]} epochs, objective validation accuracy, holdout 20 %,
seed {STUDY["seed"]}.
"""
    ]
    facts: dict[str, Any] = {}
    if inproc:
        sections.append(report_inprocess(inproc, args.trials, warm_s))
    if runs:
        none = next((r for r in inproc if r.pruner == "none"), None)
        body, facts = report_jobs(runs, none, args.job_trials)
        sections.append(body)
        sections.append(verdict(facts, runs))
    if RETRIES:
        sections.append("Measured again after an error: " + "; ".join(RETRIES) + ".\n")
    sections.append(
        f"Whole benchmark: {elapsed:.0f} s. Two CPU cores run the trials, PostgreSQL and this script at once; "
        f"other users of the machine add noise. Raw per-trial and per-job figures: `bench/results/{args.name}.json`.\n"
    )
    path = write_report(
        args.name, "Hyperparameter search: pruning, trials per hour, coordination overhead", "\n".join(sections)
    )
    raw = {
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "study": STUDY,
        "in_process": [r.__dict__ for r in inproc],
        "jobs": [{**r.__dict__, "per_hour": r.per_hour, "per_hour_trials": r.per_hour_trials} for r in runs],
        "overhead": facts,
    }
    (RESULTS / f"{args.name}.json").write_text(json.dumps(raw, indent=1, default=str))
    print(path.read_text())
    ok = all(r.finalized and r.counted == args.job_trials for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
