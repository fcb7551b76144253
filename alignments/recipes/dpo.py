"""DPO recipes (FLAME §1.7-1.11), each wrapping trl's DPOTrainer; beta 0.1.

Pair building, shared by all three: for each DPO instruction the policy's starting model samples 4 responses
(temperature 0.7, top-p 0.9). RM_IF (the additive 5-point rubric, blind to truth) scores every response;
RM_fact (the FActScore pipeline, retrieving with the instruction as query) scores responses to instructions the
classifier calls fact-based.
- IF pairs: max/min RM_IF, ties dropped.
- fact pairs: max/min RM_fact on fact-based instructions, dropped when RM_IF differs by more than 0.5 or RM_fact
  ties.

- `dpo`       baseline DPO on IF pairs.
- `fact_dpo`  DPO^fact on fact pairs only.
- `flame_dpo` DPO^flame: IF and fact pairs, batches drawn 50/50 from the two sets (the smaller set is cycled up
              to the size of the larger, so a uniformly drawn batch is half of each in expectation).
Pair counts are reported like the paper's Table 11 and the pairs are kept next to the model (`pairs.jsonl`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import cycle, islice
from typing import Any

from flame_bench.alignment import Recipe, Rewards, StageContext, build_pairs, latest_checkpoint, trl_config
from flame_bench.errors import FlameError
from flame_bench.io import sha256_json, write_jsonl
from flame_bench.registry import RECIPES


@dataclass
class DPORecipeConfig:
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
    max_instructions: int | None = None  # use only the first N DPO instructions (sweeps, smoke runs)


def make_pairs(ctx: StageContext, config: DPORecipeConfig):
    records = ctx.world.records("dpo_instructions")[: config.max_instructions]
    samples = ctx.sample_policy([r["instruction"] for r in records], config.samples_per_instruction,
                                config.max_new_tokens)
    rewards = Rewards(ctx.world)
    fact_based = [ctx.fact_classifier(r["instruction"]) for r in records]
    if_scores = [[rewards.rm_if(r, s) for s in outs] for r, outs in zip(records, samples, strict=True)]
    fact_scores = [[rewards.rm_fact(r, s) for s in outs] if fb else [None] * len(outs)
                   for r, outs, fb in zip(records, samples, fact_based, strict=True)]
    pairs = build_pairs(records, samples, if_scores, fact_scores, fact_based, config.max_if_gap,
                        config.fact_pair_rule, config.min_fact_gap)
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
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from flame_bench.alignment_train import NaNGuard, finish_training, progress_callback

    tok = AutoTokenizer.from_pretrained(ctx.input_model)
    model = AutoModelForCausalLM.from_pretrained(ctx.input_model, use_safetensors=True)
    work = ctx.output_dir.parent / f"{ctx.output_dir.name}.trainer"
    args = trl_config(DPOConfig, work, ctx.seed, beta=config.beta, learning_rate=config.learning_rate,
                      num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
                      max_length=config.max_length)
    # ref_model=None: trl reloads the frozen reference from the input model's directory
    trainer = DPOTrainer(model=model, args=args, train_dataset=_as_dataset(pairs), processing_class=tok,
                         callbacks=[NaNGuard(), progress_callback("DPO", ctx.quiet)])
    return finish_training(trainer, tok, ctx, latest_checkpoint(work))


def _recipe(mode: str):
    def run(ctx: StageContext, config: DPORecipeConfig) -> dict[str, Any]:
        pairs = make_pairs(ctx, config)
        if mode == "if":
            train = pairs.if_pairs
        elif mode == "fact":
            train = pairs.fact_pairs
        else:
            big, small = sorted((pairs.if_pairs, pairs.fact_pairs), key=len, reverse=True)
            train = big + list(islice(cycle(small), len(big))) if small else big
        if not train:
            raise FlameError(f"{mode} DPO has no preference pairs ({pairs.stats}); use more DPO instructions or a "
                             "policy whose samples differ")
        return {**pairs.stats, "train_pairs": len(train), **train_dpo(ctx, train, config), "config": asdict(config)}

    return run


for _name, _mode, _desc in (
    ("dpo", "if", "DPO on instruction-following pairs (baseline)"),
    ("fact_dpo", "fact", "DPO^fact: DPO on factuality pairs only"),
    ("flame_dpo", "flame", "DPO^flame: IF and factuality pairs, batches drawn 50/50"),
):
    RECIPES.register(_name)(Recipe(_name, "1", _desc, DPORecipeConfig, _recipe(_mode)))
