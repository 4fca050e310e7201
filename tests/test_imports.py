"""The import graph of archsim, mappers and dataflow: layers, no cycles, no private names.

Every import counts, including those inside functions (a lazy import that closes a cycle is
still a cycle in the design); only imports under ``if TYPE_CHECKING:`` are left out. The rules:

- no cycle among modules;
- ``dataflow`` (the workload language) imports neither ``archsim`` nor ``mappers``;
- within ``archsim`` only the entry points (``archsim.api``, ``archsim.dispatch``,
  ``archsim.cli.*``) import ``mappers``: the families, unit models and experiments evaluate a
  mapping, they never search one;
- ``mappers`` never imports those entry points;
- no module imports another's private (``_name``) function, class or constant.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("archsim", "mappers", "dataflow")
ENTRY_POINTS = ("archsim.api", "archsim.dispatch", "archsim.cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES
            for p in sorted((ROOT / package).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path):
    """Yield (imported module, imported name or None, line) for every import in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def walk(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    yield from visit(other)
            else:
                yield from visit(child)

    def visit(node):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                if node.level > 1:
                    parts = parts[:-(node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                yield base, alias.name, node.lineno
        else:
            yield from walk(node)

    yield from walk(ast.parse(path.read_text(encoding="utf-8")))


def _graph():
    modules = _modules()
    graph = nx.DiGraph()
    private = []
    for name, path in modules.items():
        graph.add_node(name)
        for base, imported, line in _imports(name, path):
            if imported and f"{base}.{imported}" in modules:     # a submodule
                target = f"{base}.{imported}"
            else:
                target = base
                while target and target not in modules:
                    target = target.rpartition(".")[0]
            if target and target != name:
                graph.add_edge(name, target, line=line)
            if imported and imported.startswith("_") and not imported.startswith("__") and \
                    base.split(".")[0] in PACKAGES and f"{base}.{imported}" not in modules:
                private.append(f"{name}:{line} imports {base}.{imported}")
    return graph, private


@pytest.fixture(scope="module")
def graph():
    return _graph()


def _edges(graph, source: str, target: str):
    def under(module, prefix):
        return module == prefix or module.startswith(prefix + ".")
    return [f"{a} -> {b} (line {graph[a][b]['line']})" for a, b in graph.edges
            if under(a, source) and under(b, target)]


def test_no_import_cycles(graph):
    g, _ = graph
    cycles = []
    for component in nx.strongly_connected_components(g):
        if len(component) > 1:
            inner = [f"{a} -> {b} (line {g[a][b]['line']})" for a in sorted(component)
                     for b in g.successors(a) if b in component]
            cycles.append("; ".join(inner))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_dataflow_imports_neither_archsim_nor_mappers(graph):
    g, _ = graph
    assert not _edges(g, "dataflow", "archsim") + _edges(g, "dataflow", "mappers")


def test_only_entry_points_import_mappers(graph):
    g, _ = graph
    bad = [e for e in _edges(g, "archsim", "mappers")
           if not any(e == p or e.startswith((p + " ", p + ".")) for p in ENTRY_POINTS)]
    assert not bad, "archsim modules other than the entry points import mappers:\n" + \
        "\n".join(bad)
    # and the graph really has the edges this rule is about
    assert _edges(g, "archsim.dispatch", "mappers")


def test_mappers_do_not_import_entry_points(graph):
    g, _ = graph
    bad = [e for p in ENTRY_POINTS for e in _edges(g, "mappers", p)]
    assert not bad, "\n".join(bad)


def test_no_private_names_across_modules(graph):
    _, private = graph
    assert not private, "\n".join(private)


def test_checker_sees_lazy_imports_and_skips_type_checking(tmp_path):
    """The rules above are only as good as the walker: a lazy import is an edge, an import
    under TYPE_CHECKING is not, and a private name is reported."""
    path = tmp_path / "example.py"
    path.write_text("from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from archsim.api import simulate\n"
                    "def f():\n    from .peak import step_windows\n"
                    "    from mappers.ilp import _var\n")
    found = list(_imports("mappers.example", path))
    assert ("mappers.peak", "step_windows", 5) in found
    assert ("mappers.ilp", "_var", 6) in found
    assert not any(base == "archsim.api" for base, _, _ in found)
