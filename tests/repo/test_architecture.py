"""The layer rules of docs/architecture.md, checked from the source with ast.

Every import counts, the ones inside functions too: a function-level import can hide a circle from
the interpreter but not from this graph.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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


#: The top layer (CLI -> stages -> library), not part of the library: the command and
#: ``python -m asymcli``, how the Snakemake rules run it.
TOP = ("asymcli.cli", "asymcli.__main__")


def test_library_never_imports_upward():
    for name, path in library_modules().items():
        if name in TOP:
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


MAX_LINES = 600  # issue 19: past this a module has always turned out to mix jobs


def test_no_library_module_over_600_lines():
    long = {name: n for name, path in library_modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"


def results_folders() -> set[str]:
    """The first path component of every artifact path Layout builds (runs, evals, agg, ...)."""
    from asymcli.pipeline.layout import Layout

    root = Path("/results")
    layout = Layout(root)
    found = set()
    for name in dir(Layout):
        if name.startswith("_") or name == "of":
            continue
        value = getattr(layout, name)
        if callable(value):
            try:
                value = value("x")
            except TypeError:
                value = value()
        if isinstance(value, Path) and value != root and value.is_relative_to(root):
            found.add(value.relative_to(root).parts[0])
    return found


def hand_built_paths(source: str, folders: set[str]) -> list[str]:
    """Where ``source`` builds a path under results_dir by hand: reads ``.results_dir``, or joins a
    string naming one of the results folders (``root / "runs"``, ``f"{root}/evals/..."``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == "results_dir":
            found.append((node.lineno, ".results_dir"))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            right = node.right
            if isinstance(right, ast.Constant) and isinstance(right.value, str) \
                    and right.value.strip("/").split("/")[0] in folders:
                found.append((node.lineno, f"/ {right.value!r}"))
        elif isinstance(node, ast.JoinedStr):
            for part in node.values:
                if isinstance(part, ast.Constant) and any(f"/{d}/" in f"{part.value}/" for d in folders):
                    found.append((node.lineno, f"f-string {part.value!r}"))
    return [f"line {n}: {what}" for n, what in sorted(found)]


def test_stages_take_results_paths_from_layout():
    folders = results_folders()
    assert {"runs", "evals", "agg", "report"} <= folders
    assert hand_built_paths('root = cfg.results_dir\np = root / "runs" / rid\nq = f"{root}/evals/x"\n', folders) \
        == ["line 1: .results_dir", "line 2: / 'runs'", "line 3: f-string '/evals/x'"]
    for path in sorted((ROOT / "stages").glob("*.py")):
        bad = hand_built_paths(path.read_text(), folders)
        assert not bad, f"{path.name} builds results paths by hand (use asymcli.pipeline.layout.Layout): {bad}"


RUN_FOLDER_FILES = ("run.json", "metrics.parquet", "checkpoints", "samples.parquet", "parts")


def test_run_folder_files_are_named_once():
    # The trainer cannot import the pipeline: it names a run folder's files with the constants of
    # asymcli.artifacts that Layout builds its paths from, as does every stage handed a run folder.
    for path in sorted([*(LIBRARY / "training").glob("*.py"), *(LIBRARY / "evaluation").glob("*.py"),
                        *(LIBRARY / "pipeline").glob("*.py"), *(ROOT / "stages").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant):
                assert node.right.value not in RUN_FOLDER_FILES, \
                    f"{path.name} line {node.lineno}: / {node.right.value!r} (use asymcli.artifacts' constant)"


def test_snakemake_rules_take_paths_from_layout():
    # Every path of a rule comes from Layout through common.smk's path(): no hand-written
    # "{R}/runs/..." strings (results folders named in a string, outside comments).
    folders = results_folders()
    for path in [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            bad = [d for d in folders if f"/{d}/" in code] + (["{R}"] if "{R}" in code else [])
            assert not bad, f"{path.name} line {n} builds a results path by hand: {line.strip()}"


def test_run_ids_are_parsed_only_by_parse_run_id():
    # `startswith("asym_")` on a run id misses what parse_run_id knows (asym_adaptive, base runs).
    for path in sorted([*LIBRARY.rglob("*.py"), *(ROOT / "stages").glob("*.py")]):
        if "integrations" in path.parts or path.name == "methods.py":  # verl's asym_* are config keys
            continue
        assert 'startswith("asym_")' not in path.read_text(), f"{path}: parse run ids with parse_run_id"


#: The library's layers, top first (docs/architecture.md): a wing imports only wings of a lower
#: layer (and the root); wings of one layer import none of each other.
LAYERS = (
    ("analysis", "integrations"),
    ("pipeline",),
    ("training", "evaluation"),
    ("sampling", "embedded"),
    ("engines", "grading", "algorithm"),
    ("root",),
)
#: The one declared exception: config defers torch to a function that asks the estimator
#: registry about a name no method uses.
UPWARD_OK = {("asymcli.config", "asymcli.algorithm.advantages"), ("asymcli.config", "asymcli.algorithm")}


def wing_of(module: str) -> str:
    """``asymcli.training.trainer`` -> ``training``; the root's modules (config, artifacts, ...) -> ``root``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (LIBRARY / parts[1]).is_dir() else "root"


def test_every_wing_has_a_layer():
    wings = {wing_of(m) for m in library_modules() if m not in ("asymcli", *TOP)}
    layered = {w for layer in LAYERS for w in layer}
    assert wings == layered, f"wings without a layer: {sorted(wings - layered)}; gone: {sorted(layered - wings)}"


def test_no_wing_imports_one_above_it_or_beside_it():
    rank = {w: i for i, layer in enumerate(LAYERS) for w in layer}
    graph = library_graph()
    bad = []
    for name, deps in graph.items():
        if name in ("asymcli", *TOP):
            continue
        for dep in deps:
            a, b = wing_of(name), wing_of(dep)
            if dep != "asymcli" and a != b and rank[b] <= rank[a] and (name, dep) not in UPWARD_OK:
                bad.append(f"{name} ({a}) -> {dep} ({b})")
    assert not bad, "imports up or sideways between wings:\n" + "\n".join(sorted(bad))


def test_no_cycle_between_wings():
    graph = library_graph()
    wings: dict[str, set[str]] = {}
    for name, deps in graph.items():
        if name in ("asymcli", *TOP):
            continue
        a = wing_of(name)
        wings.setdefault(a, set()).update(
            wing_of(d) for d in deps if d != "asymcli" and wing_of(d) != a and (name, d) not in UPWARD_OK)
    for deps in wings.values():
        deps &= wings.keys()
    cycle = find_cycle(wings)
    assert cycle is None, "wing circle: " + " -> ".join(cycle)
