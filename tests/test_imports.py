"""Imports run one way: no cycle among coderapi's modules, and observability loads no web or database stack."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import coderapi

PACKAGE = pathlib.Path(coderapi.__file__).parent
Graph = dict[str, set[str]]


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(tree: ast.AST, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """The coderapi modules a module's import statements load (wherever they stand, for an import in a
    function runs too), except under `if TYPE_CHECKING:`, which never runs. `import a.b` and
    `from a.b import c` load the package `a` and `a.b`, and `a.b.c` when that is a module."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()

    def load(dotted: str) -> None:
        parts = dotted.split(".")
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            if prefix in modules:
                found.add(prefix)

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                load(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            load(source)
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:
                    found.add(f"{source}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    # A module's own packages are loaded before it, never because of it.
    return {m for m in found if m != name and not name.startswith(m + ".")}


def import_graph() -> Graph:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {
        name: imports_of(ast.parse(path.read_text(), str(path)), name, path.name == "__init__.py", modules)
        for name, path in paths.items()
    }


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle through each group of modules that import each other (Tarjan's strongly connected
    components), as the path `a, b, …, a`."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [cycle_in(graph, group) for group in groups]


def cycle_in(graph: Graph, group: set[str]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & group):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle in the group {sorted(group)}")


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    assert "coderapi.httpmw.environ" in graph["coderapi.httpmw.root"]  # from a package import a module
    assert "coderapi.httpmw" in graph["coderapi.logs"]  # ... which loads the package first
    assert "coderapi.database" not in graph["coderapi.database.store"]  # its own package: loaded already
    assert "coderapi.app" in graph["coderapi.serving"]  # an import inside a function
    assert "coderapi.buildinfo" not in graph["coderapi.runtime"]  # only under TYPE_CHECKING
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}) == [["a", "b", "c", "a"]]


def test_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_logs_loads_neither_flask_nor_sqlalchemy() -> None:
    code = "import sys, coderapi.logs; print(' '.join(m for m in ('flask', 'sqlalchemy') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == ""
