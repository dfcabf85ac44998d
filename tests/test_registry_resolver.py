"""The one reader of model URIs (`ModelStore.resolve`): aliases, versions, latest, stages, runs:/ URIs
and logged-model ids, on a real SQLite store; the tracker's `load_model` reads the files it names."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_settings

from backend.ml_engine.mlflow_integration import get_mlflow_tracker
from backend.ml_engine.registry import (
    ModelNotFoundError,
    ModelRegistryError,
    ModelVersionNotFoundError,
    get_model_store,
    parse_model_uri,
)

NAME = "resolver_model"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three versions of one model, each a LoggedModel of its own run; v1 production, v2 staging."""
    tmp = tmp_path_factory.mktemp("resolver")
    settings = make_settings(tmp)
    tracker = get_mlflow_tracker(experiment_name="model_training", settings=settings)
    example = np.random.default_rng(0).random((4, 5), dtype=np.float32)
    logged = []
    for seed in range(3):
        torch.manual_seed(seed)
        model = torch.nn.Linear(5, 3)
        with tracker.run(run_name=f"v{seed + 1}") as run_id:
            uri = tracker.log_model(model, "model", input_example=example)
            version = tracker.register_model(uri, NAME, tags={"seed": str(seed)})
        logged.append(
            {
                "run_id": run_id,
                "model_id": uri.split("/")[-1],
                "version": int(version),
                "weight": model.weight.detach().clone(),
            }
        )
    s = get_model_store(settings)
    s.promote(NAME, 1, reason="first", force=True)
    s.set_alias(NAME, "staging", 2)
    yield {"store": s, "tracker": tracker, "logged": logged, "example": example}
    s.close()


@pytest.mark.parametrize(
    "uri, version",
    [
        (f"models:/{NAME}@production", 1),
        (f"models:/{NAME}@staging", 2),
        (f"models:/{NAME}/2", 2),
        (f"models:/{NAME}/latest", 3),
        (f"models:/{NAME}/LATEST", 3),
        # stages are never set here: Production / Staging (any case) are the aliases of the same name
        (f"models:/{NAME}/Production", 1),
        (f"models:/{NAME}/production", 1),
        (f"models:/{NAME}/STAGING", 2),
    ],
)
def test_registry_uris_name_one_version_and_its_logged_model(store, uri, version):
    resolved = store["store"].resolve(uri)
    expected = store["logged"][version - 1]
    assert (resolved.name, resolved.version) == (NAME, version)
    assert resolved.model_id == expected["model_id"] and resolved.run_id == expected["run_id"]
    assert resolved.pinned_uri == f"models:/{NAME}/{version}"
    # the tracker loads exactly those files
    loaded = store["tracker"].load_model(uri)
    assert torch.equal(loaded.weight, expected["weight"])


def test_logged_model_ids_and_run_uris_name_the_same_files(store):
    s, first = store["store"], store["logged"][0]
    by_id = s.resolve(f"models:/{first['model_id']}")
    by_run = s.resolve(f"runs:/{first['run_id']}/model")
    by_alias = s.resolve(f"models:/{NAME}@production")
    assert by_id.location == by_run.location == by_alias.location
    assert by_id.version is None and by_id.model_id == first["model_id"] and by_id.label == first["model_id"]
    assert by_run.model_id == first["model_id"]
    assert torch.equal(store["tracker"].load_model(f"runs:/{first['run_id']}/model").weight, first["weight"])


def test_what_is_not_there_is_said_plainly(store):
    s = store["store"]
    with pytest.raises(ModelVersionNotFoundError, match=r"has no alias 'champion'.*aliases: production=v1, staging=v2"):
        s.resolve(f"models:/{NAME}@champion")
    with pytest.raises(ModelVersionNotFoundError, match="has no version 9"):
        s.resolve(f"models:/{NAME}/9")
    with pytest.raises(ModelNotFoundError, match=r"'nope' does not exist.*train and register one first"):
        s.resolve("models:/nope@production")
    for stage in ("Archived", "None"):
        with pytest.raises(ModelRegistryError, match="stages are deprecated and not used here"):
            s.resolve(f"models:/{NAME}/{stage}")
    with pytest.raises(ModelNotFoundError, match="nor a folder with an MLmodel file"):
        s.resolve("/nonexistent/folder")


def test_parsing_is_pure_and_refuses_malformed_uris():
    assert parse_model_uri("models:/m@production").kind == "alias"
    assert parse_model_uri("models:/m/Staging").alias == "staging"
    assert parse_model_uri("models:/m-abc123").kind == "model_id"
    assert parse_model_uri("runs:/abc/model/sub").path == "model/sub"
    for bad in ("models:/", "models:/m/", "models:/@x", "models:/m/1/2", "runs:/"):
        with pytest.raises(ModelRegistryError):
            parse_model_uri(bad)
