"""Datasets as MLflow run inputs: a source for URIs MLflow cannot resolve, a digest over the whole frame."""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlflow.data.dataset_source import DatasetSource
from mlflow.entities import DatasetInput, InputTag
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT
from mlflow.utils.validation import MAX_DATASET_DIGEST_SIZE

from .stores import mask_uri

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["UriDatasetSource", "dataset_digest", "dataset_input"]


class UriDatasetSource(DatasetSource):
    """A dataset source that is just a URI-like string MLflow has no resolver for
    (``postgresql://host/db#table``, ``ccxt:binance``)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    @staticmethod
    def _get_source_type() -> str:
        return "uri"

    def load(self, **kwargs: Any) -> str:
        return self.uri

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False  # only built explicitly, never claims a string from MLflow's resolvers

    @classmethod
    def _resolve(cls, raw_source: Any) -> UriDatasetSource:
        return cls(str(raw_source))

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> UriDatasetSource:
        return cls(str(source_dict["uri"]))


_source_registered = False
_source_lock = threading.Lock()


def _register_uri_source() -> None:
    global _source_registered
    with _source_lock:
        if not _source_registered:
            from mlflow.data.dataset_source_registry import register_dataset_source

            # MLflow's registry stores source classes; its type hint says instance.
            register_dataset_source(UriDatasetSource)  # type: ignore[arg-type]
            _source_registered = True


def _resolve_source(raw: str) -> DatasetSource | None:
    """MLflow's dataset source for ``raw`` (a path, s3://, http://...), or None if none fits.

    Same choice as ``mlflow.data.dataset_source_registry.resolve_dataset_source`` (the last
    registered match), without its warning about local paths, which MLflow 3.17 registers twice.
    """
    from mlflow.data.dataset_source_registry import _dataset_source_registry

    for cls in reversed(_dataset_source_registry.sources):
        try:
            if cls._can_resolve(raw):
                source: DatasetSource = cls._resolve(raw)
                return source
        except Exception:  # noqa: BLE001 - a source that cannot decide does not fit
            continue
    return None


def dataset_digest(frame: pd.DataFrame) -> str:
    """A 32-character digest over the whole frame: values (all rows, datetime columns included),
    index, column names and dtypes. MLflow's default hashes only the first 10,000 rows."""
    import pandas as pd

    h = hashlib.blake2b(digest_size=16)
    h.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    digest = h.hexdigest()
    assert len(digest) <= MAX_DATASET_DIGEST_SIZE
    return digest


def dataset_input(
    dataset: Any,
    *,
    name: str | None = None,
    source: str | None = None,
    targets: str | None = None,
    context: str = "training",
    tags: Mapping[str, str] | None = None,
    digest: str | None = None,
) -> DatasetInput:
    """A run input for ``dataset`` (a pandas DataFrame, wrapped with ``mlflow.data.from_pandas`` and a
    digest over the whole frame, or an ``mlflow.data.Dataset``); ``source`` a path or URI (password
    masked); ``context`` training / validation / testing."""
    import pandas as pd
    from mlflow.data.pandas_dataset import from_pandas

    if isinstance(dataset, pd.DataFrame):
        digest = digest or dataset_digest(dataset)
        src: Any = None
        if source is not None:
            masked = mask_uri(str(source))
            src = _resolve_source(masked)
            if src is None:
                _register_uri_source()
                src = UriDatasetSource(masked)
        with warnings.catch_warnings():
            # MLflow hints that integer columns cannot hold NaN; candle frames never hold NaN.
            warnings.simplefilter("ignore", UserWarning)
            ds = from_pandas(dataset, source=src, name=name, targets=targets, digest=digest[:MAX_DATASET_DIGEST_SIZE])
    else:
        ds = dataset
    input_tags = [InputTag(MLFLOW_DATASET_CONTEXT, context)] if context else []
    input_tags += [InputTag(str(k), str(v)) for k, v in (tags or {}).items()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # schema inference hint, see above
        entity = ds._to_mlflow_entity()
    return DatasetInput(dataset=entity, tags=input_tags)
