"""The one reading of a model URI: which registered version, which MLflow model, which files.

Serving (the Predictor, the pyfunc), loading (``MLflowTracker.load_model``), retraining and the
services all resolve through :meth:`ModelStore.resolve`, so the same URI always names the same
files. The rules:

==================================  ============================================================
URI                                 resolves to
==================================  ============================================================
``models:/<name>@<alias>``          the version the alias points at (``production``: the one truth)
``models:/<name>/<n>``              version ``n``
``models:/<name>/latest``           the highest version number (MLflow's meaning of ``latest``)
``models:/<name>/<Stage>``          stages are deprecated (MLflow 2.9) and never set here; the
                                    stage names ``Production`` and ``Staging`` (any case) mean
                                    the alias of the same name in lower case, so they agree with
                                    the alias; any other stage (``Archived``, ``None``) is refused
``models:/<model_id>``              that MLflow 3 LoggedModel (no registry version)
``runs:/<run_id>/<name>[/<path>]``  the run's logged model named ``name`` (the newest, by step then
                                    creation); a run without one: its artifact folder ``<name>``
a local folder holding ``MLmodel``  that folder
==================================  ============================================================

For a registry version the files are those of its LoggedModel (``model_id``: the version's own
field, the ``model_id`` tag, or a ``models:/<id>`` source); a version registered from a plain
folder (no LoggedModel) is read from MLflow's download URI for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ._entities import ALIAS_PRODUCTION, ALIAS_STAGING
from ._errors import ModelRegistryError

__all__ = ["ModelUri", "ResolvedModel", "parse_model_uri"]

#: Stage names (deprecated in MLflow) that mean the alias of the same name.
STAGE_ALIASES = {"production": ALIAS_PRODUCTION, "staging": ALIAS_STAGING}

UriKind = Literal["alias", "version", "latest", "model_id", "run", "local"]


@dataclass(frozen=True)
class ModelUri:
    """A parsed model URI (no store consulted)."""

    uri: str
    kind: UriKind
    name: str | None = None
    version: int | None = None
    alias: str | None = None
    model_id: str | None = None
    run_id: str | None = None
    path: str = ""
    """``runs:/``: the artifact path after the run id (``model`` by default)."""


def parse_model_uri(uri: str) -> ModelUri:
    """Parse ``uri`` by the rules of the module docstring; ``ModelRegistryError`` when malformed
    or naming a stage other than Production/Staging."""
    text = str(uri)
    if text.startswith("models:"):
        rest = text[len("models:") :].lstrip("/")
        if not rest:
            raise ModelRegistryError(
                f"malformed model URI {uri!r}: expected models:/<name>@<alias> or models:/<name>/<version>"
            )
        if "/" in rest:
            name, suffix = rest.split("/", 1)
            if not name or not suffix or "/" in suffix:
                raise ModelRegistryError(f"malformed model URI {uri!r}")
            if suffix.isdigit():
                return ModelUri(text, "version", name=name, version=int(suffix))
            if suffix.lower() == "latest":
                return ModelUri(text, "latest", name=name)
            alias = STAGE_ALIASES.get(suffix.lower())
            if alias is None:
                raise ModelRegistryError(
                    f"{uri}: model stages are deprecated and not used here; use a version number, 'latest' or an "
                    f"alias (models:/{name}@production)"
                )
            return ModelUri(text, "alias", name=name, alias=alias)
        if "@" in rest:
            name, alias = rest.split("@", 1)
            if not name or not alias:
                raise ModelRegistryError(f"malformed model URI {uri!r}")
            return ModelUri(text, "alias", name=name, alias=alias)
        return ModelUri(text, "model_id", model_id=rest)
    if text.startswith("runs:"):
        rest = text[len("runs:") :].lstrip("/")
        run_id, _, path = rest.partition("/")
        if not run_id:
            raise ModelRegistryError(f"malformed run URI {uri!r}: expected runs:/<run_id>/<model name>")
        return ModelUri(text, "run", run_id=run_id, path=path.strip("/") or "model")
    return ModelUri(text, "local", path=str(Path(text).expanduser()))


@dataclass(frozen=True)
class ResolvedModel:
    """What a URI names: the registry version (when it is one), the MLflow model and its files."""

    uri: str
    """The URI as asked."""
    location: str
    """Artifact URI (or local path) of the MLflow model folder."""
    name: str | None = None
    """Registered model name; None for a LoggedModel, a run's model or a folder outside the registry."""
    version: int | None = None
    model_id: str | None = None
    run_id: str | None = None
    local: bool = False

    @property
    def pinned_uri(self) -> str:
        """A URI naming exactly these files whatever moves later (``models:/name/7``)."""
        if self.name is not None and self.version is not None:
            return f"models:/{self.name}/{self.version}"
        if self.model_id:
            return f"models:/{self.model_id}"
        return self.location

    @property
    def label(self) -> str:
        """The version as people say it: ``"7"``; the model id or ``"local"`` outside the registry."""
        if self.version is not None:
            return str(self.version)
        return self.model_id or "local"
