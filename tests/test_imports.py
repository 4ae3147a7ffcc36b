"""No import circle in ``services/`` and ``shared/``, and nothing there imports the runtime.

The graph is read from the source with ``ast``: every ``import`` and ``from ... import``,
also those inside functions (a lazy import is still a dependency), but not those under
``if TYPE_CHECKING:``, which never run. An edge goes to the module named; ``from package
import a, b`` goes to ``package.a`` and ``package.b`` when they are modules (as ``import
package.a`` does), else to ``package``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("services", "shared")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {
        module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
    }


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that the module ``name`` (at ``path``) imports when it runs."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(_without_type_checking(ast.parse(path.read_text(), str(path)))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names}
            found |= submodules if submodules <= known else {base}
    return {target for target in found if target in known and target != name}


def _without_type_checking(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        for field in ("body", "orelse"):
            statements = getattr(node, field, None)
            if isinstance(statements, list):
                kept = [s for s in statements if not (isinstance(s, ast.If) and _is_type_checking(s.test))]
                setattr(node, field, kept)
    return tree


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported(name, path, set(found)) for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` as the modules along it (the first repeated at the end), or None."""
    done: set[str] = set()
    for root in sorted(graph):
        if root in done:
            continue
        path, on_path = [root], {root}
        stack = [iter(sorted(graph[root]))]
        while stack:
            following = next(stack[-1], None)
            if following is None:  # every module this one imports is explored: no circle through it
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
            elif following in on_path:
                return [*path[path.index(following) :], following]
            elif following not in done:
                path.append(following)
                on_path.add(following)
                stack.append(iter(sorted(graph.get(following, ()))))
    return None


def test_no_module_of_services_or_shared_imports_itself_back_through_others():
    assert find_cycle(import_graph()) is None


def test_only_the_command_line_imports_the_runtime():
    importers = [name for name, targets in import_graph().items() if "services.runtime" in targets]

    assert importers == ["services.cli"]


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"a"}}, ["a", "a"]),
    ],
)
def test_the_cycle_finder_finds_exactly_the_circles(graph, cycle):
    assert find_cycle(graph) == cycle


def test_imports_inside_functions_and_relative_ones_are_edges_type_checking_ones_are_not(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from shared.errors import PinguraError\n"
        "if TYPE_CHECKING:\n    from shared.clock import now_ms\n"
        "def f():\n    from shared import settings\n    from . import events\n"
    )
    known = {"shared", "shared.settings", "shared.events", "shared.errors", "shared.clock", "shared.mod"}

    assert imported("shared.mod", source, known) == {"shared.settings", "shared.events", "shared.errors"}
