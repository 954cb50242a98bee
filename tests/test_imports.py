"""The package's import graph runs one way: no module imports, directly or through others, a
module that imports it back, and reading results loads no training code.

The graph is read from the source with ``ast``: every ``import`` and ``from ... import``,
at module level and inside functions, relative or absolute, between modules of ``prunecxr``.
A function-level import still ties two modules together (it only defers the cost), so it
counts; ``from pkg import name`` points at ``pkg.name`` when that is a module, else at ``pkg``;
importing ``pkg.mod`` from outside ``pkg`` also points at ``pkg`` (its ``__init__`` runs).
Imports under ``if TYPE_CHECKING:`` never run (they name a type for annotations) and do not
count.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import prunecxr
from checkout import checkout_env

PACKAGE = Path(prunecxr.__file__).parent


def _module_name(path: Path) -> str:
    parts = ("prunecxr", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
                getattr(node.test, "id", None) == "TYPE_CHECKING"
                or getattr(node.test, "attr", None) == "TYPE_CHECKING"):
            for statement in node.body:
                skipped |= {id(n) for n in ast.walk(statement)
                            if isinstance(n, (ast.Import, ast.ImportFrom))}
    return skipped


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def import_graph() -> dict[str, dict[str, int]]:
    """Module -> {imported module: line of the first such import}, within ``prunecxr``."""
    modules = _modules()
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        tree = ast.parse(path.read_text(), str(path))
        skipped = _type_checking_only(tree)
        for node in ast.walk(tree):
            targets: list[str] = []
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.append(sub if sub in modules else source)
            for target in targets:
                # importing a.b.c runs a.b's __init__ too, unless the importer lives in a.b
                parents = [target.rsplit(".", k)[0] for k in range(1, target.count("."))]
                for t in [target, *parents]:
                    if t in modules and t != name and not name.startswith(t + "."):
                        edges.setdefault(t, node.lineno)
        graph[name] = edges
    return graph


def components(graph: dict[str, dict[str, int]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm): the
    modules that import one another, directly or through others."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle (a list of modules, first repeated at the end) per strongly connected
    component: the shortest path from its first module back to itself."""
    cycles = []
    for component in components(graph):
        start = min(component)
        # breadth-first from start's successors back to start, inside the component
        paths = {w: [start, w] for w in sorted(graph[start]) if w in component}
        queue = list(paths)
        while start not in paths and queue:
            v = queue.pop(0)
            for w in sorted(graph[v]):
                if w in component and w not in paths:
                    paths[w] = paths[v] + [w]
                    queue.append(w)
        cycles.append(paths.get(start, [start, start]))
    return cycles


def _describe(cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    steps = [f"{a} (line {graph[a][b]}) -> {b}" for a, b in zip(cycle, cycle[1:])]
    return "\n    ".join(steps)


def test_the_graph_reader_sees_relative_absolute_and_function_level_imports():
    graph = import_graph()
    assert "prunecxr.io" in graph["prunecxr.store"]  # from . import io
    assert "prunecxr.data.base" in graph["prunecxr.data.phantom"]  # from .base import ...
    assert "prunecxr.io" in graph["prunecxr.data.base"]  # from .. import io
    assert "prunecxr.models" in graph["prunecxr.store"]  # inside a method


def test_imports_only_for_type_checking_do_not_count():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
                     "import typing\nif typing.TYPE_CHECKING:\n    import b\nelse:\n    import c\n")
    imports = sorted((n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))),
                     key=lambda n: n.lineno)
    skipped = _type_checking_only(tree)
    assert [id(n) in skipped for n in imports] == [False, True, False, True, False]


def test_find_cycles_reports_a_circle():
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b": 1}, "b": {}}) == []


def test_no_import_cycle():
    graph = import_graph()
    cycles = find_cycles(graph)
    message = "\n".join(
        f"import cycle among {sorted(next(k for k in components(graph) if c[0] in k))}:"
        f"\n    {_describe(c, graph)}" for c in cycles)
    print(message)
    assert not cycles, message


WRITERS = ("prunecxr.train", "prunecxr.sweep", "prunecxr.pipeline", "prunecxr.compress",
           "prunecxr.cluster")


@pytest.mark.parametrize("reader", ["prunecxr.store", "prunecxr.analysis", "prunecxr.plots"])
def test_reading_results_loads_no_training_code(reader):
    """``prunecxr.store`` reads a results folder through :mod:`prunecxr.layout`, and the
    analysis and figures read the store; importing them must not load the writers (training,
    the sweep, the pipeline, the compression methods), checked in a fresh interpreter."""
    code = (f"import sys, {reader}; print(' '.join(sorted(m for m in sys.modules "
            f"if m in {set(WRITERS)!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=checkout_env())
    assert out.stdout.split() == [], f"import {reader} loaded {out.stdout.split()}"
