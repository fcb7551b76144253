"""`alpaca_winrate` (pairwise win rate against a reference system) and `alpaca_fact` (FActScore on its fact-based
subset) on the source's Alpaca-style evaluation instructions (FLAME §6.1 and §6.3).

Fact-based labels come with the source (the fact world's labels, or the paper's classifier prompt on real data);
the judge is the source's pairwise judge (blind to truth in the fact world, an LLM on real data). Alpaca Fact
retrieves with the instruction as query, k = 10, as FLAME's RM_fact does.
"""

from __future__ import annotations

import math

from flame_bench.core.errors import FlameError
from flame_bench.core.registry import TASKS
from flame_bench.core.task_api import Column, EvalContext, Generations, MetricInfo, Task, TaskResult, generate_answers
from flame_bench.scoring.factscore import FACTSCORE_METRICS, score_generations
from flame_bench.scoring.winrate import score_pairs

PROMPT_VERSION = "alpaca-instruction-v1"  # the instruction as the user turn, no system prompt
MAX_UNPARSABLE = 0.05  # a run fails when more judge replies than this are unparsable
FACT_PASSAGES = 10


def load(ctx: EvalContext) -> list[dict]:
    return ctx.source.eval_set("alpaca").items


def generate_pairs(ctx: EvalContext, items: list[dict]) -> Generations:
    """The model's outputs and the reference system's outputs for the same items."""
    ref = ctx.reference
    if ref is None:
        raise FlameError("alpaca_winrate needs a reference: --reference human, a run, or a model")
    missing = [it["id"] for it in items if it["id"] not in ref.outputs]
    if missing:
        raise FlameError(f"reference {ref.name!r} covers other instructions ({len(missing)} of {len(items)} items "
                         f"missing, e.g. {missing[0]}); use a reference evaluated on the same data and --limit")
    gens = generate_answers(ctx, items)
    gens.references = [ref.outputs[it["id"]] for it in items]
    return gens


def score_winrate(ctx: EvalContext, gens: Generations) -> TaskResult:
    items, outputs, reference = gens.items, gens.outputs, gens.references or []
    judge = ctx.source.pairwise_judge
    rows, wr = score_pairs(items, outputs, reference, judge, seed=ctx.seed, max_unparsable_frac=MAX_UNPARSABLE)
    se = wr.standard_error / 100 if not math.isnan(wr.standard_error) else None
    metrics = {
        "win_rate": wr.win_rate / 100,
        "lc_win_rate": None if wr.length_controlled_win_rate is None else wr.length_controlled_win_rate / 100,
        "standard_error": se,
        "mean_length": sum(len(o) for o in outputs) / len(outputs) if outputs else None,
    }
    cis = {"win_rate": (metrics["win_rate"] - 1.96 * se, metrics["win_rate"] + 1.96 * se)} if se else {}
    by_id = {r["id"]: r for r in rows}
    samples = [{"id": it["id"], "instruction": it["instruction"], "fact_based": it["fact_based"],
                "kind": it.get("kind"), "output": out, "reference_output": ref,
                **{k: v for k, v in by_id[it["id"]].items() if k != "id"}}
               for it, out, ref in zip(items, outputs, reference, strict=True)]
    breakdown = {}
    for label, flag in (("fact-based", True), ("not fact-based", False)):
        scores = [by_id[it["id"]]["model_score"] for it in items if it["fact_based"] == flag]
        scores = [s for s in scores if s is not None]
        breakdown[label] = {"win_rate": sum(scores) / len(scores) if scores else None}
    return TaskResult(
        metrics=metrics, samples=samples, confidence_intervals=cis, breakdown=breakdown,
        counts={"items": len(items), "judged": wr.n, "wins": wr.wins, "losses": wr.losses, "ties": wr.ties,
                "unparsable": wr.n_unparsable},
        judge={"name": judge.name, "version": judge.version, "prompt_version": judge.prompt_version,
               "reference": ctx.reference.name,
               **({"evaluator_llm": judge.backend.identity} if hasattr(judge, "backend") else {})},
        prompt_versions={"instruction": PROMPT_VERSION, "judge": judge.prompt_version},
        extra={"lc_standard_error": wr.length_controlled_standard_error},
    )


def load_fact(ctx: EvalContext) -> list[dict]:
    return [it for it in ctx.source.eval_set("alpaca").items if it["fact_based"]]


def score_fact(ctx: EvalContext, gens: Generations) -> TaskResult:
    data = ctx.source.eval_set("alpaca")
    # same prompts as alpaca_winrate, so the generations come from the cache
    result = score_generations(ctx, gens, ctx.source.factscorer(FACT_PASSAGES), query_is_instruction=True)
    result.counts.update(data.counts)  # e.g. how many instructions the classifier called fact-based
    if "fact_based_by" in data.identity:
        result.judge = {**(result.judge or {}), "classifier": data.identity["fact_based_by"]}
    result.prompt_versions["instruction"] = PROMPT_VERSION
    return result


TASKS.register("alpaca_winrate")(Task(
    name="alpaca_winrate",
    version="1",
    kind="pairwise",
    description="Pairwise win rate over a reference system (ties = 1/2), with standard error and LC win rate.",
    metrics=(
        MetricInfo("win_rate", "Win rate", description="model preferred over the reference; ties count 1/2"),
        MetricInfo("lc_win_rate", "LC win rate", description="length-controlled: predicted at equal length"),
        MetricInfo("mean_length", "Length (chars)", higher_is_better=False, percent=False),
    ),
    load=load,
    generate=generate_pairs,
    score=score_winrate,
    data="alpaca",
    primary_metric="win_rate",
    needs_reference=True,
    columns=(Column("Win rate", "win_rate", "model_score", position=10, reference_item_score=0.5,
                    role="helpfulness"),
             Column("Length", "mean_length", None, percent=False, position=90, judged=False)),
    evaluators=("pairwise_judge",),
))
TASKS.register("alpaca_fact")(Task(
    name="alpaca_fact",
    version="1",
    kind="generative",
    description="FActScore on the fact-based Alpaca-style instructions (retrieval query = the instruction).",
    metrics=FACTSCORE_METRICS,
    load=load_fact,
    score=score_fact,
    data="alpaca",
    primary_metric="factscore",
    columns=(Column("Alpaca Fact FS", "factscore", "factscore", position=30),),
    evaluators=("verifier", "classifier"),  # the classifier picks the fact-based instructions on real data
))
