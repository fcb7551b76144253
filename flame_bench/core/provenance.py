"""Provenance for run records: git commit, package versions, platform."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from importlib import metadata

from flame_bench.core import numerics
from flame_bench.core.shipped import CHECKOUT, is_checkout

PACKAGES = ("flame-bench", "torch", "transformers", "tokenizers", "trl", "lm-eval", "datasets", "spacy", "rank-bm25",
            "rich", "numpy")


@lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD of the flame-bench checkout, with `-dirty` when tracked files changed; for an installed wheel (no
    checkout) "installed-<version>"; "unknown" where git cannot say."""
    if not is_checkout():
        return f"installed-{metadata.version('flame-bench')}" if _installed() else "unknown"
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=CHECKOUT, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=CHECKOUT,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _installed() -> bool:
    try:
        metadata.version("flame-bench")
        return True
    except metadata.PackageNotFoundError:
        return False


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def environment() -> dict[str, object]:
    return {"git_commit": git_commit(), "packages": package_versions(), "python": platform.python_version(),
            "platform": platform.platform(), "numerics": numerics.mode()}
