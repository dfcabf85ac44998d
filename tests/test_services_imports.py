"""The service layer's imports: no cycle among ``backend/services`` modules (module-level and
function-level imports alike), and every module imports first, in a fresh interpreter, whatever
order the others come in."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SERVICES = REPO / "backend" / "services"
PACKAGE = "backend.services"
MODULES = sorted(p.stem for p in SERVICES.glob("*.py"))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that runs (inside functions too), not those under ``if TYPE_CHECKING:``."""
    out: list[ast.Import | ast.ImportFrom] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    walk(other)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                out.append(child)
            walk(child)

    walk(tree)
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the services modules it imports (``__init__`` for the package itself)."""
    graph: dict[str, set[str]] = {}
    for name in MODULES:
        edges: set[str] = set()
        for node in _imports(ast.parse((SERVICES / f"{name}.py").read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif node.level == 1:  # from .x import y / from . import x
                base = f"{PACKAGE}.{node.module}" if node.module else PACKAGE
                targets = [base] if node.module else [f"{PACKAGE}.{a.name}" for a in node.names]
            elif node.level == 0 and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                pytest.fail(f"{name}.py: relative import of level {node.level} leaves the package")
            for target in targets:
                if target == PACKAGE:
                    edges.add("__init__")
                elif target.startswith(PACKAGE + "."):
                    module = target[len(PACKAGE) + 1 :].split(".", 1)[0]
                    if module in MODULES:
                        edges.add(module)
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_graph_walker_sees_function_level_imports_and_finds_cycles() -> None:
    graph = import_graph()
    assert {"job_store", "reaper", "job_process"} <= graph["job_runner"]
    assert {"job_store", "data_sources", "retraining"} <= graph["job_process"]
    assert {"reaper", "data_sources"} <= graph["jobs"] and "job_runner" not in graph["jobs"]
    assert "models" in graph["health"] and "__init__" not in graph["models"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("def f():\n    from .jobs import x\nif TYPE_CHECKING:\n    from .models import y\n")
    assert [n.module for n in _imports(tree)] == ["jobs"]


def test_the_services_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert set(graph) == set(MODULES) and len(MODULES) >= 19
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


@pytest.mark.parametrize("first", MODULES)
def test_each_module_imports_first_in_a_fresh_interpreter(first: str) -> None:
    """``first`` imported before anything else of the package, then the rest forwards and backwards."""
    rest = [m for m in MODULES if m != first]
    names = [first, *rest, *reversed(rest)]
    code = "import importlib\n" + "".join(
        f"importlib.import_module({(PACKAGE if m == '__init__' else f'{PACKAGE}.{m}')!r})\n" for m in names
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
