"""DPO recipes (FLAME §1.7-1.11), each wrapping trl's DPOTrainer; beta 0.1.

Pair building, shared by all three: for each DPO prompt of the source the policy's starting model samples 4
responses (temperature 0.7, top-p 0.9). RM_IF (the source's instruction-following reward, blind to truth) scores
every response; RM_fact (the source's factuality reward, retrieving with the instruction as query) scores responses
to prompts the source's classifier calls fact-based. The pair rules are FLAME's (`flame_bench.alignment.flame`):
- IF pairs: max/min RM_IF, ties dropped;
- fact pairs: by `fact_pair_rule`: `maxmin` (the paper's: max/min RM_fact on fact-based prompts, dropped when RM_IF
  differs by more than 0.5 or RM_fact ties) or its Table 7 ablations `enum` and `composite`.

- `dpo`       baseline DPO on IF pairs.
- `fact_dpo`  DPO^fact on fact pairs only.
- `flame_dpo` DPO^flame: IF and fact pairs, batches drawn 50/50 from the two sets (`flame.mix_pairs`).
Pair counts are reported like the paper's Table 11 and the pairs are kept next to the model (`pairs.jsonl`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from flame_bench.alignment.flame import (
    IF_PAIR_RULE,
    PairParams,
    PairSet,
    build_pairs,
    fact_pair_guards,
    get_fact_pair_rule,
    mix_pairs,
)
from flame_bench.alignment.stages import TRAINING_LIMITS, Recipe, StageContext, check_stage_sections, positive
from flame_bench.core.errors import FlameError
from flame_bench.core.io import sha256_json, write_jsonl
from flame_bench.core.registry import RECIPES
from flame_bench.core.ui import console

RECIPE_VERSION = "2"  # in stage keys; 2: runs under 20 steps train without warmup (1: a 1-step run had lr 0)


@dataclass
class DPORecipeConfig:
    LIMITS: ClassVar[dict[str, float]] = TRAINING_LIMITS  # upper bounds (others: MAX_NUMBER)
    NOT_IN_KEY: ClassVar[tuple[str, ...]] = ("allow_no_fact_pairs",)  # changes whether it trains, never what
    beta: float = 0.1
    learning_rate: float = 5e-5
    epochs: float = 1.0
    batch_size: int = 16
    max_length: int = 256
    samples_per_instruction: int = 4
    max_new_tokens: int = 128
    max_if_gap: float = 0.5
    fact_pair_rule: str = "maxmin"  # the paper's rule; "enum" / "composite" are its Table 7 ablations
    min_fact_gap: float = 0.2  # "enum" only: smaller RM_fact differences count as equal
    max_instructions: int | None = None  # use only the first N DPO prompts (sweeps, smoke runs)
    allow_no_fact_pairs: bool = False  # flame_dpo: train even if no factuality pair was built (a guard: not in the key)
    trainer: dict[str, Any] | None = None  # forwarded to trl's DPOConfig (a stage's `trainer:` mapping)
    peft: dict[str, Any] | None = None  # LoRA; the reference is the adapter-disabled policy, not a second copy

    def __post_init__(self) -> None:
        check_stage_sections("dpo", self.trainer, self.peft)
        positive(self, "beta", "learning_rate", "epochs", "batch_size", "max_length", "max_new_tokens",
                 "max_instructions")
        if self.samples_per_instruction < 2:
            raise ValueError(f"samples_per_instruction must be at least 2 (a pair), got {self.samples_per_instruction}")
        if self.max_if_gap < 0 or self.min_fact_gap < 0:
            raise ValueError("max_if_gap and min_fact_gap must be >= 0")
        get_fact_pair_rule(self.fact_pair_rule)  # an unknown rule is refused before any sampling


def _per_sample(reward, records: list[dict], samples: list[list[str]]) -> list[list[float | None]]:
    """A reward over every sample of every record, in one batched call."""
    flat = reward.score_many([r for r, outs in zip(records, samples, strict=True) for _ in outs],
                             [s for outs in samples for s in outs])
    out, k = [], 0
    for outs in samples:
        out.append(flat[k:k + len(outs)])
        k += len(outs)
    return out


def make_pairs(ctx: StageContext, config: DPORecipeConfig) -> PairSet:
    records = ctx.source.dpo_prompts()[: config.max_instructions]
    samples = ctx.sample_policy([r["instruction"] for r in records], config.samples_per_instruction,
                                config.max_new_tokens)
    fact_based = ctx.source.fact_classifier.classify_many([r["instruction"] for r in records])
    rm_if, rm_fact = ctx.source.rm_if(ctx.input_model), ctx.source.rm_fact
    if_scores = _per_sample(rm_if, records, samples)
    fact_idx = [i for i, fb in enumerate(fact_based) if fb]
    scored = _per_sample(rm_fact, [records[i] for i in fact_idx], [samples[i] for i in fact_idx])
    fact_scores: list[list[float | None]] = [[None] * len(outs) for outs in samples]
    for i, scores in zip(fact_idx, scored, strict=True):
        fact_scores[i] = scores
    pairs = build_pairs(records, samples, if_scores, fact_scores, fact_based, config.fact_pair_rule,
                        PairParams(config.max_if_gap, config.min_fact_gap))
    pairs.stats.update({f"rm_if_{k}": v for k, v in rm_if.stats.items()})
    pairs.stats.update({f"rm_fact_{k}": v for k, v in rm_fact.stats.items()})
    pairs.stats["pairs_digest"] = sha256_json([pairs.if_pairs, pairs.fact_pairs])[:16]  # for regression gates
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(ctx.output_dir.parent / "pairs.jsonl", "pairs", 1,
                [{"set": "if", **p} for p in pairs.if_pairs] + [{"set": "fact", **p} for p in pairs.fact_pairs])
    return pairs


def _as_dataset(pairs: list[dict[str, Any]]):
    from datasets import Dataset

    return Dataset.from_list([{"prompt": [{"role": "user", "content": p["prompt"]}],
                               "chosen": [{"role": "assistant", "content": p["chosen"]}],
                               "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in pairs])


def train_dpo(ctx: StageContext, pairs: list[dict[str, Any]], config: DPORecipeConfig) -> dict[str, Any]:
    from trl import DPOConfig, DPOTrainer

    from flame_bench.alignment.training import train_trl

    # ref_model=None: trl reloads the frozen reference from the input model's directory; with LoRA the reference is
    # the policy with its adapter disabled (no second copy of the weights)
    return train_trl(ctx, DPOTrainer, DPOConfig, _as_dataset(pairs), "DPO", peft=config.peft,
                     trainer_keys=config.trainer, beta=config.beta, learning_rate=config.learning_rate,
                     num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
                     max_length=config.max_length)


def _recipe(mode: str):
    def run(ctx: StageContext, config: DPORecipeConfig) -> dict[str, Any]:
        # sampling, scoring and pair building on the main process alone; every rank trains on the same pairs
        pairs = PairSet(**ctx.on_main("pairs", lambda: asdict(make_pairs(ctx, config))))
        warnings = fact_pair_guards(pairs.stats, config.allow_no_fact_pairs) if mode == "flame" else []
        for warning in warnings:
            console.print(f"[yellow]warning:[/yellow] {warning}")
        train = {"if": pairs.if_pairs, "fact": pairs.fact_pairs}.get(mode) or (
            mix_pairs(pairs.if_pairs, pairs.fact_pairs) if mode == "flame" else [])
        if not train:
            raise FlameError(f"{mode} DPO has no preference pairs ({pairs.stats}); use more DPO prompts or a "
                             "policy whose samples differ")
        return {**pairs.stats, "train_pairs": len(train), **train_dpo(ctx, train, config), "config": asdict(config),
                **({"warnings": warnings} if warnings else {})}

    return run


def _fingerprint(config: DPORecipeConfig, source) -> dict[str, Any]:
    return {"if_pairs": IF_PAIR_RULE["version"], "fact_pairs": get_fact_pair_rule(config.fact_pair_rule).version,
            "mixing": "cycle-smaller-to-larger-v1"}


def _table11(mode: str):
    def cells(stats: dict[str, Any]) -> dict[str, str]:
        """The pairs of the paper's Table 11: built, and trained on ("(n unused)": built but not trained on)."""
        if_pairs, fact_pairs = str(stats["if_pairs"]), str(stats["fact_pairs"])
        return {"IF pairs": if_pairs if mode != "fact" else f"({if_pairs} unused)",
                "fact pairs": fact_pairs if mode != "if" else f"({fact_pairs} unused)",
                "DPO train pairs": str(stats.get("train_pairs", "-"))}

    return cells


for _name, _mode, _desc in (
    ("dpo", "if", "DPO on instruction-following pairs (baseline)"),
    ("fact_dpo", "fact", "DPO^fact: DPO on factuality pairs only"),
    ("flame_dpo", "flame", "DPO^flame: IF and factuality pairs, batches drawn 50/50"),
):
    RECIPES.register(_name)(Recipe(_name, RECIPE_VERSION, _desc, DPORecipeConfig, _recipe(_mode), trainer="dpo",
                                   fingerprint=_fingerprint, uses_rewards=True,
                                   training_data=_table11(_mode)))
