"""Shared machinery of the alignment recipes (the recipes themselves live in `alignments/recipes/`).

- `StageContext`: what a recipe gets: the world, its input model, an output directory, a seed, cached sampling.
- the fact-based instruction classifier (registered, replaceable) and its accuracy against the world's labels;
- the rewards: RM_IF (the additive 5-point rubric, blind to truth) and RM_fact (the FActScore pipeline with the
  instruction as retrieval query), plus an adapter to trl's reward-function signature;
- FLAME's pair rules (IF pairs = max/min RM_IF, ties dropped; fact pairs = max/min RM_fact on fact-based
  instructions, dropped when RM_IF differs by more than 0.5 or RM_fact ties);
- `trl_config`: CPU-safe trl configs (fp32, no activation checkpointing, no external loggers).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from flame_bench.cache import GenerationCache
from flame_bench.generation import GenerationConfig
from flame_bench.registry import CLASSIFIERS

SAMPLING = dict(do_sample=True, temperature=0.7, top_p=0.9)  # the paper's setting for every sampled response


@dataclass(frozen=True)
class Recipe:
    """A training stage: typed config + `run(ctx, config) -> stats`; the model is saved to `ctx.output_dir`."""

    name: str
    version: str
    description: str
    config_cls: type
    run: Callable[[StageContext, Any], dict[str, Any]]


@dataclass
class StageContext:
    world: Any  # WorldDir
    input_model: Path
    output_dir: Path
    seed: int
    cache: GenerationCache
    quiet: bool = True
    classifier: str = "world_entities"

    @cached_property
    def generators(self) -> dict[str, Any]:
        return {}

    def generator(self, model_path: Path, config: GenerationConfig):
        """A cached generator for `model_path` under `config` (see flame_bench.evaluate.Generator)."""
        from flame_bench.evaluate import Generator
        from flame_bench.models import resolve_model

        key = f"{model_path}|{config}"
        if key not in self.generators:
            self.generators[key] = Generator(resolve_model(str(model_path), self.world), config, self.cache,
                                             self.quiet)
        return self.generators[key]

    def sample_policy(self, instructions: list[str], n: int, max_new_tokens: int = 128) -> list[list[str]]:
        """n responses per instruction from the input model (T=0.7, top-p 0.9), chat-formatted or Q&A for PT."""
        cfg = GenerationConfig(max_new_tokens=max_new_tokens, num_return_sequences=n, seed=self.seed,
                               batch_size=max(1, 256 // n), **SAMPLING)
        return self.generator(self.input_model, cfg).samples(instructions)

    @cached_property
    def fact_classifier(self):
        cls = CLASSIFIERS.get(self.classifier)
        if getattr(cls, "uses_llm", False):  # e.g. llm_fact_based: the paper's prompt on the evaluator LLM
            from flame_bench.llm.resolve import evaluator_backend

            return cls(evaluator_backend(None))
        return cls(self.world)


# -- the fact-based instruction classifier ---------------------------------------------------------------------
@CLASSIFIERS.register("world_entities")
class EntityClassifier:
    """Fact-based iff the instruction names an entity of the knowledge source (the question the paper's prompt
    asks: "do you need factual knowledge from Wikipedia?"). Replaceable by an LLM classifier on the real path."""

    name = "world_entities"
    version = "entity-mention-v1"
    _NAME = re.compile(r"\b[A-Z][a-z]+ [A-Z][a-z]+\b")

    def __init__(self, world):
        self.titles = {k["title"] for k in world.knowledge}

    def __call__(self, instruction: str) -> bool:
        return any(m in self.titles for m in self._NAME.findall(instruction))


def classifier_accuracy(world, classifier) -> dict[str, dict[str, float]]:
    """Accuracy, precision and recall of `classifier` against the world's fact_based labels, per split."""
    out = {}
    for key in ("seed_instructions", "dpo_instructions", "eval_alpaca"):
        recs = world.records(key)
        pred = [classifier(r["instruction"]) for r in recs]
        gold = [bool(r["fact_based"]) for r in recs]
        tp = sum(p and g for p, g in zip(pred, gold, strict=True))
        out[key] = {"n": len(recs), "accuracy": sum(p == g for p, g in zip(pred, gold, strict=True)) / len(recs),
                    "precision": tp / max(1, sum(pred)), "recall": tp / max(1, sum(gold))}
    return out


# -- rewards ---------------------------------------------------------------------------------------------------
class Rewards:
    """RM_IF and RM_fact for the fact world; both are plain functions of (instruction record, response)."""

    def __init__(self, world):
        from flame_bench.scoring.factscore import world_factscorer

        self.world = world
        self.factscorer = world_factscorer(world, k=10)

    def rm_if(self, record: dict[str, Any], response: str) -> float:
        from flame_bench.scoring.rubric import if_rubric

        return float(if_rubric(record, response, self.world.grammar).score)

    def rm_fact(self, record: dict[str, Any], response: str) -> float | None:
        """Share of atomic facts supported, retrieving with the instruction as query; None if no facts."""
        return self.factscorer.score(response, record["people"], query=record["instruction"]).precision()


def as_trl_reward(fn: Callable[[dict, str], float | None], records_by_prompt: dict[str, dict]) -> Callable:
    """Adapt a reward to trl's reward-function signature `(prompts, completions, **kw) -> list[float]`."""

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **_: Any) -> list[float]:
        def text(x: Any) -> str:
            return x[-1]["content"] if isinstance(x, list) else str(x)

        return [fn(records_by_prompt[text(p)], text(c)) or 0.0 for p, c in zip(prompts, completions, strict=True)]

    reward.__name__ = getattr(fn, "__name__", "reward")
    return reward


# -- preference pairs ------------------------------------------------------------------------------------------
@dataclass
class PairSet:
    if_pairs: list[dict[str, Any]] = field(default_factory=list)
    fact_pairs: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


FACT_PAIR_RULES = ("maxmin", "enum", "composite")


def build_pairs(records: Sequence[dict], samples: Sequence[Sequence[str]], if_scores: Sequence[Sequence[float]],
                fact_scores: Sequence[Sequence[float | None]], fact_based: Sequence[bool],
                max_if_gap: float = 0.5, fact_rule: str = "maxmin", min_fact_gap: float = 0.2) -> PairSet:
    """FLAME's pair rules (paper §1.8, §1.10). Ties in a max or min pick the first sample (deterministic).

    `fact_rule` picks the factuality pairs (the paper's main rule and its Table 7 ablations):
    - "maxmin": max/min RM_fact, dropped when RM_fact ties or RM_IF differs by more than `max_if_gap` (the paper);
    - "enum": every pair of samples whose RM_fact differs by at least `min_fact_gap` and RM_IF by at most
      `max_if_gap`, the more factual one chosen;
    - "composite": max/min of RM_IF + 5 * RM_fact, no RM_IF filter (ties dropped).
    """
    if fact_rule not in FACT_PAIR_RULES:
        raise ValueError(f"unknown fact pair rule {fact_rule!r}; use one of {', '.join(FACT_PAIR_RULES)}")
    out = PairSet()
    dropped = {"if_tie": 0, "fact_tie": 0, "fact_if_gap": 0, "fact_no_facts": 0}
    for rec, outs, ifs, facts, is_fact in zip(records, samples, if_scores, fact_scores, fact_based, strict=True):
        hi = max(range(len(outs)), key=lambda i: (ifs[i], -i))
        lo = min(range(len(outs)), key=lambda i: (ifs[i], i))
        if ifs[hi] == ifs[lo]:
            dropped["if_tie"] += 1
        else:
            out.if_pairs.append({"id": rec["id"], "prompt": rec["instruction"], "chosen": outs[hi],
                                 "rejected": outs[lo], "chosen_score": ifs[hi], "rejected_score": ifs[lo]})
        if not is_fact:
            continue
        valid = [i for i, f in enumerate(facts) if f is not None]
        if len(valid) < 2:
            dropped["fact_no_facts"] += 1
            continue
        if fact_rule != "maxmin":
            found = _fact_pairs_variant(fact_rule, valid, ifs, facts, max_if_gap, min_fact_gap)
            if not found:
                dropped["fact_tie"] += 1
            out.fact_pairs += [{"id": rec["id"], "prompt": rec["instruction"], "chosen": outs[t], "rejected": outs[f],
                                "chosen_score": facts[t], "rejected_score": facts[f]} for t, f in found]
            continue
        t = max(valid, key=lambda i: (facts[i], -i))
        f = min(valid, key=lambda i: (facts[i], i))
        if facts[t] == facts[f]:
            dropped["fact_tie"] += 1
        elif abs(ifs[t] - ifs[f]) > max_if_gap:
            dropped["fact_if_gap"] += 1
        else:
            out.fact_pairs.append({"id": rec["id"], "prompt": rec["instruction"], "chosen": outs[t],
                                   "rejected": outs[f], "chosen_score": facts[t], "rejected_score": facts[f]})
    out.stats = {"instructions": len(records), "fact_based": sum(fact_based), "if_pairs": len(out.if_pairs),
                 "fact_pairs": len(out.fact_pairs), **{f"dropped_{k}": v for k, v in dropped.items()}}
    return out


def _fact_pairs_variant(rule: str, valid: list[int], ifs: Sequence[float], facts: Sequence[float | None],
                       max_if_gap: float, min_fact_gap: float) -> list[tuple[int, int]]:
    """(chosen, rejected) sample indices under the "enum" or "composite" rule (see `build_pairs`)."""
    fs = {i: float(facts[i]) for i in valid}  # type: ignore[arg-type]
    if rule == "composite":
        score = {i: ifs[i] + 5 * fs[i] for i in valid}
        t, f = max(valid, key=lambda i: (score[i], -i)), min(valid, key=lambda i: (score[i], i))
        return [(t, f)] if score[t] != score[f] else []
    return [(a, b) if fs[a] > fs[b] else (b, a) for n, a in enumerate(valid) for b in valid[n + 1:]
            if abs(fs[a] - fs[b]) >= min_fact_gap and abs(ifs[a] - ifs[b]) <= max_if_gap]


# -- trl -------------------------------------------------------------------------------------------------------
def trl_config(cls: type, output_dir: Path, seed: int, **overrides: Any):
    """A trl SFTConfig/DPOConfig that runs on CPU (fp32) and GPU alike, with no external loggers."""
    import torch

    base = dict(output_dir=str(output_dir), report_to="none", bf16=False, activation_checkpointing=False,
                use_cpu=not torch.cuda.is_available(), disable_tqdm=True, seed=seed, data_seed=seed,
                dataloader_num_workers=0, logging_steps=1, save_strategy="steps", save_steps=50,
                save_total_limit=1, save_only_model=False, lr_scheduler_type="cosine", warmup_steps=0.05,
                logging_nan_inf_filter=False)  # the NaN guard must see every step's loss, unfiltered
    base.update(overrides)
    return cls(**base)


def latest_checkpoint(output_dir: Path) -> str | None:
    """trl/transformers checkpoint to resume an interrupted stage from."""
    ckpts = sorted(output_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return str(ckpts[-1]) if ckpts else None


def chat_example(instruction: str, response: str) -> dict[str, Any]:
    return {"prompt": [{"role": "user", "content": instruction}],
            "completion": [{"role": "assistant", "content": response}]}
