"""Where the files flame-bench ships are: task plugins, recipes, systems, data suites, accelerate configs, gate
goldens and published numbers. One answer for a checkout and an installed wheel alike.

The wheel maps the design card's top-level folders onto packages (`tasks/` -> `flame_bench_tasks`,
`alignments/` -> `flame_bench_alignments`, `results/`'s reference files -> `flame_bench_results`; pyproject.toml),
so they are found through the import system; a checkout run without installing falls back to the folders beside
the package. User folders extend them (`FLAME_BENCH_TASK_PATH`, `FLAME_BENCH_RECIPE_PATH`, system file paths).
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]  # the repository root when running from a checkout
_FOLDERS = {"flame_bench_tasks": "tasks", "flame_bench_alignments": "alignments", "flame_bench_results": "results"}


@cache
def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return CHECKOUT / _FOLDERS[package]


def is_checkout() -> bool:
    """True when flame_bench runs from a source checkout (editable install or PYTHONPATH), not an installed wheel."""
    return (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / ".git").exists()


def tasks_dir() -> Path:
    return _package_dir("flame_bench_tasks")


def recipes_dir() -> Path:
    return _package_dir("flame_bench_alignments") / "recipes"


def systems_dir() -> Path:
    return _package_dir("flame_bench_alignments") / "systems"


def data_suites_dir() -> Path:
    return _package_dir("flame_bench_alignments") / "data"


def accelerate_dir() -> Path:
    return _package_dir("flame_bench_alignments") / "accelerate"


def baselines_dir() -> Path:
    """Gate goldens (`<gate>.json`); `gate --update` writes here, so update from a checkout."""
    return _package_dir("flame_bench_results") / "baselines"


def published_dir() -> Path:
    return _package_dir("flame_bench_results") / "published"
