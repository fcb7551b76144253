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

from flame_bench.core.errors import FlameError


def _folder(var: str, default: Path) -> Path:
    """The folder `var` names (else `default`); one line if it, or what it would be made in, is not a folder."""
    path = Path(os.environ.get(var) or default).expanduser()
    where = f"{var}={path}" if os.environ.get(var) else f"{path} (the default for {var})"
    for above in (path, *path.parents):
        if above.exists():
            if not above.is_dir():
                what = "is a file" if above == path else f"is inside the file {above}"
                raise FlameError(f"{where} {what}; point {var} at a folder")
            break
    return path


MAX_NAME = 100  # characters of a user-chosen name that becomes part of a file name (a run, a model)


def check_name(name: str, what: str) -> str:
    """`name` if it can become part of a file name; else one line naming `what` (`--name`, `model name`)."""
    if not name.strip():
        raise FlameError(f"{what} is empty; name it (e.g. my-model)")
    bad = next((c for c in ("/", "\\", "\0") if c in name), None)
    if bad or len(name) > MAX_NAME:
        problem = f"contains {bad!r}" if bad else f"is {len(name)} characters long"
        raise FlameError(f"{what} {name[:40]!r}{'…' if len(name) > 40 else ''} {problem}; it becomes a file name: "
                         f"use at most {MAX_NAME} characters and no '/', '\\' or NUL")
    return name


def home() -> Path:
    return _folder("FLAME_BENCH_HOME", Path.home() / ".cache" / "flame-bench")


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
    return _folder("FLAME_BENCH_RESULTS", Path("results"))


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
