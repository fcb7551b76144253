"""`flame-bench bench`: speed measured as ratios within one run (never as timed assertions in tests).

- FActScore pipeline throughput: atomic facts scored per second (and the share of each stage).
- Generation: completions per second batched vs one prompt at a time, same model and prompts.
- Retrieval: rank-bm25 (the design-card choice) vs bm25s query latency over the large preset's knowledge source.
"""

from __future__ import annotations

import platform
import random
import time
from typing import Any

from flame_bench.scoring.retrieval import bm25_tokens


def _timed(fn, *args, **kwargs) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def bench_factscore(world, n_responses: int = 200) -> dict[str, Any]:
    from flame_bench.scoring.factscore import world_factscorer

    scorer = world_factscorer(world)
    pages = world.knowledge[:n_responses]
    scorer.splitter("Warm up. The pipeline loads spaCy once.")
    scores, dt = _timed(lambda: [scorer.score(p["text"], [p["title"]]) for p in pages])
    n_facts = sum(s.n for s in scores)
    split_t = _timed(lambda: [scorer.splitter(p["text"]) for p in pages])[1]
    return {"responses": len(pages), "facts": n_facts, "seconds": dt, "facts_per_second": n_facts / dt,
            "sentence_split_share": split_t / dt}


def bench_generation(world, n_prompts: int = 64, max_new_tokens: int = 64) -> dict[str, Any]:
    from flame_bench.generation import GenerationConfig, generate
    from flame_bench.world.probe import PROBE_PROMPT, load_model

    model, tok = load_model(world.model_dir)
    prompts = [PROBE_PROMPT.format(instruction=f"Tell me a bio of {p['name']}.") for p in world.people[:n_prompts]]
    cfg = GenerationConfig(max_new_tokens=max_new_tokens)
    generate(model, tok, prompts[:2], cfg)  # warm-up
    _, batched = _timed(generate, model, tok, prompts, GenerationConfig(max_new_tokens=max_new_tokens,
                                                                       batch_size=len(prompts)))
    n_single = min(16, n_prompts)
    _, single = _timed(generate, model, tok, prompts[:n_single], GenerationConfig(max_new_tokens=max_new_tokens,
                                                                                batch_size=1))
    b_rate, s_rate = len(prompts) / batched, n_single / single
    return {"prompts_batched": len(prompts), "prompts_single": n_single, "max_new_tokens": max_new_tokens,
            "batched_per_second": b_rate, "single_per_second": s_rate, "speedup": b_rate / s_rate}


def bench_bm25(seed: int = 0, n_queries: int = 200, k: int = 10) -> dict[str, Any]:
    """Global retrieval (FLAME's RM_fact / Alpaca Fact query = the instruction) over the large preset."""
    import numpy as np
    from rank_bm25 import BM25Okapi

    from flame_bench.world.generate import generate_world
    from flame_bench.world.presets import get_preset

    world = generate_world(get_preset("large"), seed)
    passages = [f"{k_['title']} {p}" for k_ in world.knowledge for p in k_["passages"]]
    corpus = [bm25_tokens(p) for p in passages]
    rng = random.Random(seed)
    queries = [r["instruction"] for r in rng.sample([r for r in world.dpo_instructions if r["fact_based"]],
                                                    n_queries)]
    rank_index, rank_build = _timed(BM25Okapi, corpus)
    rank_top, rank_q = _timed(lambda: [np.argsort(-rank_index.get_scores(bm25_tokens(q)))[:k] for q in queries])
    out: dict[str, Any] = {"passages": len(passages), "queries": n_queries, "k": k,
                           "rank_bm25_build_s": rank_build, "rank_bm25_ms_per_query": 1000 * rank_q / n_queries}
    try:
        import bm25s
    except ImportError:
        out["bm25s"] = "not installed (pip install bm25s)"
        return out
    retriever = bm25s.BM25(method="robertson")
    _, s_build = _timed(retriever.index, corpus, show_progress=False)
    (docs, _), s_q = _timed(retriever.retrieve, [bm25_tokens(q) for q in queries], k=k, show_progress=False)
    overlap = np.mean([len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(rank_top, docs, strict=True)])
    # the first 3 hits are the asked person's own passages; the tail is full of score ties, ordered differently
    head = np.mean([len(set(a[:3].tolist()) & set(b[:3].tolist())) / 3
                    for a, b in zip(rank_top, docs, strict=True)])
    out.update({"bm25s_build_s": s_build, "bm25s_ms_per_query": 1000 * s_q / n_queries,
                "speedup_bm25s_over_rank_bm25": rank_q / s_q, "top_k_overlap": float(overlap),
                "top_3_overlap": float(head)})
    return out


def run_bench(world, quick: bool = False) -> dict[str, Any]:
    from flame_bench.provenance import environment
    from flame_bench.runtime import torch_setup

    device = torch_setup(0)
    return {
        "environment": environment() | {"processor": platform.processor(), "device": str(device)},
        "world": str(world.path),
        "factscore": bench_factscore(world, 50 if quick else 200),
        "generation": bench_generation(world, 16 if quick else 64),
        "bm25": bench_bm25(n_queries=20 if quick else 200),
    }
