"""Regression gate: the smoke pipeline (train baseline and flame, evaluate) must reproduce its golden."""

from __future__ import annotations

from pathlib import Path

import pytest

from flame_bench.gates import check_golden, compare_to_golden, golden_path, measure_smoke_gate
from flame_bench.world.store import WorldDir


@pytest.fixture(scope="module")
def measured(smoke_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    return measure_smoke_gate(WorldDir.open(smoke_world), tmp_path_factory.mktemp("gate"))


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
