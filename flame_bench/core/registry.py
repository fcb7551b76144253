"""Registries for the small, numerous units: tasks, scorers, judges, sentence splitters, retrievers, models.

Units register at their definition site with a decorator; `load_builtin()` imports every built-in unit
(the `flame_bench` modules, the task plugins under the top-level `tasks/` folder, the recipes under
`alignments/recipes/`) plus the task plugins of every folder in `FLAME_BENCH_TASK_PATH` (`:`-separated; each
`<folder>/<task>/task.py`, as lm-eval's `--include_path`) and the recipe modules of every folder in
`FLAME_BENCH_RECIPE_PATH` (`<folder>/<recipe>.py`). It is what the CLI, the evaluator and the tests call.
Unknown names fail with near-match suggestions.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

from flame_bench.core import shipped
from flame_bench.core.errors import unknown_name

T = TypeVar("T")


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
SOURCE_KINDS: Registry = Registry("source kind")  # spec kind -> open(spec) -> Source (reopening a run's source)

_BUILTIN_MODULES: tuple[str, ...] = (
    "flame_bench.engines.models",
    "flame_bench.scoring.sentences",
    "flame_bench.scoring.retrieval",
    "flame_bench.world.factscore",
    "flame_bench.world.judge",
    "flame_bench.world.source",
    "flame_bench.real.source",
    "flame_bench.real.components",
)
_loaded = False
_task_path: tuple[str, str] = ("", "")


def _import_plugin(mod_name: str, path: Path) -> None:
    if mod_name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(mod_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[mod_name]
        raise


def load_builtin() -> None:
    """Import every built-in unit once (flame_bench's own modules, each `tasks/<name>/task.py`, each
    `alignments/recipes/<name>.py`), and the plugins of `FLAME_BENCH_TASK_PATH` / `FLAME_BENCH_RECIPE_PATH`
    whenever they change."""
    global _loaded, _task_path
    if not _loaded:
        _loaded = True
        for mod in _BUILTIN_MODULES:
            importlib.import_module(mod)
        for p in sorted(shipped.tasks_dir().glob("*/task.py")):
            _import_plugin(f"flame_bench_tasks.{p.parent.name}", p)
        for p in sorted(shipped.recipes_dir().glob("*.py")):
            _import_plugin(f"flame_bench_recipes.{p.stem}", p)
    task_path = (os.environ.get("FLAME_BENCH_TASK_PATH", ""), os.environ.get("FLAME_BENCH_RECIPE_PATH", ""))
    if task_path != _task_path:
        _task_path = task_path
        for folder in filter(None, task_path[0].split(os.pathsep)):
            for p in sorted(Path(folder).expanduser().glob("*/task.py")):
                _import_plugin(f"flame_bench_user_tasks.{p.parent.name}", p)
        for folder in filter(None, task_path[1].split(os.pathsep)):
            for p in sorted(Path(folder).expanduser().glob("*.py")):
                _import_plugin(f"flame_bench_user_recipes.{p.stem}", p)
