"""`flame-bench bench`: every measurement runs and reports positive rates and ratios (never timed assertions)."""

from __future__ import annotations

from pathlib import Path

from flame_bench.bench import bench_bm25, bench_factscore, bench_generation, bench_table
from flame_bench.world.store import WorldDir


def test_bench_parts_measure_and_render(smoke_world: Path) -> None:
    world = WorldDir.open(smoke_world)
    fs = bench_factscore(world, n_responses=10)
    assert fs["facts"] > 0 and fs["facts_per_second"] > 0 and 0 < fs["sentence_split_share"] < 1
    gen = bench_generation(world, n_prompts=4, max_new_tokens=4)
    assert gen["batched_per_second"] > 0 and gen["single_per_second"] > 0 and gen["speedup"] > 0
    bm = bench_bm25(n_queries=5, k=3, preset="smoke")
    assert bm["passages"] > 0 and bm["rank_bm25_ms_per_query"] > 0
    assert 0 <= bm["top_k_overlap"] <= 1 and bm["speedup_bm25s_over_rank_bm25"] > 0
    table = bench_table({"factscore": fs, "generation": gen, "bm25": bm}, "out.json")
    assert table.row_count == 9  # FActScore (2), generation (3), BM25 (4)
