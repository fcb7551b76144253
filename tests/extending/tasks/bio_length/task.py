"""`bio_length`: how many words the model's biographies have (flame-bench's extending example: one folder)."""

from flame_bench.core.registry import TASKS
from flame_bench.core.task_api import Column, MetricInfo, Task, TaskResult


def load(ctx):
    return ctx.source.eval_set("bio").items  # the source's biography prompts (fact world or real data)


def score(ctx, gens):
    words = [len(output.split()) for output in gens.outputs]
    samples = [{"id": item["id"], "instruction": item["instruction"], "output": output, "words": n}
               for item, output, n in zip(gens.items, gens.outputs, words, strict=True)]
    return TaskResult(metrics={"words": sum(words) / max(1, len(words))}, samples=samples,
                      counts={"items": len(samples)})


TASKS.register("bio_length")(Task(
    name="bio_length",
    version="1",
    kind="generative",
    description="Mean number of words in a biography.",
    metrics=(MetricInfo("words", "Bio words", higher_is_better=False, percent=False),),
    load=load,  # generate: the default (the model's answer to each item's instruction)
    score=score,
    primary_metric="words",
    data="bio",  # compare runs it wherever the source has biography prompts
    columns=(Column("Bio words", "words", item_key="words", percent=False, position=25),),
))
