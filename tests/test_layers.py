"""The package's shape: layers without import circles, a core that names no plugin.

Static checks over flame_bench's own source (ast): every `import`/`from ... import` of a flame_bench module, lazy
ones inside functions included, is an edge; the graph must have no cycle. Plugins (tasks, recipes) are found by
the registry at run time; no module imports one, and below the experiments layer no module names a task or a
recipe (experiments such as the pilot study or the smoke gate run the systems of the study they reproduce).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "flame_bench"
PLUGIN_PACKAGES = ("flame_bench_tasks", "flame_bench_recipes", "flame_bench_user_tasks", "flame_bench_user_recipes",
                   "flame_bench_alignments", "tasks.", "alignments.")
TRAINER_KINDS = {"sft", "dpo"}  # trl's two trainers and the seed/DPO data keys share the names of two recipes
LAYERS = ("core", "engines", "scoring", "alignment", "world", "real", "reports", "experiments", "cli")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            edges[name].update(t for t in targets if t in mods and t != name)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_the_cycle_check_sees_a_cycle():  # the check above can fail
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_module_sits_in_a_layer():
    top = {n for n in _modules() if n.count(".") == 1}
    allowed = {f"flame_bench.{layer}" for layer in LAYERS} | {"flame_bench.__init__"}
    assert sorted(top - allowed) == [], "a flat module outside the layer folders"


def _strings_and_imports(path: Path) -> tuple[list[str], list[str]]:
    tree = ast.parse(path.read_text())
    imports, strings = [], []
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imports.append(node.module)
        elif isinstance(node, ast.Import):
            imports += [a.name for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            strings.append(node.value)
    return imports, strings


def test_no_module_imports_a_plugin():
    bad = []
    for name, path in _modules().items():
        imports, strings = _strings_and_imports(path)
        bad += [f"{name}: import {i}" for i in imports if i.startswith(PLUGIN_PACKAGES)]
        bad += [f"{name}: {s!r}" for s in strings if re.match(r"flame_bench_(user_)?(tasks|recipes)\.\w", s)]
    assert bad == []


@pytest.fixture(scope="module")
def plugin_names() -> set[str]:
    from flame_bench.core.registry import RECIPES, TASKS

    return set(TASKS.names()) | set(RECIPES.names())


def test_below_the_experiments_no_module_names_a_task_or_recipe(plugin_names: set[str]):
    bad = []
    for name, path in _modules().items():
        if name.startswith(("flame_bench.experiments", "flame_bench.cli")):
            continue
        _, strings = _strings_and_imports(path)
        bad += [f"{name}: {s!r}" for s in strings if s in plugin_names - TRAINER_KINDS]
    assert bad == [], "a core module names a plugin; declare what it needs on the Task or Recipe instead"
