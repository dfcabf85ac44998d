""".env.example lists every setting: each field of `Settings` (backend/ml_engine/config.py) and of
`ServiceSettings` (backend/services/settings.py) by its environment name, with a one-line meaning
on the comment line above it. A field added without its line here fails this test.

The names are read from the fields' validation aliases (the first choice is the variable's name:
``MLFLOW_TRACKING_URI``, ``ML_WINDOW``...), so nothing here needs editing when a field is added.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from backend.ml_engine.config import Settings
from backend.services.settings import ServiceSettings

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / ".env.example"
#: ``NAME=value`` or ``# NAME=value`` (a commented-out default or alternative).
ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=")


def env_name(name: str, field: FieldInfo) -> str:
    """The environment variable of a settings field: the first alias choice (or the field name)."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        return first if isinstance(first, str) else str(first)
    if isinstance(alias, str):
        return alias
    prefix = (Settings.model_config.get("env_prefix") or "").upper()
    return f"{prefix}{name.upper()}"


def settings_env_names() -> dict[str, str]:
    """{environment name: field name} over Settings and ServiceSettings."""
    out: dict[str, str] = {}
    for cls in (Settings, ServiceSettings):
        for name, field in cls.model_fields.items():
            out[env_name(name, field)] = name
    return out


def example_entries() -> dict[str, list[int]]:
    """{variable: line indexes} of every assignment in .env.example, commented out or not."""
    entries: dict[str, list[int]] = {}
    for i, line in enumerate(EXAMPLE.read_text().splitlines()):
        m = ASSIGNMENT.match(line)
        if m:
            entries.setdefault(m.group(1), []).append(i)
    return entries


def test_the_names_are_read_from_the_settings() -> None:
    names = settings_env_names()
    # a sanity check of the reading itself: the guide's names and a service setting are there
    assert {"MLFLOW_TRACKING_URI", "ML_WINDOW", "ML_API_TOKEN", "ML_LOG_LEVEL"} <= set(names)
    assert len(names) == len(ServiceSettings.model_fields)


def test_every_setting_is_in_env_example() -> None:
    missing = sorted(set(settings_env_names()) - set(example_entries()))
    assert not missing, f".env.example lacks {missing}: add each with a one-line meaning above it"


def test_env_example_lists_no_unknown_variable() -> None:
    unknown = sorted(set(example_entries()) - set(settings_env_names()))
    assert not unknown, f".env.example lists variables no settings field reads: {unknown}"


def test_every_setting_has_a_meaning_above_it() -> None:
    lines = EXAMPLE.read_text().splitlines()
    for var, indexes in example_entries().items():
        first = indexes[0]
        above = lines[first - 1] if first else ""
        assert above.startswith("# ") and not ASSIGNMENT.match(above) and not above.startswith("# ---"), (
            f"{var}: the line above its first entry should say what it means, got {above!r}"
        )


def test_env_example_as_is_is_a_valid_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in settings_env_names():
        monkeypatch.delenv(var, raising=False)
    settings = ServiceSettings(_env_file=str(EXAMPLE))  # type: ignore[call-arg]
    assert settings.mlflow_tracking_uri == "sqlite:///mlruns/mlflow.db"
    assert settings.log_level == "INFO"
