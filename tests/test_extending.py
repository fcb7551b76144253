"""Extending flame-bench: the README's examples (a task in one folder, a recipe in one file, both under
tests/extending/) plug in without touching any other file, and show up everywhere a built-in one does: `list`,
`eval`, `compare` (a column) and the leaderboard. Run as a user would, through the CLI in fresh processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXT = Path(__file__).parent / "extending"
TASK_FILE = EXT / "tasks" / "bio_length" / "task.py"
RECIPE_FILE = EXT / "recipes" / "sft_first_sentence.py"
README = Path(__file__).parents[1] / "README.md"


def _cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FLAME_BENCH_TASK_PATH": str(EXT / "tasks"), "FLAME_BENCH_RECIPE_PATH": str(EXT / "recipes"),
           "FLAME_BENCH_RESULTS": str(tmp_path / "results"), "FLAME_BENCH_HOME": str(tmp_path / "home")}
    return subprocess.run([sys.executable, "-m", "flame_bench.cli", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)


def test_examples_are_small_and_are_the_readmes() -> None:
    assert len(TASK_FILE.read_text().splitlines()) <= 40
    readme = README.read_text()
    for path in (TASK_FILE, RECIPE_FILE):  # the README shows each example verbatim, so it cannot rot
        assert path.read_text().strip() in readme, f"README's copy of {path.name} differs from the file"


def test_a_task_and_a_recipe_from_their_own_folders_show_up_everywhere(smoke_world: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    listed = _cli(["list"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"task\s+│ bio_length", listed.stdout)

    ran = _cli(["eval", "base", "--task", "bio_length", "--world", str(smoke_world), "--quiet"], tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "Bio words" in ran.stdout and list((tmp_path / "results" / "runs").glob("bio_length__base__*"))

    system = tmp_path / "concise.yaml"
    system.write_text("name: concise\ndescription: SFT on first sentences\nbase_model: base\n"
                      "stages:\n  - recipe: sft_first_sentence\n    config: {epochs: 1.0}\n")
    compared = _cli(["compare", "sft", str(system), "--world", str(smoke_world), "--task", "bio_length",
                     "--task", "factscore_bio", "--quiet"], tmp_path)
    assert compared.returncode == 0, compared.stderr
    assert "Bio words" in compared.stdout and "Bio FS" in compared.stdout and "concise" in compared.stdout
    board = (tmp_path / "results" / "leaderboard.md").read_text()
    assert "bio_length Bio words" in board and "| concise |" in board

    stage = next((tmp_path / "results" / "systems" / "stages").glob("sft_first_sentence-*"))
    trained = load_file(stage / "model" / "model.safetensors")
    base = load_file(smoke_world / "model" / "model.safetensors")
    assert any((trained[k] - base[k]).abs().max() > 0 for k in base)  # the recipe really trained


def test_an_unknown_plugin_name_is_one_line(tmp_path: Path, smoke_world: Path) -> None:
    ran = _cli(["eval", "base", "--task", "bio_lenght", "--world", str(smoke_world)], tmp_path)
    assert ran.returncode == 2 and "did you mean 'bio_length'" in ran.stderr and "Traceback" not in ran.stderr


@pytest.fixture(autouse=True)
def _no_plugins_leak() -> None:
    """The plugins load in the subprocesses only: this process's registry never sees them."""
    yield
    from flame_bench.core.registry import TASKS

    assert "bio_length" not in TASKS.names()
