"""`factscore_bio`: "Tell me a bio of X" for evaluation people of every popularity tier, scored by FActScore."""

from __future__ import annotations

from flame_bench.registry import TASKS
from flame_bench.scoring.factscore import FACTSCORE_METRICS, factscore_task
from flame_bench.task_api import EvalContext, Task, TaskResult

PROMPT_VERSION = "bio-instruction-v1"  # "Tell me a bio of {name}." (the paper's prompt)


def run(ctx: EvalContext) -> TaskResult:
    items = ctx.world.records("eval_bio")[: ctx.limit]
    return factscore_task(ctx, items, topics=[[it["name"]] for it in items], groups=[it["tier"] for it in items],
                          prompt_version=PROMPT_VERSION)


TASKS.register("factscore_bio")(Task(
    name="factscore_bio",
    version="1",
    kind="generative",
    description="FActScore of biographies, split by popularity tier (frequent / rare / unseen).",
    metrics=FACTSCORE_METRICS,
    run=run,
    primary_metric="factscore",
))
