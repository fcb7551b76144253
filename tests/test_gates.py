"""Regression gate: the smoke pipeline (train baseline and flame, evaluate) must reproduce its golden."""

from __future__ import annotations

from pathlib import Path

import pytest

from flame_bench.gates import check_golden, compare_to_golden, golden_path, measure_smoke_gate
from flame_bench.world.store import WorldDir


@pytest.fixture(scope="module")
def gate_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gate")


@pytest.fixture(scope="module")
def measured(smoke_world: Path, gate_dir: Path) -> dict[str, float]:
    return measure_smoke_gate(WorldDir.open(smoke_world), gate_dir)


def test_smoke_gate_matches_golden(measured: dict[str, float]) -> None:
    assert golden_path().is_file(), "create the golden with `flame-bench gate --update --note ...`"
    problems, how = check_golden(measured)
    print(how)
    assert not problems, how + "\n" + "\n".join(problems)


def test_gate_detects_a_moved_value(measured: dict[str, float]) -> None:
    golden = dict(measured)
    key = next(k for k in golden if k.endswith("if_pairs"))
    golden[key] += 1
    assert any(key in p for p in compare_to_golden(measured, golden))
    golden = dict(measured)
    golden["baseline.factscore_bio.factscore"] += 0.05
    assert compare_to_golden(measured, golden)


def test_another_platform_enforces_only_platform_independent_values(measured: dict[str, float]) -> None:
    golden = dict(measured)
    golden["baseline.factscore_bio.factscore"] += 0.05  # trained systems: float kernels decide across CPUs
    golden["baseline.dpo.pairs_digest"] = "0" * 16
    assert compare_to_golden(measured, golden, same_platform=False) == []
    golden["rm_if.human_mean"] += 1e-9  # a program's value is exact everywhere
    golden["base.factscore_bio.factscore"] += 0.05  # the greedy base model: within 0.02
    moved = compare_to_golden(measured, golden, same_platform=False)
    assert [p.split(":")[0] for p in moved] == ["base.factscore_bio.factscore", "rm_if.human_mean"]


def test_every_stage_of_the_gate_changes_its_weights(measured: dict[str, float], gate_dir: Path) -> None:
    """A stage that trains at learning rate 0 (a warmup as long as the run) would pass every other check."""
    import json

    from safetensors.torch import load_file

    stages = sorted((gate_dir / "results" / "systems" / "stages").glob("*/stage.json"))
    assert {json.loads(p.read_text())["recipe"] for p in stages} == {"sft", "dpo", "flame_sft", "flame_dpo"}
    for record in stages:
        stage = json.loads(record.read_text())
        before = load_file(Path(stage["input_model"]) / "model.safetensors")
        after = load_file(record.parent / "model" / "model.safetensors")
        moved = max(float((after[k] - before[k]).abs().max()) for k in before)
        assert moved > 0, f"{stage['recipe']} left its input's weights unchanged ({stage['stats']['steps']} steps)"
