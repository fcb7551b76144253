"""`factscore_bio`: "Tell me a bio of X", scored by FActScore (FLAME's Biography task).

The entities, the knowledge source and the FActScore parts all come from the source: in the fact world, evaluation
people of every popularity tier with the world's grammar decomposer and passage verifier; on real data, the people
of a knowledge source or an entity list (a fixed, seeded order) with an LLM decomposer and Retrieve->LM verifier.
Retrieval: FActScore's, BM25 over the person's own page with topic + fact as query, k = 5.
"""

from __future__ import annotations

from flame_bench.core.registry import TASKS
from flame_bench.core.task_api import Breakdown, Column, EvalContext, Generations, Task, TaskResult
from flame_bench.scoring.factscore import FACTSCORE_K, FACTSCORE_METRICS, popularity_order, score_generations

PROMPT_VERSION = "bio-instruction-v1"  # "Tell me a bio of {name}." (the paper's prompt)


def load(ctx: EvalContext) -> list[dict]:
    return ctx.source.eval_set("bio").items


def score(ctx: EvalContext, gens: Generations) -> TaskResult:
    data = ctx.source.eval_set("bio")
    result = score_generations(ctx, gens, ctx.source.factscorer(FACTSCORE_K))
    for key, n in data.counts.items():  # e.g. entities missing from the knowledge source (never scored)
        result.counts[key] = result.counts.get(key, 0) + n
    result.extra.update(data.extra)
    result.prompt_versions["instruction"] = PROMPT_VERSION
    return result


TASKS.register("factscore_bio")(Task(
    name="factscore_bio",
    version="1",
    kind="generative",
    description="FActScore of biographies, by popularity group (fact world) or on a real knowledge source.",
    metrics=FACTSCORE_METRICS,
    load=load,
    score=score,
    data="bio",
    primary_metric="factscore",
    columns=(Column("Bio FS", "factscore", "factscore", position=20, role="factuality"),
             Column("Bio #Corr", "correct_per_response", "n_supported", percent=False, position=21),
             Column("Bio #Err", "erroneous_per_response", None, percent=False, position=22)),
    breakdowns=(Breakdown("by_popularity_bin", "Bio FActScore by popularity bin (pretraining documents per person)",
                          "popularity", "factscore", group_label="bin", count_label="people",
                          order=popularity_order),),  # a long-tail world's items carry their bin
    imports=("factscore",),
    evaluators=("verifier",),  # FActScore's {topic, output} JSONL (`flame-bench import`)
))
