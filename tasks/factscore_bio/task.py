"""`factscore_bio`: "Tell me a bio of X", scored by FActScore.

Two data sources:
- the fact world (default): evaluation people of every popularity tier, the world's grammar decomposer and
  passage verifier;
- the real path (no world; `--knowledge wiki-leads | DOCDB.db | SOURCE.jsonl`): people from the knowledge source's
  entity list (a fixed, seeded order; `--limit N` takes the first N), FActScore's LLM decomposer and Retrieve->LM
  True/False verifier on an evaluator LLM (`--llm`), BM25 over the person's own page, k = 5.
"""

from __future__ import annotations

import random

from flame_bench.errors import FlameError
from flame_bench.registry import TASKS
from flame_bench.scoring.factscore import FACTSCORE_METRICS, factscore_task, score_responses
from flame_bench.task_api import EvalContext, Task, TaskResult

PROMPT_VERSION = "bio-instruction-v1"  # "Tell me a bio of {name}." (the paper's prompt)
ENTITY_ORDER_SEED = 0  # the real path's entity order is fixed, so --limit N always means the same N people


def run(ctx: EvalContext) -> TaskResult:
    if ctx.world is None:
        return run_real(ctx)
    items = ctx.world.records("eval_bio")[: ctx.limit]
    return factscore_task(ctx, items, topics=[[it["name"]] for it in items], groups=[it["tier"] for it in items],
                          prompt_version=PROMPT_VERSION)


def run_real(ctx: EvalContext) -> TaskResult:
    from flame_bench.knowledge import load_entities, open_knowledge

    from flame_bench.llm.components import llm_factscorer
    from flame_bench.llm.resolve import evaluator_backend

    ref = ctx.options.get("knowledge")
    if not ref:
        raise FlameError("factscore_bio without a fact world needs a knowledge source: pass --knowledge wiki-leads "
                         "(after `flame-bench data fetch wiki-leads`), a FActScore DocDB .db or a {title, text} .jsonl")
    source = open_knowledge(ref)
    entities = list(load_entities(ref))
    random.Random(ENTITY_ORDER_SEED).shuffle(entities)
    missing = [e for e in entities if e not in source]  # reported, never scored against an empty page
    entities = [e for e in entities if e in source][: ctx.limit]
    items = [{"id": f"bio-{i:05d}", "instruction": f"Tell me a bio of {name}.", "name": name}
             for i, name in enumerate(entities)]
    assert ctx.generate is not None
    outputs = ctx.generate([it["instruction"] for it in items])
    backend = evaluator_backend(ctx.options.get("llm"), quiet=ctx.quiet)
    scorer = llm_factscorer(source, backend)
    scores = scorer.score_many(outputs, [[it["name"]] for it in items])
    result = score_responses(items, outputs, scores, groups=["all"] * len(items), seed=ctx.seed)
    result.counts["missing_topics"] = len(missing)
    if missing:
        result.extra["missing_topics"] = missing[:50]
    result.judge = {"scorer": "factscore_llm", "query": "topic + fact", "evaluator_llm": backend.identity,
                    **scorer.identity}
    result.prompt_versions = {"instruction": PROMPT_VERSION, "decomposer": scorer.decomposer.version,
                              "verifier": scorer.verifier.version}
    return result


TASKS.register("factscore_bio")(Task(
    name="factscore_bio",
    version="1",
    kind="generative",
    description="FActScore of biographies: fact world (by popularity tier) or a real knowledge source (--knowledge).",
    metrics=FACTSCORE_METRICS,
    run=run,
    primary_metric="factscore",
))
