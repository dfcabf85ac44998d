"""docs/design.md maps the packages as they are: every engine and service module is in its tree,
and every file or folder the tree names exists."""

from __future__ import annotations

import re

from conftest import REPO

DESIGN = REPO / "docs" / "design.md"
BACKEND = REPO / "backend"


def _tree_block() -> str:
    text = DESIGN.read_text()
    section = text.split("## The tree", 1)[1]
    return section.split("```", 2)[1]


def _names_in_tree() -> set[str]:
    names: set[str] = set()
    for line in _tree_block().splitlines():
        head = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]  # the names column, before the description
        names |= set(re.findall(r"[\w.]+(?:\.py|/)", head))
    return names


def test_every_engine_and_service_module_is_in_the_tree() -> None:
    names = _names_in_tree()
    missing = []
    for root in (BACKEND / "ml_engine", BACKEND / "services"):
        for path in sorted(root.rglob("*.py")):
            if path.name in ("__init__.py", "__main__.py") or "__pycache__" in path.parts:
                continue
            if path.name not in names:
                missing.append(str(path.relative_to(REPO)))
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
            if f"{folder.name}/" not in names:
                missing.append(f"{folder.relative_to(REPO)}/")
    assert not missing, f"docs/design.md does not show: {missing}"


def test_everything_the_tree_names_exists() -> None:
    existing = {p.name for p in BACKEND.rglob("*.py")} | {f"{p.name}/" for p in BACKEND.rglob("*") if p.is_dir()}
    existing.add("backend/")
    ghosts = sorted(n for n in _names_in_tree() if n not in existing)
    assert not ghosts, f"docs/design.md names what is not in the tree: {ghosts}"
