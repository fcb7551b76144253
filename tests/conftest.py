"""Shared fixtures. Tests are offline and deterministic; the smoke world is built once per session."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import flame_bench  # noqa: F401  (sets the numerics mode before any test module imports torch)


@pytest.fixture(scope="session", autouse=True)
def _hermetic_hf_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep datasets/lm-eval caches out of the user's home."""
    home = tmp_path_factory.mktemp("hf_home")
    os.environ["HF_HOME"] = str(home)
    os.environ["HF_DATASETS_CACHE"] = str(home / "datasets")


def build_world(tmp_path_factory: pytest.TempPathFactory, preset: str) -> Path:
    """A complete world of `preset` (data + pretrained base model), built through the CLI."""
    out = tmp_path_factory.mktemp("worlds") / preset
    code, _, err = run_cli(["world", "build", "--preset", preset, "--out", str(out), "--quiet"])
    assert code == 0, err
    return out


@pytest.fixture(scope="session")
def smoke_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke world, built once per session."""
    return build_world(tmp_path_factory, "smoke")


@pytest.fixture(scope="session")
def smoke_pilot_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke world plus reading documents (the pilot study's and the mechanism probes' tests), built once."""
    return build_world(tmp_path_factory, "smoke-pilot")


@pytest.fixture()
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder of its own, with FLAME_BENCH_HOME and FLAME_BENCH_RESULTS inside it."""
    monkeypatch.setenv("FLAME_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@contextmanager
def serving(backend: Any) -> Iterator[str]:
    """`backend` behind flame-bench's OpenAI-compatible server on a free port of 127.0.0.1; yields its /v1 URL."""
    from flame_bench.engines.llm.serve import make_server

    server = make_server(backend, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """Run `flame-bench ARGS` in-process; return (exit code, stdout, stderr)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    import flame_bench.cli.root as cli

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["flame-bench", *args]
    code = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            cli.console.file = err
            cli.stdout.file = out
            try:
                cli.main()
            except SystemExit as e:
                code = int(e.code or 0)
    finally:
        sys.argv = argv
        cli.console.file = None  # back to the live sys.stderr
        cli.stdout.file = None
    return code, out.getvalue(), err.getvalue()
