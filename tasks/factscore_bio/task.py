"""`factscore_bio`: "Tell me a bio of X" for evaluation people of every popularity tier, scored by FActScore."""

from __future__ import annotations

from flame_bench.registry import TASKS
from flame_bench.scoring.factscore import FACTSCORE_METRICS, score_responses, world_factscorer
from flame_bench.task_api import EvalContext, Task, TaskResult

PROMPT_VERSION = "bio-instruction-v1"  # "Tell me a bio of {name}." (the paper's prompt)


def run(ctx: EvalContext) -> TaskResult:
    items = ctx.world.records("eval_bio")[: ctx.limit]
    assert ctx.generate is not None
    outputs = ctx.generate([it["instruction"] for it in items])
    scorer = world_factscorer(ctx.world)
    scores = [scorer.score(out, [it["name"]]) for it, out in zip(items, outputs, strict=True)]
    result = score_responses(items, outputs, scores, groups=[it["tier"] for it in items], seed=ctx.seed)
    result.judge = {"scorer": "factscore_world", **scorer.identity}
    result.prompt_versions = {"instruction": PROMPT_VERSION}
    return result


TASKS.register("factscore_bio")(Task(
    name="factscore_bio",
    version="1",
    kind="generative",
    description="FActScore of biographies, split by popularity tier (frequent / rare / unseen).",
    metrics=FACTSCORE_METRICS,
    run=run,
    primary_metric="factscore",
))
