"""Where the predictor's models come from: the model store, and a local cache of model folders.

URIs are resolved by the model store alone (`registry.ModelStore.resolve`, the one reading of a
model URI: aliases, versions, ``latest``, the stage names Production/Staging as aliases, model
ids, runs, local folders); its errors become the predictor's: `ModelNotFoundError` and its
subclasses `ModelNotAvailableError` (the API answers 404), anything else `PredictorError` (503),
with the store's message (what exists, what to do: "train and register one first", "promote a
version first"), which names the store with its password masked.

A version's folder is downloaded once, through `ModelStore.download`, into a local cache keyed by
store, model name, version and MLflow model id (``<cache_dir>/<store hash>/<name>/v<version>-<model
id>``); it is written to a temporary folder and renamed, so a half-downloaded folder is never used,
and two processes downloading the same version at once both end with one complete folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from ..registry import ModelNotFoundError, ModelRegistryError, ModelStore, ResolvedModel
from ._errors import ModelNotAvailableError, PredictorError

__all__ = ["ModelCache"]

logger = logging.getLogger("backend.ml_engine.predictor")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80] or "_"


class ModelCache:
    """Resolves model URIs through ``store`` and keeps the folders of the versions it loads under
    ``cache_dir`` (see the module docstring)."""

    def __init__(self, store: ModelStore, cache_dir: Path) -> None:
        self.store = store
        self.cache_dir = cache_dir
        self._store_key = hashlib.sha256(store.tracking_uri.encode()).hexdigest()[:12]

    def resolve(self, uri: str) -> ResolvedModel:
        """What ``uri`` names; `ModelNotAvailableError` when nothing is there, `PredictorError` when the
        store cannot answer (or refuses the URI)."""
        from mlflow.exceptions import MlflowException

        display = self.store.display_uri
        try:
            return self.store.resolve(uri)
        except ModelNotFoundError as exc:
            raise ModelNotAvailableError(str(exc)) from exc
        except ModelRegistryError as exc:  # a URI the store refuses (a stage other than Production/Staging)
            raise PredictorError(str(exc)) from exc
        except MlflowException as exc:
            raise PredictorError(f"model registry error for {uri} ({display}): {exc}") from exc
        except Exception as exc:
            raise PredictorError(
                f"cannot read {uri} from the model registry at {display}: {type(exc).__name__}: {exc}"
            ) from exc

    def folder(self, resolved: ResolvedModel, name: str) -> Path:
        """The model folder of ``resolved`` in the local cache (downloaded once, atomically); a local
        folder is used where it is. ``name``: the model name the folder is filed under."""
        if resolved.local:
            return Path(resolved.location)
        version = resolved.label
        key = (
            f"v{version}-{resolved.model_id}"
            if resolved.model_id and version != resolved.model_id
            else (resolved.model_id or hashlib.sha256(resolved.location.encode()).hexdigest()[:16])
        )
        target = self.cache_dir / self._store_key / _safe(name) / _safe(key)
        if (target / "MLmodel").is_file():
            logger.debug("model cache hit: %s", target)
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
        started = time.perf_counter()
        try:
            (tmp / "model").mkdir()
            try:
                local = self.store.download(resolved, tmp / "model")
            except Exception as exc:
                raise PredictorError(
                    f"{resolved.pinned_uri}: cannot download the model folder from "
                    f"{resolved.location} ({self.store.display_uri}): {type(exc).__name__}: {exc}"
                ) from exc
            if not (local / "MLmodel").is_file():
                raise ModelNotAvailableError(
                    f"{resolved.pinned_uri}: the artifact folder {resolved.location} has no MLmodel"
                )
            try:
                os.replace(local, target)
            except OSError:
                if not (target / "MLmodel").is_file():  # not a concurrent download that won the race
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        logger.info("Downloaded %s into %s (%.2f s)", resolved.pinned_uri, target, time.perf_counter() - started)
        return target
