"""Registries for the small, numerous units: tasks, scorers, judges, sentence splitters, retrievers, models.

Units register at their definition site with a decorator; `load_builtin()` imports every built-in unit
(the `flame_bench` modules and the task plugins under the top-level `tasks/` folder) and is what the CLI, the
evaluator and the tests call. Unknown names fail with near-match suggestions.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

from flame_bench.errors import unknown_name

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[1]
TASKS_DIR = REPO_ROOT / "tasks"
RECIPES_DIR = REPO_ROOT / "alignments" / "recipes"


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            key = name or getattr(obj, "name", None) or obj.__name__  # type: ignore[attr-defined]
            if key in self._items and self._items[key] is not obj:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._items[key] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        load_builtin()
        if name not in self._items:
            raise unknown_name(self.kind, name, self._items)
        return self._items[name]

    def names(self) -> list[str]:
        load_builtin()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        load_builtin()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


TASKS: Registry = Registry("task")
SCORERS: Registry = Registry("scorer")
JUDGES: Registry = Registry("judge")
SPLITTERS: Registry = Registry("sentence splitter")
RETRIEVERS: Registry = Registry("retriever")
MODELS: Registry = Registry("model")
RECIPES: Registry = Registry("recipe")
CLASSIFIERS: Registry = Registry("instruction classifier")

_BUILTIN_MODULES: tuple[str, ...] = (
    "flame_bench.models",
    "flame_bench.scoring.sentences",
    "flame_bench.scoring.retrieval",
    "flame_bench.scoring.factscore",
    "flame_bench.scoring.judges",
    "flame_bench.llm.components",
    "flame_bench.alignment",
)
_loaded = False


def load_builtin() -> None:
    """Import every built-in unit once: flame_bench's own modules, each `tasks/<name>/task.py` and each
    `alignments/recipes/<name>.py`."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)
    plugins = [(f"flame_bench_tasks.{p.parent.name}", p) for p in sorted(TASKS_DIR.glob("*/task.py"))]
    plugins += [(f"flame_bench_recipes.{p.stem}", p) for p in sorted(RECIPES_DIR.glob("*.py"))]
    for mod_name, path in plugins:
        if mod_name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(mod_name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
