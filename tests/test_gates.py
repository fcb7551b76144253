"""Regression gate: the smoke pipeline (train baseline and flame, evaluate) must reproduce its golden."""

from __future__ import annotations

from pathlib import Path

import pytest

from flame_bench.experiments.gates import check_golden, compare_to_golden, golden_path, measure_smoke_gate
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


def test_another_platform_enforces_every_value_within_its_seed_spread(measured: dict[str, float]) -> None:
    tolerances = {"baseline.factscore_bio.factscore": 0.1, "base.factscore_bio.factscore": 0.2,
                  "flame.flame_dpo.fact_pairs": 3.0}
    golden = dict(measured)
    golden["baseline.factscore_bio.factscore"] += 0.09  # float kernels move trained values: within the spread
    golden["base.factscore_bio.factscore"] -= 0.19
    golden["flame.flame_dpo.fact_pairs"] += 3
    golden["baseline.dpo.pairs_digest"] = golden["base.weights_digest"] = "0" * 16  # bitwise only on one platform
    assert compare_to_golden(measured, golden, same_platform=False, cross_tolerances=tolerances) == []
    golden["rm_if.human_mean"] += 1e-9  # a program's value is exact everywhere
    golden["flame.flame_dpo.fact_pairs"] += 1  # beyond its spread: a pair rule changed
    golden["baseline.factscore_bio.factscore"] += 0.02
    moved = compare_to_golden(measured, golden, same_platform=False, cross_tolerances=tolerances)
    assert [p.split(":")[0] for p in moved] == ["baseline.factscore_bio.factscore", "flame.flame_dpo.fact_pairs",
                                                "rm_if.human_mean"]
    golden["baseline.sft.steps"] += 1  # a value without a measured spread: its same-platform tolerance (exact)
    assert "baseline.sft.steps" in " ".join(compare_to_golden(measured, golden, False, tolerances))
    # a golden without a seed spread enforces only the programs elsewhere
    assert [p.split(":")[0] for p in compare_to_golden(measured, golden, same_platform=False)] == ["rm_if.human_mean"]


def test_the_golden_holds_a_seed_spread_for_every_value_a_platform_can_move() -> None:
    from flame_bench.experiments.gates import PROGRAM_PREFIXES, SPREAD_SIGMAS, load_golden

    golden = load_golden()
    spread = golden["cross_platform"]
    assert spread["seeds"] >= 5 and spread["sigmas"] == SPREAD_SIGMAS
    numeric = {k for k, v in golden["values"].items() if not isinstance(v, str) and not k.startswith(PROGRAM_PREFIXES)}
    assert set(spread["tolerances"]) == numeric
    assert any(v > 0 for k, v in spread["std"].items() if k.startswith("flame."))  # seeds do move trained values
    assert any(v > 0 for k, v in spread["std"].items() if k.startswith("base."))  # and world seeds the base model's


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
