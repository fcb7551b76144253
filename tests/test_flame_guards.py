"""FLAME's guards: DPO^flame never trains silently as the baseline does (no factuality pairs), and says when the
fact-based classifier or the share of factuality pairs makes it differ little from the baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

from flame_bench.alignment.flame import MIN_FACT_PAIR_SHARE, fact_pair_guards
from flame_bench.core.errors import FlameError


def _stats(instructions: int, fact_based: int, if_pairs: int, fact_pairs: int) -> dict[str, int]:
    return {"instructions": instructions, "fact_based": fact_based, "if_pairs": if_pairs, "fact_pairs": fact_pairs}


def test_the_guards_warn_on_a_thin_or_one_sided_pair_set_and_refuse_an_empty_one() -> None:
    assert fact_pair_guards(_stats(80, 27, 100, 20)) == []  # the paper's regime: fact pairs ~20% of IF pairs
    thin = fact_pair_guards(_stats(80, 27, 100, 4))
    assert len(thin) == 1 and "4.0% of the 100 IF pairs" in thin[0] and f"{MIN_FACT_PAIR_SHARE:.0%}" in thin[0]
    assert "called all of the 80 DPO prompts" in fact_pair_guards(_stats(80, 80, 100, 30))[0]
    with pytest.raises(FlameError, match=r"built no factuality pairs \(0 of 80 prompts called fact-based"):
        fact_pair_guards(_stats(80, 0, 100, 0))
    allowed = fact_pair_guards(_stats(80, 0, 100, 0), allow_no_fact_pairs=True)
    assert "called none of the 80" in allowed[0] and "0.0% of the 100 IF pairs" in allowed[1]


def test_flame_dpo_without_fact_pairs_is_refused_unless_asked_for(smoke_world: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from flame_bench.alignment.stages import run_stage
    from flame_bench.engines.generation_cache import GenerationCache
    from flame_bench.world.source import WorldSource

    source = WorldSource.open(smoke_world)
    monkeypatch.setattr(type(source.fact_classifier), "classify_many", lambda self, xs: [False] * len(xs))
    cache, config = GenerationCache(tmp_path / "c.sqlite"), {"max_instructions": 8}
    with pytest.raises(FlameError, match="built no factuality pairs"):
        run_stage("flame_dpo", config, source.base_model(), source, 0, cache, quiet=True, root=tmp_path / "s")
    assert not list((tmp_path / "s").glob("*/stage.json"))  # nothing published
    _, record = run_stage("flame_dpo", {**config, "allow_no_fact_pairs": True}, source.base_model(), source, 0,
                          cache, quiet=True, root=tmp_path / "s")
    assert record["stats"]["fact_pairs"] == 0 and record["stats"]["steps"] > 0
    assert any("called none of the 8 DPO prompts" in w for w in record["stats"]["warnings"])
