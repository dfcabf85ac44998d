"""ModelRegistry against a real PostgreSQL tracking store (and one SQLite store).

One database per module (creating MLflow's schema costs seconds); every test uses its own
registered-model names, so tests stay independent. Versions are created with the stock
``MlflowClient`` from one run holding a tiny signed ``nn.Linear`` (``model``) and the same model
without a signature (``model_nosig``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import numpy as np
import pytest
from mlflow.exceptions import MlflowException

from backend.ml_engine.config import Settings
from backend.ml_engine.mlflow_integration.stores import resolve_tracking_uri
from backend.ml_engine.model_registry import (
    ALIAS_CHALLENGER,
    ModelNotFoundError,
    ModelRegistry,
    ModelVersionNotFoundError,
    NoPreviousVersionError,
    ProductionVersionError,
    PromotionEvent,
    PromotionGate,
    RegistryLockTimeout,
    get_model_registry,
)

REPO = Path(__file__).resolve().parents[1]
PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("TEST_PG_USER", "postgres")

pytestmark = pytest.mark.postgres

GOOD = {"test_accuracy": 0.6, "test_f1_macro": 0.5}


def _admin():
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5)
    conn.autocommit = True
    return conn


@dataclass
class Store:
    url: str  # as the user writes it: postgresql://...
    client: object
    run_id: str


def _save_models(root: Path) -> None:
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    x = np.random.default_rng(0).random((2, 4), dtype=np.float32)
    signature = infer_signature(x, model(torch.from_numpy(x)).detach().numpy())
    kw = dict(serialization_format="pickle", pip_requirements=[])
    mlflow.pytorch.save_model(model, str(root / "model"), signature=signature, **kw)
    mlflow.pytorch.save_model(model, str(root / "model_nosig"), **kw)


def _make_store(url: str, artifacts: Path, models: Path) -> Store:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=resolve_tracking_uri(url))
    exp_id = client.create_experiment("registry_tests", artifact_location=artifacts.as_uri())
    run = client.create_run(exp_id, run_name="tiny_models")
    client.log_artifacts(run.info.run_id, str(models / "model"), "model")
    client.log_artifacts(run.info.run_id, str(models / "model_nosig"), "model_nosig")
    client.set_terminated(run.info.run_id)
    return Store(url, client, run.info.run_id)


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    _save_models(root)
    return root


@pytest.fixture(scope="module")
def store(tmp_path_factory, saved_models):
    """One PostgreSQL database with MLflow's schema for the whole module; dropped afterwards."""
    db = f"test_registry_{uuid.uuid4().hex[:10]}"
    try:
        conn = _admin()
    except Exception as exc:  # noqa: BLE001 - any failure to connect fails, with its reason  # pragma: no cover
        pytest.fail(f"PostgreSQL on {PG_HOST}:{PG_PORT} is not reachable: {exc}")
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{db}"')
    conn.close()
    try:
        yield _make_store(
            f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{db}", tmp_path_factory.mktemp("artifacts"), saved_models
        )
    finally:
        conn = _admin()
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (db,),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{db}"')
        conn.close()


@pytest.fixture
def name(request) -> str:
    """A registered-model name unique to the test."""
    return f"{request.node.name[:40]}_{uuid.uuid4().hex[:6]}".replace("[", "_").replace("]", "_")


@pytest.fixture
def registry(store) -> ModelRegistry:
    reg = ModelRegistry(store.url, gate=PromotionGate(min_accuracy_for_promotion=0.5))
    yield reg
    reg.close()


def make_versions(store: Store, name: str, *specs: dict) -> list[int]:
    """Register ``name`` with one version per spec: metric tags (None drops a default), ``signed``."""
    client = store.client
    with contextlib.suppress(MlflowException):  # already registered
        client.create_registered_model(name)
    out = []
    for spec in specs:
        spec = dict(spec)
        signed = spec.pop("signed", True)
        tags = {"onnx_parity_max_abs_diff": "1e-06"}
        tags.update({k: str(v) for k, v in spec.items()})
        tags = {k: v for k, v in tags.items() if v != "None"}
        artifact = "model" if signed else "model_nosig"
        mv = client.create_model_version(name, f"runs:/{store.run_id}/{artifact}", run_id=store.run_id, tags=tags)
        out.append(int(mv.version))
    return out


def production(store: Store, name: str) -> int | None:
    aliases = store.client.get_registered_model(name).aliases
    return int(aliases["production"]) if "production" in aliases else None


def assert_chain(events: list[PromotionEvent]) -> None:
    """Entries in seq order, gap-free, each starting where the previous one left production."""
    events = sorted(events, key=lambda e: e.seq)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    for prev, cur in itertools.pairwise(events):
        assert cur.from_version == prev.to_version, (prev, cur)


# ---------------------------------------------------------------------------------------------
# Gate (pure)
# ---------------------------------------------------------------------------------------------


def test_gate_checks_are_pure_and_explained():
    gate = PromotionGate(min_accuracy_for_promotion=0.5, min_improvement=0.01)
    cand = {"test_accuracy": 0.6, "test_f1_macro": 0.55, "onnx_parity_max_abs_diff": 1e-6}
    ok = gate.check(cand, {"test_f1_macro": 0.5}, champion_version=1, signature_present=True)
    assert ok.passed, ok.failures
    assert "test_f1_macro 0.5500 > production v1 0.5000" in ok.reason

    small = gate.check(cand, {"test_f1_macro": 0.545}, champion_version=1, signature_present=True)
    assert not small.passed and "not better than production" in small.reason

    # the evaluator may answer unprefixed names; lower-is-better metrics compare the other way
    assert gate.check(
        {"accuracy": 0.7, "f1_macro": 0.6, "onnx_parity_max_abs_diff": 0}, None, signature_present=True
    ).passed
    dd = PromotionGate(primary_metric="backtest_max_drawdown", greater_is_better=False)
    assert dd.check(
        {"test_accuracy": 0.6, "backtest_max_drawdown": 0.1, "onnx_parity_max_abs_diff": 0},
        {"backtest_max_drawdown": 0.2},
        champion_version=1,
        signature_present=True,
    ).passed

    bad = gate.check(
        {"test_accuracy": float("nan"), "test_f1_macro": 0.9, "onnx_parity_max_abs_diff": 1e-3},
        None,
        signature_present=False,
        archived=True,
    )
    assert not bad.passed
    text = bad.reason
    for part in ("archived", "test_accuracy nan < min 0.5", "signature missing", "ONNX parity"):
        assert part in text

    relaxed = PromotionGate(require_signature=False, require_onnx_parity=False)
    assert relaxed.check({"test_accuracy": 0.6, "test_f1_macro": 0.1}, None).passed

    for bad_kw in (
        {"min_accuracy_for_promotion": 1.5},
        {"min_improvement": -1},
        {"max_abs_diff": -1e-4},
        {"primary_metric": ""},
    ):
        with pytest.raises(ValueError):
            PromotionGate(**bad_kw)

    assert PromotionGate.from_settings(Settings(min_accuracy_for_promotion=0.75)).min_accuracy_for_promotion == 0.75


def test_production_lineage_replays_promotions_and_rollbacks():
    from datetime import datetime

    def ev(seq, decision, to):
        return PromotionEvent(seq, "m", decision, to, None, to, "", "", "t", False, datetime.now(UTC))

    events = [
        ev(1, "promoted", 1),
        ev(2, "promoted", 2),
        ev(3, "refused", None),
        ev(4, "promoted", 3),
        ev(5, "rolled_back", 2),
        ev(6, "promoted", 4),
    ]
    assert ModelRegistry.production_lineage(events) == [1, 2, 4]


def test_factory_reads_settings(tmp_path):
    settings = Settings(
        mlflow_tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        min_accuracy_for_promotion=0.7,
        mlflow_artifact_location=str(tmp_path / "artifacts"),
    )
    reg = get_model_registry(settings)
    assert reg.tracking_uri == settings.mlflow_tracking_uri
    assert reg.gate.min_accuracy_for_promotion == 0.7
    assert reg.lock.kind == "file"
    # one rule for where file locks live: a registry built from the settings and one from the URI agree
    assert reg.lock.locks.lock_dir == ModelRegistry(settings.mlflow_tracking_uri).lock.locks.lock_dir
    assert reg.lock.locks.lock_dir == tmp_path.resolve() / ".locks"
    # an MLflow server alone gives no database to lock on: file locks (one machine)
    assert ModelRegistry("http://mlflow:5000").lock.kind == "file"
    assert ModelRegistry("postgresql://u:secret@db/x").lock.kind == "postgresql-advisory"
    assert "secret" not in repr(ModelRegistry("postgresql://u:secret@db/x"))


# ---------------------------------------------------------------------------------------------
# register, list, read
# ---------------------------------------------------------------------------------------------


async def test_register_model_tags_existing_version_and_creates_from_path(store, name, saved_models, tmp_path):
    # the experiment for uploads gets its artifact root here, not MLflow's default ./mlruns
    registry = ModelRegistry(store.url, experiment_name=f"uploads_{name}", artifact_location=tmp_path.as_uri())
    (v1,) = make_versions(store, name, {})
    # the guide's call on a version that exists: metrics become test_* tags, nothing uploaded
    info = await registry.register_model(
        name=name, version=v1, model_path=None, metrics={"accuracy": 0.61, "f1_macro": 0.52, "backtest_sharpe": 1.3}
    )
    assert info.version == v1
    assert info.metrics["test_accuracy"] == pytest.approx(0.61)
    assert info.metrics["test_f1_macro"] == pytest.approx(0.52)
    assert info.metrics["backtest_sharpe"] == pytest.approx(1.3)
    assert len(await registry.list_versions(name)) == 1

    # a timestamp label with a model_path creates a version; the same label again updates it
    created = await registry.register_model(
        name=name, version="20251216_101500", model_path=saved_models / "model", metrics={"accuracy": 0.7}
    )
    assert created.version == v1 + 1
    assert created.tags["version_label"] == "20251216_101500"
    again = await registry.register_model(
        name=name, version="20251216_101500", model_path=saved_models / "model", metrics={"accuracy": 0.71}
    )
    assert again.version == created.version and again.metrics["test_accuracy"] == pytest.approx(0.71)
    assert [v.version for v in await registry.list_versions(name)] == [created.version, v1]
    assert any(tmp_path.rglob("MLmodel"))

    with pytest.raises(ModelVersionNotFoundError):
        await registry.register_model(name=name, version=99, metrics={"accuracy": 0.5})
    with pytest.raises(ModelNotFoundError):
        await registry.register_model(name=f"{name}_missing", version=1)


async def test_list_models_and_versions_show_aliases_tags_and_metrics(store, registry, name):
    make_versions(
        store, name, {"test_accuracy": 0.6, "test_f1_macro": 0.5}, {"test_accuracy": 0.65, "test_f1_macro": 0.55}
    )
    store.client.set_registered_model_tag(name, "owner", "quant-team")
    await registry.promote(name, 1, reason="first")
    await registry.set_alias(name, ALIAS_CHALLENGER, 2)

    models = {m.name: m for m in await registry.list_models()}
    m = models[name]
    assert m.aliases == {"production": 1, "challenger": 2}
    assert m.production_version == 1 and m.latest_version == 2
    assert m.tags == {"owner": "quant-team"}  # history entries are not mixed into the tags
    assert m.history_count == 1
    v2, v1 = m.versions
    assert v1.aliases == ("production",) and v2.aliases == ("challenger",)
    assert v2.metrics["test_f1_macro"] == pytest.approx(0.55)
    assert m.to_dict()["versions"][0]["model_uri"] == f"models:/{name}/2"

    prod = await registry.get_production_version(name)
    assert prod is not None and prod.version == 1 and "production" in prod.aliases
    assert await registry.get_production_version(f"{name}_unknown") is None
    with pytest.raises(ModelNotFoundError):
        await registry.list_versions(f"{name}_unknown")
    with pytest.raises(ValueError):
        await registry.set_alias(name, "production", 2)


# ---------------------------------------------------------------------------------------------
# promote / refuse / force
# ---------------------------------------------------------------------------------------------


async def test_promote_first_then_better_version(store, registry, name):
    v1, v2 = make_versions(store, name, GOOD, {"test_accuracy": 0.62, "test_f1_macro": 0.55})
    first = await registry.promote(name, v1, reason="initial", actor="tester")
    assert first.promoted and first.from_version is None and first.to_version == v1
    assert "no production version yet" in first.reason
    assert "recorded test metrics" in first.reason  # no evaluator: says what it compared

    second = await registry.promote(name, v2, reason="better f1", actor="tester")
    assert second.promoted, second.reason
    assert (second.from_version, second.to_version) == (v1, v2)
    assert second.metrics["champion"]["test_f1_macro"] == pytest.approx(0.5)
    assert production(store, name) == v2
    tags = store.client.get_model_version(name, str(v2)).tags
    assert tags["promoted_by"] == "tester" and "promoted_at" in tags

    noop = await registry.promote(name, v2)
    assert not noop.promoted and noop.event is None and "already in production" in noop.reason

    events = await registry.history(name)
    assert [(e.decision, e.from_version, e.to_version) for e in events] == [
        ("promoted", v1, v2),
        ("promoted", None, v1),
    ]
    assert events[0].reason == "better f1" and events[0].actor == "tester"
    assert events[0].metrics["candidate"]["test_f1_macro"] == pytest.approx(0.55)


@pytest.mark.parametrize(
    "candidate, expected",
    [
        ({"test_accuracy": 0.4, "test_f1_macro": 0.9}, "test_accuracy 0.4000 < min 0.5"),
        ({"test_accuracy": 0.7, "test_f1_macro": 0.45}, "not better than production"),
        ({"test_accuracy": 0.7, "test_f1_macro": 0.9, "signed": False}, "signature missing"),
        ({"test_accuracy": 0.7, "test_f1_macro": 0.9, "onnx_parity_max_abs_diff": None}, "ONNX parity not recorded"),
        ({"test_accuracy": 0.7, "test_f1_macro": 0.9, "onnx_parity_max_abs_diff": 0.01}, "ONNX parity"),
    ],
    ids=[
        "below_min_accuracy",
        "worse_than_champion",
        "missing_signature",
        "onnx_parity_missing",
        "onnx_parity_too_large",
    ],
)
async def test_refused_promotion_is_recorded(store, registry, name, candidate, expected):
    v1, v2 = make_versions(store, name, GOOD, candidate)
    assert (await registry.promote(name, v1)).promoted

    decision = await registry.promote(name, v2, reason="try", actor="auto")
    assert not decision.promoted
    assert expected in decision.reason
    assert (decision.from_version, decision.to_version) == (v1, v2)
    assert production(store, name) == v1
    assert expected in store.client.get_model_version(name, str(v2)).tags["promotion_refused_reason"]
    last = (await registry.history(name, limit=1))[0]
    assert (last.decision, last.version, last.from_version, last.to_version) == ("refused", v2, v1, v1)
    assert expected in last.detail and last.actor == "auto"
    assert decision.event == last


async def test_forced_promotion_skips_gate_and_clears_refusal(store, registry, name):
    v1, v2 = make_versions(store, name, GOOD, {"test_accuracy": 0.3, "signed": False})
    await registry.promote(name, v1)
    assert not (await registry.promote(name, v2)).promoted
    forced = await registry.promote(name, v2, reason="hotfix", actor="ops", force=True)
    assert forced.promoted and forced.forced and "forced" in forced.reason
    assert production(store, name) == v2
    assert "promotion_refused_reason" not in store.client.get_model_version(name, str(v2)).tags
    last = (await registry.history(name, limit=1))[0]
    assert last.decision == "promoted" and last.forced and last.reason == "hotfix"


async def test_evaluator_compares_champion_and_challenger_on_same_holdout(store, name):
    # Recorded tags say v2 is better; the holdout evaluation says it is worse.
    v1, v2 = make_versions(store, name, GOOD, {"test_accuracy": 0.7, "test_f1_macro": 0.8})
    holdout = {v1: {"accuracy": 0.6, "f1_macro": 0.52}, v2: {"accuracy": 0.58, "f1_macro": 0.50}}
    calls = []

    def evaluate(model: str, version: int) -> dict[str, float]:
        calls.append(version)
        return holdout[version]

    reg = ModelRegistry(store.url, evaluator=evaluate)
    await reg.promote(name, v1)
    decision = await reg.promote(name, v2)
    assert not decision.promoted
    assert "same recent holdout" in decision.reason and "no holdout evaluator" not in decision.reason
    assert decision.metrics["champion"]["test_f1_macro"] == 0.52  # the holdout's, not the tag's 0.5
    assert calls == [v1, v2, v1]

    async def evaluate_async(model: str, version: int) -> dict[str, float]:
        await asyncio.sleep(0)
        return {"f1_macro": 0.9 if version == v2 else 0.5}

    reg_async = ModelRegistry(store.url, evaluator=evaluate_async)
    assert (await reg_async.promote(name, v2)).promoted

    def broken(model: str, version: int) -> dict[str, float]:
        raise RuntimeError("holdout unavailable")

    reg_broken = ModelRegistry(store.url, evaluator=broken)
    refused = await reg_broken.promote(name, v1)
    assert not refused.promoted and "holdout evaluation failed" in refused.reason


# ---------------------------------------------------------------------------------------------
# rollback, archive, history
# ---------------------------------------------------------------------------------------------


async def test_rollback_walks_back_through_history(store, registry, name):
    v1, v2, v3 = make_versions(
        store, name, GOOD, {"test_accuracy": 0.6, "test_f1_macro": 0.6}, {"test_accuracy": 0.6, "test_f1_macro": 0.7}
    )
    with pytest.raises(NoPreviousVersionError, match="no previous production version"):
        await registry.rollback(name, reason="nothing yet")
    for v in (v1, v2, v3):
        assert (await registry.promote(name, v)).promoted

    back = await registry.rollback(name, reason="live PnL dropped", actor="ops")
    assert back.promoted and (back.from_version, back.to_version) == (v3, v2)
    assert production(store, name) == v2
    back = await registry.rollback(name, reason="still bad", actor="ops")
    assert (back.from_version, back.to_version) == (v2, v1)
    with pytest.raises(NoPreviousVersionError):
        await registry.rollback(name, reason="nothing left")
    assert production(store, name) == v1

    events = await registry.history(name)
    assert [(e.decision, e.to_version) for e in events[:2]] == [("rolled_back", v1), ("rolled_back", v2)]
    assert events[0].reason == "still bad" and events[0].actor == "ops"
    assert_chain(events)

    # after a rollback, a new promotion and a rollback return to where we rolled back to
    assert (await registry.promote(name, v3)).promoted
    assert (await registry.rollback(name)).to_version == v1


async def test_rollback_with_a_single_promotion_is_a_clear_error(store, registry, name):
    (v1,) = make_versions(store, name, GOOD)
    await registry.promote(name, v1)
    with pytest.raises(NoPreviousVersionError, match=r"production is v1; 1 production changes"):
        await registry.rollback(name)


async def test_archive(store, registry, name):
    v1, v2, v3 = make_versions(
        store, name, GOOD, {"test_accuracy": 0.6, "test_f1_macro": 0.6}, {"test_accuracy": 0.6, "test_f1_macro": 0.7}
    )
    await registry.promote(name, v1)
    await registry.promote(name, v2)
    await registry.set_alias(name, ALIAS_CHALLENGER, v3)

    event = await registry.archive(name, v3, reason="superseded", actor="ops")
    assert event.decision == "archived" and (event.from_version, event.to_version) == (v2, v2)
    info = await registry.get_version(name, v3)
    assert info.archived and info.aliases == () and info.tags["archived_reason"] == "superseded"
    refused = await registry.promote(name, v3)
    assert not refused.promoted and "archived" in refused.reason

    with pytest.raises(ProductionVersionError):
        await registry.archive(name, v2)
    assert production(store, name) == v2

    # rollback skips archived versions: archive v1, then there is nothing to go back to
    await registry.archive(name, v1)
    with pytest.raises(NoPreviousVersionError):
        await registry.rollback(name)

    forced = await registry.archive(name, v2, reason="bad model", force=True)
    assert (forced.from_version, forced.to_version) == (v2, None)
    assert await registry.get_production_version(name) is None

    # a forced promotion of an archived version un-archives it
    assert (await registry.promote(name, v3, force=True)).promoted
    assert not (await registry.get_version(name, v3)).archived
    assert_chain(await registry.history(name))


async def test_history_queries(store, registry, name):
    a, b = f"{name}_a", f"{name}_b"
    a1, a2 = make_versions(store, a, GOOD, {"test_accuracy": 0.3})
    (b1,) = make_versions(store, b, GOOD)
    await registry.promote(a, a1)
    await registry.promote(a, a2)  # refused
    await registry.promote(b, b1)

    assert [e.decision for e in await registry.history(a)] == ["refused", "promoted"]
    assert [e.version for e in await registry.history(a, decision="refused")] == [a2]
    assert len(await registry.history(a, limit=1)) == 1
    everything = await registry.history(limit=1000)
    mine = [e for e in everything if e.name in (a, b)]
    assert [(e.name, e.decision) for e in mine] == [(b, "promoted"), (a, "refused"), (a, "promoted")]
    assert all(x.timestamp >= y.timestamp for x, y in itertools.pairwise(everything))
    assert mine[0].to_dict()["timestamp"].endswith("+00:00")
    # the entries are plain registered-model tags, readable by any MLflow client
    raw = store.client.get_registered_model(a).tags
    assert sorted(k for k in raw if k.startswith("history.")) == ["history.000001", "history.000002"]
    with pytest.raises(ValueError):
        await registry.history(a, decision="maybe")
    with pytest.raises(ModelNotFoundError):
        await registry.history(f"{name}_missing")


# ---------------------------------------------------------------------------------------------
# concurrency
# ---------------------------------------------------------------------------------------------


async def test_concurrent_promotions_asyncio(store, name):
    """Five promotions at once, gated on f1: exactly one production version (the best), every
    decision taken against the production version of its moment, and the critical sections
    (here: the holdout evaluations) never overlap."""
    specs = [{"test_accuracy": 0.6, "test_f1_macro": 0.50 + 0.02 * i} for i in range(6)]
    versions = make_versions(store, name, *specs)
    f1 = {v: s["test_f1_macro"] for v, s in zip(versions, specs)}
    spans: list[tuple[float, float, int]] = []

    def evaluate(model: str, version: int) -> dict[str, float]:
        t0 = time.monotonic()
        time.sleep(0.05)  # wide enough for an unlocked race to show
        spans.append((t0, time.monotonic(), version))
        return {"test_f1_macro": f1[version]}

    reg = ModelRegistry(store.url, evaluator=evaluate)
    assert (await reg.promote(name, versions[0])).promoted
    spans.clear()
    # several registry objects, as several services would have; all share the database lock
    regs = [ModelRegistry(store.url, evaluator=evaluate) for _ in versions[1:]]
    decisions = await asyncio.gather(*(r.promote(name, v, actor=f"task{v}") for r, v in zip(regs, versions[1:])))

    best = max(versions, key=f1.get)
    assert production(store, name) == best
    assert sum(d.promoted for d in decisions) >= 1
    for d in decisions:
        if d.promoted:  # judged against the production version of its moment
            assert f1[d.to_version] > f1[d.from_version]
    events = await reg.history(name)
    assert len(events) == 6
    assert_chain(events)
    promoted = sorted((e for e in events if e.decision == "promoted"), key=lambda e: e.seq)
    for prev, cur in itertools.pairwise(promoted):
        assert cur.from_version == prev.to_version
    assert promoted[-1].to_version == best
    # each promotion evaluates candidate then champion inside its critical section: pairs never interleave
    spans.sort()
    for (_s1, e1, _), (s2, _, _) in itertools.pairwise(spans):
        assert s2 >= e1 - 1e-3


def test_concurrent_promotions_threads(store, name):
    versions = make_versions(store, name, GOOD, GOOD, GOOD, GOOD)
    asyncio.run(ModelRegistry(store.url).promote(name, versions[0], force=True))
    barrier = threading.Barrier(3)
    results = {}

    def worker(v: int) -> None:
        reg = ModelRegistry(store.url)
        barrier.wait()
        results[v] = asyncio.run(reg.promote(name, v, actor=f"thread{v}", force=True))

    threads = [threading.Thread(target=worker, args=(v,)) for v in versions[1:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(d.promoted for d in results.values()) and len(results) == 3
    events = asyncio.run(ModelRegistry(store.url).history(name))
    assert len(events) == 4
    assert_chain(events)
    assert production(store, name) == events[0].to_version


async def test_lock_is_held_in_the_database(store, name):
    """While one holder keeps the advisory lock, another registry cannot decide and times out."""
    (v1,) = make_versions(store, name, GOOD)
    holder = ModelRegistry(store.url)
    waiter = ModelRegistry(store.url, lock_timeout_s=0.3)
    assert waiter.lock.kind == "postgresql-advisory"
    with holder.lock.hold(name):
        with pytest.raises(RegistryLockTimeout):
            await waiter.promote(name, v1)
        other = f"{name}_other"  # locks are per model: another model is not blocked
        make_versions(store, other, GOOD)
        assert (await waiter.promote(other, 1)).promoted
    assert (await waiter.promote(name, v1)).promoted


_CHILD = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from pathlib import Path
    from backend.ml_engine.model_registry import ModelRegistry
    url, name, version, flags = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    reg = ModelRegistry(url)
    reg.client  # open the store before the start signal
    (flags / f"ready{version}").touch()
    while not (flags / "go").exists():
        time.sleep(0.005)
    d = asyncio.run(reg.promote(name, version, actor=f"process{os.getpid()}", force=True))
    print(d.promoted, d.from_version, d.to_version)
    """
)


def test_concurrent_promotions_processes(store, name, tmp_path):
    """A second process and this one promote at the same instant (one child keeps the test fast)."""
    v1, v_child, v_parent = make_versions(store, name, GOOD, GOOD, GOOD)
    reg = ModelRegistry(store.url)
    asyncio.run(reg.promote(name, v1, force=True))
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, store.url, name, str(v_child), str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / f"ready{v_child}").exists():
        assert time.monotonic() < deadline and child.poll() is None, child.communicate()
        time.sleep(0.005)
    (tmp_path / "go").touch()
    mine = asyncio.run(reg.promote(name, v_parent, actor="parent", force=True))
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert mine.promoted and out.split()[0] == "True", (out, err)
    events = asyncio.run(reg.history(name))
    assert len(events) == 3
    assert {e.actor.split("process")[0] for e in events[:2]} == {"parent", ""}
    assert_chain(events)
    assert production(store, name) == events[0].to_version


def test_sqlite_store_uses_file_lock(tmp_path, saved_models):
    url = f"sqlite:///{tmp_path}/mlflow.db"
    store = _make_store(url, tmp_path / "artifacts", saved_models)
    name = "sqlite_model"
    versions = make_versions(store, name, GOOD, GOOD, GOOD)
    reg = ModelRegistry(url)
    assert reg.lock.kind == "file"
    asyncio.run(reg.promote(name, versions[0]))
    barrier = threading.Barrier(2)

    def worker(v: int) -> None:
        barrier.wait()
        asyncio.run(ModelRegistry(url).promote(name, v, force=True))

    threads = [threading.Thread(target=worker, args=(v,)) for v in versions[1:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    events = asyncio.run(reg.history(name))
    assert len(events) == 3
    assert_chain(events)
    assert (tmp_path / ".locks" / "registry-sqlite_model.lock").exists()


# ---------------------------------------------------------------------------------------------
# alias-based loading
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def global_tracking_uri(store):
    """Point MLflow's process-wide URI at the test store (what the predictor does), then restore it."""
    import mlflow

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(resolve_tracking_uri(store.url))
    yield
    mlflow.set_tracking_uri(previous)


async def test_models_uri_with_production_alias_loads_promoted_version(store, registry, name, global_tracking_uri):
    import mlflow

    v1, v2 = make_versions(store, name, GOOD, {"test_accuracy": 0.7, "test_f1_macro": 0.6})
    await registry.promote(name, v1)
    await registry.promote(name, v2)
    assert int(store.client.get_model_version_by_alias(name, "production").version) == v2

    x = np.random.default_rng(1).random((5, 4), dtype=np.float32)
    pyfunc_model = mlflow.pyfunc.load_model(f"models:/{name}@production")
    assert np.asarray(pyfunc_model.predict(x)).shape == (5, 3)
    torch_model = mlflow.pytorch.load_model(f"models:/{name}@production")
    assert torch_model.out_features == 3

    await registry.rollback(name, reason="check alias follows")
    assert int(store.client.get_model_version_by_alias(name, "production").version) == v1
