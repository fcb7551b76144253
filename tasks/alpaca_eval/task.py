"""`alpaca_winrate` (pairwise win rate against a reference system) and `alpaca_fact` (FActScore on its
fact-based subset), on the fact world's Alpaca-style evaluation instructions (FLAME §6.1 and §6.3)."""

from __future__ import annotations

import math

from flame_bench.errors import FlameError
from flame_bench.registry import JUDGES, TASKS
from flame_bench.scoring.factscore import FACTSCORE_METRICS, factscore_task
from flame_bench.scoring.winrate import score_pairs
from flame_bench.task_api import EvalContext, MetricInfo, Task, TaskResult

PROMPT_VERSION = "alpaca-instruction-v1"  # the instruction as the user turn, no system prompt
MAX_UNPARSABLE = 0.05  # a run fails when more judge replies than this are unparsable


def _reference_outputs(ctx: EvalContext, items: list[dict]) -> list[str]:
    ref = ctx.reference
    if ref is None:
        raise FlameError("alpaca_winrate needs a reference: --reference human, a run, or a model")
    missing = [it["id"] for it in items if it["id"] not in ref.outputs]
    if missing:
        raise FlameError(f"reference {ref.name!r} covers other instructions ({len(missing)} of {len(items)} items "
                         f"missing, e.g. {missing[0]}); use a reference evaluated on the same world and --limit")
    return [ref.outputs[it["id"]] for it in items]


def run_winrate(ctx: EvalContext) -> TaskResult:
    if ctx.world is None:  # real path: AlpacaEval-format instructions + reference outputs, an LLM judge
        from flame_bench.evaluate import alpaca_eval_items
        from flame_bench.llm.components import LLMFactClassifier, LLMPairwiseJudge
        from flame_bench.llm.resolve import evaluator_backend

        items = alpaca_eval_items(ctx.options.get("alpaca_eval"))[: ctx.limit]
        backend = evaluator_backend(ctx.options.get("llm"), quiet=ctx.quiet)
        judge = LLMPairwiseJudge(backend)
        labels = LLMFactClassifier(backend).classify_many([it["instruction"] for it in items])
        items = [{**it, "fact_based": label} for it, label in zip(items, labels, strict=True)]
    else:
        items = ctx.world.records("eval_alpaca")[: ctx.limit]
        judge_cls = JUDGES.get(ctx.options.get("judge", "world_if"))
        if getattr(judge_cls, "uses_llm", False):
            from flame_bench.llm.resolve import evaluator_backend

            judge = judge_cls(evaluator_backend(ctx.options.get("llm"), quiet=ctx.quiet))
        else:
            judge = judge_cls(ctx.world.grammar)
    reference = _reference_outputs(ctx, items)
    assert ctx.generate is not None
    outputs = ctx.generate([it["instruction"] for it in items])
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


def run_fact(ctx: EvalContext) -> TaskResult:
    if ctx.world is None:
        return run_fact_real(ctx)
    items = [it for it in ctx.world.records("eval_alpaca") if it["fact_based"]][: ctx.limit]
    tier = {p["name"]: p["tier"] for p in ctx.world.people}
    # same prompts as alpaca_winrate, so the generations come from the cache
    return factscore_task(ctx, items, topics=[it["people"] for it in items],
                          groups=[tier[it["people"][0]] for it in items], prompt_version=PROMPT_VERSION,
                          query_is_instruction=True, k=10)


def run_fact_real(ctx: EvalContext) -> TaskResult:
    """Alpaca Fact on real data: the --alpaca-eval instructions the paper's classifier prompt calls fact-based,
    FActScore with the instruction as retrieval query over the whole --knowledge source (k = 10), as RM_fact."""
    from flame_bench.evaluate import alpaca_eval_items
    from flame_bench.knowledge import open_knowledge
    from flame_bench.llm.components import LLMFactClassifier, llm_factscorer
    from flame_bench.llm.resolve import evaluator_backend
    from flame_bench.scoring.factscore import score_responses

    if not ctx.options.get("knowledge"):
        raise FlameError("alpaca_fact without a fact world needs --knowledge (e.g. wiki-leads) and --alpaca-eval FILE")
    items = alpaca_eval_items(ctx.options.get("alpaca_eval"))
    backend = evaluator_backend(ctx.options.get("llm"), quiet=ctx.quiet)
    classifier = LLMFactClassifier(backend)
    labels = classifier.classify_many([it["instruction"] for it in items])
    items = [it for it, fact in zip(items, labels, strict=True) if fact][: ctx.limit]
    assert ctx.generate is not None
    outputs = ctx.generate([it["instruction"] for it in items])  # same prompts as alpaca_winrate: cached
    scorer = llm_factscorer(open_knowledge(ctx.options["knowledge"]), backend, k=10)
    scores = scorer.score_many(outputs, [[] for _ in items], [it["instruction"] for it in items])
    result = score_responses(items, outputs, scores, groups=["all"] * len(items), seed=ctx.seed)
    result.counts["classified_fact_based"] = sum(labels)
    result.judge = {"scorer": "factscore_llm", "query": "instruction", "evaluator_llm": backend.identity,
                    "classifier": f"{classifier.name}@{classifier.version}", **scorer.identity}
    result.prompt_versions = {"instruction": PROMPT_VERSION, "classifier": classifier.version,
                              "decomposer": scorer.decomposer.version, "verifier": scorer.verifier.version}
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
    run=run_winrate,
    primary_metric="win_rate",
    needs_reference=True,
))
TASKS.register("alpaca_fact")(Task(
    name="alpaca_fact",
    version="1",
    kind="generative",
    description="FActScore on the fact-based Alpaca-style instructions (retrieval query = the instruction).",
    metrics=FACTSCORE_METRICS,
    run=run_fact,
    primary_metric="factscore",
))
