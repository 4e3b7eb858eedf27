"""Sealed layer boundaries (issue 12 item 7), checked on the source: no function-level import of the package's
own modules unless it breaks a documented optional or start-up-cost dependency; world/ → data/ → models/ →
training/ → evaluation/ → serve/ import only downwards; the store's file names stay inside data/; no import
cycle among the package's modules."""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest

SRC = Path(__import__("astrobio").__file__).parent
# Layers, lowest first: a module of a layer may import from the layers before it, never from those after.
LAYERS = ("world", "data", "models", "training", "evaluation", "serve")
# A function-level import of the package is allowed when its line or the line above says why.
ALLOWED_REASONS = ("optional", "start-up", "startup")


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    """Dotted module name → (file, syntax tree) for every module of the package."""
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = ("astrobio",) + path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = (path, ast.parse(path.read_text(encoding="utf-8")))
    return out


MODULES = _modules()


def _imported(node: ast.Import | ast.ImportFrom, module: str) -> list[str]:
    """The astrobio modules an import statement names (relative imports resolved against `module`)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "astrobio"]
    base = node.module or ""
    if node.level:
        pkg = module.split(".")
        is_pkg = MODULES[module][0].name == "__init__.py"
        anchor = pkg if is_pkg else pkg[:-1]
        anchor = anchor[:len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    if base.split(".")[0] != "astrobio":
        return []
    # `from astrobio.world import stars` imports the submodule astrobio.world.stars
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports executed when the module is imported (module body, incl. if/try blocks; not TYPE_CHECKING)."""
    out = []

    def visit(body):
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                out.append(node)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for h in node.handlers:
                    visit(h.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return out


def _function_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports inside function bodies (each once, also inside nested functions), in line order."""
    found = {}
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    found[id(node)] = node
    return sorted(found.values(), key=lambda n: (n.lineno, n.col_offset))


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


@lru_cache(maxsize=1)
def function_level_package_imports() -> tuple[str, ...]:
    """`file:line module` for every function-level import of astrobio without a reason on its line or on the line
    above its block of consecutive imports."""
    found = []
    for module, (path, tree) in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        ends = {n.end_lineno: n.lineno for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))}
        for node in _function_imports(tree):
            if not _imported(node, module):
                continue
            first = node.lineno  # the reason may stand above a block of consecutive imports
            while first - 1 in ends:
                first = ends[first - 1]
            near = " ".join([lines[node.lineno - 1], lines[max(first - 2, 0)]]).lower()
            if "#" in near and any(r in near for r in ALLOWED_REASONS):
                continue
            found.append(f"{path.relative_to(SRC)}:{node.lineno} {', '.join(sorted(set(_imported(node, module))))}")
    return tuple(sorted(found))


@lru_cache(maxsize=1)
def layer_violations() -> tuple[str, ...]:
    """`file:line importer -> imported` for every import (any level) of a higher layer."""
    found = []
    for module, (path, tree) in MODULES.items():
        src = _layer(module)
        if src is None:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in sorted(set(_imported(node, module))):
                dst = _layer(target)
                if dst is not None and LAYERS.index(dst) > LAYERS.index(src):
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} {module} -> {target}")
    return tuple(sorted(found))


def import_cycles() -> list[list[str]]:
    """Cycles in the graph of module-level imports (what runs at import time), as module lists."""
    graph = {m: sorted({t for node in _top_level_imports(tree) for t in _imported(node, m)
                        if t in MODULES and t != m}) for m, (_, tree) in MODULES.items()}
    # A module importing `astrobio.x.y` also runs the package `astrobio.x`'s __init__ first; a module's own
    # packages are already being initialised when it runs, so an edge to one of them is no cycle.
    for m in list(graph):
        edges = set(graph[m]) | {p for t in graph[m] for p in _parents(t) if p in MODULES}
        graph[m] = sorted(edges - set(_parents(m)) - {m})
    return _cycles(graph)


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Cycles of a directed graph found by depth-first search (each as the path that closes it)."""
    cycles, state = [], {}

    def dfs(m, stack):
        state[m] = "open"
        stack.append(m)
        for t in graph[m]:
            if state.get(t) == "open":
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                dfs(t, stack)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            dfs(m, [])
    return cycles


def _parents(module: str) -> list[str]:
    """The packages above a module, below `astrobio` itself (whose __init__ every module runs)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def test_no_function_level_import_of_the_package_without_a_reason():
    assert function_level_package_imports() == ()


def test_layers_import_only_downwards():
    assert layer_violations() == ()


def store_name_users() -> list[str]:
    """Modules outside data/ that spell the store's index file name."""
    return sorted(p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")
                  if p.relative_to(SRC).parts[0] != "data" and "index.sqlite" in p.read_text(encoding="utf-8"))


def test_store_file_names_stay_inside_data():
    assert store_name_users() == []


def test_no_import_cycles():
    assert import_cycles() == []


def test_the_scanner_sees_what_it_should():
    # the rules above pass vacuously if the scan found nothing: check it on known facts and tiny sources
    assert "astrobio.data.storage" in MODULES and "astrobio.world.types" in MODULES
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": ["b"], "b": [], "c": ["a", "b"]}) == []
    tree = ast.parse("def f():\n    from astrobio.data import storage\n    import numpy\n")
    assert [_imported(n, "astrobio.world.x") for n in _function_imports(tree)] == [["astrobio.data.storage"], []]
    rel = ast.parse("from .types import PlanetRun\n").body[0]
    assert _imported(rel, "astrobio.world.simulate") == ["astrobio.world.types"]
