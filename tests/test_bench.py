"""`flame-bench bench`: every measurement runs and reports positive rates and ratios (never timed assertions)."""

from __future__ import annotations

from pathlib import Path

from flame_bench.experiments.bench import bench_bm25, bench_factscore, bench_generation, bench_table
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


def test_truthfulqa_bench_checks_prefix_against_lm_evals_hf(smoke_world: Path) -> None:
    from flame_bench.experiments.bench import bench_truthfulqa
    from flame_bench.world.source import WorldSource

    source = WorldSource.open(smoke_world)
    tq = bench_truthfulqa(str(source.base_model()), 6, fp64_sample=5, items=source.eval_set("truthfulqa").items)
    assert tq["questions"] == 6 and tq["requests"] > 6 * 4  # lm-eval's built-in configs: MC1 and MC2 choices
    assert tq["greedy_flags_identical"] and tq["max_abs_loglikelihood_diff"] < 1e-4
    assert tq["mc1_items_differing"] == 0 and tq["mc2_max_item_diff"] < 1e-5
    assert tq["speedup_prefix_over_hf"] > 0 and tq["fp64_sample"] == 5
    assert max(tq["max_abs_error_vs_fp64"].values()) < 1e-3
    assert bench_table({"factscore": FS, "generation": GEN, "bm25": BM, "truthfulqa": tq}, "o").row_count == 6 + 4


def test_verification_bench_gives_the_same_verdicts_both_ways(smoke_world: Path, tmp_path: Path) -> None:
    import json

    from flame_bench.core.records import write_run
    from flame_bench.experiments.bench import bench_table, bench_verification

    pages = {"Ana Bel": ["Ana Bel is a baker in Rome. She was born in 1950.", "Ana Bel won the Gold Loaf prize."],
             "Tom Rye": ["Tom Rye is a pilot from Oslo.", "Tom Rye studied at Oslo University."]}
    knowledge = tmp_path / "k.jsonl"
    knowledge.write_text("".join(json.dumps({"title": t, "text": "\n\n".join(ps)}) + "\n" for t, ps in pages.items()))
    facts = [("Ana Bel is a baker.", ["Ana Bel#0", "Ana Bel#1"]), ("Ana Bel was born in 1950.", ["Ana Bel#0"]),
             ("Ana Bel is a pilot.", ["Ana Bel#1", "Ana Bel#0"]), ("Tom Rye is a pilot.", ["Tom Rye#0", "Tom Rye#1"])]
    samples = [{"id": f"bio{i}", "facts": [{"text": t, "evidence": ev, "supported": True} for t, ev in facts]}
               for i in range(3)]
    header = {"task": {"name": "factscore_bio"}, "model": {"name": "x"}, "metrics": {"factscore": 1.0}}
    run = write_run(tmp_path / "runs", "factscore_bio__x__0", header, samples)
    v = bench_verification(str(smoke_world / "model"), str(run.path), str(knowledge), n_bios=2,
                           with_nli=False)
    assert v["facts"] == 8 and v["verdicts_identical"] and v["speedup_shared_over_full"] > 0
    assert bench_table({"factscore": FS, "generation": GEN, "bm25": BM, "verification": v}, "o").row_count == 6 + 1


FS = {"facts_per_second": 1.0, "sentence_split_share": 0.5}
GEN = {"batched_per_second": 2.0, "single_per_second": 1.0, "speedup": 2.0}
BM = {"passages": 10, "rank_bm25_ms_per_query": 1.0}


def test_training_bench_runs_trl_and_plain_loops_on_the_same_batches(smoke_world: Path) -> None:
    from flame_bench.experiments.bench import bench_training

    tr = bench_training(WorldDir.open(smoke_world), steps=3, batch_size=4)
    assert tr["steps"] == 3
    for stage in ("sft", "dpo"):
        assert tr[f"{stage}_trl_over_plain"] > 0 and tr[f"{stage}_trl_over_plain_steady"] > 0
    assert tr["lm_head_fused_seconds"] > 0 and tr["lm_head_own_seconds"] > 0
    rows = bench_table({"factscore": FS, "generation": GEN, "bm25": BM, "training": tr}, "o").row_count
    assert rows == 6 + 5  # two rows per stage and the LM head's
