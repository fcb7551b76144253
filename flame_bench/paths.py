"""Where flame-bench keeps user-level assets that live outside a checkout (installed models, fetched data).

`FLAME_BENCH_HOME` overrides the default `~/.cache/flame-bench`; tests point it at a temporary directory.
"""

from __future__ import annotations

import os
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
