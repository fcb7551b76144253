"""System files: every shipped system loads; bad files fail with the file, the line and a suggestion."""

from __future__ import annotations

from pathlib import Path

import pytest

from flame_bench.alignment.systems import SYSTEMS_DIR, list_systems, load_system, system_hash
from flame_bench.core.errors import FlameError
from flame_bench.core.registry import RECIPES

GOOD = """name: mine
description: a test system
base_model: base
stages:
  - recipe: sft
    config: {learning_rate: 1.0e-4}
  - recipe: dpo
"""


def test_shipped_systems_load() -> None:
    names = list_systems()
    assert {"baseline", "flame", "sft", "sft_fact", "sft_flame", "sft_dpo_fact", "sft_dpo_flame", "sft_flame_dpo",
            "sft_seen"} <= set(names)
    for name in names:
        spec = load_system(name, known_recipes=RECIPES.names())
        assert spec.name == name and spec.stages
    assert [s.recipe for s in load_system("flame").stages] == ["flame_sft", "flame_dpo"]
    assert [s.recipe for s in load_system("baseline").stages] == ["sft", "dpo"]


def _write(tmp_path: Path, text: str, name: str = "mine") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    (GOOD.replace("stages:", "stagse:"), r"mine\.yaml:4: unknown key 'stagse'; did you mean 'stages'"),
    (GOOD.replace("description: a test system\n", ""), r"mine\.yaml:1: missing required key 'description'"),
    (GOOD.replace("recipe: dpo", "recipe: dop"), r"mine\.yaml:7: unknown recipe 'dop'; did you mean 'dpo'"),
    (GOOD.replace("    config:", "    confg:"), r"mine\.yaml:6: unknown key 'confg'; did you mean 'config'"),
    (GOOD.replace("name: mine", "name: other"), r"mine\.yaml:1: name 'other' differs from the file name 'mine'"),
    ("name: mine\ndescription: x\nbase_model: base\nstages: []\n", r"mine\.yaml:4: 'stages' must be a non-empty"),
    ("- just\n- a list\n", r"mine\.yaml:1: a system file must be a mapping"),
    ("name: mine\n  description: [x\n", r"mine\.yaml:\d+: invalid YAML"),
])
def test_bad_system_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(FlameError, match=message):
        load_system(str(_write(tmp_path, text)), known_recipes=RECIPES.names())


def test_unknown_system_suggests() -> None:
    with pytest.raises(FlameError, match="unknown system 'flme'; did you mean 'flame'"):
        load_system("flme", SYSTEMS_DIR)


def test_system_hash_tracks_training_only(tmp_path: Path) -> None:
    specs = []
    for i, text in enumerate((GOOD, GOOD.replace("a test system", "new words"), GOOD.replace("1.0e-4", "2.0e-4"))):
        (tmp_path / str(i)).mkdir()
        specs.append(load_system(str(_write(tmp_path / str(i), text))))
    assert system_hash(specs[0]) == system_hash(specs[1]) != system_hash(specs[2])


@pytest.mark.parametrize(("args", "message"), [
    (["compare", "baseline"], "compare needs at least two systems"),
    (["compare", "baseline", "flme"], "unknown system 'flme'; did you mean 'flame'"),
    (["compare", "baseline", "baseline"], "a system is named twice"),
])
def test_compare_bad_input(args: list[str], message: str, smoke_world: Path, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import run_cli

    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli([*args, "--world", str(smoke_world)])
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "results" / "systems").exists()  # nothing trained before the check
