"""The layer rules of docs/architecture.md, checked from the source with ast.

Every import counts, the ones inside functions too: a function-level import can hide a circle from
the interpreter but not from this graph.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "asymcli"

# Modules whose import needs an optional extra; they are still parsed for the graph.
OPTIONAL = {
    "asymcli.integrations.trl": "trl",
    "asymcli.integrations.verl": "verl",
    "asymcli.engines.vllm_engine": "vllm",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def library_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(LIBRARY.rglob("*.py"))}


def imports_of(name: str, path: Path, modules: dict[str, Path] | None = None) -> set[str]:
    """Every module `path` imports (absolute names), at any depth of the file.

    `from pkg import a` names pkg.a when that is one of `modules`, else pkg (a is a name in it).
    """
    modules = modules if modules is not None else library_modules()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
    return found


def library_graph() -> dict[str, set[str]]:
    """module -> the library modules it imports (a name inside a module maps to the module)."""
    mods = library_modules()
    graph = {}
    for name, path in mods.items():
        deps = set()
        for target in imports_of(name, path, mods):
            while target and target not in mods:
                target = target.rpartition(".")[0]
            if target and target != name:
                deps.add(target)
            # importing a.b.c runs a/__init__ and a/b/__init__ first (unless the importer is inside them)
            while "." in target:
                target = target.rpartition(".")[0]
                if target in mods and target != name and not name.startswith(target + "."):
                    deps.add(target)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph[node]):
            if colour[nxt] == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour[nxt] == WHITE and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        colour[node] = BLACK
        return None

    for node in sorted(graph):
        if colour[node] == WHITE and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_in_the_library():
    cycle = find_cycle(library_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_library_never_imports_upward():
    # asymcli/cli.py is the top layer (CLI -> stages -> library), not part of the library
    for name, path in library_modules().items():
        if name == "asymcli.cli":
            continue
        bad = {t for t in imports_of(name, path)
               if t.split(".")[0] in ("stages", "snakemake") or t == "asymcli.cli"}
        assert not bad, f"{name} imports {sorted(bad)}"


def test_algorithm_is_pure():
    allowed = {"torch", "numpy", "__future__", "asymcli"} | set(__import__("sys").stdlib_module_names)
    for name, path in library_modules().items():
        if not name.startswith("asymcli.algorithm"):
            continue
        for target in imports_of(name, path):
            top = target.split(".")[0]
            assert top in allowed, f"{name} imports {target}"
            if top == "asymcli":
                assert target.startswith("asymcli.algorithm"), f"{name} imports {target}"


@pytest.mark.parametrize("name", sorted(library_modules()))
def test_every_module_imports(name):
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name])
    importlib.import_module(name)
