"""Where flame-bench keeps things: user-level assets outside a checkout (installed models, fetched data, the LLM
call cache) and the results tree (run records, comparisons, leaderboard, generation cache, worlds, stages).

`FLAME_BENCH_HOME` overrides the default `~/.cache/flame-bench`, `FLAME_BENCH_RESULTS` the default `./results`;
tests point both at temporary directories.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("FLAME_BENCH_HOME") or Path.home() / ".cache" / "flame-bench").expanduser()


def models_dir() -> Path:
    """Converted models (safetensors directories) and `registry.json`, the short names of installed models."""
    return home() / "models"


def data_dir() -> Path:
    """Fetched datasets and knowledge sources (each with its checksum)."""
    return home() / "data"


def llm_cache_path() -> Path:
    """SQLite cache of LLM-component calls (decomposer, verifier, judges), keyed by backend identity + request."""
    return home() / "cache" / "llm.sqlite"


# -- the results tree (relative to the working directory unless FLAME_BENCH_RESULTS says otherwise) ---------------
def results_dir() -> Path:
    """Run records, comparisons, the leaderboard, caches, worlds and trained stages: `./results` by default."""
    return Path(os.environ.get("FLAME_BENCH_RESULTS") or "results").expanduser()


def runs_dir() -> Path:
    return results_dir() / "runs"


def generation_cache_path() -> Path:
    return results_dir() / "cache" / "generations.sqlite"


def stages_dir() -> Path:
    return results_dir() / "systems" / "stages"


def comparisons_dir() -> Path:
    return results_dir() / "comparisons"


def worlds_dir() -> Path:
    return results_dir() / "worlds"


@contextmanager
def results_dir_set(path: Path) -> Iterator[Path]:
    """Point the results tree at `path` for the duration of a block (gates, tests), then restore it."""
    old = os.environ.get("FLAME_BENCH_RESULTS")
    os.environ["FLAME_BENCH_RESULTS"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("FLAME_BENCH_RESULTS", None)
        else:
            os.environ["FLAME_BENCH_RESULTS"] = old
